//! What can go wrong while setting a bench up.

use std::time::Duration;

/// A bench could not set up or run its workload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// No listener on 127.0.0.1.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The gRPC client could not reach the server.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// Where it dialed.
        address: String,
        /// Why it failed.
        #[source]
        source: tonic::transport::Error,
    },
    /// A gRPC call failed.
    #[error("{call}: {status}")]
    Rpc {
        /// Which call.
        call: &'static str,
        /// The status it ended with.
        status: tonic::Status,
    },
    /// The server ended a stream before answering.
    #[error("{call}: the stream ended after {received} of {expected} answers")]
    StreamEnded {
        /// Which call.
        call: &'static str,
        /// Answers received.
        received: u64,
        /// Answers expected.
        expected: u64,
    },
    /// Something did not happen within its bound.
    #[error("{what}: no result within {limit:?}")]
    TimedOut {
        /// What was waited for.
        what: String,
        /// The bound.
        limit: Duration,
    },
    /// The runtime refused or failed a call.
    #[error(transparent)]
    Support(#[from] chaincode_support::SupportError),
    /// A bench argument or the environment is wrong.
    #[error("{0}")]
    Setup(String),
}
