//! SSH transport: reach the hosts other providers created, safely and in parallel.
//!
//! - [`session`]: one connection per host (through bastions), retries, `exec`/`sudo`.
//! - [`bastion`]: opening hops, bastion chains shared by a fleet ([`Jump`]), retries.
//! - [`auth`]: in-memory private keys (OpenSSH, PKCS#8, PKCS#1, with passphrase) or the agent.
//! - [`authorized_keys`]: the keys a host's SSH user is kept letting in, checked.
//! - [`host_keys`]: pinned keys or trust on first use; mismatches refused with both fingerprints.
//! - [`files`]: atomic, durable, idempotent batch uploads with owner and mode; removal.
//! - [`sftp`]: small upload batches through a root sftp-server, one process per batch.
//! - [`tar`]: the archive format one upload batch travels in.
//! - [`tunnel`]: streams to a port on the host, opened in-process (no local listener).
//! - [`fleet`]: many hosts with bounded concurrency and one cancellation token.
//! - `testbed` (feature `testbed`): the multi-host OpenSSH test bed, for tests.
//!
//! Knows nothing of Kubernetes.

pub mod auth;
pub mod authorized_keys;
pub mod bastion;
pub mod files;
pub mod fleet;
pub mod host_keys;
pub mod session;
pub mod sftp;
pub mod tar;
#[cfg(feature = "testbed")]
pub mod testbed;
pub mod tunnel;

pub use auth::{Auth, AuthError};
pub use authorized_keys::{AuthorizedKeys, AuthorizedKeysError};
pub use bastion::Jump;
pub use files::{FileSpec, FilesError, UploadReport};
pub use fleet::{Fleet, FleetError};
pub use host_keys::{HostKeyError, HostKeyPolicy, LearnedHostKey, PinnedKey};
pub use session::{ConnectError, ExecError, HopSpec, HostSpec, Output, Session};
pub use tokio_util::sync::CancellationToken;
pub use tunnel::TunnelError;
