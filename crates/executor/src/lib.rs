//! Executors start and stop chaincode runtimes, and report what happens to
//! them back to the launch state machine.
//!
//! One [`Executor`] trait, one module per backend:
//! - `inproc`: system chaincodes as tokio tasks speaking the protocol over an
//!   in-memory stream;
//! - [`dev`]: no-op; the developer runs the chaincode, which registers by itself;
//! - [`process`]: the chaincode binary from the code package as a child process;
//! - [`docker`] (feature `docker`, on by default): a container on the Docker Engine.
//!
//! # Contract
//! - [`Executor::start`] resolves `Ok(())` once the runtime is running (process
//!   spawned, container started) and `Err` if it could not be started. What
//!   happens afterwards — its exit and its log lines — is reported through the
//!   [`EventSink`] it was given, tagged with the launch [`Generation`].
//! - [`Executor::stop`] is idempotent: a runtime that is already gone is success.
//! - The runtime driver never overlaps `start` and `stop` of one chaincode.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

use std::fmt;

use chaincode_proto::ChaincodeName;
use futures::future::BoxFuture;
pub use launch_fsm::Generation;
use tokio::sync::mpsc;

pub mod dev;
#[cfg(feature = "docker")]
pub mod docker;
pub mod file;
pub mod inproc;
pub mod package;
pub mod process;
pub mod tls_files;

pub use tls_files::TlsFile;

/// Everything a backend needs to start one runtime of one chaincode.
#[derive(Clone)]
pub struct StartRequest {
    /// The chaincode to run (`name:version`).
    pub chaincode: ChaincodeName,
    /// The launch generation this runtime belongs to; events are tagged with it.
    pub generation: Generation,
    /// The code package from the deployment spec: a gzipped tar holding the
    /// chaincode executable (see `process` for the layout). Empty for the
    /// inproc and dev backends.
    pub code_package: Vec<u8>,
    /// `host:port` of the peer's `ChaincodeSupport/Register` server that the
    /// chaincode dials.
    pub peer_address: String,
    /// Extra environment for the chaincode (logging levels and the like), on
    /// top of the variables every backend sets (`CORE_CHAINCODE_ID_NAME`,
    /// `CORE_PEER_TLS_ENABLED`, `CORE_PEER_ADDRESS`).
    pub env: Vec<(String, String)>,
    /// This launch's TLS client identity, when the peer's chaincode listener
    /// speaks TLS. Each backend hands it to the chaincode as Fabric does
    /// (files named by `CORE_TLS_CLIENT_*` and `CORE_PEER_TLS_ROOTCERT_FILE`).
    pub tls: Option<ClientTls>,
}

/// A launch's TLS client identity: a certificate bound to the chaincode's
/// name, its key, and the CA that signed the peer's server certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// The client certificate, PEM.
    pub cert_pem: String,
    /// The client key, PEM.
    pub key_pem: String,
    /// The root certificate the peer's server certificate chains to, PEM.
    pub root_cert_pem: String,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl fmt::Debug for StartRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartRequest")
            .field("chaincode", &self.chaincode.to_string())
            .field("generation", &self.generation)
            .field("code_package_bytes", &self.code_package.len())
            .field("peer_address", &self.peer_address)
            .field("env", &self.env)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl StartRequest {
    /// The environment Fabric gives every chaincode, followed by
    /// [`Self::env`], with TLS files at Fabric's container paths
    /// ([`tls_files::DOCKER_TLS_DIR`]); see [`Self::fabric_env_in`].
    pub fn fabric_env(&self) -> Vec<(String, String)> {
        self.fabric_env_in(std::path::Path::new(tls_files::DOCKER_TLS_DIR))
    }

    /// The arguments Fabric gives a chaincode binary: `-peer.address=HOST:PORT`.
    pub fn fabric_args(&self) -> Vec<String> {
        vec![format!("-peer.address={}", self.peer_address)]
    }
}

/// How a runtime ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i64),
    /// It was killed by this signal.
    Signal(i32),
    /// An in-process chaincode panicked with this message.
    Panic(String),
    /// It ended in some other way, described here.
    Other(String),
    /// The peer ended it: during [`Executor::stop`] (stream closed, then
    /// SIGTERM, then SIGKILL, or `docker stop`) it exited with success or
    /// by the peer's signal. Inside is how it ended, as the runtime reported
    /// it. Not a failure of the chaincode. A runtime that ends with any other
    /// code or signal, even during a stop, reports that status instead.
    Stopped(Box<ExitStatus>),
}

