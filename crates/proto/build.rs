//! Compiles the `.proto` files under the workspace's `proto/` with protox (pure Rust, so
//! building needs no `protoc`) and generates tonic clients and servers.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "outpost/identity/v1/identity.proto",
        "outpost/agent/v1/agent.proto",
        "outpost/hub/v1/hub.proto",
        "outpost/cloud/v1/cloud.proto",
        "outpost/host/v1/host.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(descriptors)?;
    Ok(())
}
