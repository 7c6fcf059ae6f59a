//! Taking a node out of the cluster when the configuration no longer names its host: cordon
//! it, evict its pods the way `kubectl drain` does (disruption budgets respected; DaemonSet
//! pods and static pods stay, as they belong to the host), and delete the Node object.
//! Every step is idempotent, and a node that is already gone is done.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use tokio::time::Instant;

/// Pause between eviction rounds (a disruption budget may refuse for a while).
const ROUND: Duration = Duration::from_secs(2);
/// Annotation the kubelet puts on the API copy of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Why a node could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// An API call failed.
    #[error("{what} on node {node}: {message}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The node.
        node: String,
        /// The API's message.
        message: String,
    },
    /// Pods were still on the node at the deadline.
    #[error("node {node} still runs {} pods at the deadline: {}", pods.len(), pods.join(", "))]
    Timeout {
        /// The node.
        node: String,
        /// `namespace/name: last eviction answer`.
        pods: Vec<String>,
    },
}

fn api_err<'a>(what: &'static str, node: &'a str) -> impl Fn(kube::Error) -> DrainError + 'a {
    move |e| DrainError::Api {
        what,
        node: node.to_owned(),
        message: crate::retry::api_message(&e),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// What the drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// `namespace/name` of every pod evicted.
    pub evicted: Vec<String>,
    /// Whether a Node object was deleted (false: it was already gone).
    pub deleted: bool,
}

/// Pods on `node` that a drain moves: not DaemonSet pods, not mirror pods, not finished.
fn evictable(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    !(daemon || mirror || crate::conditions::pod_terminal(pod))
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("?")
    )
}

/// Marks `node` unschedulable; `false` when there is no such node.
///
/// # Errors
/// [`DrainError::Api`].
pub async fn cordon(client: &Client, node: &str) -> Result<bool, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({ "spec": { "unschedulable": true } });
    match nodes.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api_err("cordoning", node)(e)),
    }
}

/// Deletes (gracefully, without eviction: no disruption budget is asked) the pods in
/// `namespace` on `node` that a drain would move. For pods that cannot work there any more,
/// such as a leaving controller's control-plane pods, which reach the API on their host's
/// own apiserver. Returns `namespace/name` of each.
///
/// # Errors
/// [`DrainError::Api`].
pub async fn delete_pods(client: &Client, node: &str, namespace: &str) -> Result<Vec<String>, DrainError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let mut deleted = Vec::new();
    for pod in pods
        .list(&on_node)
        .await
        .map_err(api_err("listing pods", node))?
        .items
        .into_iter()
        .filter(evictable)
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        match pods.delete(&name, &Default::default()).await {
            Ok(_) => deleted.push(full_name(&pod)),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a pod", node)(e)),
        }
    }
    Ok(deleted)
}

/// Cordons `node`, evicts its pods until none is left or `deadline`, then deletes the Node.
///
/// # Errors
/// [`DrainError`]: an API call that failed, or pods still there at the deadline (the node
/// stays cordoned, nothing else changed: a rerun continues).
pub async fn remove_node(client: &Client, node: &str, deadline: Instant) -> Result<Removed, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut removed = Removed::default();
    if !cordon(client, node).await? {
        return Ok(removed);
    }
    // A node that stopped reporting (a machine gone for good) has no kubelet to end its
    // evicted pods: they stay Terminating. Once evicted they are left to Kubernetes' pod
    // garbage collector, which deletes them with the Node, instead of waited for.
    let lost = match nodes.get_opt(node).await {
        Ok(n) => n.as_ref().and_then(crate::lost::lost).is_some(),
        Err(e) => return Err(api_err("reading the Node", node)(e)),
    };
    let eviction_version = eviction_api_version(client).await;
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    loop {
        let left: Vec<Pod> = pods
            .list(&on_node)
            .await
            .map_err(api_err("listing pods", node))?
            .items
            .into_iter()
            .filter(evictable)
            .filter(|p| !(lost && p.metadata.deletion_timestamp.is_some()))
            .collect();
        if left.is_empty() {
            break;
        }
        let mut answers = Vec::new();
        for pod in &left {
            let name = full_name(pod);
            match evict(client, pod, eviction_version).await {
                Ok(()) => {
                    if !removed.evicted.contains(&name) {
                        tracing::info!(pod = %name, node, "evicted");
                        removed.evicted.push(name);
                    }
                }
                Err(answer) => answers.push(format!("{name}: {answer}")),
            }
        }
        if Instant::now() + ROUND >= deadline {
            let pods = if answers.is_empty() {
                left.iter()
                    .map(|p| format!("{}: evicted, not gone yet", full_name(p)))
                    .collect()
            } else {
                answers
            };
            return Err(DrainError::Timeout {
                node: node.to_owned(),
                pods,
            });
        }
        tokio::time::sleep(ROUND).await;
    }
    match nodes.delete(node, &Default::default()).await {
        Ok(_) => removed.deleted = true,
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(api_err("deleting the Node", node)(e)),
    }
    Ok(removed)
}

/// `policy/v1` from Kubernetes 1.22, `policy/v1beta1` before (the only one v1.20 serves).
async fn eviction_api_version(client: &Client) -> &'static str {
    let minor = client
        .apiserver_version()
        .await
        .ok()
        .and_then(|v| v.minor.trim_end_matches('+').parse::<u32>().ok())
        .unwrap_or(u32::MAX);
    if minor >= 22 {
        "policy/v1"
    } else {
        "policy/v1beta1"
    }
}

/// Posts an Eviction for `pod`; `Err` carries the API's refusal (a disruption budget: 429).
async fn evict(client: &Client, pod: &Pod, api_version: &str) -> Result<(), String> {
    let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else {
        return Ok(());
    };
    let body = serde_json::json!({
        "apiVersion": api_version,
        "kind": "Eviction",
        "metadata": { "name": name, "namespace": ns }
    });
    let request = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(crate::retry::api_message(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn pod(owner: Option<&str>, mirror: bool, phase: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("p".into());
        p.metadata.owner_references = owner.map(|kind| {
            vec![OwnerReference {
                kind: kind.into(),
                ..Default::default()
            }]
        });
        if mirror {
            p.metadata.annotations = Some([(MIRROR_ANNOTATION.to_owned(), "x".to_owned())].into());
        }
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn a_drain_moves_workload_pods_and_leaves_the_hosts_own() {
        assert!(evictable(&pod(Some("ReplicaSet"), false, "Running")));
        assert!(evictable(&pod(None, false, "Pending")));
        assert!(!evictable(&pod(Some("DaemonSet"), false, "Running")));
        assert!(!evictable(&pod(None, true, "Running")));
        assert!(!evictable(&pod(Some("Job"), false, "Succeeded")));
    }
}
