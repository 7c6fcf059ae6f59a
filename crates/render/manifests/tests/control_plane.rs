//! The pivot's demands on the rendered control plane: port sharing on both apiservers,
//! distinct serving certificates, the same user, bootstrap controllers holding no ports,
//! every referenced credential present, blue/green generation naming; plus determinism
//! and the split between public manifests and key material.

mod common;

use std::collections::BTreeMap;

use base64::Engine;
use selfhosted_manifests::{render, render_public, Networking, Rendered};
use serde_json::{json, Value};

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).expect("yaml")
}

fn default_render() -> Rendered {
    render(&common::parse(&common::raw()), &common::material()).expect("render")
}

fn find<'a>(map: &'a BTreeMap<String, String>, needle: &str) -> Value {
    let hits: Vec<&'a String> = map.iter().filter(|(k, _)| k.contains(needle)).map(|(_, v)| v).collect();
    assert_eq!(hits.len(), 1, "exactly one file matching {needle}");
    yaml(hits[0])
}

fn args(pod_spec: &Value) -> Vec<String> {
    pod_spec["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("str").to_string())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(&format!("{name}=")))
}

fn versions_to_check() -> [&'static str; 2] {
    ["v1.20.2", "v1.34.3"]
}

#[test]
fn both_apiservers_share_the_port_as_the_same_user_with_distinct_certs() {
    for v in versions_to_check() {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(v.into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
        let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
        let boot_spec = &boot["spec"];
        let ds_spec = &ds["spec"]["template"]["spec"];
        let (ba, da) = (args(boot_spec), args(ds_spec));
        for a in [&ba, &da] {
            assert_eq!(flag(a, "--permit-port-sharing"), Some("true"), "{v}");
            assert_eq!(flag(a, "--secure-port"), Some("6443"), "{v}");
            assert_eq!(
                flag(a, "--advertise-address"),
                Some("$(POD_IP)"),
                "{v}: reachable, not loopback"
            );
        }
        assert_eq!(
            flag(&ba, "--tls-cert-file"),
            Some("/etc/kubernetes/bootstrap-secrets/bootstrap-apiserver.crt")
        );
        assert_eq!(
            flag(&da, "--tls-cert-file"),
            Some("/etc/kubernetes/secrets/apiserver.crt")
        );
        assert_eq!(
            flag(&ba, "--tls-private-key-file"),
            Some("/etc/kubernetes/bootstrap-secrets/bootstrap-apiserver.key")
        );
        assert_eq!(
            flag(&da, "--tls-private-key-file"),
            Some("/etc/kubernetes/secrets/apiserver.key")
        );
        // Same effective user: SO_REUSEPORT is per user.
        assert_eq!(
            boot_spec["securityContext"]["runAsUser"], ds_spec["securityContext"]["runAsUser"],
            "{v}"
        );
        assert!(boot_spec["securityContext"]["runAsUser"].is_i64());
        assert!(boot_spec["containers"][0]["securityContext"]["runAsUser"].is_null());
        assert!(ds_spec["containers"][0]["securityContext"]["runAsUser"].is_null());
        assert_eq!(boot_spec["hostNetwork"], true);
        assert_eq!(ds_spec["hostNetwork"], true);
        // The label only the provider sets (NodeRestriction refuses it to kubelets), never
        // the one a kubelet sets on itself.
        assert_eq!(
            ds_spec["nodeSelector"],
            json!({ "node-role.kubernetes.io/control-plane": "" })
        );
        let tolerates = ds_spec["tolerations"]
            .as_array()
            .expect("tolerations")
            .iter()
            .any(|t| t["key"] == "node-role.kubernetes.io/control-plane");
        assert!(tolerates);
        // The bootstrap secrets and the self-hosted Secret hold different serving keys.
        let secret = find(&r.secret_manifests, "secret-kube-system-kube-apiserver");
        let b64 = |s: &Value| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_str().expect("b64"))
                    .expect("b64"),
            )
            .expect("utf8")
        };
        assert_ne!(
            b64(&secret["data"]["apiserver.key"]),
            r.bootstrap_secrets["bootstrap-secrets/bootstrap-apiserver.key"]
        );
        assert_eq!(
            b64(&secret["data"]["apiserver.key"]),
            common::material()["tls/apiserver.key"]
        );
    }
}

