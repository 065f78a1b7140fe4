//! One golden transcript per behaviour of the architecture page
//! ("launch-fsm: what it must model", behaviours 1–13): each test asserts the
//! whole sequence of (event, outcome, phase after, actions).

mod common;

use std::time::Duration;

use common::*;
use launch_fsm::{Action, Config, InputKind, LaunchError, Phase, RegisterRejection, Rejected};

const TIMEOUT: Duration = Duration::from_secs(300);

fn happy_to_ready(sim: &mut Sim) {
    sim.feed(launch(1));
    sim.feed(resolved(1));
    sim.feed(started(1));
    sim.feed(register(7));
    sim.feed(ready_sent(7));
    assert_eq!(sim.phase(), Phase::Ready);
}

fn registered_ok(stream: u64, generation: u64) -> Vec<Action> {
    vec![
        Action::SendRegistered {
            stream: s(stream),
            generation: g(generation),
        },
        Action::SendReady {
            stream: s(stream),
            generation: g(generation),
        },
    ]
}

fn complete(waiters: &[u64], result: Result<u64, LaunchError>) -> Action {
    Action::CompleteLaunch {
        waiters: waiters.iter().map(|&n| w(n)).collect(),
        result: result.map(g),
    }
}

fn complete_stop(waiters: &[u64]) -> Action {
    Action::CompleteStop {
        waiters: waiters.iter().map(|&n| w(n)).collect(),
    }
}

fn stop_runtime(generation: u64) -> Action {
    Action::StopRuntime {
        generation: g(generation),
    }
}

fn close(stream: u64) -> Action {
    Action::CloseStream { stream: s(stream) }
}

/// Behaviour 1: Launch → ResolveSpec → StartRuntime → RuntimeStarted → Register →
/// SendRegistered, SendReady → CompleteLaunch(Ok); then a stop back to Idle.
#[test]
fn b01_happy_path() {
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    assert_eq!(sim.launch.poll_timeout(), None, "no keepalive configured");
    sim.feed(stop(2));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch(1),
                Phase::Resolving,
                vec![Action::ResolveSpec { generation: g(1) }]
            ),
            ok(
                resolved(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            ok(started(1), Phase::AwaitingRegister, vec![]),
            ok(register(7), Phase::Registered, registered_ok(7, 1)),
            ok(ready_sent(7), Phase::Ready, vec![complete(&[1], Ok(1))]),
            ok(stop(2), Phase::Stopping, vec![close(7), stop_runtime(1)]),
            ok(stopped(1), Phase::Idle, vec![complete_stop(&[2])]),
        ]
    );
    assert_eq!(sim.launch.launched_at(), Some(sim.now()));
}

/// Behaviour 2: REGISTER before the executor acknowledges the start: Ready once.
#[test]
fn b02_register_before_runtime_started() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.feed(register(7));
    sim.feed(ready_sent(7));
    sim.feed(started(1));
    assert!(sim.launch.runtime_started());
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch_with_spec(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            ok(register(7), Phase::Registered, registered_ok(7, 1)),
            ok(ready_sent(7), Phase::Ready, vec![complete(&[1], Ok(1))]),
            ok(started(1), Phase::Ready, vec![]),
        ]
    );

    // The acknowledgement may also land between REGISTER and READY.
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.feed(register(7));
    sim.feed(started(1));
    sim.feed(ready_sent(7));
    assert_eq!(
        sim.phases(),
        [
            Phase::Starting,
            Phase::Registered,
            Phase::Registered,
            Phase::Ready
        ]
    );
    assert_eq!(
        sim.actions(),
        [
            vec![Action::StartRuntime { generation: g(1) }],
            registered_ok(7, 1),
            vec![],
            vec![complete(&[1], Ok(1))],
        ]
    );
}

