//! The `cclaunch` command line: a demo, a Fabric-free chaincode development
//! peer with an admin API, the clients of that API, and a packager.
//!
//! # What it promises
//! - `cclaunch peer` serves `protos.ChaincodeSupport/Register` and the admin
//!   API (`proto/admin.proto`) until SIGINT/SIGTERM, then stops every
//!   runtime before it exits 0. The admin API is a Unix socket (mode `0600`)
//!   in the peer's state directory ([`state`]), and TCP only with mutual TLS.
//! - Every admin call from the CLI has a deadline (`--timeout`).
//! - A closed stdout (`cclaunch ps | head -1`) ends a command quietly.
//! - Every command prints either text for people or, with `--json`, JSON.
//! - Failures are one or two readable lines (`error: …`, `hint: …`), or with
//!   `--json` one JSON object on stderr, `{"error", "hint", "exit_code"}`;
//!   the exit code is 0 (ok), 1 (the operation failed) or 2 (usage).
//! - Started the way a peer starts a chaincode binary
//!   (`cclaunch -peer.address=HOST:PORT` with `CORE_CHAINCODE_ID_NAME`), the
//!   binary runs its bundled chaincode of that name ([`chaincodes`]).
//!
//! # Example
//! ```no_run
//! // What `main` does:
//! let code = cclaunch::main_with_args(std::env::args().collect());
//! std::process::exit(code);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod admin;
pub mod chaincodes;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod metrics_http;
pub mod output;
pub mod package;
pub mod peer;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::CliError;
use crate::output::Output;

/// Launch and run Fabric-style chaincode: a demo, a development peer, and its clients.
#[derive(Debug, Parser)]
#[command(name = "cclaunch", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the peer's admin API is and how long to wait, for the commands that
/// talk to a peer.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminAddr {
    /// The peer's admin API: unix:PATH or a socket path, or https://HOST:PORT
    /// or HOST:PORT (mutual TLS) [default: {state dir}/admin.sock].
    #[arg(long, value_name = "ADDR", env = "CCLAUNCH_ADMIN")]
    pub admin: Option<String>,
    /// The peer's state directory [default: $CCLAUNCH_HOME, else
    /// $XDG_STATE_HOME/cclaunch, else ~/.local/state/cclaunch].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// For a TCP admin API: where ca.crt, admin-client.crt and
    /// admin-client.key are [default: {state dir}/tls].
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// How long to wait for the peer's answer (e.g. 30s, 10m) [default: 330s
    /// for launch and invoke, 60s for stop, 10s for ps and the start of watch].
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub timeout: Option<Duration>,
}

impl AdminAddr {
    /// The resolved address, with `default_timeout` unless --timeout is given.
    pub fn resolve(&self, default_timeout: Duration) -> Result<client::Admin, CliError> {
        Ok(client::Admin {
            resolved: admin::client::resolve(
                self.admin.as_deref(),
                self.state_dir.as_deref(),
                self.tls_dir.as_deref(),
            )?,
            timeout: self.timeout.unwrap_or(default_timeout),
        })
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded peer, launch chaincode in-process, as a process and in Docker, run transactions, stop.
    Demo(demo::DemoArgs),
    /// Run a development peer with an admin API until SIGINT/SIGTERM.
    Peer(peer::PeerArgs),
    /// Launch a chaincode on a running peer and wait until it is ready.
    Launch {
        /// The chaincode, NAME:VERSION.
        ccid: String,
        #[command(flatten)]
        #[allow(missing_docs)]
        admin: AdminAddr,
    },
    /// Run one transaction (or INIT with --init) on a running peer; a status other than 200 exits 1.
    Invoke {
        /// The chaincode, NAME:VERSION.
        ccid: String,
        /// Send INIT instead of TRANSACTION.
        #[arg(long)]
        init: bool,
        /// The arguments: the function name, then its parameters (after `--` when one starts with `-`).
        #[arg(value_name = "ARG")]
        args: Vec<String>,
        /// The arguments as Fabric's `peer chaincode invoke -c` takes them:
        /// '{"Args":["put","a","1"]}' or '{"function":"put","Args":["a","1"]}'.
        #[arg(short = 'c', long = "ctor", value_name = "JSON")]
        ctor: Option<String>,
        #[command(flatten)]
        #[allow(missing_docs)]
        admin: AdminAddr,
    },
    /// Stop a chaincode on a running peer.
    Stop {
        /// The chaincode, NAME:VERSION.
        ccid: String,
        #[command(flatten)]
        #[allow(missing_docs)]
        admin: AdminAddr,
    },
    /// List every chaincode a running peer knows: phase, executor, generation, uptime, last error.
    Ps {
        #[command(flatten)]
        #[allow(missing_docs)]
        admin: AdminAddr,
    },
    /// Stream phase changes from a running peer.
    Watch {
        /// Stop after this many seconds.
        #[arg(long = "for", value_name = "SECS")]
        for_secs: Option<u64>,
        #[command(flatten)]
        #[allow(missing_docs)]
        admin: AdminAddr,
    },
    /// Write a chaincode binary as a deployment spec file NAME.VERSION in the packages directory.
    #[command(disable_version_flag = true)]
    Package {
        /// The chaincode executable.
        #[arg(long, value_name = "PATH")]
        binary: PathBuf,
        /// The chaincode's name.
        #[arg(long)]
        name: String,
        /// The chaincode's version.
        #[arg(long)]
        version: String,
        /// The packages directory [default: ./packages, or {peer.fileSystemPath}/chaincodes with --config].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// A peer config file whose packages directory to use.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run a bundled chaincode (kv, counter) against a peer, as a chaincode process would.
    #[command(hide = true)]
    Chaincode {
        /// The bundled chaincode: kv or counter.
        which: String,
        /// The peer's HOST:PORT.
        #[arg(long = "peer-address", env = "CORE_PEER_ADDRESS")]
        peer_address: String,
        /// The name to register as [default: WHICH:1.0].
        #[arg(long, env = "CORE_CHAINCODE_ID_NAME")]
        id: Option<String>,
    },
}

/// Sets up logging on stderr: `RUST_LOG` if set, else warnings only.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn run_chaincode(config: chaincode_shim::Config) -> Result<(), CliError> {
    chaincodes::serve(config).await.map_err(CliError::new)
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::Demo(args) => demo::run(args, out).await,
        Command::Peer(args) => peer::run(args, out).await,
        Command::Launch { ccid, admin } => {
            client::launch(&admin.resolve(client::LONG_TIMEOUT)?, &ccid, out).await
        }
        Command::Invoke {
            ccid,
            init,
            args,
            ctor,
            admin,
        } => {
            let args = client::invoke_args(&ccid, args, ctor.as_deref())?;
            client::invoke(
                &admin.resolve(client::LONG_TIMEOUT)?,
                &ccid,
                init,
                args,
                out,
            )
            .await
        }
        Command::Stop { ccid, admin } => {
            client::stop(&admin.resolve(client::STOP_TIMEOUT)?, &ccid, out).await
        }
        Command::Ps { admin } => client::ps(&admin.resolve(client::SHORT_TIMEOUT)?, out).await,
        Command::Watch { for_secs, admin } => {
            let admin = admin.resolve(client::SHORT_TIMEOUT)?;
            client::watch(&admin, for_secs.map(Duration::from_secs), out).await
        }
        Command::Package {
            binary,
            name,
            version,
            out: dir,
            config,
        } => {
            let dir = match (dir, config) {
                (Some(dir), _) => dir,
                (None, Some(file)) => config::PeerConfig::load(&file)?.packages_dir(),
                (None, None) => config::PeerConfig::default().packages_dir(),
            };
            package::run(&binary, &name, &version, &dir, out)
        }
        Command::Chaincode {
            which,
            peer_address,
            id,
        } => {
            let id = id.unwrap_or_else(|| format!("{which}:1.0"));
            let name = id
                .parse()
                .map_err(|e: chaincode_proto::NameError| CliError::usage(e.to_string()))?;
            let config = chaincode_shim::Config::new(name, peer_address)
                .map_err(|e| CliError::usage(e.to_string()))?;
            run_chaincode(config).await
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))
}

