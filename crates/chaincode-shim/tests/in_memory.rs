//! `serve_stream` over plain channels: no socket, as the in-process executor
//! hosts system chaincodes.

use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::{
    ChaincodeInput, ChaincodeMessage, ChaincodeName, Response, chaincode_message::Type,
};
use chaincode_shim::{BoxFuture, Chaincode, ShimError, Stub};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const STEP: Duration = Duration::from_secs(10);

struct Counter;

impl Chaincode for Counter {
    fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { panic!("counter: init refuses") })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let current = match stub.get_state("n").await {
                Ok(value) => value.unwrap_or_default(),
                Err(e) => return Response::error(500, e.to_string()),
            };
            let n = String::from_utf8_lossy(&current)
                .parse::<u64>()
                .unwrap_or(0)
                + 1;
            match stub.put_state("n", n.to_string()).await {
                Ok(()) => Response::ok(n.to_string()),
                Err(e) => Response::error(500, e.to_string()),
            }
        })
    }
}

struct Harness {
    to_cc: mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>,
    from_cc: mpsc::Receiver<ChaincodeMessage>,
    shim: tokio::task::JoinHandle<Result<(), ShimError>>,
}

impl Harness {
    fn start() -> Self {
        let (to_cc, inbound) = mpsc::channel(8);
        let (outbound, from_cc) = mpsc::channel(8);
        let shim = tokio::spawn(chaincode_shim::serve_stream(
            Arc::new(Counter),
            ChaincodeName::parse("counter:0.1").unwrap(),
            outbound,
            ReceiverStream::new(inbound),
        ));
        Self {
            to_cc,
            from_cc,
            shim,
        }
    }

    async fn recv(&mut self) -> ChaincodeMessage {
        tokio::time::timeout(STEP, self.from_cc.recv())
            .await
            .expect("nothing from the chaincode in time")
            .expect("chaincode closed its side")
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.to_cc.send(Ok(msg)).await.unwrap();
    }

    async fn ready(&mut self) {
        let register = self.recv().await;
        assert_eq!(
            register.registered_name().unwrap().to_string(),
            "counter:0.1"
        );
        self.send(ChaincodeMessage::registered()).await;
        self.send(ChaincodeMessage::ready()).await;
    }

    /// Closes the peer's side, then waits for the shim's result.
    async fn result(self) -> Result<(), ShimError> {
        self.result_within(STEP).await
    }

    async fn result_within(self, bound: Duration) -> Result<(), ShimError> {
        let Harness { to_cc, shim, .. } = self;
        drop(to_cc);
        tokio::time::timeout(bound, shim).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn serves_over_channels_and_ends_ok_when_inbound_ends() {
    let mut h = Harness::start();
    h.ready().await;
    let mut stored = Vec::new();
    for round in 1..=3u64 {
        let txid = format!("tx{round}");
        h.send(ChaincodeMessage::transaction(
            &txid,
            &ChaincodeInput::from_args(["inc"]),
        ))
        .await;
        let get = h.recv().await;
        assert_eq!(
            (get.message_type(), get.txid.as_str()),
            (Type::GetState, txid.as_str())
        );
        h.send(ChaincodeMessage::response(&txid, stored.clone()))
            .await;
        let put = h.recv().await;
        assert_eq!(put.message_type(), Type::PutState);
        stored = put
            .decode_payload::<chaincode_proto::PutState>()
            .unwrap()
            .value;
        h.send(ChaincodeMessage::response(&txid, Vec::new())).await;
        let done = h.recv().await;
        let response: Response = done.decode_payload().unwrap();
        assert_eq!(response, Response::ok(round.to_string()));
    }
    assert_eq!(stored, b"3");
    h.result().await.unwrap();
}

#[tokio::test]
async fn panic_in_init_is_reported_with_its_message() {
    let mut h = Harness::start();
    h.ready().await;
    h.send(ChaincodeMessage::init(
        "i1",
        &ChaincodeInput::from_args(["init"]),
    ))
    .await;
    let error = h.recv().await;
    assert_eq!(error.message_type(), Type::Error);
    assert_eq!(
        error.payload_text(),
        "chaincode panicked: counter: init refuses"
    );
    match h.result().await.unwrap_err() {
        ShimError::ChaincodePanicked {
            kind,
            txid,
            message,
        } => {
            assert_eq!(
                (kind, txid.as_str(), message.as_str()),
                ("INIT", "i1", "counter: init refuses")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn stream_error_during_serve_is_returned() {
    let mut h = Harness::start();
    h.ready().await;
    h.to_cc
        .send(Err(tonic::Status::unavailable("peer went away")))
        .await
        .unwrap();
    let to_cc = h.to_cc.clone(); // the error, not the end of the stream, must stop it
    let err = h.result().await.unwrap_err();
    drop(to_cc);
    assert!(
        err.to_string().starts_with("serve: stream failed: "),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn silent_peer_times_out_the_handshake() {
    let mut h = Harness::start();
    h.recv().await; // REGISTER, then nothing: paused time jumps to the deadline.
    let to_cc = h.to_cc.clone(); // keep the stream open: the peer is silent, not gone
    let err = h
        .result_within(chaincode_shim::HANDSHAKE_TIMEOUT * 2)
        .await
        .unwrap_err();
    drop(to_cc);
    assert!(
        matches!(
            err,
            ShimError::HandshakeTimeout {
                expected: "REGISTERED",
                ..
            }
        ),
        "{err:?}"
    );
}
