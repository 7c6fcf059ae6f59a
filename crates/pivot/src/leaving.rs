//! Controllers that leave the cluster in a shrink (the configuration dropped them from the end
//! of `controllers`). Each leaving host's recovery apiserver goes first: it would otherwise
//! start there once the host's apiserver stops, serving outside the cluster. Their nodes lose
//! the control-plane label, so the DaemonSets take their apiservers away before the hand-over
//! (which then knows only the controllers that stay); once their nodes are drained and
//! deleted and the apiservers use the new `etcd_servers`, their etcd members are removed
//! ([`crate::etcd_members::remove_unclaimed`]) and the cluster's files leave their hosts. A
//! host that cannot be reached (its machine already gone) leaves etcd and the API all the
//! same, and is named in a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_transport::Session;
use tokio::time::Instant;

use crate::api::{Api, APISERVER_PODS};
use crate::inventory::Role;
use crate::node_files;
use crate::paths::RemotePaths;
use crate::phase::{chain, Phase, PivotError};
use crate::procedure::{LeavingController, Warning};
use crate::teardown;

/// How long the leaving controllers' apiservers may take to stop once unlabelled.
const APISERVERS_GONE_WITHIN: Duration = Duration::from_secs(90);

/// What stops a leaving controller's services (the contract's units; not every host has all),
/// then moves its removed member's data aside (kept, never deleted): the same machine added
/// back later starts as an empty member, which the update lets join.
fn stop_services() -> String {
    format!(
        "systemctl disable --now etcd-member.path etcd-member.service kubelet.path kubelet.service >/dev/null 2>&1 || true; \
         if [ -d {dir} ]; then mv {dir} {dir}.removed-$(date -u +%Y%m%dT%H%M%SZ); fi",
        dir = crate::etcd_members::ETCD_MEMBER_DIR
    )
}

/// Pause between looks at the leaving controllers' apiserver pods.
const POLL: Duration = Duration::from_secs(1);

/// The controllers that leave, those reached over SSH, and why the others were not.
pub(crate) struct Leaving {
    /// Every leaving controller's node name.
    pub(crate) names: Vec<String>,
    sessions: Vec<Session>,
    unreachable: Vec<String>,
}

impl Leaving {
    /// Connects to each leaving controller that the prior state says how to reach.
    pub(crate) async fn connect(leaving: &[LeavingController]) -> Self {
        let mut out = Leaving {
            names: leaving.iter().map(|l| l.name.clone()).collect(),
            sessions: Vec::new(),
            unreachable: Vec::new(),
        };
        for l in leaving {
            let Some(spec) = &l.ssh else {
                out.unreachable
                    .push(format!("{}: no way to reach it is left (no host key)", l.name));
                continue;
            };
            match Session::connect(spec).await {
                Ok((session, _)) => out.sessions.push(session),
                Err(e) => out.unreachable.push(format!("{}: {}", l.name, chain(&e))),
            }
        }
        out
    }

    /// The sessions of the leaving controllers reached.
    pub(crate) fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// Whether a shrink is under way.
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Removes the recovery apiserver's static Pod from each reached host (the kubelet stops
    /// it), before anything stops the host's apiserver.
    ///
    /// # Errors
    /// A reached host where the removal failed: its recovery apiserver could start.
    pub(crate) async fn stand_down(
        &self,
        assets: &BTreeMap<String, String>,
        paths: &RemotePaths,
        phase: Phase,
    ) -> Result<(), PivotError> {
        let manifests: Vec<String> = node_files::recovery_apiserver(assets, paths)
            .map(|f| f.triggers.into_iter().map(|t| t.path).collect())
            .unwrap_or_default();
        let refs: Vec<&str> = manifests.iter().map(String::as_str).collect();
        for session in &self.sessions {
            session.remove(&refs).await.map_err(|e| {
                PivotError::on(
                    phase,
                    session.host(),
                    format!(
                        "this controller leaves the cluster, but its recovery apiserver's static Pod cannot be removed: {}",
                        chain(&e)
                    ),
                )
            })?;
            tracing::info!(
                phase = phase.name(),
                host = session.host(),
                "recovery apiserver of a leaving controller removed"
            );
        }
        Ok(())
    }

