//! Hops: opening one SSH connection directly or through the previous hop's direct-tcpip
//! channel (the handshake handler applies the host-key policy), bastion chains — also one
//! [`Jump`] shared by many hosts — and the retry loop with back-off every connection uses.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{Config, Handle, Handler};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use tokio_util::sync::CancellationToken;

use crate::host_keys::LearnedHostKey;
use crate::session::{ConnectError, HopSpec};

/// The russh handler: applies the host-key policy.
pub(crate) struct Client {
    verifier: crate::host_keys::Verifier,
}

impl Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, server_public_key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verifier.check(key),
            // Host certificates are not part of the policy: refuse rather than guess.
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

pub(crate) fn client_config() -> Arc<Config> {
    Arc::new(Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        ..Config::default()
    })
}

/// Opens one hop: over TCP when `via` is `None`, else through a direct-tcpip channel of `via`.
pub(crate) async fn open_hop(
    via: Option<(&str, &Handle<Client>)>,
    hop: &HopSpec,
    config: Arc<Config>,
) -> Result<(Handle<Client>, Option<LearnedHostKey>), ConnectError> {
    let address = format!("{}:{}", hop.address, hop.port);
    let verifier = crate::host_keys::Verifier::new(hop.host_key.clone());
    let client = Client {
        verifier: verifier.clone(),
    };
    let connected = match via {
        None => {
            let tcp = tokio::net::TcpStream::connect((hop.address.as_str(), hop.port))
                .await
                .map_err(|source| ConnectError::Tcp {
                    host: hop.name.clone(),
                    address: address.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            russh::client::connect_stream(config, tcp, client).await
        }
        Some((via_name, prev)) => {
            let channel = prev
                .channel_open_direct_tcpip(hop.address.as_str(), u32::from(hop.port), "127.0.0.1", 0)
                .await
                .map_err(|source| ConnectError::Jump {
                    host: hop.name.clone(),
                    address: address.clone(),
                    via: via_name.to_owned(),
                    source,
                })?;
            russh::client::connect_stream(config, channel.into_stream(), client).await
        }
    };
    let mut handle = connected.map_err(|source| match verifier.mismatch(&hop.name, &address) {
        Some(mismatch) => ConnectError::HostKey(mismatch),
        None => ConnectError::Handshake {
            host: hop.name.clone(),
            address: address.clone(),
            source,
        },
    })?;
    hop.auth
        .authenticate(&mut handle, &hop.user)
        .await
        .map_err(|source| ConnectError::Auth {
            host: hop.name.clone(),
            address: address.clone(),
            source,
        })?;
    let learned = match (verifier.is_first_use(), verifier.presented()) {
        (true, Some(key)) => Some(learned_key(hop, &key)),
        _ => None,
    };
    Ok((handle, learned))
}

fn learned_key(hop: &HopSpec, key: &PublicKey) -> LearnedHostKey {
    let public_key = key
        .to_openssh()
        .map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    LearnedHostKey {
        host: hop.name.clone(),
        address: hop.address.clone(),
        port: hop.port,
        public_key,
        fingerprint: crate::host_keys::fingerprint(key),
    }
}

/// Records which step a connection attempt is in, for [`ConnectError::Stalled`].
pub(crate) fn set_stage(stage: &Mutex<String>, via: Option<&str>, hop: &HopSpec) {
    if let Ok(mut s) = stage.lock() {
        *s = match via {
            None => format!("connecting to {} ({}:{})", hop.name, hop.address, hop.port),
            Some(v) => format!("connecting via {v} to {} ({}:{})", hop.name, hop.address, hop.port),
        };
    }
}

/// Opens `bastions` in order, each through the previous one.
pub(crate) async fn connect_chain(
    bastions: &[HopSpec],
    config: &Arc<Config>,
    stage: &Mutex<String>,
) -> Result<(Vec<Handle<Client>>, Vec<LearnedHostKey>), ConnectError> {
    let mut handles: Vec<Handle<Client>> = Vec::new();
    let mut learned = Vec::new();
    for (i, hop) in bastions.iter().enumerate() {
        let via_name = i.checked_sub(1).and_then(|p| bastions.get(p)).map(|b| b.name.as_str());
        let via = via_name.zip(handles.last());
        set_stage(stage, via_name, hop);
        let (handle, key) = open_hop(via, hop, config.clone()).await?;
        learned.extend(key);
        handles.push(handle);
    }
    Ok((handles, learned))
}

/// Runs `attempt` until it succeeds, fails for good (host key, login), `timeout` passes
/// (then [`ConnectError::TimedOut`] with the last cause) or `cancel` fires. Back-off doubles
/// from 200 ms up to 5 s; an attempt still running at the deadline is reported as
/// [`ConnectError::Stalled`] naming its step.
pub(crate) async fn with_retries<T, F, Fut>(
    host: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    attempt: F,
) -> Result<T, ConnectError>
where
    F: Fn(Arc<Mutex<String>>) -> Fut,
    Fut: Future<Output = Result<T, ConnectError>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(200);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let stage = Arc::new(Mutex::new(String::new()));
        let result = tokio::select! {
            r = tokio::time::timeout(remaining, attempt(stage.clone())) => r,
            () = cancel.cancelled() => return Err(ConnectError::Cancelled { host: host.to_owned() }),
        };
        let error = match result {
            Ok(Ok(done)) => return Ok(done),
            Ok(Err(e)) if !e.is_retryable() => return Err(e),
            Ok(Err(e)) => e,
            Err(_elapsed) => ConnectError::Stalled {
                host: host.to_owned(),
                stage: stage.lock().map(|s| s.clone()).unwrap_or_default(),
            },
        };
        tracing::debug!(host, attempt = attempts, error = %error, "SSH connect failed; retrying");
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ConnectError::TimedOut {
                host: host.to_owned(),
                timeout,
                attempts,
                last: Box::new(error),
            });
        }
        tokio::select! {
            () = tokio::time::sleep(delay.min(remaining)) => {}
            () = cancel.cancelled() => return Err(ConnectError::Cancelled { host: host.to_owned() }),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A connected bastion chain that many sessions jump through (one bastion login for a whole
/// fleet instead of one per host). Cheap to clone; closed when the last clone goes.
#[derive(Clone)]
pub struct Jump {
    inner: Arc<JumpInner>,
}

struct JumpInner {
    handles: Vec<Handle<Client>>,
    last_name: String,
}

impl std::fmt::Debug for Jump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jump").field("via", &self.inner.last_name).finish()
    }
}

