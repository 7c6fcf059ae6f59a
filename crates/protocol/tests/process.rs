//! Started by hand (no magic cookie) or without AutoMTLS, the provider
//! explains itself in one line and exits non-zero without listening.

mod support;

use std::process::Command;

#[test]
fn missing_magic_cookie_exits_nonzero_with_an_explanation() {
    let out = Command::new(support::echo_binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .env("PLUGIN_CLIENT_CERT", "x")
        .output()
        .expect("run provider");
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(
        err.contains("Terraform provider plugin") && err.contains("TF_PLUGIN_MAGIC_COOKIE"),
        "{err}"
    );
}

#[test]
fn wrong_magic_cookie_is_refused_too() {
    let out = Command::new(support::echo_binary())
        .env("TF_PLUGIN_MAGIC_COOKIE", "nope")
        .output()
        .expect("run provider");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_client_certificate_is_refused() {
    let out = Command::new(support::echo_binary())
        .env(
            "TF_PLUGIN_MAGIC_COOKIE",
            selfhosted_protocol::server::MAGIC_COOKIE_VALUE,
        )
        .env_remove("PLUGIN_CLIENT_CERT")
        .output()
        .expect("run provider");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no handshake without mTLS");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PLUGIN_CLIENT_CERT"), "{err}");
}

#[test]
fn garbage_client_certificate_is_refused() {
    let out = Command::new(support::echo_binary())
        .env(
            "TF_PLUGIN_MAGIC_COOKIE",
            selfhosted_protocol::server::MAGIC_COOKIE_VALUE,
        )
        .env("PLUGIN_CLIENT_CERT", "not a certificate")
        .output()
        .expect("run provider");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PLUGIN_CLIENT_CERT"), "{err}");
}
