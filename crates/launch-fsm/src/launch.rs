//! [`Launch`]: the table's context, and the only way to drive it.

use std::collections::VecDeque;
use std::time::Instant;

use crate::table::{self, Output, Phase, Signal};
use crate::types::{
    Action, Config, Generation, Input, LaunchError, RegisterRejection, Rejected, SpecSource,
    StreamId, Timer, WaiterId,
};

/// The launch of one chaincode: the transition table plus the context it
/// cannot hold (waiters, generation, stream, deadlines, last failure).
///
/// See the crate docs for the drive loop.
#[derive(Debug, Clone)]
pub struct Launch {
    config: Config,
    phase: Phase,
    /// Latest time seen; time never goes backwards.
    now: Option<Instant>,
    generation: Generation,
    waiters: Vec<WaiterId>,
    /// Launches asked for while stopping: they start once the stop is done.
    queued: Vec<(WaiterId, SpecSource)>,
    queued_since: Option<Instant>,
    stop_waiters: Vec<WaiterId>,
    stream: Option<StreamId>,
    runtime_started: bool,
    launched_at: Option<Instant>,
    last_error: Option<LaunchError>,
    timers: [Option<Instant>; Timer::COUNT],
    actions: VecDeque<Action>,
}

impl Launch {
    /// A machine in [`Phase::Idle`].
    pub fn new(config: Config) -> Self {
        Self {
            config,
            phase: Phase::Idle,
            now: None,
            generation: Generation(0),
            waiters: Vec::new(),
            queued: Vec::new(),
            queued_since: None,
            stop_waiters: Vec::new(),
            stream: None,
            runtime_started: false,
            launched_at: None,
            last_error: None,
            timers: [None; Timer::COUNT],
            actions: VecDeque::new(),
        }
    }

    // ---- getters ----

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The generation of the current (or last) launch; 0 before the first.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The registered stream, if any.
    pub fn stream(&self) -> Option<StreamId> {
        self.stream
    }

    /// The callers waiting for the launch in progress.
    pub fn waiters(&self) -> &[WaiterId] {
        &self.waiters
    }

    /// How many launch requests wait for the stop in progress to finish.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Whether the executor acknowledged the start of the current runtime.
    pub fn runtime_started(&self) -> bool {
        self.runtime_started
    }

    /// When the current launch was first requested.
    pub fn launched_at(&self) -> Option<Instant> {
        self.launched_at
    }

    /// Why the last launch failed or the last ready runtime went away.
    pub fn last_error(&self) -> Option<&LaunchError> {
        self.last_error.as_ref()
    }

    /// The machine's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next timer to fire and when, for tracing.
    pub fn next_timeout(&self) -> Option<(Timer, Instant)> {
        Timer::ALL
            .iter()
            .filter_map(|&timer| self.timers[timer.index()].map(|at| (timer, at)))
            .min_by_key(|&(_, at)| at)
    }

    // ---- outputs ----

