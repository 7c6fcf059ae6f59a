//! Process lifecycle as go-plugin expects it: check the magic cookie, listen
//! on 127.0.0.1, announce `1|6|tcp|ADDR|grpc|CERT` on stdout, serve gRPC
//! over strict mutual TLS, ignore SIGINT (Terraform sends StopProvider
//! instead) and exit promptly when the host calls `GRPCController.Shutdown`.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::pb::{health, plugin, tfplugin6};
use crate::service;
use crate::tls;
use crate::Provider;

/// Environment variable go-plugin hosts set so a plugin knows it was
/// started by its host.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Terraform's (and OpenTofu's) cookie value.
pub const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// Environment variable carrying the host's client certificate (AutoMTLS).
pub const CLIENT_CERT_ENV: &str = "PLUGIN_CLIENT_CERT";
/// Protocol version we serve.
pub const PROTOCOL_VERSION: u32 = 6;

/// Largest message accepted or sent; Terraform itself allows any size, and
/// state with rendered assets can pass gRPC's 4 MiB default.
const MAX_MESSAGE: usize = 256 << 20;
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After Shutdown, time for the reply to reach the host before we exit.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// Errors serving the provider.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Started by hand rather than by Terraform.
    #[error(
        "this is a Terraform provider plugin and is started by Terraform, not by hand \
         (TF_PLUGIN_MAGIC_COOKIE is not set); use it from a Terraform configuration with terraform init/plan/apply"
    )]
    MissingMagicCookie,
    /// Started without AutoMTLS.
    #[error(
        "PLUGIN_CLIENT_CERT is not set: this provider only serves over mutual TLS with the certificate \
         its host passes there (Terraform always does)"
    )]
    MissingClientCert,
    /// TLS setup failed.
    #[error("setting up TLS failed")]
    Tls(#[source] tls::TlsError),
    /// Binding the listener failed.
    #[error("listening on 127.0.0.1 failed")]
    Bind(#[source] std::io::Error),
    /// Writing the handshake line failed.
    #[error("writing the handshake line to stdout failed")]
    WriteHandshake(#[source] std::io::Error),
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Serve(#[source] tonic::transport::Error),
    /// The server task died.
    #[error("the server task ended abnormally")]
    Join(#[source] tokio::task::JoinError),
    /// Building the async runtime failed.
    #[error("starting the async runtime failed")]
    Runtime(#[source] std::io::Error),
}

/// A provider being served.
pub struct Running {
    handshake: String,
    addr: SocketAddr,
    server_cert_der: Vec<u8>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// The go-plugin handshake line (without newline).
    pub fn handshake_line(&self) -> &str {
        &self.handshake
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Our certificate, DER.
    pub fn server_cert_der(&self) -> &[u8] {
        &self.server_cert_der
    }

    /// Cancelling this stops the server as `Shutdown` would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server ends (after `Shutdown`).
    ///
    /// # Errors
    /// The server failed.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await.map_err(ServeError::Join)?
    }
}

/// Binds, sets up TLS pinned to `client_cert_pem` and starts serving; the
/// caller announces the handshake line. `serve` is this plus the process
/// duties; tests use it in-process.
///
/// # Errors
/// TLS setup or binding failed.
pub async fn start(provider: Provider, client_cert_pem: &str) -> Result<Running, ServeError> {
    let client_cert = tls::parse_client_cert(client_cert_pem).map_err(ServeError::Tls)?;
    let server_tls = tls::server_tls(client_cert).map_err(ServeError::Tls)?;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(ServeError::Bind)?;
    let addr = listener.local_addr().map_err(ServeError::Bind)?;
    let handshake = format!(
        "1|{PROTOCOL_VERSION}|tcp|{addr}|grpc|{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&server_tls.cert_der)
    );

    let shutdown = CancellationToken::new();
    let stop = CancellationToken::new();
    let incoming = accept_tls(
        listener,
        tokio_rustls::TlsAcceptor::from(server_tls.config),
        shutdown.clone(),
    );

    let provider_svc =
        tfplugin6::provider_server::ProviderServer::new(service::ProviderService::new(provider, stop.clone()))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
    let router = tonic::transport::Server::builder()
        .add_service(provider_svc)
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            service::Controller {
                shutdown: shutdown.clone(),
            },
        ))
        .add_service(plugin::grpc_stdio_server::GrpcStdioServer::new(service::Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(plugin::grpc_broker_server::GrpcBrokerServer::new(service::Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(health::health_server::HealthServer::new(service::Health));

    let sd = shutdown.clone();
    let task = tokio::spawn(async move {
        let server = router.serve_with_incoming_shutdown(incoming, sd.clone().cancelled_owned());
        let grace = async {
            sd.cancelled().await;
            stop.cancel();
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            r = server => r.map_err(ServeError::Serve),
            () = grace => Ok(()),
        }
    });
    Ok(Running {
        handshake,
        addr,
        server_cert_der: server_tls.cert_der,
        shutdown,
        task,
    })
}

/// Accepts TCP connections and completes the TLS handshake of each in its
/// own task, yielding only connections from the pinned client.
fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut backoff = AcceptBackoff::default();
        loop {
            let (tcp, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(c) => {
                        backoff.succeeded();
                        c
                    }
                    Err(e) => {
                        let pause = backoff.failed();
                        tracing::warn!(error = %e, ?pause, "accepting a connection failed; trying again");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                },
            };
            // Small request/response messages: without this, Nagle's algorithm meets the
            // peer's delayed ACKs and adds ~40 ms to each call.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(TlsConn(tls))).await;
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "refused a TLS connection"),
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The pause after a failed `accept`: 5 ms, doubled each failure in a row up to 1 s, back to
/// the start after a success. What makes `accept` fail (EMFILE, ENFILE, ENOBUFS) leaves the
/// connection queued, so trying again at once would spin a core for as long as it lasts.
#[derive(Debug, Default)]
struct AcceptBackoff {
    last: Option<Duration>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    /// The pause before the next `accept`, after one more failure.
    fn failed(&mut self) -> Duration {
        let pause = self.last.map_or(Self::FIRST, |last| (last * 2).min(Self::MAX));
        self.last = Some(pause);
        pause
    }

    /// A connection came: the next failure pauses briefly again.
    fn succeeded(&mut self) {
        self.last = None;
    }
}

/// A TLS connection from the pinned client, as tonic's server takes it.
pub struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Checks the magic cookie in the process environment.
///
/// # Errors
/// The cookie is missing or wrong.
pub fn check_magic_cookie() -> Result<(), ServeError> {
    match std::env::var(MAGIC_COOKIE_KEY) {
        Ok(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(ServeError::MissingMagicCookie),
    }
}

/// Serves the provider as a Terraform plugin process: checks the cookie and
/// `PLUGIN_CLIENT_CERT`, starts logging, announces the handshake on stdout,
/// ignores SIGINT, and returns after `Shutdown`.
///
/// # Errors
/// Not started by Terraform, or serving failed.
pub async fn serve(provider: Provider) -> Result<(), ServeError> {
    check_magic_cookie()?;
    let client_cert = std::env::var(CLIENT_CERT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ServeError::MissingClientCert)?;
    crate::logging::init(provider.name, crate::logging::level_from_env());
    if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !versions.split(',').any(|v| v.trim() == "6") {
            tracing::warn!(%versions, "host does not offer plugin protocol 6, which is all this provider speaks");
        }
    }
    let running = start(provider, &client_cert).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", running.handshake_line()).map_err(ServeError::WriteHandshake)?;
        out.flush().map_err(ServeError::WriteHandshake)?;
    }
    tracing::debug!(addr = %running.addr(), "plugin serving");
    // Ctrl-C reaches the whole process group; Terraform answers it with
    // StopProvider, so the signal itself must not end us.
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("ignoring SIGINT; Terraform sends StopProvider");
        }
    });
    let r = running.wait().await;
    tracing::debug!("plugin shutting down");
    r
}

/// The whole `main` of a provider binary: runs [`serve`] on a fresh
/// runtime, prints any error as one line on stderr, and does not wait for
/// leftover work after `Shutdown` (so the process exits at once).
pub fn run(provider: Provider) -> ExitCode {
    // Checked before anything else, so running by hand prints one line.
    if let Err(e) = check_magic_cookie() {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    // Long procedures (a pivot, an upgrade) nest many async state machines; the
    // 2 MiB default stack overflowed in debug builds. 8 MiB leaves headroom.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: {e}", ServeError::Runtime(e.kind().into()));
            return ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(serve(provider));
    rt.shutdown_timeout(Duration::from_millis(100));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_pause_longer_up_to_a_second_until_one_succeeds() {
        let mut b = AcceptBackoff::default();
        let ms: Vec<u128> = (0..10).map(|_| b.failed().as_millis()).collect();
        assert_eq!(ms, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(5));
    }
}
