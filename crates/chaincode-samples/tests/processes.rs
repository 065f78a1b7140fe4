//! The sample binaries as real child processes against a real gRPC peer on
//! 127.0.0.1 (a minimal `ChaincodeSupport` server written here).

use std::collections::HashMap;
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use chaincode_proto::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use chaincode_proto::{
    ChaincodeInput, ChaincodeMessage, DelState, GetState, PutState, Response,
    chaincode_message::Type,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Status, Streaming};

const STEP: Duration = Duration::from_secs(20);

struct PeerConn {
    from_cc: Streaming<ChaincodeMessage>,
    to_cc: mpsc::Sender<Result<ChaincodeMessage, Status>>,
}

impl PeerConn {
    async fn recv(&mut self) -> Option<ChaincodeMessage> {
        tokio::time::timeout(STEP, self.from_cc.next())
            .await
            .expect("chaincode sent nothing in time")
            .and_then(Result::ok)
    }

    async fn recv_type(&mut self, kind: Type) -> ChaincodeMessage {
        let msg = self.recv().await.expect("stream ended");
        assert_eq!(msg.message_type(), kind, "got {msg:?}");
        msg
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.to_cc.send(Ok(msg)).await.expect("stream gone");
    }

    async fn handshake(&mut self, name: &str) {
        let register = self.recv_type(Type::Register).await;
        assert_eq!(register.registered_name().unwrap().to_string(), name);
        self.send(ChaincodeMessage::registered()).await;
        self.send(ChaincodeMessage::ready()).await;
    }

