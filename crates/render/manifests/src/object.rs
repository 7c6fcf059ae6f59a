//! Building blocks shared by every component: object metadata with our labels, the
//! apply-order file names, YAML emission and flag merging.

use serde_json::{json, Map, Value};

use crate::params::{flag_name, Component, ManifestParams};
use crate::RenderError;

/// Label key put on every object we render, so the pivot can find them.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_KEY`].
pub const MANAGED_BY: &str = "terraform-provider-selfhosted";
/// Label controllers set on themselves (a kubelet may not set `node-role.kubernetes.io/*`).
/// Any kubelet may set it, so nothing is scheduled by it: see [`CONTROL_PLANE_LABEL`].
pub const CONTROLLER_LABEL: &str = "node.kubernetes.io/controller";
/// The label that marks a control-plane node (value `""`): set by the provider through the
/// API once the controller registers, and refused by NodeRestriction to any kubelet, so a
/// node identity cannot draw control-plane pods (and, through the Node authorizer, their
/// Secrets) onto itself.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
/// Taint key of controllers (allowed at kubelet registration).
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";
/// Namespace of every component we render.
pub const NAMESPACE: &str = "kube-system";

/// `metadata` with our label and the given extra labels.
pub fn meta(name: &str, namespace: Option<&str>, labels: &[(&str, &str)]) -> Value {
    let mut l = Map::new();
    for (k, v) in labels {
        l.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    l.insert(MANAGED_BY_KEY.to_string(), Value::String(MANAGED_BY.to_string()));
    let mut m = Map::new();
    m.insert("name".into(), Value::String(name.to_string()));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), Value::String(ns.to_string()));
    }
    m.insert("labels".into(), Value::Object(l));
    Value::Object(m)
}

/// Add our label to an object that may lack labels (user objects).
pub fn add_managed_label(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(MANAGED_BY_KEY.into(), Value::String(MANAGED_BY.into()));
            }
        }
    }
}

/// Node selector of control-plane pods: the label only the provider sets.
pub fn controller_selector() -> Value {
    json!({ CONTROL_PLANE_LABEL: "" })
}

/// Tolerations of control-plane pods.
pub fn controller_tolerations() -> Value {
    json!([
        { "key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule" },
        { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule" }
    ])
}

/// The `NoSchedule` taints Kubernetes itself puts on a node that must still run kube-proxy
/// and the pod network's agent: ours on controllers, a node not ready yet (its network is
/// what the agent brings), cordoned, under pressure, or not yet initialised by a cloud.
const NODE_AGENT_NO_SCHEDULE: [&str; 8] = [
    CONTROL_PLANE_TAINT,
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.cloudprovider.kubernetes.io/uninitialized",
];

/// Tolerations of the DaemonSets every node runs (kube-proxy, the pod network's agent):
/// every `NoExecute` taint, so nothing evicts them, and the `NoSchedule` taints above plus
/// the user's own keys (`daemonset_tolerations`, as typhoon's) — but not
/// `node.kubernetes.io/unreachable:NoSchedule`, the taint of a node whose kubelet stopped
/// reporting. Tolerating that one (as `operator: Exists` alone does) kept a vanished
/// worker among the nodes the DaemonSet must run on, so its rolling update, one node at a
/// time, waited for that node forever; untolerated, the DaemonSet controller leaves the lost
/// node out until it reports again.
pub fn node_agent_tolerations(p: &ManifestParams) -> Value {
    let mut list = vec![json!({ "operator": "Exists", "effect": "NoExecute" })];
    list.extend(
        NODE_AGENT_NO_SCHEDULE
            .iter()
            .map(|key| json!({ "key": key, "operator": "Exists", "effect": "NoSchedule" })),
    );
    list.extend(
        p.daemonset_tolerations
            .iter()
            .map(|key| json!({ "key": key, "operator": "Exists" })),
    );
    Value::Array(list)
}

/// Apply rank of a kind: namespaces, CRDs, RBAC/ServiceAccounts, ConfigMaps/Secrets,
/// Services, disruption budgets, workloads (apiserver first), then anything else
/// (custom resources need their CRDs established).
pub fn rank(kind: &str, name: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 10,
        "PriorityClass" => 15,
        "ServiceAccount" | "ClusterRole" | "Role" => 20,
        "ClusterRoleBinding" | "RoleBinding" => 21,
        "ConfigMap" | "Secret" => 30,
        "Service" => 40,
        "PodDisruptionBudget" => 50,
        "DaemonSet" | "Deployment" | "StatefulSet" | "Job" | "CronJob" | "ReplicaSet" | "Pod" => {
            if name.starts_with("kube-apiserver") {
                60
            } else if name == "kube-scheduler" {
                61
            } else if name == "kube-controller-manager" {
                62
            } else if name == "kube-proxy" {
                63
            } else if name == "coredns" {
                65
            } else {
                64
            }
        }
        _ => 80,
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// File name of an object under `dir`: `dir/NN-kind-namespace-name.yaml`.
pub fn file_name(dir: &str, obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("Object");
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("unnamed");
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("cluster");
    format!(
        "{dir}/{:02}-{}-{}-{}.yaml",
        rank(kind, name),
        sanitize(&kind.to_ascii_lowercase()),
        sanitize(ns),
        sanitize(name)
    )
}

/// Emit one object as a YAML document, keys sorted at every level.
pub fn to_yaml(obj: &Value) -> Result<String, RenderError> {
    serde_yaml_ng::to_string(&sorted(obj)).map_err(RenderError::Yaml)
}

/// `v` with the keys of every object in sorted order: the one canonical form of the rendered
/// YAML and of the digest of what was applied. Sorting here (not relying on `serde_json::Map`
/// being a BTreeMap) keeps the bytes the same in a binary where another crate turns on
/// serde_json's `preserve_order`.
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        other => other.clone(),
    }
}

