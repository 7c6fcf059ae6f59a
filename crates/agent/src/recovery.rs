//! The recovery apiserver's two helpers: it starts only when no apiserver runs on the host,
//! and it hands back to the self-hosted apiserver once that one serves by itself.
//!
//! A self-hosted apiserver is a DaemonSet pod: after a reboot (containers gone, disk kept) the
//! kubelet learns of it only from an apiserver, so a controller, or a whole cluster after a
//! power loss, would stay down. The provider therefore keeps a static recovery apiserver pod
//! on every controller, with its credentials on disk. It waits in [`standby`] while any
//! apiserver listens on the port, so it starts only at boot (or when the self-hosted one is
//! gone); once it serves, the kubelet registers and runs its DaemonSet pods again. The
//! self-hosted apiserver joins the port beside it (the reuseport gate keeps clients on the
//! older one), and [`await_self_hosted`] confirms it as the pivot does — a steady `/readyz`
//! answered with the self-hosted apiserver's own certificate, for a while and with no
//! restart on the port meanwhile — then [`rearm`]s the static pod: the
//! kubelet replaces it with a fresh one, which stands by again.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};

use crate::gate;
use crate::stop::Stop;

/// Annotation of the recovery static pod that [`rearm`] rewrites; a new value is a new pod.
pub const ROUND_ANNOTATION: &str = "selfhosted.dev/recovery-round";

/// How long one probe may take, connect to last byte.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of a `/readyz` answer that is read.
const MAX_ANSWER: u64 = 16 * 1024;

/// Waits until nothing has listened on `port` for `quiet` looks in a row, `poll` apart, and
/// returns `true`: the recovery apiserver may start. Returns at once at boot; while a
/// self-hosted apiserver runs, it returns only when `stop` is triggered (then `false`).
pub fn standby(port: u16, quiet: u32, poll: Duration, stop: &Stop) -> bool {
    let mut announced = false;
    let mut silent = 0;
    while silent < quiet {
        if gate::listeners(port) == 0 {
            silent += 1;
        } else {
            silent = 0;
            if !announced {
                println!("selfhosted-agent: an apiserver listens on port {port}; the recovery apiserver stands by");
                announced = true;
            }
        }
        if !stop.sleep(poll) {
            return false;
        }
    }
    println!(
        "selfhosted-agent: no apiserver has listened on port {port} for {quiet} looks; starting the recovery apiserver"
    );
    true
}

/// What one probe of an address found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The self-hosted apiserver answered `/readyz` with this HTTP status.
    SelfHosted(u16),
    /// Another certificate answered (the recovery apiserver itself, or a stranger).
    OtherCertificate,
    /// No TLS answer: refused, timed out, reset.
    Unreachable(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::SelfHosted(status) => write!(f, "the self-hosted apiserver answered /readyz with {status}"),
            Answer::OtherCertificate => f.write_str("another certificate answered (not yet the self-hosted apiserver)"),
            Answer::Unreachable(why) => write!(f, "no answer: {why}"),
        }
    }
}

/// Why hand-back cannot run at all.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The CA file is unreadable or holds no usable certificate.
    #[error("reading the cluster CA {path}: {why}")]
    Trust {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The static pod manifest could not be rewritten.
    #[error("rewriting {path}: {source}")]
    Manifest {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The manifest lacks the round annotation.
    #[error("{0} has no {ROUND_ANNOTATION} annotation: it is not the recovery pod's manifest")]
    NotRecoveryManifest(String),
}

/// A TLS client that accepts the self-hosted apiserver alone: a certificate issued by the
/// cluster CA to the self-hosted apiserver's name, never the one the recovery (or bootstrap)
/// apiserver serves, which has its own name. Renewed certificates are accepted as they come,
/// without the recovery pod being told of them.
#[derive(Debug)]
pub struct Prober {
    config: Arc<ClientConfig>,
}

#[derive(Debug)]
struct SelfHosted {
    roots: RootCertStore,
    common_name: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SelfHosted {
    fn is_named(&self, cert: &CertificateDer<'_>) -> bool {
        x509_parser::parse_x509_certificate(cert.as_ref()).is_ok_and(|(_, c)| {
            let mut names = c.subject().iter_common_name().map(|n| n.as_str());
            matches!((names.next(), names.next()), (Some(Ok(cn)), None) if cn == self.common_name)
        })
    }
}

impl ServerCertVerifier for SelfHosted {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.is_named(end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ));
        }
        // Any address: the probe dials loopback and the pod IP, which the certificate need
        // not name; what counts is who issued it and to whom.
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&parsed, &self.roots, intermediates, now, self.algorithms.all)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl Prober {
    /// A prober for the apiserver named `common_name` with a certificate issued by the CA in
    /// the PEM file `ca`. Read anew for each round of [`await_self_hosted`], so a CA file the
    /// provider rewrites is taken as it is.
    ///
    /// # Errors
    /// [`RecoveryError::Trust`] when the file holds no usable CA certificate.
    pub fn from_ca_file(ca: &Path, common_name: &str) -> Result<Self, RecoveryError> {
        let trust = |why: String| RecoveryError::Trust {
            path: ca.display().to_string(),
            why,
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| trust(e.to_string()))? {
            roots
                .add(cert.map_err(|e| trust(e.to_string()))?)
                .map_err(|e| trust(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(trust("no certificate in it".into()));
        }
        Ok(Self::issued_by(roots, common_name))
    }

    /// A prober for the apiserver named `common_name` with a certificate issued by `roots`.
    pub fn issued_by(roots: RootCertStore, common_name: &str) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = SelfHosted {
            roots,
            common_name: common_name.to_owned(),
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider) as Arc<CryptoProvider>)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Prober {
            config: Arc::new(config),
        }
    }

    /// `GET /readyz` at `ip:port`, accepted only from the self-hosted apiserver.
    pub fn probe(&self, ip: IpAddr, port: u16) -> Answer {
        match self.try_probe(ip, port) {
            Ok(status) => Answer::SelfHosted(status),
            Err(e) if is_other_certificate(&e) => Answer::OtherCertificate,
            Err(e) => Answer::Unreachable(e.to_string()),
        }
    }

    fn try_probe(&self, ip: IpAddr, port: u16) -> io::Result<u16> {
        let tcp = TcpStream::connect_timeout(&SocketAddr::new(ip, port), PROBE_TIMEOUT)?;
        tcp.set_read_timeout(Some(PROBE_TIMEOUT))?;
        tcp.set_write_timeout(Some(PROBE_TIMEOUT))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), ServerName::IpAddress(ip.into()))
            .map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut answer = Vec::new();
        // A server may close without close_notify: what was read counts.
        if let Err(e) = (&mut tls).take(MAX_ANSWER).read_to_end(&mut answer) {
            if answer.is_empty() {
                return Err(e);
            }
        }
        status_of(&answer).ok_or_else(|| io::Error::other("the answer is not HTTP"))
    }
}

