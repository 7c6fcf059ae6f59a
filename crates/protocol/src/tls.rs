//! AutoMTLS as go-plugin does it, but strict: a fresh self-signed server
//! certificate per process, and a TLS server that requires a client
//! certificate and accepts exactly the one Terraform passed in
//! `PLUGIN_CLIENT_CERT` — byte for byte — and no other.
//!
//! Terraform's certificate carries a P-256 (or, from go-plugin, P-521) ECDSA
//! key. ring verifies P-256/P-384 but not P-521, so P-521 handshake
//! signatures are checked with the pure-Rust `p521` crate; the TLS backend
//! stays ring.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `PLUGIN_CLIENT_CERT` held no PEM certificate.
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate")]
    ParseClientCert(#[source] rustls::pki_types::pem::Error),
    /// Generating our own certificate failed.
    #[error("generating the server certificate failed")]
    GenerateServerCert(#[source] rcgen::Error),
    /// Building the rustls configuration failed.
    #[error("building the TLS server configuration failed")]
    ServerConfig(#[source] rustls::Error),
}

/// The server's certificate and the TLS configuration built around it.
pub struct ServerTls {
    /// Our certificate (DER), which the handshake line announces.
    pub cert_der: Vec<u8>,
    /// rustls server configuration: TLS 1.2/1.3, ALPN h2, pinned client.
    pub config: Arc<rustls::ServerConfig>,
}

/// Parses the first certificate of a PEM text.
///
/// # Errors
/// No certificate in the text.
pub fn parse_client_cert(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(TlsError::ParseClientCert)
}

/// Generates the server certificate (shaped like go-plugin's own: CN and
/// SAN `localhost`, server and client auth) and the TLS configuration that
/// trusts only `client_cert`.
///
/// # Errors
/// Certificate generation or TLS configuration failed.
pub fn server_tls(client_cert: CertificateDer<'static>) -> Result<ServerTls, TlsError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(TlsError::GenerateServerCert)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(TlsError::GenerateServerCert)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "localhost");
    dn.push(rcgen::DnType::OrganizationName, "terraform-provider-selfhosted");
    params.distinguished_name = dn;
    // The host adds our certificate as its only root and verifies the chain
    // of length one, so it is marked as a CA like go-plugin's.
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyAgreement,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(366);
    let cert = params.self_signed(&key).map_err(TlsError::GenerateServerCert)?;
    let cert_der = cert.der().to_vec();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedClientCert::new(
        client_cert,
        provider.signature_verification_algorithms,
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::ServerConfig)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(TlsError::ServerConfig)?;
    // gRPC clients refuse servers that do not negotiate HTTP/2 by ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        cert_der,
        config: Arc::new(config),
    })
}

/// Accepts exactly one client certificate, compared as DER bytes. Chains,
/// CAs and names play no part: only the certificate Terraform generated for
/// this process may connect, and it must prove it holds the key.
#[derive(Debug)]
pub struct PinnedClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    /// A verifier pinned to `expected`.
    pub fn new(expected: CertificateDer<'static>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Self { expected, algorithms }
    }

    fn check_pinned(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if cert.as_ref() == self.expected.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_pinned(cert)?;
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss.signature());
        }
        if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }
    }
}

fn bad_signature() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadSignature)
}

/// Verifies an ECDSA P-521/SHA-512 signature by the key in `cert`.
fn verify_p521(
    message: &[u8],
    cert: &CertificateDer<'_>,
    sig: &[u8],
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use p521::ecdsa::signature::Verifier;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad_signature())?;
    let point = &parsed.public_key().subject_public_key.data;
    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad_signature())?;
    let sig = p521::ecdsa::Signature::from_der(sig).map_err(|_| bad_signature())?;
    key.verify(message, &sig).map_err(|_| bad_signature())?;
    Ok(HandshakeSignatureValid::assertion())
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_pinned(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.algorithms.supported_schemes();
        schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        schemes
    }
}

/// The ring provider, exposed so tests build clients with the same backend.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