    /// Sends TRANSACTION and answers state calls from `state` until the end.
    async fn transact(
        &mut self,
        txid: &str,
        args: &[&str],
        state: &mut HashMap<String, Vec<u8>>,
    ) -> Response {
        self.send(ChaincodeMessage::transaction(
            txid,
            &ChaincodeInput::from_args(args.iter().copied()),
        ))
        .await;
        for _ in 0..8 {
            let msg = self.recv().await.expect("stream ended mid-transaction");
            assert_eq!(msg.txid, txid);
            let reply = match msg.message_type() {
                Type::GetState => state
                    .get(&msg.decode_payload::<GetState>().unwrap().key)
                    .cloned()
                    .unwrap_or_default(),
                Type::PutState => {
                    let put = msg.decode_payload::<PutState>().unwrap();
                    state.insert(put.key, put.value);
                    Vec::new()
                }
                Type::DelState => {
                    state.remove(&msg.decode_payload::<DelState>().unwrap().key);
                    Vec::new()
                }
                Type::Completed => return msg.decode_payload().unwrap(),
                _ => panic!("unexpected {msg:?}"),
            };
            self.send(ChaincodeMessage::response(txid, reply)).await;
        }
        panic!("transaction {txid} did not finish");
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
        let from_cc = request.into_inner();
        self.conns
            .send(PeerConn { from_cc, to_cc })
            .await
            .map_err(|_| Status::unavailable("test over"))?;
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

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

/// Spawns a sample the way a peer does: Fabric's env and `-peer.address`.
fn spawn(bin: &str, name: &str, address: &str, extra_env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(bin);
    command
        .arg(format!("-peer.address={address}"))
        .env("CORE_CHAINCODE_ID_NAME", name)
        .env("CORE_PEER_TLS_ENABLED", "false")
        .env_remove("FAULTY_MODE")
        .stdin(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// Waits for the child to exit, bounded; kills it if it does not.
async fn exit_status(mut child: Child) -> ExitStatus {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit in time");
        }
        // Polling a child's exit has no async event in std; a short bounded poll.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn accept(accepted: &mut mpsc::Receiver<PeerConn>) -> PeerConn {
    tokio::time::timeout(STEP, accepted.recv())
        .await
        .expect("the chaincode never connected")
        .unwrap()
}

#[tokio::test]
async fn kv_serves_put_get_del_and_exits_zero_when_the_peer_closes() {
    let (address, mut accepted) = test_peer().await;
    let child = spawn(env!("CARGO_BIN_EXE_kv"), "kv:1.0", &address, &[]);
    let mut conn = accept(&mut accepted).await;
    conn.handshake("kv:1.0").await;

    conn.send(ChaincodeMessage::init(
        "i",
        &ChaincodeInput::from_args(["init"]),
    ))
    .await;
    let init = conn.recv_type(Type::Completed).await;
    assert_eq!(init.decode_payload::<Response>().unwrap().status, 200);

    let mut state = HashMap::new();
    assert_eq!(
        conn.transact("t1", &["put", "a", "1"], &mut state).await,
        Response::ok(b"OK".to_vec())
    );
    assert_eq!(state.get("a").map(Vec::as_slice), Some(&b"1"[..]));
    assert_eq!(
        conn.transact("t2", &["get", "a"], &mut state).await,
        Response::ok(b"1".to_vec())
    );
    assert_eq!(
        conn.transact("t3", &["del", "a"], &mut state).await.status,
        200
    );
    let missing = conn.transact("t4", &["get", "a"], &mut state).await;
    assert!(
        missing.status >= 400 && missing.message.contains("not found"),
        "{missing:?}"
    );
    let bad = conn.transact("t5", &["frobnicate"], &mut state).await;
    assert_eq!(bad.status, 400);

    drop(conn);
    assert!(exit_status(child).await.success());
}

#[tokio::test]
async fn kv_version_exits_at_once_and_bad_config_exits_two() {
    let out = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kv {}", env!("CARGO_PKG_VERSION"))
    );

    let out = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("-peer.address=127.0.0.1:1")
        .env("CORE_CHAINCODE_ID_NAME", "kv:1.0")
        .env("CORE_PEER_TLS_ENABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CORE_PEER_TLS_ROOTCERT_FILE is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn faulty_crash_before_register_exits_three_without_connecting() {
    let (address, mut accepted) = test_peer().await;
    let child = spawn(
        env!("CARGO_BIN_EXE_faulty"),
        "faulty:1",
        &address,
        &[("FAULTY_MODE", "crash-before-register")],
    );
    assert_eq!(exit_status(child).await.code(), Some(3));
    assert!(accepted.try_recv().is_err(), "it connected");
}

#[tokio::test]
async fn faulty_crash_after_ready_exits_four_after_ready() {
    let (address, mut accepted) = test_peer().await;
    let child = spawn(
        env!("CARGO_BIN_EXE_faulty"),
        "faulty:1",
        &address,
        &[("FAULTY_MODE", "crash-after-ready")],
    );
    let mut conn = accept(&mut accepted).await;
    conn.handshake("faulty:1").await;
    assert_eq!(exit_status(child).await.code(), Some(4));
    assert!(
        conn.recv().await.is_none(),
        "stream should end with the process"
    );
}

#[tokio::test]
async fn faulty_never_register_opens_the_stream_and_dies_when_killed() {
    let (address, mut accepted) = test_peer().await;
    let mut child = spawn(
        env!("CARGO_BIN_EXE_faulty"),
        "faulty:1",
        &address,
        &[("FAULTY_MODE", "never-register")],
    );
    let mut conn = accept(&mut accepted).await;
    // Absence can only be checked over a bounded window.
    let nothing = tokio::time::timeout(Duration::from_millis(500), conn.from_cc.next()).await;
    assert!(nothing.is_err(), "it sent something: {nothing:?}");
    assert!(child.try_wait().unwrap().is_none(), "it exited by itself");
    child.kill().unwrap();
    let status = exit_status(child).await;
    assert!(!status.success());
}

#[tokio::test]
async fn faulty_panic_in_invoke_answers_error_and_exits_101() {
    let (address, mut accepted) = test_peer().await;
    // `--mode=` wins over FAULTY_MODE.
    let child = Command::new(env!("CARGO_BIN_EXE_faulty"))
        .args([
            "--mode=panic-in-invoke",
            &format!("-peer.address={address}"),
        ])
        .env("CORE_CHAINCODE_ID_NAME", "faulty:2")
        .env("FAULTY_MODE", "ok")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut conn = accept(&mut accepted).await;
    conn.handshake("faulty:2").await;
    conn.send(ChaincodeMessage::transaction(
        "boom",
        &ChaincodeInput::from_args(["x"]),
    ))
    .await;
    let error = conn.recv_type(Type::Error).await;
    assert_eq!(error.txid, "boom");
    assert_eq!(
        error.payload_text(),
        "chaincode panicked: faulty: panic in invoke"
    );
    drop(conn);
    assert_eq!(exit_status(child).await.code(), Some(101));
}

#[tokio::test]
async fn faulty_slow_and_ok_answer_after_the_delay() {
    let (address, mut accepted) = test_peer().await;
    let child = spawn(
        env!("CARGO_BIN_EXE_faulty"),
        "faulty:1",
        &address,
        &[("FAULTY_MODE", "slow"), ("FAULTY_DELAY_MS", "300")],
    );
    let mut conn = accept(&mut accepted).await;
    conn.handshake("faulty:1").await;
    let started = tokio::time::Instant::now();
    let mut state = HashMap::new();
    let response = conn.transact("s1", &["hello", "world"], &mut state).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response, Response::ok(b"hello world".to_vec()));
    drop(conn);
    assert!(exit_status(child).await.success());

    let child = spawn(
        env!("CARGO_BIN_EXE_faulty"),
        "faulty:1",
        &address,
        &[("FAULTY_MODE", "ok")],
    );
    let mut conn = accept(&mut accepted).await;
    conn.handshake("faulty:1").await;
    let response = conn.transact("o1", &["echo", "me"], &mut state).await;
    assert_eq!(response, Response::ok(b"echo me".to_vec()));
    drop(conn);
    assert!(exit_status(child).await.success());
}
