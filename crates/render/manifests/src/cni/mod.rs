//! The pod network: one module per `networking` choice. Every agent reaches the apiserver
//! by its real address (`KUBERNETES_SERVICE_HOST`), never through the `kubernetes`
//! Service, which needs kube-proxy and so a working pod network first.

pub mod calico;
pub mod cilium;
pub mod flannel;

use serde_json::Value;

use crate::params::{ManifestParams, Networking};

/// The objects of the chosen CNI (none for `Networking::None`).
pub fn objects(p: &ManifestParams) -> Vec<Value> {
    match p.networking {
        Networking::Flannel => flannel::objects(p),
        Networking::Calico => calico::objects(p),
        Networking::Cilium => cilium::objects(p),
        Networking::None => Vec::new(),
    }
}
