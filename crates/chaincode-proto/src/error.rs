//! Errors of decoding protocol messages.

use crate::name::NameError;

/// Why a protocol message or its payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The bytes are not a `ChaincodeMessage`.
    #[error("cannot decode ChaincodeMessage: {source}")]
    DecodeMessage {
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// A message's payload is not the typed message it should carry.
    #[error("cannot decode {message_type} payload as {payload_type}: {source}")]
    DecodePayload {
        /// The enclosing message's type, e.g. `REGISTER`.
        message_type: String,
        /// The protobuf name of the expected payload, e.g. `ChaincodeID`.
        payload_type: &'static str,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// A message was not of the type the caller required.
    #[error("expected {expected} message, got {actual}")]
    UnexpectedType {
        /// What was required, e.g. `REGISTER`.
        expected: &'static str,
        /// What came, e.g. `TRANSACTION` or `UNKNOWN(99)`.
        actual: String,
    },
    /// REGISTER carried a chaincode name that is not `name:version` or breaks
    /// Fabric's name rules (see [`crate::name`]).
    #[error("REGISTER carries an invalid chaincode name: {source}")]
    InvalidName {
        /// Why the name was refused.
        #[source]
        source: NameError,
    },
}
