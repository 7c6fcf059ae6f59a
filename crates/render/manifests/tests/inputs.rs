//! Every input that cannot be rendered is reported with its attribute path and a hint of
//! what to write instead; good inputs parse to the documented defaults.

mod common;

use selfhosted_manifests::{parse_params, render_public, InputError, Networking, RawParams};

fn errors(raw: &RawParams) -> Vec<InputError> {
    match parse_params(raw) {
        Ok(_) => panic!("expected errors for {raw:?}"),
        Err(e) => e,
    }
}

fn one(raw: &RawParams, path: &str, contains: &str) {
    let e = errors(raw);
    assert!(
        e.iter()
            .any(|e| e.path_string() == path && e.message.contains(contains)),
        "want {path}: …{contains}…, got {:?}",
        e.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
}

#[test]
fn defaults() {
    let p = common::parse(&common::raw());
    assert_eq!(p.kubernetes_version, selfhosted_manifests::DEFAULT_VERSION);
    assert_eq!(p.kubernetes_version.to_string(), "v1.34.3");
    assert_eq!(p.pod_cidr.to_string(), "10.2.0.0/16");
    assert_eq!(p.service_cidr.to_string(), "10.3.0.0/16");
    assert_eq!(p.cluster_domain_suffix, "cluster.local");
    assert_eq!(p.networking, Networking::Flannel);
    assert!(p.kube_proxy && p.coredns);
    assert_eq!(p.api_server_port, 6443);
    assert_eq!(p.cluster_dns_ip().to_string(), "10.3.0.10");
    assert_eq!(p.kubernetes_service_ip().to_string(), "10.3.0.1");
}

#[test]
fn versions() {
    let mut raw = common::raw();
    for ok in ["v1.20.2", "v1.30.0", "v1.37.1"] {
        raw.kubernetes_version = Some(ok.into());
        assert!(parse_params(&raw).is_ok(), "{ok}");
    }
    for (bad, hint) in [
        ("v1.29.1", "not supported"),
        ("v1.21.0", "not supported"),
        ("v1.38.0", "not supported"),
        ("v2.34.0", "not supported"),
        ("v1.34", "v1.MINOR.PATCH"),
        ("latest", "v1.MINOR.PATCH"),
        ("v1.34.0-rc.1", "v1.MINOR.PATCH"),
        ("", "v1.MINOR.PATCH"),
        // One spelling, as Kubernetes tags its releases; the hint is itself valid.
        ("1.34.3", "write \"v1.34.3\""),
        (" v1.34.3", "write \"v1.34.3\""),
        ("1.29.1", "not supported"),
    ] {
        raw.kubernetes_version = Some(bad.into());
        one(&raw, "kubernetes_version", hint);
    }
    raw.kubernetes_version = Some("v1.19.0".into());
    let e = errors(&raw);
    assert!(
        e[0].message.contains("1.20, 1.30"),
        "names the supported minors: {}",
        e[0]
    );
}

#[test]
fn cidrs() {
    let mut raw = common::raw();
    raw.pod_cidr = Some("10.3.0.0/16".into());
    one(&raw, "service_cidr", "overlaps pod_cidr");
    raw.pod_cidr = Some("10.0.0.0/8".into());
    one(&raw, "service_cidr", "overlaps");
    raw.pod_cidr = Some("10.2.0.0/33".into());
    one(&raw, "pod_cidr", "not a CIDR");
    raw.pod_cidr = None;
    raw.service_cidr = Some("10.3.0.5/16".into());
    one(&raw, "service_cidr", "host bits");
    raw.service_cidr = Some("10.3.0.0/30".into());
    one(&raw, "service_cidr", "too small");
    raw.service_cidr = Some("fd00:10:96::/112".into());
    raw.pod_cidr = Some("fd00:10:244::/56".into());
    let p = common::parse(&raw);
    assert_eq!(p.cluster_dns_ip().to_string(), "fd00:10:96::a");
}

#[test]
fn components() {
    let mut raw = common::raw();
    raw.container_images.insert("kube_apiservr".into(), "x/y:z".into());
    one(&raw, "container_images[\"kube_apiservr\"]", "unknown component");
    let e = errors(&raw);
    assert!(e[0].message.contains("kube_apiserver"), "lists the valid names");
    raw.container_images.clear();
    raw.host_os = Some("coreos".into());
    one(&raw, "host_os", "\"fedora-coreos\"");
    raw.host_os = None;
    raw.container_images.insert("coredns".into(), "has space:1".into());
    one(&raw, "container_images[\"coredns\"]", "not an image reference");
    raw.container_images.clear();
    raw.extra_flags.insert("etcd".into(), vec!["--x=1".into()]);
    one(&raw, "extra_flags[\"etcd\"]", "unknown component");
    raw.extra_flags.clear();
    raw.extra_flags
        .insert("kube_apiserver".into(), vec!["--v=2".into(), "v=3".into()]);
    one(&raw, "extra_flags[\"kube_apiserver\"][1]", "--name=value");
    raw.extra_flags
        .insert("kube_apiserver".into(), vec!["--insecure-port=0".into()]);
    one(&raw, "extra_flags[\"kube_apiserver\"][0]", "no longer exists");
    raw.kubernetes_version = Some("v1.20.2".into());
    assert!(parse_params(&raw).is_ok(), "--insecure-port still exists in 1.20");
    raw.extra_flags
        .insert("kube_apiserver".into(), vec!["--v=2".into(), "--v=3".into()]);
    one(&raw, "extra_flags[\"kube_apiserver\"][1]", "twice");
}

#[test]
fn overrides_apply() {
    let mut raw = common::raw();
    raw.container_registry = Some("registry.example.com/mirror/".into());
    raw.container_images
        .insert("coredns".into(), "example.org/dns:1".into());
    raw.extra_flags.insert(
        "kube_apiserver".into(),
        vec!["--secure-port=7443".into(), "--v=2".into()],
    );
    let m = render_public(&common::parse(&raw)).expect("render");
    let all: String = m.values().cloned().collect();
    assert!(all.contains("image: registry.example.com/mirror/kube-apiserver:v1.34.3"));
    assert!(all.contains("image: registry.example.com/mirror/flannel-io/flannel:"));
    assert!(all.contains("image: example.org/dns:1"));
    assert!(!all.contains("registry.k8s.io"));
    assert!(
        all.contains("- --secure-port=7443") && !all.contains("- --secure-port=6443"),
        "user flag replaces ours"
    );
    assert!(all.contains("- --v=2"));
}

#[test]
fn other_scalars() {
    let mut raw = common::raw();
    raw.networking = Some("weave".into());
    one(&raw, "networking", "\"flannel\", \"calico\", \"cilium\", \"none\"");
    raw.networking = None;
    raw.controller_replicas = Some(0);
    one(&raw, "controller_replicas", "from 1 to 100");
    raw.controller_replicas = Some(-3);
    one(&raw, "controller_replicas", "from 1 to 100");
    raw.controller_replicas = None;
    raw.api_server_port = Some(70000);
    one(&raw, "api_server_port", "1–65535");
    raw.api_server_port = None;
    raw.cluster_domain_suffix = Some("Cluster.Local".into());
    one(&raw, "cluster_domain_suffix", "lowercase");
    raw.cluster_domain_suffix = None;
    raw.api_servers.clear();
    one(&raw, "api_servers", "at least one");
    raw.api_servers = vec!["ok.example.com".into(), "bad name".into()];
    one(&raw, "api_servers[1]", "not a DNS name");
    raw.api_servers = vec!["ok.example.com".into()];
    raw.etcd_servers.clear();
    one(&raw, "etcd_servers", "at least one");
    raw.etcd_servers = vec!["e".into()];
    raw.cluster_name = " ".into();
    one(&raw, "cluster_name", "must not be empty");
    raw.cluster_name = "nemo".into();
    raw.admin_group = Some("two words".into());
    one(&raw, "admin_group", "not a group name");
}

#[test]
fn all_errors_at_once() {
    let mut raw = common::raw();
    raw.kubernetes_version = Some("v9".into());
    raw.networking = Some("x".into());
    raw.pod_cidr = Some("nope".into());
    let e = errors(&raw);
    let paths: Vec<String> = e.iter().map(InputError::path_string).collect();
    assert!(
        paths.contains(&"kubernetes_version".into())
            && paths.contains(&"networking".into())
            && paths.contains(&"pod_cidr".into()),
        "{paths:?}"
    );
}

#[test]
fn extra_manifests() {
    let mut raw = common::raw();
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\n";
    let cases = [
        ("key: [unclosed\n", "document 1 is not valid YAML"),
        ("---\n- a\n- b\n", "document 1 is not a Kubernetes object"),
        (
            "kind: ConfigMap\nmetadata:\n  name: a\n",
            "document 1 has no apiVersion",
        ),
        ("apiVersion: v1\nmetadata:\n  name: a\n", "no valid kind"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a-\n",
            "no metadata.name",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
            "not a valid object name",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: Bad\n",
            "metadata.namespace",
        ),
        (
            "apiVersion: v1\nkind: List\nitems: []\nmetadata:\n  name: a\n",
            "separate documents",
        ),
    ];
    for (doc, hint) in cases {
        raw.extra_manifests = vec![good.into(), doc.into()];
        one(&raw, "extra_manifests[1]", hint);
    }
    raw.extra_manifests = vec![format!("{good}---\n---\napiVersion: v1\nkind: ConfigMap\n")];
    one(&raw, "extra_manifests[0]", "document 3");
    // A document repeating one of ours is refused at render, naming it.
    raw.extra_manifests =
        vec!["apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: coredns\n  namespace: kube-system\n".into()];
    one(&raw, "extra_manifests[0]", "document 1 repeats an object");
    raw.extra_manifests = vec![
        good.into(),
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\n{good}"),
    ];
    one(&raw, "extra_manifests[1]", "document 2 repeats an object");
    // Secrets too, though ours are rendered only with key material: at plan, not at apply.
    let secret =
        |name: &str| format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: kube-system\n");
    raw.extra_manifests = vec![secret("kube-apiserver")];
    one(&raw, "extra_manifests[0]", "document 1 repeats an object");
    raw.extra_manifests = vec![secret("mine"), secret("mine")];
    one(&raw, "extra_manifests[1]", "document 1 repeats an object");
    raw.extra_manifests = vec![secret("mine")];
    assert!(parse_params(&raw).is_ok(), "a Secret of the user's own is fine");
}

/// A taint key the node agents should tolerate is a qualified name, given once.
#[test]
fn daemonset_tolerations() {
    let mut raw = common::raw();
    raw.daemonset_tolerations = vec!["dedicated".into(), "example.com/gpu".into()];
    assert_eq!(common::parse(&raw).daemonset_tolerations, raw.daemonset_tolerations);
    for bad in ["", "has space", "Example.COM/x", "-lead", "a/b/c", &"x".repeat(64)] {
        let mut raw = common::raw();
        raw.daemonset_tolerations = vec!["ok".into(), bad.to_string()];
        one(
            &raw,
            "daemonset_tolerations[1]",
            "is not a taint key; write a name such as",
        );
    }
    let mut raw = common::raw();
    raw.daemonset_tolerations = vec!["dedicated".into(), "dedicated".into()];
    one(&raw, "daemonset_tolerations[1]", "given twice");
}
