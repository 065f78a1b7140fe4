//! The performance suite of cclaunch: what every benchmark needs to measure a
//! figure of the runtime and, in the same run, the baseline it is judged by.
//!
//! # What it promises
//! - Real parts only: a real [`ChaincodeSupport`](chaincode_support::ChaincodeSupport)
//!   serving gRPC on 127.0.0.1 ([`peer`]), the real shim dialing it from a
//!   task ([`task::TaskExecutor`]), and a trivial echo implementation of the
//!   same `protos.ChaincodeSupport` service for the gRPC baselines ([`echo`]).
//! - Every comparison prints one line, `summary: … ratio X (target Y): met`
//!   or `not met`, computed from the bench's own timings ([`measure`]); with
//!   `CCLAUNCH_BENCH_SUMMARY=FILE` the line is appended to `FILE` as well.
//! - Nothing here asserts on time: the figures are reported, not tested.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use cclaunch_benches::measure::{Comparison, Figure, Target};
//!
//! let line = Comparison {
//!     what: "launch→ready (in-process, gRPC)".into(),
//!     measured: Figure::Time(Duration::from_micros(900)),
//!     baseline: Figure::Time(Duration::from_micros(400)),
//!     target: Target::AtMost(3.0),
//! };
//! assert!(line.met());
//! line.print();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod echo;
mod error;
pub mod measure;
pub mod peer;
pub mod task;

pub use error::BenchError;

/// The tokio runtime every bench runs on: two workers, as the machine has
/// two cores.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
