//! A reference-model test (proptest-state-machine): a deliberately simple,
//! independent model of what a driver can observe — the phase, whether an
//! input is refused, and the kinds of actions in order (with how many waiters
//! each completion names) — written as one plain `match` and never looking at
//! the transition table. The implementation must agree with it step by step.

mod common;

use common::Sim;
use launch_fsm::{Action, Config, Generation, Input, Phase, SpecSource, StreamId, WaiterId};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

/// What a driver sees of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    ResolveSpec,
    StartRuntime,
    SendRegistered,
    SendReady,
    RejectRegister,
    CloseStream,
    StopRuntime,
    Ok(usize),
    Err(usize),
    StopDone(usize),
}

fn seen(action: &Action) -> Seen {
    match action {
        Action::ResolveSpec { .. } => Seen::ResolveSpec,
        Action::StartRuntime { .. } => Seen::StartRuntime,
        Action::SendRegistered { .. } => Seen::SendRegistered,
        Action::SendReady { .. } => Seen::SendReady,
        Action::RejectRegister { .. } => Seen::RejectRegister,
        Action::CloseStream { .. } => Seen::CloseStream,
        Action::StopRuntime { .. } => Seen::StopRuntime,
        Action::CompleteLaunch {
            waiters,
            result: Ok(_),
        } => Seen::Ok(waiters.len()),
        Action::CompleteLaunch {
            waiters,
            result: Err(_),
        } => Seen::Err(waiters.len()),
        Action::CompleteStop { waiters } => Seen::StopDone(waiters.len()),
        Action::SendKeepalive { .. } => unreachable!("the model runs without keepalive"),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Feed(Input),
    /// Jump to the next deadline, if any, and fire it.
    Timeout,
}

#[derive(Debug, Clone)]
struct Model {
    dev: bool,
    phase: Phase,
    generation: u64,
    stream: Option<u64>,
    next_id: u64,
    waiting: usize,
    queued: Vec<SpecSource>,
    stopping: usize,
    /// What the last step must have produced: refused?, actions.
    expect: (bool, Vec<Seen>),
}

impl Model {
    /// Completes the current waiters with an error, if there are any.
    fn fail(&mut self, out: &mut Vec<Seen>) {
        if self.waiting > 0 {
            out.push(Seen::Err(self.waiting));
        }
        self.waiting = 0;
    }

    /// Fails the launch and asks for the runtime (and stream) to go.
    fn fail_and_stop(&mut self, out: &mut Vec<Seen>) {
        self.fail(out);
        if self.stream.take().is_some() {
            out.push(Seen::CloseStream);
        }
        out.push(Seen::StopRuntime);
        self.phase = Phase::Stopping;
    }

    fn begin(&mut self, spec: SpecSource, out: &mut Vec<Seen>) {
        self.generation += 1;
        self.phase = match (self.dev, spec) {
            (true, _) => Phase::AwaitingRegister,
            (false, SpecSource::Lookup) => {
                out.push(Seen::ResolveSpec);
                Phase::Resolving
            }
            (false, SpecSource::Provided) => {
                out.push(Seen::StartRuntime);
                Phase::Starting
            }
        };
    }

    fn accept(&mut self, stream: u64, out: &mut Vec<Seen>) {
        self.stream = Some(stream);
        out.push(Seen::SendRegistered);
        out.push(Seen::SendReady);
        self.phase = Phase::Registered;
    }

    fn idle(&mut self, out: &mut Vec<Seen>) {
        self.phase = Phase::Idle;
        if self.stopping > 0 {
            out.push(Seen::StopDone(self.stopping));
            self.stopping = 0;
        }
        let queued = std::mem::take(&mut self.queued);
        if let Some(&first) = queued.first() {
            self.begin(first, out);
            self.waiting = queued.len();
        }
    }

    /// Applies one step; returns whether it was refused and what came out.
    fn step(&mut self, step: &Step) -> (bool, Vec<Seen>) {
        use Phase::*;
        let mut out = Vec::new();
        let current = |g: &Generation| g.0 == self.generation;
        let ours = |s: &StreamId| self.stream == Some(s.0);
        let refused = match (step, self.phase) {
            (Step::Feed(Input::Launch { spec, .. }), phase) => {
                match phase {
                    Idle => {
                        self.begin(*spec, &mut out);
                        self.waiting = 1;
                    }
                    Ready => out.push(Seen::Ok(1)),
                    Stopping => self.queued.push(*spec),
                    _ => self.waiting += 1,
                }
                false
            }
            (Step::Feed(Input::Stop { .. }), phase) => {
                self.stopping += 1;
                match phase {
                    Idle => self.idle(&mut out),
                    Resolving => {
                        self.fail(&mut out);
                        self.idle(&mut out);
                    }
                    Stopping => {
                        if !self.queued.is_empty() {
                            out.push(Seen::Err(self.queued.len()));
                        }
                        self.queued.clear();
                    }
                    _ => self.fail_and_stop(&mut out),
                }
                false
            }
            (Step::Feed(Input::SpecResolved { generation }), Resolving) if current(generation) => {
                out.push(Seen::StartRuntime);
                self.phase = Starting;
                false
            }
            (Step::Feed(Input::SpecNotFound { generation, .. }), Resolving)
                if current(generation) =>
            {
                self.fail(&mut out);
                self.idle(&mut out);
                false
            }
            (Step::Feed(Input::RuntimeStarted { generation }), phase) if current(generation) => {
                match phase {
                    Starting => self.phase = AwaitingRegister,
                    Registered | Ready | Stopping => {}
                    _ => return (true, out),
                }
                false
            }
            (
                Step::Feed(
                    Input::RuntimeStartFailed { generation, .. }
                    | Input::RuntimeExited { generation, .. },
                ),
                phase,
            ) if current(generation) => {
                let exited = matches!(step, Step::Feed(Input::RuntimeExited { .. }));
                match phase {
                    Starting | Registered | Ready => self.fail_and_stop(&mut out),
                    AwaitingRegister if exited => self.fail_and_stop(&mut out),
                    Stopping => {}
                    _ => return (true, out),
                }
                false
            }
            (Step::Feed(Input::RuntimeStopped { generation }), Stopping) if current(generation) => {
                self.idle(&mut out);
                false
            }
            (Step::Feed(Input::Register { stream }), phase) => {
                match phase {
                    Starting | AwaitingRegister => self.accept(stream.0, &mut out),
                    Idle if self.dev => {
                        self.generation += 1;
                        self.accept(stream.0, &mut out);
                    }
                    _ => out.push(Seen::RejectRegister),
                }
                false
            }
            (Step::Feed(Input::ReadySent { stream }), Registered) if ours(stream) => {
                if self.waiting > 0 {
                    out.push(Seen::Ok(self.waiting));
                }
                self.waiting = 0;
                self.phase = Ready;
                false
            }
            (Step::Feed(Input::StreamClosed { stream }), Registered | Ready) if ours(stream) => {
                self.fail_and_stop(&mut out);
                false
            }
            (Step::Timeout, Resolving) => {
                self.fail(&mut out);
                self.idle(&mut out);
                false
            }
            (Step::Timeout, Starting | AwaitingRegister | Registered) => {
                self.fail_and_stop(&mut out);
                false
            }
            (Step::Timeout, _) => false,
            (Step::Feed(_), _) => true,
        };
        (refused, out)
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        any::<bool>()
            .prop_map(|dev| Model {
                dev,
                phase: Phase::Idle,
                generation: 0,
                stream: None,
                next_id: 1,
                waiting: 0,
                queued: Vec::new(),
                stopping: 0,
                expect: (false, Vec::new()),
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        // Generations near the current one; streams: ours or a new one; every
        // waiter is new (duplicates are covered by the invariant test).
        let generation = prop_oneof![
            4 => Just(state.generation),
            1 => Just(state.generation + 1),
            1 => Just(state.generation.saturating_sub(1)),
        ]
        .prop_map(Generation);
        let fresh = state.next_id;
        let stream = prop_oneof![
            3 => Just(StreamId(state.stream.unwrap_or(fresh))),
            1 => Just(StreamId(fresh)),
        ];
        let tagged = |make: fn(Generation) -> Input| generation.clone().prop_map(make);
        let on_stream = |make: fn(StreamId) -> Input| stream.clone().prop_map(make);
        let launch = prop_oneof![Just(SpecSource::Lookup), Just(SpecSource::Provided)].prop_map(
            move |spec| Input::Launch {
                waiter: WaiterId(fresh),
                spec,
            },
        );
        let inputs = prop_oneof![
            3 => launch,
            1 => Just(Input::Stop { waiter: WaiterId(fresh) }),
            2 => tagged(|generation| Input::SpecResolved { generation }),
            1 => tagged(|generation| Input::SpecNotFound { generation, reason: "gone".into() }),
            2 => tagged(|generation| Input::RuntimeStarted { generation }),
            1 => tagged(|generation| Input::RuntimeStartFailed {
                generation,
                reason: "no image".into(),
            }),
            1 => tagged(|generation| Input::RuntimeExited {
                generation,
                status: "exit code 1".into(),
            }),
            2 => tagged(|generation| Input::RuntimeStopped { generation }),
            2 => Just(Input::Register { stream: StreamId(fresh) }),
            2 => on_stream(|stream| Input::ReadySent { stream }),
            1 => on_stream(|stream| Input::StreamClosed { stream }),
        ];
        prop_oneof![
            16 => inputs.prop_map(Step::Feed),
            1 => Just(Step::Timeout),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        // Ids are drawn from one counter so that each waiter/stream is new.
        state.next_id += 1;
        let before = state.clone();
        let (refused, out) = state.step(step);
        if refused {
            state = before;
        }
        state.expect = (refused, out);
        state
    }
}

struct Implementation;

impl StateMachineTest for Implementation {
    type SystemUnderTest = Sim;
    type Reference = Reference;

    fn init_test(model: &Model) -> Sim {
        Sim::new(Config {
            dev_mode: model.dev,
            ..Config::default()
        })
    }

    fn apply(mut sim: Sim, model: &Model, step: Step) -> Sim {
        let (refused, actions) = match &step {
            Step::Feed(input) => match sim.try_feed(input.clone()) {
                Ok(actions) => (false, actions),
                Err(_) => (true, Vec::new()),
            },
            Step::Timeout => (false, sim.fire_next_timeout().unwrap_or_default()),
        };
        let actions: Vec<Seen> = actions.iter().map(seen).collect();
        assert_eq!(
            (refused, actions),
            model.expect,
            "{step:?} in {:?}; model: {model:?}",
            sim.transcript().iter().rev().nth(1).map(|s| s.phase)
        );
        sim
    }

    fn check_invariants(sim: &Sim, model: &Model) {
        assert_eq!(sim.phase(), model.phase);
        assert_eq!(sim.launch.generation().0, model.generation);
        assert_eq!(sim.launch.stream().map(|s| s.0), model.stream);
        assert_eq!(sim.launch.waiters().len(), model.waiting);
        assert_eq!(sim.launch.queued(), model.queued.len());
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn implementation_agrees_with_reference_model(sequential 1..60 => Implementation);
}
