//! What a refresh finds on the hosts when the user asks it to look
//! (`check_hosts_on_refresh`): node secrets that are missing or differ from the assets (a
//! wiped or replaced disk, a file removed by hand), etcd members that do not answer, have no
//! leader or raise alarms, and controllers that serve from their recovery apiserver long after
//! a hand-back would have happened. Reads only; the next apply delivers what is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_transport::{CancellationToken, Session};

use selfhosted_cluster::recovery;

use crate::etcd_snapshot::{credentials, member_status};
use crate::inventory::{Host, Inventory, Role};
use crate::node_files;
use crate::paths::RemotePaths;
use crate::phase::{chain, PivotError};
use crate::preflight;

/// Something a host shows that the last apply did not leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The host.
    pub host: String,
    /// What is wrong, for a person, with what to do.
    pub what: String,
    /// Whether an update fixes it (node files it delivers again).
    pub update_fixes: bool,
}

/// How long a check keeps retrying a host's SSH connection (an apply waits for booting hosts;
/// a check reports a host out of reach instead).
const CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// `inventory` with every connect timeout at most [`CONNECT_WITHIN`].
fn impatient(inventory: &Inventory) -> Inventory {
    let capped = |role: Role| -> Vec<Host> {
        inventory
            .hosts()
            .iter()
            .filter(|h| h.role == role)
            .map(|h| {
                let mut h = h.clone();
                h.ssh.connect_timeout = h.ssh.connect_timeout.min(CONNECT_WITHIN);
                h
            })
            .collect()
    };
    Inventory::try_new(capped(Role::Controller), capped(Role::Worker)).unwrap_or_else(|_| inventory.clone())
}

/// Checks every host; `Err` when a host cannot be reached or checked at all (the preflight's
/// error, naming each host).
///
/// # Errors
/// A [`PivotError`] of the preflight, or of a host whose files cannot be read.
pub async fn check(
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    api_port: u16,
    cancel: &CancellationToken,
) -> Result<Vec<Finding>, PivotError> {
    let inventory = &impatient(inventory);
    let ready = preflight::preflight(inventory, cancel).await?;
    let mut findings = Vec::new();
    for (host, (session, facts)) in inventory
        .hosts()
        .iter()
        .zip(ready.fleet.sessions().iter().zip(&ready.facts))
    {
        let expected = node_files::node_secrets(assets, host.role, paths, facts.etcd_user.as_deref())
            .map_err(|e| PivotError::new(crate::Phase::Preflight, e.to_string()))?;
        let all: Vec<_> = expected.files.into_iter().chain(expected.triggers).collect();
        match session.differing(&all).await {
            Ok(differ) if differ.is_empty() => {}
            Ok(differ) => findings.push(Finding {
                host: host.name.clone(),
                what: format!(
                    "node secrets missing or changed since the last apply: {} (a wiped or replaced disk, or files changed by hand); the next apply delivers them again",
                    differ.join(", ")
                ),
                update_fixes: true,
            }),
            Err(e) => findings.push(Finding {
                host: host.name.clone(),
                what: format!("cannot read its node secrets: {}", chain(&e)),
                update_fixes: false,
            }),
        }
    }
    let controllers = crate::api::controller_sessions(inventory, ready.fleet.sessions());
    findings.extend(silent_etcd_members(&controllers, assets).await);
    findings.extend(stuck_on_recovery(&controllers, assets, api_port, cancel).await);
    ready.fleet.close().await;
    Ok(findings)
}

/// How long a recovery apiserver serves before a check names it: a rebooted controller's hands
/// back within 15-36 s (`docs/guides/disaster-recovery.md`), so one serving a minute is not
/// on its way back by itself.
pub const STUCK_ON_RECOVERY_AFTER: Duration = Duration::from_secs(60);
/// How long the look at the recovery pods may take, the tunnel included.
const RECOVERY_LOOK_WITHIN: Duration = Duration::from_secs(20);

