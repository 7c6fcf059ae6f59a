//! Cilium: VXLAN tunnelling and cluster-pool IPAM over the pod CIDR; kube-proxy
//! replacement switched on when kube-proxy is off. The operator registers Cilium's CRDs.

use serde_json::{json, Map, Value};

use crate::images::image;
use crate::object::{
    apiserver_env, cluster_role_binding, controller_selector, controller_tolerations, meta, sa_subject,
    service_account, NAMESPACE,
};
use crate::params::{Component, ManifestParams};

/// The minor of a `vX.Y.Z` Cilium tag (config keys changed in 1.14).
fn cilium_minor(tag: &str) -> u32 {
    tag.trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(u32::MAX)
}

fn config(p: &ManifestParams) -> Value {
    let modern = cilium_minor(p.row().cilium_tag) >= 14;
    let mut d = Map::new();
    let mut set = |k: &str, v: String| {
        d.insert(k.to_string(), Value::String(v));
    };
    set("cluster-name", "default".into());
    set("cluster-id", "0".into());
    set("identity-allocation-mode", "crd".into());
    set("ipam", "cluster-pool".into());
    set("cluster-pool-ipv4-cidr", p.pod_cidr.to_string());
    set("cluster-pool-ipv4-mask-size", "24".into());
    set("enable-ipv4", "true".into());
    set("enable-ipv6", "false".into());
    set("enable-health-checking", "true".into());
    set("enable-endpoint-health-checking", "true".into());
    set("enable-l7-proxy", "false".into());
    set("enable-policy", "default".into());
    set("monitor-aggregation", "medium".into());
    set("preallocate-bpf-maps", "false".into());
    set("bpf-map-dynamic-size-ratio", "0.0025".into());
    set("agent-health-port", "9879".into());
    set("operator-api-serve-addr", "127.0.0.1:9234".into());
    set(
        "write-cni-conf-when-ready",
        "/host/etc/cni/net.d/05-cilium.conflist".into(),
    );
    set("cni-exclusive", "true".into());
    set("k8s-require-ipv4-pod-cidr", "false".into());
    if modern {
        set("routing-mode", "tunnel".into());
        set("tunnel-protocol", "vxlan".into());
        set("kube-proxy-replacement", (!p.kube_proxy).to_string());
    } else {
        set("tunnel", "vxlan".into());
        set(
            "kube-proxy-replacement",
            if p.kube_proxy { "disabled" } else { "strict" }.into(),
        );
    }
    Value::Object(d)
}

fn field_env(name: &str, path: &str) -> Value {
    json!({ "name": name, "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": path } } })
}

