//! The shim against a real gRPC peer on 127.0.0.1: a minimal
//! `ChaincodeSupport` server written here, driven step by step by each test.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use chaincode_proto::{
    ChaincodeInput, ChaincodeMessage, ChaincodeName, DelState, GetState, PutState, Response,
    chaincode_message::Type,
};
use chaincode_shim::{BoxFuture, Chaincode, Config, ShimError, Stub};
use futures::Stream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Status, Streaming};

const STEP: Duration = Duration::from_secs(10);

/// One chaincode's stream as the test peer sees it.
struct PeerConn {
    from_cc: Streaming<ChaincodeMessage>,
    to_cc: mpsc::Sender<Result<ChaincodeMessage, Status>>,
}

impl PeerConn {
    async fn recv(&mut self) -> ChaincodeMessage {
        tokio::time::timeout(STEP, self.from_cc.next())
            .await
            .expect("chaincode sent nothing in time")
            .expect("chaincode closed its stream")
            .expect("stream error")
    }

    async fn recv_type(&mut self, kind: Type) -> ChaincodeMessage {
        let msg = self.recv().await;
        assert_eq!(msg.message_type(), kind, "got {msg:?}");
        msg
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.to_cc
            .send(Ok(msg))
            .await
            .expect("chaincode stream gone");
    }

    /// REGISTER → REGISTERED → READY.
    async fn handshake(&mut self) {
        let register = self.recv_type(Type::Register).await;
        assert_eq!(
            register.registered_name().unwrap().to_string(),
            "kvtest:1.0"
        );
        self.send(ChaincodeMessage::registered()).await;
        self.send(ChaincodeMessage::ready()).await;
    }
}

struct TestPeer {
    conns: mpsc::Sender<PeerConn>,
}

#[tonic::async_trait]
impl ChaincodeSupport for TestPeer {
    type RegisterStream =
        Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send + 'static>>;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::RegisterStream>, Status> {
        let (to_cc, rx) = mpsc::channel(16);
        let conn = PeerConn {
            from_cc: request.into_inner(),
            to_cc,
        };
        self.conns
            .send(conn)
            .await
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Starts the test peer on an ephemeral port; yields accepted streams.
async fn test_peer() -> (String, mpsc::Receiver<PeerConn>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (conns, accepted) = mpsc::channel(4);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChaincodeSupportServer::new(TestPeer { conns }))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (address, accepted)
}

/// A small key-value chaincode exercising every stub call.
struct KvTest;

impl Chaincode for KvTest {
    fn init<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let args: Vec<String> = stub.function_and_params().1;
            Response::ok(format!("init {} {}", stub.channel_id(), args.join(",")))
        })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let (function, params) = stub.function_and_params();
            let key = params.first().cloned().unwrap_or_default();
            let result = match function.as_str() {
                "get" => match stub.get_state(&key).await {
                    Ok(Some(value)) => Ok(value),
                    Ok(None) => return Response::error(404, format!("{key} not found")),
                    Err(e) => Err(e),
                },
                "put" => {
                    let value = params.get(1).cloned().unwrap_or_default();
                    stub.put_state(&key, value).await.map(|()| b"OK".to_vec())
                }
                "del" => stub.del_state(&key).await.map(|()| Vec::new()),
                "panic" => panic!("kvtest: asked to panic"),
                other => return Response::error(400, format!("unknown function {other}")),
            };
            match result {
                Ok(payload) => Response::ok(payload),
                Err(e) => Response::error(500, e.to_string()),
            }
        })
    }
}

fn config(address: &str) -> Config {
    Config::new(ChaincodeName::parse("kvtest:1.0").unwrap(), address).unwrap()
}

async fn started() -> (PeerConn, JoinHandle<Result<(), ShimError>>) {
    let (address, mut accepted) = test_peer().await;
    let shim = tokio::spawn(chaincode_shim::start(Arc::new(KvTest), config(&address)));
    let conn = tokio::time::timeout(STEP, accepted.recv())
        .await
        .expect("no connection in time")
        .unwrap();
    (conn, shim)
}

