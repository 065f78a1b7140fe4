//! The data that goes into and comes out of the machine.

use std::fmt;
use std::time::Duration;

use crate::table::Phase;

/// Which attempt at running a chaincode an event belongs to. Every launch from
/// Idle takes the next generation; events tagged with an older one are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// Identifies one caller waiting for a launch or a stop. Chosen by the driver;
/// must be unique among the callers currently waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(pub u64);

impl fmt::Display for WaiterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// Identifies one chaincode stream (one gRPC `Register` call). Chosen by the
/// driver; a new stream must get a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Where the deployment spec of a launch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecSource {
    /// Look it up (the driver performs [`Action::ResolveSpec`]).
    Lookup,
    /// The caller handed it over (a deploy call): start right away.
    Provided,
}

/// Settings of one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How long a launch may take from its first request to READY, image
    /// builds included. Fabric's default: 300 s.
    pub startup_timeout: Duration,
    /// Dev mode: the user runs the chaincode; never start a runtime, and
    /// accept a REGISTER nobody asked for.
    pub dev_mode: bool,
    /// Send a KEEPALIVE this often while Ready; `None` or zero = never
    /// (Fabric's 0).
    pub keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            startup_timeout: Duration::from_secs(300),
            dev_mode: false,
            keepalive: None,
        }
    }
}

/// Everything that can happen to a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A caller wants the chaincode ready.
    Launch {
        /// Who to complete.
        waiter: WaiterId,
        /// Where the deployment spec comes from (ignored in dev mode).
        spec: SpecSource,
    },
    /// The deployment spec was found.
    SpecResolved {
        /// The launch it was looked up for.
        generation: Generation,
    },
    /// The deployment spec lookup failed.
    SpecNotFound {
        /// The launch it was looked up for.
        generation: Generation,
        /// Why (for the error).
        reason: String,
    },
    /// The executor started the runtime.
    RuntimeStarted {
        /// The launch the runtime belongs to.
        generation: Generation,
    },
    /// The executor could not start the runtime.
    RuntimeStartFailed {
        /// The launch the runtime belongs to.
        generation: Generation,
        /// The executor's error.
        reason: String,
    },
    /// The runtime ended.
    RuntimeExited {
        /// The launch the runtime belongs to.
        generation: Generation,
        /// How it ended ("exit code 3", "panicked: ...").
        status: String,
    },
    /// The executor confirmed the runtime is stopped and cleaned up.
    RuntimeStopped {
        /// The launch the runtime belonged to.
        generation: Generation,
    },
    /// A stream sent REGISTER with this chaincode's name.
    Register {
        /// The new stream.
        stream: StreamId,
    },
    /// READY was written to the registered stream.
    ReadySent {
        /// The registered stream.
        stream: StreamId,
    },
    /// A stream closed.
    StreamClosed {
        /// Which one.
        stream: StreamId,
    },
    /// A caller wants the chaincode stopped.
    Stop {
        /// Who to complete once it is.
        waiter: WaiterId,
    },
}

/// The kind of an [`Input`], without its data (for errors and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum InputKind {
    Launch,
    SpecResolved,
    SpecNotFound,
    RuntimeStarted,
    RuntimeStartFailed,
    RuntimeExited,
    RuntimeStopped,
    Register,
    ReadySent,
    StreamClosed,
    Stop,
}

impl Input {
    /// This input's kind.
    pub fn kind(&self) -> InputKind {
        match self {
            Input::Launch { .. } => InputKind::Launch,
            Input::SpecResolved { .. } => InputKind::SpecResolved,
            Input::SpecNotFound { .. } => InputKind::SpecNotFound,
            Input::RuntimeStarted { .. } => InputKind::RuntimeStarted,
            Input::RuntimeStartFailed { .. } => InputKind::RuntimeStartFailed,
            Input::RuntimeExited { .. } => InputKind::RuntimeExited,
            Input::RuntimeStopped { .. } => InputKind::RuntimeStopped,
            Input::Register { .. } => InputKind::Register,
            Input::ReadySent { .. } => InputKind::ReadySent,
            Input::StreamClosed { .. } => InputKind::StreamClosed,
            Input::Stop { .. } => InputKind::Stop,
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Launch => "launch request",
            InputKind::SpecResolved => "spec resolved",
            InputKind::SpecNotFound => "spec not found",
            InputKind::RuntimeStarted => "runtime started",
            InputKind::RuntimeStartFailed => "runtime start failed",
            InputKind::RuntimeExited => "runtime exited",
            InputKind::RuntimeStopped => "runtime stopped",
            InputKind::Register => "register",
            InputKind::ReadySent => "ready sent",
            InputKind::StreamClosed => "stream closed",
            InputKind::Stop => "stop request",
        })
    }
}

