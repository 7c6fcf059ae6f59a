//! The in-cluster kubeconfig (ConfigMap read by kube-proxy) is a kubeconfig `kubectl`
//! accepts, pointing at the first api server with the pod's service-account credentials.

mod common;

use std::process::Command;

use selfhosted_manifests::render_public;
use serde_json::Value;

#[test]
fn in_cluster_kubeconfig_parses_with_kubectl() {
    let mut raw = common::raw();
    raw.api_server_port = Some(7443);
    let m = render_public(&common::parse(&raw)).expect("render");
    let cm: Value =
        serde_yaml_ng::from_str(&m["manifests/30-configmap-kube-system-kubeconfig-in-cluster.yaml"]).expect("yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, cm["data"]["kubeconfig"].as_str().expect("kubeconfig")).expect("write");
    let out = Command::new("kubectl")
        .args(["config", "view", "--minify", "-o", "json", "--kubeconfig"])
        .arg(&path)
        .output()
        .expect("kubectl must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["clusters"][0]["cluster"]["server"], "https://nemo.example.com:7443");
    assert_eq!(
        v["clusters"][0]["cluster"]["certificate-authority"],
        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    );
    assert_eq!(
        v["users"][0]["user"]["tokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
}
