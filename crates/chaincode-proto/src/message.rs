//! Constructors and decoders for the messages that peer and shim exchange.
//!
//! Every constructor fills only what Fabric's shims fill: the type, the txid
//! where the message belongs to a transaction, and the marshalled payload.
//! Add a channel id with [`ChaincodeMessage::with_channel`].

use std::fmt;

use prost::Message;

use crate::error::ProtoError;
use crate::name::ChaincodeName;
use crate::protos::{
    ChaincodeDeploymentSpec, ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
    ChaincodeMessage, ChaincodeSpec, DelState, GetState, PutState, Response, SignedProposal,
    chaincode_message::Type,
};

/// A protobuf message that travels as the `payload` bytes of a
/// [`ChaincodeMessage`]; `PROTO_NAME` is its name in Fabric's `.proto` files,
/// used in error messages.
pub trait Payload: Message + Default {
    /// The message's protobuf name, e.g. `ChaincodeID`.
    const PROTO_NAME: &'static str;
}

macro_rules! payloads {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl Payload for $ty { const PROTO_NAME: &'static str = $name; })*
    };
}

payloads! {
    ChaincodeId => "ChaincodeID",
    ChaincodeInput => "ChaincodeInput",
    ChaincodeSpec => "ChaincodeSpec",
    ChaincodeDeploymentSpec => "ChaincodeDeploymentSpec",
    ChaincodeInvocationSpec => "ChaincodeInvocationSpec",
    ChaincodeEvent => "ChaincodeEvent",
    SignedProposal => "SignedProposal",
    Response => "Response",
    GetState => "GetState",
    PutState => "PutState",
    DelState => "DelState",
    ChaincodeMessage => "ChaincodeMessage",
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str_name())
    }
}

impl ChaincodeMessage {
    fn with_payload(kind: Type, txid: &str, payload: Vec<u8>) -> Self {
        Self {
            r#type: kind as i32,
            txid: txid.to_owned(),
            payload,
            ..Self::default()
        }
    }

    /// REGISTER: the chaincode announces itself; payload = `ChaincodeID{name}`.
    pub fn register(name: &ChaincodeName) -> Self {
        let id = ChaincodeId {
            name: name.to_string(),
            ..ChaincodeId::default()
        };
        Self::with_payload(Type::Register, "", id.encode_to_vec())
    }

    /// REGISTERED: the peer accepted the REGISTER.
    pub fn registered() -> Self {
        Self::with_payload(Type::Registered, "", Vec::new())
    }

    /// READY: the peer may now send INIT/TRANSACTION (2.x form: no txid).
    pub fn ready() -> Self {
        Self::with_payload(Type::Ready, "", Vec::new())
    }

    /// KEEPALIVE: sent by the peer, echoed by the chaincode.
    pub fn keepalive() -> Self {
        Self::with_payload(Type::Keepalive, "", Vec::new())
    }

    /// INIT with its input.
    pub fn init(txid: &str, input: &ChaincodeInput) -> Self {
        Self::with_payload(Type::Init, txid, input.encode_to_vec())
    }

    /// TRANSACTION with its input.
    pub fn transaction(txid: &str, input: &ChaincodeInput) -> Self {
        Self::with_payload(Type::Transaction, txid, input.encode_to_vec())
    }

    /// COMPLETED: the chaincode's answer to INIT/TRANSACTION.
    pub fn completed(txid: &str, response: &Response) -> Self {
        Self::with_payload(Type::Completed, txid, response.encode_to_vec())
    }

    /// ERROR: payload is the error text (as Fabric sends it).
    pub fn error(txid: &str, message: impl Into<String>) -> Self {
        Self::with_payload(Type::Error, txid, message.into().into_bytes())
    }

    /// RESPONSE: the peer's answer to a state request.
    pub fn response(txid: &str, payload: Vec<u8>) -> Self {
        Self::with_payload(Type::Response, txid, payload)
    }

