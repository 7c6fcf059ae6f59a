//! A controller whose etcd data is gone (a replaced or wiped disk, the same or a new machine
//! at its place in `controllers`) rejoins etcd in an update, before its node secrets arrive
//! and start etcd there: the member it was is removed and a learner added under the peer URL
//! its `etcd.env` advertises, through a member that has quorum; `etcd.env` is told to join
//! (`ETCD_INITIAL_CLUSTER_STATE=existing`, and the members as they now are) rather than start
//! a cluster of its own. Its node secrets then start etcd; the learner is promoted once in
//! sync (so quorum never waits on a member still catching up), and the next controller
//! follows only once it answers.
//!
//! A learner refuses reads ("rpc not supported for learner"), and the apiservers' etcd client
//! does not skip one: while it learns, its client port listens on loopback only (the SSH
//! tunnel reaches it there), so the apiservers that list its address find it closed and use
//! the others. Once it votes, its own listen addresses come back and etcd restarts on them.
//!
//! Only an empty data folder counts as lost: a member that holds data but does not answer
//! (rebooting, or crash-looping) is left alone and reported.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use selfhosted_etcd::{rejoin, Client, Credentials, Id, RejoinError};
use selfhosted_transport::{FileSpec, Session};
use tokio::time::Instant;

use crate::etcd_snapshot::{await_member, credentials, member_status};
use crate::phase::{chain, Phase, PivotError};

const PHASE: Phase = Phase::EtcdMembers;

/// etcd's settings on a controller (the node contract's `node.etcd_env`).
const ETCD_ENV: &str = "/etc/etcd/etcd.env";

/// etcd's data folder on every host OS the contract renders; `member/` exists once it ran.
pub(crate) const ETCD_MEMBER_DIR: &str = "/var/lib/etcd/member";

/// The line that makes an empty member join the running cluster.
const JOIN_EXISTING: &str = "ETCD_INITIAL_CLUSTER_STATE=existing";

/// Pause between looks at a rejoining member.
const JOIN_POLL: Duration = Duration::from_secs(2);

/// The key of etcd's client listen addresses in `etcd.env`.
const LISTEN_CLIENT: &str = "ETCD_LISTEN_CLIENT_URLS";

/// Where a learner serves clients: loopback only, which the SSH tunnel reaches.
const LEARNER_LISTEN: &str = "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:2379";

/// Marks the comment that keeps a learner's own client listen line until it votes (a comment
/// to systemd's and the container engines' env-file readers alike).
const WHILE_LEARNER: &str = "#selfhosted-while-learner ";

/// What a controller's `etcd.env` and data folder say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Local {
    env: String,
    name: String,
    peer_url: String,
    has_data: bool,
}

/// `KEY=value` of an env file (etcd's `etcd.env`, its `image.env`).
pub(crate) fn env_value<'a>(env: &'a str, key: &str) -> Option<&'a str> {
    // The last assignment wins, as in systemd's EnvironmentFile.
    env.lines()
        .rev()
        .filter_map(|l| l.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim())
}

/// The env file told to join the running cluster: [`JOIN_EXISTING`], `initial_cluster` (the
/// members as they are, this one added) as `ETCD_INITIAL_CLUSTER`, and clients served on
/// loopback only while a learner ([`LEARNER_LISTEN`], its own line kept after
/// [`WHILE_LEARNER`]); `None` when it says so already.
fn joining_env(env: &str, initial_cluster: &str) -> Option<String> {
    let mut out = String::new();
    for l in env.lines() {
        let t = l.trim_start();
        if t.starts_with("ETCD_INITIAL_CLUSTER_STATE=") || t.starts_with("ETCD_INITIAL_CLUSTER=") {
            continue;
        }
        if t.starts_with(&format!("{LISTEN_CLIENT}=")) && t.trim_end() != LEARNER_LISTEN {
            out.push_str(&format!("{WHILE_LEARNER}{}\n{LEARNER_LISTEN}\n", t.trim_end()));
            continue;
        }
        out.push_str(&format!("{l}\n"));
    }
    out.push_str(&format!("ETCD_INITIAL_CLUSTER={initial_cluster}\n{JOIN_EXISTING}\n"));
    let before: String = env.lines().map(|l| format!("{l}\n")).collect();
    (out != before).then_some(out)
}

