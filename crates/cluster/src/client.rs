//! A kube [`Client`] from a server URL, the cluster CA and a client certificate.
//!
//! The provider reaches the API either directly or through connections it opens in-process
//! ([`crate::dial`]); then the URL host is not a name in the apiserver certificate, so the TLS
//! server name (SNI and verification) can be overridden with one that is (`kubernetes`, or the
//! first controller's name).

use base64::Engine;
use kube::client::ConfigExt;
use kube::{Client, Config};
use rustls::pki_types::{pem::PemObject, CertificateDer};

/// PEM material to authenticate to an apiserver and to verify it.
#[derive(Clone)]
pub struct ApiCredentials {
    /// The cluster CA certificate(s) that signed the apiserver's serving certificate.
    pub ca_pem: String,
    /// The client certificate (e.g. the admin's, group `system:masters`).
    pub client_cert_pem: String,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key_pem: String,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("client_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL does not parse.
    #[error("invalid API server URL {server:?}: {source}")]
    ParseServerUrl {
        /// The URL given.
        server: String,
        /// The parse error.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The CA PEM does not parse.
    #[error("invalid cluster CA PEM: {0}")]
    ParseCa(#[source] rustls::pki_types::pem::Error),
    /// The CA PEM holds no certificate.
    #[error("the cluster CA PEM holds no certificate")]
    NoCaCertificate,
    /// kube refused the configuration (bad client certificate or key, TLS setup).
    #[error("building the Kubernetes client for {server}: {source}")]
    Build {
        /// The URL given.
        server: String,
        /// kube's error.
        #[source]
        source: kube::Error,
    },
}

/// DER certificates from a PEM bundle.
pub(crate) fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect()
}

/// The kube [`Config`] for `server` with these credentials; `tls_server_name` overrides the name
/// the apiserver certificate is checked against (and sent as SNI).
pub fn config(server: &str, creds: &ApiCredentials, tls_server_name: Option<&str>) -> Result<Config, ClientError> {
    let uri: http::Uri = server.parse().map_err(|source| ClientError::ParseServerUrl {
        server: server.to_owned(),
        source,
    })?;
    let roots = certs_from_pem(&creds.ca_pem).map_err(ClientError::ParseCa)?;
    if roots.is_empty() {
        return Err(ClientError::NoCaCertificate);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut config = Config::new(uri);
    config.root_cert = Some(roots.into_iter().map(|c| c.to_vec()).collect());
    config.auth_info.client_certificate_data = Some(b64.encode(&creds.client_cert_pem));
    config.auth_info.client_key_data = Some(secrecy::SecretString::from(b64.encode(&creds.client_key_pem)));
    config.tls_server_name = tls_server_name.map(str::to_owned);
    config.connect_timeout = Some(crate::dial::CONNECT_TIMEOUT);
    Ok(config)
}

/// A client for the apiserver at `server` (`https://host:port`). Call it inside a Tokio runtime
/// (kube spawns the client's request buffer on it).
pub fn connect(server: &str, creds: &ApiCredentials, tls_server_name: Option<&str>) -> Result<Client, ClientError> {
    let config = config(server, creds, tls_server_name)?;
    Client::try_from(config).map_err(|source| ClientError::Build {
        server: server.to_owned(),
        source,
    })
}

/// A client for an apiserver reached through a local port (an SSH tunnel's `127.0.0.1` end);
/// `tls_server_name` must be a name in the apiserver certificate.
pub fn connect_local_port(port: u16, creds: &ApiCredentials, tls_server_name: &str) -> Result<Client, ClientError> {
    connect(&format!("https://127.0.0.1:{port}"), creds, Some(tls_server_name))
}

/// A client for the apiserver `dialer` reaches, with no local port: each connection the
/// client needs is one `dialer` opens. `server` (`https://host:port`) is only what requests
/// name; `tls_server_name` must be a name in the apiserver certificate. The layers are
/// kube's own for a [`Config`], but for the connector.
pub fn connect_through(
    server: &str,
    dialer: crate::Dialer,
    creds: &ApiCredentials,
    tls_server_name: &str,
) -> Result<Client, ClientError> {
    let config = config(server, creds, Some(tls_server_name))?;
    let build = |source| ClientError::Build {
        server: server.to_owned(),
        source,
    };
    let https = config.rustls_https_connector_with_connector(dialer).map_err(build)?;
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer().map_err(build)?)
        .layer(config.extra_headers_layer().map_err(build)?)
        .map_err(tower::BoxError::from)
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(ca: &str) -> ApiCredentials {
        ApiCredentials {
            ca_pem: ca.into(),
            client_cert_pem: String::new(),
            client_key_pem: String::new(),
        }
    }

    #[test]
    fn a_ca_without_certificates_is_refused() {
        let err = config("https://127.0.0.1:6443", &creds("nothing here"), None).unwrap_err();
        assert!(matches!(err, ClientError::NoCaCertificate), "{err}");
    }

    #[test]
    fn a_bad_url_names_the_url() {
        let err = config("https://bad host", &creds(""), None).unwrap_err();
        assert!(err.to_string().contains("bad host"), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let mut c = creds("ca");
        c.client_key_pem = "SECRET".into();
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
