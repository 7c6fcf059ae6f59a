//! The approver of workers' kubelet client certificates (`selfhosted-agent approve-csrs`):
//! Kubernetes' own approver would grant a bootstrap token's request for any node name, so the
//! workers' token (on every worker's disk and in autoscaled workers' user data) has only this
//! one, which never grants a controller's name. It runs on the controllers, on the host
//! network, and talks to the local apiserver, so it needs neither kube-proxy nor a pod
//! network, and a worker can join as soon as a controller runs it.

use serde_json::{json, Value};

use crate::images::image;
use crate::kubelet::WORKERS_BOOTSTRAP_GROUP;
use crate::object::{
    apiserver_env, cluster_role_binding, controller_selector, controller_tolerations, meta, sa_subject,
    service_account, spread, CONTROL_PLANE_LABEL, NAMESPACE,
};
use crate::params::{Component, ManifestParams};

/// Name of the approver's Deployment, ServiceAccount and roles.
pub const NAME: &str = "selfhosted-csr-approver";
/// The ConfigMap (in kube-system) where the provider lists the controllers' names, one a
/// line under `names`, before any of them joins: a name cannot be claimed by a worker's token
/// in the time between a controller's replacement and its registration.
pub const CONTROLLERS_CONFIGMAP: &str = "selfhosted-controllers";
/// The key of [`CONTROLLERS_CONFIGMAP`] holding the names.
pub const CONTROLLERS_KEY: &str = "names";

/// The approver's objects: its ServiceAccount, what it may do, and its Deployment.
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(NAME, None, &[]),
        "rules": [
            { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["get", "list", "watch"] },
            { "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update", "patch"] },
            { "apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
              "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet"], "verbs": ["approve"] },
            { "apiGroups": [""], "resources": ["nodes"], "verbs": ["list"] }
        ]
    });
    let names_reader = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(NAME, Some(NAMESPACE), &[]),
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONTROLLERS_CONFIGMAP], "verbs": ["get"] }]
    });
    let names_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(NAME, Some(NAMESPACE), &[]),
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME },
        "subjects": sa_subject(NAME)
    });
    let labels = json!({ "k8s-app": NAME });
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(NAME, Some(NAMESPACE), &[("k8s-app", NAME)]),
        "spec": {
            "replicas": p.controller_replicas(),
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "hostNetwork": true,
                    "nodeSelector": controller_selector(),
                    "tolerations": controller_tolerations(),
                    "affinity": spread(&labels),
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": NAME,
                    "securityContext": { "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                                         "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "approver",
                        "image": image(p, Component::Agent),
                        "command": ["selfhosted-agent", "approve-csrs",
                            "--workers-group", WORKERS_BOOTSTRAP_GROUP,
                            "--controller-label", CONTROL_PLANE_LABEL,
                            "--controller-names", format!("{NAMESPACE}/{CONTROLLERS_CONFIGMAP}")],
                        // The local apiserver, never a Service that needs kube-proxy.
                        "env": apiserver_env("127.0.0.1", p.api_server_port),
                        "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                             "capabilities": { "drop": ["ALL"] } },
                        "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } }
                    }]
                }
            }
        }
    });
    vec![
        service_account(NAME, true),
        role,
        cluster_role_binding(NAME, NAME, sa_subject(NAME)),
        names_reader,
        names_binding,
        deployment,
    ]
}