    /// The next action for the driver. Drain until `None` after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timeout().map(|(_, at)| at)
    }

    // ---- inputs ----

    /// Feeds one input. An illegal input is refused and changes nothing.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), Rejected> {
        let signal = self.check(&input)?;
        let (next, output) = table::step(self.phase, signal).ok_or(Rejected::Unexpected {
            phase: self.phase,
            input: input.kind(),
        })?;
        let now = self.advance(now);
        if let Input::Stop { waiter } = input {
            self.stop_waiters.push(waiter);
            let queued: Vec<WaiterId> = self.queued.drain(..).map(|(w, _)| w).collect();
            self.queued_since = None;
            self.complete(queued, Err(LaunchError::Stopped { phase: self.phase }));
        }
        self.apply(now, next, output, &input, signal);
        Ok(())
    }

    /// Fires every timer that is due at `now`. A spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        for timer in Timer::ALL {
            let Some(at) = self.timers[timer.index()] else {
                continue;
            };
            if at > now {
                continue;
            }
            self.timers[timer.index()] = None;
            let signal = match timer {
                Timer::Startup => Signal::StartupTimeout,
                Timer::Keepalive => Signal::KeepaliveDue,
            };
            // Timers are disarmed whenever their phase ends, so the table
            // always has a cell for them; a missing one is simply ignored.
            if let Some((next, output)) = table::step(self.phase, signal) {
                self.apply_timer(now, next, output, signal);
            }
        }
    }

    // ---- internals ----

    fn advance(&mut self, now: Instant) -> Instant {
        let now = match self.now {
            Some(seen) if seen > now => seen,
            _ => now,
        };
        self.now = Some(now);
        now
    }

    /// The data-dependent checks the table cannot make, then the signal.
    fn check(&self, input: &Input) -> Result<Signal, Rejected> {
        let phase = self.phase;
        let generation_check = |got: Generation| {
            if got == self.generation {
                Ok(())
            } else {
                Err(Rejected::StaleGeneration {
                    phase,
                    input: input.kind(),
                    got,
                    current: self.generation,
                })
            }
        };
        let stream_check = |stream: StreamId| {
            if self.stream == Some(stream) {
                Ok(())
            } else {
                Err(Rejected::UnknownStream {
                    phase,
                    input: input.kind(),
                    stream,
                })
            }
        };
        let waiter_check = |waiter: WaiterId| {
            let waiting = self.waiters.contains(&waiter)
                || self.stop_waiters.contains(&waiter)
                || self.queued.iter().any(|(w, _)| *w == waiter);
            if waiting {
                Err(Rejected::DuplicateWaiter { phase, waiter })
            } else {
                Ok(())
            }
        };
        Ok(match *input {
            Input::Launch { waiter, spec } => {
                waiter_check(waiter)?;
                launch_signal(self.config.dev_mode, spec)
            }
            Input::SpecResolved { generation } => {
                generation_check(generation)?;
                Signal::SpecResolved
            }
            Input::SpecNotFound { generation, .. } => {
                generation_check(generation)?;
                Signal::SpecNotFound
            }
            Input::RuntimeStarted { generation } => {
                generation_check(generation)?;
                Signal::RuntimeStarted
            }
            Input::RuntimeStartFailed { generation, .. } => {
                generation_check(generation)?;
                Signal::RuntimeStartFailed
            }
            Input::RuntimeExited { generation, .. } => {
                generation_check(generation)?;
                Signal::RuntimeExited
            }
            Input::RuntimeStopped { generation } => {
                generation_check(generation)?;
                Signal::RuntimeStopped
            }
            Input::Register { .. } if self.config.dev_mode => Signal::RegisterDev,
            Input::Register { .. } => Signal::Register,
            Input::ReadySent { stream } => {
                stream_check(stream)?;
                Signal::ReadySent
            }
            Input::StreamClosed { stream } => {
                stream_check(stream)?;
                Signal::StreamClosed
            }
            Input::Stop { waiter } => {
                waiter_check(waiter)?;
                Signal::Stop
            }
        })
    }

    fn apply(
        &mut self,
        now: Instant,
        next: Phase,
        output: Option<Output>,
        input: &Input,
        signal: Signal,
    ) {
        let before = self.phase;
        self.phase = next;
        let Some(output) = output else { return };
        match output {
            Output::BeginResolve | Output::BeginStart | Output::BeginAwait => {
                let Input::Launch { waiter, .. } = *input else {
                    return;
                };
                self.begin(now);
                self.waiters.push(waiter);
                let generation = self.generation;
                match output {
                    Output::BeginResolve => {
                        self.actions.push_back(Action::ResolveSpec { generation })
                    }
                    Output::BeginStart => {
                        self.actions.push_back(Action::StartRuntime { generation })
                    }
                    _ => {}
                }
            }
            Output::BeginRegistered => {
                let Input::Register { stream } = *input else {
                    return;
                };
                self.begin(now);
                self.accept(stream);
            }
            Output::Join => {
                if let Input::Launch { waiter, .. } = *input {
                    self.waiters.push(waiter);
                }
            }
            Output::JoinReady => {
                if let Input::Launch { waiter, .. } = *input {
                    self.complete(vec![waiter], Ok(self.generation));
                }
            }
            Output::Queue => {
                if let Input::Launch { waiter, spec } = *input {
                    self.queued.push((waiter, spec));
                    self.queued_since.get_or_insert(now);
                }
            }
            Output::StartRuntime => {
                let generation = self.generation;
                self.actions.push_back(Action::StartRuntime { generation });
            }
            Output::NoteStarted => self.runtime_started = true,
            Output::Accept => {
                if let Input::Register { stream } = *input {
                    self.accept(stream);
                }
            }
            Output::Reject => {
                if let Input::Register { stream } = *input {
                    let reason = match before {
                        Phase::Idle | Phase::Resolving => {
                            RegisterRejection::NotLaunching { phase: before }
                        }
                        Phase::Stopping => RegisterRejection::Stopping { phase: before },
                        _ => RegisterRejection::Duplicate { phase: before },
                    };
                    self.actions
                        .push_back(Action::RejectRegister { stream, reason });
                }
            }
            Output::Complete => {
                self.timers[Timer::Startup.index()] = None;
                self.timers[Timer::Keepalive.index()] = self.next_keepalive(now);
                let waiters = std::mem::take(&mut self.waiters);
                self.complete(waiters, Ok(self.generation));
            }
            Output::Fail | Output::FailAndStop | Output::Cleanup => {
                let error = self.failure(before, input, signal);
                self.fail(error, output != Output::Fail);
                if next == Phase::Idle {
                    self.enter_idle(now);
                }
            }
            Output::Finish => self.enter_idle(now),
            Output::Keepalive => {}
            Output::Ignore => {}
        }
    }

    fn apply_timer(&mut self, now: Instant, next: Phase, output: Option<Output>, signal: Signal) {
        let before = self.phase;
        self.phase = next;
        match output {
            Some(Output::Keepalive) => {
                if let Some(stream) = self.stream {
                    self.actions.push_back(Action::SendKeepalive { stream });
                }
                self.timers[Timer::Keepalive.index()] = self.next_keepalive(now);
            }
            Some(output @ (Output::Fail | Output::FailAndStop)) => {
                debug_assert_eq!(signal, Signal::StartupTimeout);
                let error = LaunchError::Timeout {
                    phase: before,
                    timeout: self.config.startup_timeout,
                };
                self.fail(error, output == Output::FailAndStop);
                if next == Phase::Idle {
                    self.enter_idle(now);
                }
            }
            _ => {}
        }
    }

    fn begin(&mut self, now: Instant) {
        self.generation = Generation(self.generation.0 + 1);
        self.runtime_started = false;
        // A launch queued behind a stop keeps the deadline of its first request.
        let since = self.queued_since.take().unwrap_or(now).min(now);
        self.launched_at = Some(since);
        // A deadline past the end of `Instant` (a huge timeout) never fires.
        self.timers[Timer::Startup.index()] = since.checked_add(self.config.startup_timeout);
    }

    /// When the next KEEPALIVE is due. A zero interval means "never", as in
    /// Fabric, rather than a timer that is always due.
    fn next_keepalive(&self, now: Instant) -> Option<Instant> {
        let every = self.config.keepalive.filter(|every| !every.is_zero())?;
        now.checked_add(every)
    }

    fn accept(&mut self, stream: StreamId) {
        self.stream = Some(stream);
        let generation = self.generation;
        self.actions
            .push_back(Action::SendRegistered { stream, generation });
        self.actions
            .push_back(Action::SendReady { stream, generation });
    }

    /// The error a failing input means in the phase it arrived in.
    fn failure(&self, phase: Phase, input: &Input, signal: Signal) -> LaunchError {
        match input {
            Input::SpecNotFound { reason, .. } => LaunchError::NotFound {
                reason: reason.clone(),
            },
            Input::RuntimeStartFailed { reason, .. } => LaunchError::StartFailed {
                reason: reason.clone(),
            },
            Input::RuntimeExited { status, .. } => LaunchError::Exited {
                phase,
                status: status.clone(),
            },
            Input::StreamClosed { .. } => LaunchError::StreamClosed { phase },
            _ if signal == Signal::StartupTimeout => LaunchError::Timeout {
                phase,
                timeout: self.config.startup_timeout,
            },
            _ => LaunchError::Stopped { phase },
        }
    }

    /// Fails every waiter, closes the stream, and stops the runtime if asked.
    fn fail(&mut self, error: LaunchError, stop_runtime: bool) {
        self.timers = [None; Timer::COUNT];
        if !matches!(error, LaunchError::Stopped { .. }) {
            self.last_error = Some(error.clone());
        }
        let waiters = std::mem::take(&mut self.waiters);
        self.complete(waiters, Err(error));
        if let Some(stream) = self.stream.take() {
            self.actions.push_back(Action::CloseStream { stream });
        }
        if stop_runtime {
            let generation = self.generation;
            self.actions.push_back(Action::StopRuntime { generation });
        }
    }

    fn enter_idle(&mut self, now: Instant) {
        self.timers = [None; Timer::COUNT];
        self.stream = None;
        self.runtime_started = false;
        if !self.stop_waiters.is_empty() {
            let waiters = std::mem::take(&mut self.stop_waiters);
            self.actions.push_back(Action::CompleteStop { waiters });
        }
        // Launches that arrived while stopping start a fresh generation now.
        let mut queued = std::mem::take(&mut self.queued).into_iter();
        if let Some((first, spec)) = queued.next() {
            let signal = launch_signal(self.config.dev_mode, spec);
            let input = Input::Launch {
                waiter: first,
                spec,
            };
            if let Some((next, output)) = table::step(self.phase, signal) {
                self.apply(now, next, output, &input, signal);
            }
            self.waiters.extend(queued.map(|(w, _)| w));
        }
    }

    fn complete(&mut self, waiters: Vec<WaiterId>, result: Result<Generation, LaunchError>) {
        if !waiters.is_empty() {
            self.actions
                .push_back(Action::CompleteLaunch { waiters, result });
        }
    }
}

fn launch_signal(dev_mode: bool, spec: SpecSource) -> Signal {
    match (dev_mode, spec) {
        (true, _) => Signal::LaunchDev,
        (false, SpecSource::Lookup) => Signal::LaunchLookup,
        (false, SpecSource::Provided) => Signal::LaunchWithSpec,
    }
}