impl ExitStatus {
    /// Whether the peer ended the runtime (see [`ExitStatus::Stopped`]),
    /// as opposed to the runtime ending by itself.
    pub fn is_stopped_by_peer(&self) -> bool {
        matches!(self, ExitStatus::Stopped(_))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(signal) => write!(f, "killed by signal {signal}"),
            ExitStatus::Panic(message) => write!(f, "panicked: {message}"),
            ExitStatus::Other(text) => f.write_str(text),
            ExitStatus::Stopped(how) => write!(f, "stopped by the peer ({how})"),
        }
    }
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a backend reports about a runtime after `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeEventKind {
    /// The runtime is running (the driver reports this when `start` returns Ok).
    Started,
    /// The runtime could not be started (the driver reports this when `start`
    /// returns Err).
    Failed(String),
    /// The runtime ended.
    Exited(ExitStatus),
    /// The runtime printed a line.
    Log {
        /// stdout or stderr.
        stream: LogStream,
        /// The line, without its newline.
        line: String,
    },
    /// Progress of a long step (an image build), for the people watching.
    Progress(String),
}

/// A [`RuntimeEventKind`] tagged with the launch generation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// The launch generation of the runtime that produced the event.
    pub generation: Generation,
    /// What happened.
    pub kind: RuntimeEventKind,
}

/// Where a backend reports runtime events. Cheap to clone; sending never
/// blocks and never fails loudly (a driver that has gone away no longer cares).
#[derive(Debug, Clone)]
pub struct EventSink {
    generation: Generation,
    tx: mpsc::UnboundedSender<RuntimeEvent>,
}

impl EventSink {
    /// A sink that tags every event with `generation` and sends it on `tx`.
    pub fn new(generation: Generation, tx: mpsc::UnboundedSender<RuntimeEvent>) -> Self {
        Self { generation, tx }
    }

    /// A sink and the receiving end of its channel (handy in tests).
    pub fn channel(generation: Generation) -> (Self, mpsc::UnboundedReceiver<RuntimeEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::new(generation, tx), rx)
    }

    /// The generation this sink tags events with.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Reports an event.
    pub fn send(&self, kind: RuntimeEventKind) {
        let _ = self.tx.send(RuntimeEvent {
            generation: self.generation,
            kind,
        });
    }

    /// Reports that the runtime ended.
    pub fn exited(&self, status: ExitStatus) {
        self.send(RuntimeEventKind::Exited(status));
    }

    /// Reports one line of output.
    pub fn log(&self, stream: LogStream, line: impl Into<String>) {
        self.send(RuntimeEventKind::Log {
            stream,
            line: line.into(),
        });
    }
}

/// Why a backend could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The code package could not be used (not a tar.gz, no executable, a path
    /// outside its directory...).
    #[error("bad code package for {chaincode}: {reason}")]
    BadPackage {
        /// `name:version`.
        chaincode: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Building the runtime's image failed; `reason` is the builder's own text.
    #[error("image build failed for {chaincode}: {reason}")]
    Build {
        /// `name:version`.
        chaincode: String,
        /// The builder's error text.
        reason: String,
    },
    /// Starting the runtime failed.
    #[error("could not start {chaincode}: {reason}")]
    Start {
        /// `name:version`.
        chaincode: String,
        /// Why.
        reason: String,
    },
    /// Stopping the runtime failed.
    #[error("could not stop {chaincode}: {reason}")]
    Stop {
        /// `name:version`.
        chaincode: String,
        /// Why.
        reason: String,
    },
    /// The backend itself is unusable (no Docker Engine reachable, ...).
    #[error("executor unavailable: {0}")]
    Unavailable(String),
    /// A chaincode of that name is already registered (inproc registry).
    #[error("{kind} chaincode {chaincode} is already registered")]
    AlreadyRegistered {
        /// The backend.
        kind: &'static str,
        /// The name.
        chaincode: String,
    },
    /// A name to register breaks Fabric's name rule (inproc registry).
    #[error("cannot register {kind} chaincode: {source}")]
    InvalidName {
        /// The backend.
        kind: &'static str,
        /// Which rule the name broke.
        #[source]
        source: chaincode_proto::NameError,
    },
    /// The backend has no chaincode of that name (inproc registry).
    #[error("no {kind} chaincode named {chaincode}")]
    UnknownChaincode {
        /// The backend.
        kind: &'static str,
        /// `name:version` or the bare name.
        chaincode: String,
    },
    /// Another chaincode's runtime holds the runtime name this one maps to
    /// (names that differ only in case, or in `-` and `+`, share a Docker
    /// container name).
    #[error(
        "could not start {chaincode}: runtime name {runtime} is taken by chaincode {other} (names that differ only in case or in '-'/'+' map to one container name)"
    )]
    NameClash {
        /// `name:version` being started.
        chaincode: String,
        /// The chaincode whose runtime holds the name.
        other: String,
        /// The shared runtime name.
        runtime: String,
    },
}

/// Starts and stops chaincode runtimes. See the crate docs for the contract.
pub trait Executor: Send + Sync + 'static {
    /// The backend's short name: `inproc`, `dev`, `process`, `docker`.
    fn kind(&self) -> &'static str;

    /// A stable, human-readable name for the runtime of `chaincode` (a
    /// container name, a directory name...).
    fn runtime_name(&self, chaincode: &ChaincodeName) -> String;

    /// Starts a runtime; resolves once it runs. Exit and logs go to `sink`.
    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>>;

    /// Stops the runtime of `chaincode` (whatever generation runs) and
    /// removes what was created for it. Already gone is success.
    fn stop<'a>(&'a self, chaincode: &'a ChaincodeName)
    -> BoxFuture<'a, Result<(), ExecutorError>>;
}
