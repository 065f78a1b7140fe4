//! The launch of one chaincode as a pure, sans-IO state machine.
//!
//! # Promise
//! Pure and deterministic: the same inputs at the same times give the same
//! actions. The crate never reads the clock, sleeps, spawns or does I/O —
//! time is an argument (`now: Instant`) and effects come out as [`Action`]s
//! for a driver to perform. A crate-local `.clippy.toml` forbids
//! `Instant::now`, `SystemTime::now` and `thread::sleep`.
//!
//! The transition table is one piece of data, [`table::launch_table`] (a
//! rust-fsm `state_machine!`): `Phase × Signal → Phase [Output]`. [`Launch`]
//! keeps what the table cannot (waiters, generation, stream, deadlines, the
//! last failure), checks inputs against it, and turns outputs into actions.
//! [`table::mermaid_diagram`] renders the table; `docs/fsm.md` shows it, with
//! what each phase waits for and the invariants the tests check.
//!
//! # Drive loop
//! After every `handle*` call, drain [`Launch::poll_action`] until `None`,
//! then re-read [`Launch::poll_timeout`] and call [`Launch::handle_timeout`]
//! when it passes. Answer each action with the input it asks for (tagged with
//! its generation or stream); an illegal or stale input is refused with
//! [`Rejected`] and changes nothing.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use launch_fsm::{Action, Config, Input, Launch, Phase, SpecSource, StreamId, WaiterId};
//!
//! let mut launch = Launch::new(Config::default());
//! let mut now = Instant::now(); // the driver's clock, not the machine's
//! let mut pending = vec![Input::Launch { waiter: WaiterId(1), spec: SpecSource::Lookup }];
//! let mut done = None;
//! while let Some(input) = pending.pop() {
//!     launch.handle(now, input).unwrap();
//!     while let Some(action) = launch.poll_action() {
//!         // A real driver performs each action (executor calls, stream
//!         // sends) and feeds back what happened.
//!         match action {
//!             Action::ResolveSpec { generation } => {
//!                 pending.push(Input::SpecResolved { generation })
//!             }
//!             Action::StartRuntime { generation } => {
//!                 pending.push(Input::Register { stream: StreamId(7) });
//!                 pending.push(Input::RuntimeStarted { generation });
//!             }
//!             Action::SendRegistered { .. } => {}
//!             Action::SendReady { stream, .. } => pending.push(Input::ReadySent { stream }),
//!             Action::CompleteLaunch { waiters, result } => done = Some((waiters, result)),
//!             other => unreachable!("not on the happy path: {other:?}"),
//!         }
//!     }
//!     if let Some(deadline) = launch.poll_timeout() {
//!         assert!(deadline > now); // sleep_until(deadline), then handle_timeout
//!     }
//!     now += Duration::from_millis(1);
//! }
//! assert_eq!(launch.phase(), Phase::Ready);
//! let (waiters, result) = done.unwrap();
//! assert_eq!(waiters, vec![WaiterId(1)]);
//! assert_eq!(result, Ok(launch.generation()));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod launch;
pub mod table;
mod types;

pub use launch::Launch;
pub use table::Phase;
pub use types::{
    Action, Config, Generation, Input, InputKind, LaunchError, RegisterRejection, Rejected,
    SpecSource, StreamId, Timer, WaiterId,
};
