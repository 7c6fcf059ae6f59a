//! One SSH connection to one host (possibly through bastions), reused for every operation:
//! what a host is ([`HostSpec`]), connecting with retries, running commands (plain and with
//! `sudo -n`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Handle;
use russh::ChannelMsg;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, AuthError};
use crate::bastion::{client_config, connect_chain, open_hop, set_stage, with_retries, Client, Jump};
use crate::host_keys::{HostKeyError, HostKeyPolicy, LearnedHostKey};

/// Exec channels open at once on one connection; OpenSSH's default `MaxSessions` is 10.
const CHANNELS_PER_CONNECTION: usize = 8;
/// How much of a failed command's stderr an error quotes.
const STDERR_TAIL: usize = 2000;

/// One SSH endpoint: a bastion or the host itself.
#[derive(Clone, Debug)]
pub struct HopSpec {
    /// Name used in errors and learned keys (e.g. the Terraform host key).
    pub name: String,
    /// Address or DNS name, as dialled from the previous hop (or from here for the first).
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// How to log in.
    pub auth: Auth,
    /// How to verify the endpoint's host key.
    pub host_key: HostKeyPolicy,
}

/// Everything needed to reach a host.
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// The host itself.
    pub host: HopSpec,
    /// Bastions to jump through, outermost first (empty: dial the host directly).
    pub bastions: Vec<HopSpec>,
    /// How long to keep retrying before giving up (hosts may still be booting).
    pub connect_timeout: Duration,
}

impl HopSpec {
    /// An endpoint on port 22.
    pub fn new(
        name: impl Into<String>,
        address: impl Into<String>,
        user: impl Into<String>,
        auth: Auth,
        host_key: HostKeyPolicy,
    ) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            port: 22,
            user: user.into(),
            auth,
            host_key,
        }
    }
}

impl HostSpec {
    /// How long hosts get to come up by default (typhoon waits up to 15 minutes).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