/// What the driver must do. Drain with [`crate::Launch::poll_action`] after
/// every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Look up the deployment spec; answer with `SpecResolved`/`SpecNotFound`.
    ResolveSpec {
        /// Tag the answer with this.
        generation: Generation,
    },
    /// Ask the executor to start the runtime; answer with
    /// `RuntimeStarted`/`RuntimeStartFailed`, later `RuntimeExited`.
    StartRuntime {
        /// Tag the answers with this.
        generation: Generation,
    },
    /// Send REGISTERED on the stream.
    SendRegistered {
        /// The stream that registered.
        stream: StreamId,
        /// The launch it belongs to.
        generation: Generation,
    },
    /// Send READY on the stream, then feed `ReadySent` (or `StreamClosed` if
    /// the send failed).
    SendReady {
        /// The stream that registered.
        stream: StreamId,
        /// The launch it belongs to.
        generation: Generation,
    },
    /// Send a KEEPALIVE on the stream.
    SendKeepalive {
        /// The registered stream.
        stream: StreamId,
    },
    /// Refuse a REGISTER: send ERROR on that stream with the reason and close it.
    RejectRegister {
        /// The refused stream.
        stream: StreamId,
        /// Why.
        reason: RegisterRejection,
    },
    /// Close the registered stream: the launch is over.
    CloseStream {
        /// The stream.
        stream: StreamId,
    },
    /// Ask the executor to stop the runtime and remove what it created;
    /// answer with `RuntimeStopped` (also when it was already gone).
    StopRuntime {
        /// The launch the runtime belongs to.
        generation: Generation,
    },
    /// Complete these launch waiters with this result.
    CompleteLaunch {
        /// Who.
        waiters: Vec<WaiterId>,
        /// `Ok(generation)` when ready, otherwise why not.
        result: Result<Generation, LaunchError>,
    },
    /// Complete these stop waiters: the chaincode is idle.
    CompleteStop {
        /// Who.
        waiters: Vec<WaiterId>,
    },
}

/// Why a launch failed. Each message names the phase it failed in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The deployment spec could not be found.
    #[error("resolving: deployment spec not found: {reason}")]
    NotFound {
        /// The lookup's error.
        reason: String,
    },
    /// The executor could not start the runtime.
    #[error("starting: runtime could not be started: {reason}")]
    StartFailed {
        /// The executor's error.
        reason: String,
    },
    /// The startup deadline passed.
    #[error("{phase}: launch timed out after {timeout:?}")]
    Timeout {
        /// The phase the launch was in when the deadline passed.
        phase: Phase,
        /// The startup timeout.
        timeout: std::time::Duration,
    },
    /// The runtime ended (before ready: the launch failed; after: the entry went idle).
    #[error("{phase}: runtime exited: {status}")]
    Exited {
        /// The phase the launch was in.
        phase: Phase,
        /// How it ended.
        status: String,
    },
    /// The chaincode's stream closed.
    #[error("{phase}: chaincode stream closed")]
    StreamClosed {
        /// The phase the launch was in.
        phase: Phase,
    },
    /// Someone stopped the chaincode while it was launching.
    #[error("{phase}: launch stopped")]
    Stopped {
        /// The phase the launch was in.
        phase: Phase,
    },
}

/// Why a REGISTER was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterRejection {
    /// Nobody launched this chaincode (and the peer is not in dev mode).
    #[error("{phase}: no launch is waiting for this chaincode")]
    NotLaunching {
        /// The phase the chaincode is in.
        phase: Phase,
    },
    /// Another stream is already registered under this name.
    #[error("{phase}: chaincode is already registered")]
    Duplicate {
        /// The phase the chaincode is in.
        phase: Phase,
    },
    /// The chaincode is being stopped.
    #[error("{phase}: chaincode is stopping")]
    Stopping {
        /// The phase the chaincode is in.
        phase: Phase,
    },
}

/// An input the machine refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The input makes no sense in this phase.
    #[error("{phase}: {input} is not expected")]
    Unexpected {
        /// The current phase.
        phase: Phase,
        /// What came.
        input: InputKind,
    },
    /// The input belongs to an earlier launch (a late exit, a late reply).
    #[error("{phase}: {input} for {got} is stale (current {current})")]
    StaleGeneration {
        /// The current phase.
        phase: Phase,
        /// What came.
        input: InputKind,
        /// Its generation.
        got: Generation,
        /// The current generation.
        current: Generation,
    },
    /// The input names a stream that is not the registered one.
    #[error("{phase}: {input} for {stream} is not about the registered stream")]
    UnknownStream {
        /// The current phase.
        phase: Phase,
        /// What came.
        input: InputKind,
        /// The stream it named.
        stream: StreamId,
    },
    /// The waiter is already waiting.
    #[error("{phase}: waiter {waiter} is already waiting")]
    DuplicateWaiter {
        /// The current phase.
        phase: Phase,
        /// The waiter.
        waiter: WaiterId,
    },
}

/// The machine's timers. At most one of each is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The launch must be ready by then.
    Startup,
    /// Send the next KEEPALIVE then.
    Keepalive,
}

impl Timer {
    pub(crate) const COUNT: usize = 2;

    pub(crate) fn index(self) -> usize {
        match self {
            Timer::Startup => 0,
            Timer::Keepalive => 1,
        }
    }

    pub(crate) const ALL: [Timer; Self::COUNT] = [Timer::Startup, Timer::Keepalive];
}