#[test]
fn bootstrap_controllers_leave_the_secure_ports_free() {
    for v in versions_to_check() {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(v.into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        for (name, port) in [
            ("bootstrap-kube-controller-manager", "10257"),
            ("bootstrap-kube-scheduler", "10259"),
        ] {
            let pod = find(&r.bootstrap_manifests, name);
            let a = args(&pod["spec"]);
            assert_eq!(flag(&a, "--secure-port"), Some("0"), "{v} {name}");
            assert_eq!(flag(&a, "--leader-elect"), Some("true"), "{v} {name}");
            if v.starts_with("v1.20") {
                assert_eq!(flag(&a, "--port"), Some("0"), "{v} {name}: 1.20 insecure port off");
            } else {
                assert_eq!(flag(&a, "--port"), None);
            }
            assert!(!a.iter().any(|x| x.contains(port)), "{name} must not hold {port}");
        }
        let kcm = find(&r.manifests, "deployment-kube-system-kube-controller-manager");
        assert_eq!(
            flag(&args(&kcm["spec"]["template"]["spec"]), "--secure-port"),
            Some("10257")
        );
        let sched = find(&r.manifests, "deployment-kube-system-kube-scheduler");
        assert_eq!(
            flag(&args(&sched["spec"]["template"]["spec"]), "--secure-port"),
            Some("10259")
        );
    }
}

/// Every file a component reads from its credentials folder is actually provided.
#[test]
fn every_referenced_credential_is_provided() {
    let r = default_render();
    for (file, text) in r.bootstrap_manifests.iter().chain(&r.recovery_manifests) {
        let spec = &yaml(text)["spec"];
        let mut referenced: Vec<String> = args(spec);
        for c in spec["containers"].as_array().unwrap() {
            referenced.extend(
                c["command"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .map(String::from),
            );
        }
        for arg in referenced {
            let path = arg.split_once('=').map_or(arg.as_str(), |(_, p)| p);
            for (dir, provided) in [
                ("/etc/kubernetes/bootstrap-secrets/", &r.bootstrap_secrets),
                ("/etc/kubernetes/recovery-secrets/", &r.recovery_secrets),
            ] {
                if let Some(f) = path.strip_prefix(dir) {
                    let key = format!("{}/{f}", dir.trim_end_matches('/').rsplit('/').next().unwrap());
                    assert!(provided.contains_key(&key), "{file}: {arg} not provided as {key}");
                }
            }
        }
    }
    assert!(
        r.recovery_secrets
            .keys()
            .all(|k| !k.contains("ca.key") && !k.contains("kubeconfig")),
        "the recovery apiserver gets no CA key and no kubeconfig: {:?}",
        r.recovery_secrets.keys()
    );
    for (needle, secret) in [
        ("daemonset-kube-system-kube-apiserver-", "kube-apiserver"),
        (
            "deployment-kube-system-kube-controller-manager",
            "kube-controller-manager",
        ),
    ] {
        let obj = find(&r.manifests, needle);
        let spec = &obj["spec"]["template"]["spec"];
        assert_eq!(spec["volumes"][0]["secret"]["secretName"], secret);
        let s = find(&r.secret_manifests, &format!("secret-kube-system-{secret}.yaml"));
        for arg in args(spec) {
            if let Some((_, path)) = arg.split_once('=') {
                if let Some(f) = path.strip_prefix("/etc/kubernetes/secrets/") {
                    assert!(s["data"][f].is_string(), "{needle}: {arg} not in Secret {secret}");
                }
            }
        }
    }
}

#[test]
fn tls_bootstrapping_objects_are_present() {
    let r = default_render();
    let token = find(&r.secret_manifests, "secret-kube-system-bootstrap-token-abcdef");
    assert_eq!(token["type"], "bootstrap.kubernetes.io/token");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        token["data"]["auth-extra-groups"],
        b64("system:bootstrappers:selfhosted:workers")
    );
    let controllers_token = find(&r.secret_manifests, "secret-kube-system-bootstrap-token-ctrlab");
    assert_eq!(
        controllers_token["data"]["auth-extra-groups"],
        b64("system:bootstrappers:selfhosted:controllers")
    );
    let crbs: Vec<Value> = r
        .manifests
        .iter()
        .filter(|(k, _)| k.contains("clusterrolebinding"))
        .map(|(_, v)| yaml(v))
        .collect();
    let bound = |role: &str, group: &str| {
        crbs.iter().any(|c| {
            c["roleRef"]["name"] == role
                && c["subjects"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["kind"] == "Group" && s["name"] == group))
        })
    };
    assert!(bound("system:node-bootstrapper", "system:bootstrappers"));
    // Kubernetes' approver grants a bootstrapper any node name: the controllers' token
    // only. The workers' requests are left to the provider's approver.
    assert!(bound(
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:bootstrappers:selfhosted:controllers"
    ));
    for group in ["system:bootstrappers", "system:bootstrappers:selfhosted:workers"] {
        assert!(!bound(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            group
        ));
    }
    let approver = find(&r.manifests, "deployment-kube-system-selfhosted-csr-approver");
    let spec = &approver["spec"]["template"]["spec"];
    assert_eq!(
        spec["nodeSelector"],
        json!({ "node-role.kubernetes.io/control-plane": "" })
    );
    assert_eq!(spec["hostNetwork"], true);
    let command: Vec<&str> = spec["containers"][0]["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        command,
        [
            "selfhosted-agent",
            "approve-csrs",
            "--workers-group",
            "system:bootstrappers:selfhosted:workers",
            "--controller-label",
            "node-role.kubernetes.io/control-plane",
            "--controller-names",
            "kube-system/selfhosted-controllers"
        ]
    );
    assert!(bound_sa(&crbs, "selfhosted-csr-approver", "selfhosted-csr-approver"));
    assert!(bound(
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:nodes"
    ));
    assert!(
        !crbs.iter().any(|c| c["roleRef"]["name"] == "cluster-admin"),
        "system:masters needs no binding"
    );
    let mut raw = common::raw();
    raw.admin_group = Some(selfhosted_manifests::kubelet::ADMIN_GROUP.into());
    let with_group = render(&common::parse(&raw), &common::material()).expect("render");
    let admin = find(
        &with_group.manifests,
        "clusterrolebinding-cluster-selfhosted_cluster-admins",
    );
    assert_eq!(admin["roleRef"]["name"], "cluster-admin");
    assert_eq!(admin["subjects"][0]["name"], "selfhosted:cluster-admins");
    // The controller-manager signs kubelet certificates and runs the token controllers.
    let kcm = find(&r.manifests, "deployment-kube-system-kube-controller-manager");
    let a = args(&kcm["spec"]["template"]["spec"]);
    assert!(flag(&a, "--cluster-signing-key-file").is_some());
    assert_eq!(flag(&a, "--controllers"), Some("*,bootstrapsigner,tokencleaner"));
    // RBAC comes before workloads.
    let first_workload = r
        .manifests
        .keys()
        .position(|k| k.contains("daemonset") || k.contains("deployment"))
        .expect("workloads");
    let last_rbac = r
        .manifests
        .keys()
        .rposition(|k| k.contains("clusterrolebinding"))
        .expect("rbac");
    assert!(last_rbac < first_workload);
}

