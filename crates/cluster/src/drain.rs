//! Draining a node the way `kubectl drain` does (disruption budgets respected; DaemonSet pods
//! and static pods stay, as they belong to the host): before its kubelet moves to another
//! version, and before its Node object is deleted when the configuration no longer names its
//! host. Every step is idempotent, and a node that is already gone is done.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
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

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
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

/// Annotation on a Node the provider cordoned, saying what for. The provider uncordons only
/// nodes that carry it: a node an operator cordoned stays cordoned.
pub const CORDONED_FOR: &str = "selfhosted.dev/cordoned-for";

/// What the provider cordons a node for (the value of [`CORDONED_FOR`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CordonFor {
    /// Its kubelet moves to another version; uncordoned after.
    KubeletMove,
    /// Its host leaves the cluster; the Node is deleted after.
    Removal,
}

impl CordonFor {
    /// The annotation's value.
    pub fn as_str(self) -> &'static str {
        match self {
            CordonFor::KubeletMove => "kubelet-move",
            CordonFor::Removal => "removal",
        }
    }
}

/// Which pods a drain leaves on the node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spare<'a> {
    /// A namespace whose pods stay.
    pub namespace: Option<&'a str>,
    /// Pods no controller owns: evicted, they are gone for good (`kubectl drain` refuses them
    /// without `--force`). Spared where the node comes back, as a kubelet restart leaves
    /// running containers alone.
    pub unowned: bool,
}

impl Spare<'_> {
    fn keeps(&self, pod: &Pod) -> bool {
        let in_namespace = self.namespace.is_some() && pod.metadata.namespace.as_deref() == self.namespace;
        let unowned = self.unowned
            && !pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
        in_namespace || unowned
    }
}

/// Whether `node` carries the provider's mark but no cordon: an operator's `kubectl uncordon`
/// lifted the provider's cordon and left the mark, which a later `kubectl cordon` (the
/// operator's own, to stay) must not inherit.
pub fn stale_mark(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
        && node
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CORDONED_FOR))
}

/// Removes the provider's mark from `node` if it is stale ([`stale_mark`], as read now).
/// Returns whether it was.
///
/// # Errors
/// [`DrainError::Api`].
pub async fn clear_stale_mark(client: &Client, node: &str) -> Result<bool, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.get_opt(node).await.map_err(api_err("reading the Node", node))? {
        Some(n) if stale_mark(&n) => {
            // Only while still not cordoned: the resourceVersion makes a cordon meanwhile win.
            let patch = serde_json::json!({
                "metadata": {
                    "resourceVersion": n.metadata.resource_version,
                    "annotations": { CORDONED_FOR: null }
                }
            });
            match nodes.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => Ok(true),
                Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(false),
                Err(e) => Err(api_err("clearing the provider's mark", node)(e)),
            }
        }
        _ => Ok(false),
    }
}

/// Whether `node` carries the provider's cordon for `what`.
pub fn cordoned_for(node: &Node, what: CordonFor) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true)
        && node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CORDONED_FOR))
            .is_some_and(|v| v == what.as_str())
}

/// Sets or clears `spec.unschedulable` and the provider's mark in one patch; `false` when
/// there is no such node.
async fn set_unschedulable(client: &Client, node: &str, mark: Option<CordonFor>) -> Result<bool, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({
        "metadata": { "annotations": { CORDONED_FOR: mark.map(CordonFor::as_str) } },
        "spec": { "unschedulable": mark.map(|_| true) }
    });
    match nodes.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api_err(if mark.is_some() { "cordoning" } else { "uncordoning" }, node)(
            e,
        )),
    }
}

/// Marks `node` unschedulable for `what`, unless an operator had cordoned it already (then it
/// is left as it is, theirs to uncordon). Returns the Node as it was, `None` when there is no
/// such node.
///
/// # Errors
/// [`DrainError::Api`].
pub async fn cordon(client: &Client, node: &str, what: CordonFor) -> Result<Option<Node>, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let Some(found) = nodes.get_opt(node).await.map_err(api_err("reading the Node", node))? else {
        return Ok(None);
    };
    let cordoned = found.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let ours = found
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CORDONED_FOR));
    if cordoned && !ours {
        tracing::info!(node, "already cordoned by someone else: left cordoned");
        return Ok(Some(found));
    }
    Ok(set_unschedulable(client, node, Some(what)).await?.then_some(found))
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

/// Marks `node` schedulable again if the provider cordoned it for `what` (a node an operator
/// cordoned stays so); `false` when it did not. A stale mark ([`stale_mark`]) goes.
///
/// # Errors
/// [`DrainError::Api`].
pub async fn uncordon(client: &Client, node: &str, what: CordonFor) -> Result<bool, DrainError> {
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.get_opt(node).await.map_err(api_err("reading the Node", node))? {
        Some(n) if cordoned_for(&n, what) => set_unschedulable(client, node, None).await,
        Some(n) if stale_mark(&n) => clear_stale_mark(client, node).await.map(|_| false),
        _ => Ok(false),
    }
}

