//! Per-version table tests: no flag gone in a minor appears in its output, and API
//! versions and features follow the table.

mod common;

use selfhosted_manifests::versions::{self, FlagOwner};
use selfhosted_manifests::{render, Networking, Rendered};
use serde_json::Value;

fn docs(r: &Rendered) -> Vec<Value> {
    r.manifests
        .values()
        .chain(r.secret_manifests.values())
        .chain(r.bootstrap_manifests.values())
        .map(|y| serde_yaml_ng::from_str::<Value>(y).expect("yaml"))
        .collect()
}

fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj["kind"].as_str()? {
        "Pod" => Some(&obj["spec"]),
        "DaemonSet" | "Deployment" => Some(&obj["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// (owner, flag names) of every container that runs a Kubernetes component.
fn component_flags(objs: &[Value]) -> Vec<(FlagOwner, String, String)> {
    let mut out = Vec::new();
    for o in objs {
        let Some(spec) = pod_spec(o) else { continue };
        for c in spec["containers"].as_array().into_iter().flatten() {
            let owner = match c["name"].as_str() {
                Some("kube-apiserver") => FlagOwner::Apiserver,
                Some("kube-controller-manager") => FlagOwner::ControllerManager,
                Some("kube-scheduler") => FlagOwner::Scheduler,
                Some("kube-proxy") => FlagOwner::Proxy,
                _ => continue,
            };
            let args = c["command"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(c["args"].as_array().into_iter().flatten());
            for a in args.filter_map(Value::as_str).filter(|a| a.starts_with("--")) {
                out.push((owner, a.split('=').next().unwrap_or(a).to_string(), a.to_string()));
            }
        }
    }
    out
}

fn render_minor(minor: u32, net: Networking) -> (Rendered, Vec<Value>) {
    let mut raw = common::raw();
    raw.kubernetes_version = Some(format!("v1.{minor}.2"));
    raw.networking = Some(net.name().into());
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    let d = docs(&r);
    (r, d)
}

#[test]
fn no_gone_flag_in_any_version() {
    let mut checked = 0;
    for row in versions::TABLE {
        for net in Networking::ALL {
            let (r, objs) = render_minor(row.minor, net);
            let flags = component_flags(&objs);
            assert!(
                flags.len() > 40,
                "v1.{}: too few flags found ({})",
                row.minor,
                flags.len()
            );
            for (owner, name, full) in &flags {
                assert!(
                    !row.flag_gone(*owner, name),
                    "v1.{}: {owner:?} flag {full} is gone in this version",
                    row.minor
                );
                checked += 1;
            }
            for f in r.node.kubelet_flags.iter().chain(&r.node.controller_kubelet_flags) {
                let name = f.split('=').next().unwrap_or(f);
                assert!(
                    !row.flag_gone(FlagOwner::Kubelet, name),
                    "v1.{}: kubelet flag {f} is gone",
                    row.minor
                );
                checked += 1;
            }
        }
    }
    println!("{checked} component flags checked against the table");
}

#[test]
fn insecure_port_flags_only_where_they_exist() {
    for row in versions::TABLE {
        let (_, objs) = render_minor(row.minor, Networking::Flannel);
        let flags = component_flags(&objs);
        let has = |owner: FlagOwner, f: &str| flags.iter().any(|(o, _, full)| *o == owner && full == f);
        assert_eq!(
            has(FlagOwner::Apiserver, "--insecure-port=0"),
            row.insecure_port_flags,
            "v1.{}",
            row.minor
        );
        assert_eq!(
            has(FlagOwner::ControllerManager, "--port=0"),
            row.insecure_port_flags,
            "v1.{}",
            row.minor
        );
        assert_eq!(
            has(FlagOwner::Scheduler, "--port=0"),
            row.insecure_port_flags,
            "v1.{}",
            row.minor
        );
    }
    assert!(versions::row(20).expect("1.20").insecure_port_flags);
    assert!(!versions::row(30).expect("1.30").insecure_port_flags);
}

#[test]
fn api_versions_follow_the_version() {
    for row in versions::TABLE {
        let (r, objs) = render_minor(row.minor, Networking::Calico);
        let pdbs: Vec<&Value> = objs.iter().filter(|o| o["kind"] == "PodDisruptionBudget").collect();
        assert_eq!(pdbs.len(), 3, "kcm, scheduler, coredns PDBs");
        for p in pdbs {
            let want = if row.minor < 21 { "policy/v1beta1" } else { "policy/v1" };
            assert_eq!(p["apiVersion"], want, "v1.{}", row.minor);
        }
        let all: String = r.manifests.values().cloned().collect();
        if row.minor >= 21 {
            assert!(
                !all.contains("policy/v1beta1"),
                "v1.{}: policy/v1beta1 is gone",
                row.minor
            );
        }
        for o in &objs {
            let api = o["apiVersion"].as_str().expect("apiVersion");
            assert!(
                !api.ends_with("beta1") || row.minor < 21,
                "v1.{}: {api} {}",
                row.minor,
                o["kind"]
            );
            if o["kind"] == "DaemonSet" {
                let surge = &o["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"];
                assert!(
                    row.daemonset_max_surge || surge.is_null(),
                    "v1.{}: DaemonSet maxSurge before it exists",
                    row.minor
                );
            }
        }
        // The policy that keeps the kubernetes Service's last address: from 1.30, bound.
        let policies: Vec<&Value> = objs
            .iter()
            .filter(|o| o["kind"] == "ValidatingAdmissionPolicy" || o["kind"] == "ValidatingAdmissionPolicyBinding")
            .collect();
        if row.minor >= 30 {
            assert_eq!(policies.len(), 2, "v1.{}: the policy and its binding", row.minor);
            for p in &policies {
                assert_eq!(p["apiVersion"], "admissionregistration.k8s.io/v1");
            }
            let binding = policies
                .iter()
                .find(|p| p["kind"] == "ValidatingAdmissionPolicyBinding")
                .unwrap();
            assert_eq!(binding["spec"]["policyName"], policies[0]["metadata"]["name"]);
            assert_eq!(binding["spec"]["validationActions"][0], "Deny");
        } else {
            assert!(
                policies.is_empty(),
                "v1.{}: no ValidatingAdmissionPolicy before 1.30",
                row.minor
            );
        }
        let cfg: Value = serde_yaml_ng::from_str(&r.node.kubelet_config).expect("kubelet config");
        assert_eq!(
            cfg["containerRuntimeEndpoint"].is_string(),
            row.kubelet_runtime_endpoint_in_config,
            "v1.{}",
            row.minor
        );
        assert_eq!(
            r.node.kubelet_flags.iter().any(|f| f == "--container-runtime=remote"),
            row.kubelet_container_runtime_flag,
            "v1.{}",
            row.minor
        );
    }
}

#[test]
fn kube_images_carry_the_version_and_table_tags() {
    for row in versions::TABLE {
        let (r, _) = render_minor(row.minor, Networking::Cilium);
        let all: String = r
            .manifests
            .values()
            .chain(r.bootstrap_manifests.values())
            .cloned()
            .collect();
        for c in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
        ] {
            assert!(
                all.contains(&format!("registry.k8s.io/{c}:v1.{}.2", row.minor)),
                "v1.{} {c}",
                row.minor
            );
        }
        assert!(all.contains(&format!("registry.k8s.io/{}:{}", row.coredns_path, row.coredns_tag)));
        assert!(all.contains(&format!("quay.io/cilium/cilium:{}", row.cilium_tag)));
    }
}

#[test]
fn table_is_sorted_and_covers_the_supported_range() {
    let minors: Vec<u32> = versions::TABLE.iter().map(|r| r.minor).collect();
    let mut sorted = minors.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(minors, sorted);
    assert_eq!(minors, [20, 30, 31, 32, 33, 34, 35, 36, 37]);
    assert!(versions::DEFAULT_VERSION.row().is_some());
}

/// CoreDNS and etcd tags checked against something independent of the table: `CoreDNSVersion` and
/// `DefaultEtcdVersion` in kubeadm's constants of each `k8s.io/kubernetes` release whose source the lane's build
/// fetched from the Go module proxy (`tests/lane/build-go.sh`). Under CI (`CI=true`) those
/// sources must be there, since the test command builds the lane first.
#[test]
fn coredns_and_etcd_tags_match_kubeadm_of_the_releases_the_lane_builds() {
    let cache = std::env::var("SELFHOSTED_LANE_CACHE").unwrap_or_else(|_| "/var/cache/selfhosted-lane".into());
    let modules = std::path::Path::new(&cache).join("gomod/k8s.io");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&modules).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(release) = name.strip_prefix("kubernetes@") else {
            continue;
        };
        let Some(minor) = versions::release_minor(release) else {
            continue;
        };
        let Ok(constants) = std::fs::read_to_string(entry.path().join("cmd/kubeadm/app/constants/constants.go")) else {
            continue;
        };
        let kubeadm = constants
            .lines()
            .find_map(|l| l.trim().strip_prefix("CoreDNSVersion = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no CoreDNSVersion in {release}'s kubeadm constants"));
        if versions::row(minor).is_none() {
            continue;
        }
        let (r, _) = render_minor(minor, Networking::Flannel);
        let all: String = r.manifests.values().cloned().collect();
        assert!(
            all.contains(&format!("registry.k8s.io/coredns/coredns:{kubeadm}")),
            "{release}: kubeadm runs CoreDNS {kubeadm}; the table says {}",
            versions::row(minor).unwrap().coredns_tag
        );
        let etcd = constants
            .lines()
            .find_map(|l| l.trim().strip_prefix("DefaultEtcdVersion = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no DefaultEtcdVersion in {release}'s kubeadm constants"));
        assert_eq!(
            versions::row(minor).unwrap().etcd_tag,
            etcd,
            "{release}: kubeadm runs etcd {etcd}"
        );
        checked.push(format!("{release}: CoreDNS {kubeadm}, etcd {etcd}"));
    }
    if checked.len() < 3 {
        let why = format!("kubeadm constants of fewer than 3 releases under {}", modules.display());
        selfhosted_test_support::skip_or_fail(
            "image tags against kubeadm (partly)",
            &format!("{why} (run tests/lane/build-go.sh)"),
        );
    }
    eprintln!("CoreDNS tags confirmed against kubeadm: {checked:?}");
}
