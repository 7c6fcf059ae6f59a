//! The phases of the pivot, their log lines, and the one error type every
//! phase fails with: it names the phase, the host and the evidence, never
//! just "timed out".

use std::fmt;
use std::future::Future;
use std::time::Instant;

/// A step of the pivot or of an upgrade, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Every host reachable, sudo works, a kubelet is installed.
    Preflight,
    /// Upgrade: a snapshot of etcd, kept on a controller (and in the user's folder) before
    /// anything changes.
    EtcdSnapshot,
    /// Upgrade: a controller whose etcd data is gone gets its member replaced (removed, added
    /// again) before its node secrets start etcd there, and is awaited back in the cluster.
    EtcdMembers,
    /// Kubelet kubeconfig and CA to every host; etcd TLS to controllers.
    NodeSecrets,
    /// Bootstrap secrets and static Pods on the first controller.
    BootstrapControlPlane,
    /// The bootstrap apiserver answers `/readyz`.
    WaitForApiserver,
    /// Server-side apply of the self-hosted control plane.
    ApplyManifests,
    /// Controllers labelled `node-role.kubernetes.io/control-plane`.
    LabelControllers,
    /// Self-hosted apiserver, controller-manager and scheduler Ready; the apiserver answers by itself.
    WaitForSelfHosted,
    /// Bootstrap static Pods and secrets removed.
    RemoveBootstrap,
    /// Upgrade: a changed apiserver runs as a new generation beside the old one,
    /// answers by itself, then the old generation is removed.
    ApiserverHandOver,
    /// Upgrade: the other workloads applied one by one in order, each rollout awaited.
    RollOut,
    /// Upgrade: nodes of hosts no longer configured are cordoned, drained and deleted.
    RemoveNodes,
    /// The recovery apiserver's credentials and standby static Pod on every controller, so a
    /// rebooted controller brings the API back by itself.
    RecoveryApiserver,
    /// Upgrade: kubelets of the hosts reached move to the contract's kubelet image, one node
    /// at a time, controllers first (drained, moved, awaited Ready, uncordoned).
    Kubelets,
    /// Upgrade: controllers' etcd members move to the contract's etcd image, one at a time,
    /// the leader last, each awaited back with a leader at the new release.
    Etcd,
    /// The API answers from the self-hosted apiserver; leases held.
    Verify,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 17] = [
        Phase::Preflight,
        Phase::EtcdSnapshot,
        Phase::EtcdMembers,
        Phase::NodeSecrets,
        Phase::BootstrapControlPlane,
        Phase::WaitForApiserver,
        Phase::ApplyManifests,
        Phase::LabelControllers,
        Phase::WaitForSelfHosted,
        Phase::RemoveBootstrap,
        Phase::ApiserverHandOver,
        Phase::RollOut,
        Phase::RemoveNodes,
        Phase::RecoveryApiserver,
        Phase::Kubelets,
        Phase::Etcd,
        Phase::Verify,
    ];

    /// The phase's name in logs, errors and state.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::EtcdSnapshot => "etcd-snapshot",
            Phase::EtcdMembers => "etcd-members",
            Phase::NodeSecrets => "node-secrets",
            Phase::BootstrapControlPlane => "bootstrap-control-plane",
            Phase::WaitForApiserver => "wait-for-apiserver",
            Phase::ApplyManifests => "apply-manifests",
            Phase::LabelControllers => "label-controllers",
            Phase::WaitForSelfHosted => "wait-for-self-hosted",
            Phase::RemoveBootstrap => "remove-bootstrap",
            Phase::ApiserverHandOver => "apiserver-hand-over",
            Phase::RollOut => "roll-out",
            Phase::RemoveNodes => "remove-nodes",
            Phase::RecoveryApiserver => "recovery-apiserver",
            Phase::Kubelets => "kubelets",
            Phase::Etcd => "etcd",
            Phase::Verify => "verify",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed phase: where, on which host, what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{phase}{}: {message}", host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default())]
pub struct PivotError {
    /// The phase that failed.
    pub phase: Phase,
    /// The host it failed on, if one.
    pub host: Option<String>,
    /// What failed, for a person.
    pub message: String,
    /// What was seen: command output, pod status, events, log tails.
    pub evidence: Vec<String>,
}

impl PivotError {
    /// A failure of `phase` on `host`.
    pub fn on(phase: Phase, host: impl Into<String>, message: impl Into<String>) -> Self {
        PivotError {
            phase,
            host: Some(host.into()),
            message: message.into(),
            evidence: Vec::new(),
        }
    }

    /// A failure of `phase` not tied to one host.
    pub fn new(phase: Phase, message: impl Into<String>) -> Self {
        PivotError {
            phase,
            host: None,
            message: message.into(),
            evidence: Vec::new(),
        }
    }

    /// Adds evidence.
    #[must_use]
    pub fn with_evidence(mut self, evidence: impl Into<String>) -> Self {
        self.evidence.push(evidence.into());
        self
    }

    /// The message and its evidence, for a diagnostic's detail.
    pub fn detail(&self) -> String {
        let mut out = self.to_string();
        for e in &self.evidence {
            out.push_str("\n\n");
            out.push_str(e);
        }
        out
    }
}

/// The full chain of an error, one line.
pub use selfhosted_cluster::retry::error_chain as chain;

/// Runs one phase, logging its start and its end with the duration.
pub async fn run<T, F>(phase: Phase, work: F) -> Result<T, PivotError>
where
    F: Future<Output = Result<T, PivotError>>,
{
    let started = Instant::now();
    tracing::info!(phase = phase.name(), "phase started");
    let result = work.await;
    let elapsed = started.elapsed();
    match &result {
        Ok(_) => tracing::info!(phase = phase.name(), seconds = elapsed.as_secs_f64(), "phase done"),
        Err(e) => tracing::warn!(phase = phase.name(), seconds = elapsed.as_secs_f64(), error = %e, "phase failed"),
    }
    result
}

/// The last 30 lines of `unit`'s journal on a host, for evidence (`what`: whose log, e.g.
/// "kubelet").
pub(crate) async fn journal_tail(session: &selfhosted_transport::Session, unit: &str, what: &str) -> String {
    let script = format!("journalctl -u {unit} -n 30 --no-pager 2>/dev/null | tail -n 30");
    match session.sudo(&script).await {
        Ok(out) if !out.stdout_text().trim().is_empty() => {
            format!("{what} log on {}:\n{}", session.host(), out.stdout_text())
        }
        _ => format!("{what} log on {}: none found (journalctl -u {unit})", session.host()),
    }
}
