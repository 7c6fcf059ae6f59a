//! The self-hosted pivot, phase by phase (design notes section 3). Each
//! phase is idempotent, so a rerun after any failure — including a provider
//! killed mid-pivot that left the bootstrap control plane behind — converges.
//!
//! The provider reaches the API through an SSH tunnel to the bootstrap
//! controller (or directly), and confirms that the self-hosted apiserver
//! answers by itself — by its own serving certificate, several answers in a
//! row — before it removes the bootstrap control plane: with port sharing, a
//! Ready pod alone can lie.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_transport::{CancellationToken, LearnedHostKey, Session};
use tokio::time::Instant;

pub use crate::api::ApiAccess;
use crate::api::{self, Api, Expect, APISERVER_PODS};
use crate::distribute;
use crate::inventory::{Inventory, Role};
use crate::paths::RemotePaths;
use crate::phase::{self, chain, Phase, PivotError};
use crate::preflight::{self, Ready};
use crate::upgrade;

/// Inputs of the pivot.
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
}

/// What the pivot did, also when it failed part-way.
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

/// Runs the whole pivot. On failure returns what was done so far with the error.
///
/// # Errors
/// The failed phase, host and evidence, with the [`Outcome`] reached.
pub async fn create(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    run(inventory, params, cancel, Procedure::Pivot).await
}

/// The procedures that share preflight and the fleet of sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Procedure {
    /// The first, one-time pivot ([`create`]).
    Pivot,
    /// A later change to the self-hosted cluster ([`crate::upgrade::update`]).
    Upgrade,
}

impl Procedure {
    /// The phases of this procedure, in order.
    fn phases(self) -> &'static [Phase] {
        match self {
            Procedure::Pivot => &[
                Phase::Preflight,
                Phase::NodeSecrets,
                Phase::BootstrapControlPlane,
                Phase::WaitForApiserver,
                Phase::ApplyManifests,
                Phase::LabelControllers,
                Phase::WaitForSelfHosted,
                Phase::RemoveBootstrap,
                Phase::RecoveryApiserver,
                Phase::Verify,
            ],
            Procedure::Upgrade => &[
                Phase::Preflight,
                Phase::NodeSecrets,
                Phase::WaitForApiserver,
                Phase::ApplyManifests,
                Phase::LabelControllers,
                Phase::ApiserverHandOver,
                Phase::RollOut,
                Phase::RemoveNodes,
                Phase::RecoveryApiserver,
                Phase::Verify,
            ],
        }
    }

    /// The phase under way when the last one completed was `reached`.
    fn after(self, reached: Option<Phase>) -> Phase {
        let phases = self.phases();
        match reached.and_then(|r| phases.iter().position(|p| *p == r)) {
            None => phases[0],
            Some(i) => phases.get(i + 1).copied().unwrap_or(phases[phases.len() - 1]),
        }
    }
}

/// Preflight, then `procedure`'s phases on the connected fleet; on failure, what was done
/// so far with the error.
pub(crate) async fn run(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    procedure: Procedure,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    let mut outcome = Outcome::default();
    let work = Box::pin(on_fleet(inventory, params, cancel, procedure, &mut outcome));
    match bound(work, params.deadline, cancel).await {
        Ok(Ok(())) => Ok(outcome),
        Ok(Err(e)) => Box::pin(async { Err(Box::new((outcome, e))) }).await,
        Err(why) => {
            let phase = procedure.after(outcome.reached);
            Err(Box::new((outcome, PivotError::new(phase, why))))
        }
    }
}

