//! Cluster layer: talk to the Kubernetes API.
//!
//! - [`client`]: a kube [`Client`](kube::Client) from a server URL (or a local tunnel port), the
//!   cluster CA and a client certificate, with an optional TLS server-name override.
//! - [`apply`]: server-side apply of rendered `manifests/` in order, with one field manager,
//!   waiting for CRDs to be Established before their objects.
//! - [`conditions`]: pure predicates on API objects (Ready, rolled out, Established, lease held).
//! - [`wait`]: watches until a predicate holds; no timeout of its own ([`wait::Waiter::until`]
//!   takes the caller's deadline), cancellable, recording how far it got.
//! - [`identity`]: which process answered — the peer certificate of a fresh TLS connection.
//! - [`labels`]: labels on nodes (the control-plane role label a kubelet may not set itself).
//! - [`diagnose`]: evidence for a failure: pod status, events and container log tails.
//! - [`retry`]: which API errors are worth retrying, and the back-off between tries.
//!
//! Knows nothing of SSH: a tunnel is just a local port handed to [`client::connect_local_port`].

pub mod apply;
pub mod client;
pub mod conditions;
pub mod diagnose;
pub mod identity;
pub mod labels;
pub mod retry;
pub mod wait;

pub use apply::{apply_manifests, AppliedObject, ApplyError, ApplySummary, Outcome, FIELD_MANAGER};
pub use client::{connect, connect_local_port, ApiCredentials, ClientError};
pub use diagnose::{collect_evidence, DiagnoseError, Evidence};

pub use identity::{Answer, Fingerprint, IdentityError, TlsProbe};
pub use kube::Client;
pub use labels::{label_node, LabelError, CONTROL_PLANE_LABEL};
pub use tokio_util::sync::CancellationToken;
pub use wait::{Progress, WaitError, Waiter};