/// Cordons `node` for `what` and evicts its pods (except those `spare` keeps) until the pods
/// it found are gone or `deadline`, as `kubectl drain` does: a pod that lands on the node
/// afterwards (one that tolerates the cordon) is not waited for. `None` when there is no such
/// node.
///
/// # Errors
/// [`DrainError`]: an API call that failed, or pods still there at the deadline (the node
/// stays cordoned, nothing else changed: a rerun continues).
pub async fn drain(
    client: &Client,
    node: &str,
    what: CordonFor,
    spare: Spare<'_>,
    deadline: Instant,
) -> Result<Option<Vec<String>>, DrainError> {
    let Some(found) = cordon(client, node, what).await? else {
        return Ok(None);
    };
    // A node that stopped reporting (a machine gone for good) has no kubelet to end its
    // evicted pods: they stay Terminating. Once evicted they are left to Kubernetes' pod
    // garbage collector, which deletes them with the Node, instead of waited for.
    let lost = crate::lost::lost(&found).is_some();
    let eviction_version = eviction_api_version(client).await;
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let mut evicted = Vec::new();
    let mut found: Option<BTreeSet<String>> = None;
    loop {
        let left: Vec<Pod> = pods
            .list(&on_node)
            .await
            .map_err(api_err("listing pods", node))?
            .items
            .into_iter()
            .filter(evictable)
            .filter(|p| !spare.keeps(p))
            .filter(|p| !(lost && p.metadata.deletion_timestamp.is_some()))
            .filter(|p| {
                found
                    .as_ref()
                    .is_none_or(|f| p.metadata.uid.as_ref().is_some_and(|u| f.contains(u)))
            })
            .collect();
        if found.is_none() {
            found = Some(left.iter().filter_map(|p| p.metadata.uid.clone()).collect());
        }
        if left.is_empty() {
            return Ok(Some(evicted));
        }
        let mut answers = Vec::new();
        let budgets = budgets(client, eviction_version).await;
        for pod in &left {
            let name = full_name(pod);
            if let Some(budget) = holding_budget(&budgets, pod) {
                answers.push(format!("{name}: {budget}"));
                continue;
            }
            match evict(client, pod, eviction_version).await {
                Ok(()) => {
                    if !evicted.contains(&name) {
                        tracing::info!(pod = %name, node, "evicted");
                        evicted.push(name);
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
}

/// Cordons `node`, evicts its pods until none is left or `deadline`, then deletes the Node.
///
/// # Errors
/// [`DrainError`]: an API call that failed, or pods still there at the deadline (the node
/// stays cordoned, nothing else changed: a rerun continues).
pub async fn remove_node(client: &Client, node: &str, deadline: Instant) -> Result<Removed, DrainError> {
    let Some(evicted) = drain(client, node, CordonFor::Removal, Spare::default(), deadline).await? else {
        return Ok(Removed::default());
    };
    let mut removed = Removed {
        evicted,
        deleted: false,
    };
    let nodes: Api<Node> = Api::all(client.clone());
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

/// A disruption budget as far as a drain needs it.
#[derive(Debug, Clone)]
struct Budget {
    namespace: String,
    name: String,
    selector: Selector,
    /// `status.disruptionsAllowed`, `None` until the disruption controller has counted.
    allowed: Option<i64>,
    current: i64,
    desired: i64,
}

/// Every disruption budget (`api_version`: the eviction's, the same group and version);
/// none when they cannot be read (the evictions still answer for them).
async fn budgets(client: &Client, api_version: &str) -> Vec<Budget> {
    let request = match http::Request::get(format!("/apis/{api_version}/poddisruptionbudgets")).body(Vec::new()) {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let list: serde_json::Value = match client.request(request).await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %crate::retry::api_message(&e), "reading disruption budgets");
            return Vec::new();
        }
    };
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| budget(item, api_version))
        .collect()
}

fn budget(item: &serde_json::Value, api_version: &str) -> Option<Budget> {
    let selector: LabelSelector = serde_json::from_value(item["spec"]["selector"].clone()).ok()?;
    // An empty selector selects every pod of the namespace in policy/v1, none in v1beta1.
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty());
    if empty && api_version == "policy/v1beta1" {
        return None;
    }
    let status = &item["status"];
    let counted = status["observedGeneration"].as_i64() >= item["metadata"]["generation"].as_i64();
    Some(Budget {
        namespace: item["metadata"]["namespace"].as_str()?.to_owned(),
        name: item["metadata"]["name"].as_str()?.to_owned(),
        selector: Selector::try_from(selector).ok()?,
        allowed: if counted {
            status["disruptionsAllowed"].as_i64()
        } else {
            None
        },
        current: status["currentHealthy"].as_i64().unwrap_or(0),
        desired: status["desiredHealthy"].as_i64().unwrap_or(0),
    })
}

/// The budget that keeps `pod` where it is now, said for a person. Only a Ready pod is held
/// (the API evicts others whatever the budget says), and not one already terminating; the
/// eviction itself still decides.
fn holding_budget(budgets: &[Budget], pod: &Pod) -> Option<String> {
    if !crate::conditions::pod_ready(pod) || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let b = budgets
        .iter()
        .find(|b| b.namespace == ns && b.selector.matches(&labels) && b.allowed.is_none_or(|a| a <= 0))?;
    Some(match b.allowed {
        None => format!(
            "kept by disruption budget {}/{}, which the disruption controller has not counted yet",
            b.namespace, b.name
        ),
        Some(_) => format!(
            "kept by disruption budget {}/{}: it allows no disruption now ({} healthy pods, {} needed)",
            b.namespace, b.name, b.current, b.desired
        ),
    })
}

/// How long one eviction may take: the client retries `429 Too Many Requests`, which is also
/// how the API answers an eviction a budget refuses.
const EVICTION_WITHIN: Duration = Duration::from_secs(10);

/// Posts an Eviction for `pod`; `Err` carries the API's refusal (a disruption budget: 429).
async fn evict(client: &Client, pod: &Pod, api_version: &str) -> Result<(), String> {
    match tokio::time::timeout(EVICTION_WITHIN, post_eviction(client, pod, api_version)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the eviction was refused for {} s (429 Too Many Requests: a disruption budget, or an apiserver under load)",
            EVICTION_WITHIN.as_secs()
        )),
    }
}