/// How long past the deadline the work may still gather evidence of what it waited for.
const EVIDENCE_GRACE: Duration = Duration::from_secs(30);
/// How long a cancelled operation may take to stop by itself, with its own error.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Runs `work` until it ends, or stops it (dropping every SSH command and API call in
/// flight) once it outlives the deadline by [`EVIDENCE_GRACE`], or [`CANCEL_GRACE`] after
/// Terraform asked the provider to stop. `Err` says which.
async fn bound<F: std::future::Future + Unpin>(
    work: F,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<F::Output, String> {
    bound_within(work, deadline + EVIDENCE_GRACE, cancel, CANCEL_GRACE).await
}

async fn bound_within<F: std::future::Future + Unpin>(
    mut work: F,
    hard: Instant,
    cancel: &CancellationToken,
    cancel_grace: Duration,
) -> Result<F::Output, String> {
    tokio::select! {
        biased;
        out = &mut work => return Ok(out),
        () = cancel.cancelled() => {}
        () = tokio::time::sleep_until(hard) => {
            return Err(format!(
                "not done {}s after the deadline (`timeouts`); stopped. Rerun apply to continue from here, with a longer timeout if the hosts are slow",
                EVIDENCE_GRACE.as_secs()
            ))
        }
    }
    match tokio::time::timeout(cancel_grace, &mut work).await {
        Ok(out) => Ok(out),
        Err(_) => Err("stopped: Terraform asked the provider to stop (Ctrl-C). Every step is idempotent: rerun apply to continue from here".into()),
    }
}

async fn on_fleet(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    procedure: Procedure,
    outcome: &mut Outcome,
) -> Result<(), PivotError> {
    let ready: Ready = phase::run(Phase::Preflight, preflight::preflight(inventory, cancel)).await?;
    outcome.learned = ready.learned.clone();
    outcome.reached = Some(Phase::Preflight);
    // Boxed: the phases' state machines are large; kept off the worker's stack.
    let phases = async {
        match procedure {
            Procedure::Pivot => Box::pin(pivot_phases(inventory, params, cancel, &mut *outcome, &ready)).await,
            Procedure::Upgrade => {
                Box::pin(upgrade::upgrade_phases(
                    inventory,
                    params,
                    cancel,
                    &mut *outcome,
                    &ready,
                ))
                .await
            }
        }
    };
    // A dropped SSH connection fails every later step on that host, and the waits that go
    // through it (the API, over the tunnel) would retry until the deadline: end at once.
    let ended = tokio::select! {
        result = phases => Ok(result),
        host = connection_lost(ready.fleet.sessions()) => Err(host),
    };
    let result = ended.unwrap_or_else(|host| {
        Err(PivotError::on(
            procedure.after(outcome.reached),
            &host,
            format!(
                "the SSH connection to {host} closed (sshd restarted, the host rebooted, or a NAT or firewall dropped it); nothing done is lost and every step is idempotent: rerun apply to continue from here"
            ),
        ))
    });
    ready.fleet.close().await;
    result
}

/// How often the fleet's SSH connections are checked while a procedure runs.
const CONNECTION_CHECK: Duration = Duration::from_millis(500);

/// The name of the first host whose SSH connection closed (never, while all stay open).
async fn connection_lost(sessions: &[Session]) -> String {
    loop {
        if let Some(s) = sessions.iter().find(|s| s.is_closed()) {
            return s.host().to_owned();
        }
        tokio::time::sleep(CONNECTION_CHECK).await;
    }
}

async fn pivot_phases(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
    ready: &Ready,
) -> Result<(), PivotError> {
    let assets = &params.assets;
    phase::run(
        Phase::NodeSecrets,
        distribute::node_secrets(ready, inventory, assets, &params.paths, cancel),
    )
    .await?;
    outcome.reached = Some(Phase::NodeSecrets);

    let boot = ready.fleet.sessions()[0].clone();
    phase::run(
        Phase::BootstrapControlPlane,
        distribute::bootstrap_control_plane(&boot, assets, &params.paths),
    )
    .await?;
    outcome.reached = Some(Phase::BootstrapControlPlane);

    let api = Api::connect(&boot, params, Expect::Bootstrap, cancel).await?;
    outcome.api_endpoint = api.endpoint.clone();
    let deadline = params.deadline;
    phase::run(Phase::WaitForApiserver, api.ready(&boot, Expect::Bootstrap, deadline)).await?;
    outcome.reached = Some(Phase::WaitForApiserver);

    let manifests = api::manifests(assets);
    let summary = phase::run(
        Phase::ApplyManifests,
        bounded(
            &api,
            Phase::ApplyManifests,
            deadline,
            cancel,
            selfhosted_cluster::apply_manifests(&api.waiter, &manifests),
        ),
    )
    .await?;
    outcome.applied_digest = summary.digest.clone();
    outcome.reached = Some(Phase::ApplyManifests);

    phase::run(Phase::LabelControllers, api.label_controllers(inventory, deadline)).await?;
    outcome.reached = Some(Phase::LabelControllers);

    let self_hosted = api::self_hosted_cert(assets, Phase::WaitForSelfHosted)?;
    let controllers = inventory.hosts().iter().filter(|h| h.role == Role::Controller).count();
    let versions = phase::run(Phase::WaitForSelfHosted, async {
        let versions = api
            .versions(deadline, controllers, Phase::WaitForSelfHosted, &boot)
            .await?;
        // The bootstrap apiserver keeps every client until it leaves (the reuseport gate):
        // confirm the self-hosted one where the gate sends its own loopback client, on
        // every controller.
        for session in api::controller_sessions(inventory, ready.fleet.sessions()) {
            api.newest_answered_steadily(
                session,
                self_hosted,
                params,
                APISERVER_PODS,
                controllers,
                Phase::WaitForSelfHosted,
            )
            .await?;
        }
        Ok(versions)
    })
    .await?;
    outcome.reached = Some(Phase::WaitForSelfHosted);

    let renewed_after = phase::run(Phase::RemoveBootstrap, async {
        let parsed = selfhosted_cluster::parse_manifests(&manifests).unwrap_or_default();
        let gate = api::apiserver_workload(&parsed).and_then(api::cut_over_container);
        api.cut_over(gate.as_ref(), &[boot.host().to_owned()], deadline).await;
        distribute::remove_bootstrap(&boot, assets, &params.paths).await?;
        distribute::bootstrap_processes_gone(&boot, &params.paths, deadline, cancel).await?;
        // Read now, with the bootstrap controller-manager and scheduler gone: only a live
        // (self-hosted) holder can renew the leases after this.
        api.lease_renewals(Phase::RemoveBootstrap).await
    })
    .await?;
    outcome.reached = Some(Phase::RemoveBootstrap);

    phase::run(
        Phase::RecoveryApiserver,
        distribute::recovery_apiserver(ready, inventory, assets, &params.paths, cancel),
    )
    .await?;
    outcome.reached = Some(Phase::RecoveryApiserver);

    outcome.versions = versions;
    phase::run(
        Phase::Verify,
        api.verify(self_hosted, params, boot.host(), &mut outcome.versions, &renewed_after),
    )
    .await?;
    outcome.reached = Some(Phase::Verify);
    Ok(())
}

/// Runs an apply under the deadline and the cancel token, naming what it last saw when either ends it.
pub(crate) async fn bounded<T, E: std::error::Error>(
    api: &Api,
    phase: Phase,
    deadline: Instant,
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, PivotError> {
    tokio::select! {
        r = work => r.map_err(|e| PivotError::new(phase, chain(&e))),
        () = tokio::time::sleep_until(deadline) => Err(PivotError::new(
            phase,
            format!("timed out; last observed: {}", api.waiter.progress().last()),
        )),
        () = cancel.cancelled() => Err(PivotError::new(phase, "cancelled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn work_that_ends_is_never_stopped() {
        let cancel = CancellationToken::new();
        let out = bound_within(Box::pin(async { 7 }), Instant::now() + MS, &cancel, MS).await;
        assert_eq!(out, Ok(7));
    }

    #[tokio::test]
    async fn a_hung_command_is_stopped_after_the_deadline() {
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let out = bound_within(Box::pin(std::future::pending::<()>()), started + MS, &cancel, MS).await;
        assert!(out.unwrap_err().contains("after the deadline"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn ctrl_c_stops_hung_work_within_the_grace() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(MS).await;
            trigger.cancel();
        });
        let started = Instant::now();
        let far = started + Duration::from_secs(3600);
        let out = bound_within(Box::pin(std::future::pending::<()>()), far, &cancel, MS).await;
        assert!(out.unwrap_err().contains("Ctrl-C"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn cancelled_work_that_stops_by_itself_keeps_its_own_result() {
        let cancel = CancellationToken::new();
        let inner = cancel.clone();
        cancel.cancel();
        let work = Box::pin(async move {
            inner.cancelled().await;
            "its own error"
        });
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(bound_within(work, far, &cancel, MS).await, Ok("its own error"));
    }

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
    }
}
