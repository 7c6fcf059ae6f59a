//! The Terraform plugin protocol (version 6) as this provider speaks it,
//! with no framework crate: the go-plugin handshake and strict AutoMTLS
//! (`server`, `tls`), the gRPC services (`service`), Terraform's values and
//! their wire codecs (`value`, `msgpack`, `json`), schemas (`schema`),
//! diagnostics (`diagnostics`), the resource trait (`resource`), plan helpers
//! (`plan`) and the stderr log format Terraform reads (`logging`).
//!
//! This crate knows no resource: the binary hands [`run`] (or [`serve`]) a
//! [`Provider`] listing its resources, each implementing
//! [`resource::Resource`]. A resource decodes nothing itself: it gets
//! [`value::Value`]s typed by its [`schema::Schema`], returns values and
//! [`diagnostics::Diagnostics`], and may use the [`plan`] helpers
//! (`mark_computed_unknown`, `use_state_for_unknown`, `changed_paths`).
//! The service layer enforces Terraform's rules on what comes back.
//!
//! `examples/echo.rs` is a complete toy provider the tests drive with the
//! real `terraform` CLI.

pub mod diagnostics;
pub mod identity;
pub mod json;
pub mod logging;
pub mod msgpack;
pub mod pb;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod server;
pub mod service;
pub mod tls;
pub mod value;

pub use server::{run, serve, start, Running, ServeError};

/// What the binary serves: its name and its resources.
pub struct Provider {
    /// Provider name as in the source address (`selfhosted`), used as the
    /// log module.
    pub name: &'static str,
    /// Every managed resource type.
    pub resources: Vec<std::sync::Arc<dyn resource::Resource>>,
}
