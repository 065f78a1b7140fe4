//! Fabric-wire-compatible chaincode protocol (work in progress: the generated
//! messages land with the protocol issue).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod name;

pub use name::{ChaincodeName, NameError};
