//! The recovery helpers against real sockets on loopback: `hand-back` accepts only the
//! self-hosted apiserver (a certificate the cluster CA issued to its name, renewed or not)
//! answering `/readyz` with 200, steadily and with the same listeners on the port throughout;
//! `standby` waits exactly while a listener holds the port; `rearm` never writes over a
//! manifest that changed after it read it.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use selfhosted_agent::recovery::{self, Answer, HandBackParams, Prober, Rearm, Seen};
use selfhosted_agent::stop::Stop;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A cluster CA: its certificate (DER, for the prober's trust) and its issuer.
struct Ca {
    der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca() -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "cluster-ca");
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

impl Ca {
    /// A serving certificate for `common_name` (naming only 127.0.0.1).
    fn issue(&self, common_name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der()).into())
    }

    fn prober(&self) -> Prober {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        Prober::issued_by(roots, "kube-apiserver")
    }
}

/// An HTTPS server on loopback answering every request with `status`; its port.
fn serve(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>, status: u16) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let conn = ServerConnection::new(config).unwrap();
                let mut tls = StreamOwned::new(conn, tcp);
                let mut request = [0u8; 1024];
                if tls.read(&mut request).is_ok() {
                    let body = "ok";
                    let _ = write!(
                        tls,
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    port
}

#[test]
fn only_the_self_hosted_apiserver_answering_ready_counts() {
    let cluster = ca();
    let (cert, key) = cluster.issue("kube-apiserver");
    let port = serve(cert, key, 200);
    assert_eq!(cluster.prober().probe(LOOPBACK, port), Answer::SelfHosted(200));
    // Renewed: another certificate and key for the same name, from the same CA.
    let (renewed, renewed_key) = cluster.issue("kube-apiserver");
    let renewed_port = serve(renewed, renewed_key, 200);
    assert_eq!(cluster.prober().probe(LOOPBACK, renewed_port), Answer::SelfHosted(200));
    // The recovery (bootstrap) apiserver's own certificate: same CA, its own name.
    let (own, own_key) = cluster.issue("kube-apiserver-bootstrap");
    let own_port = serve(own, own_key, 200);
    assert_eq!(cluster.prober().probe(LOOPBACK, own_port), Answer::OtherCertificate);
    // The right name from another CA.
    assert_eq!(ca().prober().probe(LOOPBACK, port), Answer::OtherCertificate);

    let (unready_cert, unready_key) = cluster.issue("kube-apiserver");
    let unready = serve(unready_cert, unready_key, 500);
    assert_eq!(cluster.prober().probe(LOOPBACK, unready), Answer::SelfHosted(500));

    let closed = TcpListener::bind((LOOPBACK, 0)).unwrap().local_addr().unwrap().port();
    assert!(matches!(
        cluster.prober().probe(LOOPBACK, closed),
        Answer::Unreachable(_)
    ));
}

#[test]
fn hand_back_waits_for_steady_answers_on_any_address() {
    let cluster = ca();
    let (cert, key) = cluster.issue("kube-apiserver");
    let port = serve(cert, key, 200);
    let params = HandBackParams {
        port,
        // The first address answers nothing (nothing listens on 127.0.0.2 at this port).
        via: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), LOOPBACK],
        answers: 3,
        steady: Duration::ZERO,
        poll: Duration::from_millis(50),
    };
    let started = Instant::now();
    assert_eq!(
        recovery::await_self_hosted(|| Ok(cluster.prober()), &params, &Stop::new()),
        Some(LOOPBACK)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "three rounds, two pauses"
    );
    // Three answers are not enough when they must span a while.
    let started = Instant::now();
    let steady = HandBackParams {
        steady: Duration::from_millis(600),
        ..params
    };
    assert_eq!(
        recovery::await_self_hosted(|| Ok(cluster.prober()), &steady, &Stop::new()),
        Some(LOOPBACK)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_listener_that_comes_or_goes_on_the_port_starts_the_confirmation_again() {
    let cluster = ca();
    let (cert, key) = cluster.issue("kube-apiserver");
    let port = serve(cert, key, 200);
    let params = HandBackParams {
        port,
        via: vec![LOOPBACK],
        answers: 2,
        steady: Duration::from_millis(600),
        poll: Duration::from_millis(50),
    };
    let started = Instant::now();
    let (left, gone) = mpsc::channel();
    // Another process on the port, as a restarting apiserver: it binds (a new socket) and
    // closes again, after the good answers began.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let other = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), port)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(other);
        left.send(Instant::now()).unwrap();
    });
    assert_eq!(
        recovery::await_self_hosted(|| Ok(cluster.prober()), &params, &Stop::new()),
        Some(LOOPBACK)
    );
    let returned = Instant::now();
    let left = gone.recv().unwrap();
    assert!(
        returned >= left + Duration::from_millis(550),
        "handed back {:?} after the listener left, {:?} after the start",
        returned.saturating_duration_since(left),
        returned - started
    );
}

