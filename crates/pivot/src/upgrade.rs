//! A change to a cluster that is already self-hosted (design notes section 3,
//! "Update = the upgrade"). No bootstrap control plane comes back: the
//! running apiserver is reached, changed node secrets go to every host (new
//! hosts get theirs: a scale-out), objects without a rollout are applied, and
//! then the workloads one by one in order, each rollout awaited.
//!
//! The apiserver goes first and never in place: on one controller a
//! DaemonSet rolling update deletes the only apiserver before its replacement
//! can be created. A changed apiserver pod is a new DaemonSet generation
//! (a new name), which runs beside the old one on the shared port. Once the
//! new pods are Ready, listen on every controller and answer with a steady
//! restart count, the old generation is deleted and its pods retire one
//! controller at a time, each awaited gone and its controller's address back
//! in the `kubernetes` Service's Endpoints before the next.
//!
//! Every step is idempotent, so a failed update, rerun, converges.
//!
//! Entered through [`crate::run::update`], after preflight.

use std::collections::BTreeSet;
use std::time::Duration;

use selfhosted_cluster::service_keeper;
use selfhosted_cluster::workloads::{self, ItsPods, PlacedPod, INSTANCE_LABEL};
use selfhosted_cluster::Manifest;
use selfhosted_transport::{CancellationToken, Session};
use tokio::time::Instant;

use crate::api::{self, Api, Expect, APISERVER_PODS};
use crate::distribute;
use crate::etcd_members;
use crate::etcd_snapshot;
use crate::inventory::Inventory;
use crate::leaving::Leaving;
use crate::phase::{self, chain, Phase, PivotError};
use crate::preflight::Ready;
use crate::procedure::{bounded, host_pod_logs, Outcome, PivotParams, Warning};

/// Pause between looks at a controller's listening sockets.
const LISTEN_POLL: Duration = Duration::from_millis(500);

/// Pause between looks for DaemonSet pods stuck on nodes that stopped reporting.
const RELEASE_POLL: Duration = Duration::from_secs(3);

/// Pause between looks at a retiring pod and at the `kubernetes` Service's Endpoints.
const RETIRE_POLL: Duration = Duration::from_millis(250);

/// How long, after an old apiserver pod is gone, the hand-over waits for the addresses the
/// `default/kubernetes` Endpoints held before to be back: the stopping apiserver removed its
/// controller's address (its lease reconciler's last act), and the new generation's apiserver
/// there writes it again at its next reconcile, every 10 s. Three intervals, then the
/// hand-over goes on with a warning (an address may also leave for good: a controller that
/// went down meanwhile).
const ENDPOINTS_BACK_WITHIN: Duration = Duration::from_secs(30);

/// How long the replaced etcd members may take, all together, to join once their node secrets
/// are delivered.
const ETCD_JOIN_WITHIN: Duration = Duration::from_secs(180);

