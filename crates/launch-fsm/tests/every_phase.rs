//! Every phase × every kind of input (with current, stale and unknown tags):
//! an input is accepted exactly when the table has a cell for it and its
//! generation/stream/waiter checks pass; a refused input comes back with the
//! right typed error and leaves the machine exactly as it was. Timers fired
//! in every phase never panic either.

mod common;

use common::*;
use launch_fsm::table::{self, Signal};
use launch_fsm::{Config, Generation, Input, InputKind, Phase, Rejected, SpecSource, StreamId};

fn net() -> Config {
    Config::default()
}

fn dev() -> Config {
    Config {
        dev_mode: true,
        ..Config::default()
    }
}

/// Ways to reach each phase (some phases several ways), in both modes.
fn recipes() -> Vec<(&'static str, Config, Vec<Input>, Phase)> {
    vec![
        ("idle", net(), vec![], Phase::Idle),
        (
            "idle after a failed launch",
            net(),
            vec![launch(1), not_found(1, "gone")],
            Phase::Idle,
        ),
        ("resolving", net(), vec![launch(1)], Phase::Resolving),
        (
            "starting",
            net(),
            vec![launch_with_spec(1)],
            Phase::Starting,
        ),
        (
            "awaiting register",
            net(),
            vec![launch_with_spec(1), started(1)],
            Phase::AwaitingRegister,
        ),
        (
            "registered early",
            net(),
            vec![launch_with_spec(1), register(7)],
            Phase::Registered,
        ),
        (
            "ready",
            net(),
            vec![launch_with_spec(1), register(7), ready_sent(7)],
            Phase::Ready,
        ),
        (
            "stopping",
            net(),
            vec![launch_with_spec(1), stop(2)],
            Phase::Stopping,
        ),
        (
            "stopping with a queued launch",
            net(),
            vec![launch_with_spec(1), register(7), stop(2), launch(3)],
            Phase::Stopping,
        ),
        (
            "second generation starting",
            net(),
            vec![
                launch_with_spec(1),
                start_failed(1, "no image"),
                stopped(1),
                launch_with_spec(4),
            ],
            Phase::Starting,
        ),
        ("dev idle", dev(), vec![], Phase::Idle),
        (
            "dev awaiting",
            dev(),
            vec![launch(1)],
            Phase::AwaitingRegister,
        ),
        (
            "dev registered",
            dev(),
            vec![register(7)],
            Phase::Registered,
        ),
        (
            "dev ready",
            dev(),
            vec![launch(1), register(7), ready_sent(7)],
            Phase::Ready,
        ),
        (
            "dev stopping",
            dev(),
            vec![launch(1), register(7), stop(2)],
            Phase::Stopping,
        ),
    ]
}

/// Every input kind, with tags that are current, stale, unknown or taken.
fn candidates(sim: &Sim) -> Vec<Input> {
    let current = sim.launch.generation().0;
    let mut generations = vec![current, current + 1, 1_000];
    if current > 0 {
        generations.push(current - 1);
    }
    let mut inputs = Vec::new();
    for n in generations {
        let generation = Generation(n);
        inputs.extend([
            Input::SpecResolved { generation },
            Input::SpecNotFound {
                generation,
                reason: "gone".into(),
            },
            Input::RuntimeStarted { generation },
            Input::RuntimeStartFailed {
                generation,
                reason: "no image".into(),
            },
            Input::RuntimeExited {
                generation,
                status: "exit code 2".into(),
            },
            Input::RuntimeStopped { generation },
        ]);
    }
    for stream in [StreamId(7), StreamId(60)] {
        inputs.extend([
            Input::Register { stream },
            Input::ReadySent { stream },
            Input::StreamClosed { stream },
        ]);
    }
    // Waiters 1..=3 may be waiting already (duplicates); 50 never is.
    for waiter in [1, 2, 3, 50] {
        inputs.extend([launch(waiter), launch_with_spec(waiter), stop(waiter)]);
    }
    inputs
}

/// The table signal an input maps to once its checks pass (independent of
/// the implementation's own mapping).
fn signal(input: &Input, dev_mode: bool) -> Signal {
    match input {
        Input::Launch { .. } if dev_mode => Signal::LaunchDev,
        Input::Launch {
            spec: SpecSource::Lookup,
            ..
        } => Signal::LaunchLookup,
        Input::Launch {
            spec: SpecSource::Provided,
            ..
        } => Signal::LaunchWithSpec,
        Input::SpecResolved { .. } => Signal::SpecResolved,
        Input::SpecNotFound { .. } => Signal::SpecNotFound,
        Input::RuntimeStarted { .. } => Signal::RuntimeStarted,
        Input::RuntimeStartFailed { .. } => Signal::RuntimeStartFailed,
        Input::RuntimeExited { .. } => Signal::RuntimeExited,
        Input::RuntimeStopped { .. } => Signal::RuntimeStopped,
        Input::Register { .. } if dev_mode => Signal::RegisterDev,
        Input::Register { .. } => Signal::Register,
        Input::ReadySent { .. } => Signal::ReadySent,
        Input::StreamClosed { .. } => Signal::StreamClosed,
        Input::Stop { .. } => Signal::Stop,
    }
}

