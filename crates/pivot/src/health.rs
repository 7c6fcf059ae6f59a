//! What a refresh finds on the hosts when the user asks it to look
//! (`check_hosts_on_refresh`): node secrets that are missing or differ from the assets (a
//! wiped or replaced disk, a file removed by hand), and etcd members that do not answer,
//! have no leader or raise alarms. Reads only; the next apply delivers what is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_transport::{CancellationToken, Session};

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
    ready.fleet.close().await;
    Ok(findings)
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
