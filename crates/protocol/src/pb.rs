//! Protobuf messages and gRPC server stubs generated from `proto/` by
//! `build.rs`. Wire facts only; nothing here is hand-written.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Terraform plugin protocol 6.
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller, stdio and broker services.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// The standard gRPC health service.
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}