/// Behaviour 3: No REGISTER before the deadline → StopRuntime and Err(Timeout); the
/// deadline runs from the first request, so it covers the image build.
#[test]
fn b03_startup_timeout() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.advance(secs(10));
    sim.feed(resolved(1));
    sim.advance(secs(200)); // the image build
    sim.feed(started(1));
    assert_eq!(sim.launch.poll_timeout(), Some(sim.now() + secs(90)));
    sim.advance(secs(89));
    assert_eq!(sim.phase(), Phase::AwaitingRegister);
    sim.advance(secs(2));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch(1),
                Phase::Resolving,
                vec![Action::ResolveSpec { generation: g(1) }]
            ),
            ok(
                resolved(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            ok(started(1), Phase::AwaitingRegister, vec![]),
            timeout_at(
                TIMEOUT,
                Phase::Stopping,
                vec![
                    complete(
                        &[1],
                        Err(LaunchError::Timeout {
                            phase: Phase::AwaitingRegister,
                            timeout: TIMEOUT
                        })
                    ),
                    stop_runtime(1),
                ]
            ),
            ok(stopped(1), Phase::Idle, vec![]),
        ]
    );
    assert_eq!(
        sim.launch.last_error().map(ToString::to_string).as_deref(),
        Some("awaiting register: launch timed out after 300s")
    );
}

/// Behaviour 3: The deadline fires while the executor is still building the image.
#[test]
fn b03_startup_timeout_during_build() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.advance(secs(400));
    // The executor finishes late: the runtime is already being stopped.
    sim.feed(started(1));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch_with_spec(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            timeout_at(
                TIMEOUT,
                Phase::Stopping,
                vec![
                    complete(
                        &[1],
                        Err(LaunchError::Timeout {
                            phase: Phase::Starting,
                            timeout: TIMEOUT
                        })
                    ),
                    stop_runtime(1),
                ]
            ),
            ok(started(1), Phase::Stopping, vec![]),
            ok(stopped(1), Phase::Idle, vec![]),
        ]
    );
}

/// Behaviour 4: Executor start failure → Err(StartFailed); what may exist is stopped.
#[test]
fn b04_start_failure() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.feed(start_failed(1, "no such image"));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch_with_spec(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            ok(
                start_failed(1, "no such image"),
                Phase::Stopping,
                vec![
                    complete(
                        &[1],
                        Err(LaunchError::StartFailed {
                            reason: "no such image".into()
                        })
                    ),
                    stop_runtime(1),
                ]
            ),
            ok(stopped(1), Phase::Idle, vec![]),
        ]
    );
}

/// Behaviour 5: Concurrent launches coalesce: one StartRuntime, one completion for all.
#[test]
fn b05_concurrent_launches_coalesce() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.feed(launch_with_spec(2));
    sim.feed(resolved(1));
    sim.feed(launch(3));
    sim.feed(started(1));
    sim.feed(launch(4));
    sim.feed(register(7));
    sim.feed(launch(5));
    let dup = launch(3);
    let _ = sim.try_feed(dup.clone());
    sim.feed(ready_sent(7));
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch(1),
                Phase::Resolving,
                vec![Action::ResolveSpec { generation: g(1) }]
            ),
            ok(launch_with_spec(2), Phase::Resolving, vec![]),
            ok(
                resolved(1),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(1) }]
            ),
            ok(launch(3), Phase::Starting, vec![]),
            ok(started(1), Phase::AwaitingRegister, vec![]),
            ok(launch(4), Phase::AwaitingRegister, vec![]),
            ok(register(7), Phase::Registered, registered_ok(7, 1)),
            ok(launch(5), Phase::Registered, vec![]),
            refused(
                dup,
                Rejected::DuplicateWaiter {
                    phase: Phase::Registered,
                    waiter: w(3)
                },
                Phase::Registered
            ),
            ok(
                ready_sent(7),
                Phase::Ready,
                vec![complete(&[1, 2, 3, 4, 5], Ok(1))]
            ),
        ]
    );

    // A failure is shared the same way.
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.feed(launch(2));
    sim.feed(not_found(1, "gone"));
    assert_eq!(
        sim.actions(),
        [
            vec![Action::ResolveSpec { generation: g(1) }],
            vec![],
            vec![complete(
                &[1, 2],
                Err(LaunchError::NotFound {
                    reason: "gone".into()
                })
            )],
        ]
    );
}

