//! flannel with the VXLAN backend and the Kubernetes subnet manager (node podCIDRs
//! allocated by the controller-manager).

use serde_json::{json, Value};

use crate::images::image;
use crate::object::{apiserver_env, cluster_role_binding, meta, sa_subject, service_account, NAMESPACE};
use crate::params::{Component, ManifestParams};

fn cni_conf() -> String {
    "{\n  \"name\": \"cbr0\",\n  \"cniVersion\": \"0.3.1\",\n  \"plugins\": [\n    {\n      \"type\": \"flannel\",\n      \"delegate\": {\n        \"hairpinMode\": true,\n        \"isDefaultGateway\": true\n      }\n    },\n    {\n      \"type\": \"portmap\",\n      \"capabilities\": {\n        \"portMappings\": true\n      }\n    }\n  ]\n}\n".to_string()
}

/// flannel's account, RBAC, config and DaemonSet.
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    let net_conf = format!(
        "{{\n  \"Network\": \"{}\",\n  \"Backend\": {{\n    \"Type\": \"vxlan\",\n    \"Port\": 4789\n  }}\n}}\n",
        p.pod_cidr
    );
    let mut env = vec![
        json!({ "name": "NODE_NAME", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }),
        json!({ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }),
        json!({ "name": "POD_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } }),
        // On the host's network the pod's IP is the node's InternalIP (the kubelet's
        // --node-ip): the VXLAN goes over that interface, not whichever holds the default
        // route (a droplet's public one on DigitalOcean).
        json!({ "name": "POD_IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } }),
    ];
    env.extend(apiserver_env(p.in_cluster_host(), p.api_server_port));
    vec![
        service_account("flannel", true),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:flannel", None, &[]),
            "rules": [
                { "apiGroups": [""], "resources": ["pods"], "verbs": ["get"] },
                { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"] },
                { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"] }
            ]
        }),
        cluster_role_binding("selfhosted:flannel", "selfhosted:flannel", sa_subject("flannel")),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("flannel-config", Some(NAMESPACE), &[("k8s-app", "flannel")]),
            "data": { "cni-conf.json": cni_conf(), "net-conf.json": net_conf }
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("flannel", Some(NAMESPACE), &[("k8s-app", "flannel")]),
            "spec": {
                "selector": { "matchLabels": { "k8s-app": "flannel" } },
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } },
                "template": {
                    "metadata": { "labels": { "k8s-app": "flannel" } },
                    "spec": {
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "flannel",
                        "tolerations": crate::object::node_agent_tolerations(p),
                        "initContainers": [
                            {
                                "name": "install-cni-plugin",
                                "image": image(p, Component::FlannelCniPlugin),
                                "command": ["cp"],
                                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                                "volumeMounts": [{ "name": "cni-bin-dir", "mountPath": "/opt/cni/bin" }]
                            },
                            {
                                "name": "install-cni",
                                "image": image(p, Component::Flannel),
                                "command": ["cp"],
                                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                                "volumeMounts": [
                                    { "name": "cni-conf-dir", "mountPath": "/etc/cni/net.d" },
                                    { "name": "flannel-config", "mountPath": "/etc/kube-flannel/" }
                                ]
                            }
                        ],
                        "containers": [{
                            "name": "flannel",
                            "image": image(p, Component::Flannel),
                            "command": ["/opt/bin/flanneld"],
                            "args": ["--ip-masq", "--kube-subnet-mgr", "--iface=$(POD_IP)"],
                            "env": env,
                            "resources": { "requests": { "cpu": "100m", "memory": "50Mi" } },
                            "securityContext": { "privileged": false, "capabilities": { "add": ["NET_ADMIN", "NET_RAW"] } },
                            "volumeMounts": [
                                { "name": "flannel-config", "mountPath": "/etc/kube-flannel/" },
                                { "name": "run-flannel", "mountPath": "/run/flannel" },
                                { "name": "xtables-lock", "mountPath": "/run/xtables.lock" }
                            ]
                        }],
                        "volumes": [
                            { "name": "flannel-config", "configMap": { "name": "flannel-config" } },
                            { "name": "run-flannel", "hostPath": { "path": "/run/flannel", "type": "DirectoryOrCreate" } },
                            { "name": "cni-bin-dir", "hostPath": { "path": "/opt/cni/bin", "type": "DirectoryOrCreate" } },
                            { "name": "cni-conf-dir", "hostPath": { "path": "/etc/cni/net.d", "type": "DirectoryOrCreate" } },
                            { "name": "xtables-lock", "hostPath": { "path": "/run/xtables.lock", "type": "FileOrCreate" } }
                        ]
                    }
                }
            }
        }),
    ]
}
