//! Kubelets follow the control plane: once an update has moved the control plane, each
//! host the provider reaches whose kubelet reports another version than the contract's
//! kubelet image moves to it, controllers first and one at a time, then the workers
//! (`kubelet_max_unavailable` at a time): the node is drained as
//! `kubectl drain` does (disruption budgets respected; on a controller the control plane's
//! own pods stay, as a kubelet restart leaves running containers alone and an evicted
//! scheduler could not be scheduled again), `KUBELET_IMAGE` is set in the host's
//! `kubelet.env` and the kubelet restarted, the node awaited Ready at the new version, then
//! uncordoned. Nodes it cannot move (generic hosts, whose kubelet is the host's binary, and
//! nodes of hosts it does not reach) are named in a warning. Every step is idempotent: a
//! rerun finds the nodes already moved and goes on with the rest.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_cluster::conditions;
use selfhosted_cluster::drain::{self, CordonFor, Spare};
use selfhosted_manifests::host::units;
use selfhosted_manifests::versions::release_core;
use selfhosted_transport::{CancellationToken, Session};
use tokio::time::Instant;

use crate::api::Api;
use crate::inventory::{Host, Inventory, Role};
use crate::phase::{chain, Phase, PivotError};
use crate::procedure::{bounded, Outcome, PivotParams, Warning};

/// How long one node may take to drain.
const DRAIN_WITHIN: Duration = Duration::from_secs(300);
/// How long a restarted kubelet may take to report Ready at its new version (an image pull
/// included).
const READY_WITHIN: Duration = Duration::from_secs(300);

const PHASE: Phase = Phase::Kubelets;

/// The asset of each role's kubelet service.
fn unit_asset(role: Role) -> &'static str {
    match role {
        Role::Controller => "node/kubelet-controller.service",
        Role::Worker => "node/kubelet-worker.service",
    }
}

/// What a node's kubelet is to become.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Move {
    /// Already at the target.
    Stay,
    /// To this image, which reports `version`.
    To { image: String, version: String },
    /// Behind, on a host whose kubelet is its own binary (a generic host).
    HostBinary { version: String },
}

/// The release the contract's kubelet image for `role` runs, with the image.
fn contract_kubelet(assets: &BTreeMap<String, String>, role: Role) -> Option<(&str, &str)> {
    let image = assets.get(unit_asset(role)).and_then(|u| units::kubelet_image_of(u))?;
    Some((image, units::image_release(image)?))
}

/// A move to make: a reached host whose kubelet is not at the contract's image.
struct Planned<'a> {
    host: &'a Host,
    session: &'a Session,
    image: String,
    version: String,
    from: &'a str,
}

/// The order moves run in: controllers one at a time (each carries an etcd member and an
/// apiserver), then the workers, `max_unavailable` at once; each batch ends before the next.
fn batches<T>(moves: Vec<T>, controller: impl Fn(&T) -> bool, max_unavailable: usize) -> Vec<Vec<T>> {
    let (controllers, workers): (Vec<T>, Vec<T>) = moves.into_iter().partition(|m| controller(m));
    let mut out: Vec<Vec<T>> = controllers.into_iter().map(|c| vec![c]).collect();
    let mut workers = workers.into_iter().peekable();
    while workers.peek().is_some() {
        out.push(workers.by_ref().take(max_unavailable.max(1)).collect());
    }
    out
}

/// Decides a node's move from its kubelet's version, the contract's unit for its role and the
/// apiservers' release (what a host's own kubelet should follow).
fn plan_move(assets: &BTreeMap<String, String>, role: Role, reported: &str, apiserver: Option<&str>) -> Move {
    let Some(image) = assets.get(unit_asset(role)).and_then(|u| units::kubelet_image_of(u)) else {
        return match apiserver {
            Some(v) if minor_behind(reported, v) => Move::HostBinary { version: v.to_owned() },
            _ => Move::Stay,
        };
    };
    match units::image_release(image) {
        Some(version) if release_core(version) != release_core(reported) => Move::To {
            image: image.to_owned(),
            version: version.to_owned(),
        },
        _ => Move::Stay,
    }
}