async fn post_eviction(client: &Client, pod: &Pod, api_version: &str) -> Result<(), String> {
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

    #[test]
    fn a_ready_pod_under_a_budget_that_allows_nothing_is_named_with_the_budget() {
        let item = |generation: i64, allowed: i64| {
            serde_json::json!({
                "metadata": {"name": "web", "namespace": "default", "generation": generation},
                "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}},
                "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": 2, "desiredHealthy": 2}
            })
        };
        let mut web = pod(Some("ReplicaSet"), false, "Running");
        web.metadata.namespace = Some("default".into());
        web.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
        let ready = k8s_openapi::api::core::v1::PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        };
        web.status.as_mut().unwrap().conditions = Some(vec![ready]);
        let held = holding_budget(&[budget(&item(1, 0), "policy/v1").unwrap()], &web).unwrap();
        assert_eq!(
            held,
            "kept by disruption budget default/web: it allows no disruption now (2 healthy pods, 2 needed)"
        );
        let uncounted = holding_budget(&[budget(&item(2, 1), "policy/v1").unwrap()], &web).unwrap();
        assert!(uncounted.contains("has not counted yet"), "{uncounted}");
        assert_eq!(holding_budget(&[budget(&item(1, 1), "policy/v1").unwrap()], &web), None);
        let mut other = web.clone();
        other.metadata.labels = Some([("app".to_owned(), "db".to_owned())].into());
        assert_eq!(
            holding_budget(&[budget(&item(1, 0), "policy/v1").unwrap()], &other),
            None
        );
        let mut starting = web.clone();
        starting.status.as_mut().unwrap().conditions = None;
        assert_eq!(
            holding_budget(&[budget(&item(1, 0), "policy/v1").unwrap()], &starting),
            None,
            "the API evicts a pod not Ready"
        );
        let mut leaving = web.clone();
        leaving.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(
            holding_budget(&[budget(&item(1, 0), "policy/v1").unwrap()], &leaving),
            None,
            "a pod already terminating is not held"
        );
    }

    #[test]
    fn an_empty_selector_holds_every_pod_in_v1_and_none_in_v1beta1() {
        let item = serde_json::json!({
            "metadata": {"name": "all", "namespace": "default", "generation": 1},
            "spec": {"selector": {}},
            "status": {"observedGeneration": 1, "disruptionsAllowed": 0}
        });
        assert!(budget(&item, "policy/v1").is_some());
        assert!(budget(&item, "policy/v1beta1").is_none());
    }

    #[test]
    fn a_kubelet_move_spares_its_namespace_and_pods_no_controller_owns() {
        let spare = Spare {
            namespace: Some("kube-system"),
            unowned: true,
        };
        let mut system = pod(Some("ReplicaSet"), false, "Running");
        system.metadata.namespace = Some("kube-system".into());
        assert!(spare.keeps(&system));
        let bare = pod(None, false, "Running");
        assert!(spare.keeps(&bare), "a bare pod evicted is gone for good");
        let mut owned = pod(Some("ReplicaSet"), false, "Running");
        owned.metadata.owner_references.as_mut().unwrap()[0].controller = Some(true);
        assert!(!spare.keeps(&owned));
        assert!(!Spare::default().keeps(&bare), "a removal moves every pod");
    }
}
