//! The recovery helpers against real sockets on loopback: `hand-back` accepts only the pinned
//! certificate answering `/readyz` with 200, and `standby` waits exactly while a listener holds
//! the port.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use selfhosted_agent::recovery::{self, Answer, HandBackParams, Prober};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der()).into())
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
fn only_the_pinned_certificate_answering_ready_counts() {
    let (cert, key) = certificate();
    let port = serve(cert.clone(), key, 200);
    let (other, _) = certificate();

    assert_eq!(Prober::pinned(cert.clone()).probe(LOOPBACK, port), Answer::Pinned(200));
    assert_eq!(Prober::pinned(other).probe(LOOPBACK, port), Answer::OtherCertificate);

    let (unready_cert, unready_key) = certificate();
    let unready = serve(unready_cert.clone(), unready_key, 500);
    assert_eq!(
        Prober::pinned(unready_cert).probe(LOOPBACK, unready),
        Answer::Pinned(500)
    );

    let closed = TcpListener::bind((LOOPBACK, 0)).unwrap().local_addr().unwrap().port();
    assert!(matches!(
        Prober::pinned(cert).probe(LOOPBACK, closed),
        Answer::Unreachable(_)
    ));
}

#[test]
fn hand_back_waits_for_steady_answers_on_any_address() {
    let (cert, key) = certificate();
    let port = serve(cert.clone(), key, 200);
    let prober = Prober::pinned(cert);
    let params = HandBackParams {
        port,
        // The first address answers nothing (nothing listens on 127.0.0.2 at this port).
        via: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), LOOPBACK],
        answers: 3,
        poll: Duration::from_millis(50),
    };
    let started = Instant::now();
    assert_eq!(recovery::await_self_hosted(&prober, &params), LOOPBACK);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "three rounds, two pauses"
    );
}

#[test]
fn standby_waits_while_the_port_has_a_listener() {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        recovery::standby(port, 3, Duration::from_millis(50));
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