fn is_other_certificate(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)))
}

/// The status code of an HTTP/1.x answer.
fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/1."))?;
    words.next()?.parse().ok()
}

/// Where and how long [`hand_back`] looks.
#[derive(Debug, Clone)]
pub struct HandBackParams {
    /// The shared port.
    pub port: u16,
    /// Addresses to probe: loopback (the reuseport gate sends it to the newest apiserver) and
    /// the host's own address (it reaches the oldest), so the self-hosted apiserver is found
    /// whichever of the two joined the port first.
    pub via: Vec<IpAddr>,
    /// Good answers in a row required before handing back.
    pub answers: u32,
    /// How long the good answers must span, from the first to the last, with the same
    /// listeners on the port throughout.
    pub steady: Duration,
    /// Pause between rounds.
    pub poll: Duration,
}

/// Waits until the self-hosted apiserver answers `/readyz` with 200 in `answers` rounds in a
/// row (on any of `via`) that span at least `steady`, while the sockets listening on the port
/// stay the same ones; prints what it sees when that changes. `prober` is asked for the prober
/// of each round, so the trust it reads from disk follows the provider's rewrites.
///
/// Answers alone can come from a process about to exit: a self-hosted apiserver that
/// crash-loops answers for a while after each start, and a hand-back in such a while would
/// stop the recovery apiserver only for it to start again once the port is quiet (a flap).
/// The agent sees only the host's network, where a restart shows as it happens: the restarted
/// process closes its listening socket and binds a new one, with a new inode
/// ([`gate::listening_sockets`]). So a window of good answers starts again whenever a listener
/// on the port comes or goes — the self-hosted apiserver restarting, or any apiserver joining or
/// leaving — which the kubelet's restart count, out of the agent's reach, would also show.
///
/// Returns the address that answered last, or `None` once `stop` is triggered.
pub fn await_self_hosted(
    prober: impl Fn() -> Result<Prober, RecoveryError>,
    params: &HandBackParams,
    stop: &Stop,
) -> Option<IpAddr> {
    // The first good answer of the window, the listeners then, and the good answers since.
    let mut window: Option<(Instant, BTreeSet<u64>, u32)> = None;
    let mut last_seen = String::new();
    loop {
        if stop.is_stopped() {
            return None;
        }
        let mut answered = None;
        let mut seen = Vec::new();
        let round = prober();
        for ip in &params.via {
            let answer = match &round {
                Ok(p) => p.probe(*ip, params.port),
                Err(e) => Answer::Unreachable(e.to_string()),
            };
            if answer == Answer::SelfHosted(200) {
                answered = Some(*ip);
            }
            seen.push(format!("{ip}: {answer}"));
        }
        let seen = seen.join("; ");
        if seen != last_seen {
            println!("selfhosted-agent: {seen}");
            last_seen = seen;
        }
        match (answered, &mut window) {
            (None, _) => window = None,
            (Some(ip), Some((first, listeners, good))) => {
                let now = gate::listening_sockets(params.port);
                if now == *listeners {
                    *good += 1;
                    if *good >= params.answers && first.elapsed() >= params.steady {
                        return Some(ip);
                    }
                } else {
                    println!(
                        "selfhosted-agent: the listeners on port {} changed ({} before, {} now): an apiserver started or stopped; confirming again",
                        params.port,
                        listeners.len(),
                        now.len()
                    );
                    window = Some((Instant::now(), now, 1));
                }
            }
            (Some(_), None) => window = Some((Instant::now(), gate::listening_sockets(params.port), 1)),
        }
        if !stop.sleep(params.poll) {
            return None;
        }
    }
}