/// The upgrade's phases after preflight, on the connected fleet.
pub(crate) async fn upgrade_phases(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
    ready: &Ready,
) -> Result<(), PivotError> {
    let assets = &params.assets;
    let controllers = api::controller_sessions(inventory, ready.fleet.sessions());
    // An etcd move the members could not make is refused before anything changes.
    phase::run(
        Phase::Preflight,
        crate::etcd_release::check(&controllers, assets, Phase::Preflight),
    )
    .await?;
    if let Some(path) = &params.earlier_snapshot {
        tracing::info!(phase = Phase::EtcdSnapshot.name(), %path, "a rerun of a failed update: the snapshot taken before its first run stands");
    } else {
        let snapshot = phase::run(
            Phase::EtcdSnapshot,
            etcd_snapshot::take(
                &controllers,
                assets,
                &params.paths.state_dir,
                params.etcd_snapshot_dir.as_deref(),
            ),
        )
        .await?;
        outcome.etcd_snapshot = Some(snapshot);
    }
    outcome.reached = Some(Phase::EtcdSnapshot);
    let deliver = |session: Session| async move {
        distribute::node_secrets_of(&session, ready, inventory, assets, &params.paths, Phase::EtcdMembers)
            .await
            .map(drop)
    };
    let leaving = Leaving::connect(&params.leaving_controllers).await;
    outcome.warnings.extend(leaving.warning());
    phase::run(
        Phase::EtcdMembers,
        leaving.stand_down(assets, &params.paths, Phase::EtcdMembers),
    )
    .await?;
    let back = phase::run(
        Phase::EtcdMembers,
        etcd_members::replace_lost(
            &controllers,
            assets,
            deliver,
            params.deadline.min(Instant::now() + ETCD_JOIN_WITHIN),
        ),
    )
    .await?;
    outcome.reached = Some(Phase::EtcdMembers);

    phase::run(
        Phase::NodeSecrets,
        distribute::node_secrets(ready, inventory, assets, &params.paths, cancel),
    )
    .await?;
    outcome.reached = Some(Phase::NodeSecrets);
    let silent = crate::health::silent_etcd_members(&controllers, assets).await;
    if !silent.is_empty() {
        outcome.warnings.push(Warning {
            summary: "selfhosted_bootstrap: etcd members do not answer",
            detail: silent
                .iter()
                .map(|f| format!("- {}: {}", f.host, f.what))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }

    // The API is reached through a controller that served before this update: one brought
    // back has no apiserver until its node has registered and been labelled through the API.
    let sessions = serving_first(ready.fleet.sessions(), &back);
    let api = Api::connect(&sessions[0], params, Expect::SelfHosted, cancel).await?;
    outcome.api_endpoint = api.endpoint.clone();
    let result = match through_api(&api, inventory, params, cancel, outcome, ready, &sessions, &leaving).await {
        // The verify names the controllers on their recovery apiserver itself.
        Err(e) if e.phase != Phase::Verify => Err(api.with_recovery_evidence(e, inventory).await),
        r => r,
    };
    leaving.close().await;
    result
}

/// `sessions` with the hosts `back` (controllers brought back in this update) last, the order
/// of the others kept.
fn serving_first(sessions: &[Session], back: &[String]) -> Vec<Session> {
    last_of(sessions, |s| back.iter().any(|b| b == s.host()))
}

/// `items` with those `is_last` says at the end, each group in its order.
fn last_of<T: Clone>(items: &[T], is_last: impl Fn(&T) -> bool) -> Vec<T> {
    let mut ordered = items.to_vec();
    ordered.sort_by_key(|i| is_last(i));
    ordered
}

/// The upgrade's phases once the API is reached; `sessions[0]` is the controller it was
/// reached through.
#[allow(clippy::too_many_arguments)]
async fn through_api(
    api: &Api,
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    outcome: &mut Outcome,
    ready: &Ready,
    sessions: &[Session],
    leaving: &Leaving,
) -> Result<(), PivotError> {
    let assets = &params.assets;
    let deadline = params.deadline;
    let boot = sessions[0].clone();
    phase::run(Phase::WaitForApiserver, api.ready(&boot, Expect::SelfHosted, deadline)).await?;
    outcome.reached = Some(Phase::WaitForApiserver);

    let manifests = selfhosted_cluster::parse_manifests(&api::manifests(assets))
        .map_err(|e| PivotError::new(Phase::ApplyManifests, chain(&e)))?;
    let (workloads, others): (Vec<Manifest>, Vec<Manifest>) =
        manifests.iter().cloned().partition(workloads::is_workload);
    let (apiservers, rest): (Vec<Manifest>, Vec<Manifest>) = workloads
        .into_iter()
        .partition(|m| m.gvk.kind == "DaemonSet" && m.label("k8s-app") == Some("kube-apiserver"));
    kubelet_skew(api, &apiservers, deadline, cancel).await?;
    phase::run(
        Phase::ApplyManifests,
        bounded(
            &api.waiter,
            Phase::ApplyManifests,
            deadline,
            cancel,
            selfhosted_cluster::apply_parsed(&api.waiter, &others),
        ),
    )
    .await?;
    outcome.reached = Some(Phase::ApplyManifests);

    phase::run(Phase::LabelControllers, async {
        api.label_controllers(inventory, deadline).await?;
        leaving.unlabel(api, deadline).await
    })
    .await?;
    outcome.reached = Some(Phase::LabelControllers);

    let self_hosted = api::self_hosted_cert(assets, Phase::ApiserverHandOver)?;
    let controllers = inventory.controllers().count();
    phase::run(Phase::ApiserverHandOver, async {
        for apiserver in &apiservers {
            Box::pin(hand_over(
                api,
                inventory,
                apiserver,
                params,
                sessions,
                controllers,
                self_hosted,
                cancel,
            ))
            .await?;
        }
        Ok(())
    })
    .await?;
    outcome.reached = Some(Phase::ApiserverHandOver);

    outcome
        .warnings
        .extend(lost_nodes(api, &params.removed_nodes, deadline, cancel).await?);
    phase::run(Phase::RollOut, async {
        for m in &rest {
            Box::pin(roll_out(api, m, deadline, cancel, &boot)).await?;
        }
        Ok(())
    })
    .await?;
    outcome.reached = Some(Phase::RollOut);

    phase::run(Phase::RemoveNodes, async {
        for node in &params.removed_nodes {
            let removed = bounded(
                &api.waiter,
                Phase::RemoveNodes,
                deadline,
                cancel,
                selfhosted_cluster::drain::remove_node(api.waiter.client(), node, deadline),
            )
            .await
            .map_err(|e| PivotError::on(Phase::RemoveNodes, node.clone(), e.message))?;
            tracing::info!(node, evicted = ?removed.evicted, deleted = removed.deleted, "node removed");
        }
        if !leaving.is_empty() {
            // The apiservers use the new etcd_servers by now: no client is left on these members.
            let controllers = api::controller_sessions(inventory, sessions);
            let removed =
                etcd_members::remove_unclaimed(&controllers, assets, &leaving.names, leaving.sessions()).await?;
            tracing::info!(?removed, "etcd members of the controllers that left");
            leaving.clear(assets, &params.paths, Phase::RemoveNodes).await?;
        }
        Ok(())
    })
    .await?;
    outcome.reached = Some(Phase::RemoveNodes);

    phase::run(
        Phase::RecoveryApiserver,
        distribute::recovery_apiserver(ready, inventory, assets, &params.paths, cancel),
    )
    .await?;
    outcome.reached = Some(Phase::RecoveryApiserver);

    let moved = phase::run(
        Phase::Kubelets,
        crate::kubelets::follow(
            api,
            inventory,
            sessions,
            params,
            apiservers.iter().find_map(selfhosted_cluster::skew::image_release),
            deadline,
            cancel,
        ),
    )
    .await?;
    outcome.warnings.extend(moved);
    outcome.reached = Some(Phase::Kubelets);

    let members = api::controller_sessions(inventory, ready.fleet.sessions());
    let left = phase::run(Phase::Etcd, crate::etcd_release::follow(&members, assets, deadline)).await?;
    outcome.warnings.extend(left);
    outcome.reached = Some(Phase::Etcd);

    outcome.applied_digest = selfhosted_cluster::apply::digest(&manifests);
    let mut versions = api.versions(deadline, controllers, Phase::Verify, &boot).await?;
    phase::run(Phase::Verify, async {
        api.recovery_handed_back(inventory, deadline).await?;
        api.verify(self_hosted, params, boot.host(), &mut versions, &Default::default())
            .await
    })
    .await?;
    outcome.versions = versions;
    crate::kubelets::record_versions(api, deadline, cancel, outcome).await;
    outcome.etcd = crate::etcd_release::versions(&members, assets).await;
    outcome.reached = Some(Phase::Verify);
    Ok(())
}

/// Refuses, before anything changes, an apiserver minor that a registered kubelet may not
/// talk to (Kubernetes' skew policy): kubelets move after the control plane, so they must be
/// within the policy of the new apiserver first. A preflight of the upgrade, made once the
/// API answers.
async fn kubelet_skew(
    api: &Api,
    apiservers: &[Manifest],
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let Some(minor) = apiservers.iter().find_map(selfhosted_cluster::skew::image_minor) else {
        return Ok(());
    };
    let out_of_skew = bounded(
        &api.waiter,
        Phase::Preflight,
        deadline,
        cancel,
        selfhosted_cluster::skew::kubelets_out_of_skew(api.waiter.client(), minor),
    )
    .await?;
    if out_of_skew.is_empty() {
        return Ok(());
    }
    Err(PivotError::new(
        Phase::Preflight,
        format!(
            "the new apiserver (1.{minor}) would break Kubernetes' version skew policy; nothing was changed:\n{}\n\
             Upgrade these kubelets first (KUBELET_IMAGE in /etc/kubernetes/kubelet.env and a kubelet restart on \
             Fedora CoreOS and Flatcar, the host's packages elsewhere), or keep kubernetes_version where it is.",
            out_of_skew.join("\n")
        ),
    ))
}

/// Nodes whose kubelet stopped reporting, as a warning: the rollouts leave them out (the
/// node agents do not tolerate `node.kubernetes.io/unreachable:NoSchedule`), and only the
/// user knows whether their machines come back. Those this apply removes are not named.
async fn lost_nodes(
    api: &Api,
    removed: &[String],
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<Vec<Warning>, PivotError> {
    let mut lost = bounded(
        &api.waiter,
        Phase::RollOut,
        deadline,
        cancel,
        selfhosted_cluster::lost::lost_nodes(api.waiter.client()),
    )
    .await?;
    lost.retain(|n| !removed.contains(&n.name));
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = lost.iter().map(ToString::to_string).collect();
    tracing::warn!(nodes = ?names, "nodes stopped reporting; the rollouts leave them out");
    Ok(vec![Warning {
        summary: "selfhosted_bootstrap: nodes stopped reporting",
        detail: format!(
            "These nodes stopped reporting, and this apply did not wait for them: {}.\n\
             Their pods of kube-proxy and the pod network update when they report again. A machine \
             that is gone for good (an autoscaling group's terminated instance, say) leaves its Node \
             behind: remove it with `kubectl delete node NAME`, or, for a worker this configuration \
             names, by removing it from `workers`.",
            names.join(", ")
        ),
    }])
}

/// Runs beside a DaemonSet's rollout wait, until it ends: every few seconds, frees the
/// rollout from pods being deleted on nodes that stopped reporting
/// ([`selfhosted_cluster::lost::release_pods_on_lost_nodes`]).
async fn release_lost_pods(api: &Api, namespace: &str, selector: &str) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(RELEASE_POLL).await;
        match selfhosted_cluster::lost::release_pods_on_lost_nodes(api.waiter.client(), namespace, selector).await {
            Ok(released) if !released.is_empty() => tracing::warn!(
                pods = ?released,
                "removed pods that were being deleted on nodes that stopped reporting (no kubelet will end them)"
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %chain(&e), "looking for pods on nodes that stopped reporting"),
        }
    }
}

/// Applies one workload and waits for its rollout; on failure, the evidence of its pods.
async fn roll_out(
    api: &Api,
    m: &Manifest,
    deadline: Instant,
    cancel: &CancellationToken,
    evidence_host: &Session,
) -> Result<(), PivotError> {
    let what = format!("{} to roll out", m.describe());
    bounded(
        &api.waiter,
        Phase::RollOut,
        deadline,
        cancel,
        selfhosted_cluster::apply_parsed(&api.waiter, std::slice::from_ref(m)),
    )
    .await?;
    let rolled_out = api.waiter.until(deadline, &what, api.waiter.rolled_out(m));
    let rolled_out = match (m.gvk.kind.as_str(), workloads::pod_selector(m)) {
        ("DaemonSet", Some(selector)) => {
            tokio::select! {
                r = rolled_out => r,
                never = release_lost_pods(api, m.object.metadata.namespace.as_deref().unwrap_or("default"), &selector) => match never {},
            }
        }
        _ => rolled_out.await,
    };
    match rolled_out {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut err = PivotError::new(Phase::RollOut, chain(&e));
            if let Some(selector) = workloads::pod_selector(m) {
                err = err.with_evidence(api.diagnose(&selector).await);
            }
            if m.label("tier") == Some("control-plane") {
                err = err.with_evidence(host_pod_logs(evidence_host, m.name()).await);
            }
            Err(err)
        }
    }
}