/// Behaviour 6: Launch while Ready completes at once, without touching the runtime.
#[test]
fn b06_launch_while_ready() {
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    let before = sim.transcript().len();
    sim.feed(launch(2));
    sim.feed(launch_with_spec(3));
    assert_eq!(
        &sim.transcript()[before..],
        [
            ok(launch(2), Phase::Ready, vec![complete(&[2], Ok(1))]),
            ok(
                launch_with_spec(3),
                Phase::Ready,
                vec![complete(&[3], Ok(1))]
            ),
        ]
    );
    assert_eq!(sim.launch.generation(), g(1));
    assert!(sim.launch.waiters().is_empty());
}

/// Behaviour 7: The runtime exits (or its stream closes) after Ready: back to Idle via
/// a stop; the next launch is a new generation.
#[test]
fn b07_exit_after_ready() {
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    let before = sim.transcript().len();
    sim.feed(exited(1, "exit code 3"));
    sim.feed(stopped(1));
    sim.feed(launch(2));
    assert_eq!(
        &sim.transcript()[before..],
        [
            ok(
                exited(1, "exit code 3"),
                Phase::Stopping,
                vec![close(7), stop_runtime(1)]
            ),
            ok(stopped(1), Phase::Idle, vec![]),
            ok(
                launch(2),
                Phase::Resolving,
                vec![Action::ResolveSpec { generation: g(2) }]
            ),
        ]
    );
    assert_eq!(
        sim.launch.last_error(),
        Some(&LaunchError::Exited {
            phase: Phase::Ready,
            status: "exit code 3".into()
        })
    );

    // The stream closing is handled the same way.
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    let before = sim.transcript().len();
    sim.feed(closed(7));
    sim.feed(stopped(1));
    sim.feed(launch_with_spec(2));
    assert_eq!(
        &sim.transcript()[before..],
        [
            ok(closed(7), Phase::Stopping, vec![close(7), stop_runtime(1)]),
            ok(stopped(1), Phase::Idle, vec![]),
            ok(
                launch_with_spec(2),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(2) }]
            ),
        ]
    );
}

