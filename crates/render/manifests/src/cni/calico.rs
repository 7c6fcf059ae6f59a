//! Calico with VXLAN and the Kubernetes datastore: its CRDs (schemas left open; Calico
//! validates its own resources), calico-node, calico-kube-controllers and their RBAC.

use serde_json::{json, Value};

use crate::images::image;
use crate::object::{
    apiserver_env, cluster_role_binding, controller_selector, controller_tolerations, meta, sa_subject,
    service_account, NAMESPACE,
};
use crate::params::{Component, ManifestParams};

/// (kind, plural, namespaced) of the `crd.projectcalico.org/v1` resources.
const CRDS: &[(&str, &str, bool)] = &[
    ("BGPConfiguration", "bgpconfigurations", false),
    ("BGPFilter", "bgpfilters", false),
    ("BGPPeer", "bgppeers", false),
    ("BlockAffinity", "blockaffinities", false),
    ("CalicoNodeStatus", "caliconodestatuses", false),
    ("ClusterInformation", "clusterinformations", false),
    ("FelixConfiguration", "felixconfigurations", false),
    ("GlobalNetworkPolicy", "globalnetworkpolicies", false),
    ("GlobalNetworkSet", "globalnetworksets", false),
    ("HostEndpoint", "hostendpoints", false),
    ("IPAMBlock", "ipamblocks", false),
    ("IPAMConfig", "ipamconfigs", false),
    ("IPAMHandle", "ipamhandles", false),
    ("IPPool", "ippools", false),
    ("IPReservation", "ipreservations", false),
    ("KubeControllersConfiguration", "kubecontrollersconfigurations", false),
    ("NetworkPolicy", "networkpolicies", true),
    ("NetworkSet", "networksets", true),
    ("StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", false),
    ("StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", true),
    ("StagedNetworkPolicy", "stagednetworkpolicies", true),
    ("Tier", "tiers", false),
];

fn crd(kind: &str, plural: &str, namespaced: bool) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": meta(&format!("{plural}.crd.projectcalico.org"), None, &[]),
        "spec": {
            "group": "crd.projectcalico.org",
            "names": { "kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_ascii_lowercase() },
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    })
}

const CNI_CONFIG: &str = r#"{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": { "type": "calico-ipam" },
      "policy": { "type": "k8s" },
      "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" }
    },
    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } },
    { "type": "bandwidth", "capabilities": { "bandwidth": true } }
  ]
}
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<Value> {
    pairs.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect()
}

