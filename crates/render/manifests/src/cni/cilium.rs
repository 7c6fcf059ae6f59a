//! Cilium (VXLAN tunnelling, cluster-pool IPAM).

use serde_json::Value;

use crate::params::ManifestParams;

/// Cilium's objects.
pub fn objects(_p: &ManifestParams) -> Vec<Value> {
    Vec::new()
}
