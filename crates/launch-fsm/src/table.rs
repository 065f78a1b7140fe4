//! The transition table: every legal `Phase × Signal → Phase [Output]`, as
//! plain data. Anything not listed here is illegal and is rejected by
//! [`crate::Launch`] without changing anything.
//!
//! Signals are what the [`crate::Launch`] context turns an [`crate::Input`]
//! into once the data-dependent checks (generation, stream id, dev mode) are
//! done; outputs are what it turns into [`crate::Action`]s.

use std::fmt;

/// Where one chaincode's launch is. Each phase is named for what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Nothing runs; waiting for a launch request.
    Idle,
    /// Waiting for the deployment spec to be looked up.
    Resolving,
    /// Waiting for the executor to start the runtime.
    Starting,
    /// Runtime started; waiting for its REGISTER.
    AwaitingRegister,
    /// REGISTERED sent; waiting for READY to be sent.
    Registered,
    /// READY sent; serving transactions until the runtime stops or exits.
    Ready,
    /// Waiting for the executor to confirm the runtime is stopped.
    Stopping,
}

/// A table input: an [`crate::Input`] after the context's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// A launch request that needs the deployment spec looked up.
    LaunchLookup,
    /// A launch request that carries its deployment spec.
    LaunchWithSpec,
    /// A launch request in dev mode (the user runs the chaincode).
    LaunchDev,
    /// The deployment spec was found.
    SpecResolved,
    /// The deployment spec lookup failed.
    SpecNotFound,
    /// The executor started the runtime.
    RuntimeStarted,
    /// The executor could not start the runtime.
    RuntimeStartFailed,
    /// The runtime exited.
    RuntimeExited,
    /// A REGISTER arrived for this chaincode (net mode).
    Register,
    /// A REGISTER arrived for this chaincode in dev mode, where unsolicited
    /// registrations are accepted.
    RegisterDev,
    /// READY was sent on the registered stream.
    ReadySent,
    /// The registered stream closed.
    StreamClosed,
    /// Someone asked for the chaincode to be stopped.
    Stop,
    /// The executor confirmed the runtime is stopped.
    RuntimeStopped,
    /// The startup deadline passed.
    StartupTimeout,
    /// Time to send a KEEPALIVE.
    KeepaliveDue,
}

/// A table output: what the context must do on that transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Output {
    /// New generation; arm the deadline; look up the spec.
    BeginResolve,
    /// New generation; arm the deadline; start the runtime.
    BeginStart,
    /// New generation; arm the deadline; wait for the user's chaincode.
    BeginAwait,
    /// New generation from an unsolicited dev-mode REGISTER: accept it.
    BeginRegistered,
    /// Add the waiter to the launch in progress.
    Join,
    /// Complete the waiter at once: the chaincode is ready.
    JoinReady,
    /// Keep the waiter for the launch that follows the stop in progress.
    Queue,
    /// Ask the executor to start the runtime.
    StartRuntime,
    /// Note that the executor acknowledged the start.
    NoteStarted,
    /// Accept the REGISTER: send REGISTERED, then READY.
    Accept,
    /// Refuse the REGISTER; the live stream, if any, is untouched.
    Reject,
    /// READY went out: complete every waiter with success.
    Complete,
    /// Fail every waiter; nothing was started, so nothing to stop.
    Fail,
    /// Fail every waiter and stop what may have been started.
    FailAndStop,
    /// The ready runtime went away: stop and clean up what is left.
    Cleanup,
    /// Back to idle: complete stop requests and start any queued launch.
    Finish,
    /// Send a KEEPALIVE and re-arm its timer.
    Keepalive,
    /// A late or redundant event: nothing to do.
    Ignore,
}

pub use generated::launch_table;

// rust-fsm generates an undocumented struct and alias; the table itself is
// documented on `launch_table`.
mod generated {
    #![allow(missing_docs)]
    use rust_fsm::state_machine;

