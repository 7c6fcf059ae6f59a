//! What the pivot and the upgrade have in common, kept apart from both so
//! that neither depends on the other: their inputs, their phases, what they
//! report, and the helpers their steps share (a deadline around an apply,
//! a host's pod logs as evidence). [`crate::run`] runs either one.

use std::collections::BTreeMap;

use selfhosted_cluster::Waiter;
use selfhosted_transport::{CancellationToken, LearnedHostKey, Session};
use tokio::time::Instant;

use crate::paths::RemotePaths;
use crate::phase::{chain, Phase, PivotError};

/// How the provider reaches the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAccess {
    /// An SSH tunnel to the bootstrap controller's `127.0.0.1:<port>` (works from CI runners behind
    /// NAT): each connection an SSH channel opened in-process, with no local port to reach it by.
    Tunnel,
    /// Straight to the server URL's host.
    Direct {
        /// Host name or address to dial.
        host: String,
    },
}

/// Inputs of the pivot and of the upgrade.
#[derive(Debug, Clone)]
pub struct PivotParams {
    /// `selfhosted_cluster_assets.assets`.
    pub assets: BTreeMap<String, String>,
    /// Remote paths.
    pub paths: RemotePaths,
    /// How to reach the API.
    pub access: ApiAccess,
    /// The apiserver port.
    pub api_port: u16,
    /// When the whole operation must be done (from the `timeouts` block).
    pub deadline: Instant,
    /// Good answers in a row the self-hosted apiserver must give by itself before teardown.
    pub consecutive_answers: u32,
    /// Nodes whose hosts left the configuration since the last apply (an update drains and
    /// deletes them; the hosts themselves are not contacted).
    pub removed_nodes: Vec<String>,
    /// Controllers the configuration dropped from the end of its list (a shrink): the update
    /// takes their etcd members out and clears their hosts (also named in `removed_nodes`).
    pub leaving_controllers: Vec<LeavingController>,
    /// A local folder that also keeps each etcd snapshot an update takes.
    pub etcd_snapshot_dir: Option<std::path::PathBuf>,
    /// The snapshot an earlier, failed run of this same update took (its path on the host):
    /// the rerun keeps it rather than take one of the half-changed cluster, so reruns never
    /// rotate the state from before the change out of the controller's newest three.
    pub earlier_snapshot: Option<String>,
    /// Workers whose kubelets may move at once (drained together); controllers move one at
    /// a time.
    pub kubelet_max_unavailable: usize,
}

/// A controller that leaves the cluster in a shrink.
#[derive(Debug, Clone)]
pub struct LeavingController {
    /// Its node name.
    pub name: String,
    /// How to reach it, when the prior state still says (its machine may already be gone).
    pub ssh: Option<selfhosted_transport::HostSpec>,
}

/// What the pivot or the upgrade did, also when it failed part-way.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The last phase that completed.
    pub reached: Option<Phase>,
    /// Host keys accepted on first use.
    pub learned: Vec<LearnedHostKey>,
    /// The API endpoint used (`https://…`, or the tunnel's description).
    pub api_endpoint: String,
    /// Digest of the applied manifests.
    pub applied_digest: String,
    /// Observed control-plane versions, by component.
    pub versions: BTreeMap<String, String>,
    /// Each node's kubelet version once the run verified the cluster: what the plan of the
    /// next version change compares against.
    pub kubelets: BTreeMap<String, String>,
    /// Each controller's etcd release (host → version) once the run verified the cluster:
    /// what the plan of the next etcd image change compares against.
    pub etcd: BTreeMap<String, String>,
    /// What the user should know though nothing failed (nodes that stopped reporting, etcd
    /// members that do not answer): Terraform shows them as warnings.
    pub warnings: Vec<Warning>,
    /// The etcd snapshot this update took before changing anything.
    pub etcd_snapshot: Option<crate::etcd_snapshot::SnapshotRecord>,
}

/// A warning of a run that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One line: what kind of thing.
    pub summary: &'static str,
    /// What was seen and what to do.
    pub detail: String,
}

/// The procedures that share preflight and the fleet of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Procedure {
    /// The first, one-time pivot ([`crate::run::create`]).
    Pivot,
    /// A later change to the self-hosted cluster ([`crate::run::update`]).
    Upgrade,
}

