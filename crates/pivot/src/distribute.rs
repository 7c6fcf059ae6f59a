//! Files to hosts: node secrets to every host in parallel, and the bootstrap
//! control plane to the first controller. Uploads are atomic and skip
//! identical files, so a rerun changes nothing.

use std::collections::BTreeMap;

use selfhosted_transport::{CancellationToken, Session};

use crate::inventory::{Host, Inventory};
use crate::login_keys;
use crate::node_files::{self, HostFiles};
use crate::paths::RemotePaths;
use crate::phase::{chain, Phase, PivotError};
use crate::preflight::{HostFacts, Ready};

/// What a distribution changed, per host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Host name → paths written.
    pub written: BTreeMap<String, Vec<String>>,
}

impl Changes {
    /// Number of files written on all hosts.
    pub fn count(&self) -> usize {
        self.written.values().map(Vec::len).sum()
    }
}

async fn place(session: &Session, files: &HostFiles) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    let report = session.upload(&files.files).await.map_err(|e| chain(&e))?;
    written.extend(report.changed);
    if let Some(now) = &files.now {
        session.sudo(now).await.map_err(|e| chain(&e))?;
    }
    let report = session.upload(&files.triggers).await.map_err(|e| chain(&e))?;
    written.extend(report.changed);
    Ok(written)
}

/// Node secrets to every host: kubelet kubeconfig and CA everywhere, etcd
/// TLS on controllers; trigger files last on each host.
///
/// # Errors
/// [`Phase::NodeSecrets`], naming every host that failed.
pub async fn node_secrets(
    ready: &Ready,
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    cancel: &CancellationToken,
) -> Result<Changes, PivotError> {
    let mut plans = BTreeMap::new();
    for (host, facts) in inventory.hosts().iter().zip(&ready.facts) {
        plans.insert(
            host.name.clone(),
            host_secrets(host, facts, inventory, assets, paths, Phase::NodeSecrets)?,
        );
    }
    place_on_fleet(ready, &plans, Phase::NodeSecrets, cancel).await
}

/// The node secrets of one host, for its role and what preflight found on it.
/// With the SSH user's authorized keys when the provider keeps them.
fn host_secrets(
    host: &Host,
    facts: &HostFacts,
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    phase: Phase,
) -> Result<HostFiles, PivotError> {
    let secrets = node_files::node_secrets(assets, host.role, paths, facts.etcd_user.as_deref())
        .map_err(|e| PivotError::on(phase, &host.name, e.to_string()))?;
    match (inventory.authorized_keys(), &facts.account) {
        (Some(keys), Some(account)) => {
            let keys = login_keys::files(keys, account).map_err(|why| PivotError::on(phase, &host.name, why))?;
            Ok(secrets.and(keys))
        }
        (Some(_), None) => Err(PivotError::on(
            phase,
            &host.name,
            "preflight did not read the SSH user's account; this is a bug",
        )),
        (None, _) => Ok(secrets),
    }
}

/// [`node_secrets`] of the one host `session` reaches: a controller whose etcd member must
/// have joined before the next one is added. Returns the paths written.
///
/// # Errors
/// `phase`, naming the host.
pub async fn node_secrets_of(
    session: &Session,
    ready: &Ready,
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    phase: Phase,
) -> Result<Vec<String>, PivotError> {
    let (host, facts) = inventory
        .hosts()
        .iter()
        .zip(&ready.facts)
        .find(|(h, _)| h.name == session.host())
        .ok_or_else(|| PivotError::on(phase, session.host(), "not in the inventory"))?;
    let files = host_secrets(host, facts, inventory, assets, paths, phase)?;
    place(session, &files)
        .await
        .map_err(|why| PivotError::on(phase, session.host(), why))
}

/// Each host's files of `plans` (by host name) on the hosts in parallel; hosts without a plan
/// get nothing.
async fn place_on_fleet(
    ready: &Ready,
    plans: &BTreeMap<String, HostFiles>,
    phase: Phase,
    cancel: &CancellationToken,
) -> Result<Changes, PivotError> {
    let results = ready
        .fleet
        .for_each(cancel, |s| async move {
            match plans.get(s.host()) {
                Some(files) => place(&s, files).await,
                None => Ok(Vec::new()),
            }
        })
        .await
        .map_err(|_| PivotError::new(phase, "cancelled"))?;
    collect(phase, results)
}

fn collect(phase: Phase, results: Vec<(String, Result<Vec<String>, String>)>) -> Result<Changes, PivotError> {
    let mut changes = Changes::default();
    let mut failed = Vec::new();
    for (name, r) in results {
        match r {
            Ok(w) => {
                changes.written.insert(name, w);
            }
            Err(why) => failed.push((name, why)),
        }
    }
    match failed.as_slice() {
        [] => Ok(changes),
        [(name, why)] => Err(PivotError::on(phase, name.clone(), why.clone())),
        _ => {
            let mut err = PivotError::new(phase, format!("{} hosts failed", failed.len()));
            for (name, why) in failed {
                err = err.with_evidence(format!("{name}: {why}"));
            }
            Err(err)
        }
    }
}