/// Behaviour 8: Stop in every phase: waiters get Err(Stopped), a started runtime is
/// stopped, the stop completes at Idle; launches queued behind a stop start a
/// new generation afterwards, and a second stop cancels them.
#[test]
fn b08_stop_in_every_phase() {
    let stopped_in = |phase| Err(LaunchError::Stopped { phase });

    // Idle: completes at once.
    let mut sim = Sim::new(Config::default());
    sim.feed(stop(9));
    assert_eq!(
        sim.transcript(),
        [ok(stop(9), Phase::Idle, vec![complete_stop(&[9])])]
    );

    // Resolving: nothing was started, so straight to Idle.
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.feed(stop(9));
    assert_eq!(
        sim.transcript()[1..],
        [ok(
            stop(9),
            Phase::Idle,
            vec![
                complete(&[1], stopped_in(Phase::Resolving)),
                complete_stop(&[9])
            ]
        )]
    );
    assert_eq!(sim.launch.poll_timeout(), None);

    // Starting, AwaitingRegister: the runtime may exist, so it is stopped.
    for (inputs, phase) in [
        (vec![launch_with_spec(1)], Phase::Starting),
        (
            vec![launch_with_spec(1), started(1)],
            Phase::AwaitingRegister,
        ),
    ] {
        let mut sim = Sim::new(Config::default());
        let n = inputs.len();
        for input in inputs {
            sim.feed(input);
        }
        sim.feed(stop(9));
        sim.feed(stopped(1));
        assert_eq!(
            sim.transcript()[n..],
            [
                ok(
                    stop(9),
                    Phase::Stopping,
                    vec![complete(&[1], stopped_in(phase)), stop_runtime(1)]
                ),
                ok(stopped(1), Phase::Idle, vec![complete_stop(&[9])]),
            ]
        );
    }

    // Registered: the stream is closed too.
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.feed(register(7));
    sim.feed(stop(9));
    assert_eq!(
        sim.transcript()[2..],
        [ok(
            stop(9),
            Phase::Stopping,
            vec![
                complete(&[1], stopped_in(Phase::Registered)),
                close(7),
                stop_runtime(1)
            ]
        )]
    );

    // Ready, then Stopping: a second stop waits for the same confirmation; a
    // launch queued behind it is cancelled by the next stop.
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    sim.feed(stop(9));
    sim.feed(launch(2));
    assert_eq!(sim.launch.queued(), 1);
    sim.feed(stop(10));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript()[5..],
        [
            ok(stop(9), Phase::Stopping, vec![close(7), stop_runtime(1)]),
            ok(launch(2), Phase::Stopping, vec![]),
            ok(
                stop(10),
                Phase::Stopping,
                vec![complete(&[2], stopped_in(Phase::Stopping))]
            ),
            ok(stopped(1), Phase::Idle, vec![complete_stop(&[9, 10])]),
        ]
    );

    // Launches queued behind a stop start the next generation once it is done.
    let mut sim = Sim::new(Config::default());
    happy_to_ready(&mut sim);
    sim.feed(stop(9));
    sim.feed(launch(2));
    sim.feed(launch_with_spec(3));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript()[6..],
        [
            ok(launch(2), Phase::Stopping, vec![]),
            ok(launch_with_spec(3), Phase::Stopping, vec![]),
            ok(
                stopped(1),
                Phase::Resolving,
                vec![
                    complete_stop(&[9]),
                    Action::ResolveSpec { generation: g(2) }
                ]
            ),
        ]
    );
    assert_eq!(sim.launch.waiters(), [w(2), w(3)]);
}

/// Behaviour 9: Events of an older generation (a late exit, a late timer) are ignored.
#[test]
fn b09_stale_generation_ignored() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.advance(secs(10));
    sim.feed(not_found(1, "gone"));
    sim.advance(secs(90));
    sim.feed(launch_with_spec(2));
    let late_exit = exited(1, "killed");
    let late_stop = stopped(1);
    let _ = sim.try_feed(late_exit.clone());
    let _ = sim.try_feed(late_stop.clone());
    // Generation 1's deadline (300 s) passes: nothing happens.
    sim.advance(secs(200));
    sim.timeout();
    assert_eq!(sim.phase(), Phase::Starting);
    // Generation 2's own deadline (100 s + 300 s) fires.
    sim.advance(secs(100));
    let stale = |kind| Rejected::StaleGeneration {
        phase: Phase::Starting,
        input: kind,
        got: g(1),
        current: g(2),
    };
    assert_eq!(
        sim.transcript()[2..],
        [
            ok(
                launch_with_spec(2),
                Phase::Starting,
                vec![Action::StartRuntime { generation: g(2) }]
            ),
            refused(late_exit, stale(InputKind::RuntimeExited), Phase::Starting),
            refused(late_stop, stale(InputKind::RuntimeStopped), Phase::Starting),
            timeout_at(secs(300), Phase::Starting, vec![]),
            timeout_at(
                secs(400),
                Phase::Stopping,
                vec![
                    complete(
                        &[2],
                        Err(LaunchError::Timeout {
                            phase: Phase::Starting,
                            timeout: TIMEOUT
                        })
                    ),
                    stop_runtime(2),
                ]
            ),
        ]
    );
}

