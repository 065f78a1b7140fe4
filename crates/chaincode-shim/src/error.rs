//! Errors of the shim, each naming the phase it happened in.

use std::time::Duration;

use chaincode_proto::NameError;

/// Why the shim's configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `CORE_CHAINCODE_ID_NAME` is not set.
    #[error("config: CORE_CHAINCODE_ID_NAME is not set")]
    MissingName,
    /// `CORE_CHAINCODE_ID_NAME` is not `name:version`.
    #[error("config: CORE_CHAINCODE_ID_NAME is invalid: {source}")]
    InvalidName {
        /// Why the name was refused.
        #[source]
        source: NameError,
    },
    /// Neither `-peer.address` nor `CORE_PEER_ADDRESS` was given.
    #[error("config: no peer address: pass -peer.address=HOST:PORT or set CORE_PEER_ADDRESS")]
    MissingPeerAddress,
    /// `-peer.address` was the last argument, with no value after it.
    #[error("config: {flag} needs a value: {flag}=HOST:PORT")]
    MissingFlagValue {
        /// The flag as written.
        flag: String,
    },
    /// The peer address is not `HOST:PORT`.
    #[error("config: peer address {address:?} is not HOST:PORT: {reason}")]
    InvalidPeerAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `CORE_PEER_TLS_ENABLED=true` but a variable naming TLS material is unset.
    #[error("config: CORE_PEER_TLS_ENABLED is true but {var} is not set")]
    TlsMissingVar {
        /// The variable (for the client cert and key, either spelling is
        /// enough; the `_FILE` one is named).
        var: &'static str,
    },
    /// A TLS file named by `var` cannot be read.
    #[error("config: cannot read {var}={path}: {reason}")]
    TlsUnreadable {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
        /// What the file system said.
        reason: String,
    },
    /// A TLS file named by `var` does not hold what it should.
    #[error("config: {var}={path} is invalid: {reason}")]
    TlsInvalid {
        /// The variable that names the file.
        var: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `CORE_PEER_TLS_ENABLED` is not a boolean.
    #[error("config: CORE_PEER_TLS_ENABLED={0:?} is not a boolean (true/false)")]
    InvalidTlsFlag(String),
}

/// Why the shim stopped, or why a state call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShimError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The peer could not be reached (the message carries the transport's
    /// whole chain of causes, e.g. a certificate the peer refused).
    #[error("connect: cannot reach peer at {address}: {}", causes(source))]
    Connect {
        /// `HOST:PORT` of the peer.
        address: String,
        /// What the transport reported.
        #[source]
        source: tonic::transport::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connect: peer at {address} did not accept the connection within {timeout:?}")]
    ConnectTimeout {
        /// `HOST:PORT` of the peer.
        address: String,
        /// The bound that expired.
        timeout: Duration,
    },
    /// The peer sent something other than what the handshake expects.
    #[error("handshake: expected {expected}, got {got}")]
    Handshake {
        /// The message the handshake waited for (`REGISTERED` or `READY`).
        expected: &'static str,
        /// The type of the message that came.
        got: String,
    },
    /// The peer did not send the next handshake message in time.
    #[error("handshake: no {expected} from the peer within {timeout:?}")]
    HandshakeTimeout {
        /// The message the handshake waited for.
        expected: &'static str,
        /// The bound that expired.
        timeout: Duration,
    },
    /// The peer closed the stream before the handshake finished.
    #[error("handshake: peer closed the stream while waiting for {expected}")]
    HandshakeClosed {
        /// The message the handshake waited for.
        expected: &'static str,
    },
    /// The stream failed with a gRPC status.
    #[error("{phase}: stream failed: {status}")]
    Stream {
        /// `handshake` or `serve`.
        phase: &'static str,
        /// What gRPC reported.
        status: tonic::Status,
    },
    /// Nobody receives the messages the shim sends any more.
    #[error("{phase}: the outbound stream to the peer is closed")]
    OutboundClosed {
        /// `handshake`, `serve` or `state`.
        phase: &'static str,
    },
    /// After READY, the peer sent a message the shim does not handle.
    #[error("serve: unexpected {got} message from the peer (txid {txid:?})")]
    Unexpected {
        /// The type of the message.
        got: String,
        /// Its txid.
        txid: String,
    },
    /// The user's chaincode panicked; the transaction was answered ERROR and
    /// the shim stopped serving.
    #[error("serve: chaincode panicked in {kind} {txid:?}: {message}")]
    ChaincodePanicked {
        /// `INIT` or `TRANSACTION`.
        kind: &'static str,
        /// The transaction that was running.
        txid: String,
        /// The panic's message.
        message: String,
    },
    /// The peer answered a state call with ERROR.
    #[error("state: {op} {key:?} failed: {message}")]
    StateCall {
        /// `GET_STATE`, `PUT_STATE` or `DEL_STATE`.
        op: &'static str,
        /// The key.
        key: String,
        /// The peer's error text.
        message: String,
    },
    /// The peer answered a state call with something other than RESPONSE/ERROR.
    #[error("state: {op} {key:?} got unexpected {got} answer")]
    StateUnexpected {
        /// The request type.
        op: &'static str,
        /// The key.
        key: String,
        /// The type of the answer.
        got: String,
    },
    /// The peer did not answer a state call in time.
    #[error("state: {op} {key:?} got no answer within {timeout:?}")]
    StateTimeout {
        /// The request type.
        op: &'static str,
        /// The key.
        key: String,
        /// The bound that expired.
        timeout: Duration,
    },
    /// The shim stopped serving while a state call waited for its answer.
    #[error("state: {op} {key:?} abandoned: the shim stopped serving")]
    StateAbandoned {
        /// The request type.
        op: &'static str,
        /// The key.
        key: String,
    },
}

impl ShimError {
    /// Whether the run failed before the peer registered the chaincode, in
    /// a way a new connection may cure: the peer refused the connection, or
    /// the transport failed (or the stream ended without a word) before
    /// REGISTERED. A refusal by the peer (ERROR) is not retryable.
    pub fn is_retryable_before_register(&self) -> bool {
        match self {
            ShimError::Connect { .. } => true,
            ShimError::Stream { phase, .. } => *phase == "register",
            ShimError::HandshakeClosed { expected } => *expected == "REGISTERED",
            _ => false,
        }
    }
}

/// `error: cause: cause...`: tonic's transport error says only "transport
/// error" and keeps the useful part (refused, a TLS alert) in its sources.
pub(crate) fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}