    /// GET_STATE for `key` (no collection).
    pub fn get_state(txid: &str, key: &str) -> Self {
        let body = GetState {
            key: key.to_owned(),
            ..GetState::default()
        };
        Self::with_payload(Type::GetState, txid, body.encode_to_vec())
    }

    /// PUT_STATE of `key` = `value` (no collection).
    pub fn put_state(txid: &str, key: &str, value: Vec<u8>) -> Self {
        let body = PutState {
            key: key.to_owned(),
            value,
            ..PutState::default()
        };
        Self::with_payload(Type::PutState, txid, body.encode_to_vec())
    }

    /// DEL_STATE of `key` (no collection).
    pub fn del_state(txid: &str, key: &str) -> Self {
        let body = DelState {
            key: key.to_owned(),
            ..DelState::default()
        };
        Self::with_payload(Type::DelState, txid, body.encode_to_vec())
    }

    /// Sets the channel id (Fabric ≥ 1.1 routes transactions by txid and channel).
    #[must_use]
    pub fn with_channel(mut self, channel_id: impl Into<String>) -> Self {
        self.channel_id = channel_id.into();
        self
    }

    /// The message type, or `None` when the number is not one Fabric defines.
    pub fn known_type(&self) -> Option<Type> {
        Type::try_from(self.r#type).ok()
    }

    /// The message type; an unknown number reads as `UNDEFINED`.
    pub fn message_type(&self) -> Type {
        self.known_type().unwrap_or(Type::Undefined)
    }

    /// The type's name for logs and errors: `REGISTER`, or `UNKNOWN(99)`.
    pub fn type_label(&self) -> String {
        match self.known_type() {
            Some(kind) => kind.as_str_name().to_owned(),
            None => format!("UNKNOWN({})", self.r#type),
        }
    }

    /// Decodes the payload as `P`; the error names this message's type and `P`.
    pub fn decode_payload<P: Payload>(&self) -> Result<P, ProtoError> {
        decode_payload(self)
    }

    /// The canonical name a REGISTER announces.
    pub fn registered_name(&self) -> Result<ChaincodeName, ProtoError> {
        if self.known_type() != Some(Type::Register) {
            return Err(ProtoError::UnexpectedType {
                expected: "REGISTER",
                actual: self.type_label(),
            });
        }
        let id: ChaincodeId = self.decode_payload()?;
        ChaincodeName::parse(&id.name).map_err(|source| ProtoError::InvalidName { source })
    }

    /// Decodes a whole `ChaincodeMessage` from bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, ProtoError> {
        Self::decode(bytes).map_err(|source| ProtoError::DecodeMessage { source })
    }

    /// The ERROR payload as text (lossy UTF-8), for error reports.
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Decodes `msg.payload` as `P`; the error says e.g.
/// "cannot decode REGISTER payload as ChaincodeID: ...".
pub fn decode_payload<P: Payload>(msg: &ChaincodeMessage) -> Result<P, ProtoError> {
    P::decode(msg.payload.as_slice()).map_err(|source| ProtoError::DecodePayload {
        message_type: msg.type_label(),
        payload_type: P::PROTO_NAME,
        source,
    })
}

impl Response {
    /// Fabric's OK status.
    pub const OK: i32 = 200;
    /// Statuses at or above this are errors (Fabric's `ERRORTHRESHOLD`).
    pub const ERROR_THRESHOLD: i32 = 400;
    /// Fabric's generic error status.
    pub const ERROR: i32 = 500;

    /// Status 200 with `payload`.
    pub fn ok(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            status: Self::OK,
            message: String::new(),
            payload: payload.into(),
        }
    }

    /// An error `status` (callers pass ≥ 400) with `message`.
    pub fn error(status: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            payload: Vec::new(),
        }
    }

    /// True when the status is below the error threshold.
    pub fn is_ok(&self) -> bool {
        self.status < Self::ERROR_THRESHOLD
    }
}

impl ChaincodeInput {
    /// An input from its arguments (the first is usually the function name).
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<Vec<u8>>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}