    /// A host reached directly, with the default connect timeout.
    pub fn direct(host: HopSpec) -> Self {
        Self {
            host,
            bastions: Vec::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The same host reached through `bastions` (outermost first).
    #[must_use]
    pub fn via(mut self, bastions: Vec<HopSpec>) -> Self {
        self.bastions = bastions;
        self
    }

    /// The same host with another connect timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connection to the first hop failed.
    #[error("{host} ({address}): TCP connect failed: {source}")]
    Tcp {
        /// Hop name.
        host: String,
        /// `address:port`.
        address: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The previous hop could not open a forwarded channel to this one.
    #[error("{host} ({address}): bastion {via} could not reach it: {source}")]
    Jump {
        /// Hop name.
        host: String,
        /// `address:port`.
        address: String,
        /// Bastion name.
        via: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
    /// SSH handshake failed (not a host-key mismatch).
    #[error("{host} ({address}): SSH handshake failed: {source}")]
    Handshake {
        /// Hop name.
        host: String,
        /// `address:port`.
        address: String,
        /// Why.
        #[source]
        source: russh::Error,
    },
    /// The host key was refused.
    #[error(transparent)]
    HostKey(HostKeyError),
    /// Login refused.
    #[error("{host} ({address}): login failed: {source}")]
    Auth {
        /// Hop name.
        host: String,
        /// `address:port`.
        address: String,
        /// Why.
        #[source]
        source: AuthError,
    },
    /// Retries ran out.
    #[error("{host}: no SSH connection within {timeout:?} ({attempts} attempts); last error: {last}")]
    TimedOut {
        /// Host name.
        host: String,
        /// The configured timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<ConnectError>,
    },
    /// One attempt made no progress before the deadline; names the step it was stuck in.
    #[error("{host}: no progress before the deadline while {stage}")]
    Stalled {
        /// Host name.
        host: String,
        /// The step in progress, e.g. "opening a channel via bastion to h1 (10.0.0.5:22)".
        stage: String,
    },
    /// Cancelled by the caller.
    #[error("{host}: connecting was cancelled")]
    Cancelled {
        /// Host name.
        host: String,
    },
}

impl ConnectError {
    /// True for failures that may go away by themselves (host booting, sshd starting).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ConnectError::Tcp { .. }
                | ConnectError::Jump { .. }
                | ConnectError::Handshake { .. }
                | ConnectError::Stalled { .. }
        )
    }
}

/// Why a command did not run to a good end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The channel could not be opened or used.
    #[error("{host}: cannot run `{command}`: {source}")]
    Channel {
        /// Host name.
        host: String,
        /// The command (abbreviated).
        command: String,
        /// Why.
        #[source]
        source: Box<russh::Error>,
    },
    /// The command wrote more to stdout than any command of this provider should; it was
    /// stopped rather than buffered without bound.
    #[error("{host}: `{command}` wrote more than {limit} bytes to stdout; stopped")]
    TooMuchOutput {
        /// Host name.
        host: String,
        /// The command (abbreviated).
        command: String,
        /// The limit.
        limit: usize,
    },
    /// The connection went away before the command reported an exit status.
    #[error("{host}: connection lost while running `{command}`")]
    ConnectionLost {
        /// Host name.
        host: String,
        /// The command (abbreviated).
        command: String,
    },
    /// The command exited non-zero.
    #[error("{host}: `{command}` failed with {status}: {stderr_tail}")]
    Failed {
        /// Host name.
        host: String,
        /// The command (abbreviated).
        command: String,
        /// Exit status or signal.
        status: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// sudo would not run the command without a password (or not at all).
    #[error("{host}: sudo refused for user {user} (passwordless sudo is required): {stderr_tail}")]
    SudoRefused {
        /// Host name.
        host: String,
        /// Login user.
        user: String,
        /// sudo's message.
        stderr_tail: String,
    },
}

/// The most stdout a command may produce (file reads, listings, log tails are far smaller).
pub const MAX_STDOUT: usize = 64 << 20;
/// How much of the end of stderr is kept.
const MAX_STDERR: usize = 1 << 20;

/// What a command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status (`None` when killed by a signal).
    pub status: Option<u32>,
    /// Signal name if the command was killed.
    pub signal: Option<String>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// True when the command exited with status 0.
    pub fn is_success(&self) -> bool {
        self.status == Some(0)
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The last part of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let text = text.trim_end();
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    fn status_text(&self) -> String {
        match (&self.status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "no exit status".to_owned(),
        }
    }
}

/// A live connection to one host; cheap to clone (all clones share the connection).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    user: String,
    handle: Handle<Client>,
    /// Bastion connections of this session alone; kept alive as long as the session.
    _own_hops: Vec<Handle<Client>>,
    /// A bastion chain shared with other sessions; kept alive as long as any of them.
    _jump: Option<Jump>,
    channels: Semaphore,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.inner.name)
            .field("user", &self.inner.user)
            .finish()
    }
}

/// Shell-quotes one word for `sh`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn abbreviate(command: &str) -> String {
    let first = command.lines().next().unwrap_or("");
    let mut short: String = first.chars().take(120).collect();
    if short.len() < command.len() {
        short.push('…');
    }
    short
}

impl Session {
    /// Connects (through the bastions, if any), retrying retryable failures with back-off until
    /// `spec.connect_timeout`. Returns the keys learned under trust on first use (bastions
    /// first), empty when every hop is pinned.
    ///
    /// # Errors
    /// A host-key mismatch or a refused login at once; anything else after the timeout,
    /// as [`ConnectError::TimedOut`] holding the last cause.
    pub async fn connect(spec: &HostSpec) -> Result<(Session, Vec<LearnedHostKey>), ConnectError> {
        Self::connect_cancellable(spec, &CancellationToken::new()).await
    }

    /// [`Session::connect`] that stops early when `cancel` fires.
    ///
    /// # Errors
    /// As [`Session::connect`], plus [`ConnectError::Cancelled`].
    pub async fn connect_cancellable(
        spec: &HostSpec,
        cancel: &CancellationToken,
    ) -> Result<(Session, Vec<LearnedHostKey>), ConnectError> {
        with_retries(&spec.host.name, spec.connect_timeout, cancel, |stage| async move {
            Self::connect_once(spec, None, &stage).await
        })
        .await
    }