#[test]
fn control_plane_deployments_surge_beside_the_old_pod_on_a_shared_port() {
    let mut raw = common::raw();
    raw.controller_count = 1;
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    for name in ["kube-controller-manager", "kube-scheduler"] {
        let d = find(&r.manifests, &format!("deployment-kube-system-{name}"));
        assert_eq!(d["spec"]["replicas"], 1);
        // Replacing the only scheduler leaves nothing to schedule its successor.
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
        let pod = &d["spec"]["template"]["spec"];
        assert!(pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"].is_null());
        assert!(pod["affinity"]["podAntiAffinity"].is_object());
        let container = &pod["containers"][0];
        assert!(container["ports"].is_null(), "no host port for the scheduler to refuse");
        assert_eq!(flag(&args(pod), "--permit-port-sharing"), Some("true"), "{name}");
    }
    let three = default_render();
    assert_eq!(
        find(&three.manifests, "deployment-kube-system-kube-scheduler")["spec"]["replicas"],
        3
    );
    let mut raw = common::raw();
    raw.controller_replicas = Some(2);
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    assert_eq!(
        find(&r.manifests, "deployment-kube-system-kube-scheduler")["spec"]["replicas"],
        2
    );
}

#[test]
fn in_cluster_clients_bypass_kube_proxy_when_it_is_off() {
    let mut raw = common::raw();
    raw.kube_proxy = Some(false);
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    assert!(!r.manifests.keys().any(|k| k.contains("kube-proxy")));
    let dns = find(&r.manifests, "deployment-kube-system-coredns");
    let env = &dns["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["name"], "KUBERNETES_SERVICE_HOST");
    assert_eq!(env[0]["value"], "nemo.example.com");
    assert_eq!(env[1]["value"], "6443");
    let sched = find(&r.manifests, "deployment-kube-system-kube-scheduler");
    assert_eq!(
        sched["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        "127.0.0.1"
    );
    let with = default_render();
    assert!(
        find(&with.manifests, "deployment-kube-system-coredns")["spec"]["template"]["spec"]["containers"][0]["env"]
            .is_null()
    );
}

#[test]
fn apiserver_generation_changes_with_the_apiserver_only() {
    let base = common::parse(&common::raw());
    let g0 = selfhosted_manifests::apiserver_generation(&base);
    assert_eq!(g0, selfhosted_manifests::apiserver_generation(&base.clone()));
    let mut other = base.clone();
    other.coredns = false;
    assert_eq!(
        g0,
        selfhosted_manifests::apiserver_generation(&other),
        "CoreDNS does not touch the apiserver"
    );
    let mut bumped = common::raw();
    bumped.kubernetes_version = Some("v1.34.4".into());
    let g1 = selfhosted_manifests::apiserver_generation(&common::parse(&bumped));
    assert_ne!(g0, g1);
    assert!(g1.starts_with("v1-34-4-"));
    let mut flags = common::raw();
    flags
        .extra_flags
        .insert("kube_apiserver".into(), vec!["--audit-log-maxage=7".into()]);
    assert_ne!(g0, selfhosted_manifests::apiserver_generation(&common::parse(&flags)));
    // The old and new DaemonSets have different names and selectors, so both can run.
    let r0 = render_public(&base).expect("render");
    let r1 = render_public(&common::parse(&bumped)).expect("render");
    let k0: Vec<&String> = r0.keys().filter(|k| k.contains("kube-apiserver-v1")).collect();
    let k1: Vec<&String> = r1.keys().filter(|k| k.contains("kube-apiserver-v1")).collect();
    assert_ne!(k0, k1);
}

#[test]
fn a_new_credentials_revision_rolls_the_control_plane() {
    let base = common::parse(&common::raw());
    let annotation = |m: &BTreeMap<String, String>, needle: &str| {
        find(m, needle)["spec"]["template"]["metadata"]["annotations"]["selfhosted.dev/credentials-revision"].clone()
    };
    let r0 = render_public(&base).expect("render");
    assert!(
        annotation(&r0, "deployment-kube-system-kube-scheduler").is_null(),
        "no revision, no annotation"
    );
    let mut renewed = base.clone();
    renewed.credentials_revision = "2".into();
    assert_ne!(
        selfhosted_manifests::apiserver_generation(&base),
        selfhosted_manifests::apiserver_generation(&renewed),
        "a renewal is a new apiserver generation (blue/green)"
    );
    let r2 = render_public(&renewed).expect("render");
    for workload in [
        "deployment-kube-system-kube-scheduler",
        "deployment-kube-system-kube-controller-manager",
        "daemonset-kube-system-kube-apiserver",
    ] {
        assert_eq!(annotation(&r2, workload), "2", "{workload} carries the revision");
    }
    let mut again = base.clone();
    again.credentials_revision = "2".into();
    assert_eq!(
        render_public(&again).expect("render"),
        r2,
        "same revision, same manifests"
    );
}

#[test]
fn rendering_is_deterministic() {
    for net in Networking::ALL {
        let mut raw = common::raw();
        raw.networking = Some(net.name().into());
        let p = common::parse(&raw);
        let a = render(&p, &common::material()).expect("render");
        let b = render(&common::parse(&raw), &common::material()).expect("render");
        assert_eq!(a, b);
        assert_eq!(render_public(&p).expect("public"), a.manifests);
    }
}

#[test]
fn public_manifests_hold_no_key_material_and_ignore_it() {
    let r = default_render();
    for (k, v) in &r.manifests {
        assert!(!v.contains("PRIVATE KEY"), "{k}");
        assert!(!v.contains(common::TOKEN_SECRET), "{k}");
        assert!(!v.contains("kind: Secret"), "{k}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(common::TOKEN_SECRET);
        assert!(!v.contains(&b64), "{k}");
    }
    for v in r.bootstrap_manifests.values() {
        assert!(!v.contains("PRIVATE KEY") && !v.contains(common::TOKEN_SECRET));
    }
    // Different keys, same public manifests and static pods: known at plan time.
    let mut other = common::material();
    for v in other.values_mut() {
        *v = v.replace("fake", "other");
    }
    other.insert("auth/bootstrap-token".into(), "zyxwvu.zyxwvutsrqponmlk".into());
    other.insert(
        "auth/controller-bootstrap-token".into(),
        "zyxwvc.zyxwvutsrqponmlk".into(),
    );
    let r2 = render(&common::parse(&common::raw()), &other).expect("render");
    assert_eq!(r.manifests, r2.manifests);
    assert_eq!(r.bootstrap_manifests, r2.bootstrap_manifests);
    assert_ne!(r.secret_manifests, r2.secret_manifests);
}

#[test]
fn every_object_is_labelled_and_files_are_ordered() {
    let mut raw = common::raw();
    raw.extra_manifests = vec!["apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\n  namespace: default\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\nstringData:\n  a: b\n".into()];
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    for (k, v) in r
        .manifests
        .iter()
        .chain(&r.secret_manifests)
        .chain(&r.bootstrap_manifests)
    {
        let o = yaml(v);
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "terraform-provider-selfhosted",
            "{k}"
        );
    }
    assert!(r.manifests.contains_key("manifests/30-configmap-default-mine.yaml"));
    assert!(
        r.secret_manifests.contains_key("manifests/30-secret-default-s.yaml"),
        "user Secrets are sensitive"
    );
    let ranks: Vec<u32> = r
        .manifests
        .keys()
        .map(|k| k["manifests/".len()..][..2].parse().expect("rank"))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
    let order: Vec<&String> = r
        .manifests
        .keys()
        .filter(|k| k.contains("daemonset") || k.contains("deployment"))
        .collect();
    assert!(order[0].contains("kube-apiserver"), "apiserver first: {order:?}");
}

#[test]
fn node_contract_matches_the_assets() {
    let r = default_render();
    let n = &r.node;
    assert_eq!(n.cluster_dns_ip, "10.3.0.10");
    let dns = find(&r.manifests, "service-kube-system-kube-dns");
    assert_eq!(dns["spec"]["clusterIP"], "10.3.0.10");
    let cfg = yaml(&n.kubelet_config);
    assert_eq!(cfg["kind"], "KubeletConfiguration");
    assert_eq!(cfg["clusterDNS"][0], "10.3.0.10");
    assert_eq!(cfg["clusterDomain"], "cluster.local");
    assert_eq!(cfg["staticPodPath"], "/etc/kubernetes/manifests");
    assert_eq!(cfg["rotateCertificates"], true);
    assert_eq!(cfg["authentication"]["x509"]["clientCAFile"], "/etc/kubernetes/ca.crt");
    assert!(n
        .kubelet_flags
        .contains(&"--bootstrap-kubeconfig=/etc/kubernetes/kubeconfig".to_string()));
    assert_eq!(n.controller_label, "node.kubernetes.io/controller=true");
    assert_eq!(n.controller_taint, "node-role.kubernetes.io/control-plane:NoSchedule");
    assert!(
        n.controller_kubelet_flags
            .iter()
            .all(|f| !f.contains("--node-labels=node-role")),
        "a kubelet may not set node-role labels"
    );
    assert!(n
        .controller_unit
        .contains("--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"));
    assert!(!n.worker_unit.contains("--register-with-taints"));
    let bu = yaml(&n.controller_butane);
    assert_eq!(bu["storage"]["files"][0]["contents"]["inline"], n.kubelet_config);
    assert_eq!(bu["systemd"]["units"][0]["contents"], n.controller_unit);
    assert_eq!(bu["systemd"]["units"][1]["name"], "kubelet.path");
    assert!(n.path_unit.contains("PathExists=/etc/kubernetes/kubeconfig"));
}

/// The self-hosted apiserver's arguments less the one flag only it has: at SIGTERM it waits
/// for the load balancer (`--shutdown-delay-duration`); the bootstrap and recovery apiservers
/// hand over through the shared port and stop at once.
fn short_lived_args(daemonset: &Value) -> Vec<String> {
    let all = args(&daemonset["spec"]["template"]["spec"]);
    let delay = "--shutdown-delay-duration=5s".to_string();
    assert!(all.contains(&delay), "{all:?}");
    all.into_iter().filter(|a| *a != delay).collect()
}

/// Apart from where credentials live and which serving pair they use, the bootstrap and
/// self-hosted apiservers run the same command line (an upgrade cannot drift between them).
#[test]
fn bootstrap_and_self_hosted_apiservers_differ_only_in_credential_paths() {
    for v in versions_to_check() {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(v.into());
        raw.extra_flags
            .insert("kube_apiserver".into(), vec!["--audit-log-maxage=7".into()]);
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
        let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
        let normalized: Vec<String> = args(&boot["spec"])
            .iter()
            .map(|a| {
                a.replace(
                    "/etc/kubernetes/bootstrap-secrets/bootstrap-apiserver.",
                    "/etc/kubernetes/secrets/apiserver.",
                )
                .replace("/etc/kubernetes/bootstrap-secrets/", "/etc/kubernetes/secrets/")
                // The one flag that differs on purpose (see short_lived_apiservers_leave_…).
                .replace("--endpoint-reconciler-type=none", "--endpoint-reconciler-type=lease")
            })
            .collect();
        assert_eq!(normalized, short_lived_args(&ds), "{v}");
        assert!(normalized.contains(&"--audit-log-maxage=7".to_string()));
        assert_eq!(
            boot["spec"]["containers"][0]["image"],
            ds["spec"]["template"]["spec"]["containers"][0]["image"]
        );
    }
}

/// The `default/kubernetes` Endpoints belong to the self-hosted apiservers (lease reconciler);
/// the bootstrap and recovery apiservers, which share their controller's address with a
/// self-hosted one and exit while it serves, never write them (`none`), so their exit cannot
/// take the address away. Every supported minor has the flag (none is gone in the table).
#[test]
fn short_lived_apiservers_leave_the_kubernetes_endpoints_to_the_self_hosted_ones() {
    use selfhosted_manifests::versions::{FlagOwner, TABLE};
    for row in TABLE {
        assert!(
            !row.flag_gone(FlagOwner::Apiserver, "--endpoint-reconciler-type"),
            "1.{}",
            row.minor
        );
        let mut raw = common::raw();
        raw.kubernetes_version = Some(format!("v1.{}.0", row.minor));
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
        let recovery = find(&r.recovery_manifests, "kube-apiserver-recovery.yaml");
        let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
        let reconciler = |spec: &Value| flag(&args(spec), "--endpoint-reconciler-type").map(str::to_owned);
        assert_eq!(reconciler(&boot["spec"]).as_deref(), Some("none"), "1.{}", row.minor);
        assert_eq!(
            reconciler(&recovery["spec"]).as_deref(),
            Some("none"),
            "1.{}",
            row.minor
        );
        assert_eq!(
            reconciler(&ds["spec"]["template"]["spec"]).as_deref(),
            Some("lease"),
            "1.{}",
            row.minor
        );
    }
}

/// Request headers (`X-Remote-User`, `X-Remote-Group`) count only from the front-proxy client
/// certificate's name, on every apiserver; the apiserver's kubelet client is bound to
/// `system:kubelet-api-admin` through its group, not made a member of `system:masters`.
#[test]
fn request_headers_count_only_from_the_front_proxy_client_and_the_kubelet_client_is_no_master() {
    use selfhosted_manifests::control_plane::{FRONT_PROXY_CLIENT_CN, KUBELET_CLIENT_GROUP};
    for v in versions_to_check() {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(v.into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
        let recovery = find(&r.recovery_manifests, "kube-apiserver-recovery.yaml");
        let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
        for spec in [&boot["spec"], &recovery["spec"], &ds["spec"]["template"]["spec"]] {
            assert_eq!(
                flag(&args(spec), "--requestheader-allowed-names"),
                Some(FRONT_PROXY_CLIENT_CN),
                "{v}"
            );
        }
        let binding = find(
            &r.manifests,
            "clusterrolebinding-cluster-selfhosted_apiserver-kubelet-api-admin",
        );
        assert_eq!(binding["roleRef"]["name"], "system:kubelet-api-admin");
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": KUBELET_CLIENT_GROUP }])
        );
    }
}

/// A patch bump changes exactly the objects running Kubernetes images (the apiserver under
/// a new generation name) and nothing else, so a plan shows just those.
#[test]
fn version_bump_changes_only_kubernetes_workloads() {
    let a = render_public(&common::parse(&common::raw())).expect("render");
    let mut raw = common::raw();
    raw.kubernetes_version = Some("v1.34.4".into());
    let b = render_public(&common::parse(&raw)).expect("render");
    let changed: std::collections::BTreeSet<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            k.trim_start_matches("manifests/")
                .split("-v1-")
                .next()
                .unwrap_or(k)
                .to_string()
        })
        .collect();
    assert_eq!(
        changed.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "60-daemonset-kube-system-kube-apiserver",
            "61-deployment-kube-system-kube-scheduler.yaml",
            "62-deployment-kube-system-kube-controller-manager.yaml",
            "63-daemonset-kube-system-kube-proxy.yaml",
        ]
    );
}