async fn finished(shim: JoinHandle<Result<(), ShimError>>) -> Result<(), ShimError> {
    tokio::time::timeout(STEP, shim)
        .await
        .expect("shim did not stop in time")
        .unwrap()
}

fn input(args: &[&str]) -> ChaincodeInput {
    ChaincodeInput::from_args(args.iter().copied())
}

fn completed(msg: &ChaincodeMessage) -> Response {
    assert_eq!(msg.message_type(), Type::Completed, "got {msg:?}");
    msg.decode_payload().unwrap()
}

/// Answers state calls of a conversation from a map until COMPLETED/ERROR.
async fn serve_state_until_done(
    conn: &mut PeerConn,
    state: &mut HashMap<String, Vec<u8>>,
) -> ChaincodeMessage {
    for _ in 0..16 {
        let msg = conn.recv().await;
        let reply = match msg.message_type() {
            Type::GetState => {
                let key = msg.decode_payload::<GetState>().unwrap().key;
                state.get(&key).cloned().unwrap_or_default()
            }
            Type::PutState => {
                let put = msg.decode_payload::<PutState>().unwrap();
                state.insert(put.key, put.value);
                Vec::new()
            }
            Type::DelState => {
                state.remove(&msg.decode_payload::<DelState>().unwrap().key);
                Vec::new()
            }
            _ => return msg,
        };
        conn.send(ChaincodeMessage::response(&msg.txid, reply))
            .await;
    }
    panic!("conversation did not finish");
}

#[tokio::test]
async fn full_handshake_init_transactions_with_state_and_clean_close() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;

    conn.send(ChaincodeMessage::init("tx-init", &input(&["init", "a", "b"])).with_channel("ch1"))
        .await;
    let done = conn.recv().await;
    assert_eq!(done.txid, "tx-init");
    assert_eq!(done.channel_id, "ch1");
    assert_eq!(completed(&done).payload, b"init ch1 a,b");

    let mut state = HashMap::new();
    conn.send(ChaincodeMessage::transaction(
        "tx1",
        &input(&["put", "k", "v1"]),
    ))
    .await;
    let done = serve_state_until_done(&mut conn, &mut state).await;
    assert_eq!(
        (done.txid.as_str(), completed(&done)),
        ("tx1", Response::ok(b"OK".to_vec()))
    );
    assert_eq!(state.get("k").map(Vec::as_slice), Some(&b"v1"[..]));

    conn.send(ChaincodeMessage::transaction("tx2", &input(&["get", "k"])))
        .await;
    let done = serve_state_until_done(&mut conn, &mut state).await;
    assert_eq!(completed(&done), Response::ok(b"v1".to_vec()));

    conn.send(ChaincodeMessage::transaction("tx3", &input(&["del", "k"])))
        .await;
    let done = serve_state_until_done(&mut conn, &mut state).await;
    assert_eq!(completed(&done).status, 200);
    assert!(state.is_empty());

    // Empty RESPONSE payload = absent key.
    conn.send(ChaincodeMessage::transaction("tx4", &input(&["get", "k"])))
        .await;
    let done = serve_state_until_done(&mut conn, &mut state).await;
    assert_eq!(completed(&done), Response::error(404, "k not found"));

    drop(conn);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn state_call_answered_with_error_reaches_the_chaincode() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;
    conn.send(ChaincodeMessage::transaction("tx1", &input(&["get", "k"])))
        .await;
    let get = conn.recv_type(Type::GetState).await;
    assert_eq!(get.txid, "tx1");
    conn.send(ChaincodeMessage::error("tx1", "ledger unavailable"))
        .await;
    let response = completed(&conn.recv().await);
    assert_eq!(response.status, 500);
    assert_eq!(
        response.message,
        "state: GET_STATE \"k\" failed: ledger unavailable"
    );
    drop(conn);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn keepalive_is_echoed_in_handshake_and_while_serving() {
    let (mut conn, shim) = started().await;
    conn.recv_type(Type::Register).await;
    conn.send(ChaincodeMessage::keepalive()).await;
    conn.recv_type(Type::Keepalive).await;
    conn.send(ChaincodeMessage::registered()).await;
    conn.send(ChaincodeMessage::ready()).await;
    conn.send(ChaincodeMessage::keepalive()).await;
    conn.recv_type(Type::Keepalive).await;
    // Still serving afterwards.
    conn.send(ChaincodeMessage::transaction("tx1", &input(&["nope"])))
        .await;
    assert_eq!(completed(&conn.recv().await).status, 400);
    drop(conn);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn ready_before_registered_is_refused() {
    let (mut conn, shim) = started().await;
    conn.recv_type(Type::Register).await;
    conn.send(ChaincodeMessage::ready()).await;
    let error = conn.recv_type(Type::Error).await;
    assert_eq!(
        error.payload_text(),
        "handshake: expected REGISTERED, got READY"
    );
    drop(conn); // as a peer does after an ERROR
    let err = finished(shim).await.unwrap_err();
    assert!(
        matches!(err, ShimError::Handshake { expected: "REGISTERED", ref got } if got == "READY"),
        "{err:?}"
    );
}

#[tokio::test]
async fn transaction_before_ready_is_refused() {
    let (mut conn, shim) = started().await;
    conn.recv_type(Type::Register).await;
    conn.send(ChaincodeMessage::registered()).await;
    conn.send(ChaincodeMessage::transaction(
        "early",
        &input(&["get", "k"]),
    ))
    .await;
    let error = conn.recv_type(Type::Error).await;
    assert_eq!(error.txid, "early");
    assert_eq!(
        error.payload_text(),
        "handshake: expected READY, got TRANSACTION"
    );
    drop(conn);
    let err = finished(shim).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "handshake: expected READY, got TRANSACTION"
    );
}

