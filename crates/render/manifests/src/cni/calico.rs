//! Calico (VXLAN, Kubernetes datastore).

use serde_json::Value;

use crate::params::ManifestParams;

/// Calico's objects.
pub fn objects(_p: &ManifestParams) -> Vec<Value> {
    Vec::new()
}
