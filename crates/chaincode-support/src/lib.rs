//! The chaincode runtime: launch, register, ready, execute, stop.
//!
//! # What it promises
//! - [`ChaincodeSupport::launch`] returns once the chaincode is ready (READY
//!   sent on its stream); concurrent callers of one chaincode share one
//!   start; a caller that gives up disturbs nobody.
//! - No transaction is ever sent before READY: the only way to send one is a
//!   [`ReadyHandle`], handed out after READY.
//! - Every launch, transaction and stop ends, with a typed error that names
//!   the chaincode and the phase when it fails: the startup timeout covers
//!   the whole launch, the execute timeout every transaction.
//! - A REGISTER nobody asked for (outside dev mode), with a garbage payload,
//!   or for a name that is already registered is refused on its own stream;
//!   the legitimate launch and stream are untouched.
//! - With [`SupportBuilder::tls`], every launch whose runtime dials the peer
//!   gets a fresh client certificate bound to its `name:version`, and a
//!   network stream may register only as the chaincode its certificate was
//!   issued for (see [`PeerTls`]).
//! - One driver task per chaincode owns its [`launch_fsm::Launch`]; starts and
//!   stops of one chaincode never overlap, and chaincodes never wait on each
//!   other.
//! - [`ChaincodeSupport::serve`] holds at most
//!   [`SupportConfig::max_connections`] connections, closes one that has not
//!   registered within [`SupportConfig::first_message_timeout`], and ends a
//!   stream whose message exceeds [`SupportConfig::max_message_size`] with
//!   RESOURCE_EXHAUSTED.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use chaincode_proto::{ChaincodeInput, ChaincodeName};
//! use chaincode_support::{ChaincodeSupport, SupportConfig, TxKind};
//! # async fn run(executor: Arc<dyn executor::Executor>) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = SupportConfig { peer_address: listener.local_addr()?.to_string(), ..Default::default() };
//! let support = ChaincodeSupport::builder(config).executor(executor).build();
//! tokio::spawn({ let support = support.clone(); async move { support.serve(listener, std::future::pending()).await } });
//!
//! let kv: ChaincodeName = "kv:1.0".parse()?;
//! let response = support.execute(&kv, TxKind::Transaction, &ChaincodeInput::from_args(["put", "k", "v"])).await?;
//! assert_eq!(response.status, 200);
//! support.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod config;
mod driver;
mod error;
mod listener;
mod metrics;
mod server;
pub mod store;
pub mod stream;
mod support;
mod tls;

pub use config::{Mode, SupportConfig};
pub use error::SupportError;
pub use metrics::Metrics;
pub use server::RegisterService;
pub use store::{
    DEFAULT_MAX_PACKAGE_BYTES, FsSpecStore, MemorySpecStore, MemoryStateStore, SpecStore,
    StateStore,
};
pub use support::{
    ChaincodeStatus, ChaincodeSupport, ReadyHandle, SupportBuilder, SupportEvent, SupportEventKind,
    TxKind,
};
pub use tls::{DEFAULT_CLIENT_VALIDITY, PeerTls};
