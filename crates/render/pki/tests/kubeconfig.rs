//! Kubeconfigs read by the real `kubectl`: structure, references, embedded
//! certificates and keys parse (a connection error, not a parse error).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::*;
use selfhosted_pki::{issue, parse};

fn kubectl(args: &[&str]) -> std::process::Output {
    run(Command::new("kubectl").args(args).env("HOME", "/nonexistent"))
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn check(path: &Path, user: &str, server: &str, cert_auth: bool) {
    let f = path.to_str().unwrap();
    let min = kubectl(&[
        "config",
        "view",
        "--minify",
        "--kubeconfig",
        f,
        "-o",
        "jsonpath={.users[0].name} {.clusters[0].cluster.server}",
    ]);
    assert!(min.status.success(), "{f}: {}", String::from_utf8_lossy(&min.stderr));
    assert_eq!(String::from_utf8_lossy(&min.stdout), format!("{user} {server}"));
    let raw = kubectl(&["config", "view", "--minify", "--raw", "--kubeconfig", f, "-o", "json"]);
    assert!(raw.status.success());
    let text = String::from_utf8_lossy(&raw.stdout);
    assert!(text.contains("certificate-authority-data"));
    assert_eq!(text.contains("client-key-data"), cert_auth, "{text}");
    assert_eq!(text.contains("\"token\""), !cert_auth, "{text}");
    // Against a closed port: the embedded certs/keys are parsed first, then the dial fails.
    let got = kubectl(&["--kubeconfig", f, "--request-timeout=5s", "get", "--raw", "/version"]);
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(!got.status.success());
    assert!(err.contains("refused"), "{f}: {err}");
    for bad in ["unable to load", "failed to", "tls: ", "PEM", "x509"] {
        assert!(!err.contains(bad), "{f}: {err}");
    }
}

#[test]
fn kubeconfigs_are_read_by_kubectl() {
    let port = closed_port();
    let mut r = raw(&["127.0.0.1"], &["127.0.0.11"]);
    r.api_server_port = Some(i64::from(port));
    let p = parse(&r).unwrap();
    let assets = issue(&p, None, now()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_assets(dir.path(), &assets);
    let server = format!("https://127.0.0.1:{port}");
    let a = dir.path().join("auth");
    check(&a.join("admin.kubeconfig"), "demo-admin", &server, true);
    check(
        &a.join("kubelet-bootstrap.kubeconfig"),
        "kubelet-bootstrap",
        &server,
        false,
    );
    check(
        &a.join("controller-manager.kubeconfig"),
        "system:kube-controller-manager",
        &server,
        true,
    );
    check(&a.join("scheduler.kubeconfig"), "system:kube-scheduler", &server, true);

    // Negative control: a damaged client key is caught before dialling.
    let admin = std::fs::read_to_string(a.join("admin.kubeconfig")).unwrap();
    let damaged = admin.replace("client-key-data: LS0t", "client-key-data: LS1t");
    assert_ne!(admin, damaged);
    let f = a.join("damaged.kubeconfig");
    std::fs::write(&f, damaged).unwrap();
    let got = kubectl(&["--kubeconfig", f.to_str().unwrap(), "get", "--raw", "/version"]);
    let err = String::from_utf8_lossy(&got.stderr);
    assert!(!got.status.success() && !err.contains("refused"), "{err}");
}

#[test]
fn kubelet_bootstrap_kubeconfig_yields_the_ca_like_typhoon() {
    // typhoon: grep certificate-authority-data | awk '{print $2}' | base64 -d
    let p = default_params();
    let assets = issue(&p, None, now()).unwrap();
    let kc = &assets["auth/kubelet-bootstrap.kubeconfig"];
    let lines: Vec<&str> = kc
        .lines()
        .filter(|l| l.contains("certificate-authority-data"))
        .collect();
    assert_eq!(lines.len(), 1);
    let field = lines[0].split_whitespace().nth(1).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.decode(field).unwrap();
    assert_eq!(String::from_utf8(ca).unwrap(), assets["tls/ca.crt"]);
    let token = &assets["auth/bootstrap-token"];
    assert!(kc.contains(&format!("token: \"{token}\"")));
    assert!(selfhosted_pki::token::is_valid(token));
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!((id.len(), secret.len()), (6, 16));
    assert!(kc.contains("server: \"https://api.demo.example:6443\""));
}

#[test]
fn admin_kubeconfig_names_the_cluster() {
    let p = default_params();
    let assets = issue(&p, None, now()).unwrap();
    let kc = &assets["auth/admin.kubeconfig"];
    assert!(kc.contains("current-context: \"admin@demo\""), "{kc}");
    assert!(kc.contains("- name: \"demo\""), "{kc}");
}
