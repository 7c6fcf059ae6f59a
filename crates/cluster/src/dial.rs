//! Connections to an apiserver opened in-process, with no local port.
//!
//! Through SSH, each connection is a direct-tcpip channel the caller opens. Handing such
//! channels to the kube client and the [`crate::TlsProbe`] as they are made, rather than
//! forwarding a `127.0.0.1` listener to them, leaves nothing another local user could connect
//! to during an apply to reach the apiserver through the provider's SSH session.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long opening one connection may take (kube's own connect timeout is the same).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A byte stream to the apiserver (e.g. an SSH channel).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

type Open = dyn Fn() -> BoxFuture<'static, io::Result<Dialed>> + Send + Sync;

/// Opens a new stream to the apiserver on each call.
#[derive(Clone)]
pub struct Dialer {
    what: Arc<str>,
    open: Arc<Open>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Dialer").field(&self.what).finish()
    }
}

impl Dialer {
    /// A dialer that calls `open` for each connection; `what` names the route in errors
    /// (e.g. `ssh tunnel c0 → 127.0.0.1:6443`).
    pub fn new<F, Fut, S>(what: impl Into<String>, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: Stream,
    {
        let open = Arc::new(move || -> BoxFuture<'static, io::Result<Dialed>> {
            let opening = open();
            Box::pin(async move { Ok(Box::new(opening.await?) as Dialed) })
        });
        Self {
            what: what.into().into(),
            open,
        }
    }

    /// The route, as given.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// A new stream, or a timed-out error after 10 s.
    pub async fn dial(&self) -> io::Result<Dialed> {
        match tokio::time::timeout(CONNECT_TIMEOUT, (self.open)()).await {
            Ok(stream) => stream,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            )),
        }
    }
}

/// The kube client's connector: each connection its pool needs is a new stream.
impl tower::Service<http::Uri> for Dialer {
    type Response = TokioIo<Dialed>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<TokioIo<Dialed>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move { dialer.dial().await.map(TokioIo::new) })
    }
}

/// One stream a [`Dialer`] opened.
pub type Dialed = Box<dyn Stream>;

impl Connection for Dialed {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testing::{Reply, TestServer};

    const VERSION: &str = r#"{"major":"1","minor":"34","gitVersion":"v1.34.3","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#;

    /// A dialer to an in-process server: each stream is one end of a pipe, nothing listens.
    fn in_process(server: Arc<TestServer>, dials: Arc<AtomicUsize>) -> Dialer {
        Dialer::new("in-process test server", move || {
            dials.fetch_add(1, Ordering::SeqCst);
            let server = server.clone();
            async move {
                let (near, far) = tokio::io::duplex(64 << 10);
                tokio::spawn(async move { server.serve(far, Reply::Json(VERSION)).await });
                Ok(near)
            }
        })
    }

    #[tokio::test]
    async fn the_kube_client_and_the_probe_connect_through_a_dialer() {
        let server = Arc::new(TestServer::new());
        let dials = Arc::new(AtomicUsize::new(0));
        let dialer = in_process(server.clone(), dials.clone());
        let client =
            crate::connect_through("https://127.0.0.1:6443", dialer.clone(), &server.creds, "kubernetes").unwrap();
        for _ in 0..2 {
            let version = client.apiserver_version().await.unwrap();
            assert_eq!(version.git_version, "v1.34.3");
        }
        let probe = crate::TlsProbe::through(&server.creds, dialer, "kubernetes").unwrap();
        let answer = probe.ask().await.unwrap();
        assert_eq!((answer.status, answer.fingerprint), (200, server.fingerprint));
        assert_eq!(probe.addr(), "in-process test server");
        // The server closes each connection: every request was a new stream.
        assert_eq!(dials.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_dialer_that_fails_names_its_route() {
        let server = TestServer::new();
        let dialer = Dialer::new("ssh c0 → 127.0.0.1:6443", || async {
            Err::<tokio::io::DuplexStream, _>(io::Error::other("c0: cannot forward to 127.0.0.1:6443"))
        });
        let probe = crate::TlsProbe::through(&server.creds, dialer, "kubernetes").unwrap();
        let err = crate::retry::error_chain(&probe.ask().await.unwrap_err());
        assert!(
            err.starts_with("connecting to ssh c0 → 127.0.0.1:6443: c0: cannot forward"),
            "{err}"
        );
    }
}
