//! Generates the admin API's Rust types from `proto/admin.proto` with protox
//! (a pure-Rust protobuf compiler), so building never needs `protoc`.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto/admin.proto");
    let fds = protox::compile(["admin.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
