//! Every certificate checked by the real `openssl`: chain to its CA, purpose,
//! EKU, SANs, subject, key matches; for ECDSA and RSA-2048.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use selfhosted_pki::{issue, Assets, KeyAlgorithm};

fn openssl(args: &[&str], dir: &Path) -> String {
    ok_stdout(Command::new("openssl").args(args).current_dir(dir))
}

/// (stem, CA stem, server, client, CN, O)
type Leaf = (
    &'static str,
    &'static str,
    bool,
    bool,
    &'static str,
    Option<&'static str>,
);
const LEAVES: [Leaf; 10] = [
    ("tls/apiserver", "tls/ca", true, false, "kube-apiserver", None),
    (
        "tls/bootstrap-apiserver",
        "tls/ca",
        true,
        false,
        "kube-apiserver-bootstrap",
        None,
    ),
    (
        "tls/apiserver-kubelet-client",
        "tls/ca",
        false,
        true,
        "kube-apiserver-kubelet-client",
        Some("selfhosted:apiserver-kubelet-clients"),
    ),
    ("tls/admin", "tls/ca", false, true, "admin", Some("system:masters")),
    (
        "tls/controller-manager",
        "tls/ca",
        false,
        true,
        "system:kube-controller-manager",
        None,
    ),
    ("tls/scheduler", "tls/ca", false, true, "system:kube-scheduler", None),
    (
        "tls/front-proxy-client",
        "tls/front-proxy-ca",
        false,
        true,
        "front-proxy-client",
        None,
    ),
    ("tls/etcd-client", "tls/etcd-ca", false, true, "etcd-client", None),
    ("tls/etcd/server", "tls/etcd-ca", true, true, "etcd-server", None),
    ("tls/etcd/peer", "tls/etcd-ca", true, true, "etcd-peer", None),
];

fn pubkey_of_cert(dir: &Path, crt: &str) -> String {
    openssl(&["x509", "-in", crt, "-noout", "-pubkey"], dir)
}

fn pubkey_of_key(dir: &Path, key: &str) -> String {
    openssl(&["pkey", "-in", key, "-pubout"], dir)
}