/// The controllers that have served from their recovery apiserver for longer than
/// [`STUCK_ON_RECOVERY_AFTER`], each with the evidence (the hand-back's log, the self-hosted
/// apiserver pod's status and events). Their mirror pod is Ready and the API answers, so
/// nothing else tells. An update applies the contract's manifests again, which brings back a
/// self-hosted apiserver changed by hand; one that cannot start for another reason (an image
/// gone from its registry) is named again by the update's `verify`. The API is asked through
/// the first controller that lets a tunnel to its apiserver port open.
async fn stuck_on_recovery(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    api_port: u16,
    cancel: &CancellationToken,
) -> Vec<Finding> {
    let at = controllers.first().map(|s| s.host().to_owned()).unwrap_or_default();
    let unanswered = |why: String| {
        vec![Finding {
            host: at.clone(),
            what: format!("the API did not answer, so no recovery apiserver was looked for: {why}"),
            update_fixes: false,
        }]
    };
    let look = tokio::time::timeout(
        RECOVERY_LOOK_WITHIN,
        recovery_pods(controllers, assets, api_port, cancel),
    );
    let (client, pods) = match look.await {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return unanswered(why),
        Err(_) => return unanswered(format!("no answer within {} s", RECOVERY_LOOK_WITHIN.as_secs())),
    };
    let mut findings = Vec::new();
    for (node, pod) in pods {
        let serving_for = pod.serving_since.and_then(|t| {
            let secs = selfhosted_cluster::Timestamp::now().duration_since(t).as_secs();
            u64::try_from(secs).ok().map(Duration::from_secs)
        });
        let Some(serving_for) = serving_for.filter(|d| *d >= STUCK_ON_RECOVERY_AFTER) else {
            continue;
        };
        if !controllers.iter().any(|s| s.host() == node) {
            continue;
        }
        // Found is found: the evidence is best effort, within its own time.
        let evidence = tokio::time::timeout(
            RECOVERY_LOOK_WITHIN,
            recovery::evidence(&client, &node, &pod, crate::api::APISERVER_PODS),
        )
        .await
        .unwrap_or_else(|_| {
            format!(
                "{node}: its evidence was not read within {} s",
                RECOVERY_LOOK_WITHIN.as_secs()
            )
        });
        findings.push(Finding {
            host: node,
            what: format!(
                "it has served from its recovery apiserver (static pod kube-apiserver-recovery) for {} s: its \
                 self-hosted apiserver never took over (its pod cannot start, or never answered as itself); the \
                 next apply applies the control plane's manifests again and names what still stands in the way; \
                 see docs/guides/disaster-recovery.md.\n{}",
                serving_for.as_secs(),
                evidence.trim_end()
            ),
            update_fixes: true,
        });
    }
    findings
}

/// The recovery pods by node, asked through the first controller that lets a tunnel to its
/// apiserver port open, with the client that asked.
async fn recovery_pods(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    api_port: u16,
    cancel: &CancellationToken,
) -> Result<(selfhosted_cluster::Client, BTreeMap<String, recovery::RecoveryPod>), String> {
    let creds = crate::api::credentials(assets, crate::Phase::Preflight).map_err(|e| e.message)?;
    let mut last = "no controller".to_owned();
    for session in controllers {
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        match crate::api::dialer_until(session, &["127.0.0.1"], api_port, until, cancel).await {
            Ok(dialer) => {
                let client = crate::api::tunnel_client(dialer, api_port, &creds).map_err(|e| chain(&e))?;
                let pods = recovery::recovery_pods(&client)
                    .await
                    .map_err(|e| selfhosted_cluster::retry::api_message(&e))?;
                return Ok((client, pods));
            }
            Err(e) => last = format!("{}: {e}", session.host()),
        }
    }
    Err(format!("no controller's apiserver port could be reached ({last})"))
}

/// The etcd members on `controllers` that do not answer, have no leader or raise alarms.
pub async fn silent_etcd_members(controllers: &[&Session], assets: &BTreeMap<String, String>) -> Vec<Finding> {
    let creds = match credentials(assets) {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding {
                host: controllers.first().map(|s| s.host().to_owned()).unwrap_or_default(),
                what: e.message,
                update_fixes: false,
            }]
        }
    };
    let mut findings = Vec::new();
    for session in controllers {
        if let Some(what) = etcd_member(session, &creds).await {
            findings.push(Finding {
                host: session.host().to_owned(),
                what,
                update_fixes: false,
            });
        }
    }
    findings
}

/// What is wrong with the etcd member on `session`'s host, if anything.
async fn etcd_member(session: &Session, creds: &selfhosted_etcd::Credentials) -> Option<String> {
    let advice = "if its data folder /var/lib/etcd is empty (a wiped or replaced disk), the next update \
                  replaces its member; see docs/guides/disaster-recovery.md#a-controller-whose-etcd-data-is-gone";
    match member_status(session, creds).await.map(|(_, s)| s) {
        Err(why) => Some(format!("its etcd member does not answer: {why}; {advice}")),
        Ok(s) if !s.has_leader => Some(format!(
            "its etcd member {} has no leader (quorum lost?); {advice}",
            s.member_id
        )),
        Ok(s) if !s.errors.is_empty() => Some(format!(
            "its etcd member {} reports: {}",
            s.member_id,
            s.errors.join("; ")
        )),
        Ok(_) => None,
    }
}
