//! The hosts of a cluster and their roles. The first controller is the
//! bootstrap node: the temporary control plane runs there.

use selfhosted_transport::{AuthorizedKeys, HostSpec};

/// What a host is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs etcd and the control plane.
    Controller,
    /// Runs workloads only.
    Worker,
}

/// One host: its name (the Kubernetes node name), role and how to reach it.
#[derive(Debug, Clone)]
pub struct Host {
    /// Node name; also names the host in every error.
    pub name: String,
    /// Controller or worker.
    pub role: Role,
    /// How to reach it over SSH.
    pub ssh: HostSpec,
}

/// Every host of the cluster, controllers first.
#[derive(Debug, Clone)]
pub struct Inventory {
    hosts: Vec<Host>,
    authorized_keys: Option<AuthorizedKeys>,
}

/// Why an inventory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// There is no controller to bootstrap on.
    #[error("no controller: the first controller runs the bootstrap control plane")]
    NoController,
    /// Two hosts share a name.
    #[error("two hosts are named {0:?}; node names must be unique")]
    DuplicateName(String),
}

impl Inventory {
    /// An inventory of controllers (the first bootstraps) and workers.
    ///
    /// # Errors
    /// No controller, or a duplicate name.
    pub fn try_new(controllers: Vec<Host>, workers: Vec<Host>) -> Result<Self, InventoryError> {
        if controllers.is_empty() {
            return Err(InventoryError::NoController);
        }
        let hosts: Vec<Host> = controllers.into_iter().chain(workers).collect();
        let mut names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(InventoryError::DuplicateName(w[0].to_owned()));
        }
        Ok(Inventory {
            hosts,
            authorized_keys: None,
        })
    }

    /// The same hosts, whose SSH users the provider keeps letting in `keys` (and no other key).
    #[must_use]
    pub fn with_authorized_keys(mut self, keys: Option<AuthorizedKeys>) -> Self {
        self.authorized_keys = keys;
        self
    }

    /// The keys every host's SSH user is to let in; `None`: the hosts' own are left alone.
    pub fn authorized_keys(&self) -> Option<&AuthorizedKeys> {
        self.authorized_keys.as_ref()
    }

    /// Every host, controllers first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The controller the bootstrap control plane runs on.
    pub fn bootstrap(&self) -> &Host {
        // try_new guarantees a controller comes first.
        &self.hosts[0]
    }

    /// The controllers.
    pub fn controllers(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Controller)
    }
}
