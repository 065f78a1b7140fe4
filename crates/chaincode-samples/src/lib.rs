//! Sample chaincodes built on [`chaincode_shim`], used by the demo, the
//! tests and the benchmarks of cclaunch.
//!
//! # Binaries
//!
//! - `kv`: a key-value chaincode. `put K V` → 200 `OK`; `get K` → 200 with
//!   the value, or 404 `K not found`; `del K` → 200. `init` succeeds and
//!   stores nothing. `kv --version` prints `kv <version>` and exits 0 at
//!   once (a process-spawn baseline). It logs each registration step to
//!   stderr (level from `CORE_CHAINCODE_LOGGING_LEVEL`, default `info`).
//! - `faulty`: misbehaves on purpose; the mode comes from `--mode=MODE`
//!   (first) or `FAULTY_MODE`, default `ok`:
//!
//!   | mode | behaviour | exit code |
//!   |---|---|---|
//!   | `crash-before-register` | exits before connecting | 3 |
//!   | `crash-after-ready` | registers, exits right after READY arrives | 4 |
//!   | `never-register` | connects and opens the stream but never sends REGISTER; gives up after 10 minutes (dies at once when killed) | 5 |
//!   | `panic-in-invoke` | invoke panics with `faulty: panic in invoke`; the shim answers ERROR and the process exits | 101 |
//!   | `slow` | invoke sleeps `FAULTY_DELAY_MS` (default 2000) ms, then answers 200 with the arguments | 0 when the peer closes |
//!   | `ok` | echo: answers 200 with the arguments joined by spaces | 0 when the peer closes |
//!
//! Both read Fabric's conventions through [`chaincode_shim::Config`]:
//! `CORE_CHAINCODE_ID_NAME`, `-peer.address=HOST:PORT` or
//! `CORE_PEER_ADDRESS`, `CORE_PEER_TLS_ENABLED=false`. A configuration
//! error exits 2; a shim error exits 1.
//!
//! # Static binaries
//!
//! ```text
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
//!     --target x86_64-unknown-linux-gnu -p chaincode-samples
//! ```
//!
//! Tests of other crates get such a binary with [`static_sample`]:
//!
//! ```no_run
//! let kv = chaincode_samples::static_sample("kv")?;
//! let status = std::process::Command::new(&kv).arg("--version").status()?;
//! assert!(status.success());
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod build;
mod chaincodes;
mod faulty;

pub use build::{SAMPLES, SAMPLES_DIR_ENV, STATIC_TARGET, static_sample};
pub use chaincodes::{Echo, Kv};
pub use faulty::{Faulty, FaultyMode, ModeError, exit_code};

/// Logs to stderr at `CORE_CHAINCODE_LOGGING_LEVEL` (default `info`), so the
/// shim's registration steps show up in the runtime's output.
pub fn init_logging() {
    let filter = std::env::var("CORE_CHAINCODE_LOGGING_LEVEL")
        .ok()
        .and_then(|level| tracing_subscriber::EnvFilter::try_new(level.to_lowercase()).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (e.g. in tests) is harmless: keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in a peer's captured logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs `chaincode` as a sample process: reads the [`chaincode_shim::Config`]
/// from the environment and arguments, serves on a tokio runtime until the
/// peer closes the stream, and turns the outcome into the exit code
/// documented in [`exit_code`]. `program` prefixes the lines it prints.
pub fn run_chaincode(
    program: &str,
    chaincode: std::sync::Arc<dyn chaincode_shim::Chaincode>,
) -> std::process::ExitCode {
    use std::process::ExitCode;

    let config = match chaincode_shim::Config::from_env_and_args() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{program}: {error}");
            return ExitCode::from(exit_code::CONFIG_ERROR);
        }
    };
    eprintln!(
        "{program}: starting as {} with peer {}",
        config.name, config.peer_address
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{program}: cannot start the tokio runtime: {error}");
            return ExitCode::from(exit_code::SHIM_ERROR);
        }
    };
    // As PID 1 of a container a process has no default SIGTERM action, so
    // handle it: a stop then ends the chaincode at once, not after the grace.
    let served = runtime.block_on(async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = chaincode_shim::start(chaincode, config) => Some(result),
            () = terminate => None,
        }
    });
    let Some(served) = served else {
        eprintln!("{program}: terminated by SIGTERM, exiting");
        return ExitCode::SUCCESS;
    };
    match served {
        Ok(()) => {
            eprintln!("{program}: peer closed the stream, exiting");
            ExitCode::SUCCESS
        }
        Err(error @ chaincode_shim::ShimError::ChaincodePanicked { .. }) => {
            eprintln!("{program}: {error}");
            ExitCode::from(exit_code::PANICKED)
        }
        Err(error) => {
            eprintln!("{program}: {error}");
            ExitCode::from(exit_code::SHIM_ERROR)
        }
    }
}
