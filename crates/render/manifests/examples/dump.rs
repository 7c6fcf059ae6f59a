//! Write a render to a folder for eyeballing: `cargo run -p selfhosted-manifests --example dump -- DIR [VERSION] [NETWORKING]`.
use std::collections::BTreeMap;

use selfhosted_manifests::{parse_params, render, RawParams};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).cloned().unwrap_or_else(|| "/tmp/render".into()));
    let raw = RawParams {
        kubernetes_version: args.get(2).cloned(),
        networking: args.get(3).cloned(),
        cluster_name: "nemo".into(),
        api_servers: vec!["nemo.example.com".into()],
        etcd_servers: vec!["etcd0.example.com".into()],
        controller_count: 1,
        ..RawParams::default()
    };
    let p = parse_params(&raw).unwrap_or_else(|e| panic!("{e:?}"));
    let mut m = BTreeMap::new();
    for k in [
        "ca",
        "apiserver",
        "bootstrap-apiserver",
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd-ca",
        "etcd-client",
    ] {
        m.insert(format!("tls/{k}.crt"), "CERT".to_string());
        m.insert(format!("tls/{k}.key"), "KEY".to_string());
    }
    for k in [
        "tls/service-account.key",
        "tls/service-account.pub",
        "auth/controller-manager.kubeconfig",
        "auth/scheduler.kubeconfig",
    ] {
        m.insert(k.to_string(), "X".to_string());
    }
    m.insert("auth/bootstrap-token".into(), "abcdef.0123456789abcdef".into());
    m.insert(
        "auth/controller-bootstrap-token".into(),
        "ctrlab.0123456789abcdef".into(),
    );
    let r = render(&p, &m).unwrap_or_else(|e| panic!("{e}"));
    for map in [
        &r.manifests,
        &r.secret_manifests,
        &r.bootstrap_manifests,
        &r.bootstrap_secrets,
    ] {
        for (k, v) in map {
            let path = dir.join(k);
            std::fs::create_dir_all(path.parent().unwrap_or(&dir)).unwrap_or_default();
            std::fs::write(path, v).unwrap_or_default();
        }
    }
    std::fs::write(dir.join("kubelet.yaml"), &r.node.kubelet_config).unwrap_or_default();
    std::fs::write(dir.join("controller.bu"), &r.node.controller_butane).unwrap_or_default();
    println!("{}", r.apiserver_generation);
}
