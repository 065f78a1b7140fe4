//! One chaincode stream (one gRPC `Register` call): what each inbound message
//! means, as plain functions, and the connection the runtime writes to.
//!
//! The functions here decide; they do no I/O, so the `register_stream` fuzz
//! target drives them with arbitrary message sequences.

use std::collections::HashMap;
use std::sync::Arc;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::{ChaincodeMessage, ChaincodeName, DelState, GetState, ProtoError, PutState};
use launch_fsm::StreamId;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::StateStore;

/// Why the first message of a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirstMessageError {
    /// The stream ended (or failed) before sending anything.
    #[error("register: stream closed before REGISTER")]
    Closed,
    /// Nothing arrived in time.
    #[error("register: no REGISTER within {0:?}")]
    TimedOut(std::time::Duration),
    /// The first message was not a valid REGISTER.
    #[error("register: {0}")]
    Invalid(ProtoError),
}

/// Checks that a stream's first message is a REGISTER carrying a valid
/// `name:version`, and returns that name.
pub fn validate_first(message: &ChaincodeMessage) -> Result<ChaincodeName, FirstMessageError> {
    message
        .registered_name()
        .map_err(FirstMessageError::Invalid)
}

/// A state request of the chaincode, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateOp {
    /// GET_STATE.
    Get {
        /// The key.
        key: String,
    },
    /// PUT_STATE.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// DEL_STATE.
    Del {
        /// The key.
        key: String,
    },
}

/// What an inbound message on a registered stream asks of the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// COMPLETED or ERROR for a transaction: hand it to whoever waits on `txid`.
    Reply {
        /// The transaction.
        txid: String,
    },
    /// A state request made during transaction `txid`.
    State {
        /// The transaction.
        txid: String,
        /// What it wants.
        op: StateOp,
    },
    /// The chaincode's KEEPALIVE echo: nothing to do.
    Keepalive,
    /// Anything else: answer ERROR with this text and carry on.
    Refuse {
        /// The transaction id to answer on (may be empty).
        txid: String,
        /// Why.
        reason: String,
    },
}

/// Classifies one inbound message of a registered stream.
pub fn classify(message: &ChaincodeMessage) -> Inbound {
    let txid = message.txid.clone();
    let decode_error = |error: ProtoError| Inbound::Refuse {
        txid: message.txid.clone(),
        reason: error.to_string(),
    };
    match message.known_type() {
        Some(Type::Completed | Type::Error) => Inbound::Reply { txid },
        Some(Type::GetState) => match message.decode_payload::<GetState>() {
            Ok(get) => Inbound::State {
                txid,
                op: StateOp::Get { key: get.key },
            },
            Err(e) => decode_error(e),
        },
        Some(Type::PutState) => match message.decode_payload::<PutState>() {
            Ok(put) => Inbound::State {
                txid,
                op: StateOp::Put {
                    key: put.key,
                    value: put.value,
                },
            },
            Err(e) => decode_error(e),
        },
        Some(Type::DelState) => match message.decode_payload::<DelState>() {
            Ok(del) => Inbound::State {
                txid,
                op: StateOp::Del { key: del.key },
            },
            Err(e) => decode_error(e),
        },
        Some(Type::Keepalive) => Inbound::Keepalive,
        Some(Type::Register) => Inbound::Refuse {
            txid,
            reason: "unexpected REGISTER: this stream is already registering".to_owned(),
        },
        _ => Inbound::Refuse {
            txid,
            reason: format!("unsupported: {}", message.type_label()),
        },
    }
}

/// Performs a state request against `store` for `chaincode`'s namespace and
/// builds the answer (RESPONSE with the value, or ERROR).
pub fn answer_state(
    store: &dyn StateStore,
    chaincode: &ChaincodeName,
    txid: &str,
    op: StateOp,
) -> ChaincodeMessage {
    let namespace = chaincode.name();
    let result = match op {
        StateOp::Get { key } => store.get(namespace, &key).map(Option::unwrap_or_default),
        StateOp::Put { key, value } => store.put(namespace, &key, value).map(|()| Vec::new()),
        StateOp::Del { key } => store.delete(namespace, &key).map(|()| Vec::new()),
    };
    match result {
        Ok(payload) => ChaincodeMessage::response(txid, payload),
        Err(reason) => ChaincodeMessage::error(txid, reason),
    }
}

/// What the runtime sends on a stream.
pub(crate) type Outbound = mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>;

/// A registered (or registering) chaincode stream: where the runtime writes,
/// and the transactions waiting for their reply.
#[derive(Debug)]
pub(crate) struct StreamConn {
    pub(crate) id: StreamId,
    pub(crate) chaincode: ChaincodeName,
    outbound: Outbound,
    pending: Mutex<HashMap<String, oneshot::Sender<ChaincodeMessage>>>,
    closed: CancellationToken,
}

impl StreamConn {
    pub(crate) fn new(id: StreamId, chaincode: ChaincodeName, outbound: Outbound) -> Arc<Self> {
        Arc::new(Self {
            id,
            chaincode,
            outbound,
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
        })
    }

    /// Sends one message; `false` when the stream is gone.
    pub(crate) async fn send(&self, message: ChaincodeMessage) -> bool {
        if self.closed.is_cancelled() {
            return false;
        }
        self.outbound.send(Ok(message)).await.is_ok()
    }

