//! One module per resource type. This is the only layer that turns errors
//! into Terraform diagnostics (summary, detail, attribute path).

pub mod bootstrap;
pub mod cluster_assets;
pub mod config;

use std::sync::Arc;

use selfhosted_protocol::resource::Resource;

use crate::clock;

/// Every resource type the provider serves, on the system clock.
pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(cluster_assets::ClusterAssets::new(clock::system())),
        Arc::new(bootstrap::Bootstrap),
    ]
}