    state_machine! {
        #[state_machine(input(crate::table::Signal), state(crate::table::Phase), output(crate::table::Output))]
        /// The launch transition table.
        pub launch_table(Idle)

        Idle => {
            LaunchLookup => Resolving [BeginResolve],
            LaunchWithSpec => Starting [BeginStart],
            LaunchDev => AwaitingRegister [BeginAwait],
            Register => Idle [Reject],
            RegisterDev => Registered [BeginRegistered],
            Stop => Idle [Finish],
        },
        Resolving => {
            LaunchLookup => Resolving [Join],
            LaunchWithSpec => Resolving [Join],
            LaunchDev => Resolving [Join],
            SpecResolved => Starting [StartRuntime],
            SpecNotFound => Idle [Fail],
            Register => Resolving [Reject],
            RegisterDev => Resolving [Reject],
            Stop => Idle [Fail],
            StartupTimeout => Idle [Fail],
        },
        Starting => {
            LaunchLookup => Starting [Join],
            LaunchWithSpec => Starting [Join],
            LaunchDev => Starting [Join],
            RuntimeStarted => AwaitingRegister [NoteStarted],
            RuntimeStartFailed => Stopping [FailAndStop],
            RuntimeExited => Stopping [FailAndStop],
            Register => Registered [Accept],
            RegisterDev => Registered [Accept],
            Stop => Stopping [FailAndStop],
            StartupTimeout => Stopping [FailAndStop],
        },
        AwaitingRegister => {
            LaunchLookup => AwaitingRegister [Join],
            LaunchWithSpec => AwaitingRegister [Join],
            LaunchDev => AwaitingRegister [Join],
            RuntimeExited => Stopping [FailAndStop],
            Register => Registered [Accept],
            RegisterDev => Registered [Accept],
            Stop => Stopping [FailAndStop],
            StartupTimeout => Stopping [FailAndStop],
        },
        Registered => {
            LaunchLookup => Registered [Join],
            LaunchWithSpec => Registered [Join],
            LaunchDev => Registered [Join],
            RuntimeStarted => Registered [NoteStarted],
            RuntimeStartFailed => Stopping [FailAndStop],
            RuntimeExited => Stopping [FailAndStop],
            Register => Registered [Reject],
            RegisterDev => Registered [Reject],
            ReadySent => Ready [Complete],
            StreamClosed => Stopping [FailAndStop],
            Stop => Stopping [FailAndStop],
            StartupTimeout => Stopping [FailAndStop],
        },
        Ready => {
            LaunchLookup => Ready [JoinReady],
            LaunchWithSpec => Ready [JoinReady],
            LaunchDev => Ready [JoinReady],
            RuntimeStarted => Ready [NoteStarted],
            RuntimeStartFailed => Stopping [Cleanup],
            RuntimeExited => Stopping [Cleanup],
            Register => Ready [Reject],
            RegisterDev => Ready [Reject],
            StreamClosed => Stopping [Cleanup],
            Stop => Stopping [FailAndStop],
            KeepaliveDue => Ready [Keepalive],
        },
        Stopping => {
            LaunchLookup => Stopping [Queue],
            LaunchWithSpec => Stopping [Queue],
            LaunchDev => Stopping [Queue],
            RuntimeStarted => Stopping [Ignore],
            RuntimeStartFailed => Stopping [Ignore],
            RuntimeExited => Stopping [Ignore],
            Register => Stopping [Reject],
            RegisterDev => Stopping [Reject],
            StreamClosed => Stopping [Ignore],
            Stop => Stopping [Ignore],
            RuntimeStopped => Idle [Finish],
        },
    }
}

impl Phase {
    /// Every phase, in the order of a launch.
    pub const ALL: [Phase; 7] = [
        Phase::Idle,
        Phase::Resolving,
        Phase::Starting,
        Phase::AwaitingRegister,
        Phase::Registered,
        Phase::Ready,
        Phase::Stopping,
    ];

