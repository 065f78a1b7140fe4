//! `kv`: the key-value sample chaincode (see the crate docs).

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // Before anything else: used as a process-spawn baseline.
    if std::env::args().skip(1).any(|arg| arg == "--version") {
        println!("kv {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    chaincode_samples::init_logging();
    chaincode_samples::run_chaincode("kv", Arc::new(chaincode_samples::Kv))
}