impl Procedure {
    /// Whether this procedure runs `phase`; it runs its phases in [`Phase::ALL`]'s order.
    fn runs(self, phase: Phase) -> bool {
        match phase {
            Phase::BootstrapControlPlane | Phase::WaitForSelfHosted | Phase::RemoveBootstrap => {
                self == Procedure::Pivot
            }
            Phase::EtcdSnapshot
            | Phase::EtcdMembers
            | Phase::ApiserverHandOver
            | Phase::RollOut
            | Phase::RemoveNodes
            | Phase::Kubelets
            | Phase::Etcd => self == Procedure::Upgrade,
            Phase::Preflight
            | Phase::NodeSecrets
            | Phase::WaitForApiserver
            | Phase::ApplyManifests
            | Phase::LabelControllers
            | Phase::RecoveryApiserver
            | Phase::Verify => true,
        }
    }

    /// The phase under way when the last one completed was `reached`.
    pub(crate) fn after(self, reached: Option<Phase>) -> Phase {
        let mut phases = Phase::ALL.into_iter().filter(|p| self.runs(*p));
        let Some(reached) = reached.filter(|r| self.runs(*r)) else {
            return Phase::Preflight;
        };
        phases
            .by_ref()
            .find(|p| *p == reached)
            .and_then(|_| phases.next())
            .unwrap_or(Phase::Verify)
    }
}

/// Runs an apply under the deadline and the cancel token, naming what it last saw when either ends it.
pub(crate) async fn bounded<T, E: std::error::Error>(
    waiter: &Waiter,
    phase: Phase,
    deadline: Instant,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, PivotError> {
    tokio::select! {
        r = work => r.map_err(|e| PivotError::new(phase, chain(&e))),
        () = tokio::time::sleep_until(deadline) => Err(PivotError::new(
            phase,
            format!("timed out; last observed: {}", waiter.progress().last()),
        )),
        () = cancel.cancelled() => Err(PivotError::new(phase, "cancelled")),
    }
}

/// The tail of a static or self-hosted pod's container logs on a host, read
/// over SSH (the API may be down): the apiserver's own error lines.
pub async fn host_pod_logs(session: &Session, pod_prefix: &str) -> String {
    let script = format!(
        "for f in /var/log/pods/kube-system_{pod_prefix}*/*/*.log; do [ -f \"$f\" ] || continue; echo \"== $f\"; tail -n 25 \"$f\"; done 2>/dev/null | tail -n 120"
    );
    match session.sudo(&script).await {
        Ok(out) if !out.stdout_text().trim().is_empty() => {
            format!(
                "container logs on {} ({pod_prefix}…):\n{}",
                session.host(),
                out.stdout_text().trim_end()
            )
        }
        Ok(_) => format!(
            "no container logs of {pod_prefix}… on {} yet (the kubelet has not started it)",
            session.host()
        ),
        Err(e) => format!("could not read logs on {}: {}", session.host(), chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_under_way_follows_the_last_one_reached() {
        assert_eq!(Procedure::Pivot.after(None), Phase::Preflight);
        assert_eq!(
            Procedure::Pivot.after(Some(Phase::NodeSecrets)),
            Phase::BootstrapControlPlane
        );
        assert_eq!(
            Procedure::Upgrade.after(Some(Phase::LabelControllers)),
            Phase::ApiserverHandOver
        );
        assert_eq!(Procedure::Pivot.after(Some(Phase::Verify)), Phase::Verify);
        assert_eq!(Procedure::Upgrade.after(Some(Phase::RemoveBootstrap)), Phase::Preflight);
    }

    /// Each procedure's phases, walked from the start as a resumed apply would.
    fn walk(p: Procedure) -> Vec<Phase> {
        let mut out = vec![p.after(None)];
        while *out.last().unwrap() != Phase::Verify {
            out.push(p.after(out.last().copied()));
        }
        out
    }

    #[test]
    fn each_procedure_runs_its_phases_in_order() {
        use Phase::*;
        assert_eq!(
            walk(Procedure::Pivot),
            [
                Preflight,
                NodeSecrets,
                BootstrapControlPlane,
                WaitForApiserver,
                ApplyManifests,
                LabelControllers,
                WaitForSelfHosted,
                RemoveBootstrap,
                RecoveryApiserver,
                Verify
            ]
        );
        assert_eq!(
            walk(Procedure::Upgrade),
            [
                Preflight,
                EtcdSnapshot,
                EtcdMembers,
                NodeSecrets,
                WaitForApiserver,
                ApplyManifests,
                LabelControllers,
                ApiserverHandOver,
                RollOut,
                RemoveNodes,
                RecoveryApiserver,
                Kubelets,
                Etcd,
                Verify
            ]
        );
    }
}
