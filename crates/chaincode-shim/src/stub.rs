//! What a chaincode sees of its transaction: the input, the ids, and the
//! state calls that go to the peer.

use std::time::Duration;

use chaincode_proto::{ChaincodeInput, ChaincodeMessage, chaincode_message::Type};
use tokio::sync::mpsc;

use crate::error::ShimError;

/// Bound on waiting for the peer's answer to one state call. Fabric's peer
/// gives a whole transaction 30 s by default, so an answer later than this
/// means the peer has given up on the transaction.
pub const STATE_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One INIT or TRANSACTION as the chaincode sees it.
///
/// State calls take `&mut self`: a transaction has at most one state call in
/// flight, as in Fabric's shims, so answers are matched by txid alone.
#[derive(Debug)]
pub struct Stub {
    txid: String,
    channel_id: String,
    input: ChaincodeInput,
    outbound: mpsc::Sender<ChaincodeMessage>,
    answers: mpsc::Receiver<ChaincodeMessage>,
}

impl Stub {
    pub(crate) fn new(
        txid: String,
        channel_id: String,
        input: ChaincodeInput,
        outbound: mpsc::Sender<ChaincodeMessage>,
        answers: mpsc::Receiver<ChaincodeMessage>,
    ) -> Self {
        Self {
            txid,
            channel_id,
            input,
            outbound,
            answers,
        }
    }

    /// The transaction id.
    pub fn txid(&self) -> &str {
        &self.txid
    }

    /// The channel id (empty when the peer did not send one, as Fabric 1.0).
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The raw arguments.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.input.args
    }

    /// The whole input (arguments, decorations, `is_init`).
    pub fn input(&self) -> &ChaincodeInput {
        &self.input
    }

    /// The first argument as the function name and the rest as parameters
    /// (Fabric's `GetFunctionAndParameters`); invalid UTF-8 is replaced.
    /// No arguments gives an empty function name.
    pub fn function_and_params(&self) -> (String, Vec<String>) {
        let mut args = self
            .input
            .args
            .iter()
            .map(|arg| String::from_utf8_lossy(arg).into_owned());
        let function = args.next().unwrap_or_default();
        (function, args.collect())
    }

    /// Reads `key`; `Ok(None)` when the peer answers with an empty payload
    /// (Fabric's way of saying the key is absent).
    pub async fn get_state(&mut self, key: &str) -> Result<Option<Vec<u8>>, ShimError> {
        let request = ChaincodeMessage::get_state(&self.txid, key);
        let value = self.call("GET_STATE", key, request).await?;
        Ok((!value.is_empty()).then_some(value))
    }

    /// Writes `key` = `value` into the transaction's write set.
    pub async fn put_state(
        &mut self,
        key: &str,
        value: impl Into<Vec<u8>>,
    ) -> Result<(), ShimError> {
        let request = ChaincodeMessage::put_state(&self.txid, key, value.into());
        self.call("PUT_STATE", key, request).await.map(drop)
    }

    /// Deletes `key` in the transaction's write set.
    pub async fn del_state(&mut self, key: &str) -> Result<(), ShimError> {
        let request = ChaincodeMessage::del_state(&self.txid, key);
        self.call("DEL_STATE", key, request).await.map(drop)
    }

    async fn call(
        &mut self,
        op: &'static str,
        key: &str,
        request: ChaincodeMessage,
    ) -> Result<Vec<u8>, ShimError> {
        let request = request.with_channel(self.channel_id.clone());
        self.outbound
            .send(request)
            .await
            .map_err(|_| ShimError::OutboundClosed { phase: "state" })?;
        let answer = tokio::time::timeout(STATE_CALL_TIMEOUT, self.answers.recv())
            .await
            .map_err(|_| ShimError::StateTimeout {
                op,
                key: key.to_owned(),
                timeout: STATE_CALL_TIMEOUT,
            })?
            .ok_or_else(|| ShimError::StateAbandoned {
                op,
                key: key.to_owned(),
            })?;
        match answer.known_type() {
            Some(Type::Response) => Ok(answer.payload),
            Some(Type::Error) => Err(ShimError::StateCall {
                op,
                key: key.to_owned(),
                message: answer.payload_text(),
            }),
            _ => Err(ShimError::StateUnexpected {
                op,
                key: key.to_owned(),
                got: answer.type_label(),
            }),
        }
    }
}