    /// Cordons the leaving nodes, deletes their control-plane pods, takes the control-plane
    /// label off them and waits (a while, then goes on) until no apiserver pod is left there.
    ///
    /// # Errors
    /// The API refusing the label change.
    pub(crate) async fn unlabel(&self, api: &Api, deadline: Instant) -> Result<(), PivotError> {
        let phase = Phase::LabelControllers;
        let client = api.waiter.client();
        for name in &self.names {
            // The control plane's Deployments (controller-manager, scheduler, approver) reach
            // the API on their host's 127.0.0.1, so on a leaving controller they stop working
            // once its apiserver goes, and a scale-down later may keep exactly those. Cordoned,
            // and those pods deleted while its apiserver still serves: their replacements go
            // to the controllers that stay, or wait, Pending, until the scale-down ends them.
            let drain_err = |e: selfhosted_cluster::drain::DrainError| PivotError::on(phase, name.clone(), chain(&e));
            if selfhosted_cluster::drain::cordon(client, name, selfhosted_cluster::drain::CordonFor::Removal)
                .await
                .map_err(drain_err)?
                .is_some()
            {
                let deleted = selfhosted_cluster::drain::delete_pods(client, name, "kube-system")
                    .await
                    .map_err(drain_err)?;
                tracing::info!(node = %name, ?deleted, "control-plane pods of a leaving controller deleted");
            }
            selfhosted_cluster::labels::unlabel_control_plane(client, name)
                .await
                .map_err(|e| PivotError::on(phase, name.clone(), chain(&e)))?;
        }
        let until = deadline.min(Instant::now() + APISERVERS_GONE_WITHIN);
        loop {
            let on: Vec<String> = selfhosted_cluster::workloads::placements(client, "kube-system", APISERVER_PODS)
                .await
                .map(|p| p.into_keys().filter(|n| self.names.contains(n)).collect())
                .unwrap_or_else(|e| vec![format!("(unknown: {})", chain(&e))]);
            if on.is_empty() {
                return Ok(());
            }
            if Instant::now() + POLL >= until {
                tracing::warn!(nodes = ?on, "apiservers of leaving controllers still there; going on");
                return Ok(());
            }
            if let Err(e) =
                selfhosted_cluster::lost::release_pods_on_lost_nodes(client, "kube-system", APISERVER_PODS).await
            {
                tracing::debug!(error = %chain(&e), "looking for apiserver pods on nodes that stopped reporting");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Once their nodes and etcd members are gone: removes the cluster's files from each
    /// reached host (never anything else), and stops and disables its etcd (which would fail
    /// to start again) and its kubelet (which would register a Node again when it restarts).
    ///
    /// # Errors
    /// A reached host where the removal failed.
    pub(crate) async fn clear(
        &self,
        assets: &BTreeMap<String, String>,
        paths: &RemotePaths,
        phase: Phase,
    ) -> Result<(), PivotError> {
        let files = teardown::host_paths(assets, Role::Controller, paths, None);
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        for session in &self.sessions {
            let host = session.host();
            session.remove(&refs).await.map_err(|e| {
                PivotError::on(
                    phase,
                    host,
                    format!(
                        "removing the cluster's files from this leaving controller: {}",
                        chain(&e)
                    ),
                )
            })?;
            session.sudo(&stop_services()).await.map_err(|e| {
                PivotError::on(
                    phase,
                    host,
                    format!(
                        "stopping etcd and the kubelet on this leaving controller: {}",
                        chain(&e)
                    ),
                )
            })?;
            tracing::info!(phase = phase.name(), host, "leaving controller cleared");
        }
        Ok(())
    }

    /// The warning for hosts that were not reached, if any.
    pub(crate) fn warning(&self) -> Option<Warning> {
        (!self.unreachable.is_empty()).then(|| Warning {
            summary: "selfhosted_bootstrap: leaving controllers not reached",
            detail: format!(
                "Their etcd members and nodes left the cluster, but the cluster's files stay on their disks, with \
                 credentials that still work, and a recovery apiserver that would start if the machine boots again. \
                 Destroy these machines (or wipe /etc/kubernetes, /etc/ssl/etcd and /var/lib/etcd):\n{}",
                self.unreachable
                    .iter()
                    .map(|u| format!("- {u}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        })
    }

    /// Closes the sessions.
    pub(crate) async fn close(&self) {
        for s in &self.sessions {
            s.close().await;
        }
    }
}