/// Whether `reported` is of an older minor than `target` (patch releases may differ on hosts
/// that bring their own kubelet).
fn minor_behind(reported: &str, target: &str) -> bool {
    use selfhosted_manifests::versions::release_minor;
    matches!((release_minor(reported), release_minor(target)), (Some(r), Some(t)) if r < t)
}

/// Moves every reached host's kubelet that is not at the contract's version (`apiserver`: the
/// release the apiservers now run), `params.kubelet_max_unavailable` workers at once; returns what the user should know about the nodes it
/// could not move.
pub(crate) async fn follow(
    api: &Api,
    inventory: &Inventory,
    sessions: &[Session],
    params: &PivotParams,
    apiserver: Option<&str>,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<Vec<Warning>, PivotError> {
    let (assets, max_unavailable) = (&params.assets, params.kubelet_max_unavailable);
    let client = api.waiter.client();
    let nodes = bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        selfhosted_cluster::skew::nodes(client),
    )
    .await?;
    let mut host_binaries = Vec::new();
    let mut unregistered = Vec::new();
    let mut moves = Vec::new();
    // `hosts()` lists the controllers first.
    for host in inventory.hosts() {
        let Some(node) = nodes.get(&host.name) else {
            unregistered.push(format!("- {}", host.name));
            continue;
        };
        let Some(reported) = conditions::kubelet_version(node) else {
            continue;
        };
        if drain::stale_mark(node) {
            // Its cordon was lifted by hand: the mark goes, so that a later cordon of the
            // operator's is not taken for the provider's.
            bounded(
                &api.waiter,
                PHASE,
                deadline,
                cancel,
                drain::clear_stale_mark(client, &host.name),
            )
            .await
            .map_err(|e| PivotError::on(PHASE, host.name.clone(), e.message))?;
        }
        match plan_move(assets, host.role, reported, apiserver) {
            Move::Stay => {
                // A move an earlier apply began (then failed or was stopped) once its kubelet
                // came up: the node is at the target but still under the provider's cordon.
                if drain::cordoned_for(node, CordonFor::KubeletMove) {
                    bounded(
                        &api.waiter,
                        PHASE,
                        deadline,
                        cancel,
                        drain::uncordon(client, &host.name, CordonFor::KubeletMove),
                    )
                    .await
                    .map_err(|e| PivotError::on(PHASE, host.name.clone(), e.message))?;
                    tracing::info!(phase = PHASE.name(), node = %host.name, "uncordoned: its kubelet had moved");
                }
            }
            Move::HostBinary { version } => host_binaries.push(format!("- {}: {reported} (→ {version})", host.name)),
            Move::To { image, version } => {
                let session = sessions.iter().find(|s| s.host() == host.name).ok_or_else(|| {
                    PivotError::on(
                        PHASE,
                        host.name.clone(),
                        "no SSH session to this host (it was not reached)",
                    )
                })?;
                moves.push(Planned {
                    host,
                    session,
                    image,
                    version,
                    from: reported,
                });
            }
        }
    }
    for batch in batches(moves, |m| m.host.role == Role::Controller, max_unavailable) {
        let done = futures::future::join_all(
            batch
                .iter()
                .map(|m| move_one(api, m.host, m.session, &m.image, &m.version, m.from, deadline, cancel)),
        )
        .await;
        let mut failed = done.into_iter().filter_map(Result::err);
        if let Some(first) = failed.next() {
            return Err(failed.fold(first, |err, other| err.with_evidence(other.detail())));
        }
    }
    let mut warnings = Vec::new();
    if !host_binaries.is_empty() {
        warnings.push(Warning {
            summary: "selfhosted_bootstrap: kubelets that are the hosts' own binaries",
            detail: format!(
                "These generic hosts run their own kubelet (/usr/bin/kubelet), which the provider does not replace. \
                 Upgrade it with the host's packages or image, one node at a time (kubectl drain, upgrade, restart \
                 the kubelet, kubectl uncordon):\n{}",
                host_binaries.join("\n")
            ),
        });
    }
    if !unregistered.is_empty() {
        warnings.push(Warning {
            summary: "selfhosted_bootstrap: hosts without a Node",
            detail: format!(
                "These hosts are in `controllers` or `workers`, but no Node of their name is registered, so their \
                 kubelets were not checked against kubernetes_version. See the kubelet's log on each \
                 (journalctl -u kubelet); once it registers, apply again:\n{}",
                unregistered.join("\n")
            ),
        });
    }
    let target = contract_kubelet(assets, Role::Worker).map(|(_, v)| v).or(apiserver);
    if let Some(target) = target {
        let others: Vec<String> = nodes
            .iter()
            .filter(|(name, _)| inventory.hosts().iter().all(|h| &h.name != *name))
            .filter_map(|(name, n)| Some((name, conditions::kubelet_version(n)?)))
            .filter(|(_, v)| minor_behind(v, target))
            .map(|(name, v)| format!("- {name}: {v}"))
            .collect();
        if !others.is_empty() {
            warnings.push(Warning {
                summary: "selfhosted_bootstrap: kubelets of hosts it does not reach",
                detail: format!(
                    "These nodes are not in `controllers` or `workers`, and their kubelets are of an older minor than \
                     {target}. Nodes that join by themselves (an autoscaling group) take the new version with new \
                     machines: roll them (an instance refresh) now that the control plane is upgraded:\n{}",
                    others.join("\n")
                ),
            });
        }
    }
    Ok(warnings)
}

