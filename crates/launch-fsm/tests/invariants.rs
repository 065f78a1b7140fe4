//! Property tests: arbitrary sequences of inputs (legal and illegal) and time
//! steps, with every invariant of the architecture page checked after each
//! step, plus determinism (the same run twice gives the same transcript).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Event, Sim, Step};
use launch_fsm::{
    Action, Config, Generation, Input, Phase, Rejected, SpecSource, StreamId, WaiterId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

/// How many sequences the main test generates (the CI floor).
const CASES: u32 = 10_000;

/// A generation near the current one (so that many are valid), or any.
#[derive(Debug, Clone, Copy)]
enum GenSel {
    Current,
    Near(i8),
    Any(u64),
}

/// A stream: the registered one, a new one, the last one seen, or any.
#[derive(Debug, Clone, Copy)]
enum StreamSel {
    Current,
    Fresh,
    Last,
    Any(u64),
}

/// A waiter: a new one, one still waiting (a duplicate), or any small id.
#[derive(Debug, Clone, Copy)]
enum WaiterSel {
    Fresh,
    Pending(usize),
    Any(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Launch(WaiterSel, SpecSource),
    Stop(WaiterSel),
    SpecResolved(GenSel),
    SpecNotFound(GenSel),
    RuntimeStarted(GenSel),
    RuntimeStartFailed(GenSel),
    RuntimeExited(GenSel),
    RuntimeStopped(GenSel),
    Register(StreamSel),
    ReadySent(StreamSel),
    StreamClosed(StreamSel),
    /// Move the clock forward this many milliseconds, firing due timers.
    Advance(u64),
    /// Jump to the next deadline and fire it.
    FireNext,
    /// Call `handle_timeout` now, due or not.
    Spurious,
}

fn gen_sel() -> impl Strategy<Value = GenSel> {
    prop_oneof![
        6 => Just(GenSel::Current),
        2 => (-2i8..=2).prop_map(GenSel::Near),
        1 => any::<u64>().prop_map(GenSel::Any),
    ]
}

fn stream_sel() -> impl Strategy<Value = StreamSel> {
    prop_oneof![
        5 => Just(StreamSel::Current),
        3 => Just(StreamSel::Fresh),
        2 => Just(StreamSel::Last),
        1 => (0u64..4).prop_map(StreamSel::Any),
    ]
}

fn waiter_sel() -> impl Strategy<Value = WaiterSel> {
    prop_oneof![
        6 => Just(WaiterSel::Fresh),
        1 => any::<usize>().prop_map(WaiterSel::Pending),
        1 => (0u64..4).prop_map(WaiterSel::Any),
    ]
}

fn spec() -> impl Strategy<Value = SpecSource> {
    prop_oneof![Just(SpecSource::Lookup), Just(SpecSource::Provided)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (waiter_sel(), spec()).prop_map(|(w, s)| Op::Launch(w, s)),
        2 => waiter_sel().prop_map(Op::Stop),
        3 => gen_sel().prop_map(Op::SpecResolved),
        1 => gen_sel().prop_map(Op::SpecNotFound),
        3 => gen_sel().prop_map(Op::RuntimeStarted),
        1 => gen_sel().prop_map(Op::RuntimeStartFailed),
        1 => gen_sel().prop_map(Op::RuntimeExited),
        3 => gen_sel().prop_map(Op::RuntimeStopped),
        3 => stream_sel().prop_map(Op::Register),
        3 => stream_sel().prop_map(Op::ReadySent),
        1 => stream_sel().prop_map(Op::StreamClosed),
        2 => (0u64..120_000).prop_map(Op::Advance),
        1 => Just(Op::FireNext),
        1 => Just(Op::Spurious),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (any::<bool>(), prop::option::of(1u64..60), 1u64..600).prop_map(
        |(dev_mode, keepalive, startup)| Config {
            startup_timeout: Duration::from_secs(startup),
            dev_mode,
            keepalive: keepalive.map(Duration::from_secs),
        },
    )
}

/// What the checker remembers about the run so far.
#[derive(Debug, Default)]
struct Checker {
    dev_mode: bool,
    next_waiter: u64,
    next_stream: u64,
    last_stream: Option<StreamId>,
    pending_launch: BTreeSet<WaiterId>,
    pending_stop: BTreeSet<WaiterId>,
    /// StartRuntime emitted and no RuntimeStopped fed back since.
    live: Option<Generation>,
    /// StopRuntime emitted for the live runtime (or, in dev mode, at all).
    stop_asked: bool,
    registered_streams: BTreeSet<StreamId>,
    ready_generations: BTreeSet<Generation>,
    completions: usize,
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

impl Checker {
    fn new(config: &Config) -> Self {
        Self {
            dev_mode: config.dev_mode,
            next_waiter: 100,
            next_stream: 100,
            ..Self::default()
        }
    }

    fn generation(sel: GenSel, sim: &Sim) -> Generation {
        let current = sim.launch.generation().0;
        Generation(match sel {
            GenSel::Current => current,
            GenSel::Near(d) => current.saturating_add_signed(i64::from(d)),
            GenSel::Any(n) => n,
        })
    }

    fn stream(&mut self, sel: StreamSel, sim: &Sim) -> StreamId {
        let stream = match (sel, sim.launch.stream(), self.last_stream) {
            (StreamSel::Current, Some(current), _) => current,
            (StreamSel::Last, _, Some(last)) => last,
            (StreamSel::Any(n), _, _) => StreamId(n),
            _ => {
                self.next_stream += 1;
                StreamId(self.next_stream)
            }
        };
        self.last_stream = Some(stream);
        stream
    }

    fn waiter(&mut self, sel: WaiterSel) -> WaiterId {
        let pending: Vec<_> = self
            .pending_launch
            .iter()
            .chain(&self.pending_stop)
            .copied()
            .collect();
        match sel {
            WaiterSel::Pending(i) if !pending.is_empty() => pending[i % pending.len()],
            WaiterSel::Any(n) => WaiterId(n),
            _ => {
                self.next_waiter += 1;
                WaiterId(self.next_waiter)
            }
        }
    }

    fn input(&mut self, op: &Op, sim: &Sim) -> Option<Input> {
        let g = |sel| Self::generation(sel, sim);
        Some(match *op {
            Op::Launch(sel, spec) => Input::Launch {
                waiter: self.waiter(sel),
                spec,
            },
            Op::Stop(sel) => Input::Stop {
                waiter: self.waiter(sel),
            },
            Op::SpecResolved(sel) => Input::SpecResolved { generation: g(sel) },
            Op::SpecNotFound(sel) => Input::SpecNotFound {
                generation: g(sel),
                reason: "not found".into(),
            },
            Op::RuntimeStarted(sel) => Input::RuntimeStarted { generation: g(sel) },
            Op::RuntimeStartFailed(sel) => Input::RuntimeStartFailed {
                generation: g(sel),
                reason: "start failed".into(),
            },
            Op::RuntimeExited(sel) => Input::RuntimeExited {
                generation: g(sel),
                status: "exit code 1".into(),
            },
            Op::RuntimeStopped(sel) => Input::RuntimeStopped { generation: g(sel) },
            Op::Register(sel) => Input::Register {
                stream: self.stream(sel, sim),
            },
            Op::ReadySent(sel) => Input::ReadySent {
                stream: self.stream(sel, sim),
            },
            Op::StreamClosed(sel) => Input::StreamClosed {
                stream: self.stream(sel, sim),
            },
            Op::Advance(_) | Op::FireNext | Op::Spurious => return None,
        })
    }

    /// Checks one step. `before` is the machine before the step.
    fn step(
        &mut self,
        before: &launch_fsm::Launch,
        step: &Step,
        sim: &Sim,
    ) -> Result<(), TestCaseError> {
        let after = &sim.launch;
        let generation_before = before.generation();
        if let Err(rejected) = &step.outcome {
            check!(
                format!("{before:?}") == format!("{after:?}"),
                "rejected {:?} ({rejected}) changed the machine",
                step.event
            );
            check!(step.actions.is_empty(), "a rejection produced actions");
        }
        if let Event::Input(input) = &step.event {
            let waiting =
                |w: &WaiterId| self.pending_launch.contains(w) || self.pending_stop.contains(w);
            match (input, &step.outcome) {
                (Input::Launch { waiter, .. } | Input::Stop { waiter }, outcome) => {
                    let duplicate = waiting(waiter);
                    check!(
                        duplicate == matches!(outcome, Err(Rejected::DuplicateWaiter { .. })),
                        "{input:?} -> {outcome:?} (waiting: {duplicate})"
                    );
                    check!(
                        duplicate || outcome.is_ok(),
                        "launch/stop must be accepted in every phase: {outcome:?}"
                    );
                    if outcome.is_ok() {
                        if let Input::Launch { .. } = input {
                            self.pending_launch.insert(*waiter);
                        } else {
                            self.pending_stop.insert(*waiter);
                        }
                    }
                }
                (Input::Register { .. }, outcome) => {
                    check!(outcome.is_ok(), "a register is answered, not refused");
                }
                (Input::RuntimeStopped { generation }, Ok(())) => {
                    check!(
                        before.phase() == Phase::Stopping,
                        "runtime stopped accepted in {}",
                        before.phase()
                    );
                    if !self.dev_mode {
                        check!(
                            self.live == Some(*generation),
                            "stopped {generation} but live is {:?}",
                            self.live
                        );
                    }
                    check!(self.stop_asked, "runtime stopped before StopRuntime");
                    self.live = None;
                    self.stop_asked = false;
                }
                _ => {}
            }
        }
        for action in &step.actions {
            match action {
                Action::StartRuntime { generation } => {
                    check!(!self.dev_mode, "StartRuntime in dev mode");
                    check!(
                        self.live.is_none(),
                        "StartRuntime {generation} while {:?} is live",
                        self.live
                    );
                    self.live = Some(*generation);
                    self.stop_asked = false;
                }
                Action::StopRuntime { generation } => {
                    if let Some(live) = self.live {
                        check!(live == *generation, "stop {generation} but {live} is live");
                    }
                    self.stop_asked = true;
                }
                Action::SendRegistered { stream, .. } => {
                    self.registered_streams.insert(*stream);
                }
                Action::SendReady { stream, generation } => {
                    check!(
                        self.registered_streams.contains(stream),
                        "SendReady on {stream} before SendRegistered"
                    );
                    self.ready_generations.insert(*generation);
                }
                Action::CompleteLaunch { waiters, result } => {
                    check!(!waiters.is_empty(), "CompleteLaunch with no waiter");
                    for w in waiters {
                        check!(
                            self.pending_launch.remove(w),
                            "{w} completed twice or never asked"
                        );
                        self.completions += 1;
                    }
                    if let Ok(generation) = result {
                        check!(
                            self.ready_generations.contains(generation),
                            "CompleteLaunch(Ok({generation})) before SendReady"
                        );
                    }
                }
                Action::CompleteStop { waiters } => {
                    check!(!waiters.is_empty(), "CompleteStop with no waiter");
                    for w in waiters {
                        check!(self.pending_stop.remove(w), "stop {w} completed twice");
                    }
                    check!(
                        step.phase == Phase::Idle || after.generation() > generation_before,
                        "stop completed without reaching idle"
                    );
                }
                Action::SendKeepalive { stream } => {
                    check!(
                        step.phase == Phase::Ready && after.stream() == Some(*stream),
                        "keepalive on {stream} in {}",
                        step.phase
                    );
                }
                Action::RejectRegister { stream, .. } => {
                    check!(
                        step.event == Event::Input(Input::Register { stream: *stream }),
                        "rejected a register that did not come"
                    );
                }
                Action::ResolveSpec { .. } | Action::CloseStream { .. } => {}
            }
        }
        Ok(())
    }

    /// Checks the machine at rest between operations.
    fn at_rest(&self, sim: &Sim) -> Result<(), TestCaseError> {
        let launch = &sim.launch;
        let phase = launch.phase();
        let expected: BTreeSet<_> = launch.waiters().iter().copied().collect();
        check!(
            launch.waiters().len() + launch.queued() == self.pending_launch.len()
                && expected.is_subset(&self.pending_launch),
            "{phase}: waiters {:?} + {} queued, pending {:?}",
            launch.waiters(),
            launch.queued(),
            self.pending_launch
        );
        match phase {
            Phase::Idle => {
                check!(self.live.is_none(), "idle with {:?} live", self.live);
                check!(self.pending_launch.is_empty(), "idle with launch waiters");
                check!(self.pending_stop.is_empty(), "idle with stop waiters");
                check!(launch.poll_timeout().is_none(), "idle with a timer armed");
                check!(launch.stream().is_none(), "idle with a stream");
            }
            Phase::Ready => {
                check!(launch.waiters().is_empty(), "ready with waiters");
                check!(launch.stream().is_some(), "ready without a stream");
            }
            Phase::Stopping => {
                check!(launch.poll_timeout().is_none(), "stopping with a timer");
                check!(self.stop_asked, "stopping without StopRuntime");
            }
            Phase::Resolving => check!(self.live.is_none(), "resolving with a runtime"),
            Phase::Starting | Phase::AwaitingRegister | Phase::Registered => {
                check!(
                    self.live.is_some() != self.dev_mode,
                    "{phase}: live {:?}",
                    self.live
                );
            }
        }
        if phase != Phase::Idle && phase != Phase::Stopping {
            check!(
                launch.poll_timeout().is_some() || phase == Phase::Ready,
                "{phase}: no deadline"
            );
        }
        Ok(())
    }
}

/// Runs one op, checking every step it produces.
fn run_op(sim: &mut Sim, checker: &mut Checker, op: &Op) -> Result<(), TestCaseError> {
    let mut before = sim.launch.clone();
    let mark = sim.transcript().len();
    if let Some(input) = checker.input(op, sim) {
        let _ = sim.try_feed(input);
    } else {
        match *op {
            Op::Advance(ms) => {
                // One firing at a time so that each is checked on its own.
                let target = sim.now() + Duration::from_millis(ms);
                for _ in 0..10_000 {
                    if sim.launch.poll_timeout().is_none_or(|at| at > target) {
                        break;
                    }
                    before = sim.launch.clone();
                    let mark = sim.transcript().len();
                    sim.fire_next_timeout();
                    for step in &sim.transcript()[mark..] {
                        checker.step(&before, step, sim)?;
                    }
                    checker.at_rest(sim)?;
                }
                let fired = sim.advance(target.saturating_duration_since(sim.now()));
                check!(fired.is_empty(), "a timer fired late: {fired:?}");
                return Ok(());
            }
            Op::FireNext => {
                sim.fire_next_timeout();
            }
            Op::Spurious => {
                sim.timeout();
            }
            _ => unreachable!("inputs handled above"),
        }
    }
    let steps = sim.transcript()[mark..].to_vec();
    for step in &steps {
        checker.step(&before, step, sim)?;
    }
    checker.at_rest(sim)
}

/// Runs a whole sequence, then stops the chaincode and checks everyone was
/// completed. Returns the transcript.
fn run(config: &Config, ops: &[Op], base: Instant) -> Result<Vec<Step>, TestCaseError> {
    let mut sim = Sim::with_base(config.clone(), base);
    let mut checker = Checker::new(config);
    for op in ops {
        run_op(&mut sim, &mut checker, op)?;
    }
    // Wind down: a stop is accepted in every phase; confirm it if asked.
    run_op(&mut sim, &mut checker, &Op::Stop(WaiterSel::Fresh))?;
    if sim.phase() == Phase::Stopping {
        run_op(&mut sim, &mut checker, &Op::RuntimeStopped(GenSel::Current))?;
    }
    check!(
        sim.phase() == Phase::Idle,
        "not idle after stop: {}",
        sim.phase()
    );
    check!(
        checker.pending_launch.is_empty() && checker.pending_stop.is_empty(),
        "left waiting: {:?} {:?}",
        checker.pending_launch,
        checker.pending_stop
    );
    check!(checker.live.is_none(), "runtime left live");
    check!(sim.launch.poll_action().is_none(), "actions left undrained");
    Ok(sim.transcript().to_vec())
}

#[test]
fn invariants_hold_for_arbitrary_sequences() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let base = common::clock_base();
    let ran = std::cell::Cell::new(0u32);
    // How often each phase was reached, to show the generator is not stuck.
    let reached = std::cell::RefCell::new(std::collections::BTreeMap::<Phase, usize>::new());
    let strategy = (config(), prop::collection::vec(op(), 1..40));
    let result = runner.run(&strategy, |(config, ops)| {
        ran.set(ran.get() + 1);
        let first = run(&config, &ops, base)?;
        for step in &first {
            *reached.borrow_mut().entry(step.phase).or_default() += 1;
        }
        // Determinism: the same inputs at the same times, the same transcript.
        let second = run(&config, &ops, base)?;
        prop_assert_eq!(first, second);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let reached = reached.into_inner();
    println!(
        "launch-fsm invariants: {} generated sequences passed; steps per phase: {reached:?}",
        ran.get()
    );
    assert!(ran.get() >= CASES, "only {} cases ran", ran.get());
    for phase in Phase::ALL {
        assert!(
            reached.get(&phase).is_some_and(|&n| n >= 100),
            "{phase} reached too rarely: {reached:?}"
        );
    }
}

/// Long runs exercise many generations in one machine.
#[test]
fn invariants_hold_for_long_sequences() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let base = common::clock_base();
    let strategy = (config(), prop::collection::vec(op(), 200..600));
    if let Err(failure) = runner.run(&strategy, |(config, ops)| {
        run(&config, &ops, base).map(drop)
    }) {
        panic!("{failure}");
    }
}