/// What the machine must answer to `input` in its current state.
fn expected_rejection(sim: &Sim, input: &Input) -> Option<Rejected> {
    let launch = &sim.launch;
    let phase = launch.phase();
    let kind = input.kind();
    let stale = |got: Generation| {
        (got != launch.generation()).then_some(Rejected::StaleGeneration {
            phase,
            input: kind,
            got,
            current: launch.generation(),
        })
    };
    let unknown = |stream: StreamId| {
        (launch.stream() != Some(stream)).then_some(Rejected::UnknownStream {
            phase,
            input: kind,
            stream,
        })
    };
    let taken = match input {
        Input::Launch { waiter, .. } | Input::Stop { waiter } => {
            // A waiter is taken while it waits for a launch or a stop; the
            // recipes use 1 for the launch, 2 for a stop, 3 for a queued one.
            let waiting = launch.waiters().contains(waiter)
                || (phase == Phase::Stopping && waiter.0 == 2)
                || (launch.queued() > 0 && waiter.0 == 3);
            waiting.then_some(Rejected::DuplicateWaiter {
                phase,
                waiter: *waiter,
            })
        }
        Input::SpecResolved { generation }
        | Input::SpecNotFound { generation, .. }
        | Input::RuntimeStarted { generation }
        | Input::RuntimeStartFailed { generation, .. }
        | Input::RuntimeExited { generation, .. }
        | Input::RuntimeStopped { generation } => stale(*generation),
        Input::ReadySent { stream } | Input::StreamClosed { stream } => unknown(*stream),
        Input::Register { .. } => None,
    };
    taken.or_else(|| {
        table::step(phase, signal(input, launch.config().dev_mode))
            .is_none()
            .then_some(Rejected::Unexpected { phase, input: kind })
    })
}

#[test]
fn every_phase_times_every_input() {
    let mut checked = 0;
    let mut refused = 0;
    for (name, config, recipe, phase) in recipes() {
        let mut base = Sim::new(config.clone());
        for input in recipe {
            base.feed(input);
        }
        assert_eq!(base.phase(), phase, "recipe {name}");
        for input in candidates(&base) {
            let mut sim = base.clone();
            let before = format!("{:?}", sim.launch);
            let expected = expected_rejection(&sim, &input);
            let got = sim.try_feed(input.clone());
            checked += 1;
            match (expected, got) {
                (Some(expected), Err(got)) => {
                    refused += 1;
                    assert_eq!(got, expected, "{name}: {input:?}");
                    assert_eq!(format!("{:?}", sim.launch), before, "{name}: {input:?}");
                    assert_eq!(sim.launch.poll_action(), None);
                }
                (None, Ok(_)) => {
                    let cell = table::step(phase, signal(&input, config.dev_mode));
                    let (next, _) = cell.expect("accepted, so the table has a cell");
                    // A finished stop starts the queued launch straight away.
                    let began_queued = next == Phase::Idle && base.launch.queued() > 0;
                    if !began_queued {
                        assert_eq!(sim.phase(), next, "{name}: {input:?}");
                    }
                }
                (expected, got) => {
                    panic!("{name}: {input:?}: expected {expected:?}, got {got:?}")
                }
            }
        }
        // Timers: firing at (or long past) the deadline never panics, and a
        // spurious call before it does nothing.
        let mut early = base.clone();
        let deadline = early.launch.poll_timeout();
        assert_eq!(early.timeout(), vec![], "{name}: spurious timer");
        assert_eq!(early.phase(), phase, "{name}: spurious timer");
        assert_eq!(
            early.launch.poll_timeout(),
            deadline,
            "{name}: spurious timer"
        );
        let mut late = base.clone();
        late.advance(secs(100_000));
        assert!(late.launch.poll_timeout().is_none(), "{name}: timer left");
        assert!(
            matches!(late.phase(), Phase::Idle | Phase::Ready | Phase::Stopping),
            "{name}: {} after the deadline",
            late.phase()
        );
    }
    assert!(checked >= 600, "only {checked} combinations");
    assert!(refused >= 300, "only {refused} refusals");
    println!("checked {checked} phase × input combinations, {refused} refused");
}

/// The error messages name the phase and the input.
#[test]
fn rejections_read_well() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    let err = sim.try_feed(stopped(9)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resolving: runtime stopped for g9 is stale (current g1)"
    );
    let err = sim.try_feed(closed(4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "resolving: stream closed for s4 is not about the registered stream"
    );
    let err = sim.try_feed(launch(1)).unwrap_err();
    assert_eq!(err.to_string(), "resolving: waiter w1 is already waiting");
    assert_eq!(InputKind::RuntimeStopped.to_string(), "runtime stopped");
}

/// No configuration makes the machine panic, not even absurd timeouts.
#[test]
fn extreme_configs_do_not_panic() {
    use std::time::Duration;
    for (startup_timeout, keepalive) in [
        (Duration::MAX, Some(Duration::MAX)),
        (Duration::ZERO, Some(Duration::ZERO)),
        (Duration::from_millis(1), Some(Duration::from_millis(1))),
    ] {
        let mut sim = Sim::new(Config {
            startup_timeout,
            keepalive,
            dev_mode: false,
        });
        sim.feed(launch_with_spec(1));
        sim.feed(register(7));
        sim.feed(ready_sent(7));
        let keepalives = sim.advance(secs(1)).len();
        // Zero means "never"; a huge interval never comes due.
        let expected = if keepalive == Some(Duration::from_millis(1)) {
            1000
        } else {
            0
        };
        assert_eq!(keepalives, expected, "{startup_timeout:?}/{keepalive:?}");
        sim.feed(stop(2));
        sim.feed(stopped(1));
        assert_eq!(sim.phase(), Phase::Idle);
    }
}