/// Records each node's kubelet version now in `outcome` (for the state); when the API does
/// not say, the state keeps the last apply's, and a warning says so.
pub(crate) async fn record_versions(api: &Api, deadline: Instant, cancel: &CancellationToken, outcome: &mut Outcome) {
    let client = api.waiter.client();
    match bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        selfhosted_cluster::skew::kubelet_versions(client),
    )
    .await
    {
        Ok(versions) => outcome.kubelets = versions,
        Err(e) => outcome.warnings.push(Warning {
            summary: "selfhosted_bootstrap: kubelet versions not read",
            detail: format!(
                "The nodes could not be listed after the apply ({}), so kubelet_versions keeps what the last apply \
                 recorded; the next plan's kubelet preview may be out of date until an apply reads them again",
                e.message
            ),
        }),
    }
}

/// The release the apiservers of `assets` run.
fn apiserver_release(assets: &BTreeMap<String, String>) -> Option<String> {
    let manifests = selfhosted_cluster::parse_manifests(&crate::api::manifests(assets)).ok()?;
    manifests
        .iter()
        .filter(|m| m.gvk.kind == "DaemonSet" && m.label("k8s-app") == Some("kube-apiserver"))
        .find_map(|m| selfhosted_cluster::skew::image_release(m).map(str::to_owned))
}

/// What an update with `assets` will do with each host's kubelet, said for the plan, from the
/// versions the last apply recorded (`recorded`, by node): `None` when no kubelet moves and
/// none is left behind.
pub fn preview(
    assets: &BTreeMap<String, String>,
    hosts: &[(String, Role)],
    recorded: &BTreeMap<String, String>,
) -> Option<String> {
    let apiserver = apiserver_release(assets);
    let mut moves = Vec::new();
    let mut behind = Vec::new();
    for (name, role) in hosts {
        match recorded.get(name) {
            Some(reported) => match plan_move(assets, *role, reported, apiserver.as_deref()) {
                Move::Stay => {}
                Move::To { version, .. } => moves.push(format!("- {name}: {reported} → {version}")),
                Move::HostBinary { version } => behind.push(format!(
                    "- {name}: {reported}; its own kubelet (a generic host): upgrade it to {version} yourself"
                )),
            },
            None => {
                if let Some((_, version)) = contract_kubelet(assets, *role) {
                    moves.push(format!(
                        "- {name}: (not recorded) → {version}, if it reports another version"
                    ));
                }
            }
        }
    }
    let target = contract_kubelet(assets, Role::Worker)
        .map(|(_, v)| v.to_owned())
        .or(apiserver);
    if let Some(target) = &target {
        for (name, reported) in recorded {
            if hosts.iter().all(|(h, _)| h != name) && minor_behind(reported, target) {
                behind.push(format!(
                    "- {name}: {reported}; not in controllers or workers: roll its machine (an instance refresh) once the control plane is at {target}"
                ));
            }
        }
    }
    if moves.iter().all(|m| m.contains("(not recorded)")) && behind.is_empty() {
        return None;
    }
    let mut text = String::new();
    if !moves.is_empty() {
        text.push_str(
            "After the control plane, the apply moves these kubelets node by node, controllers first, one at a \
             time, then the workers, kubelet_max_unavailable at a time (each drained, moved, awaited Ready and \
             uncordoned, unless you had cordoned it):\n",
        );
        text.push_str(&moves.join("\n"));
    }
    if !behind.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str("Kubelets this apply does not move:\n");
        text.push_str(&behind.join("\n"));
    }
    Some(text)
}

