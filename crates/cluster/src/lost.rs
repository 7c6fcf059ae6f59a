//! Nodes whose kubelet stopped reporting: a worker an autoscaling group terminated, a machine
//! lost for good, or one cut off for now. Kubernetes' node lifecycle controller taints them
//! `node.kubernetes.io/unreachable`; the node agents do not tolerate its `NoSchedule` form,
//! so their DaemonSets leave such a node out and their rollouts go on without it. What is
//! left is to tell the user, who alone knows whether the machine comes back.

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

/// The taint of a node whose kubelet stopped reporting.
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// A node that stopped reporting, and since when (its last heartbeat, as the API has it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostNode {
    /// The node's name.
    pub name: String,
    /// `lastHeartbeatTime` of its Ready condition, when it has one.
    pub last_heartbeat: Option<String>,
}

impl std::fmt::Display for LostNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.last_heartbeat {
            Some(at) => write!(f, "{} (last heard from at {at})", self.name),
            None => write!(f, "{} (never heard from)", self.name),
        }
    }
}

/// `node` as a [`LostNode`] when it carries the unreachable taint.
pub fn lost(node: &Node) -> Option<LostNode> {
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == UNREACHABLE_TAINT));
    if !tainted {
        return None;
    }
    let last_heartbeat = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string());
    Some(LostNode {
        name: node.metadata.name.clone().unwrap_or_default(),
        last_heartbeat,
    })
}

/// Every node that stopped reporting, by name.
pub async fn lost_nodes(client: &Client) -> Result<Vec<LostNode>, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await?;
    let mut lost: Vec<LostNode> = list.items.iter().filter_map(lost).collect();
    lost.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(lost)
}

/// Removes from the API the pods matching `selector` in `namespace` that are being deleted on
/// a node that stopped reporting: no kubelet will ever end them, and while one is listed the
/// DaemonSet controller counts its node as unavailable — with one node at a time allowed, its
/// rolling update stops there (seen on the lane: a worker powered off for good held
/// kube-proxy's update until the deadline). A force delete removes only the API object, as
/// Kubernetes' own pod garbage collector does for an out-of-service node. Returns their names.
pub async fn release_pods_on_lost_nodes(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<Vec<String>, kube::Error> {
    let lost: Vec<String> = lost_nodes(client).await?.into_iter().map(|n| n.name).collect();
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
    let mut released = Vec::new();
    for pod in pods.list(&ListParams::default().labels(selector)).await?.items {
        let stuck = pod.metadata.deletion_timestamp.is_some()
            && pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| lost.contains(n));
        let Some(name) = pod.metadata.name.filter(|_| stuck) else {
            continue;
        };
        match pods
            .delete(&name, &kube::api::DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => released.push(name),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(taints: serde_json::Value) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "w1" },
            "spec": { "taints": taints },
            "status": { "conditions": [{ "type": "Ready", "status": "Unknown",
                "lastHeartbeatTime": "2026-12-06T08:00:00Z", "lastTransitionTime": "2026-12-06T08:00:40Z" }] }
        }))
        .unwrap()
    }

    #[test]
    fn a_node_is_lost_by_the_unreachable_taint_alone() {
        let gone = node(serde_json::json!([{ "key": UNREACHABLE_TAINT, "effect": "NoSchedule" }]));
        let found = lost(&gone).expect("lost");
        assert_eq!(found.name, "w1");
        assert_eq!(found.to_string(), "w1 (last heard from at 2026-12-06T08:00:00Z)");
        // Not ready (its network still starting, say) but reporting: not lost.
        let starting = node(serde_json::json!([{ "key": "node.kubernetes.io/not-ready", "effect": "NoSchedule" }]));
        assert_eq!(lost(&starting), None);
        assert_eq!(lost(&node(serde_json::Value::Null)), None);
    }
}