/// Prints `error` on stderr: `error: …` and `hint: …` lines, or with
/// `json` one object of a stable shape ([`CliError::to_json`]).
fn report(error: &CliError, json: bool) -> i32 {
    if error.is_quiet() {
        return 0;
    }
    if json {
        eprintln!("{}", error.to_json());
        return i32::from(error.code);
    }
    eprintln!("error: {}", error.message);
    if let Some(hint) = &error.hint {
        eprintln!("hint: {hint}");
    }
    i32::from(error.code)
}

/// Whether `--json` is among `args` before a `--`: clap refused the command
/// line, so its own answer is not there to ask.
fn wants_json(args: &[String]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json")
}

/// A usage error clap found, as a [`CliError`] for `--json`: its first
/// paragraph on one line, and its usage line as the hint.
fn clap_error(error: &clap::Error) -> CliError {
    let rendered = error.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty())
        .collect();
    let message = match first.join(" ") {
        joined if joined.is_empty() => error.kind().to_string(),
        joined => joined
            .strip_prefix("error: ")
            .map(str::to_owned)
            .unwrap_or(joined),
    };
    let mut lines = rendered.lines().map(str::trim);
    let usage = lines.find(|line| line.starts_with("Usage: "));
    let mut cli_error = CliError::usage(message);
    cli_error.code = u8::try_from(error.exit_code()).unwrap_or(2);
    match usage {
        Some(usage) => cli_error.with_hint(format!("{usage} (see --help)")),
        None => cli_error.with_hint("see --help"),
    }
}

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn main_with_args(args: Vec<String>) -> i32 {
    init_tracing();
    if chaincodes::started_as_chaincode(&args) {
        // A peer started us as a chaincode binary: Fabric's arguments and
        // environment, not ours.
        let config = match chaincode_shim::Config::from_parts(
            |key| std::env::var(key).ok(),
            args.iter().skip(1).cloned(),
        ) {
            Ok(config) => config,
            Err(e) => return report(&CliError::usage(format!("chaincode: {e}")), false),
        };
        return match runtime().and_then(|rt| rt.block_on(run_chaincode(config))) {
            Ok(()) => 0,
            Err(e) => report(&e, false),
        };
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && wants_json(&args) => return report(&clap_error(&e), true),
        Err(e) => e.exit(),
    };
    let json = cli.json;
    let result = runtime().and_then(|rt| {
        let result = rt.block_on(dispatch(cli));
        // Leftover blocking tasks (stdin readers, DNS) must not hold the exit.
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    });
    match result {
        Ok(()) => 0,
        Err(e) => report(&e, json),
    }
}
