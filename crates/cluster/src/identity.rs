//! "Who answered?" — the peer certificate of a fresh TLS connection to an apiserver.
//!
//! With `--permit-port-sharing`, the bootstrap and the self-hosted apiserver listen on the same
//! port and the kernel spreads connections between them, so a good `/readyz` proves nothing
//! about which one serves. Each has its own serving certificate (same names, different keys):
//! the fingerprint of the certificate presented tells them apart. [`TlsProbe::ask`] opens a new
//! connection, completes the handshake (with the client certificate), records the peer
//! certificate and sends `GET /readyz` over that same connection.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{certs_from_pem, ApiCredentials};
use crate::dial::{Dialed, Dialer};
use crate::retry::Backoff;
use crate::wait::{WaitError, Waiter};

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A PEM input does not parse.
    #[error("invalid {what} PEM: {source}")]
    ParsePem {
        /// Which input.
        what: &'static str,
        /// The parse error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM input holds no certificate.
    #[error("the {what} PEM holds no certificate")]
    NoCertificate {
        /// Which input.
        what: &'static str,
    },
    /// rustls refused the configuration (bad key, unusable CA).
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (e.g. unknown authority, wrong name).
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// The I/O error carrying the TLS alert.
        #[source]
        source: std::io::Error,
    },
    /// The server presented no certificate.
    #[error("{addr} presented no certificate")]
    NoPeerCertificate {
        /// `host:port`.
        addr: String,
    },
    /// Sending the request or reading the answer failed.
    #[error("HTTP request on {addr}: {source}")]
    Http {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The answer is longer than any `/readyz` or small API object: a broken or hostile server.
    #[error("HTTP request on {addr}: answer longer than {limit} bytes, far more than an apiserver sends here; stopped reading")]
    TooLarge {
        /// `host:port`.
        addr: String,
        /// The most read.
        limit: u64,
    },
    /// No full answer within [`ANSWER_TIMEOUT`]: a server that accepts and stays silent.
    #[error("{addr}: no answer within {}s (connection, TLS handshake and HTTP answer)", ANSWER_TIMEOUT.as_secs())]
    TimedOut {
        /// `host:port`.
        addr: String,
    },
    /// The answer is not HTTP.
    #[error("HTTP request on {addr}: not an HTTP answer: {head:?}")]
    BadResponse {
        /// `host:port`.
        addr: String,
        /// The start of what came back.
        head: String,
    },
}

/// The most of an answer read: `/readyz` with every check listed is about 2 KiB, an object such
/// as a namespace a few; past this the server is not an apiserver answering, and reading on
/// would buffer without bound.
const MAX_ANSWER: u64 = 64 << 10;

/// How long one probe may take, from connecting to the end of the answer: an apiserver
/// answers in milliseconds; one that accepts and stays silent counts as one failed answer
/// instead of stalling the caller until its own deadline.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// SHA-256 of a certificate's DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The fingerprint of the first certificate in a PEM (e.g. `tls/apiserver.crt`).
    pub fn of_pem(pem: &str) -> Result<Self, IdentityError> {
        let certs = certs_from_pem(pem).map_err(|source| IdentityError::ParsePem {
            what: "certificate",
            source,
        })?;
        let first = certs
            .first()
            .ok_or(IdentityError::NoCertificate { what: "certificate" })?;
        Ok(Self::of_der(first))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One answer: who served it and what the path (`/readyz` unless asked otherwise) said.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The DER of the leaf certificate the server presented.
    pub peer_certificate: Vec<u8>,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// The HTTP status.
    pub status: u16,
    /// The body (trimmed).
    pub body: String,
}

impl Answer {
    /// Whether `/readyz` said `200 ok`.
    pub fn is_ready(&self) -> bool {
        self.status == 200 && self.body == "ok"
    }
}

/// Opens fresh TLS connections to an apiserver (ring, client certificate) to see who answers.
#[derive(Clone)]
pub struct TlsProbe {
    config: Arc<rustls::ClientConfig>,
    route: Route,
    server_name: ServerName<'static>,
}