/// Our flags with the user's extra flags of `component`: a user flag replaces ours of the
/// same `--name`, the others are appended in the user's order.
pub fn merge_flags(p: &ManifestParams, component: Component, ours: Vec<String>) -> Vec<String> {
    let extra = p.extra_flags.get(&component).cloned().unwrap_or_default();
    let mut out: Vec<String> = Vec::with_capacity(ours.len() + extra.len());
    for f in ours {
        if let Some(user) = extra.iter().find(|e| flag_name(e) == flag_name(&f)) {
            out.push(user.clone());
        } else {
            out.push(f);
        }
    }
    for e in extra {
        if !out.iter().any(|o| o == &e) {
            out.push(e);
        }
    }
    out
}

/// `KUBERNETES_SERVICE_HOST`/`PORT` pointing at `host`, for in-cluster clients that must
/// not depend on kube-proxy.
pub fn apiserver_env(host: &str, port: u16) -> Vec<Value> {
    vec![
        json!({ "name": "KUBERNETES_SERVICE_HOST", "value": host }),
        json!({ "name": "KUBERNETES_SERVICE_PORT", "value": port.to_string() }),
    ]
}

/// A ServiceAccount in kube-system.
pub fn service_account(name: &str, automount: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(name, Some(NAMESPACE), &[]),
        "automountServiceAccountToken": automount
    })
}

/// A ClusterRoleBinding of `role` to subjects.
pub fn cluster_role_binding(name: &str, role: &str, subjects: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, None, &[]),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": subjects
    })
}

/// Subject list of one kube-system ServiceAccount.
pub fn sa_subject(name: &str) -> Value {
    json!([{ "kind": "ServiceAccount", "name": name, "namespace": NAMESPACE }])
}

/// Subject list of one group.
pub fn group_subject(name: &str) -> Value {
    json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name }])
}

/// A PodDisruptionBudget allowing one pod down at a time.
pub fn pdb(p: &ManifestParams, name: &str, selector: Value) -> Value {
    json!({
        "apiVersion": p.row().pdb_api_version,
        "kind": "PodDisruptionBudget",
        "metadata": meta(name, Some(NAMESPACE), &[]),
        "spec": { "maxUnavailable": 1, "selector": { "matchLabels": selector } }
    })
}

/// Preferred anti-affinity spreading pods with `labels` over hosts.
pub fn spread(labels: &Value) -> Value {
    json!({
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": { "matchLabels": labels },
                    "topologyKey": "kubernetes.io/hostname"
                }
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_have_keys_sorted_at_every_level() {
        let v = json!({"kind": "X", "a": [{"z": 1, "y": 2.5}], "m": {"b": true, "a": null}});
        assert_eq!(
            to_yaml(&v).unwrap(),
            "a:\n- y: 2.5\n  z: 1\nkind: X\nm:\n  a: null\n  b: true\n"
        );
        assert_eq!(
            sorted(&v).to_string(),
            r#"{"a":[{"y":2.5,"z":1}],"kind":"X","m":{"a":null,"b":true}}"#
        );
    }
}