/// The env file of a member that votes now: its own client listen line back in place of
/// [`LEARNER_LISTEN`]; `None` when [`joining_env`] did not move it.
fn voting_env(env: &str) -> Option<String> {
    let own = env
        .lines()
        .find_map(|l| l.trim().strip_prefix(WHILE_LEARNER.trim_end()))
        .map(str::trim)?;
    let mut out = String::new();
    let mut placed = false;
    for l in env.lines().filter(|l| !l.trim().starts_with(WHILE_LEARNER.trim_end())) {
        let l = if l.trim() == LEARNER_LISTEN && !placed {
            placed = true;
            own
        } else if l.trim() == LEARNER_LISTEN {
            continue;
        } else {
            l
        };
        out.push_str(&format!("{l}\n"));
    }
    if !placed {
        out.push_str(&format!("{own}\n"));
    }
    Some(out)
}

/// Reads `etcd.env` and whether the data folder holds a member; `None` when the host has no
/// `etcd.env` (not a controller of the node contract: nothing to do there).
async fn local(session: &Session) -> Result<Option<Local>, PivotError> {
    let cmd = format!(
        "if [ -f {ETCD_ENV} ]; then cat {ETCD_ENV}; else echo '#no-env'; fi; \
         if [ -d {ETCD_MEMBER_DIR} ]; then echo '#has-data'; fi"
    );
    let out = session
        .sudo(&cmd)
        .await
        .map_err(|e| PivotError::on(PHASE, session.host(), format!("cannot read {ETCD_ENV}: {}", chain(&e))))?;
    let text = out.stdout_text();
    if text.lines().any(|l| l == "#no-env") {
        return Ok(None);
    }
    let has_data = text.lines().any(|l| l == "#has-data");
    let env: String = text
        .lines()
        .filter(|l| *l != "#has-data")
        .map(|l| format!("{l}\n"))
        .collect();
    let field = |key: &str| {
        env_value(&env, key)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                PivotError::on(
                    PHASE,
                    session.host(),
                    format!("{ETCD_ENV} sets no {key}: boot the controller from the node contract's controller config (node.etcd_env)"),
                )
            })
    };
    let (name, peer_url) = (field("ETCD_NAME")?, field("ETCD_INITIAL_ADVERTISE_PEER_URLS")?);
    Ok(Some(Local {
        env,
        name,
        peer_url,
        has_data,
    }))
}

/// A member that answers, with a leader, and the IDs of all the members that do.
struct Quorum {
    client: Client,
    cluster_id: Id,
    answering: Vec<Id>,
}

/// Asks each of `sessions`' members; the first with a leader is the one changes go through.
async fn quorum(sessions: &[&Session], creds: &Credentials) -> (Option<Quorum>, Vec<String>) {
    let mut found: Option<Quorum> = None;
    let mut silent = Vec::new();
    for session in sessions {
        match member_status(session, creds).await {
            Ok((client, s)) if s.has_leader => {
                let id = s.member_id;
                match &mut found {
                    Some(q) if q.cluster_id == s.cluster_id => q.answering.push(id),
                    Some(_) => silent.push(format!(
                        "{}: member {} is in another cluster",
                        session.host(),
                        s.member_id
                    )),
                    None => {
                        found = Some(Quorum {
                            client,
                            cluster_id: s.cluster_id,
                            answering: vec![id],
                        })
                    }
                }
            }
            Ok((_, s)) => silent.push(format!("{}: member {} has no leader", session.host(), s.member_id)),
            Err(why) => silent.push(format!("{}: {why}", session.host())),
        }
    }
    (found, silent)
}