fn check_all(assets: &Assets, rsa: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_assets(d, assets);

    for ca in ["tls/ca", "tls/etcd-ca", "tls/front-proxy-ca"] {
        let crt = format!("{ca}.crt");
        let text = openssl(&["x509", "-in", &crt, "-noout", "-ext", "basicConstraints,keyUsage"], d);
        assert!(text.contains("CA:TRUE"), "{ca}: {text}");
        assert!(text.contains("Certificate Sign"), "{ca}: {text}");
        assert_eq!(
            pubkey_of_cert(d, &crt),
            pubkey_of_key(d, &format!("{ca}.key")),
            "{ca} key"
        );
        openssl(&["verify", "-CAfile", &crt, &crt], d);
    }

    for (stem, ca, server, client, cn, org) in LEAVES {
        let crt = format!("{stem}.crt");
        let ca_crt = format!("{ca}.crt");
        let out = openssl(&["verify", "-CAfile", &ca_crt, &crt], d);
        assert!(out.trim_end().ends_with(": OK"), "{stem}: {out}");
        // The wrong CA must not verify it.
        let other = if ca == "tls/ca" {
            "tls/etcd-ca.crt"
        } else {
            "tls/ca.crt"
        };
        let bad = run(Command::new("openssl")
            .args(["verify", "-CAfile", other, &crt])
            .current_dir(d));
        assert!(!bad.status.success(), "{stem} verified against {other}");
        for (wanted, purpose) in [(server, "sslserver"), (client, "sslclient")] {
            let r = run(Command::new("openssl")
                .args(["verify", "-purpose", purpose, "-CAfile", &ca_crt, &crt])
                .current_dir(d));
            assert_eq!(r.status.success(), wanted, "{stem} purpose {purpose}");
        }
        let ext = openssl(
            &[
                "x509",
                "-in",
                &crt,
                "-noout",
                "-ext",
                "extendedKeyUsage,subjectAltName,basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier",
            ],
            d,
        );
        assert_eq!(ext.contains("TLS Web Server Authentication"), server, "{stem}: {ext}");
        assert_eq!(ext.contains("TLS Web Client Authentication"), client, "{stem}: {ext}");
        assert!(ext.contains("CA:FALSE"), "{stem}: {ext}");
        assert!(ext.contains("Digital Signature"), "{stem}: {ext}");
        assert_eq!(ext.contains("Key Encipherment"), rsa, "{stem}: {ext}");
        assert!(ext.contains("X509v3 Subject Key Identifier"), "{stem}: {ext}");
        assert!(ext.contains("X509v3 Authority Key Identifier"), "{stem}: {ext}");
        let subject = openssl(&["x509", "-in", &crt, "-noout", "-subject", "-nameopt", "RFC2253"], d);
        assert!(subject.contains(&format!("CN={cn}")), "{stem}: {subject}");
        match org {
            Some(o) => assert!(subject.contains(&format!("O={o}")), "{stem}: {subject}"),
            None => assert!(!subject.contains("O="), "{stem}: {subject}"),
        }
        assert_eq!(
            pubkey_of_cert(d, &crt),
            pubkey_of_key(d, &format!("{stem}.key")),
            "{stem} key"
        );
        let algo = openssl(&["x509", "-in", &crt, "-noout", "-text"], d);
        if rsa {
            assert!(algo.contains("rsaEncryption") && algo.contains("(2048 bit)"), "{stem}");
            assert!(algo.contains("sha256WithRSAEncryption"), "{stem}");
        } else {
            assert!(algo.contains("id-ecPublicKey") && algo.contains("prime256v1"), "{stem}");
        }
        let want_sans: &[&str] = match stem {
            "tls/apiserver" | "tls/bootstrap-apiserver" => &[
                "DNS:api.demo.example",
                "IP Address:10.0.0.5",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP Address:10.3.0.1",
                "DNS:localhost",
                "IP Address:127.0.0.1",
            ],
            "tls/etcd/server" | "tls/etcd/peer" => &[
                "IP Address:127.0.0.11",
                "IP Address:127.0.0.12",
                "IP Address:127.0.0.13",
                "DNS:localhost",
                "IP Address:127.0.0.1",
            ],
            _ => &[],
        };
        let san_line = ext
            .lines()
            .skip_while(|l| !l.contains("Subject Alternative Name"))
            .nth(1)
            .map(str::trim)
            .unwrap_or("");
        assert_eq!(san_line, want_sans.join(", "), "{stem} SANs");
    }

    // The two apiserver certificates have the same names but different keys.
    assert_ne!(
        pubkey_of_cert(d, "tls/apiserver.crt"),
        pubkey_of_cert(d, "tls/bootstrap-apiserver.crt")
    );
    // Service-account key pair belongs together.
    assert_eq!(
        pubkey_of_key(d, "tls/service-account.key"),
        std::fs::read_to_string(d.join("tls/service-account.pub")).unwrap()
    );
}

#[test]
fn ecdsa_pki_verifies_with_openssl() {
    let p = default_params();
    check_all(&issue(&p, None, now_real()).unwrap(), false);
}

#[test]
fn rsa_2048_pki_verifies_with_openssl() {
    let mut p = default_params();
    p.key_algorithm = KeyAlgorithm::Rsa2048;
    check_all(&issue(&p, None, now_real()).unwrap(), true);
}

#[test]
fn leaves_verify_against_a_resigned_ca() {
    let mut r = raw(
        &["api.demo.example", "10.0.0.5"],
        &["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    );
    r.ca_validity_hours = Some(24 * 400);
    let p = selfhosted_pki::parse(&r).unwrap();
    let start = now_real() - time::Duration::days(380);
    let old = issue(&p, None, start).unwrap();
    let new = issue(&p, Some(&old), now_real()).unwrap();
    assert_ne!(old["tls/ca.crt"], new["tls/ca.crt"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("old-ca.crt"), &old["tls/ca.crt"]).unwrap();
    std::fs::write(d.join("new-ca.crt"), &new["tls/ca.crt"]).unwrap();
    std::fs::write(d.join("old-admin.crt"), &old["tls/admin.crt"]).unwrap();
    std::fs::write(d.join("new-admin.crt"), &new["tls/admin.crt"]).unwrap();
    // The re-signed CA (same key and subject) still verifies leaves signed before (their
    // validity windows do not overlap here, so time is not checked), and a kubelet that
    // kept the old CA certificate trusts the newly issued leaves.
    openssl(
        &["verify", "-no_check_time", "-CAfile", "new-ca.crt", "old-admin.crt"],
        d,
    );
    openssl(&["verify", "-CAfile", "old-ca.crt", "new-admin.crt"], d);
}

/// Real time: openssl verifies against the machine clock.
fn now_real() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