#[tokio::test]
async fn a_peer_closing_before_registered_is_retried_then_an_error() {
    let (address, mut accepted) = test_peer().await;
    let shim = tokio::spawn(chaincode_shim::start(Arc::new(KvTest), config(&address)));
    // Every attempt registers afresh; the peer drops each one.
    for _ in 0..=chaincode_shim::CONNECT_RETRIES {
        let mut conn = tokio::time::timeout(STEP, accepted.recv())
            .await
            .expect("a connection in time")
            .unwrap();
        conn.recv_type(Type::Register).await;
        drop(conn);
    }
    let err = finished(shim).await.unwrap_err();
    assert!(
        matches!(
            err,
            ShimError::HandshakeClosed {
                expected: "REGISTERED"
            }
        ),
        "{err:?}"
    );
    assert!(
        accepted.try_recv().is_err(),
        "no attempt beyond the retries"
    );
}

#[tokio::test]
async fn a_retry_after_a_dropped_connection_registers_and_serves() {
    let (address, mut accepted) = test_peer().await;
    let shim = tokio::spawn(chaincode_shim::start(Arc::new(KvTest), config(&address)));
    let mut first = tokio::time::timeout(STEP, accepted.recv())
        .await
        .unwrap()
        .unwrap();
    first.recv_type(Type::Register).await;
    drop(first);
    let mut second = tokio::time::timeout(STEP, accepted.recv())
        .await
        .unwrap()
        .unwrap();
    second.handshake().await;
    second
        .send(ChaincodeMessage::init("t1", &input(&["init", "a"])))
        .await;
    let done = second.recv_type(Type::Completed).await;
    assert_eq!(done.txid, "t1");
    drop(second);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn two_transactions_in_flight_both_complete() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;

    // tx1 blocks on its GET_STATE, which is answered only after tx2 has
    // arrived and completed: this only finishes if they run concurrently.
    conn.send(ChaincodeMessage::transaction("tx1", &input(&["get", "a"])))
        .await;
    let get = conn.recv_type(Type::GetState).await;
    assert_eq!(get.txid, "tx1");

    conn.send(ChaincodeMessage::transaction(
        "tx2",
        &input(&["put", "b", "2"]),
    ))
    .await;
    let put = conn.recv_type(Type::PutState).await;
    assert_eq!(put.txid, "tx2");
    conn.send(ChaincodeMessage::response("tx2", Vec::new()))
        .await;
    let done2 = conn.recv().await;
    assert_eq!(done2.txid, "tx2");
    assert_eq!(completed(&done2), Response::ok(b"OK".to_vec()));

    conn.send(ChaincodeMessage::response("tx1", b"1".to_vec()))
        .await;
    let done1 = conn.recv().await;
    assert_eq!(done1.txid, "tx1");
    assert_eq!(completed(&done1), Response::ok(b"1".to_vec()));

    drop(conn);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn duplicate_txid_and_bad_input_are_answered_error_and_serving_goes_on() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;
    conn.send(ChaincodeMessage::transaction("tx1", &input(&["get", "a"])))
        .await;
    conn.recv_type(Type::GetState).await;
    conn.send(ChaincodeMessage::transaction("tx1", &input(&["get", "a"])))
        .await;
    let dup = conn.recv_type(Type::Error).await;
    assert_eq!(
        dup.payload_text(),
        "serve: transaction \"tx1\" is already running"
    );

    let garbage = ChaincodeMessage {
        r#type: Type::Transaction as i32,
        txid: "tx2".into(),
        payload: vec![0xff, 0xff],
        ..Default::default()
    };
    conn.send(garbage).await;
    let bad = conn.recv_type(Type::Error).await;
    assert_eq!(bad.txid, "tx2");
    assert!(
        bad.payload_text()
            .starts_with("serve: cannot decode TRANSACTION payload as ChaincodeInput"),
        "{}",
        bad.payload_text()
    );

    conn.send(ChaincodeMessage::response("tx1", b"x".to_vec()))
        .await;
    assert_eq!(completed(&conn.recv().await), Response::ok(b"x".to_vec()));
    drop(conn);
    finished(shim).await.unwrap();
}

