//! Arbitrary sequences of inputs and time steps into one launch machine; any
//! broken invariant panics: a launch waiter completed twice (or never, after
//! the final stop), a StartRuntime while a runtime is live, SendReady before
//! SendRegistered, CompleteLaunch(Ok) before SendReady, a refused input that
//! changed the machine, or two identical runs that disagree.
#![no_main]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use launch_fsm::{
    Action, Config, Generation, Input, Launch, Phase, Rejected, SpecSource, StreamId, WaiterId,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Case {
    dev_mode: bool,
    keepalive_ms: Option<u16>,
    startup_ms: u32,
    ops: Vec<Op>,
}

/// A generation relative to the current one, or any.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Gen {
    Current,
    Delta(i8),
    Raw(u64),
}

/// The registered stream, or any (small ids collide on purpose).
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Strm {
    Current,
    Raw(u8),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Launch { waiter: u8, provided: bool },
    Stop { waiter: u8 },
    SpecResolved(Gen),
    SpecNotFound(Gen),
    RuntimeStarted(Gen),
    RuntimeStartFailed(Gen),
    RuntimeExited(Gen),
    RuntimeStopped(Gen),
    Register(u8),
    ReadySent(Strm),
    StreamClosed(Strm),
    Advance(u32),
    FireNext,
    Spurious,
}

/// What the checker remembers between steps.
#[derive(Default)]
struct Checker {
    dev_mode: bool,
    pending_launch: BTreeSet<WaiterId>,
    pending_stop: BTreeSet<WaiterId>,
    live: Option<Generation>,
    stop_asked: bool,
    registered: BTreeSet<StreamId>,
    ready: BTreeSet<Generation>,
}

struct Run {
    launch: Launch,
    now: Instant,
    checker: Checker,
    /// Every step's outcome and actions, for the determinism check.
    transcript: Vec<(Result<(), Rejected>, Phase, Vec<Action>)>,
}

impl Run {
    fn new(config: Config, base: Instant) -> Self {
        Self {
            checker: Checker {
                dev_mode: config.dev_mode,
                ..Checker::default()
            },
            launch: Launch::new(config),
            now: base,
            transcript: Vec::new(),
        }
    }

    fn generation(&self, sel: Gen) -> Generation {
        let current = self.launch.generation().0;
        Generation(match sel {
            Gen::Current => current,
            Gen::Delta(d) => current.saturating_add_signed(i64::from(d)),
            Gen::Raw(n) => n,
        })
    }

    fn stream(&self, sel: Strm) -> StreamId {
        match (sel, self.launch.stream()) {
            (Strm::Current, Some(stream)) => stream,
            (Strm::Current, None) => StreamId(0),
            (Strm::Raw(n), _) => StreamId(u64::from(n)),
        }
    }

    fn op(&mut self, op: Op) {
        let g = |sel| self.generation(sel);
        let input = match op {
            Op::Launch { waiter, provided } => Input::Launch {
                waiter: WaiterId(u64::from(waiter)),
                spec: if provided {
                    SpecSource::Provided
                } else {
                    SpecSource::Lookup
                },
            },
            Op::Stop { waiter } => Input::Stop {
                waiter: WaiterId(u64::from(waiter)),
            },
            Op::SpecResolved(sel) => Input::SpecResolved { generation: g(sel) },
            Op::SpecNotFound(sel) => Input::SpecNotFound {
                generation: g(sel),
                reason: "gone".into(),
            },
            Op::RuntimeStarted(sel) => Input::RuntimeStarted { generation: g(sel) },
            Op::RuntimeStartFailed(sel) => Input::RuntimeStartFailed {
                generation: g(sel),
                reason: "no image".into(),
            },
            Op::RuntimeExited(sel) => Input::RuntimeExited {
                generation: g(sel),
                status: "exit code 1".into(),
            },
            Op::RuntimeStopped(sel) => Input::RuntimeStopped { generation: g(sel) },
            Op::Register(n) => Input::Register {
                stream: StreamId(u64::from(n)),
            },
            Op::ReadySent(sel) => Input::ReadySent {
                stream: self.stream(sel),
            },
            Op::StreamClosed(sel) => Input::StreamClosed {
                stream: self.stream(sel),
            },
            Op::Advance(ms) => {
                let target = self.now + Duration::from_millis(u64::from(ms));
                // Bounded: a 1 ms keepalive over u32::MAX ms would not be.
                for _ in 0..1_000 {
                    match self.launch.poll_timeout() {
                        Some(at) if at <= target => self.timeout(at.max(self.now)),
                        _ => break,
                    }
                }
                self.now = target;
                return;
            }
            Op::FireNext => {
                if let Some(at) = self.launch.poll_timeout() {
                    self.timeout(at.max(self.now));
                }
                return;
            }
            Op::Spurious => {
                self.timeout(self.now);
                return;
            }
        };
        self.feed(input);
    }

    fn timeout(&mut self, at: Instant) {
        self.now = at;
        let generation = self.launch.generation();
        self.launch.handle_timeout(at);
        self.after(None, Ok(()), generation);
    }

