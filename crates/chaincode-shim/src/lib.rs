//! The chaincode side of Fabric's chaincode protocol, for chaincodes written
//! in Rust: connect to the peer, REGISTER, wait for REGISTERED and READY,
//! then serve INIT and TRANSACTION, with GET_STATE / PUT_STATE / DEL_STATE
//! calls back to the peer.
//!
//! # What it promises
//!
//! - The handshake is strict: REGISTER, then REGISTERED, then READY. Anything
//!   else in that order is answered with ERROR and returned as a
//!   [`ShimError::Handshake`] naming what was expected and what came.
//! - Transactions run concurrently, one task each; answers to state calls
//!   are routed by txid. KEEPALIVE is echoed.
//! - A panic in the chaincode is caught, answered with ERROR, and returned
//!   as [`ShimError::ChaincodePanicked`] (see [`serve_stream`]).
//! - [`start`] speaks gRPC to a peer (`/protos.ChaincodeSupport/Register`);
//!   [`serve_stream`] runs the same protocol over any message stream (the
//!   in-process executor uses it without a socket). When the peer closes the
//!   stream, both return `Ok(())`.
//! - Configuration follows Fabric: `CORE_CHAINCODE_ID_NAME`,
//!   `-peer.address=HOST:PORT` or `CORE_PEER_ADDRESS`, and with
//!   `CORE_PEER_TLS_ENABLED=true` TLS with the client certificate and root
//!   from the files Fabric names in `CORE_TLS_CLIENT_*` and
//!   `CORE_PEER_TLS_ROOTCERT_FILE` ([`Config`], [`ShimTls`]).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use chaincode_shim::{BoxFuture, Chaincode, Config, Response, Stub};
//!
//! struct Echo;
//!
//! impl Chaincode for Echo {
//!     fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
//!         Box::pin(async { Response::ok(Vec::new()) })
//!     }
//!     fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
//!         Box::pin(async move {
//!             let (function, params) = stub.function_and_params();
//!             if function == "remember" {
//!                 if let Err(e) = stub.put_state("last", params.join(" ")).await {
//!                     return Response::error(500, e.to_string());
//!                 }
//!             }
//!             Response::ok(params.join(" "))
//!         })
//!     }
//! }
//!
//! # async fn run() -> Result<(), chaincode_shim::ShimError> {
//! let config = Config::from_env_and_args()?;
//! chaincode_shim::start(Arc::new(Echo), config).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod config;
pub mod error;
mod serve;
mod stub;

pub use chaincode_proto::{ChaincodeName, Response};
pub use config::{Config, InvalidTls, ShimTls};
pub use error::{ConfigError, ShimError};
pub use futures::future::BoxFuture;
pub use serve::{
    CONNECT_RETRIES, FLUSH_TIMEOUT, HANDSHAKE_TIMEOUT, RETRY_PAUSE, connect, panic_message,
    serve_stream, start,
};
pub use stub::{STATE_CALL_TIMEOUT, Stub};

/// A chaincode: what the peer's INIT and TRANSACTION run.
///
/// Dyn-compatible (`Arc<dyn Chaincode>`): the methods return boxed futures
/// that borrow `self` and the stub, so write them as
/// `Box::pin(async move { ... })`. Return a [`Response`] with status 200
/// ([`Response::ok`]) or an error status ≥ 400 with a message
/// ([`Response::error`]).
pub trait Chaincode: Send + Sync + 'static {
    /// Runs on INIT.
    fn init<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response>;
    /// Runs on TRANSACTION.
    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response>;
}