/// The blue/green hand-over to the apiserver generation `m`.
#[allow(clippy::too_many_arguments)]
async fn hand_over(
    api: &Api,
    inventory: &Inventory,
    m: &Manifest,
    params: &PivotParams,
    sessions: &[Session],
    controllers: usize,
    self_hosted: selfhosted_cluster::Fingerprint,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let phase = Phase::ApiserverHandOver;
    let deadline = params.deadline;
    let generation = m.name().to_owned();
    let boot = &sessions[0];
    let new_pods = format!("{APISERVER_PODS},{INSTANCE_LABEL}={generation}");
    let old_pods = format!("{APISERVER_PODS},{INSTANCE_LABEL}!={generation}");
    let client = api.waiter.client();
    let old = workloads::placements(client, "kube-system", &old_pods)
        .await
        .map_err(|e| PivotError::new(phase, chain(&e)))?;
    // Where an old generation serves, each new apiserver's start and each old one's exit
    // removes an address that is still served; the keeper writes the list back if it empties
    // (dropped on any early return).
    let keeper = match old.is_empty() {
        true => None,
        false => service_keeper::Keeper::start(client).await,
    };

    bounded(
        &api.waiter,
        phase,
        deadline,
        cancel,
        selfhosted_cluster::apply_parsed(&api.waiter, std::slice::from_ref(m)),
    )
    .await?;
    let what = format!("apiserver generation {generation} to be Ready on every controller");
    if let Err(e) = api
        .waiter
        .until(
            deadline,
            &what,
            api.waiter.pods_ready("kube-system", &new_pods, controllers),
        )
        .await
    {
        // The old generation, if any, is untouched and keeps serving.
        return Err(PivotError::new(phase, chain(&e))
            .with_evidence(api.diagnose(&new_pods).await)
            .with_evidence(host_pod_logs(boot, &generation).await));
    }
    if old.is_empty() {
        tracing::info!(%generation, "apiserver generation unchanged");
        return api
            .answered_steadily(self_hosted, params, &new_pods, controllers, phase, boot.host())
            .await;
    }

    // Ready alone can lie on a shared port: the kubelet's probe reaches the old
    // generation, which keeps every client but loopback ones until it leaves (the
    // reuseport gate). Where an old pod serves, the new one must listen beside it and
    // answer by itself where the gate sends its loopback client. (An old generation that
    // never became Ready, such as a failed upgrade's, serves nothing.)
    let serving: Vec<String> = old
        .iter()
        .filter(|(_, serving)| **serving)
        .map(|(node, _)| node.clone())
        .collect();
    for node in &serving {
        let Some(session) = sessions.iter().find(|s| s.host() == node) else {
            continue;
        };
        distribute::migrate_queued_connections(session, phase).await?;
        both_listen(session, params.api_port, deadline, cancel).await?;
    }
    for session in api::controller_sessions(inventory, sessions) {
        api.newest_answered_steadily(session, self_hosted, params, &new_pods, controllers, phase)
            .await?;
    }
    api.cut_over(api::cut_over_container(m).as_ref(), &serving, deadline)
        .await;

    // The old DaemonSets go, their pods stay: they retire one controller at a time, so the
    // `kubernetes` Service keeps the address of every other controller meanwhile.
    let retired =
        workloads::delete_daemonsets_except(client, "kube-system", APISERVER_PODS, &generation, ItsPods::Stay)
            .await
            .map_err(|e| PivotError::new(phase, chain(&e)))?;
    tracing::info!(?retired, %generation, "old apiserver generations deleted, their pods left to retire one by one");
    retire_one_at_a_time(api, &old_pods, deadline, cancel).await?;
    let what = "the old apiserver generation's pods to be gone";
    if let Err(e) = api
        .waiter
        .until(deadline, what, api.waiter.pods_gone("kube-system", &old_pods))
        .await
    {
        return Err(PivotError::new(phase, chain(&e)).with_evidence(api.diagnose(&old_pods).await));
    }
    if let Some(keeper) = keeper {
        let written = keeper.stop().await;
        tracing::info!(
            written,
            "the kubernetes Service was kept from going empty during the hand-over"
        );
    }
    api.answered_steadily(self_hosted, params, &new_pods, controllers, phase, boot.host())
        .await
}