/// How a probe reaches the apiserver.
#[derive(Clone)]
enum Route {
    /// TCP to `host:port`.
    Tcp { host: String, port: u16 },
    /// A stream the dialer opens.
    Dial(Dialer),
}

impl fmt::Debug for TlsProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsProbe").finish_non_exhaustive()
    }
}

impl TlsProbe {
    /// A probe of `host:port` trusting `creds.ca_pem`, verifying the certificate for
    /// `server_name` and authenticating with the client certificate.
    pub fn new(creds: &ApiCredentials, host: &str, port: u16, server_name: &str) -> Result<Self, IdentityError> {
        let route = Route::Tcp {
            host: host.to_owned(),
            port,
        };
        Self::with_route(creds, route, server_name)
    }

    /// As [`TlsProbe::new`], over the streams `dialer` opens (an SSH channel each, no local port).
    pub fn through(creds: &ApiCredentials, dialer: Dialer, server_name: &str) -> Result<Self, IdentityError> {
        Self::with_route(creds, Route::Dial(dialer), server_name)
    }

    fn with_route(creds: &ApiCredentials, route: Route, server_name: &str) -> Result<Self, IdentityError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| IdentityError::ServerName(server_name.to_owned()))?;
        let mut roots = rustls::RootCertStore::empty();
        let cas = certs_from_pem(&creds.ca_pem).map_err(|source| IdentityError::ParsePem { what: "CA", source })?;
        if cas.is_empty() {
            return Err(IdentityError::NoCertificate { what: "CA" });
        }
        for ca in cas {
            roots.add(ca).map_err(IdentityError::Config)?;
        }
        let chain: Vec<CertificateDer<'static>> =
            certs_from_pem(&creds.client_cert_pem).map_err(|source| IdentityError::ParsePem {
                what: "client certificate",
                source,
            })?;
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate {
                what: "client certificate",
            });
        }
        let key = PrivateKeyDer::from_pem_slice(creds.client_key_pem.as_bytes()).map_err(|source| {
            IdentityError::ParsePem {
                what: "client key",
                source,
            }
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(IdentityError::Config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(IdentityError::Config)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            route,
            server_name,
        })
    }

    /// `host:port` probed, or the dialer's route.
    pub fn addr(&self) -> String {
        match &self.route {
            Route::Tcp { host, port } => format!("{host}:{port}"),
            Route::Dial(dialer) => dialer.what().to_owned(),
        }
    }

    /// Open a new connection, complete the handshake, record the peer certificate and ask
    /// `GET /readyz` over that connection.
    pub async fn ask(&self) -> Result<Answer, IdentityError> {
        self.get("/readyz").await
    }

    /// As [`TlsProbe::ask`], with `GET path`: a real API request shows what a client sees,
    /// where `/readyz` also fails while an apiserver starts or drains yet serves.
    pub async fn get(&self, path: &str) -> Result<Answer, IdentityError> {
        tokio::time::timeout(ANSWER_TIMEOUT, self.get_unbounded(path))
            .await
            .unwrap_or_else(|_| Err(IdentityError::TimedOut { addr: self.addr() }))
    }

    async fn get_unbounded(&self, path: &str) -> Result<Answer, IdentityError> {
        let addr = self.addr();
        let name = self.server_name.clone();
        let server_name = name.to_str().into_owned();
        let stream: Dialed = match &self.route {
            Route::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
                .await
                .map(|s| Box::new(s) as Dialed),
            Route::Dial(dialer) => dialer.dial().await,
        }
        .map_err(|source| IdentityError::Connect {
            addr: addr.clone(),
            source,
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let mut tls = connector
            .connect(name, stream)
            .await
            .map_err(|source| IdentityError::Handshake {
                addr: addr.clone(),
                source,
            })?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .ok_or_else(|| IdentityError::NoPeerCertificate { addr: addr.clone() })?;
        let http_err = |source| IdentityError::Http {
            addr: addr.clone(),
            source,
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {server_name}\r\nUser-Agent: terraform-provider-selfhosted\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).await.map_err(http_err)?;
        let mut raw = Vec::new();
        // One byte past the limit tells a full answer from a cut one.
        if let Err(e) = (&mut tls).take(MAX_ANSWER + 1).read_to_end(&mut raw).await {
            // Some servers close without close_notify after a complete answer.
            if raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
                return Err(http_err(e));
            }
        }
        if raw.len() as u64 > MAX_ANSWER {
            return Err(IdentityError::TooLarge {
                addr: addr.clone(),
                limit: MAX_ANSWER,
            });
        }
        let (status, body) = parse_http(&raw).ok_or_else(|| IdentityError::BadResponse {
            addr: addr.clone(),
            head: String::from_utf8_lossy(&raw[..raw.len().min(80)]).into_owned(),
        })?;
        Ok(Answer {
            fingerprint: Fingerprint::of_der(&peer),
            peer_certificate: peer,
            status,
            body,
        })
    }
}