/// Cilium's objects.
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    let api = apiserver_env(p.in_cluster_host(), p.api_server_port);
    let mut agent_env = vec![
        field_env("K8S_NODE_NAME", "spec.nodeName"),
        field_env("CILIUM_K8S_NAMESPACE", "metadata.namespace"),
    ];
    agent_env.extend(api.iter().cloned());
    let operator_env = agent_env.clone();
    let all = json!(["get", "list", "watch", "create", "update", "patch", "delete"]);
    let read = json!(["get", "list", "watch"]);
    let health = |path: &str| {
        json!({ "httpGet": { "host": "127.0.0.1", "path": path, "port": 9879, "scheme": "HTTP",
                             "httpHeaders": [{ "name": "brief", "value": "true" }] } })
    };
    let mut startup = health("/healthz");
    startup["failureThreshold"] = json!(105);
    startup["periodSeconds"] = json!(2);
    let mut live = health("/healthz");
    live["periodSeconds"] = json!(30);
    live["failureThreshold"] = json!(10);
    live["timeoutSeconds"] = json!(5);
    let mut ready = health("/healthz");
    ready["periodSeconds"] = json!(30);
    ready["failureThreshold"] = json!(3);
    ready["timeoutSeconds"] = json!(5);

    vec![
        service_account("cilium", true),
        service_account("cilium-operator", true),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:cilium", None, &[]),
            "rules": [
                { "apiGroups": [""], "resources": ["namespaces", "services", "pods", "endpoints", "nodes", "secrets"], "verbs": read },
                { "apiGroups": [""], "resources": ["nodes/status", "pods/status"], "verbs": ["patch", "update"] },
                { "apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read },
                { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
                { "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": read },
                { "apiGroups": ["cilium.io"], "resources": ["*"], "verbs": all }
            ]
        }),
        cluster_role_binding("selfhosted:cilium", "selfhosted:cilium", sa_subject("cilium")),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:cilium-operator", None, &[]),
            "rules": [
                { "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"] },
                { "apiGroups": [""], "resources": ["nodes", "namespaces", "services", "endpoints", "configmaps"], "verbs": read },
                { "apiGroups": [""], "resources": ["nodes/status", "services/status"], "verbs": ["patch", "update"] },
                { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
                { "apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch", "create", "update"] },
                { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"] },
                { "apiGroups": ["cilium.io"], "resources": ["*"], "verbs": all }
            ]
        }),
        cluster_role_binding(
            "selfhosted:cilium-operator",
            "selfhosted:cilium-operator",
            sa_subject("cilium-operator"),
        ),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("cilium-config", Some(NAMESPACE), &[("k8s-app", "cilium")]),
            "data": config(p)
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("cilium", Some(NAMESPACE), &[("k8s-app", "cilium")]),
            "spec": {
                "selector": { "matchLabels": { "k8s-app": "cilium" } },
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } },
                "template": {
                    "metadata": { "labels": { "k8s-app": "cilium" } },
                    "spec": {
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "cilium",
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 1,
                        "tolerations": crate::object::node_agent_tolerations(p),
                        "initContainers": [
                            {
                                "name": "clean-cilium-state",
                                "image": image(p, Component::CiliumAgent),
                                "command": ["/init-container.sh"],
                                "env": [
                                    { "name": "CILIUM_ALL_STATE", "valueFrom": { "configMapKeyRef": { "name": "cilium-config", "key": "clean-cilium-state", "optional": true } } },
                                    { "name": "CILIUM_BPF_STATE", "valueFrom": { "configMapKeyRef": { "name": "cilium-config", "key": "clean-cilium-bpf-state", "optional": true } } }
                                ],
                                "securityContext": { "privileged": true },
                                "volumeMounts": [
                                    { "name": "bpf-maps", "mountPath": "/sys/fs/bpf" },
                                    { "name": "cilium-run", "mountPath": "/var/run/cilium" }
                                ]
                            },
                            {
                                "name": "install-cni-binaries",
                                "image": image(p, Component::CiliumAgent),
                                "command": ["/install-plugin.sh"],
                                "securityContext": { "privileged": true },
                                "volumeMounts": [{ "name": "cni-path", "mountPath": "/host/opt/cni/bin" }]
                            }
                        ],
                        "containers": [{
                            "name": "cilium-agent",
                            "image": image(p, Component::CiliumAgent),
                            "command": ["cilium-agent"],
                            "args": ["--config-dir=/tmp/cilium/config-map"],
                            "env": agent_env,
                            "startupProbe": startup,
                            "livenessProbe": live,
                            "readinessProbe": ready,
                            "securityContext": { "privileged": true },
                            "volumeMounts": [
                                { "name": "bpf-maps", "mountPath": "/sys/fs/bpf", "mountPropagation": "Bidirectional" },
                                { "name": "cilium-run", "mountPath": "/var/run/cilium" },
                                { "name": "cni-conf-dir", "mountPath": "/host/etc/cni/net.d" },
                                { "name": "config", "mountPath": "/tmp/cilium/config-map", "readOnly": true },
                                { "name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true },
                                { "name": "xtables-lock", "mountPath": "/run/xtables.lock" }
                            ]
                        }],
                        "volumes": [
                            { "name": "bpf-maps", "hostPath": { "path": "/sys/fs/bpf", "type": "DirectoryOrCreate" } },
                            { "name": "cilium-run", "hostPath": { "path": "/var/run/cilium", "type": "DirectoryOrCreate" } },
                            { "name": "cni-path", "hostPath": { "path": "/opt/cni/bin", "type": "DirectoryOrCreate" } },
                            { "name": "cni-conf-dir", "hostPath": { "path": "/etc/cni/net.d", "type": "DirectoryOrCreate" } },
                            { "name": "config", "configMap": { "name": "cilium-config" } },
                            { "name": "lib-modules", "hostPath": { "path": "/lib/modules" } },
                            { "name": "xtables-lock", "hostPath": { "path": "/run/xtables.lock", "type": "FileOrCreate" } }
                        ]
                    }
                }
            }
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("cilium-operator", Some(NAMESPACE), &[("k8s-app", "cilium-operator")]),
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "k8s-app": "cilium-operator" } },
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 0, "maxUnavailable": 1 } },
                "template": {
                    "metadata": { "labels": { "k8s-app": "cilium-operator" } },
                    "spec": {
                        "hostNetwork": true,
                        "nodeSelector": controller_selector(),
                        "tolerations": controller_tolerations(),
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "cilium-operator",
                        "containers": [{
                            "name": "cilium-operator",
                            "image": image(p, Component::CiliumOperator),
                            "command": ["cilium-operator-generic"],
                            "args": ["--config-dir=/tmp/cilium/config-map"],
                            "env": operator_env,
                            "livenessProbe": {
                                "httpGet": { "host": "127.0.0.1", "path": "/healthz", "port": 9234, "scheme": "HTTP" },
                                "initialDelaySeconds": 60, "periodSeconds": 10, "timeoutSeconds": 3
                            },
                            "volumeMounts": [{ "name": "config", "mountPath": "/tmp/cilium/config-map", "readOnly": true }]
                        }],
                        "volumes": [{ "name": "config", "configMap": { "name": "cilium-config" } }]
                    }
                }
            }
        }),
    ]
}
