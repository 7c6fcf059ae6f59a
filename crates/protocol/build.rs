//! Compiles the plugin protocol definitions in `proto/` with protox (pure
//! Rust, so no `protoc` is needed). The library gets server stubs only; a
//! second, client-only copy lands in `$OUT_DIR/client/` for the tests, which
//! drive the server over real TLS like Terraform does.

use std::path::PathBuf;

const PROTOS: [&str; 3] = ["tfplugin6.proto", "go_plugin.proto", "health.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    }
    let fds = protox::compile(PROTOS, [&proto_dir])?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .compile_fds(fds.clone())?;

    let client_dir = PathBuf::from(std::env::var("OUT_DIR")?).join("client");
    std::fs::create_dir_all(&client_dir)?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(false)
        .out_dir(client_dir)
        .compile_fds(fds)?;
    Ok(())
}