/// Drains `host`'s node, switches its kubelet to `image`, awaits it Ready at `version`, uncordons it.
#[allow(clippy::too_many_arguments)]
async fn move_one(
    api: &Api,
    host: &Host,
    session: &Session,
    image: &str,
    version: &str,
    from: &str,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(), PivotError> {
    let node = host.name.as_str();
    let client = api.waiter.client();
    let started = std::time::Instant::now();
    tracing::info!(phase = PHASE.name(), node, from, to = version, "moving a kubelet");
    let on_node = |message: String| PivotError::on(PHASE, node, message);
    // The control plane's own pods stay on a controller: a restarted kubelet leaves running
    // containers alone, and on one controller an evicted scheduler could not be scheduled again.
    // So do pods no controller owns, which an eviction would end for good.
    let spare = Spare {
        namespace: (host.role == Role::Controller).then_some("kube-system"),
        unowned: true,
    };
    let drain_until = deadline.min(Instant::now() + DRAIN_WITHIN);
    let evicted = bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        drain::drain(client, node, CordonFor::KubeletMove, spare, drain_until),
    )
    .await
    .map_err(|e| {
        on_node(format!(
            "draining the node before its kubelet moves to {version}: {}. Where a disruption budget keeps a pod, \
             relax the budget (or scale its workload up) and apply again; the node stays cordoned until then, and \
             the nodes already moved stay moved",
            e.message
        ))
    })?;
    tracing::info!(phase = PHASE.name(), node, evicted = ?evicted.unwrap_or_default(), "drained");
    session.sudo(&units::kubelet_image_switch(image)).await.map_err(|e| {
        on_node(format!(
            "setting KUBELET_IMAGE={image} in {} and restarting the kubelet: {}",
            units::KUBELET_ENV_PATH,
            chain(&e)
        ))
    })?;
    let ready_until = deadline.min(Instant::now() + READY_WITHIN);
    let what = format!("node {node} Ready with kubelet {version}");
    if let Err(e) = api
        .waiter
        .until(ready_until, &what, api.waiter.node_ready_at(node, version))
        .await
    {
        return Err(on_node(format!(
            "the kubelet did not come back at {version}: {}. The node stays cordoned; see the kubelet's log \
             (journalctl -u kubelet), fix the cause and apply again",
            chain(&e)
        ))
        .with_evidence(crate::phase::journal_tail(session, "kubelet.service", "kubelet").await));
    }
    bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        drain::uncordon(client, node, CordonFor::KubeletMove),
    )
    .await
    .map_err(|e| on_node(e.message))?;
    tracing::info!(
        phase = PHASE.name(),
        node,
        version,
        took = ?started.elapsed(),
        "kubelet moved"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: Option<&str> = Some("v1.35.4");

    fn assets(unit: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("node/kubelet-controller.service".to_owned(), unit.to_owned()),
            ("node/kubelet-worker.service".to_owned(), unit.to_owned()),
        ])
    }

    #[test]
    fn a_kubelet_behind_the_contracts_image_moves_to_it_and_one_at_it_stays() {
        let a = assets("[Service]\nEnvironment=KUBELET_IMAGE=quay.io/poseidon/kubelet:v1.35.4\n");
        assert_eq!(
            plan_move(&a, Role::Controller, "v1.34.3", APISERVER),
            Move::To {
                image: "quay.io/poseidon/kubelet:v1.35.4".into(),
                version: "v1.35.4".into()
            }
        );
        assert_eq!(plan_move(&a, Role::Worker, "v1.35.4", APISERVER), Move::Stay);
        assert_eq!(
            plan_move(&a, Role::Worker, "v1.35.4+vendor.1", APISERVER),
            Move::Stay,
            "a vendor's build of the release is the release"
        );
    }

    #[test]
    fn a_generic_hosts_kubelet_is_named_not_moved() {
        let a = assets("[Service]\nExecStart=/usr/bin/kubelet\n");
        assert_eq!(
            plan_move(&a, Role::Worker, "v1.34.3", APISERVER),
            Move::HostBinary {
                version: "v1.35.4".into()
            }
        );
        assert_eq!(plan_move(&a, Role::Worker, "v1.35.4", APISERVER), Move::Stay);
        assert_eq!(
            plan_move(&a, Role::Worker, "v1.35.2", APISERVER),
            Move::Stay,
            "a host's own patch release is its choice"
        );
    }

    #[test]
    fn the_plan_names_each_kubelet_it_moves_and_each_it_cannot() {
        let mut a = assets("[Service]\nEnvironment=KUBELET_IMAGE=quay.io/poseidon/kubelet:v1.35.4\n");
        a.insert(
            "manifests/60-daemonset-kube-system-kube-apiserver.yaml".into(),
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-apiserver, namespace: kube-system, labels: {k8s-app: kube-apiserver}}\nspec:\n  template:\n    spec:\n      containers: [{name: kube-apiserver, image: 'registry.k8s.io/kube-apiserver:v1.35.4'}]\n".into(),
        );
        let hosts = [("c0".to_owned(), Role::Controller), ("w0".to_owned(), Role::Worker)];
        let recorded = BTreeMap::from([
            ("c0".to_owned(), "v1.34.3".to_owned()),
            ("w0".to_owned(), "v1.35.4".to_owned()),
            ("asg-1".to_owned(), "v1.34.3".to_owned()),
        ]);
        let text = preview(&a, &hosts, &recorded).expect("a preview");
        assert!(text.contains("- c0: v1.34.3 → v1.35.4"), "{text}");
        assert!(!text.contains("w0"), "a kubelet at the version stays: {text}");
        assert!(
            text.contains("- asg-1: v1.34.3; not in controllers or workers: roll its machine"),
            "{text}"
        );
        let at_target = BTreeMap::from([
            ("c0".to_owned(), "v1.35.4".to_owned()),
            ("w0".to_owned(), "v1.35.4".to_owned()),
        ]);
        assert_eq!(preview(&a, &hosts, &at_target), None, "nothing to say");
        let generic = assets("[Service]\nExecStart=/usr/bin/kubelet\n");
        let mut generic = generic;
        generic.extend(
            a.iter()
                .filter(|(k, _)| k.starts_with("manifests/"))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let text = preview(&generic, &hosts, &recorded).expect("a preview");
        assert!(
            text.contains("- c0: v1.34.3; its own kubelet (a generic host): upgrade it to v1.35.4 yourself"),
            "{text}"
        );
    }

    #[test]
    fn controllers_move_one_at_a_time_then_workers_max_unavailable_at_once() {
        // Even numbers are controllers.
        let moves = vec![0, 1, 2, 3, 5, 7, 9];
        assert_eq!(
            batches(moves.clone(), |m| m % 2 == 0, 2),
            vec![vec![0], vec![2], vec![1, 3], vec![5, 7], vec![9]]
        );
        assert_eq!(
            batches(moves, |m| m % 2 == 0, 1),
            vec![vec![0], vec![2], vec![1], vec![3], vec![5], vec![7], vec![9]]
        );
        assert_eq!(
            batches(vec![1, 3], |_| false, 0),
            vec![vec![1], vec![3]],
            "at least one"
        );
    }

    #[test]
    fn an_image_whose_tag_is_no_release_moves_nothing() {
        let a = assets("Environment=KUBELET_IMAGE=mirror.example/kubelet:latest\n");
        assert_eq!(plan_move(&a, Role::Controller, "v1.34.3", APISERVER), Move::Stay);
    }
}