/// Retires the old generation's pods (ownerless now) one at a time: the ones that serve
/// nothing first, together; then each serving one, waiting until it is gone and until the
/// `default/kubernetes` Endpoints hold again every address they held before it went.
///
/// Why: both generations on a controller advertise its address, and a stopping apiserver
/// removes that address from the Endpoints; the new one there writes it again only at its
/// next reconcile (up to 10 s later). All controllers at once emptied the list (issue 22
/// measured 2.8 s with no address over a hand-over on three controllers): every in-cluster
/// client going through the Service IP was refused. One at a time, the other controllers'
/// addresses stay in the list. On one controller the list would empty until the new
/// apiserver's next reconcile: a [`service_keeper::Keeper`] writes it back meanwhile, and the
/// wait ends the apply only once the Service is whole again. (A new apiserver also removes its address while it starts, until it is ready:
/// upstream's rule, which this does not change; see docs/guides/upgrades.md.)
async fn retire_one_at_a_time(
    api: &Api,
    old_pods: &str,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let phase = Phase::ApiserverHandOver;
    let client = api.waiter.client();
    let api_err = |e: workloads::WorkloadError| PivotError::new(phase, chain(&e));
    let pods = workloads::placed_pods(client, "kube-system", old_pods)
        .await
        .map_err(api_err)?;
    let (serving, idle): (Vec<PlacedPod>, Vec<PlacedPod>) = pods.into_iter().partition(|p| p.ready);
    for pod in &idle {
        workloads::delete_pod(client, "kube-system", &pod.name)
            .await
            .map_err(api_err)?;
    }
    for pod in &serving {
        let before = endpoints_now(api).await;
        // The API may drop a connection while an apiserver of its controller stops: retried.
        while let Err(e) = workloads::delete_pod(client, "kube-system", &pod.name).await {
            tracing::debug!(error = %chain(&e), "deleting a retiring apiserver pod; retrying");
            pause(deadline, cancel, phase, || {
                format!(
                    "the old apiserver pod {} on {} to be deleted: {}",
                    pod.name,
                    pod.node,
                    chain(&e)
                )
            })
            .await?;
        }
        let stopped = Instant::now();
        loop {
            match workloads::pod_exists(client, "kube-system", &pod.name).await {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => tracing::debug!(error = %chain(&e), "reading a retiring apiserver pod; retrying"),
            }
            pause(deadline, cancel, phase, || {
                format!("the old apiserver pod {} on {} to be gone", pod.name, pod.node)
            })
            .await?;
        }
        let gone = stopped.elapsed();
        let Some(before) = before else { continue };
        let back_by = Instant::now() + ENDPOINTS_BACK_WITHIN;
        loop {
            let now = endpoints_now(api).await.unwrap_or_default();
            let missing: Vec<&String> = before.difference(&now).collect();
            if missing.is_empty() {
                tracing::info!(pod = %pod.name, node = %pod.node, ?gone, back_after = ?stopped.elapsed(),
                    "old apiserver pod retired; the kubernetes Service's endpoints are whole again");
                break;
            }
            if Instant::now() >= back_by {
                tracing::warn!(pod = %pod.name, node = %pod.node, ?missing,
                    "old apiserver pod retired, but the kubernetes Service's endpoints still lack these addresses after {ENDPOINTS_BACK_WITHIN:?}; going on");
                break;
            }
            pause(deadline, cancel, phase, || {
                format!("the kubernetes Service's endpoints to hold {missing:?} again")
            })
            .await?;
        }
    }
    Ok(())
}