fn node_name_env(name: &str) -> Value {
    json!({ "name": name, "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } })
}

/// Calico's objects.
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    let api = apiserver_env(p.in_cluster_host(), p.api_server_port);
    let pod_cidr = p.pod_cidr.to_string();
    let mut node_env = vec![node_name_env("NODENAME")];
    node_env.extend(env(&[
        ("DATASTORE_TYPE", "kubernetes"),
        ("WAIT_FOR_DATASTORE", "true"),
        ("CLUSTER_TYPE", "k8s,selfhosted"),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("IP", "autodetect"),
        // The node's InternalIP (the kubelet's `--node-ip`), not the first interface that is
        // up: on a droplet that is the public one, and VXLAN would leave the private network.
        ("IP_AUTODETECTION_METHOD", "kubernetes-internal-ip"),
        ("CALICO_IPV4POOL_CIDR", &pod_cidr),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
        ("CALICO_IPV4POOL_IPIP", "Never"),
        ("CALICO_DISABLE_FILE_LOGGING", "true"),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
        ("FELIX_IPV6SUPPORT", "false"),
        ("FELIX_HEALTHENABLED", "true"),
        ("FELIX_USAGEREPORTINGENABLED", "false"),
    ]));
    node_env.extend(api.iter().cloned());
    let mut cni_env = vec![node_name_env("KUBERNETES_NODE_NAME")];
    cni_env.extend(env(&[
        ("CNI_CONF_NAME", "10-calico.conflist"),
        ("CNI_MTU", "1450"),
        ("SLEEP", "false"),
    ]));
    cni_env.push(json!({ "name": "CNI_NETWORK_CONFIG", "valueFrom": { "configMapKeyRef": { "name": "calico-config", "key": "cni_network_config" } } }));
    cni_env.extend(api.iter().cloned());
    let mut kc_env = env(&[("DATASTORE_TYPE", "kubernetes"), ("ENABLED_CONTROLLERS", "node")]);
    kc_env.extend(api.iter().cloned());

    let read = json!(["get", "list", "watch"]);
    let mut out: Vec<Value> = CRDS.iter().map(|(k, pl, ns)| crd(k, pl, *ns)).collect();
    out.extend([
        service_account("calico-node", true),
        service_account("calico-kube-controllers", true),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:calico-node", None, &[]),
            "rules": [
                { "apiGroups": [""], "resources": ["pods", "nodes", "namespaces", "endpoints", "services", "configmaps", "serviceaccounts"], "verbs": read },
                { "apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"] },
                { "apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["calico-node"], "verbs": ["create"] },
                { "apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read },
                { "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read },
                { "apiGroups": ["policy.networking.k8s.io"], "resources": ["adminnetworkpolicies", "baselineadminnetworkpolicies"], "verbs": read },
                { "apiGroups": ["crd.projectcalico.org"], "resources": CRDS.iter().map(|c| c.1).collect::<Vec<_>>(), "verbs": read },
                { "apiGroups": ["crd.projectcalico.org"], "resources": ["ippools", "felixconfigurations", "clusterinformations", "caliconodestatuses", "tiers"], "verbs": ["create", "update"] },
                { "apiGroups": ["crd.projectcalico.org"], "resources": ["blockaffinities", "ipamblocks", "ipamhandles", "ipamconfigs"], "verbs": ["create", "update", "delete", "patch"] }
            ]
        }),
        cluster_role_binding("selfhosted:calico-node", "selfhosted:calico-node", sa_subject("calico-node")),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta("selfhosted:calico-kube-controllers", None, &[]),
            "rules": [
                { "apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "delete"] },
                { "apiGroups": [""], "resources": ["pods"], "verbs": read },
                { "apiGroups": ["crd.projectcalico.org"],
                  "resources": ["ipamblocks", "blockaffinities", "ipamhandles", "ipamconfigs", "clusterinformations", "kubecontrollersconfigurations", "hostendpoints", "tiers"],
                  "verbs": ["get", "list", "watch", "create", "update", "delete"] }
            ]
        }),
        cluster_role_binding("selfhosted:calico-kube-controllers", "selfhosted:calico-kube-controllers", sa_subject("calico-kube-controllers")),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("calico-config", Some(NAMESPACE), &[("k8s-app", "calico-node")]),
            "data": { "cni_network_config": CNI_CONFIG }
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta("calico-node", Some(NAMESPACE), &[("k8s-app", "calico-node")]),
            "spec": {
                "selector": { "matchLabels": { "k8s-app": "calico-node" } },
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } },
                "template": {
                    "metadata": { "labels": { "k8s-app": "calico-node" } },
                    "spec": {
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "calico-node",
                        "terminationGracePeriodSeconds": 0,
                        "tolerations": crate::object::node_agent_tolerations(p),
                        "initContainers": [{
                            "name": "install-cni",
                            "image": image(p, Component::CalicoCni),
                            "command": ["/opt/cni/bin/install"],
                            "env": cni_env,
                            "securityContext": { "privileged": true },
                            "volumeMounts": [
                                { "name": "cni-bin-dir", "mountPath": "/host/opt/cni/bin" },
                                { "name": "cni-conf-dir", "mountPath": "/host/etc/cni/net.d" }
                            ]
                        }],
                        "containers": [{
                            "name": "calico-node",
                            "image": image(p, Component::CalicoNode),
                            "env": node_env,
                            "securityContext": { "privileged": true },
                            "resources": { "requests": { "cpu": "100m", "memory": "100Mi" } },
                            "livenessProbe": { "exec": { "command": ["/bin/calico-node", "-felix-live"] }, "periodSeconds": 10, "initialDelaySeconds": 10, "failureThreshold": 6, "timeoutSeconds": 10 },
                            "readinessProbe": { "exec": { "command": ["/bin/calico-node", "-felix-ready"] }, "periodSeconds": 10, "timeoutSeconds": 10 },
                            "volumeMounts": [
                                { "name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true },
                                { "name": "var-lib-calico", "mountPath": "/var/lib/calico" },
                                { "name": "var-run-calico", "mountPath": "/var/run/calico" },
                                { "name": "xtables-lock", "mountPath": "/run/xtables.lock" },
                                { "name": "cni-log-dir", "mountPath": "/var/log/calico/cni", "readOnly": true }
                            ]
                        }],
                        "volumes": [
                            { "name": "lib-modules", "hostPath": { "path": "/lib/modules" } },
                            { "name": "var-lib-calico", "hostPath": { "path": "/var/lib/calico", "type": "DirectoryOrCreate" } },
                            { "name": "var-run-calico", "hostPath": { "path": "/var/run/calico", "type": "DirectoryOrCreate" } },
                            { "name": "xtables-lock", "hostPath": { "path": "/run/xtables.lock", "type": "FileOrCreate" } },
                            { "name": "cni-bin-dir", "hostPath": { "path": "/opt/cni/bin", "type": "DirectoryOrCreate" } },
                            { "name": "cni-conf-dir", "hostPath": { "path": "/etc/cni/net.d", "type": "DirectoryOrCreate" } },
                            { "name": "cni-log-dir", "hostPath": { "path": "/var/log/calico/cni", "type": "DirectoryOrCreate" } }
                        ]
                    }
                }
            }
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("calico-kube-controllers", Some(NAMESPACE), &[("k8s-app", "calico-kube-controllers")]),
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "k8s-app": "calico-kube-controllers" } },
                "strategy": { "type": "Recreate" },
                "template": {
                    "metadata": { "labels": { "k8s-app": "calico-kube-controllers" } },
                    "spec": {
                        "nodeSelector": controller_selector(),
                        "tolerations": controller_tolerations(),
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "calico-kube-controllers",
                        "containers": [{
                            "name": "calico-kube-controllers",
                            "image": image(p, Component::CalicoKubeControllers),
                            "env": kc_env,
                            "readinessProbe": { "exec": { "command": ["/usr/bin/check-status", "-r"] }, "periodSeconds": 10 },
                            "livenessProbe": { "exec": { "command": ["/usr/bin/check-status", "-l"] }, "periodSeconds": 10, "initialDelaySeconds": 10, "failureThreshold": 6, "timeoutSeconds": 10 }
                        }]
                    }
                }
            }
        }),
    ]);
    out
}