    /// Connects to `spec.host` through an already connected bastion chain (shared by many
    /// sessions; `spec.bastions` is ignored), with the same retries as [`Session::connect`].
    ///
    /// # Errors
    /// As [`Session::connect`].
    pub async fn connect_via(
        spec: &HostSpec,
        jump: &Jump,
        cancel: &CancellationToken,
    ) -> Result<(Session, Vec<LearnedHostKey>), ConnectError> {
        with_retries(&spec.host.name, spec.connect_timeout, cancel, |stage| async move {
            Self::connect_once(spec, Some(jump), &stage).await
        })
        .await
    }

    async fn connect_once(
        spec: &HostSpec,
        jump: Option<&Jump>,
        stage: &Mutex<String>,
    ) -> Result<(Session, Vec<LearnedHostKey>), ConnectError> {
        let config = client_config();
        let mut learned = Vec::new();
        let mut own: Vec<Handle<Client>> = Vec::new();
        if jump.is_none() {
            let (handles, keys) = connect_chain(&spec.bastions, &config, stage).await?;
            own = handles;
            learned = keys;
        }
        let via = match jump {
            Some(j) => j.last(),
            None => own.last().zip(spec.bastions.last()).map(|(h, b)| (b.name.as_str(), h)),
        };
        set_stage(stage, via.map(|v| v.0), &spec.host);
        let (handle, key) = open_hop(via, &spec.host, config).await?;
        learned.extend(key);
        let session = Session {
            inner: Arc::new(Inner {
                name: spec.host.name.clone(),
                user: spec.host.user.clone(),
                handle,
                _own_hops: own,
                _jump: jump.cloned(),
                channels: Semaphore::new(CHANNELS_PER_CONNECTION),
            }),
        };
        Ok((session, learned))
    }

