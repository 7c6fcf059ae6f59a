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

/// Preflight, then `procedure`'s phases on the connected fleet; on failure, what was done
/// so far with the error.
pub(crate) async fn run(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    procedure: Procedure,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    let mut outcome = Outcome::default();
    match on_fleet(inventory, params, cancel, procedure, &mut outcome).await {
        Ok(()) => Ok(outcome),
        Err(e) => Box::pin(async { Err(Box::new((outcome, e))) }).await,
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
    let result = match procedure {
        Procedure::Pivot => Box::pin(pivot_phases(inventory, params, cancel, outcome, &ready)).await,
        Procedure::Upgrade => Box::pin(upgrade::upgrade_phases(inventory, params, cancel, outcome, &ready)).await,
    };
    ready.fleet.close().await;
    result
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
