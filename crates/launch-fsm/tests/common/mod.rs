//! A deterministic simulation harness: a virtual clock, a feed/advance API
//! that drives a [`Launch`] exactly as a driver would, and a transcript of
//! every step so that tests compare whole runs.
#![allow(dead_code)] // each test binary uses a different part of it

use std::time::{Duration, Instant};

use launch_fsm::{
    Action, Config, Generation, Input, Launch, Phase, Rejected, SpecSource, StreamId, WaiterId,
};

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An input was fed.
    Input(Input),
    /// `handle_timeout` was called at this offset from the clock's base.
    Timeout(Duration),
}

/// One recorded step: the event, whether it was accepted, the phase after it
/// and every action it produced (drained through `poll_action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub event: Event,
    pub outcome: Result<(), Rejected>,
    pub phase: Phase,
    pub actions: Vec<Action>,
}

/// A machine, a virtual clock and the transcript of everything fed to it.
#[derive(Debug, Clone)]
pub struct Sim {
    pub launch: Launch,
    base: Instant,
    offset: Duration,
    transcript: Vec<Step>,
}

/// Bounds `advance`: no test needs more timer firings than this in one call.
const MAX_FIRINGS_PER_ADVANCE: usize = 10_000;

impl Sim {
    pub fn new(config: Config) -> Self {
        Self::with_base(config, clock_base())
    }

    /// Two sims with the same base and the same inputs must agree exactly.
    pub fn with_base(config: Config, base: Instant) -> Self {
        Self {
            launch: Launch::new(config),
            base,
            offset: Duration::ZERO,
            transcript: Vec::new(),
        }
    }

    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Time since the clock's base.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    pub fn phase(&self) -> Phase {
        self.launch.phase()
    }

    /// Feeds an input that must be accepted; returns its actions.
    #[track_caller]
    pub fn feed(&mut self, input: Input) -> Vec<Action> {
        match self.try_feed(input.clone()) {
            Ok(actions) => actions,
            Err(rejected) => panic!("{input:?} rejected in {}: {rejected}", self.launch.phase()),
        }
    }

    /// Feeds an input; a rejection is recorded in the transcript too.
    pub fn try_feed(&mut self, input: Input) -> Result<Vec<Action>, Rejected> {
        let outcome = self.launch.handle(self.now(), input.clone());
        let actions = self.drain();
        self.transcript.push(Step {
            event: Event::Input(input),
            outcome: outcome.clone(),
            phase: self.launch.phase(),
            actions: actions.clone(),
        });
        outcome.map(|()| actions)
    }

    /// Moves the clock forward by `by`, firing every timer that falls due on
    /// the way at its own deadline (one transcript step per firing).
    pub fn advance(&mut self, by: Duration) -> Vec<Action> {
        let target = self.offset + by;
        let mut all = Vec::new();
        for _ in 0..MAX_FIRINGS_PER_ADVANCE {
            let Some(at) = self.launch.poll_timeout() else {
                break;
            };
            let at = at.saturating_duration_since(self.base).max(self.offset);
            if at > target {
                break;
            }
            self.offset = at;
            all.extend(self.timeout());
        }
        self.offset = target;
        all
    }

    /// Jumps the clock to the next deadline and fires it; `None` when no timer
    /// is armed.
    pub fn fire_next_timeout(&mut self) -> Option<Vec<Action>> {
        let at = self.launch.poll_timeout()?;
        self.offset = at.saturating_duration_since(self.base).max(self.offset);
        Some(self.timeout())
    }

    /// Calls `handle_timeout` at the current time, due or not.
    pub fn timeout(&mut self) -> Vec<Action> {
        self.launch.handle_timeout(self.now());
        let actions = self.drain();
        self.transcript.push(Step {
            event: Event::Timeout(self.offset),
            outcome: Ok(()),
            phase: self.launch.phase(),
            actions: actions.clone(),
        });
        actions
    }

    fn drain(&mut self) -> Vec<Action> {
        // Bounded: an input produces a handful of actions.
        std::iter::from_fn(|| self.launch.poll_action())
            .take(1_000)
            .collect()
    }

    pub fn transcript(&self) -> &[Step] {
        &self.transcript
    }

    /// The phase after each step.
    pub fn phases(&self) -> Vec<Phase> {
        self.transcript.iter().map(|s| s.phase).collect()
    }

    /// The actions of each step.
    pub fn actions(&self) -> Vec<Vec<Action>> {
        self.transcript.iter().map(|s| s.actions.clone()).collect()
    }
}

/// Where virtual time starts. Only the base comes from the real clock (an
/// `Instant` cannot be built otherwise); the machine is handed times derived
/// from it and never reads the clock itself.
#[allow(clippy::disallowed_methods)]
pub fn clock_base() -> Instant {
    Instant::now()
}

// ---- short constructors for readable transcripts ----

pub fn g(n: u64) -> Generation {
    Generation(n)
}

pub fn s(n: u64) -> StreamId {
    StreamId(n)
}

pub fn w(n: u64) -> WaiterId {
    WaiterId(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn launch(waiter: u64) -> Input {
    Input::Launch {
        waiter: w(waiter),
        spec: SpecSource::Lookup,
    }
}

pub fn launch_with_spec(waiter: u64) -> Input {
    Input::Launch {
        waiter: w(waiter),
        spec: SpecSource::Provided,
    }
}

pub fn stop(waiter: u64) -> Input {
    Input::Stop { waiter: w(waiter) }
}

pub fn resolved(generation: u64) -> Input {
    Input::SpecResolved {
        generation: g(generation),
    }
}

pub fn not_found(generation: u64, reason: &str) -> Input {
    Input::SpecNotFound {
        generation: g(generation),
        reason: reason.to_owned(),
    }
}

pub fn started(generation: u64) -> Input {
    Input::RuntimeStarted {
        generation: g(generation),
    }
}

pub fn start_failed(generation: u64, reason: &str) -> Input {
    Input::RuntimeStartFailed {
        generation: g(generation),
        reason: reason.to_owned(),
    }
}

pub fn exited(generation: u64, status: &str) -> Input {
    Input::RuntimeExited {
        generation: g(generation),
        status: status.to_owned(),
    }
}

pub fn stopped(generation: u64) -> Input {
    Input::RuntimeStopped {
        generation: g(generation),
    }
}

pub fn register(stream: u64) -> Input {
    Input::Register { stream: s(stream) }
}

pub fn ready_sent(stream: u64) -> Input {
    Input::ReadySent { stream: s(stream) }
}

pub fn closed(stream: u64) -> Input {
    Input::StreamClosed { stream: s(stream) }
}

/// An accepted step, for expected transcripts.
pub fn ok(input: Input, phase: Phase, actions: Vec<Action>) -> Step {
    Step {
        event: Event::Input(input),
        outcome: Ok(()),
        phase,
        actions,
    }
}

/// A refused step: nothing happened.
pub fn refused(input: Input, rejected: Rejected, phase: Phase) -> Step {
    Step {
        event: Event::Input(input),
        outcome: Err(rejected),
        phase,
        actions: vec![],
    }
}

/// A timer step at `at` since the base.
pub fn timeout_at(at: Duration, phase: Phase, actions: Vec<Action>) -> Step {
    Step {
        event: Event::Timeout(at),
        outcome: Ok(()),
        phase,
        actions,
    }
}
