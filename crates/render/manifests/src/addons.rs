//! Cluster add-ons every cluster gets unless switched off: kube-proxy (with the in-cluster
//! kubeconfig ConfigMap it reads) and CoreDNS.

use serde_json::{json, Value};

use crate::images::image;
use crate::object::{
    apiserver_env, cluster_role_binding, merge_flags, meta, pdb, sa_subject, service_account, spread, NAMESPACE,
};
use crate::params::{Component, ManifestParams};

/// Name of the in-cluster kubeconfig ConfigMap.
pub const IN_CLUSTER_KUBECONFIG: &str = "kubeconfig-in-cluster";

/// A kubeconfig using the pod's service account against the real apiserver address, for
/// host-network agents that must not depend on the `kubernetes` Service (kube-proxy
/// programs that Service itself).
pub fn in_cluster_kubeconfig(p: &ManifestParams) -> Value {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://{}:{}\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\nusers:\n- name: service-account\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\ncontexts:\n- name: default\n  context:\n    cluster: local\n    user: service-account\ncurrent-context: default\n",
        p.in_cluster_host(),
        p.api_server_port
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(IN_CLUSTER_KUBECONFIG, Some(NAMESPACE), &[]),
        "data": { "kubeconfig": kubeconfig }
    })
}

/// kube-proxy DaemonSet and its account.
pub fn kube_proxy(p: &ManifestParams) -> Vec<Value> {
    let flags = merge_flags(
        p,
        Component::KubeProxy,
        vec![
            format!("--cluster-cidr={}", p.pod_cidr),
            "--hostname-override=$(NODE_NAME)".into(),
            "--kubeconfig=/etc/kubernetes/kubeconfig".into(),
            "--metrics-bind-address=0.0.0.0".into(),
            "--proxy-mode=iptables".into(),
        ],
    );
    let ds = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("kube-proxy", Some(NAMESPACE), &[("k8s-app", "kube-proxy")]),
        "spec": {
            "selector": { "matchLabels": { "k8s-app": "kube-proxy" } },
            "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } },
            "template": {
                "metadata": { "labels": { "k8s-app": "kube-proxy" } },
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": crate::object::node_agent_tolerations(p),
                    "containers": [{
                        "name": "kube-proxy",
                        "image": image(p, Component::KubeProxy),
                        "command": ["kube-proxy"],
                        "args": flags,
                        "env": [{ "name": "NODE_NAME", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }],
                        "livenessProbe": {
                            "httpGet": { "path": "/healthz", "port": 10256, "scheme": "HTTP" },
                            "initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 6
                        },
                        "ports": [{ "name": "metrics", "containerPort": 10249, "protocol": "TCP" }],
                        "securityContext": { "privileged": true },
                        "volumeMounts": [
                            { "name": "kubeconfig", "mountPath": "/etc/kubernetes", "readOnly": true },
                            { "name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true },
                            { "name": "xtables-lock", "mountPath": "/run/xtables.lock" }
                        ]
                    }],
                    "volumes": [
                        { "name": "kubeconfig", "configMap": { "name": IN_CLUSTER_KUBECONFIG } },
                        { "name": "lib-modules", "hostPath": { "path": "/lib/modules", "type": "Directory" } },
                        { "name": "xtables-lock", "hostPath": { "path": "/run/xtables.lock", "type": "FileOrCreate" } }
                    ]
                }
            }
        }
    });
    vec![
        service_account("kube-proxy", true),
        cluster_role_binding("selfhosted:kube-proxy", "system:node-proxier", sa_subject("kube-proxy")),
        ds,
    ]
}

fn corefile(p: &ManifestParams) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n        lameduck 5s\n    }}\n    ready\n    kubernetes {domain} in-addr.arpa ip6.arpa {{\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    prometheus :9153\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n    reload\n    loadbalance\n}}\n",
        domain = p.cluster_domain_suffix
    )
}

/// CoreDNS: account, RBAC, Corefile, Service at the cluster DNS address, Deployment, PDB.
pub fn coredns(p: &ManifestParams) -> Vec<Value> {
    let labels = json!({ "k8s-app": "coredns" });
    let mut rules = vec![
        json!({ "apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"] }),
        json!({ "apiGroups": [""], "resources": ["nodes"], "verbs": ["get"] }),
    ];
    if p.row().endpointslices {
        rules.push(
            json!({ "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"] }),
        );
    }
    let mut container = json!({
        "name": "coredns",
        "image": image(p, Component::Coredns),
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            { "name": "dns", "containerPort": 53, "protocol": "UDP" },
            { "name": "dns-tcp", "containerPort": 53, "protocol": "TCP" },
            { "name": "metrics", "containerPort": 9153, "protocol": "TCP" }
        ],
        "resources": { "requests": { "cpu": "100m", "memory": "70Mi" }, "limits": { "memory": "170Mi" } },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": { "add": ["NET_BIND_SERVICE"], "drop": ["ALL"] },
            "readOnlyRootFilesystem": true
        },
        "livenessProbe": {
            "httpGet": { "path": "/health", "port": 8080, "scheme": "HTTP" },
            "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5
        },
        "readinessProbe": { "httpGet": { "path": "/ready", "port": 8181, "scheme": "HTTP" } },
        "volumeMounts": [{ "name": "config", "mountPath": "/etc/coredns", "readOnly": true }]
    });
    if !p.kube_proxy {
        // No kube-proxy: the `kubernetes` Service address leads nowhere.
        container["env"] = Value::Array(apiserver_env(p.in_cluster_host(), p.api_server_port));
    }
    vec![
        service_account("coredns", true),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:coredns", None, &[]),
            "rules": rules
        }),
        cluster_role_binding("selfhosted:coredns", "selfhosted:coredns", sa_subject("coredns")),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("coredns", Some(NAMESPACE), &[]),
            "data": { "Corefile": corefile(p) }
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("kube-dns", Some(NAMESPACE), &[("k8s-app", "coredns"), ("kubernetes.io/name", "CoreDNS")]),
            "spec": {
                "selector": labels,
                "clusterIP": p.cluster_dns_ip().to_string(),
                "ports": [
                    { "name": "dns", "port": 53, "protocol": "UDP" },
                    { "name": "dns-tcp", "port": 53, "protocol": "TCP" },
                    { "name": "metrics", "port": 9153, "protocol": "TCP" }
                ]
            }
        }),
        pdb(p, "coredns", labels.clone()),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("coredns", Some(NAMESPACE), &[("k8s-app", "coredns")]),
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": labels },
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "affinity": spread(&labels),
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "coredns",
                        "securityContext": { "seccompProfile": { "type": "RuntimeDefault" } },
                        "tolerations": [{ "key": crate::object::CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule" }],
                        "dnsPolicy": "Default",
                        "containers": [container],
                        "volumes": [{ "name": "config", "configMap": { "name": "coredns", "items": [{ "key": "Corefile", "path": "Corefile" }] } }]
                    }
                }
            }
        }),
    ]
}