/// Brings back every controller of `controllers` whose data folder is empty, one at a time:
/// through a member with quorum, the member it was removed and a learner added under its peer
/// URL; its `etcd.env` told to join; its node secrets delivered by `deliver` (they start etcd);
/// the learner promoted once in sync, and awaited answering with a leader, until `deadline`.
/// A learner left by an interrupted run is promoted first. Returns the hosts brought back.
///
/// # Errors
/// A host whose files cannot be read or written; a change that would lose quorum (nothing
/// changed, the members named); etcd refusing a change; a member not back in time.
pub(crate) async fn replace_lost<F, Fut>(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    deliver: F,
    deadline: Instant,
) -> Result<Vec<String>, PivotError>
where
    F: Fn(Session) -> Fut,
    Fut: Future<Output = Result<(), PivotError>>,
{
    let mut empty = Vec::new();
    let mut holding: Vec<(&Session, Local)> = Vec::new();
    for session in controllers {
        match local(session).await? {
            Some(l) if !l.has_data => empty.push((*session, l)),
            Some(l) => holding.push((*session, l)),
            None => {}
        }
    }
    let creds = credentials(assets).map_err(|e| PivotError::new(PHASE, e.message))?;
    let holding_sessions: Vec<&Session> = holding.iter().map(|(s, _)| *s).collect();
    let (found, silent) = quorum(&holding_sessions, &creds).await;
    let Some(q) = found else {
        if empty.is_empty() {
            // Nothing to bring back; silent members are the update's warning to give.
            return Ok(Vec::new());
        }
        let mut err = PivotError::new(
            PHASE,
            format!(
                "{} {} no etcd data, and no other member answers with a leader, so none can rejoin: \
                 etcd has lost quorum. Restore it from a snapshot \
                 (docs/guides/disaster-recovery.md#etcd-snapshots-and-lost-quorum), then apply again",
                names(&empty),
                if empty.len() == 1 { "has" } else { "have" },
            ),
        );
        for s in silent {
            err = err.with_evidence(s);
        }
        return Err(err);
    };
    // A learner of an interrupted run, started since, still waits for its vote, and one
    // promoted then may still serve clients on loopback only.
    promote(&q.client, None, deadline).await?;
    for (session, l) in &holding {
        if reopen(session).await? {
            joined(session, &creds, l, deadline).await?;
        }
    }
    let mut answering = q.answering;
    let mut back = Vec::new();
    for (session, l) in empty {
        let host = session.host();
        let done = rejoin(&q.client, &l.name, &l.peer_url, &answering).await.map_err(|e| {
            let detail = match &e {
                RejoinError::Quorum(why) => {
                    format!("{host}'s etcd data is gone, and replacing its member {}: {why}", l.name)
                }
                RejoinError::Etcd(e) => {
                    format!(
                        "{host}'s etcd data is gone; etcd refused to replace its member {}: {}",
                        l.name,
                        chain(e)
                    )
                }
            };
            let mut err = PivotError::on(PHASE, host, detail);
            for s in &silent {
                err = err.with_evidence(s.clone());
            }
            err
        })?;
        for change in &done.changes {
            tracing::info!(phase = PHASE.name(), host, %change, "etcd member of a controller whose data is gone");
        }
        if let Some(env) = joining_env(&l.env, &done.initial_cluster) {
            session
                .upload(&[FileSpec::secret(ETCD_ENV, env).with_mode(0o644)])
                .await
                .map_err(|e| PivotError::on(PHASE, host, format!("cannot write {ETCD_ENV}: {}", chain(&e))))?;
        }
        deliver((*session).clone()).await?;
        promote(&q.client, Some((host, &l)), deadline).await?;
        reopen(session).await?;
        let id = joined(session, &creds, &l, deadline).await?;
        answering.push(id);
        tracing::info!(phase = PHASE.name(), host, member = %l.name, "etcd member joined again");
        back.push(host.to_owned());
    }
    Ok(back)
}