    fn feed(&mut self, input: Input) {
        let before = self.launch.clone();
        let outcome = self.launch.handle(self.now, input.clone());
        if outcome.is_err() {
            assert_eq!(
                format!("{before:?}"),
                format!("{:?}", self.launch),
                "refused {input:?} changed the machine"
            );
        }
        let c = &mut self.checker;
        let waiting =
            |c: &Checker, w: &WaiterId| c.pending_launch.contains(w) || c.pending_stop.contains(w);
        match (&input, &outcome) {
            (Input::Launch { waiter, .. }, Ok(())) => {
                assert!(!waiting(c, waiter), "{waiter} accepted twice");
                c.pending_launch.insert(*waiter);
            }
            (Input::Stop { waiter }, Ok(())) => {
                assert!(!waiting(c, waiter), "{waiter} accepted twice");
                c.pending_stop.insert(*waiter);
            }
            (Input::Launch { waiter, .. } | Input::Stop { waiter }, Err(e)) => {
                assert!(waiting(c, waiter), "{input:?} refused: {e}");
            }
            (Input::Register { .. }, Err(e)) => panic!("a register was refused: {e}"),
            (Input::RuntimeStopped { generation }, Ok(())) => {
                assert_eq!(before.phase(), Phase::Stopping);
                if !c.dev_mode {
                    assert_eq!(
                        c.live,
                        Some(*generation),
                        "stopped a runtime that is not live"
                    );
                }
                assert!(c.stop_asked, "RuntimeStopped accepted before StopRuntime");
                c.live = None;
                c.stop_asked = false;
            }
            _ => {}
        }
        self.after(Some(&input), outcome, before.generation());
    }

    /// Drains and checks the actions of one step, then the state at rest.
    fn after(
        &mut self,
        input: Option<&Input>,
        outcome: Result<(), Rejected>,
        generation: Generation,
    ) {
        let refused = outcome.is_err();
        let actions: Vec<Action> = std::iter::from_fn(|| self.launch.poll_action())
            .take(1_000)
            .collect();
        assert!(
            !refused || actions.is_empty(),
            "a refused input produced actions"
        );
        let phase = self.launch.phase();
        let c = &mut self.checker;
        for action in &actions {
            match action {
                Action::StartRuntime { generation } => {
                    assert!(!c.dev_mode, "StartRuntime in dev mode");
                    assert!(
                        c.live.is_none(),
                        "StartRuntime {generation} while {:?} is live",
                        c.live
                    );
                    c.live = Some(*generation);
                    c.stop_asked = false;
                }
                Action::StopRuntime { generation } => {
                    if let Some(live) = c.live {
                        assert_eq!(live, *generation, "stopping the wrong runtime");
                    }
                    c.stop_asked = true;
                }
                Action::SendRegistered { stream, .. } => {
                    c.registered.insert(*stream);
                }
                Action::SendReady { stream, generation } => {
                    assert!(
                        c.registered.contains(stream),
                        "SendReady before SendRegistered"
                    );
                    c.ready.insert(*generation);
                }
                Action::CompleteLaunch { waiters, result } => {
                    assert!(!waiters.is_empty(), "CompleteLaunch with no waiter");
                    for w in waiters {
                        assert!(c.pending_launch.remove(w), "{w} completed twice");
                    }
                    if let Ok(g) = result {
                        assert!(c.ready.contains(g), "CompleteLaunch(Ok) before SendReady");
                    }
                }
                Action::CompleteStop { waiters } => {
                    assert!(!waiters.is_empty(), "CompleteStop with no waiter");
                    for w in waiters {
                        assert!(c.pending_stop.remove(w), "stop {w} completed twice");
                    }
                    assert!(
                        phase == Phase::Idle || self.launch.generation() > generation,
                        "stop completed without reaching idle"
                    );
                }
                Action::RejectRegister { stream, .. } => {
                    assert_eq!(input, Some(&Input::Register { stream: *stream }));
                }
                Action::SendKeepalive { stream } => {
                    assert_eq!(phase, Phase::Ready);
                    assert_eq!(self.launch.stream(), Some(*stream));
                }
                Action::ResolveSpec { .. } | Action::CloseStream { .. } => {}
            }
        }
        assert_eq!(
            self.launch.waiters().len() + self.launch.queued(),
            c.pending_launch.len(),
            "waiters lost or invented"
        );
        if phase == Phase::Idle {
            assert!(c.live.is_none(), "idle with a live runtime");
            assert!(c.pending_launch.is_empty() && c.pending_stop.is_empty());
            assert!(self.launch.poll_timeout().is_none(), "idle with a timer");
        }
        self.transcript.push((outcome, phase, actions));
    }

    /// Stops the chaincode for good and checks nobody is left waiting.
    fn finish(&mut self) {
        let waiter = (0..)
            .map(WaiterId)
            .find(|w| {
                !self.checker.pending_launch.contains(w) && !self.checker.pending_stop.contains(w)
            })
            .unwrap_or(WaiterId(u64::MAX));
        self.feed(Input::Stop { waiter });
        if self.launch.phase() == Phase::Stopping {
            let generation = self.launch.generation();
            self.feed(Input::RuntimeStopped { generation });
        }
        assert_eq!(self.launch.phase(), Phase::Idle);
        assert!(
            self.checker.pending_launch.is_empty(),
            "launch waiters left"
        );
        assert!(self.checker.pending_stop.is_empty(), "stop waiters left");
        assert!(self.checker.live.is_none(), "runtime left live");
    }
}

fuzz_target!(|case: Case| {
    let config = Config {
        startup_timeout: Duration::from_millis(u64::from(case.startup_ms)),
        dev_mode: case.dev_mode,
        keepalive: case
            .keepalive_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
    };
    let base = Instant::now();
    let mut runs = [Run::new(config.clone(), base), Run::new(config, base)];
    for run in &mut runs {
        for &op in case.ops.iter().take(256) {
            run.op(op);
        }
        run.finish();
    }
    let [first, second] = runs;
    assert!(
        first.transcript == second.transcript,
        "two identical runs disagree"
    );
});
