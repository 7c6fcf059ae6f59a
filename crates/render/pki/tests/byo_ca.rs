//! Bring-your-own kube CA: CAs made by the real `openssl`, accepted in PKCS#8
//! and PKCS#1, refused when not a CA, when the key does not match, or in a
//! format ring cannot use; leaves chain to it; changing it re-issues only what
//! it signs.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use selfhosted_pki::{issue, parse, plan, validate, Action, RawParams, Reason};

fn openssl(dir: &Path, args: &[&str]) {
    ok_stdout(Command::new("openssl").args(args).current_dir(dir));
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap()
}

/// An ECDSA P-256 CA (PKCS#8 key) named `name` in `dir`: `<name>.crt`, `<name>.key`.
fn ec_ca(dir: &Path, name: &str, extra: &[&str]) -> (String, String) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &crt,
        "-subj",
        "/CN=byo-ca",
        "-days",
        "3650",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    (read(dir, &crt), read(dir, &key))
}

fn with_ca(cert: &str, key: &str) -> RawParams {
    RawParams {
        ca_cert_pem: Some(cert.to_owned()),
        ca_private_key_pem: Some(key.to_owned()),
        ..raw(&["api.demo.example"], &["127.0.0.11"])
    }
}

fn single_error(r: &RawParams) -> (String, String) {
    let errs = validate(r);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    (errs[0].path(), errs[0].message.clone())
}

#[test]
fn byo_ca_signs_the_kube_leaves_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = ec_ca(d, "byo", &[]);
    let p = parse(&with_ca(&cert, &key)).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let a = issue(&p, None, now).unwrap();
    assert_eq!(a["tls/ca.crt"], cert);
    assert_eq!(a["tls/ca.key"], key);
    write_assets(d, &a);
    for leaf in ["apiserver", "admin", "apiserver-kubelet-client", "controller-manager"] {
        openssl(d, &["verify", "-CAfile", "byo.crt", &format!("tls/{leaf}.crt")]);
    }
    // The etcd PKI is still its own.
    openssl(d, &["verify", "-CAfile", "tls/etcd-ca.crt", "tls/etcd/server.crt"]);
    assert!(plan(&p, Some(&a), now).unwrap().is_noop());
}

#[test]
fn switching_to_a_byo_ca_reissues_only_what_it_signs() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ec_ca(dir.path(), "byo", &[]);
    let p1 = default_params();
    let a1 = issue(&p1, None, now()).unwrap();
    let mut r = with_ca(&cert, &key);
    r.api_servers = Some(vec!["api.demo.example".into(), "10.0.0.5".into()]);
    r.etcd_servers = Some(vec!["127.0.0.11".into(), "127.0.0.12".into(), "127.0.0.13".into()]);
    let p2 = parse(&r).unwrap();
    let pl = plan(&p2, Some(&a1), now()).unwrap();
    assert!(matches!(
        pl.get("ca").unwrap().action,
        Action::Issue {
            reason: Reason::ByoCaChanged,
            ..
        }
    ));
    assert!(matches!(
        pl.get("admin").unwrap().action,
        Action::Issue {
            reason: Reason::IssuerChanged,
            ..
        }
    ));
    for kept in [
        "etcd-ca",
        "etcd-server",
        "etcd-peer",
        "etcd-client",
        "front-proxy-ca",
        "front-proxy-client",
        "service-account",
        "bootstrap-token",
        "controller-bootstrap-token",
    ] {
        assert_eq!(pl.get(kept).unwrap().action, Action::Keep, "{kept}");
    }
    assert_eq!(
        pl.issued(),
        vec![
            "ca",
            "apiserver",
            "bootstrap-apiserver",
            "apiserver-kubelet-client",
            "admin",
            "controller-manager",
            "scheduler",
            "admin-kubeconfig",
            "kubelet-bootstrap-kubeconfig",
            "controller-bootstrap-kubeconfig",
            "controller-manager-kubeconfig",
            "scheduler-kubeconfig"
        ]
    );
    let a2 = issue(&p2, Some(&a1), now()).unwrap();
    assert!(plan(&p2, Some(&a2), now()).unwrap().is_noop());
}

#[test]
fn a_renewed_byo_ca_with_the_same_key_keeps_every_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = ec_ca(d, "byo", &[]);
    let p1 = parse(&with_ca(&cert, &key)).unwrap();
    let a1 = issue(&p1, None, now()).unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-key",
            "byo.key",
            "-out",
            "renewed.crt",
            "-subj",
            "/CN=byo-ca",
            "-days",
            "7300",
        ],
    );
    let p2 = parse(&with_ca(&read(d, "renewed.crt"), &key)).unwrap();
    let pl = plan(&p2, Some(&a1), now()).unwrap();
    assert_eq!(
        pl.issued(),
        vec![
            "ca",
            "admin-kubeconfig",
            "kubelet-bootstrap-kubeconfig",
            "controller-bootstrap-kubeconfig",
            "controller-manager-kubeconfig",
            "scheduler-kubeconfig"
        ]
    );
}