/// What [`Seen::rearm`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rearm {
    /// The manifest has the new round: the kubelet replaces the pod.
    Rearmed,
    /// The manifest changed after it was read (the provider wrote a new one): left as it is.
    /// The kubelet replaces the pod with the new one anyway.
    Superseded,
}

/// The recovery pod's manifest as read: its text and which file it was (device, inode,
/// modification time, size), to tell whether it is still the one on disk.
#[derive(Debug, Clone)]
pub struct Seen {
    path: PathBuf,
    text: String,
    identity: (u64, u64, i64, i64, u64),
    mode: fs::Permissions,
}

fn identity(meta: &fs::Metadata) -> (u64, u64, i64, i64, u64) {
    (meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size())
}

impl Seen {
    /// Reads the manifest at `path`.
    ///
    /// # Errors
    /// [`RecoveryError::Manifest`] when it cannot be read.
    pub fn read(path: &Path) -> Result<Self, RecoveryError> {
        let io_err = |source| RecoveryError::Manifest {
            path: path.display().to_string(),
            source,
        };
        let mut file = fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io_err)?;
        Ok(Seen {
            path: path.to_owned(),
            text,
            identity: identity(&meta),
            mode: meta.permissions(),
        })
    }

    /// Whether the file at the path is still the one read, with the same text.
    fn is_current(&self) -> io::Result<bool> {
        let mut file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if identity(&file.metadata()?) != self.identity {
            return Ok(false);
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text == self.text)
    }

    /// Gives the recovery static pod a new round, so the kubelet replaces it: its apiserver
    /// stops, and the new pod stands by. Written next to the manifest as a dotfile (the kubelet
    /// ignores those), synced, and renamed over it, keeping its mode — only when the manifest
    /// is still the one read. The provider uploads a new manifest (temp file and rename) in
    /// every update's `recovery-apiserver` phase; a read-modify-rename that did not compare
    /// would put the old flags, version and round back over it. Compared right before the
    /// rename, a manifest the provider wrote meanwhile stays ([`Rearm::Superseded`]); what is
    /// left is the instant between the comparison and the rename.
    ///
    /// # Errors
    /// [`RecoveryError`] when the manifest is not the recovery pod's, or unwritable.
    pub fn rearm(&self, round: u64) -> Result<Rearm, RecoveryError> {
        let manifest = self.path.as_path();
        let io_err = |source| RecoveryError::Manifest {
            path: manifest.display().to_string(),
            source,
        };
        let key = format!("{ROUND_ANNOTATION}:");
        let mut found = false;
        let mut out = String::with_capacity(self.text.len());
        for line in self.text.split_inclusive('\n') {
            let body = line.trim_start();
            if !found && body.starts_with(&key) {
                let indent = &line[..line.len() - body.len()];
                out.push_str(&format!("{indent}{key} '{round}'\n"));
                found = true;
            } else {
                out.push_str(line);
            }
        }
        if !found {
            return Err(RecoveryError::NotRecoveryManifest(manifest.display().to_string()));
        }
        let name = manifest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = manifest.with_file_name(format!(".{name}.rearm"));
        let write = || -> io::Result<Rearm> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.set_permissions(self.mode.clone())?;
            f.sync_all()?;
            if !self.is_current()? {
                fs::remove_file(&tmp)?;
                return Ok(Rearm::Superseded);
            }
            fs::rename(&tmp, manifest)?;
            if let Some(dir) = manifest.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::File::open(dir)?.sync_all()?;
            }
            Ok(Rearm::Rearmed)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(e)
        })
    }
}

/// [`Seen::read`], then [`Seen::rearm`].
///
/// # Errors
/// [`RecoveryError`] when the manifest is unreadable, not the recovery pod's, or unwritable.
pub fn rearm(manifest: &Path, round: u64) -> Result<Rearm, RecoveryError> {
    Seen::read(manifest)?.rearm(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_and_others_refused() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 500 Internal\r\n"), Some(500));
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }

    #[test]
    fn rearm_rewrites_the_round_alone_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("selfhosted-agent-rearm-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("kube-apiserver-recovery.yaml");
        let before = "metadata:\n  annotations:\n    selfhosted.dev/recovery-round: '0'\n  name: x\nspec: {}\n";
        fs::write(&manifest, before).unwrap();
        fs::set_permissions(&manifest, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(rearm(&manifest, 1234).unwrap(), Rearm::Rearmed);
        let after = fs::read_to_string(&manifest).unwrap();
        assert_eq!(after, before.replace("'0'", "'1234'"));
        assert_eq!(fs::metadata(&manifest).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");

        fs::write(&manifest, "kind: Pod\n").unwrap();
        let err = rearm(&manifest, 1).unwrap_err();
        assert!(matches!(err, RecoveryError::NotRecoveryManifest(_)), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
