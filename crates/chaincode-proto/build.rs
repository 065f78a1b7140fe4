//! Generates the protocol's Rust types from `proto/` with protox (a pure-Rust
//! protobuf compiler), so building never needs `protoc`.

use std::error::Error;

const PROTOS: &[&str] = &[
    "peer/chaincode.proto",
    "peer/chaincode_event.proto",
    "peer/chaincode_shim.proto",
    "peer/proposal.proto",
    "peer/proposal_response.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The `Chaincode` service has an rpc named `Connect`, which collides
        // with the generated `connect(endpoint)` constructor; clients are
        // built with `XxxClient::new(channel)` instead.
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