    /// The phase's name as used in messages ("awaiting register").
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Resolving => "resolving",
            Phase::Starting => "starting",
            Phase::AwaitingRegister => "awaiting register",
            Phase::Registered => "registered",
            Phase::Ready => "ready",
            Phase::Stopping => "stopping",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 16] = [
        Signal::LaunchLookup,
        Signal::LaunchWithSpec,
        Signal::LaunchDev,
        Signal::SpecResolved,
        Signal::SpecNotFound,
        Signal::RuntimeStarted,
        Signal::RuntimeStartFailed,
        Signal::RuntimeExited,
        Signal::Register,
        Signal::RegisterDev,
        Signal::ReadySent,
        Signal::StreamClosed,
        Signal::Stop,
        Signal::RuntimeStopped,
        Signal::StartupTimeout,
        Signal::KeepaliveDue,
    ];
}

/// Looks up one cell of the table: the next phase and the output, or `None`
/// when the signal is illegal in `phase`.
pub fn step(phase: Phase, signal: Signal) -> Option<(Phase, Option<Output>)> {
    use rust_fsm::StateMachineImpl;
    let next = launch_table::Impl::transition(&phase, &signal)?;
    Some((next, launch_table::Impl::output(&phase, &signal)))
}

/// Renders the table as a Mermaid `stateDiagram-v2`, one arrow per
/// `(from, to, output)`, labelled `Signal, Signal / Output`. The order is that
/// of [`Phase::ALL`] then [`Signal::ALL`], so the text is deterministic; it is
/// what `docs/fsm.md` shows, and a test keeps the two equal.
pub fn mermaid_diagram() -> String {
    use std::fmt::Write as _;

    let mut out = String::from("stateDiagram-v2\n    [*] --> Idle\n");
    for from in Phase::ALL {
        // (to, output, signals), in the order each arrow first appears.
        let mut arrows: Vec<(Phase, Option<Output>, Vec<Signal>)> = Vec::new();
        for signal in Signal::ALL {
            let Some((to, output)) = step(from, signal) else {
                continue;
            };
            match arrows.iter_mut().find(|(t, o, _)| *t == to && *o == output) {
                Some((_, _, signals)) => signals.push(signal),
                None => arrows.push((to, output, vec![signal])),
            }
        }
        for (to, output, signals) in arrows {
            let signals: Vec<String> = signals.iter().map(|s| format!("{s:?}")).collect();
            let _ = write!(out, "    {from:?} --> {to:?} : {}", signals.join(", "));
            if let Some(output) = output {
                let _ = write!(out, " / {output:?}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The ALL lists must stay complete: adding a variant without listing it
    // would silently drop it from the generated diagram.
    #[test]
    fn all_lists_are_complete() {
        for phase in Phase::ALL {
            match phase {
                Phase::Idle
                | Phase::Resolving
                | Phase::Starting
                | Phase::AwaitingRegister
                | Phase::Registered
                | Phase::Ready
                | Phase::Stopping => {}
            }
        }
        let distinct: std::collections::BTreeSet<_> = Signal::ALL.iter().collect();
        assert_eq!(distinct.len(), Signal::ALL.len());
        let distinct: std::collections::BTreeSet<_> = Phase::ALL.iter().collect();
        assert_eq!(distinct.len(), Phase::ALL.len());
    }

    #[test]
    fn diagram_lists_every_cell() {
        let diagram = mermaid_diagram();
        assert!(diagram.starts_with("stateDiagram-v2\n"));
        assert!(diagram.contains("    Idle --> Resolving : LaunchLookup / BeginResolve\n"));
        assert!(diagram.contains(
            "    Resolving --> Resolving : LaunchLookup, LaunchWithSpec, LaunchDev / Join\n"
        ));
        let cells = Phase::ALL
            .iter()
            .flat_map(|&p| Signal::ALL.iter().filter_map(move |&s| step(p, s)))
            .count();
        let labelled: usize = diagram
            .lines()
            .filter_map(|line| line.split_once(" : "))
            .map(|(_, label)| label.split(" / ").next().unwrap_or("").split(", ").count())
            .sum();
        assert_eq!(labelled, cells);
    }

    #[test]
    fn every_phase_accepts_stop() {
        for phase in Phase::ALL {
            assert!(
                step(phase, Signal::Stop).is_some(),
                "{phase} must accept stop"
            );
        }
    }
}
