//! etcd's membership: who the members are, and the changes that let a member whose data is
//! gone (a replaced or wiped disk), or a new one, join: the member it was removed, a new one
//! added under its peer URL as a learner (no vote, so quorum never waits on it), promoted once
//! it is in sync. A removal that would leave the members that answer short of quorum is
//! refused before anything changes.

use std::fmt;

use crate::client::{Client, EtcdError, Id};
use crate::pb;

/// A member as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its ID.
    pub id: Id,
    /// Its name; empty until it has started and published itself.
    pub name: String,
    /// The URLs its peers reach it on.
    pub peer_urls: Vec<String>,
    /// Whether it is a learner (no vote).
    pub is_learner: bool,
}

impl Member {
    /// Whether it has started (an added member that never ran has no name yet).
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }

    fn has_peer_url(&self, url: &str) -> bool {
        self.peer_urls.iter().any(|u| u == url)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.started() { &self.name } else { "(not started)" };
        write!(f, "{name} {} {}", self.id, self.peer_urls.join(","))
    }
}

impl From<pb::Member> for Member {
    fn from(m: pb::Member) -> Self {
        Self {
            id: Id(m.id),
            name: m.name,
            peer_urls: m.peer_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

/// The members listed one a line, for errors and logs.
pub fn listing(members: &[Member]) -> String {
    members.iter().map(|m| format!("  {m}\n")).collect()
}

/// Votes needed for quorum among `voters`.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// What lets an empty member named `name`, advertising `peer_url`, join the running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin {
    /// Members that stand for the lost one: started under its name or its peer URL.
    pub remove: Vec<Member>,
    /// Whether it must be added, as a learner (false: an earlier run added it, and it has not
    /// started yet).
    pub add: bool,
}

impl Rejoin {
    /// The changes for `name` at `peer_url`, given the current `members`.
    pub fn plan(members: &[Member], name: &str, peer_url: &str) -> Self {
        let waiting = members.iter().any(|m| !m.started() && m.has_peer_url(peer_url));
        let remove = members
            .iter()
            .filter(|m| m.started() && (m.name == name || m.has_peer_url(peer_url)))
            .cloned()
            .collect();
        Self { remove, add: !waiting }
    }

    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && !self.add
    }

    /// Refuses the changes unless the members that answer (`answering`, by ID) keep quorum
    /// after the removals (the member is added as a learner, which does not vote): etcd would
    /// refuse too (strict reconfiguration), but this says why, names the members, and changes
    /// nothing.
    ///
    /// # Errors
    /// What quorum needs and which members answer.
    pub fn check(&self, members: &[Member], answering: &[Id]) -> Result<(), String> {
        // A member that answers is not lost: another host claims its name or address.
        if let Some(live) = self.remove.iter().find(|m| answering.contains(&m.id)) {
            return Err(format!(
                "member {live} answers, yet a controller with no etcd data claims its name or peer URL: \
                 each controller's etcd.env must be its own (node.etcd_env[i] for the i-th of etcd_servers, \
                 in the order of `controllers`). Members now:\n{}",
                listing(members)
            ));
        }
        let voters: Vec<&Member> = members
            .iter()
            .filter(|m| !m.is_learner && !self.remove.contains(m))
            .collect();
        let alive = voters.iter().filter(|m| answering.contains(&m.id)).count();
        let needed = quorum(voters.len());
        if self.remove.is_empty() || alive >= needed {
            return Ok(());
        }
        Err(format!(
            "etcd would lose quorum: after the removal it has {} voting members and needs {needed} \
             answering, but only {alive} of them answer. Members now:\n{}Bring the silent members \
             back first (or replace one controller per apply); if quorum is already lost, restore from a \
             snapshot (docs/guides/disaster-recovery.md#etcd-snapshots-and-lost-quorum)",
            voters.len(),
            listing(members)
        ))
    }
}

/// How long [`rejoin`] goes on trying a change that etcd refused or left unanswered: its
/// strict reconfiguration check wants the leader connected to a quorum for 5 s, and a leader
/// just elected (the lost member may have led) drops a membership change until it has applied
/// its log, so the call times out.
const RETRY_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the membership could not be made ready for the member's return.
#[derive(Debug, thiserror::Error)]
pub enum RejoinError {
    /// Too few members answer: nothing was changed by this step.
    #[error("{0}")]
    Quorum(String),
    /// etcd refused or did not answer for [`RETRY_WITHIN`].
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// What [`rejoin`] did, and what the joining member must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoined {
    /// The changes made, one line each; none when the membership was ready already.
    pub changes: Vec<String>,
    /// `ETCD_INITIAL_CLUSTER` for the joining member: etcd admits a member joining an
    /// existing cluster only when this lists exactly the current members' peer URLs.
    pub initial_cluster: String,
}

/// `name=url,…` of `members`, the joining one (not started, at `peer_url`) under `name`;
/// another member that has not started yet has no name, and gets a stand-in (etcd matches
/// the others by URL).
pub fn initial_cluster(members: &[Member], name: &str, peer_url: &str) -> String {
    members
        .iter()
        .flat_map(|m| {
            let who = if m.started() {
                m.name.clone()
            } else if m.has_peer_url(peer_url) {
                name.to_owned()
            } else {
                format!("pending-{}", m.id)
            };
            m.peer_urls.iter().map(move |u| format!("{who}={u}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The members no staying controller claims, by the name or the peer URL of its `etcd.env`
/// (`claims`: name, peer URL): those a shrink takes out, the last name first.
pub fn unclaimed(members: &[Member], claims: &[(String, String)]) -> Vec<Member> {
    let mut out: Vec<Member> = members
        .iter()
        .filter(|m| {
            !claims
                .iter()
                .any(|(name, url)| (m.started() && m.name == *name) || m.has_peer_url(url))
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| b.name.cmp(&a.name));
    out
}

/// Refuses removing `leaving` unless the voting members left keep quorum among those
/// `answering` (by ID): etcd would refuse as well, but this names the members.
///
/// # Errors
/// How many vote and answer, what quorum needs, and the members.
pub fn check_removal(members: &[Member], leaving: &Member, answering: &[Id]) -> Result<(), String> {
    let voters: Vec<&Member> = members.iter().filter(|m| !m.is_learner && m.id != leaving.id).collect();
    let alive = voters.iter().filter(|m| answering.contains(&m.id)).count();
    let needed = quorum(voters.len());
    if alive >= needed {
        return Ok(());
    }
    Err(format!(
        "removing member {leaving} leaves {} voting members, of which {alive} answer, and etcd needs {needed}. \
         Members now:\n{}",
        voters.len(),
        listing(members)
    ))
}

/// Makes the membership let an empty member named `name`, advertising `peer_url`, join:
/// through `client` (a member with quorum), one change at a time, each planned anew from the
/// member list (so a rerun, or a retry after a call that timed out, changes only what is left),
/// each checked against quorum with the members `answering` (by ID).
///
/// # Errors
/// [`RejoinError::Quorum`] before a change that would lose quorum; [`RejoinError::Etcd`].
pub async fn rejoin(client: &Client, name: &str, peer_url: &str, answering: &[Id]) -> Result<Rejoined, RejoinError> {
    let until = tokio::time::Instant::now() + RETRY_WITHIN;
    let mut changes = Vec::new();
    loop {
        let step = async {
            let members = client.members().await?;
            let plan = Rejoin::plan(&members, name, peer_url);
            if plan.is_empty() {
                return Ok(Err(members));
            }
            plan.check(&members, answering).map_err(RejoinError::Quorum)?;
            if let Some(m) = plan.remove.first() {
                client.remove_member(m.id).await?;
                Ok(Ok(format!("removed member {m}")))
            } else {
                let m = client.add_learner(peer_url).await?;
                Ok(Ok(format!("added learner {m}")))
            }
        };
        // Ok(Ok(change)): one made, look again; Ok(Err(members)): ready.
        match step.await {
            Ok(Err(members)) => {
                let initial_cluster = initial_cluster(&members, name, peer_url);
                return Ok(Rejoined {
                    changes,
                    initial_cluster,
                });
            }
            Ok(Ok(change)) => {
                tracing::info!(%change, "etcd membership changed");
                changes.push(change);
            }
            Err(RejoinError::Etcd(e)) if tokio::time::Instant::now() < until => {
                tracing::debug!(error = %e, "etcd membership change not made yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Promotes every learner that has started (etcd promotes only one in sync with the leader,
/// so refusals are retried), and with `awaited`, first waits for the member at that peer URL
/// to start; all until `until`. Returns the members promoted.
///
/// # Errors
/// Why not, for a person: etcd's last refusal, or the member list when `awaited` did not
/// become a started voting member in time.
pub async fn promote(
    client: &Client,
    awaited: Option<&str>,
    until: tokio::time::Instant,
) -> Result<Vec<Member>, String> {
    let mut promoted = Vec::new();
    loop {
        let late = tokio::time::Instant::now() >= until;
        let members = match client.members().await {
            Ok(m) => m,
            Err(e) if !late => {
                tracing::debug!(error = %e, "etcd member list failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        if let Some(m) = members.iter().find(|m| m.is_learner && m.started()) {
            match client.promote_member(m.id).await {
                Ok(()) => {
                    tracing::info!(member = %m, "etcd learner promoted");
                    promoted.push(m.clone());
                    continue;
                }
                Err(e) if late => return Err(format!("{m} is not promoted: {e}")),
                Err(e) => tracing::debug!(error = %e, member = %m, "etcd learner not promoted yet; retrying"),
            }
        } else {
            let done = awaited.is_none_or(|url| {
                members
                    .iter()
                    .any(|m| m.started() && !m.is_learner && m.has_peer_url(url))
            });
            if done {
                return Ok(promoted);
            }
            if late {
                return Err(format!(
                    "the member at {} has not started; the members are:\n{}",
                    awaited.unwrap_or_default(),
                    listing(&members)
                ));
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl Client {
    /// The members, as the leader knows them (a linearizable read: it fails without quorum).
    ///
    /// # Errors
    /// [`EtcdError::Call`].
    pub async fn members(&self) -> Result<Vec<Member>, EtcdError> {
        let mut cluster = self.cluster();
        let reply = self
            .unary(
                "Cluster.MemberList",
                cluster.member_list(pb::MemberListRequest { linearizable: true }),
            )
            .await?;
        Ok(reply.members.into_iter().map(Member::from).collect())
    }

    /// Adds a learner that will join under `peer_url`; returns it (not started yet).
    ///
    /// # Errors
    /// [`EtcdError::Call`], e.g. when another learner waits already.
    pub async fn add_learner(&self, peer_url: &str) -> Result<Member, EtcdError> {
        let mut cluster = self.cluster();
        let reply = self
            .unary(
                "Cluster.MemberAdd",
                cluster.member_add(pb::MemberAddRequest {
                    peer_ur_ls: vec![peer_url.to_owned()],
                    is_learner: true,
                }),
            )
            .await?;
        reply.member.map(Member::from).ok_or_else(|| EtcdError::Call {
            route: self.route().to_owned(),
            call: "Cluster.MemberAdd",
            message: "the answer names no member".into(),
        })
    }

    /// Makes the learner `id` a voting member.
    ///
    /// # Errors
    /// [`EtcdError::Call`], e.g. while it is not yet in sync with the leader.
    pub async fn promote_member(&self, id: Id) -> Result<(), EtcdError> {
        let mut cluster = self.cluster();
        self.unary(
            "Cluster.MemberPromote",
            cluster.member_promote(pb::MemberPromoteRequest { id: id.0 }),
        )
        .await
        .map(|_| ())
    }

    /// Removes the member `id`.
    ///
    /// # Errors
    /// [`EtcdError::Call`].
    pub async fn remove_member(&self, id: Id) -> Result<(), EtcdError> {
        let mut cluster = self.cluster();
        self.unary(
            "Cluster.MemberRemove",
            cluster.member_remove(pb::MemberRemoveRequest { id: id.0 }),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[u64]) -> Vec<Id> {
        n.iter().copied().map(Id).collect()
    }

    fn m(id: u64, name: &str, url: &str) -> Member {
        Member {
            id: Id(id),
            name: name.into(),
            peer_urls: vec![url.into()],
            is_learner: false,
        }
    }

    fn three() -> Vec<Member> {
        vec![
            m(1, "etcd0", "https://a:2380"),
            m(2, "etcd1", "https://b:2380"),
            m(3, "etcd2", "https://c:2380"),
        ]
    }

    fn claims(of: &[(&str, &str)]) -> Vec<(String, String)> {
        of.iter().map(|(n, u)| ((*n).to_owned(), (*u).to_owned())).collect()
    }

    #[test]
    fn a_shrink_takes_out_the_members_no_staying_controller_claims_last_first() {
        let staying = claims(&[("etcd0", "https://a:2380")]);
        let out = unclaimed(&three(), &staying);
        assert_eq!(
            out,
            vec![m(3, "etcd2", "https://c:2380"), m(2, "etcd1", "https://b:2380")]
        );
        // A member claimed by its peer URL alone (a learner that has not started) stays.
        let mut members = three();
        members[1].name.clear();
        let staying = claims(&[("etcd0", "https://a:2380"), ("etcd1", "https://b:2380")]);
        assert_eq!(unclaimed(&members, &staying), vec![m(3, "etcd2", "https://c:2380")]);
        assert!(unclaimed(
            &three(),
            &claims(&[
                ("etcd0", "https://a:2380"),
                ("etcd1", "https://b:2380"),
                ("etcd2", "https://c:2380")
            ])
        )
        .is_empty());
    }

    #[test]
    fn a_removal_needs_the_members_that_stay_to_answer_with_quorum() {
        let members = three();
        // 3 -> 2: both that stay must answer.
        assert_eq!(check_removal(&members, &members[2], &ids(&[1, 2])), Ok(()));
        let refused = check_removal(&members, &members[2], &ids(&[1])).unwrap_err();
        assert!(
            refused.contains("leaves 2 voting members, of which 1 answer, and etcd needs 2"),
            "{refused}"
        );
        assert!(refused.contains("etcd1"), "the members are listed: {refused}");
        // 2 -> 1, and never the last one.
        assert_eq!(check_removal(&members[..2], &members[1], &ids(&[1])), Ok(()));
        assert!(check_removal(&members[..1], &members[0], &ids(&[1])).is_err());
    }

    #[test]
    fn a_lost_member_is_removed_and_added_again_under_its_url() {
        let plan = Rejoin::plan(&three(), "etcd2", "https://c:2380");
        assert_eq!(plan.remove, vec![m(3, "etcd2", "https://c:2380")]);
        assert!(plan.add);
        assert_eq!(plan.check(&three(), &ids(&[1, 2])), Ok(()));
    }

    #[test]
    fn a_member_under_a_new_address_replaces_the_one_of_its_name() {
        let plan = Rejoin::plan(&three(), "etcd2", "https://d:2380");
        assert_eq!(plan.remove.iter().map(|m| m.id).collect::<Vec<_>>(), vec![Id(3)]);
        assert!(plan.add);
    }

    #[test]
    fn a_rerun_after_the_add_changes_nothing() {
        let mut members = three();
        members.pop();
        members.push(m(9, "", "https://c:2380"));
        let plan = Rejoin::plan(&members, "etcd2", "https://c:2380");
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_second_lost_member_of_three_is_refused_naming_the_members() {
        let plan = Rejoin::plan(&three(), "etcd2", "https://c:2380");
        let refused = plan.check(&three(), &ids(&[1])).unwrap_err();
        assert!(refused.contains("lose quorum"), "{refused}");
        assert!(refused.contains("needs 2 answering, but only 1"), "{refused}");
        for name in ["etcd0", "etcd1", "etcd2"] {
            assert!(refused.contains(name), "{refused}");
        }
    }

    #[test]
    fn a_member_that_answers_is_never_removed() {
        let plan = Rejoin::plan(&three(), "etcd1", "https://c:2380");
        let refused = plan.check(&three(), &ids(&[1, 2, 3])).unwrap_err();
        assert!(refused.contains("etcd1") && refused.contains("answers"), "{refused}");
    }

    #[test]
    fn the_only_member_cannot_be_replaced() {
        let one = vec![m(1, "etcd0", "https://a:2380")];
        let plan = Rejoin::plan(&one, "etcd0", "https://a:2380");
        assert!(plan.check(&one, &ids(&[])).is_err());
    }

    #[test]
    fn a_cluster_of_one_grows_one_learner_at_a_time() {
        let one = vec![m(1, "etcd0", "https://a:2380")];
        let second = Rejoin::plan(&one, "etcd1", "https://b:2380");
        assert!(second.remove.is_empty() && second.add);
        assert_eq!(second.check(&one, &ids(&[1])), Ok(()));
        let mut learner = m(2, "", "https://b:2380");
        learner.is_learner = true;
        let two = vec![m(1, "etcd0", "https://a:2380"), learner];
        assert!(Rejoin::plan(&two, "etcd1", "https://b:2380").is_empty());
        assert_eq!(
            initial_cluster(&two, "etcd1", "https://b:2380"),
            "etcd0=https://a:2380,etcd1=https://b:2380"
        );
        assert_eq!(
            initial_cluster(&two, "etcd2", "https://c:2380"),
            "etcd0=https://a:2380,pending-2=https://b:2380"
        );
    }

    #[test]
    fn five_members_take_two_replacements_in_turn() {
        let mut five = three();
        five.extend([m(4, "etcd3", "https://d:2380"), m(5, "etcd4", "https://e:2380")]);
        let first = Rejoin::plan(&five, "etcd3", "https://d:2380");
        assert_eq!(first.check(&five, &ids(&[1, 2, 3])), Ok(()));
        let mut after: Vec<Member> = five.into_iter().filter(|m| m.id != Id(4)).collect();
        after.push(m(6, "etcd3", "https://d:2380"));
        let second = Rejoin::plan(&after, "etcd4", "https://e:2380");
        assert_eq!(second.check(&after, &ids(&[1, 2, 3, 6])), Ok(()));
        assert!(second.check(&after, &ids(&[1, 2])).is_err());
    }
}