/// After a shrink dropped the controllers `leaving`, takes out of etcd the members that no
/// controller of `controllers` claims (by its `etcd.env`), one at a time, each only while
/// the members that stay answer with quorum: at most as many as left (more would be members
/// this provider did not make, or a controller whose `etcd.env` is not its own). Returns the
/// members removed; a rerun finds fewer left to remove.
///
/// # Errors
/// A controller whose `etcd.env` cannot be read, no member with a leader, more unclaimed
/// members than controllers left, a removal that would lose quorum (the members named), or
/// etcd refusing it.
pub(crate) async fn remove_unclaimed(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    leaving: &[String],
    leaving_hosts: &[Session],
) -> Result<Vec<String>, PivotError> {
    if leaving.is_empty() {
        return Ok(Vec::new());
    }
    let mut claims = Vec::new();
    for session in controllers {
        let l = local(session).await?.ok_or_else(|| {
            PivotError::on(
                PHASE,
                session.host(),
                format!(
                    "no {ETCD_ENV}, so its etcd member cannot be told from those of the controllers that leave \
                     ({}); nothing was removed",
                    leaving.join(", ")
                ),
            )
        })?;
        claims.push((l.name, l.peer_url));
    }
    let creds = credentials(assets).map_err(|e| PivotError::new(PHASE, e.message))?;
    let (found, silent) = quorum(controllers, &creds).await;
    let Some(q) = found else {
        let mut err = PivotError::new(
            PHASE,
            format!(
                "no etcd member of the controllers that stay answers with a leader, so the members of {} cannot be \
                 removed",
                leaving.join(", ")
            ),
        );
        for s in silent {
            err = err.with_evidence(s);
        }
        return Err(err);
    };
    // The leaving members vote until they are removed: those that answer count for quorum.
    let mut answering = q.answering.clone();
    for session in leaving_hosts {
        if let Ok((_, st)) = member_status(session, &creds).await {
            if st.has_leader && st.cluster_id == q.cluster_id {
                answering.push(st.member_id);
            }
        }
    }
    let etcd_err = |e: selfhosted_etcd::EtcdError| PivotError::new(PHASE, format!("etcd: {}", chain(&e)));
    let members = q.client.members().await.map_err(etcd_err)?;
    let unclaimed = selfhosted_etcd::unclaimed(&members, &claims);
    if unclaimed.len() > leaving.len() {
        return Err(PivotError::new(
            PHASE,
            format!(
                "etcd lists {} members that no controller in `controllers` claims, more than the {} controllers \
                 this apply removes ({}); nothing was removed. Members now:\n{}Each controller's etcd.env must be its \
                 own (node.etcd_env[i] for the i-th of etcd_servers); remove a member this provider did not add by \
                 hand (etcdctl member remove)",
                unclaimed.len(),
                leaving.len(),
                leaving.join(", "),
                selfhosted_etcd::membership::listing(&members)
            ),
        ));
    }
    let mut removed = Vec::new();
    for m in unclaimed {
        let members = q.client.members().await.map_err(etcd_err)?;
        if !members.iter().any(|x| x.id == m.id) {
            continue;
        }
        selfhosted_etcd::check_removal(&members, &m, &answering).map_err(|why| {
            let mut err = PivotError::new(PHASE, format!("the control plane shrinks, but {why}"));
            for s in &silent {
                err = err.with_evidence(s.clone());
            }
            err
        })?;
        q.client.remove_member(m.id).await.map_err(etcd_err)?;
        tracing::info!(phase = PHASE.name(), member = %m, "etcd member of a controller that left removed");
        removed.push(m.to_string());
    }
    Ok(removed)
}

/// [`selfhosted_etcd::promote`], its failure named for `awaited`'s host.
async fn promote(client: &Client, awaited: Option<(&str, &Local)>, deadline: Instant) -> Result<(), PivotError> {
    let url = awaited.map(|(_, l)| l.peer_url.as_str());
    selfhosted_etcd::promote(client, url, deadline)
        .await
        .map(drop)
        .map_err(|why| match awaited {
            Some((host, l)) => PivotError::on(
                PHASE,
                host,
                format!(
                    "its etcd member {} (peer URL {}) did not become a voting member in time: {why}. Its etcd \
                     log tells why (journalctl -u etcd-member); apply again once it runs",
                    l.name, l.peer_url
                ),
            ),
            None => PivotError::new(PHASE, format!("an etcd learner could not be promoted: {why}")),
        })
}

/// Gives a member that votes its own client listen addresses back ([`voting_env`]) and
/// restarts its etcd on them; false when its `etcd.env` was not moved. Called only once the
/// member votes: a learner must stay unreachable to the apiservers.
///
/// # Errors
/// The file cannot be read or written, or etcd not restarted.
async fn reopen(session: &Session) -> Result<bool, PivotError> {
    let Some(env) = local(session).await?.and_then(|l| voting_env(&l.env)) else {
        return Ok(false);
    };
    let host = session.host();
    session
        .upload(&[FileSpec::secret(ETCD_ENV, env).with_mode(0o644)])
        .await
        .map_err(|e| PivotError::on(PHASE, host, format!("cannot write {ETCD_ENV}: {}", chain(&e))))?;
    session
        .sudo("systemctl restart etcd-member.service")
        .await
        .map_err(|e| {
            PivotError::on(
                PHASE,
                host,
                format!(
                    "its etcd member votes, but etcd did not restart to serve clients on its own addresses: {}",
                    chain(&e)
                ),
            )
        })?;
    tracing::info!(
        phase = PHASE.name(),
        host,
        "etcd member votes; serving clients on its own addresses again"
    );
    Ok(true)
}

