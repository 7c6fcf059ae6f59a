//! A stand-in apiserver for unit tests: TLS with a self-signed certificate for `kubernetes`
//! (trusted as its own CA, and sent back as the client certificate), one fixed answer.

use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{ApiCredentials, Fingerprint};

/// What the server answers to every request.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    /// `200 OK` with this JSON body, then the connection closes.
    Json(&'static str),
    /// A status line, then bytes without end until the client goes away.
    Endless,
}

/// The server's TLS setup and the credentials a client needs for it.
pub(crate) struct TestServer {
    acceptor: tokio_rustls::TlsAcceptor,
    /// CA, client certificate and key that the server accepts.
    pub(crate) creds: ApiCredentials,
    /// The server certificate's fingerprint.
    pub(crate) fingerprint: Fingerprint,
}

impl TestServer {
    pub(crate) fn new() -> Self {
        let cert = rcgen::generate_simple_self_signed(vec!["kubernetes".to_owned()]).unwrap();
        let key_pem = cert.signing_key.serialize_pem();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            creds: ApiCredentials {
                ca_pem: cert.cert.pem(),
                client_cert_pem: cert.cert.pem(),
                client_key_pem: key_pem,
            },
            fingerprint: Fingerprint::of_der(&der),
        }
    }

    /// Serves one connection: reads the request head and answers with `reply`.
    pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, reply: Reply) {
        let Ok(mut tls) = self.acceptor.accept(stream).await else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        match reply {
            Reply::Json(body) => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
            Reply::Endless => {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                let chunk = vec![b'x'; 16 << 10];
                while tls.write_all(&chunk).await.is_ok() {}
            }
        }
    }
}