#[test]
fn pkcs1_rsa_ca_key_is_accepted_and_converted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(d, &["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-key",
            "rsa.key",
            "-out",
            "rsa.crt",
            "-subj",
            "/CN=rsa-ca",
            "-days",
            "3650",
        ],
    );
    let key = read(d, "rsa.key");
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let p = parse(&with_ca(&read(d, "rsa.crt"), &key)).unwrap();
    let byo = p.byo_ca.as_ref().unwrap();
    assert!(byo.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let a = issue(&p, None, time::OffsetDateTime::now_utc()).unwrap();
    write_assets(d, &a);
    openssl(d, &["verify", "-CAfile", "rsa.crt", "tls/admin.crt"]);
    // Same key as given.
    let a_pub = ok_stdout(
        Command::new("openssl")
            .args(["pkey", "-in", "tls/ca.key", "-pubout"])
            .current_dir(d),
    );
    let g_pub = ok_stdout(
        Command::new("openssl")
            .args(["pkey", "-in", "rsa.key", "-pubout"])
            .current_dir(d),
    );
    assert_eq!(a_pub, g_pub);
}

#[test]
fn bad_byo_cas_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = ec_ca(d, "good", &[]);
    let (_, other_key) = ec_ca(d, "other", &[]);
    let (leaf, leaf_key) = ec_ca(d, "leaf", &["-addext", "basicConstraints=critical,CA:FALSE"]);

    assert_eq!(single_error(&with_ca(&leaf, &leaf_key)).0, "ca_cert_pem");
    assert!(single_error(&with_ca(&leaf, &leaf_key))
        .1
        .contains("not a CA certificate"));

    let (path, msg) = single_error(&with_ca(&cert, &other_key));
    assert_eq!(path, "ca_private_key_pem");
    assert!(msg.contains("does not match"), "{msg}");

    let (path, msg) = single_error(&with_ca("not pem", &key));
    assert_eq!(path, "ca_cert_pem");
    assert!(msg.contains("BEGIN CERTIFICATE"), "{msg}");

    let (path, msg) = single_error(&with_ca(&key, &key));
    assert_eq!(path, "ca_cert_pem");
    assert!(msg.contains("\"PRIVATE KEY\" PEM block"), "{msg}");

    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.key",
        ],
    );
    let (path, msg) = single_error(&with_ca(&cert, &read(d, "sec1.key")));
    assert_eq!(path, "ca_private_key_pem");
    assert!(msg.contains("openssl pkcs8 -topk8 -nocrypt"), "{msg}");

    let half = RawParams {
        ca_private_key_pem: None,
        ..with_ca(&cert, &key)
    };
    assert!(
        validate(&half).is_empty(),
        "unknown key at validate time is not an error"
    );
    let errs = parse(&half).unwrap_err();
    assert_eq!(errs[0].path(), "ca_private_key_pem");
}

#[test]
fn dropping_the_byo_inputs_keeps_the_ca_and_warns_near_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "short.key",
            "-out",
            "short.crt",
            "-subj",
            "/CN=byo-ca",
            "-days",
            "60",
        ],
    );
    let (cert, key) = (read(d, "short.crt"), read(d, "short.key"));
    let with = parse(&with_ca(&cert, &key)).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let a1 = issue(&with, None, now).unwrap();
    // Leaves never outlive the CA.
    let exp = selfhosted_pki::expiries(&a1).unwrap();
    assert_eq!(exp["admin"], exp["ca"]);
    assert!(exp["etcd-server"] > exp["ca"]);
    // Inside the CA's window: a warning, and no endless re-issue of the capped leaves.
    let later = now + time::Duration::days(45);
    let pl = plan(&with, Some(&a1), later).unwrap();
    assert!(pl.is_noop(), "{pl}");
    assert_eq!(pl.warnings.len(), 1, "{:?}", pl.warnings);
    assert!(pl.warnings[0].contains("ca_cert_pem"));
    // Dropping the inputs keeps that CA and every leaf.
    let without = parse(&raw(&["api.demo.example"], &["127.0.0.11"])).unwrap();
    let pl = plan(&without, Some(&a1), now).unwrap();
    assert!(pl.is_noop(), "{pl}");
    let a2 = issue(&without, Some(&a1), now).unwrap();
    assert_eq!(a1, a2);
    assert_eq!(plan(&without, Some(&a1), later).unwrap().warnings.len(), 1);
}
