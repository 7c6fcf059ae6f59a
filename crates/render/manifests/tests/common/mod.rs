//! Shared fixtures: parameters for every supported combination and stand-in PKI material.
#![allow(dead_code)]

use std::collections::BTreeMap;

use selfhosted_manifests::{parse_params, ManifestParams, RawParams};

/// The token used by the fake material.
pub const TOKEN: &str = "abcdef.0123456789abcdef";
/// The secret half of [`TOKEN`].
pub const TOKEN_SECRET: &str = "0123456789abcdef";

/// Raw params of a three-controller cluster.
pub fn raw() -> RawParams {
    RawParams {
        cluster_name: "nemo".into(),
        api_servers: vec!["nemo.example.com".into()],
        etcd_servers: vec![
            "etcd0.example.com".into(),
            "etcd1.example.com".into(),
            "etcd2.example.com".into(),
        ],
        controller_count: 3,
        ..RawParams::default()
    }
}

/// Parse raw params, panicking with the diagnostics.
pub fn parse(raw: &RawParams) -> ManifestParams {
    match parse_params(raw) {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    }
}

/// Stand-in PKI material with the exact key layout of selfhosted-pki.
pub fn material() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let pairs = [
        "ca",
        "apiserver",
        "bootstrap-apiserver",
        "apiserver-kubelet-client",
        "admin",
        "controller-manager",
        "scheduler",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd-ca",
        "etcd-client",
        "etcd/server",
        "etcd/peer",
    ];
    for p in pairs {
        m.insert(
            format!("tls/{p}.crt"),
            format!("-----BEGIN CERTIFICATE-----\nfake {p} cert\n-----END CERTIFICATE-----\n"),
        );
        m.insert(
            format!("tls/{p}.key"),
            format!("-----BEGIN PRIVATE KEY-----\nfake {p} key\n-----END PRIVATE KEY-----\n"),
        );
    }
    m.insert(
        "tls/service-account.key".into(),
        "-----BEGIN PRIVATE KEY-----\nfake sa\n-----END PRIVATE KEY-----\n".into(),
    );
    m.insert(
        "tls/service-account.pub".into(),
        "-----BEGIN PUBLIC KEY-----\nfake sa\n-----END PUBLIC KEY-----\n".into(),
    );
    for k in ["admin", "kubelet-bootstrap", "controller-manager", "scheduler"] {
        m.insert(
            format!("auth/{k}.kubeconfig"),
            format!("apiVersion: v1\nkind: Config\n# {k} with client-key-data LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t\n"),
        );
    }
    m.insert("auth/bootstrap-token".into(), TOKEN.into());
    m.insert(
        "auth/controller-bootstrap-token".into(),
        "ctrlab.0123456789abcdef".into(),
    );
    m
}
