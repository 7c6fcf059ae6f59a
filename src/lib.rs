//! The provider's resources and the local pieces they need. The layers
//! below live in their own crates: `selfhosted-protocol` speaks Terraform,
//! `selfhosted-pki` and `selfhosted-manifests` render, `selfhosted-transport`
//! reaches hosts.
//!
//! - [`resources`]: one module per resource type; the only place that turns
//!   errors into Terraform diagnostics.
//! - [`asset_dir`]: writes rendered assets to a local folder, atomically.
//! - [`clock`]: the time source, passed in so tests can move it.

pub mod asset_dir;
pub mod clock;
pub mod resources;