/// The addresses of `default/kubernetes` now; `None` when the API did not say.
async fn endpoints_now(api: &Api) -> Option<BTreeSet<String>> {
    workloads::endpoint_addresses(api.waiter.client(), "default", "kubernetes")
        .await
        .inspect_err(|e| tracing::debug!(error = %chain(e), "reading the kubernetes Service's endpoints"))
        .ok()
}

/// Sleeps [`RETIRE_POLL`], or fails naming `what` once the deadline passes or the apply is
/// cancelled.
async fn pause(
    deadline: Instant,
    cancel: &CancellationToken,
    phase: Phase,
    what: impl FnOnce() -> String,
) -> Result<(), PivotError> {
    if Instant::now() + RETIRE_POLL >= deadline {
        return Err(PivotError::new(phase, format!("timed out waiting for {}", what())));
    }
    tokio::select! {
        () = tokio::time::sleep(RETIRE_POLL) => Ok(()),
        () = cancel.cancelled() => Err(PivotError::new(phase, "cancelled")),
    }
}

/// Waits until two processes listen on `port` on the host: the old apiserver
/// generation and the new one beside it.
async fn both_listen(
    session: &Session,
    port: u16,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let phase = Phase::ApiserverHandOver;
    let command = format!("ss -Hltn 'sport = :{port}' | wc -l");
    loop {
        let out = session
            .sudo(&command)
            .await
            .map_err(|e| PivotError::on(phase, session.host(), chain(&e)))?;
        let listening: usize = out.stdout_text().trim().parse().unwrap_or(0);
        if listening >= 2 {
            return Ok(());
        }
        if Instant::now() + LISTEN_POLL >= deadline || cancel.is_cancelled() {
            return Err(PivotError::on(
                phase,
                session.host(),
                format!("the new apiserver generation never listened on port {port} beside the old one ({listening} listening)"),
            )
            .with_evidence(host_pod_logs(session, "kube-apiserver").await));
        }
        tokio::time::sleep(LISTEN_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_brought_back_go_last_and_the_rest_keep_their_order() {
        let hosts = ["c0", "c1", "c2", "w0"];
        let back = ["c0"];
        assert_eq!(last_of(&hosts, |h| back.contains(h)), ["c1", "c2", "w0", "c0"]);
        assert_eq!(last_of(&hosts, |_| false), hosts);
    }
}