    /// Registers a transaction waiting for its reply. `None` when the txid
    /// is already in flight or the stream is closed.
    pub(crate) fn expect_reply(&self, txid: &str) -> Option<oneshot::Receiver<ChaincodeMessage>> {
        let mut pending = self.pending.lock();
        if self.closed.is_cancelled() || pending.contains_key(txid) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        pending.insert(txid.to_owned(), tx);
        Some(rx)
    }

    /// Forgets a transaction (timed out or cancelled).
    pub(crate) fn forget(&self, txid: &str) {
        self.pending.lock().remove(txid);
    }

    /// Whether `txid` is a transaction in flight on this stream.
    pub(crate) fn is_pending(&self, txid: &str) -> bool {
        self.pending.lock().contains_key(txid)
    }

    /// Hands a COMPLETED/ERROR to its transaction; `false` if nobody waits.
    pub(crate) fn deliver(&self, message: ChaincodeMessage) -> bool {
        let waiter = self.pending.lock().remove(&message.txid);
        match waiter {
            Some(tx) => tx.send(message).is_ok(),
            None => false,
        }
    }

    /// Closes the stream: in-flight transactions fail at once (their reply
    /// channels drop) and the reader stops.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.pending.lock().clear();
    }

    /// Resolves when the stream is closed by the runtime.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// How many transactions wait for a reply.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStateStore;
    use chaincode_proto::prost::Message;

    fn cc() -> ChaincodeName {
        "kv:1.0".parse().unwrap()
    }

    #[test]
    fn first_message_must_be_a_valid_register() {
        assert_eq!(validate_first(&ChaincodeMessage::register(&cc())), Ok(cc()));
        let not_register = ChaincodeMessage::ready();
        let err = validate_first(&not_register).unwrap_err().to_string();
        assert!(
            err.contains("expected REGISTER") && err.contains("READY"),
            "{err}"
        );
        let garbage = ChaincodeMessage {
            r#type: Type::Register as i32,
            payload: vec![0xff, 0xff, 0xff],
            ..Default::default()
        };
        let err = validate_first(&garbage).unwrap_err().to_string();
        assert!(err.contains("ChaincodeID"), "{err}");
        let unversioned = ChaincodeMessage {
            r#type: Type::Register as i32,
            payload: chaincode_proto::ChaincodeId {
                name: "kv".into(),
                ..Default::default()
            }
            .encode_to_vec(),
            ..Default::default()
        };
        let err = validate_first(&unversioned).unwrap_err().to_string();
        assert!(err.contains("version"), "{err}");
    }

    #[test]
    fn classifies_replies_state_keepalive_and_the_rest() {
        let t = "tx1";
        assert_eq!(
            classify(&ChaincodeMessage::completed(t, &Default::default())),
            Inbound::Reply { txid: t.into() }
        );
        assert_eq!(
            classify(&ChaincodeMessage::put_state(t, "k", b"v".to_vec())),
            Inbound::State {
                txid: t.into(),
                op: StateOp::Put {
                    key: "k".into(),
                    value: b"v".to_vec()
                }
            }
        );
        assert_eq!(classify(&ChaincodeMessage::keepalive()), Inbound::Keepalive);
        let invoke = ChaincodeMessage {
            r#type: Type::InvokeChaincode as i32,
            txid: t.into(),
            ..Default::default()
        };
        assert_eq!(
            classify(&invoke),
            Inbound::Refuse {
                txid: t.into(),
                reason: "unsupported: INVOKE_CHAINCODE".into()
            }
        );
        let unknown = ChaincodeMessage {
            r#type: 99,
            ..Default::default()
        };
        assert!(
            matches!(classify(&unknown), Inbound::Refuse { reason, .. } if reason.contains("UNKNOWN(99)"))
        );
    }

    #[test]
    fn state_answers_use_the_chaincode_namespace() {
        let store = MemoryStateStore::new();
        let put = answer_state(
            &store,
            &cc(),
            "t",
            StateOp::Put {
                key: "k".into(),
                value: b"v".to_vec(),
            },
        );
        assert_eq!(put.message_type(), Type::Response);
        let get = answer_state(&store, &cc(), "t", StateOp::Get { key: "k".into() });
        assert_eq!(get.payload, b"v");
        assert_eq!(store.get("kv", "k").unwrap(), Some(b"v".to_vec()));
        let missing = answer_state(&store, &cc(), "t", StateOp::Get { key: "nope".into() });
        assert!(missing.payload.is_empty());
    }

    #[tokio::test]
    async fn close_fails_in_flight_transactions() {
        let (tx, _rx) = mpsc::channel(4);
        let conn = StreamConn::new(StreamId(1), cc(), tx);
        let reply = conn.expect_reply("t1").unwrap();
        assert!(
            conn.expect_reply("t1").is_none(),
            "a txid is in flight once"
        );
        assert_eq!(conn.in_flight(), 1);
        conn.close();
        assert!(reply.await.is_err());
        assert!(!conn.send(ChaincodeMessage::ready()).await);
        assert!(conn.expect_reply("t2").is_none());
    }
}