impl Jump {
    /// Connects `bastions` (outermost first) with retries up to `timeout`. Returns the keys
    /// learned under trust on first use.
    ///
    /// # Errors
    /// As [`crate::Session::connect`], naming the bastion that failed.
    pub async fn connect(
        bastions: &[HopSpec],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(Jump, Vec<LearnedHostKey>), ConnectError> {
        let last = bastions.last().ok_or_else(|| ConnectError::Cancelled {
            host: "(no bastion given)".to_owned(),
        })?;
        let config = client_config();
        let (handles, learned) = with_retries(&last.name, timeout, cancel, |stage| {
            let config = config.clone();
            async move { connect_chain(bastions, &config, &stage).await }
        })
        .await?;
        Ok((
            Jump {
                inner: Arc::new(JumpInner {
                    handles,
                    last_name: last.name.clone(),
                }),
            },
            learned,
        ))
    }

    /// The innermost bastion: its name and connection.
    pub(crate) fn last(&self) -> Option<(&str, &Handle<Client>)> {
        self.inner.handles.last().map(|h| (self.inner.last_name.as_str(), h))
    }

    /// True once the innermost bastion connection has gone away.
    pub fn is_closed(&self) -> bool {
        self.inner.handles.last().is_none_or(Handle::is_closed)
    }
}