/// Status code and body of an HTTP/1.1 response (chunked or not).
fn parse_http(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_owned() };
    Some((status, body.trim().to_owned()))
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        s = rest.get(n..)?.strip_prefix("\r\n")?;
    }
}

impl Waiter {
    /// Wait until `consecutive` fresh connections in a row to the probed address are answered `200 ok`
    /// by the process serving `expected` (the self-hosted apiserver's certificate), probing
    /// every `interval`. An answer from another certificate, a failed `/readyz` or a failed
    /// connection resets the count. No deadline of its own: wrap with [`Waiter::until`].
    pub async fn served_by(
        &self,
        probe: &TlsProbe,
        expected: Fingerprint,
        consecutive: u32,
        interval: Duration,
    ) -> Result<Answer, WaitError> {
        let what = format!("{consecutive} answers in a row from {expected} on {}", probe.addr());
        let mut good = 0u32;
        let mut backoff = Backoff::new(interval, interval.max(Duration::from_secs(1)));
        loop {
            match probe.ask().await {
                Ok(a) if a.fingerprint == expected && a.is_ready() => {
                    good += 1;
                    self.progress()
                        .set(format!("{good}/{consecutive} good answers from {expected}"));
                    if good >= consecutive {
                        return Ok(a);
                    }
                    backoff = Backoff::new(interval, interval);
                }
                Ok(a) => {
                    good = 0;
                    self.progress().set(format!(
                        "answered by {} with {} {:?} (want {expected} and 200 ok)",
                        a.fingerprint, a.status, a.body
                    ));
                }
                Err(e) => {
                    good = 0;
                    self.progress().set(crate::retry::error_chain(&e));
                }
            }
            let delay = if good > 0 { interval } else { backoff.next_delay() };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel_token().cancelled() => return Err(WaitError::Cancelled { what, last: self.progress().last() }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_parse() {
        assert_eq!(
            parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Some((200, "ok".into()))
        );
        let chunked = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[-]et\r\n3\r\ncd \r\n0\r\n\r\n";
        assert_eq!(parse_http(chunked), Some((500, "[-]etcd".into())));
        assert_eq!(parse_http(b"garbage"), None);
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_limit() {
        use crate::testing::{Reply, TestServer};
        let server = Arc::new(TestServer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = server.clone();
        tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                serving.serve(tcp, Reply::Endless).await;
            }
        });
        let probe = TlsProbe::new(&server.creds, "127.0.0.1", port, "kubernetes").unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), probe.ask())
            .await
            .expect("the probe stops reading at its limit");
        let err = answer.unwrap_err();
        assert!(
            matches!(err, IdentityError::TooLarge { limit: MAX_ANSWER, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("longer than 65536 bytes"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_accepts_and_stays_silent_is_one_failed_answer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let held = listener.accept().await;
            std::future::pending::<()>().await;
            drop(held);
        });
        let server = crate::testing::TestServer::new();
        let probe = TlsProbe::new(&server.creds, "127.0.0.1", port, "kubernetes").unwrap();
        let err = probe.ask().await.unwrap_err();
        assert!(matches!(err, IdentityError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("no answer within 10s"), "{err}");
    }

    #[test]
    fn fingerprints_print_as_sha256_hex() {
        let f = Fingerprint::of_der(b"abc");
        assert_eq!(
            f.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(Fingerprint::of_pem("none").is_err());
    }
}