/// Waits until the member on `session`'s host answers with a leader; returns its ID.
async fn joined(session: &Session, creds: &Credentials, l: &Local, deadline: Instant) -> Result<Id, PivotError> {
    let answered = |s: &selfhosted_etcd::Status| {
        if s.has_leader {
            Ok(s.member_id)
        } else {
            Err(format!("member {} has no leader yet", s.member_id))
        }
    };
    await_member(session, creds, deadline, JOIN_POLL, answered)
        .await
        .map_err(|last| {
            PivotError::on(
                PHASE,
                session.host(),
                format!(
                    "its etcd member {} (peer URL {}) does not answer in the cluster in time; its etcd log tells \
                     why (journalctl -u etcd-member). Apply again once it runs",
                    l.name, l.peer_url
                ),
            )
            .with_evidence(format!("last answer: {last}"))
        })
}

fn names(hosts: &[(&Session, Local)]) -> String {
    hosts.iter().map(|(s, _)| s.host()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_is_told_to_join_once() {
        let env = "ETCD_NAME=etcd2\nETCD_INITIAL_CLUSTER=etcd2=https://c:2380\nETCD_DATA_DIR=/var/lib/etcd\n";
        let cluster = "etcd0=https://a:2380,etcd2=https://c:2380";
        let joined = joining_env(env, cluster).expect("changed");
        assert_eq!(
            joined,
            "ETCD_NAME=etcd2\nETCD_DATA_DIR=/var/lib/etcd\n\
             ETCD_INITIAL_CLUSTER=etcd0=https://a:2380,etcd2=https://c:2380\nETCD_INITIAL_CLUSTER_STATE=existing\n"
        );
        assert_eq!(joining_env(&joined, cluster), None);
        assert!(joining_env(&joined, "etcd2=https://c:2380").is_some());
    }

    #[test]
    fn a_learner_serves_clients_on_loopback_until_it_votes() {
        let env = "ETCD_NAME=etcd1\nETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\nETCD_DATA_DIR=/var/lib/etcd\n";
        let cluster = "etcd0=https://a:2380,etcd1=https://b:2380";
        let learning = joining_env(env, cluster).expect("changed");
        assert_eq!(
            learning,
            "ETCD_NAME=etcd1\n#selfhosted-while-learner ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\n\
             ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1:2379\nETCD_DATA_DIR=/var/lib/etcd\n\
             ETCD_INITIAL_CLUSTER=etcd0=https://a:2380,etcd1=https://b:2380\nETCD_INITIAL_CLUSTER_STATE=existing\n"
        );
        // The only value of the key etcd reads is the loopback one.
        assert_eq!(env_value(&learning, LISTEN_CLIENT), Some("https://127.0.0.1:2379"));
        assert_eq!(joining_env(&learning, cluster), None, "a rerun finds it told already");
        let voting = voting_env(&learning).expect("moved back");
        assert_eq!(env_value(&voting, LISTEN_CLIENT), Some("https://0.0.0.0:2379"));
        assert!(!voting.contains("127.0.0.1") && !voting.contains('#'), "{voting}");
        assert!(voting.contains(JOIN_EXISTING), "{voting}");
        assert_eq!(voting_env(&voting), None, "a member that votes already is left alone");
        assert_eq!(voting_env(env), None);
    }

    #[test]
    fn a_learner_listen_line_lost_by_hand_comes_back_from_the_comment() {
        let env = "ETCD_NAME=etcd1\n#selfhosted-while-learner ETCD_LISTEN_CLIENT_URLS=https://10.0.0.2:2379\n";
        assert_eq!(
            voting_env(env).as_deref(),
            Some("ETCD_NAME=etcd1\nETCD_LISTEN_CLIENT_URLS=https://10.0.0.2:2379\n")
        );
    }

    #[test]
    fn values_are_read_by_key() {
        let env = "ETCD_NAME=etcd1\nETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.2:2380\n";
        assert_eq!(env_value(env, "ETCD_NAME"), Some("etcd1"));
        assert_eq!(
            env_value(env, "ETCD_INITIAL_ADVERTISE_PEER_URLS"),
            Some("https://10.0.0.2:2380")
        );
        assert_eq!(env_value(env, "ETCD_INITIAL_CLUSTER"), None);
        // As systemd reads an EnvironmentFile: the last assignment wins.
        assert_eq!(
            env_value("ETCD_IMAGE=a:3.5.21-0\nETCD_IMAGE=a:3.6.6-0\n", "ETCD_IMAGE"),
            Some("a:3.6.6-0")
        );
    }
}