/// The bootstrap control plane on the first controller: its credentials,
/// then its static Pods.
///
/// # Errors
/// [`Phase::BootstrapControlPlane`] naming the host.
pub async fn bootstrap_control_plane(
    session: &Session,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
) -> Result<Vec<String>, PivotError> {
    let files = node_files::bootstrap_control_plane(assets, paths)
        .map_err(|e| PivotError::new(Phase::BootstrapControlPlane, e.to_string()))?;
    place(session, &files)
        .await
        .map_err(|why| PivotError::on(Phase::BootstrapControlPlane, session.host(), why))
}

/// The recovery apiserver on every controller: credentials, then its standby static Pod.
/// Run after every pivot and upgrade, so what it would start after a reboot is the current
/// apiserver with the current certificates.
///
/// # Errors
/// [`Phase::RecoveryApiserver`], naming every host that failed.
pub async fn recovery_apiserver(
    ready: &Ready,
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    cancel: &CancellationToken,
) -> Result<Changes, PivotError> {
    let phase = Phase::RecoveryApiserver;
    let files = node_files::recovery_apiserver(assets, paths).map_err(|e| PivotError::new(phase, e.to_string()))?;
    let plans = inventory
        .controllers()
        .map(|h| (h.name.clone(), files.clone()))
        .collect();
    place_on_fleet(ready, &plans, phase, cancel).await
}

/// Removes the bootstrap control plane (static Pods first, then secrets).
///
/// # Errors
/// [`Phase::RemoveBootstrap`] naming the host.
pub async fn remove_bootstrap(
    session: &Session,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
) -> Result<Vec<String>, PivotError> {
    migrate_queued_connections(session, Phase::RemoveBootstrap).await?;
    let all = node_files::bootstrap_paths(assets, paths);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    session
        .remove(&refs)
        .await
        .map_err(|e| PivotError::on(Phase::RemoveBootstrap, session.host(), chain(&e)))
}

/// Waits until no process of the bootstrap control plane runs on the host any more (the
/// kubelet stops static Pods a moment after their manifests go): their command lines name
/// the bootstrap credentials folder.
///
/// # Errors
/// [`Phase::RemoveBootstrap`] naming the host and the processes left at the deadline.
pub async fn bootstrap_processes_gone(
    session: &Session,
    paths: &RemotePaths,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let phase = Phase::RemoveBootstrap;
    let dir = paths.bootstrap_secrets_dir.trim_end_matches('/');
    let command = format!(
        "pgrep -a -f -- {} || true",
        selfhosted_transport::session::shell_quote(&format!("={dir}/"))
    );
    loop {
        let out = session
            .sudo(&command)
            .await
            .map_err(|e| PivotError::on(phase, session.host(), chain(&e)))?;
        let left = out.stdout_text();
        // pgrep may list the shell that runs it: only other processes count.
        let left: Vec<&str> = left.lines().filter(|l| !l.contains("pgrep")).collect();
        if left.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() + BOOTSTRAP_POLL >= deadline || cancel.is_cancelled() {
            return Err(PivotError::on(
                phase,
                session.host(),
                "the bootstrap control plane's processes still run after their static Pods were removed",
            )
            .with_evidence(left.join("\n")));
        }
        tokio::time::sleep(BOOTSTRAP_POLL).await;
    }
}

/// Pause between looks for bootstrap processes.
const BOOTSTRAP_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Two apiservers share the port (SO_REUSEPORT) during a hand-over. When the
/// leaving one closes its listener, connections the kernel already queued on
/// it would be reset; with `tcp_migrate_req` (Linux 5.14+) they move to the
/// staying apiserver's listener instead. A no-op where unsupported; it stays
/// enabled, as every later hand-over needs it too.
///
/// # Errors
/// `phase` on the host, when the command cannot run.
pub async fn migrate_queued_connections(session: &Session, phase: Phase) -> Result<(), PivotError> {
    session
        .sudo(MIGRATE_QUEUED_CONNECTIONS)
        .await
        .map(|_| ())
        .map_err(|e| PivotError::on(phase, session.host(), chain(&e)))
}

/// Enables `net.ipv4.tcp_migrate_req` where the kernel has it.
const MIGRATE_QUEUED_CONNECTIONS: &str =
    "p=/proc/sys/net/ipv4/tcp_migrate_req; if [ -w \"$p\" ]; then echo 1 > \"$p\"; fi";