/// Behaviour 10: Dev mode: no StartRuntime; wait for REGISTER under the same deadline.
#[test]
fn b10_dev_mode() {
    let dev = Config {
        dev_mode: true,
        ..Config::default()
    };
    let mut sim = Sim::new(dev.clone());
    sim.feed(launch_with_spec(1));
    sim.feed(register(7));
    sim.feed(ready_sent(7));
    sim.feed(stop(2));
    sim.feed(stopped(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(launch_with_spec(1), Phase::AwaitingRegister, vec![]),
            ok(register(7), Phase::Registered, registered_ok(7, 1)),
            ok(ready_sent(7), Phase::Ready, vec![complete(&[1], Ok(1))]),
            // The dev executor's stop is a no-op, but it is still asked.
            ok(stop(2), Phase::Stopping, vec![close(7), stop_runtime(1)]),
            ok(stopped(1), Phase::Idle, vec![complete_stop(&[2])]),
        ]
    );

    // Nobody registers in time.
    let mut sim = Sim::new(dev.clone());
    sim.feed(launch(1));
    sim.advance(secs(301));
    assert_eq!(
        sim.transcript(),
        [
            ok(launch(1), Phase::AwaitingRegister, vec![]),
            timeout_at(
                TIMEOUT,
                Phase::Stopping,
                vec![
                    complete(
                        &[1],
                        Err(LaunchError::Timeout {
                            phase: Phase::AwaitingRegister,
                            timeout: TIMEOUT
                        })
                    ),
                    stop_runtime(1),
                ]
            ),
        ]
    );

    // The user's chaincode registers before anyone asked: accepted.
    let mut sim = Sim::new(dev);
    sim.feed(register(7));
    sim.feed(ready_sent(7));
    sim.feed(launch(1));
    assert_eq!(
        sim.transcript(),
        [
            ok(register(7), Phase::Registered, registered_ok(7, 1)),
            ok(ready_sent(7), Phase::Ready, vec![]),
            ok(launch(1), Phase::Ready, vec![complete(&[1], Ok(1))]),
        ]
    );
}

/// Behaviour 11: Spec lookup failure → Err(NotFound), no StartRuntime.
#[test]
fn b11_spec_not_found() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch(1));
    sim.feed(not_found(1, "mycc.1.0: no such file"));
    let late = resolved(1);
    let _ = sim.try_feed(late.clone());
    assert_eq!(
        sim.transcript(),
        [
            ok(
                launch(1),
                Phase::Resolving,
                vec![Action::ResolveSpec { generation: g(1) }]
            ),
            ok(
                not_found(1, "mycc.1.0: no such file"),
                Phase::Idle,
                vec![complete(
                    &[1],
                    Err(LaunchError::NotFound {
                        reason: "mycc.1.0: no such file".into()
                    })
                )]
            ),
            refused(
                late,
                Rejected::Unexpected {
                    phase: Phase::Idle,
                    input: InputKind::SpecResolved
                },
                Phase::Idle
            ),
        ]
    );
    assert_eq!(sim.launch.poll_timeout(), None);
}

/// Behaviour 12: A second REGISTER while Registered/Ready is rejected; the live stream
/// is untouched.
#[test]
fn b12_second_register_rejected() {
    let mut sim = Sim::new(Config::default());
    sim.feed(launch_with_spec(1));
    sim.feed(register(7));
    sim.feed(register(8));
    sim.feed(ready_sent(7));
    sim.feed(register(9));
    let close_other = closed(9);
    let _ = sim.try_feed(close_other.clone());
    assert_eq!(sim.launch.stream(), Some(s(7)));
    assert_eq!(
        sim.transcript()[2..],
        [
            ok(
                register(8),
                Phase::Registered,
                vec![Action::RejectRegister {
                    stream: s(8),
                    reason: RegisterRejection::Duplicate {
                        phase: Phase::Registered
                    }
                }]
            ),
            ok(ready_sent(7), Phase::Ready, vec![complete(&[1], Ok(1))]),
            ok(
                register(9),
                Phase::Ready,
                vec![Action::RejectRegister {
                    stream: s(9),
                    reason: RegisterRejection::Duplicate {
                        phase: Phase::Ready
                    }
                }]
            ),
            refused(
                close_other,
                Rejected::UnknownStream {
                    phase: Phase::Ready,
                    input: InputKind::StreamClosed,
                    stream: s(9)
                },
                Phase::Ready
            ),
        ]
    );
}