#[tokio::test]
async fn panic_in_invoke_is_answered_error_and_returned() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;
    conn.send(ChaincodeMessage::transaction("boom", &input(&["panic"])))
        .await;
    let error = conn.recv_type(Type::Error).await;
    assert_eq!(error.txid, "boom");
    assert_eq!(
        error.payload_text(),
        "chaincode panicked: kvtest: asked to panic"
    );
    drop(conn);
    let err = finished(shim).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "serve: chaincode panicked in TRANSACTION \"boom\": kvtest: asked to panic"
    );
}

#[tokio::test]
async fn unexpected_message_after_ready_is_refused() {
    let (mut conn, shim) = started().await;
    conn.handshake().await;
    conn.send(ChaincodeMessage::registered()).await;
    let error = conn.recv_type(Type::Error).await;
    assert_eq!(
        error.payload_text(),
        "serve: unexpected REGISTERED message from the peer (txid \"\")"
    );
    drop(conn);
    assert!(matches!(
        finished(shim).await.unwrap_err(),
        ShimError::Unexpected { .. }
    ));
}

#[tokio::test]
async fn unreachable_peer_is_a_connect_error() {
    // Bind then drop to get a port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = chaincode_shim::start(Arc::new(KvTest), config(&address))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("connect: cannot reach peer at {address}")),
        "{err}"
    );
}

#[test]
fn tls_true_without_its_files_is_refused_naming_the_variable() {
    let env = |key: &str| match key {
        "CORE_CHAINCODE_ID_NAME" => Some("kvtest:1.0".to_owned()),
        "CORE_PEER_TLS_ENABLED" => Some("true".to_owned()),
        _ => None,
    };
    let err = Config::from_parts(env, ["-peer.address=127.0.0.1:7052"]).unwrap_err();
    let err = ShimError::from(err);
    assert_eq!(
        err.to_string(),
        "config: CORE_PEER_TLS_ENABLED is true but CORE_PEER_TLS_ROOTCERT_FILE is not set"
    );
}