    /// The host's configured name.
    pub fn host(&self) -> &str {
        &self.inner.name
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// True once the connection has gone away.
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    pub(crate) fn handle(&self) -> &Handle<Client> {
        &self.inner.handle
    }

    /// Opens a channel running `command` (holding one of the connection's channel slots), for
    /// protocols spoken over its stdin/stdout (e.g. SFTP).
    pub(crate) async fn open_exec(
        &self,
        command: &str,
    ) -> Result<(russh::Channel<russh::client::Msg>, tokio::sync::SemaphorePermit<'_>), ExecError> {
        let permit = self
            .inner
            .channels
            .acquire()
            .await
            .map_err(|_| ExecError::ConnectionLost {
                host: self.inner.name.clone(),
                command: abbreviate(command),
            })?;
        let channel_error = |source| ExecError::Channel {
            host: self.inner.name.clone(),
            command: abbreviate(command),
            source: Box::new(source),
        };
        let channel = self.inner.handle.channel_open_session().await.map_err(channel_error)?;
        channel.exec(true, command).await.map_err(channel_error)?;
        Ok((channel, permit))
    }

    /// Runs `command` through the login shell and returns what it produced, whatever its status.
    ///
    /// # Errors
    /// Only when the command could not be run or the connection dropped.
    pub async fn exec(&self, command: &str) -> Result<Output, ExecError> {
        self.exec_with_input(command, &[]).await
    }

    /// [`Session::exec`] feeding `input` to the command's stdin, then end-of-file.
    ///
    /// # Errors
    /// Only when the command could not be run or the connection dropped.
    pub async fn exec_with_input(&self, command: &str, input: &[u8]) -> Result<Output, ExecError> {
        let channel_error = |source| ExecError::Channel {
            host: self.inner.name.clone(),
            command: abbreviate(command),
            source: Box::new(source),
        };
        let _permit = self
            .inner
            .channels
            .acquire()
            .await
            .map_err(|_| ExecError::ConnectionLost {
                host: self.inner.name.clone(),
                command: abbreviate(command),
            })?;
        let channel = self.inner.handle.channel_open_session().await.map_err(channel_error)?;
        channel.exec(true, command).await.map_err(channel_error)?;
        let (mut read, write) = channel.split();
        let writer = async {
            if !input.is_empty() {
                write.data(input).await?;
            }
            write.eof().await
        };
        let reader = async {
            let mut out = Output::default();
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if out.stdout.len() + data.len() > MAX_STDOUT {
                            return Err(ExecError::TooMuchOutput {
                                host: self.inner.name.clone(),
                                command: abbreviate(command),
                                limit: MAX_STDOUT,
                            });
                        }
                        out.stdout.extend_from_slice(&data);
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        // Only the end of stderr is ever shown: keep a bounded tail.
                        out.stderr.extend_from_slice(&data);
                        if out.stderr.len() > MAX_STDERR {
                            let excess = out.stderr.len() - MAX_STDERR;
                            out.stderr.drain(..excess);
                        }
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => out.signal = Some(format!("{signal_name:?}")),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok(out)
        };
        // A command may exit without reading all its input, and a dead connection never opens
        // its window again: the reader decides when this is over; the writer is dropped then.
        tokio::pin!(writer, reader);
        let mut writing = true;
        let out = loop {
            tokio::select! {
                out = &mut reader => break out?,
                _ = &mut writer, if writing => writing = false,
            }
        };
        if out.status.is_none() && out.signal.is_none() {
            return Err(ExecError::ConnectionLost {
                host: self.inner.name.clone(),
                command: abbreviate(command),
            });
        }
        Ok(out)
    }

    /// Runs `command` and requires exit status 0.
    ///
    /// # Errors
    /// [`ExecError::Failed`] quoting the stderr tail, or a channel/connection error.
    pub async fn run(&self, command: &str) -> Result<Output, ExecError> {
        let out = self.exec(command).await?;
        self.checked(command, out)
    }

    /// Runs `command` as root (`sudo -n sh -c …` unless the login user is root); requires
    /// exit status 0.
    ///
    /// # Errors
    /// [`ExecError::SudoRefused`] when sudo wants a password or denies the user;
    /// [`ExecError::Failed`] quoting the stderr tail; channel/connection errors.
    pub async fn sudo(&self, command: &str) -> Result<Output, ExecError> {
        self.sudo_with_input(command, &[]).await
    }

    /// [`Session::sudo`] feeding `input` to the command's stdin.
    ///
    /// # Errors
    /// As [`Session::sudo`].
    pub async fn sudo_with_input(&self, command: &str, input: &[u8]) -> Result<Output, ExecError> {
        let wrapped = self.as_root(command);
        let out = self.exec_with_input(&wrapped, input).await?;
        self.checked(command, out)
    }

    /// The shell command that runs `command` as root for this session's user.
    pub fn as_root(&self, command: &str) -> String {
        if self.inner.user == "root" {
            format!("sh -c {}", shell_quote(command))
        } else {
            format!("sudo -n sh -c {}", shell_quote(command))
        }
    }

    fn checked(&self, command: &str, out: Output) -> Result<Output, ExecError> {
        if out.is_success() {
            return Ok(out);
        }
        let tail = out.stderr_tail();
        if self.inner.user != "root" && out.status == Some(1) && is_sudo_refusal(&tail) {
            return Err(ExecError::SudoRefused {
                host: self.inner.name.clone(),
                user: self.inner.user.clone(),
                stderr_tail: tail,
            });
        }
        Err(ExecError::Failed {
            host: self.inner.name.clone(),
            command: abbreviate(command),
            status: out.status_text(),
            stderr_tail: tail,
        })
    }

    /// Closes the connection (and its bastion hops).
    pub async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn is_sudo_refusal(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.starts_with("sudo:")
            && (l.contains("password is required")
                || l.contains("not in the sudoers")
                || l.contains("is not allowed to")
                || l.contains("may not run sudo"))
    }) || stderr.contains("is not in the sudoers file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn stderr_tail_is_bounded_and_valid() {
        let out = Output {
            stderr: "é".repeat(3000).into_bytes(),
            ..Output::default()
        };
        let tail = out.stderr_tail();
        assert!(tail.len() <= STDERR_TAIL && !tail.is_empty());
    }

    #[test]
    fn sudo_refusals_are_recognised() {
        assert!(is_sudo_refusal("sudo: a password is required"));
        assert!(is_sudo_refusal(
            "guest is not in the sudoers file.  This incident will be reported."
        ));
        assert!(!is_sudo_refusal("mkdir: cannot create directory"));
    }
}