/// The generation of a fixed input is pinned: it must not move with build features such as
/// serde_json's `preserve_order` (else a provider rebuild would plan an apiserver rollout).
/// Update the constant only when the apiserver pod changes on purpose.
#[test]
fn apiserver_generation_is_stable_across_builds() {
    let p = common::parse(&common::raw());
    assert_eq!(selfhosted_manifests::apiserver_generation(&p), "v1-34-3-e803a18b");
}

/// A self-hosted apiserver told to stop (an OS reboot, a retiring generation) fails `/readyz`
/// and serves on for 5 s, so a load balancer checking `/readyz` takes it out before its
/// listener closes; a user with a slower check sets their own delay, which replaces ours.
#[test]
fn a_self_hosted_apiserver_serves_on_while_a_load_balancer_takes_it_out() {
    let r = render(&common::parse(&common::raw()), &common::material()).expect("render");
    let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
    let delays = |a: Vec<String>| -> Vec<String> {
        a.into_iter()
            .filter(|f| f.starts_with("--shutdown-delay-duration="))
            .collect()
    };
    assert_eq!(
        delays(args(&ds["spec"]["template"]["spec"])),
        ["--shutdown-delay-duration=5s"]
    );
    assert_eq!(ds["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 35);
    let mut raw = common::raw();
    raw.extra_flags
        .insert("kube_apiserver".into(), vec!["--shutdown-delay-duration=35s".into()]);
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
    assert_eq!(
        delays(args(&ds["spec"]["template"]["spec"])),
        ["--shutdown-delay-duration=35s"]
    );
    // SIGKILL waits for the delay and the drain after it.
    assert_eq!(ds["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 65);
}

/// kube-proxy and every pod network's node agent run on every node, whatever Kubernetes or
/// the user taints it with, and are never evicted — but a node whose kubelet stopped
/// reporting (`node.kubernetes.io/unreachable:NoSchedule`) is not one they must run on, so
/// a vanished worker does not hold up their rolling updates.
#[test]
fn node_agents_tolerate_every_taint_but_a_lost_node_s() {
    for networking in ["flannel", "calico", "cilium"] {
        let mut raw = common::raw();
        raw.networking = Some(networking.into());
        raw.daemonset_tolerations = vec!["example.com/dedicated".into()];
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let agents: Vec<&String> = r
            .manifests
            .iter()
            .filter(|(k, _)| k.contains("-daemonset-kube-system-") && !k.contains("kube-apiserver"))
            .map(|(_, v)| v)
            .collect();
        let mut names = Vec::new();
        for yaml_text in agents {
            let ds = yaml(yaml_text);
            names.push(ds["metadata"]["name"].as_str().unwrap_or_default().to_string());
            let tolerations = ds["spec"]["template"]["spec"]["tolerations"]
                .as_array()
                .expect("tolerations")
                .clone();
            let tolerates = |key: &str, effect: &str| {
                tolerations.iter().any(|t| {
                    t["operator"] == "Exists"
                        && (t["key"].is_null() || t["key"] == key)
                        && (t["effect"].is_null() || t["effect"] == effect)
                })
            };
            for (key, effect) in [
                ("node-role.kubernetes.io/control-plane", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/network-unavailable", "NoSchedule"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
                ("example.com/dedicated", "NoSchedule"),
                ("example.com/dedicated", "NoExecute"),
                ("anything.example/else", "NoExecute"),
            ] {
                assert!(
                    tolerates(key, effect),
                    "{networking}: {names:?} tolerates {key}:{effect}"
                );
            }
            assert!(
                !tolerates("node.kubernetes.io/unreachable", "NoSchedule"),
                "{networking}: {names:?} must not tolerate a lost node"
            );
        }
        assert!(names.iter().any(|n| n == "kube-proxy"), "{networking}: {names:?}");
        assert!(
            names.len() >= 2,
            "{networking}: kube-proxy and the network's agent: {names:?}"
        );
    }
}

/// flannel's VXLAN goes over the interface of the node's InternalIP (the kubelet's
/// `--node-ip`), which on the host's network is the pod's IP: not over whichever interface
/// holds the default route (a droplet's public one).
#[test]
fn flannel_tunnels_over_the_nodes_own_address() {
    let r = render(&common::parse(&common::raw()), &common::material()).expect("render");
    let ds = find(&r.manifests, "daemonset-kube-system-flannel");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    let container = &spec["containers"][0];
    assert!(
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .any(|a| a == "--iface=$(POD_IP)"),
        "{container}"
    );
    assert!(
        container["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "POD_IP" && e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"),
        "{container}"
    );
}

/// Calico takes the node's InternalIP as its address (the kubelet's `--node-ip`), as flannel
/// does, on every row of the version table: not the first interface that is up.
#[test]
fn calico_takes_the_nodes_own_address() {
    for version in ["v1.20.2", "v1.34.3"] {
        let mut raw = common::raw();
        raw.networking = Some("calico".into());
        raw.kubernetes_version = Some(version.into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let ds = find(&r.manifests, "daemonset-kube-system-calico-node");
        let container = &ds["spec"]["template"]["spec"]["containers"][0];
        let env = container["env"].as_array().expect("env");
        let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
        assert_eq!(value("IP"), Some("autodetect".into()), "{version}: {container}");
        assert_eq!(
            value("IP_AUTODETECTION_METHOD"),
            Some("kubernetes-internal-ip".into()),
            "{version}: {container}"
        );
    }
}

/// The agent's containers hold no capability and cannot gain one, in every pod it runs in:
/// the gates, the recovery pod's standby and hand-back, the CSR approver. The apiserver pods'
/// run as the apiservers' user, root, which owns what the hand-back writes and reads on the
/// host. An agent pinned by digest runs as pinned in every one.
#[test]
fn the_agent_runs_with_no_capability_anywhere_and_as_pinned() {
    let pinned = format!(
        "registry.example.internal/selfhosted-agent@sha256:{}",
        "0123456789abcdef".repeat(4)
    );
    let mut raw = common::raw();
    raw.container_images.insert("selfhosted_agent".into(), pinned.clone());
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    let recovery = find(&r.recovery_manifests, "kube-apiserver-recovery.yaml");
    let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
    let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
    let approver = find(&r.manifests, "deployment-kube-system-selfhosted-csr-approver");
    let mut seen = Vec::new();
    for spec in [
        &recovery["spec"],
        &ds["spec"]["template"]["spec"],
        &boot["spec"],
        &approver["spec"]["template"]["spec"],
    ] {
        let all = ["initContainers", "containers"]
            .iter()
            .flat_map(|k| spec[*k].as_array().cloned().unwrap_or_default());
        for c in all.filter(|c| c["image"] == pinned.as_str()) {
            let security = &c["securityContext"];
            assert_eq!(security["capabilities"], serde_json::json!({ "drop": ["ALL"] }), "{c}");
            assert_eq!(security["allowPrivilegeEscalation"], false, "{c}");
            assert_eq!(security["readOnlyRootFilesystem"], true, "{c}");
            assert!(security["privileged"].is_null(), "{c}");
            seen.push(c["name"].as_str().unwrap().to_owned());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["approver", "hand-back", "reuseport-gate", "standby"]);
    let text = serde_json::to_string(&[&recovery, &ds, &boot, &approver]).unwrap();
    assert!(
        !text.contains("selfhosted-dev/selfhosted-agent"),
        "no agent image but the pinned one"
    );
}

/// Every apiserver pod first attaches the reuseport gate to the port it is about to share
/// (bind address included), as the apiserver's user, from the agent image a user can move.
#[test]
fn every_apiserver_pod_attaches_the_reuseport_gate_first() {
    let mut raw = common::raw();
    raw.extra_flags
        .insert("kube_apiserver".into(), vec!["--bind-address=10.0.0.5".into()]);
    raw.container_registry = Some("registry.example.internal".into());
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    let boot = find(&r.bootstrap_manifests, "bootstrap-kube-apiserver");
    let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
    for spec in [&boot["spec"], &ds["spec"]["template"]["spec"]] {
        let inits = spec["initContainers"].as_array().expect("init containers");
        assert_eq!(inits.len(), 1);
        let gate = &inits[0];
        assert_eq!(gate["name"], "reuseport-gate");
        assert_eq!(
            gate["command"],
            serde_json::json!(["selfhosted-agent", "gate", "--port", "6443", "--address", "10.0.0.5"])
        );
        // No privilege: the host sets tcp_migrate_req (the provider delivers it).
        let security = &gate["securityContext"];
        assert!(security["privileged"].is_null(), "{security}");
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(security["capabilities"]["add"].is_null(), "{security}");
        assert_eq!(spec["securityContext"]["runAsUser"], 0, "same user as the apiserver");
        let image = gate["image"].as_str().unwrap();
        assert!(
            image.starts_with("registry.example.internal/selfhosted-dev/selfhosted-agent:v"),
            "{image}"
        );
    }

    // Without a bind address the gate joins the apiserver's wildcard (dual-stack) listener.
    let r = default_render();
    let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
    assert_eq!(
        ds["spec"]["template"]["spec"]["initContainers"][0]["command"],
        serde_json::json!(["selfhosted-agent", "gate", "--port", "6443"])
    );
}

/// The recovery apiserver is the current self-hosted apiserver with credentials on disk: the
/// same command line apart from where credentials live and which serving pair it uses (the
/// bootstrap one, so it is never taken for the self-hosted apiserver), started only when no
/// apiserver listens, gated like every apiserver, and handing back to the self-hosted
/// apiserver's own certificate.
#[test]
fn the_recovery_apiserver_is_the_current_apiserver_standing_by() {
    for v in versions_to_check() {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(v.into());
        raw.extra_flags
            .insert("kube_apiserver".into(), vec!["--audit-log-maxage=7".into()]);
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let recovery = find(&r.recovery_manifests, "recovery-manifests/kube-apiserver-recovery.yaml");
        let ds = find(&r.manifests, "daemonset-kube-system-kube-apiserver-");
        let spec = &recovery["spec"];
        let normalized: Vec<String> = args(spec)
            .iter()
            .map(|a| {
                a.replace(
                    "/etc/kubernetes/recovery-secrets/recovery-apiserver.",
                    "/etc/kubernetes/secrets/apiserver.",
                )
                .replace("/etc/kubernetes/recovery-secrets/", "/etc/kubernetes/secrets/")
                .replace("--endpoint-reconciler-type=none", "--endpoint-reconciler-type=lease")
            })
            .collect();
        assert_eq!(normalized, short_lived_args(&ds), "{v}");
        assert_eq!(
            spec["containers"][0]["image"],
            ds["spec"]["template"]["spec"]["containers"][0]["image"]
        );
        assert_eq!(
            r.recovery_secrets["recovery-secrets/recovery-apiserver.crt"],
            r.bootstrap_secrets["bootstrap-secrets/bootstrap-apiserver.crt"]
        );
        assert_eq!(
            r.recovery_secrets["recovery-secrets/ca.crt"],
            common::material()["tls/ca.crt"]
        );

        let names = |list: &Value| -> Vec<String> {
            list.as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&spec["initContainers"]), ["standby", "reuseport-gate"]);
        assert_eq!(names(&spec["containers"]), ["kube-apiserver", "hand-back"]);
        assert_eq!(
            spec["initContainers"][0]["command"],
            serde_json::json!(["selfhosted-agent", "standby", "--port", "6443"])
        );
        let hand_back = &spec["containers"][1];
        assert_eq!(
            hand_back["command"],
            serde_json::json!([
                "selfhosted-agent",
                "hand-back",
                "--port",
                "6443",
                "--ca",
                "/etc/kubernetes/recovery-secrets/ca.crt",
                "--name",
                "kube-apiserver",
                "--manifest",
                "/etc/kubernetes/manifests/kube-apiserver-recovery.yaml",
                "--via",
                "::1",
                "--via",
                "127.0.0.1",
                "--via",
                "$(POD_IP)"
            ])
        );
        assert_eq!(
            spec["securityContext"]["runAsUser"], 0,
            "same user as the self-hosted apiserver"
        );
        assert_eq!(
            recovery["metadata"]["labels"]["k8s-app"], "kube-apiserver-recovery",
            "never selected as a self-hosted apiserver"
        );
    }
}

/// What the agent rewrites is what the renderer writes: the rendered manifest rearms, and the
/// rearmed one is still the same pod apart from its round.
#[test]
fn the_agent_rearms_the_rendered_recovery_pod() {
    use selfhosted_manifests::control_plane::{RECOVERY_MANIFEST, RECOVERY_ROUND_ANNOTATION};
    assert_eq!(RECOVERY_ROUND_ANNOTATION, selfhosted_agent::recovery::ROUND_ANNOTATION);
    let r = default_render();
    let text = &r.recovery_manifests[&format!("recovery-manifests/{RECOVERY_MANIFEST}")];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(RECOVERY_MANIFEST);
    std::fs::write(&file, text).unwrap();
    selfhosted_agent::recovery::rearm(&file, 1_790_000_000).unwrap();
    let mut before = yaml(text);
    let after = yaml(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(before["metadata"]["annotations"][RECOVERY_ROUND_ANNOTATION], "0");
    assert_eq!(
        after["metadata"]["annotations"][RECOVERY_ROUND_ANNOTATION],
        "1790000000"
    );
    before["metadata"]["annotations"][RECOVERY_ROUND_ANNOTATION] = "1790000000".into();
    assert_eq!(before, after);
}

fn bound_sa(crbs: &[Value], role: &str, sa: &str) -> bool {
    crbs.iter().any(|c| {
        c["roleRef"]["name"] == role
            && c["subjects"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["kind"] == "ServiceAccount" && s["name"] == sa))
    })
}
