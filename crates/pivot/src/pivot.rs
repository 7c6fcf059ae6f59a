//! The self-hosted pivot, phase by phase (design notes section 3). Each
//! phase is idempotent, so a rerun after any failure — including a provider
//! killed mid-pivot that left the bootstrap control plane behind — converges.
//!
//! The provider reaches the API through an SSH tunnel to the bootstrap
//! controller (or directly), and confirms that the self-hosted apiserver
//! answers by itself — by its own serving certificate, several answers in a
//! row — before it removes the bootstrap control plane: with port sharing, a
//! Ready pod alone can lie.
//!
//! Entered through [`crate::run::create`], after preflight.

use selfhosted_transport::CancellationToken;

use crate::api::{self, Api, Expect, APISERVER_PODS};
use crate::distribute;
use crate::inventory::{Inventory, Role};
use crate::phase::{self, chain, Phase, PivotError};
use crate::preflight::Ready;
use crate::procedure::{bounded, Outcome, PivotParams};

/// The pivot's phases after preflight, on the connected fleet.
pub(crate) async fn pivot_phases(
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

    // Parsed once: the apply and the bootstrap's removal (which finds the apiserver's gate in
    // them) read the same objects.
    let manifests = selfhosted_cluster::parse_manifests(&api::manifests(assets))
        .map_err(|e| PivotError::new(Phase::ApplyManifests, chain(&e)))?;
    phase::run(
        Phase::ApplyManifests,
        bounded(
            &api.waiter,
            Phase::ApplyManifests,
            deadline,
            cancel,
            selfhosted_cluster::apply_parsed(&api.waiter, &manifests),
        ),
    )
    .await?;
    outcome.applied_digest = selfhosted_cluster::apply::digest(&manifests);
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
        let gate = api::apiserver_workload(&manifests).and_then(api::cut_over_container);
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
    phase::run(Phase::Verify, async {
        api.recovery_handed_back(inventory, deadline).await?;
        api.verify(self_hosted, params, boot.host(), &mut outcome.versions, &renewed_after)
            .await
    })
    .await?;
    crate::kubelets::record_versions(&api, deadline, cancel, outcome).await;
    outcome.etcd =
        crate::etcd_release::versions(&api::controller_sessions(inventory, ready.fleet.sessions()), assets).await;
    outcome.reached = Some(Phase::Verify);
    Ok(())
}
