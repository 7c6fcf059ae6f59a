//! Cluster layer: talk to the Kubernetes API.
//!
//! - [`client`]: a kube [`Client`] from a server URL (or a [`Dialer`]), the cluster CA and a
//!   client certificate, with an optional TLS server-name override.
//! - [`dial`]: connections opened in-process (SSH channels), with no local port.
//! - [`apply`]: server-side apply of rendered `manifests/` in order, with one field manager,
//!   waiting for CRDs to be Established before their objects.
//! - [`conditions`]: pure predicates on API objects (Ready, rolled out, Established, lease held).
//! - [`wait`]: watches until a predicate holds; no timeout of its own ([`wait::Waiter::until`]
//!   takes the caller's deadline), cancellable, recording how far it got.
//! - [`identity`]: which process answered — the peer certificate of a fresh TLS connection.
//! - [`labels`]: labels on nodes (the control-plane role label a kubelet may not set itself).
//! - [`diagnose`]: evidence for a failure: pod status, events and container log tails.
//! - [`recovery`]: which controllers serve from their recovery apiserver, and why.
//! - [`workloads`]: an upgrade's rollouts by kind, and removal of an old generation.
//! - [`drain`]: a node whose host left the configuration: cordon, evict, delete the Node.
//! - [`service_keeper`]: the `kubernetes` Service kept from going empty while an apiserver hands
//!   over to another on the same address.
//! - [`retry`]: which API errors are worth retrying, and the back-off between tries.
//!
//! Knows nothing of SSH: a tunnel is a [`Dialer`] handed to [`client::connect_through`] and
//! [`TlsProbe::through`].
//!
//! The pivot's use, in outline (every wait bounded by the caller's one deadline):
//!
//! ```no_run
//! # async fn pivot(creds: selfhosted_cluster::ApiCredentials, port: u16,
//! #     manifests: std::collections::BTreeMap<String, String>, selfhosted_crt_pem: &str,
//! #     token: selfhosted_cluster::CancellationToken) -> Result<(), Box<dyn std::error::Error>> {
//! use selfhosted_cluster::{conditions::LeaseHeld, *};
//! let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
//! let client = connect_local_port(port, &creds, "kubernetes")?;
//! let w = Waiter::new(client.clone()).with_cancel(token);
//! w.until(deadline, "API /readyz", w.readyz()).await?;
//! let summary = w.until(deadline, "apply", async { Ok(apply_manifests(&w, &manifests).await) }).await??;
//! w.until(deadline, "node c0", w.node_registered("c0")).await?;
//! labels::label_control_plane(&client, "c0").await?;
//! if let Err(e) = w.until(deadline, "apiserver pods", w.pods_ready("kube-system", "k8s-app=kube-apiserver", 1)).await {
//!     let evidence = collect_evidence(&client, "kube-system", "k8s-app=kube-apiserver").await?;
//!     return Err(format!("{e}\n{evidence}").into());
//! }
//! let probe = TlsProbe::new(&creds, "127.0.0.1", port, "kubernetes")?;
//! let own = Fingerprint::of_pem(selfhosted_crt_pem)?;
//! w.until(deadline, "self-hosted apiserver answers", w.served_by(&probe, own, 5, std::time::Duration::from_millis(200))).await?;
//! // ... remove the bootstrap control plane over SSH, and wait until its processes are gone ...
//! let renewed = w.lease_renewed("kube-system", "kube-controller-manager").await?;
//! let want = LeaseHeld { renewed_after: renewed, ..LeaseHeld::default() };
//! w.until(deadline, "controller-manager lease", w.lease_held("kube-system", "kube-controller-manager", want)).await?;
//! # let _ = summary; Ok(()) }
//! ```

pub mod apply;
pub mod client;
pub mod conditions;
pub mod diagnose;
pub mod dial;
pub mod drain;
pub mod identity;
pub mod labels;
pub mod lost;
pub mod oneshot;
pub mod recovery;
pub mod retry;
pub mod service_keeper;
pub mod skew;
#[cfg(test)]
mod testing;
pub mod wait;
pub mod workloads;

pub use apply::{
    apply_manifests, apply_parsed, parse_manifests, AppliedObject, ApplyError, ApplySummary, Manifest, Outcome,
    FIELD_MANAGER,
};
pub use client::{connect, connect_local_port, connect_through, ApiCredentials, ClientError};
pub use diagnose::{collect_evidence, DiagnoseError, Evidence};
pub use dial::Dialer;

pub use identity::{Answer, Fingerprint, IdentityError, TlsProbe};
pub use k8s_openapi::jiff::Timestamp;
pub use kube::Client;
pub use labels::{label_node, LabelError, CONTROL_PLANE_LABEL};
pub use tokio_util::sync::CancellationToken;
pub use wait::{Progress, WaitError, Waiter};
