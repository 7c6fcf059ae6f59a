//! Host keys against real sshd: pinned accepted, wrong pin refused with both fingerprints,
//! trust on first use learns the key.

use std::time::Duration;

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{ConnectError, HostKeyError, HostKeyPolicy, Session};

fn one_host(test: &str) -> Option<Testbed> {
    Testbed::up(
        test,
        &TestbedParams {
            count: 1,
            ..Default::default()
        },
    )
    .expect("test bed up")
}

#[tokio::test]
async fn pinned_key_is_accepted() {
    let Some(tb) = one_host("pinned_key_is_accepted") else {
        return;
    };
    // pinned as a known_hosts line, as a bare key, and as a fingerprint
    let host = &tb.hosts()[0];
    let known_hosts = std::fs::read_to_string(&tb.inventory().known_hosts).unwrap();
    for pin in [known_hosts.as_str(), host.host_key.as_str(), host.fingerprint.as_str()] {
        let mut spec = tb.spec(0).unwrap();
        spec.host.host_key = HostKeyPolicy::try_pinned(&[pin]).unwrap();
        let (session, learned) = Session::connect(&spec).await.expect("connect with pinned key");
        assert!(learned.is_empty(), "pinned keys are not 'learned'");
        let out = session.run("hostname").await.unwrap();
        assert_eq!(out.stdout_text().trim(), "h1");
    }
}

#[tokio::test]
async fn wrong_pinned_key_is_refused_with_both_fingerprints() {
    let Some(tb) = one_host("wrong_pinned_key_is_refused") else {
        return;
    };
    let wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    let wrong_fp = selfhosted_transport::PinnedKey::try_parse(wrong).unwrap().fingerprint();
    let mut spec = tb.spec(0).unwrap();
    spec.host.host_key = HostKeyPolicy::try_pinned(&[wrong]).unwrap();
    spec.connect_timeout = Duration::from_secs(20);
    let started = std::time::Instant::now();
    let err = Session::connect(&spec).await.expect_err("must refuse");
    assert!(started.elapsed() < Duration::from_secs(5), "a mismatch is not retried");
    let msg = err.to_string();
    match err {
        ConnectError::HostKey(HostKeyError::Mismatch {
            expected,
            presented,
            host,
            ..
        }) => {
            assert_eq!(host, "h1");
            assert_eq!(expected, vec![wrong_fp.clone()]);
            assert_eq!(presented, tb.hosts()[0].fingerprint);
        }
        other => panic!("expected a host key mismatch, got {other:?}"),
    }
    assert!(
        msg.contains(&wrong_fp) && msg.contains(&tb.hosts()[0].fingerprint),
        "{msg}"
    );
}

#[tokio::test]
async fn first_use_learns_the_key() {
    let Some(tb) = one_host("first_use_learns_the_key") else {
        return;
    };
    let mut spec = tb.spec(0).unwrap();
    spec.host.host_key = HostKeyPolicy::TrustOnFirstUse;
    let (session, learned) = Session::connect(&spec).await.expect("connect on first use");
    assert_eq!(learned.len(), 1);
    let host = &tb.hosts()[0];
    assert_eq!(learned[0].fingerprint, host.fingerprint);
    assert_eq!(learned[0].public_key, host.host_key);
    assert_eq!(
        learned[0].known_hosts_line(),
        format!("{} {}", host.address, host.host_key)
    );
    session.run("true").await.unwrap();
    // the learned key pins the next connection
    spec.host.host_key = HostKeyPolicy::try_pinned(&[learned[0].known_hosts_line()]).unwrap();
    let (_s, again) = Session::connect(&spec).await.expect("connect with learned key");
    assert!(again.is_empty());
}
