//! Compiles the part of etcd's API the provider calls (`proto/etcd/`) with protox (pure Rust,
//! no `protoc`): a client only, over connections the caller opens.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto/etcd");
    let file = "maintenance.proto";
    println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    let fds = protox::compile([file], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
