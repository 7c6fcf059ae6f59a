//! Client authentication: a private key held in memory (OpenSSH, PKCS#8 or PKCS#1 PEM, with or
//! without a passphrase) or the keys of an SSH agent.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{AuthResult, Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

/// Why a key could not be read or the server did not let us in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The private key text could not be decoded (wrong format or passphrase).
    #[error("cannot read private key: {source}")]
    DecodeKey {
        /// The decoder's reason.
        #[source]
        source: russh::keys::Error,
    },
    /// No agent socket: neither given nor in `SSH_AUTH_SOCK`.
    #[error("no SSH agent: SSH_AUTH_SOCK is not set")]
    NoAgentSocket,
    /// The agent socket could not be opened.
    #[error("cannot reach the SSH agent at {socket}: {source}")]
    AgentConnect {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        #[source]
        source: russh::keys::Error,
    },
    /// The agent did not list its keys.
    #[error("the SSH agent did not list its keys: {source}")]
    AgentIdentities {
        /// Why.
        #[source]
        source: russh::keys::Error,
    },
    /// The agent signed nothing the server accepted, or failed to sign.
    #[error("the SSH agent could not sign for {user}: {source}")]
    AgentSign {
        /// Login user.
        user: String,
        /// Why.
        #[source]
        source: russh::AgentAuthError,
    },
    /// The server refused every key offered.
    #[error("server refused user {user} with {offered} (server would accept: {remaining})")]
    Rejected {
        /// Login user.
        user: String,
        /// What was offered (a key fingerprint, or the agent's keys).
        offered: String,
        /// Methods the server still offers.
        remaining: String,
    },
    /// The connection failed during authentication.
    #[error("authentication exchange failed: {source}")]
    Protocol {
        /// Why.
        #[source]
        source: russh::Error,
    },
}

/// How to log in.
#[derive(Clone)]
pub enum Auth {
    /// A decoded private key (decode once with [`Auth::try_private_key`], share across hosts).
    Key(Arc<PrivateKey>),
    /// The SSH agent at this socket, or at `SSH_AUTH_SOCK` when `None`.
    Agent(Option<PathBuf>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never print key material.
            Auth::Key(k) => write!(f, "Auth::Key({})", crate::host_keys::fingerprint(k.public_key())),
            Auth::Agent(s) => write!(f, "Auth::Agent({s:?})"),
        }
    }
}

impl Auth {
    /// Decodes a PEM private key (OpenSSH, PKCS#8 incl. encrypted, PKCS#1 RSA, SEC1 EC).
    ///
    /// # Errors
    /// [`AuthError::DecodeKey`] for an unreadable key or a wrong/missing passphrase.
    pub fn try_private_key(pem: &str, passphrase: Option<&str>) -> Result<Self, AuthError> {
        russh::keys::decode_secret_key(pem, passphrase)
            .map(|k| Auth::Key(Arc::new(k)))
            .map_err(|source| AuthError::DecodeKey { source })
    }

    /// The public half of a private key; `None` for the agent, whose keys are its own.
    pub fn public_key(&self) -> Option<&russh::keys::PublicKey> {
        match self {
            Auth::Key(k) => Some(k.public_key()),
            Auth::Agent(_) => None,
        }
    }

    /// Logs `user` in on an established connection.
    pub(crate) async fn authenticate<H: Handler>(&self, handle: &mut Handle<H>, user: &str) -> Result<(), AuthError> {
        match self {
            Auth::Key(key) => {
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|source| AuthError::Protocol { source })?
                    .flatten();
                let result = handle
                    .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                    .await
                    .map_err(|source| AuthError::Protocol { source })?;
                check(result, user, crate::host_keys::fingerprint(key.public_key()))
            }
            Auth::Agent(socket) => {
                let socket = match socket {
                    Some(s) => s.clone(),
                    None => std::env::var_os("SSH_AUTH_SOCK")
                        .map(PathBuf::from)
                        .ok_or(AuthError::NoAgentSocket)?,
                };
                let mut agent = AgentClient::connect_uds(&socket)
                    .await
                    .map_err(|source| AuthError::AgentConnect {
                        socket: socket.clone(),
                        source,
                    })?;
                let identities = agent
                    .request_identities()
                    .await
                    .map_err(|source| AuthError::AgentIdentities { source })?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|source| AuthError::Protocol { source })?
                    .flatten();
                let mut last = None;
                let mut offered = Vec::new();
                for id in identities {
                    let AgentIdentity::PublicKey { key, .. } = id else {
                        continue;
                    };
                    offered.push(crate::host_keys::fingerprint(&key));
                    let result = handle
                        .authenticate_publickey_with(user, key, hash, &mut agent)
                        .await
                        .map_err(|source| AuthError::AgentSign {
                            user: user.to_owned(),
                            source,
                        })?;
                    match result {
                        AuthResult::Success => return Ok(()),
                        failure => last = Some(failure),
                    }
                }
                let offered = if offered.is_empty() {
                    "no keys (the agent holds none)".to_owned()
                } else {
                    format!("agent keys {}", offered.join(", "))
                };
                match last {
                    Some(result) => check(result, user, offered),
                    None => Err(AuthError::Rejected {
                        user: user.to_owned(),
                        offered,
                        remaining: "unknown".to_owned(),
                    }),
                }
            }
        }
    }
}

fn check(result: AuthResult, user: &str, offered: String) -> Result<(), AuthError> {
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { remaining_methods, .. } => Err(AuthError::Rejected {
            user: user.to_owned(),
            offered,
            remaining: format!("{remaining_methods:?}"),
        }),
    }
}
