//! Fabric-wire-compatible chaincode protocol: the protobuf messages and gRPC
//! services of Hyperledger Fabric's `protos` package that a chaincode and a
//! peer exchange, plus small helpers both sides need.
//!
//! # What it promises
//!
//! - Message names, field numbers, enum numbers and service paths match
//!   Fabric's, so real Fabric shims (Go, Node, Java) and peers interoperate:
//!   `/protos.ChaincodeSupport/Register` (the chaincode dials the peer) and
//!   `/protos.Chaincode/Connect` (the peer dials the chaincode).
//! - Types are generated at build time with prost + tonic from the `.proto`
//!   files under `proto/`, compiled by protox: building never needs `protoc`.
//! - Decoding never panics: bad bytes become a [`ProtoError`] that names the
//!   message type and the payload type.
//!
//! # Example
//!
//! ```
//! use chaincode_proto::{ChaincodeId, ChaincodeMessage, ChaincodeName, chaincode_message::Type};
//! use prost::Message;
//!
//! let name: ChaincodeName = "mycc:1.0".parse().unwrap();
//! let register = ChaincodeMessage::register(&name);
//! // The golden vector from Fabric's wire format.
//! assert_eq!(register.encode_to_vec(), [
//!     0x08, 0x01, 0x1a, 0x0a, 0x12, 0x08, b'm', b'y', b'c', b'c', b':', b'1', b'.', b'0',
//! ]);
//! assert_eq!(register.message_type(), Type::Register);
//! let id: ChaincodeId = register.decode_payload().unwrap();
//! assert_eq!(id.name, "mycc:1.0");
//! assert_eq!(register.registered_name().unwrap(), name);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod error;
pub mod message;
pub mod name;

/// The code generated from `proto/` (Fabric's `protos` package).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use error::ProtoError;
pub use message::{Payload, decode_payload};
pub use name::{ChaincodeName, NameError, validate_name};
pub use protos::{
    ChaincodeDeploymentSpec, ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeMessage, ChaincodeSpec, DelState, GetState, PutState, Response, SignedProposal,
    chaincode_client, chaincode_deployment_spec, chaincode_message, chaincode_server,
    chaincode_spec, chaincode_support_client, chaincode_support_server,
};

/// Re-exported so users of the generated types need not name prost themselves.
pub use prost;
/// Re-exported for `Timestamp` (`prost_types::Timestamp`).
pub use prost_types;
