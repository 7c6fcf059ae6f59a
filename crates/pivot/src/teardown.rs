//! Teardown (`on_destroy = "teardown"`): remove this provider's files from
//! every host — the recovery apiserver, node secrets, any bootstrap leftovers, the state folder if it is
//! empty. Never touches anything else.

use std::collections::BTreeMap;

use selfhosted_transport::CancellationToken;

use crate::inventory::{Inventory, Role};
use crate::node_files;
use crate::paths::RemotePaths;
use crate::phase::{chain, Phase, PivotError};
use crate::preflight;

/// The provider's files on a host of `role`, in the order they go: on a controller the
/// recovery apiserver's static Pod first (the kubelet stops it), then what it reads, then the
/// node secrets.
pub(crate) fn host_paths(
    assets: &BTreeMap<String, String>,
    role: Role,
    paths: &RemotePaths,
    etcd_user: Option<&str>,
) -> Vec<String> {
    let secrets = node_files::node_secrets(assets, role, paths, etcd_user)
        .map(|f| {
            f.files
                .into_iter()
                .chain(f.triggers)
                .map(|s| s.path)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut files = match role {
        Role::Controller => node_files::recovery_paths(assets, paths),
        Role::Worker => Vec::new(),
    };
    files.extend(secrets);
    files
}

/// Removes this provider's files from every host.
///
/// # Errors
/// Preflight failures, or the hosts where removal failed.
pub async fn teardown(
    inventory: &Inventory,
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    // A teardown writes no keys: it needs no account of the SSH user.
    let inventory = &inventory.clone().with_authorized_keys(None);
    let ready = preflight::preflight(inventory, cancel).await?;
    let mut per_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, facts) in inventory.hosts().iter().zip(&ready.facts) {
        let mut files = host_paths(assets, host.role, paths, facts.etcd_user.as_deref());
        if host.name == inventory.bootstrap().name {
            files.extend(node_files::bootstrap_paths(assets, paths));
        }
        per_host.insert(host.name.clone(), files);
    }
    let per_host = &per_host;
    let state_dir = paths.state_dir.clone();
    let results = ready
        .fleet
        .for_each(cancel, |s| {
            let state_dir = state_dir.clone();
            async move {
                let files = per_host.get(s.host()).cloned().unwrap_or_default();
                let refs: Vec<&str> = files.iter().map(String::as_str).collect();
                s.remove(&refs).await.map_err(|e| chain(&e))?;
                // Never recursive: `state_dir` is a user input (`/etc` is a valid path), and
                // the provider keeps no files there; an empty folder goes, anything else stays.
                s.sudo(&format!(
                    "rmdir {} 2>/dev/null || true",
                    selfhosted_transport::session::shell_quote(&state_dir)
                ))
                .await
                .map_err(|e| chain(&e))?;
                Ok::<(), String>(())
            }
        })
        .await
        .map_err(|_| PivotError::new(Phase::Preflight, "cancelled"))?;
    ready.fleet.close().await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|why| format!("{name}: {why}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        let mut err = PivotError::new(
            Phase::RemoveBootstrap,
            format!("teardown failed on {} hosts", failed.len()),
        );
        for f in failed {
            err = err.with_evidence(f);
        }
        Err(err)
    }
}
