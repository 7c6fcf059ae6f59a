//! Kubelets follow the control plane: once an update has moved the control plane, each
//! host the provider reaches whose kubelet reports another version than the contract's
//! kubelet image moves to it, one node at a time, controllers first: the node is drained as
//! `kubectl drain` does (disruption budgets respected; on a controller the control plane's
//! own pods stay, as a kubelet restart leaves running containers alone and an evicted
//! scheduler could not be scheduled again), `KUBELET_IMAGE` is set in the host's
//! `kubelet.env` and the kubelet restarted, the node awaited Ready at the new version, then
//! uncordoned. Nodes it cannot move (generic hosts, whose kubelet is the host's binary, and
//! nodes of hosts it does not reach) are named in a warning. Every step is idempotent: a
//! rerun finds the nodes already moved and goes on with the rest.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_manifests::host::units;
use selfhosted_transport::{CancellationToken, Session};
use tokio::time::Instant;

use crate::api::Api;
use crate::inventory::{Host, Inventory, Role};
use crate::phase::{chain, Phase, PivotError};
use crate::procedure::{bounded, Warning};

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

/// Decides a node's move from its kubelet's version and the contract's unit for its role.
fn plan_move(assets: &BTreeMap<String, String>, role: Role, reported: &str) -> Move {
    let Some(image) = assets.get(unit_asset(role)).and_then(|u| units::kubelet_image_of(u)) else {
        return match generic_target(assets) {
            Some(v) if minor_behind(reported, &v) => Move::HostBinary { version: v },
            _ => Move::Stay,
        };
    };
    match units::image_release(image) {
        Some(version) if version != reported => Move::To {
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

/// The version generic hosts' kubelets should report: the apiserver's image tag.
fn generic_target(assets: &BTreeMap<String, String>) -> Option<String> {
    assets
        .iter()
        .filter(|(k, _)| k.starts_with("manifests/") && k.contains("-daemonset-kube-system-kube-apiserver-"))
        .find_map(|(_, v)| {
            v.lines()
                .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image:"))
                .find_map(|i| units::image_release(i.trim().trim_matches('"')).map(str::to_owned))
        })
}

/// Moves every reached host's kubelet that is not at the contract's version; returns what the
/// user should know about the nodes it could not move.
pub(crate) async fn follow(
    api: &Api,
    inventory: &Inventory,
    sessions: &[Session],
    assets: &BTreeMap<String, String>,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<Vec<Warning>, PivotError> {
    let versions = bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        selfhosted_cluster::skew::kubelet_versions(api.waiter.client()),
    )
    .await?;
    let mut host_binaries = Vec::new();
    // `hosts()` lists the controllers first.
    for host in inventory.hosts() {
        let Some(reported) = versions.get(&host.name) else {
            continue;
        };
        match plan_move(assets, host.role, reported) {
            Move::Stay => {}
            Move::HostBinary { version } => host_binaries.push(format!("- {}: {reported} (→ {version})", host.name)),
            Move::To { image, version } => {
                let session = sessions.iter().find(|s| s.host() == host.name).ok_or_else(|| {
                    PivotError::on(
                        PHASE,
                        host.name.clone(),
                        "no SSH session to this host (it was not reached)",
                    )
                })?;
                move_one(api, host, session, &image, &version, reported, deadline, cancel).await?;
            }
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
    let reached: Vec<&str> = inventory.hosts().iter().map(|h| h.name.as_str()).collect();
    let target = assets
        .get(unit_asset(Role::Worker))
        .and_then(|u| units::kubelet_image_of(u))
        .and_then(units::image_release)
        .map(str::to_owned)
        .or_else(|| generic_target(assets));
    if let Some(target) = target {
        let others: Vec<String> = versions
            .iter()
            .filter(|(name, v)| !reached.contains(&name.as_str()) && minor_behind(v, &target))
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
    let spared = (host.role == Role::Controller).then_some("kube-system");
    let drain_until = deadline.min(Instant::now() + DRAIN_WITHIN);
    let evicted = bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        selfhosted_cluster::drain::drain(client, node, spared, drain_until),
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
        .with_evidence(kubelet_log(session).await));
    }
    bounded(
        &api.waiter,
        PHASE,
        deadline,
        cancel,
        selfhosted_cluster::drain::uncordon(client, node),
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

/// The kubelet's last log lines on a host, for evidence.
async fn kubelet_log(session: &Session) -> String {
    let script = "journalctl -u kubelet.service -n 30 --no-pager 2>/dev/null | tail -n 30";
    match session.sudo(script).await {
        Ok(out) if !out.stdout_text().trim().is_empty() => {
            format!("kubelet log on {}:\n{}", session.host(), out.stdout_text())
        }
        _ => format!(
            "kubelet log on {}: none found (journalctl -u kubelet.service)",
            session.host()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(unit: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("node/kubelet-controller.service".to_owned(), unit.to_owned()),
            ("node/kubelet-worker.service".to_owned(), unit.to_owned()),
            (
                "manifests/60-daemonset-kube-system-kube-apiserver-v1-35-4-f43ce136.yaml".to_owned(),
                "      initContainers:\n      - image: ghcr.io/selfhosted-dev/selfhosted-agent:v0.1.0\n      containers:\n        image: registry.k8s.io/kube-apiserver:v1.35.4\n".to_owned(),
            ),
        ])
    }

    #[test]
    fn a_kubelet_behind_the_contracts_image_moves_to_it_and_one_at_it_stays() {
        let a = assets("[Service]\nEnvironment=KUBELET_IMAGE=quay.io/poseidon/kubelet:v1.35.4\n");
        assert_eq!(
            plan_move(&a, Role::Controller, "v1.34.3"),
            Move::To {
                image: "quay.io/poseidon/kubelet:v1.35.4".into(),
                version: "v1.35.4".into()
            }
        );
        assert_eq!(plan_move(&a, Role::Worker, "v1.35.4"), Move::Stay);
    }

    #[test]
    fn a_generic_hosts_kubelet_is_named_not_moved() {
        let a = assets("[Service]\nExecStart=/usr/bin/kubelet\n");
        assert_eq!(
            plan_move(&a, Role::Worker, "v1.34.3"),
            Move::HostBinary {
                version: "v1.35.4".into()
            }
        );
        assert_eq!(plan_move(&a, Role::Worker, "v1.35.4"), Move::Stay);
        assert_eq!(
            plan_move(&a, Role::Worker, "v1.35.2"),
            Move::Stay,
            "a host's own patch release is its choice"
        );
    }

    #[test]
    fn an_image_whose_tag_is_no_release_moves_nothing() {
        let a = assets("Environment=KUBELET_IMAGE=mirror.example/kubelet:latest\n");
        assert_eq!(plan_move(&a, Role::Controller, "v1.34.3"), Move::Stay);
    }
}