/// Behaviour 13: Illegal input is rejected with a typed error and changes nothing.
#[test]
fn b13_illegal_input_rejected() {
    let mut sim = Sim::new(Config::default());
    let steps = [
        (
            resolved(0),
            Rejected::Unexpected {
                phase: Phase::Idle,
                input: InputKind::SpecResolved,
            },
        ),
        (
            ready_sent(7),
            Rejected::UnknownStream {
                phase: Phase::Idle,
                input: InputKind::ReadySent,
                stream: s(7),
            },
        ),
        (
            stopped(0),
            Rejected::Unexpected {
                phase: Phase::Idle,
                input: InputKind::RuntimeStopped,
            },
        ),
    ];
    for (input, rejected) in steps.clone() {
        let before = format!("{:?}", sim.launch);
        assert_eq!(sim.try_feed(input), Err(rejected));
        assert_eq!(format!("{:?}", sim.launch), before);
    }
    // A REGISTER nobody asked for is answered on its stream, not refused.
    sim.feed(register(5));
    sim.feed(launch(1));
    let wrong = [resolved(2), started(1), stopped(1), ready_sent(5)];
    for input in wrong.clone() {
        let before = format!("{:?}", sim.launch);
        assert!(sim.try_feed(input).is_err());
        assert_eq!(format!("{:?}", sim.launch), before);
    }
    let mut expected: Vec<_> = steps
        .into_iter()
        .map(|(input, rejected)| refused(input, rejected, Phase::Idle))
        .collect();
    expected.push(ok(
        register(5),
        Phase::Idle,
        vec![Action::RejectRegister {
            stream: s(5),
            reason: RegisterRejection::NotLaunching { phase: Phase::Idle },
        }],
    ));
    expected.push(ok(
        launch(1),
        Phase::Resolving,
        vec![Action::ResolveSpec { generation: g(1) }],
    ));
    let in_resolving =
        |input: launch_fsm::Input, rejected| refused(input, rejected, Phase::Resolving);
    expected.extend([
        in_resolving(
            resolved(2),
            Rejected::StaleGeneration {
                phase: Phase::Resolving,
                input: InputKind::SpecResolved,
                got: g(2),
                current: g(1),
            },
        ),
        in_resolving(
            started(1),
            Rejected::Unexpected {
                phase: Phase::Resolving,
                input: InputKind::RuntimeStarted,
            },
        ),
        in_resolving(
            stopped(1),
            Rejected::Unexpected {
                phase: Phase::Resolving,
                input: InputKind::RuntimeStopped,
            },
        ),
        in_resolving(
            ready_sent(5),
            Rejected::UnknownStream {
                phase: Phase::Resolving,
                input: InputKind::ReadySent,
                stream: s(5),
            },
        ),
    ]);
    assert_eq!(sim.transcript(), expected);
    assert_eq!(
        Rejected::Unexpected {
            phase: Phase::AwaitingRegister,
            input: InputKind::ReadySent
        }
        .to_string(),
        "awaiting register: ready sent is not expected"
    );
}

/// Keepalives go out on the registered stream while Ready, and stop with it.
#[test]
fn keepalive_while_ready() {
    let mut sim = Sim::new(Config {
        keepalive: Some(secs(30)),
        ..Config::default()
    });
    happy_to_ready(&mut sim);
    let before = sim.transcript().len();
    sim.advance(secs(65));
    sim.feed(closed(7));
    sim.advance(secs(100));
    assert_eq!(
        sim.transcript()[before..],
        [
            timeout_at(
                secs(30),
                Phase::Ready,
                vec![Action::SendKeepalive { stream: s(7) }]
            ),
            timeout_at(
                secs(60),
                Phase::Ready,
                vec![Action::SendKeepalive { stream: s(7) }]
            ),
            ok(closed(7), Phase::Stopping, vec![close(7), stop_runtime(1)]),
        ]
    );
    assert_eq!(sim.launch.poll_timeout(), None);
}
