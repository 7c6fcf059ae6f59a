//! etcd, reached as the provider reaches the apiserver: over connections the caller opens
//! (an SSH channel to a controller's `127.0.0.1:2379`), with the etcd client certificate the
//! assets hold. It reads a member's status, streams snapshots of the keyspace and changes the
//! membership when a member's data is lost; it needs
//! nothing installed on the host, so it works alike on every host OS the contract renders
//! (etcd as a host binary, or in a container on Fedora CoreOS and Flatcar).

mod client;
pub mod membership;
pub mod snapshot;

pub use client::{Client, Credentials, EtcdError, Id, Status};
pub use membership::{check_removal, promote, rejoin, unclaimed, Member, Rejoin, RejoinError, Rejoined};
pub use snapshot::Snapshot;

/// The generated clients of `proto/etcd/maintenance.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod pb {
    tonic::include_proto!("etcdserverpb");
}
