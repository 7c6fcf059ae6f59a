//! The ordered, resumable procedures that turn hosts running only a kubelet
//! into a self-hosted cluster, and later keep it current. Every phase is
//! idempotent: a rerun after any failure converges.
//!
//! - [`inventory`]: the hosts, their roles, and which controller bootstraps.
//! - [`paths`]: where files go on a host (typhoon's conventions, overridable).
//! - [`node_files`]: which asset goes to which host, in which order.
//! - [`phase`]: the phases, their log lines and the error that names phase, host and evidence.
//! - [`preflight`]: every host reachable, sudo works, a kubelet is installed — before anything changes.
//! - [`etcd_snapshot`]: a snapshot of etcd before an update changes anything.
//! - [`health`]: what a refresh finds on the hosts (missing node secrets, silent etcd members).
//! - `leaving`: controllers a shrink drops: their recovery apiserver, label, etcd member and files.
//! - [`distribute`]: node secrets to every host; the bootstrap control plane to the first controller.
//! - [`procedure`]: what the pivot and the upgrade share: inputs, phases, outcome, step helpers.
//! - [`run`]: runs either one: preflight, the fleet, the deadline, Ctrl-C, a dropped connection.
//! - [`pivot`]: the whole procedure, phase by phase, with evidence on failure.
//! - [`upgrade`]: a change to a self-hosted cluster: apiserver blue/green, then each rollout in order.
//! - [`teardown`]: removal of this provider's files (`on_destroy = "teardown"`).
//!
//! Knows nothing of Terraform.

mod api;
pub mod distribute;
mod etcd_members;
pub mod etcd_release;
pub mod etcd_snapshot;
pub mod health;
pub mod inventory;
pub mod kubelets;
mod leaving;
pub mod login_keys;
pub mod node_files;
pub mod paths;
pub mod phase;
pub mod pivot;
pub mod preflight;
pub mod procedure;
pub mod run;
pub mod teardown;
pub mod upgrade;

pub use inventory::{Host, Inventory, Role};
pub use paths::RemotePaths;
pub use phase::{chain, Phase, PivotError};