#[test]
fn the_ca_is_read_from_its_file_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.crt");
    assert!(Prober::from_ca_file(&file, "kube-apiserver").is_err(), "no file yet");
    std::fs::write(&file, "not a certificate").unwrap();
    let err = Prober::from_ca_file(&file, "kube-apiserver").unwrap_err().to_string();
    assert!(err.contains("ca.crt"), "{err}");
    let cluster = ca();
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", cluster.der.to_vec()));
    std::fs::write(&file, pem).unwrap();
    let (cert, key) = cluster.issue("kube-apiserver");
    let port = serve(cert, key, 200);
    let prober = Prober::from_ca_file(&file, "kube-apiserver").unwrap();
    assert_eq!(prober.probe(LOOPBACK, port), Answer::SelfHosted(200));
}

#[test]
fn standby_waits_while_the_port_has_a_listener() {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        assert!(recovery::standby(port, 3, Duration::from_millis(50), &Stop::new()));
        done.send(Instant::now()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_millis(600)).is_err(),
        "standby returned while an apiserver listened"
    );
    let closed = Instant::now();
    drop(listener);
    let returned = finished
        .recv_timeout(Duration::from_secs(5))
        .expect("standby returns once the port is free");
    assert!(
        returned - closed >= Duration::from_millis(100),
        "three quiet looks first"
    );
}

const MANIFEST: &str =
    "metadata:\n  annotations:\n    selfhosted.dev/recovery-round: '0'\n  name: kube-apiserver-recovery\nspec: {}\n";

#[test]
fn rearm_gives_the_manifest_it_read_a_new_round() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("kube-apiserver-recovery.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    assert_eq!(recovery::rearm(&manifest, 42).unwrap(), Rearm::Rearmed);
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap(),
        MANIFEST.replace("'0'", "'42'")
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn rearm_leaves_a_manifest_written_after_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("kube-apiserver-recovery.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let uploaded = MANIFEST.replace("spec: {}", "spec: {containers: [new flags]}");

    // The provider's upload (temp file, renamed over) between the hand-back's read and rename.
    let seen = Seen::read(&manifest).unwrap();
    let upload = dir.path().join(".upload");
    std::fs::write(&upload, &uploaded).unwrap();
    std::fs::rename(&upload, &manifest).unwrap();
    assert_eq!(seen.rearm(42).unwrap(), Rearm::Superseded);
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap(),
        uploaded,
        "the upload stays"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );

    // The same bytes uploaded again are another file: left too (the next round rearms it).
    let seen = Seen::read(&manifest).unwrap();
    std::fs::write(&upload, &uploaded).unwrap();
    std::fs::rename(&upload, &manifest).unwrap();
    assert_eq!(seen.rearm(43).unwrap(), Rearm::Superseded);
    assert_eq!(recovery::rearm(&manifest, 44).unwrap(), Rearm::Rearmed);
    assert!(std::fs::read_to_string(&manifest).unwrap().contains("'44'"));

    // Rewritten in place (same file, other text).
    let seen = Seen::read(&manifest).unwrap();
    std::fs::write(
        &manifest,
        MANIFEST.replace("'0'", "'9'").replace("recovery\n", "recovery-x\n"),
    )
    .unwrap();
    assert_eq!(seen.rearm(45).unwrap(), Rearm::Superseded);
    assert!(std::fs::read_to_string(&manifest).unwrap().contains("recovery-x"));

    // Removed meanwhile: nothing written back.
    let seen = Seen::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    assert_eq!(seen.rearm(46).unwrap(), Rearm::Superseded);
    assert!(!manifest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}
