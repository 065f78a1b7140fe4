//! The happy path (Launch, SpecResolved, RuntimeStarted, Register, ReadySent,
//! Stop, RuntimeStopped: 7 inputs, back to Idle) through [`Launch`], draining
//! `poll_action` after each input, against a hand-written `match` over the
//! same phases that does the same work (same actions into a `VecDeque`,
//! waiters in a `Vec`, a deadline, the same checks). Throughput is in inputs.
//!
//! `cargo bench -p launch-fsm --bench step`

// The bench, not the machine, needs one real `Instant` to hand in.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use launch_fsm::{
    Action, Config, Generation, Input, Launch, Phase, SpecSource, StreamId, WaiterId,
};

const INPUTS_PER_CYCLE: u64 = 7;

/// The inputs of one launch-and-stop cycle for generation `g`.
fn cycle(g: Generation) -> [Input; INPUTS_PER_CYCLE as usize] {
    [
        Input::Launch {
            waiter: WaiterId(1),
            spec: SpecSource::Lookup,
        },
        Input::SpecResolved { generation: g },
        Input::RuntimeStarted { generation: g },
        Input::Register {
            stream: StreamId(g.0),
        },
        Input::ReadySent {
            stream: StreamId(g.0),
        },
        Input::Stop {
            waiter: WaiterId(2),
        },
        Input::RuntimeStopped { generation: g },
    ]
}

/// What the machine does, written by hand for these phases only.
struct Baseline {
    phase: Phase,
    generation: Generation,
    waiters: Vec<WaiterId>,
    stop_waiters: Vec<WaiterId>,
    stream: Option<StreamId>,
    deadline: Option<Instant>,
    startup_timeout: Duration,
    actions: VecDeque<Action>,
}

impl Baseline {
    fn new() -> Self {
        Self {
            phase: Phase::Idle,
            generation: Generation(0),
            waiters: Vec::new(),
            stop_waiters: Vec::new(),
            stream: None,
            deadline: None,
            startup_timeout: Duration::from_secs(300),
            actions: VecDeque::new(),
        }
    }

    fn handle(&mut self, now: Instant, input: Input) -> Result<(), ()> {
        let current = self.generation;
        match (self.phase, input) {
            (Phase::Idle, Input::Launch { waiter, .. }) => {
                if self.waiters.contains(&waiter) || self.stop_waiters.contains(&waiter) {
                    return Err(());
                }
                self.generation = Generation(current.0 + 1);
                self.deadline = now.checked_add(self.startup_timeout);
                self.waiters.push(waiter);
                self.actions.push_back(Action::ResolveSpec {
                    generation: self.generation,
                });
                self.phase = Phase::Resolving;
            }
            (Phase::Resolving, Input::SpecResolved { generation }) if generation == current => {
                self.actions.push_back(Action::StartRuntime { generation });
                self.phase = Phase::Starting;
            }
            (Phase::Starting, Input::RuntimeStarted { generation }) if generation == current => {
                self.phase = Phase::AwaitingRegister;
            }
            (Phase::AwaitingRegister, Input::Register { stream }) => {
                self.stream = Some(stream);
                self.actions.push_back(Action::SendRegistered {
                    stream,
                    generation: current,
                });
                self.actions.push_back(Action::SendReady {
                    stream,
                    generation: current,
                });
                self.phase = Phase::Registered;
            }
            (Phase::Registered, Input::ReadySent { stream }) if self.stream == Some(stream) => {
                self.deadline = None;
                let waiters = std::mem::take(&mut self.waiters);
                if !waiters.is_empty() {
                    self.actions.push_back(Action::CompleteLaunch {
                        waiters,
                        result: Ok(current),
                    });
                }
                self.phase = Phase::Ready;
            }
            (Phase::Ready, Input::Stop { waiter }) => {
                if self.waiters.contains(&waiter) || self.stop_waiters.contains(&waiter) {
                    return Err(());
                }
                self.stop_waiters.push(waiter);
                if let Some(stream) = self.stream.take() {
                    self.actions.push_back(Action::CloseStream { stream });
                }
                self.actions.push_back(Action::StopRuntime {
                    generation: current,
                });
                self.phase = Phase::Stopping;
            }
            (Phase::Stopping, Input::RuntimeStopped { generation }) if generation == current => {
                let waiters = std::mem::take(&mut self.stop_waiters);
                if !waiters.is_empty() {
                    self.actions.push_back(Action::CompleteStop { waiters });
                }
                self.phase = Phase::Idle;
            }
            _ => return Err(()),
        }
        Ok(())
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}

fn bench_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("happy_path_cycle");
    group.throughput(Throughput::Elements(INPUTS_PER_CYCLE));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));

    // One machine across iterations, as a peer keeps one per chaincode.
    let now = Instant::now();
    let mut launch = Launch::new(Config::default());
    group.bench_function("launch_fsm", |b| {
        b.iter(|| {
            let g = Generation(launch.generation().0 + 1);
            for input in cycle(g) {
                let ok = launch.handle(now, black_box(input)).is_ok();
                debug_assert!(ok);
                while let Some(action) = launch.poll_action() {
                    black_box(action);
                }
            }
            debug_assert_eq!(launch.phase(), Phase::Idle);
        })
    });

    let mut baseline = Baseline::new();
    group.bench_function("match_baseline", |b| {
        b.iter(|| {
            let g = Generation(baseline.generation.0 + 1);
            for input in cycle(g) {
                let ok = baseline.handle(now, black_box(input)).is_ok();
                debug_assert!(ok);
                while let Some(action) = baseline.poll_action() {
                    black_box(action);
                }
            }
            debug_assert_eq!(baseline.phase, Phase::Idle);
        })
    });
    group.finish();
}

/// Both machines must do the same thing, or the comparison means nothing.
fn same_actions() {
    let now = Instant::now();
    let mut launch = Launch::new(Config::default());
    let mut baseline = Baseline::new();
    for n in 1..=3 {
        for input in cycle(Generation(n)) {
            assert_eq!(
                launch.handle(now, input.clone()).is_ok(),
                baseline.handle(now, input).is_ok()
            );
            let a: Vec<_> = std::iter::from_fn(|| launch.poll_action()).collect();
            let b: Vec<_> = std::iter::from_fn(|| baseline.poll_action()).collect();
            assert_eq!(a, b);
            assert_eq!(launch.phase(), baseline.phase);
        }
    }
}

fn benches(c: &mut Criterion) {
    same_actions();
    bench_step(c);
}

criterion_group!(step, benches);
criterion_main!(step);
