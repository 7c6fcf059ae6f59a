//! Strict AutoMTLS and shutdown, over real TLS and gRPC: only the client
//! certificate passed in PLUGIN_CLIENT_CERT may connect (P-256 from rcgen,
//! P-521 from the real openssl, as go-plugin uses); any other, or none, is
//! refused; GRPCController.Shutdown ends the server (in-process) and the
//! process (the example binary) within a second.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::pbc;
use support::ClientId;

fn provider() -> selfhosted_protocol::Provider {
    selfhosted_protocol::Provider {
        name: "test",
        resources: Vec::new(),
    }
}

async fn health(ch: tonic::transport::Channel) -> Result<i32, tonic::Status> {
    let mut c = pbc::health::health_client::HealthClient::new(ch);
    let r = c
        .check(pbc::health::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    Ok(r.into_inner().status)
}

/// Connecting and calling must fail somewhere: at connect, or at the first
/// call (TLS 1.3 clients learn of a refused certificate only afterwards).
async fn assert_refused(running: &selfhosted_protocol::Running, client: Option<&ClientId>) {
    let ch = support::channel(running.addr(), running.server_cert_der().to_vec(), client).await;
    if let Ok(ch) = ch {
        let r = tokio::time::timeout(Duration::from_secs(5), health(ch))
            .await
            .expect("refusal within 5 s");
        assert!(r.is_err(), "a connection that should be refused got an answer: {r:?}");
    }
}

#[tokio::test]
async fn only_the_pinned_p256_client_certificate_is_accepted() {
    let expected = support::p256_client();
    let foreign = support::p256_client();
    let running = selfhosted_protocol::start(provider(), &expected.cert_pem)
        .await
        .expect("start");
    let (addr, der) = support::parse_handshake(running.handshake_line());
    assert_eq!(addr, running.addr());

    let ch = support::channel(addr, der.clone(), Some(&expected))
        .await
        .expect("connect with expected cert");
    assert_eq!(health(ch.clone()).await.expect("health"), 1, "SERVING");
    let mut p = pbc::tfplugin6::provider_client::ProviderClient::new(ch);
    let schema = p
        .get_provider_schema(pbc::tfplugin6::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    assert!(schema.provider.is_some());

    assert_refused(&running, Some(&foreign)).await;
    assert_refused(&running, None).await;

    // The expected client still works after the refusals.
    let ch = support::channel(addr, der, Some(&expected)).await.expect("reconnect");
    assert_eq!(health(ch).await.expect("health again"), 1);
    running.shutdown_token().cancel();
    running.wait().await.expect("clean stop");
}

#[tokio::test]
async fn only_the_pinned_p521_client_certificate_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = support::p521_client(dir.path());
    let foreign_dir = tempfile::tempdir().expect("tempdir");
    let foreign = support::p521_client(foreign_dir.path());
    let running = selfhosted_protocol::start(provider(), &expected.cert_pem)
        .await
        .expect("start");

    let ch = support::channel(running.addr(), running.server_cert_der().to_vec(), Some(&expected))
        .await
        .expect("connect with expected P-521 cert");
    assert_eq!(health(ch).await.expect("health"), 1);

    assert_refused(&running, Some(&foreign)).await;
    // A P-256 certificate is just as foreign.
    assert_refused(&running, Some(&support::p256_client())).await;
    running.shutdown_token().cancel();
    running.wait().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_rpc_ends_the_server_within_a_second() {
    let client = support::p256_client();
    let running = selfhosted_protocol::start(provider(), &client.cert_pem)
        .await
        .expect("start");
    let ch = support::channel(running.addr(), running.server_cert_der().to_vec(), Some(&client))
        .await
        .expect("connect");
    // Hold the stdio stream open, as go-plugin does, to prove it does not
    // keep the server alive.
    let mut stdio = pbc::plugin::grpc_stdio_client::GrpcStdioClient::new(ch.clone());
    let _stream = stdio.stream_stdio(pbc::plugin::Empty {}).await.expect("stdio stream");

    let mut ctl = pbc::plugin::grpc_controller_client::GrpcControllerClient::new(ch);
    let t = Instant::now();
    ctl.shutdown(pbc::plugin::Empty {}).await.expect("Shutdown");
    tokio::time::timeout(Duration::from_secs(1), running.wait())
        .await
        .expect("server ended within 1 s")
        .expect("clean stop");
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn stop_provider_cancels_in_flight_work() {
    // StopProvider answers at once, even with nothing running.
    let client = support::p256_client();
    let running = selfhosted_protocol::start(provider(), &client.cert_pem)
        .await
        .expect("start");
    let ch = support::channel(running.addr(), running.server_cert_der().to_vec(), Some(&client))
        .await
        .expect("connect");
    let mut p = pbc::tfplugin6::provider_client::ProviderClient::new(ch);
    let r = p
        .stop_provider(pbc::tfplugin6::stop_provider::Request {})
        .await
        .expect("StopProvider")
        .into_inner();
    assert_eq!(r.error, "");
    running.shutdown_token().cancel();
    running.wait().await.expect("clean stop");
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn provider_process_exits_within_a_second_of_shutdown() {
    let client = support::p256_client();
    let mut child = Kill(
        Command::new(support::echo_binary())
            .env(
                "TF_PLUGIN_MAGIC_COOKIE",
                selfhosted_protocol::server::MAGIC_COOKIE_VALUE,
            )
            .env("PLUGIN_CLIENT_CERT", &client.cert_pem)
            .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
            .env("TF_LOG", "DEBUG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo provider"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("handshake line");
    let (addr, der) = support::parse_handshake(&line);
    let ch = support::channel(addr, der, Some(&client)).await.expect("connect");
    let mut ctl = pbc::plugin::grpc_controller_client::GrpcControllerClient::new(ch);
    let t = Instant::now();
    ctl.shutdown(pbc::plugin::Empty {}).await.expect("Shutdown");
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "provider still running 1 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "exit status {status}");

    // Its stderr is hclog JSON lines Terraform can parse.
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().expect("stderr"), &mut err).expect("stderr");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert!(!lines.is_empty(), "TF_LOG=DEBUG produced no log lines");
    for l in &lines {
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&l["@level"].as_str().unwrap_or("")),
            "{l}"
        );
        assert_eq!(l["@module"], "provider.selfhosted");
        let ts = l["@timestamp"].as_str().expect("timestamp");
        // 2006-01-02T15:04:05.000000Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        assert!(l["@message"].is_string());
    }
    assert!(err.contains("Shutdown requested"), "{err}");
}
