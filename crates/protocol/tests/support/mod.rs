//! Shared test helpers: the `echo` example provider binary, client
//! certificates (P-256 from rcgen, P-521 from the real `openssl`), and a
//! real gRPC-over-mutual-TLS client like Terraform's.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Generated gRPC clients (built by build.rs into OUT_DIR/client).
pub mod pbc {
    #![allow(clippy::all, missing_docs)]
    pub mod tfplugin6 {
        include!(concat!(env!("OUT_DIR"), "/client/tfplugin6.rs"));
    }
    pub mod plugin {
        include!(concat!(env!("OUT_DIR"), "/client/plugin.rs"));
    }
    pub mod health {
        include!(concat!(env!("OUT_DIR"), "/client/grpc.health.v1.rs"));
    }
}

/// The `echo` example binary, built once per test binary.
pub fn echo_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir").to_path_buf();
        let bin = profile_dir.join("examples/echo");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "selfhosted-protocol", "--example", "echo"])
            .status()
            .expect("run cargo build --example echo");
        assert!(status.success(), "building the echo example failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// A client identity: certificate PEM (for PLUGIN_CLIENT_CERT) and the
/// means to present it.
pub struct ClientId {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    key: Arc<dyn rustls::sign::SigningKey>,
}

/// A P-256 client certificate shaped like go-plugin's (self-signed CA).
pub fn p256_client() -> ClientId {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("cert");
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let signing = selfhosted_protocol::tls::crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .expect("load key");
    ClientId {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key: signing,
    }
}

/// A P-521 client certificate made by the real `openssl`, as go-plugin's
/// AutoMTLS client certificate is P-521.
pub fn p521_client(dir: &Path) -> ClientId {
    let key_path = dir.join("client-p521.key");
    let cert_path = dir.join("client-p521.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/O=HashiCorp/CN=localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ])
        .arg("-keyout")
        .arg(&key_path)
        .arg("-out")
        .arg(&cert_path)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert_pem = std::fs::read_to_string(&cert_path).expect("read cert");
    let key_pem = std::fs::read_to_string(&key_path).expect("read key");
    use p521::pkcs8::DecodePrivateKey;
    let secret = p521::SecretKey::from_pkcs8_pem(&key_pem).expect("p521 key");
    let signing = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).expect("signing key");
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert der");
    ClientId {
        cert_pem,
        cert_der,
        key: Arc::new(P521Key(Arc::new(signing))),
    }
}

struct P521Key(Arc<p521::ecdsa::SigningKey>);

impl std::fmt::Debug for P521Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P521Key")
    }
}

impl rustls::sign::SigningKey for P521Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
            .then(|| Box::new(P521Signer(self.0.clone())) as Box<dyn rustls::sign::Signer>)
    }
    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

struct P521Signer(Arc<p521::ecdsa::SigningKey>);

impl std::fmt::Debug for P521Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("P521Signer")
    }
}

impl rustls::sign::Signer for P521Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use p521::ecdsa::signature::Signer;
        let sig: p521::ecdsa::Signature = self.0.sign(message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP521_SHA512
    }
}

#[derive(Debug)]
struct FixedClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// Trusts exactly the server certificate from the handshake line, as
/// go-plugin's client does.
#[derive(Debug)]
struct PinnedServer(Vec<u8>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _i: &[CertificateDer<'_>],
        _n: &ServerName<'_>,
        _o: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected server certificate".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &selfhosted_protocol::tls::crypto_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &selfhosted_protocol::tls::crypto_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        selfhosted_protocol::tls::crypto_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses `1|6|tcp|ADDR|grpc|CERT` into the address and server cert DER.
pub fn parse_handshake(line: &str) -> (SocketAddr, Vec<u8>) {
    use base64::Engine;
    let parts: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(parts.len(), 6, "handshake line {line:?}");
    assert_eq!(&parts[..3], ["1", "6", "tcp"]);
    assert_eq!(parts[4], "grpc");
    let addr: SocketAddr = parts[3].parse().expect("address");
    assert!(addr.ip().is_loopback(), "must listen on loopback only: {addr}");
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(parts[5])
        .expect("base64 cert");
    (addr, der)
}

/// A gRPC channel over mutual TLS, presenting `client` (or no certificate).
pub async fn channel(
    addr: SocketAddr,
    server_cert: Vec<u8>,
    client: Option<&ClientId>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let builder = rustls::ClientConfig::builder_with_provider(selfhosted_protocol::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server_cert)));
    let mut cfg = match client {
        Some(id) => builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(CertifiedKey::new(
            vec![id.cert_der.clone()],
            id.key.clone(),
        ))))),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = ServerName::try_from("localhost").expect("server name");
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
}
