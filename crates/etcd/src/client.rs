//! A gRPC channel to one etcd member over mutual TLS, each connection one the caller opens.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::pb::cluster_client::ClusterClient;
use crate::pb::maintenance_client::MaintenanceClient;
use crate::pb::StatusRequest;

/// How long opening one connection (the stream and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call that is not a snapshot may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The etcd client certificate, its key, and the CA the members' serving certificates are
/// checked against (`tls/etcd-client.crt`, `tls/etcd-client.key`, `tls/etcd-ca.crt`).
#[derive(Clone)]
pub struct Credentials {
    /// CA bundle, PEM.
    pub ca_pem: String,
    /// Client certificate chain, PEM.
    pub cert_pem: String,
    /// Client key, PEM. Never printed.
    pub key_pem: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key_pem", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// Why etcd could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The credentials do not make a TLS client (bad PEM, a key that is not the certificate's).
    #[error("the etcd client credentials are unusable: {0}")]
    Credentials(String),
    /// No gRPC connection to the member.
    #[error("cannot connect to etcd through {route}: {source}")]
    Connect {
        /// How the member was reached.
        route: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The member answered a call with an error, or did not answer in time.
    #[error("etcd through {route}: {call} failed: {message}")]
    Call {
        /// How the member was reached.
        route: String,
        /// The call, e.g. `Maintenance.Snapshot`.
        call: &'static str,
        /// etcd's own words.
        message: String,
    },
    /// The snapshot stream ended early or its checksum does not match its content.
    #[error("etcd through {route}: the snapshot is unusable: {reason}")]
    Snapshot {
        /// How the member was reached.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A member's or a cluster's ID; shown in hex, as `etcdctl` prints it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub u64);

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// What a member says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The member's ID.
    pub member_id: Id,
    /// The cluster's ID: a member that started a cluster of its own has another.
    pub cluster_id: Id,
    /// etcd's version, e.g. `3.5.21`.
    pub version: String,
    /// The keyspace revision when the member answered.
    pub revision: i64,
    /// Size of the backend database, bytes.
    pub db_size: i64,
    /// Whether a leader is known (a member without one cannot serve a consistent snapshot).
    pub has_leader: bool,
    /// Whether this member is the leader (restarting it costs an election).
    pub is_leader: bool,
    /// Errors the member reports about itself (e.g. `NOSPACE` alarms).
    pub errors: Vec<String>,
}

/// One member of etcd, reached through connections the caller opens.
#[derive(Debug, Clone)]
pub struct Client {
    route: Arc<str>,
    channel: tonic::transport::Channel,
}

fn tls_config(creds: &Credentials) -> Result<rustls::ClientConfig, EtcdError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| EtcdError::Credentials(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(creds.ca_pem.as_bytes()) {
        roots.add(cert.map_err(|e| bad("CA", &e))?).map_err(|e| bad("CA", &e))?;
    }
    if roots.is_empty() {
        return Err(EtcdError::Credentials("the CA bundle holds no certificate".into()));
    }
    let chain = CertificateDer::pem_slice_iter(creds.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("client certificate", &e))?;
    if chain.is_empty() {
        return Err(EtcdError::Credentials("no client certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes()).map_err(|e| bad("client key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad("client certificate and key", &e))?;
    // gRPC is HTTP/2; etcd's gRPC server refuses a TLS client that does not offer it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

impl Client {
    /// Connects to the member that `open` reaches (each call one new byte stream, e.g. an SSH
    /// channel to `127.0.0.1:2379`); `route` names it in errors; `server_name` must be a name
    /// in the member's serving certificate (`localhost` on a controller's loopback).
    ///
    /// # Errors
    /// [`EtcdError::Credentials`] or [`EtcdError::Connect`].
    pub async fn connect<F, Fut, S>(
        route: impl Into<String>,
        open: F,
        creds: &Credentials,
        server_name: &str,
    ) -> Result<Self, EtcdError>
    where
        F: Fn() -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = std::io::Result<S>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let route: Arc<str> = route.into().into();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(creds)?));
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| EtcdError::Credentials(format!("server name {server_name:?}: {e}")))?;
        let channel = tonic::transport::Endpoint::from_static("http://etcd.invalid")
            .connect_with_connector(tower::service_fn(move |_| {
                let (open, connector, name) = (open.clone(), connector.clone(), name.clone());
                async move {
                    let connecting = async {
                        let stream = open().await?;
                        connector.connect(name, stream).await
                    };
                    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                        Ok(tls) => tls.map(hyper_util::rt::TokioIo::new),
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no TLS connection within {CONNECT_TIMEOUT:?}"),
                        )),
                    }
                }
            }))
            .await
            .map_err(|source| EtcdError::Connect {
                route: route.to_string(),
                source,
            })?;
        Ok(Self { route, channel })
    }

    /// How the member is reached, as given.
    pub fn route(&self) -> &str {
        &self.route
    }

    pub(crate) fn maintenance(&self) -> MaintenanceClient<tonic::transport::Channel> {
        // etcd caps messages at 2 MiB by default; a snapshot chunk is 32 KiB.
        MaintenanceClient::new(self.channel.clone()).max_decoding_message_size(8 << 20)
    }

    pub(crate) fn cluster(&self) -> ClusterClient<tonic::transport::Channel> {
        ClusterClient::new(self.channel.clone())
    }

    /// Runs a unary call with the [`CALL_TIMEOUT`], its failure named `call`.
    pub(crate) async fn unary<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(r) => Ok(r.map_err(|s| self.call_error(call, &s))?.into_inner()),
            Err(_) => Err(EtcdError::Call {
                route: self.route.to_string(),
                call,
                message: format!("no answer within {CALL_TIMEOUT:?}"),
            }),
        }
    }

    pub(crate) fn call_error(&self, call: &'static str, status: &tonic::Status) -> EtcdError {
        EtcdError::Call {
            route: self.route.to_string(),
            call,
            message: format!("{:?}: {}", status.code(), status.message()),
        }
    }

    /// The member's status.
    ///
    /// # Errors
    /// [`EtcdError::Call`] when it refuses or does not answer within 10 s.
    pub async fn status(&self) -> Result<Status, EtcdError> {
        let mut maintenance = self.maintenance();
        let reply = self
            .unary("Maintenance.Status", maintenance.status(StatusRequest {}))
            .await?;
        let header = reply.header.unwrap_or_default();
        Ok(Status {
            member_id: Id(header.member_id),
            cluster_id: Id(header.cluster_id),
            version: reply.version,
            revision: header.revision,
            db_size: reply.db_size,
            has_leader: reply.leader != 0,
            is_leader: reply.leader != 0 && reply.leader == header.member_id,
            errors: reply.errors,
        })
    }
}
