//! The runtime over real gRPC on 127.0.0.1 with the real shim.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::{ChaincodeMessage, ChaincodeName};
use chaincode_support::{ChaincodeSupport, MemorySpecStore, Mode, SupportError, TxKind};
use common::*;
use launch_fsm::{LaunchError, Phase};
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const LIMIT: Duration = Duration::from_secs(20);

/// A peer in dev mode: it never starts chaincode; tests register themselves.
async fn dev_peer() -> ChaincodeSupport {
    peer_with(
        Arc::new(executor::dev::DevExecutor),
        |c| c.mode = Mode::Dev,
        |b| b,
    )
    .await
}

#[tokio::test]
async fn happy_path_launch_init_transactions_stop() {
    let executor = TaskExecutor::with("kv", kv());
    let support = peer(executor.clone()).await;
    let cc = name("kv:1.0");

    let ready = support.launch(&cc).await.expect("launch");
    assert_eq!(ready.generation().0, 1);
    let init = ready.execute(TxKind::Init, &args(&["init"])).await.unwrap();
    assert_eq!(init.status, 200);
    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "a", "1"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let get = support
        .execute(&cc, TxKind::Transaction, &args(&["get", "a"]))
        .await
        .unwrap();
    assert_eq!(get.payload, b"1");
    support
        .execute(&cc, TxKind::Transaction, &args(&["del", "a"]))
        .await
        .unwrap();
    let gone = support
        .execute(&cc, TxKind::Transaction, &args(&["get", "a"]))
        .await
        .unwrap();
    assert_eq!(gone.status, 404);
    let initialised = support
        .execute(&cc, TxKind::Transaction, &args(&["get", "initialised"]))
        .await
        .unwrap();
    assert_eq!(initialised.payload, b"yes");
    assert_eq!(executor.starts(), 1, "one runtime for all of it");

    let status = support.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].phase, Phase::Ready);
    assert_eq!(status[0].executor, "test-task");

    support.stop(&cc).await.unwrap();
    assert_eq!(support.status()[0].phase, Phase::Idle);
    assert_eq!(executor.running(), 0);
    assert!(matches!(
        ready
            .execute(TxKind::Transaction, &args(&["get", "a"]))
            .await,
        Err(SupportError::StreamLost { .. })
    ));
    let metrics = support.metrics().render();
    assert!(
        metrics
            .contains("chaincode_launch_duration_count{chaincode=\"kv:1.0\",success=\"true\"} 1"),
        "{metrics}"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_launches_over_a_hundred_chaincodes_start_each_once() {
    let executor = Arc::new(TaskExecutor::default());
    for i in 0..100 {
        executor.set(&format!("cc{i}"), kv());
    }
    let support = peer(executor.clone()).await;
    let calls = (0..1000).map(|i| {
        let support = support.clone();
        async move { support.launch(&name(&format!("cc{}:1.0", i % 100))).await }
    });
    let results = futures::future::join_all(calls).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(executor.starts(), 100);
    assert!(support.status().iter().all(|s| s.phase == Phase::Ready));
    support.shutdown(Duration::from_secs(10)).await;
    assert_eq!(executor.running(), 0, "shutdown stops every runtime");
}

#[tokio::test]
async fn a_chaincode_that_never_registers_times_out_naming_the_phase() {
    let executor = TaskExecutor::with("mute", Behaviour::NeverRegister);
    let support = peer_with(
        executor.clone(),
        |c| c.startup_timeout = Duration::ZERO,
        |b| b,
    )
    .await;
    let cc = name("mute:1.0");
    let error = support.launch(&cc).await.unwrap_err();
    match &error {
        SupportError::Launch {
            source: LaunchError::Timeout { phase, timeout },
            ..
        } => {
            assert_eq!(*phase, Phase::AwaitingRegister);
            assert_eq!(*timeout, Duration::from_secs(5), "the 5 s minimum applies");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("mute:1.0") && text.contains("awaiting register"),
        "{text}"
    );
    assert!(wait_for_phase(&support, &cc, Phase::Idle, LIMIT).await);
    assert_eq!(executor.running(), 0, "the runtime was stopped");
    assert_eq!(executor.stops.load(Ordering::SeqCst), 1);
    let metrics = support.metrics().render();
    assert!(
        metrics.contains("chaincode_launch_timeouts{chaincode=\"mute:1.0\"} 1"),
        "{metrics}"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

/// Opens a raw `Register` stream and sends `first`; returns the sender and
/// the peer's replies.
async fn raw_stream(
    support: &ChaincodeSupport,
    first: ChaincodeMessage,
) -> (
    mpsc::Sender<ChaincodeMessage>,
    tonic::Streaming<ChaincodeMessage>,
) {
    // The shim's connect gives a plain client; the name here is unused.
    let config =
        chaincode_shim::Config::new(name("any:1"), support.config().peer_address.clone()).unwrap();
    let mut client = chaincode_shim::connect(&config).await.unwrap();
    let (tx, rx) = mpsc::channel(16);
    tx.send(first).await.unwrap();
    let replies = client
        .register(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, replies)
}

async fn next_reply(replies: &mut tonic::Streaming<ChaincodeMessage>) -> Option<ChaincodeMessage> {
    tokio::time::timeout(LIMIT, replies.next())
        .await
        .expect("a reply in time")
        .and_then(Result::ok)
}

#[tokio::test]
async fn bad_registrations_are_refused_and_the_live_chaincode_is_untouched() {
    let executor = TaskExecutor::with("kv", kv());
    let support = peer(executor.clone()).await;
    let cc = name("kv:1.0");
    support.launch(&cc).await.unwrap();

    // Unknown name.
    let (_tx, mut replies) =
        raw_stream(&support, ChaincodeMessage::register(&name("ghost:1.0"))).await;
    let reply = next_reply(&mut replies).await.unwrap();
    assert_eq!(reply.message_type(), Type::Error);
    assert!(
        reply
            .payload_text()
            .contains("no launch is waiting for chaincode ghost:1.0"),
        "{}",
        reply.payload_text()
    );
    assert!(
        next_reply(&mut replies).await.is_none(),
        "the stream is closed"
    );

    // Garbage payload.
    let garbage = ChaincodeMessage {
        r#type: Type::Register as i32,
        payload: vec![0xff; 7],
        ..Default::default()
    };
    let (_tx, mut replies) = raw_stream(&support, garbage).await;
    let reply = next_reply(&mut replies).await.unwrap();
    assert_eq!(reply.message_type(), Type::Error);
    assert!(
        reply.payload_text().contains("ChaincodeID"),
        "{}",
        reply.payload_text()
    );

    // Not a REGISTER first.
    let (_tx, mut replies) = raw_stream(&support, ChaincodeMessage::keepalive()).await;
    let reply = next_reply(&mut replies).await.unwrap();
    assert!(
        reply.payload_text().contains("expected REGISTER"),
        "{}",
        reply.payload_text()
    );

    // A second REGISTER for the live name: refused; closing it disturbs nothing.
    let (impostor, mut replies) = raw_stream(&support, ChaincodeMessage::register(&cc)).await;
    let reply = next_reply(&mut replies).await.unwrap();
    assert_eq!(reply.message_type(), Type::Error);
    assert!(
        reply.payload_text().contains("already registered"),
        "{}",
        reply.payload_text()
    );
    drop(impostor);
    drop(replies);

    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "k", "v"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    assert_eq!(support.status()[0].phase, Phase::Ready);
    assert_eq!(executor.starts(), 1);
    assert_eq!(
        support.known_chaincodes(),
        1,
        "no entry for the refused names"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

/// A chaincode that records the type of every message the peer sends it.
async fn recording_chaincode(
    support: ChaincodeSupport,
    cc: ChaincodeName,
) -> (
    tokio::task::JoinHandle<Vec<Type>>,
    mpsc::Sender<ChaincodeMessage>,
) {
    let (tx, mut replies) = raw_stream(&support, ChaincodeMessage::register(&cc)).await;
    let answer = tx.clone();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(Ok(message)) = replies.next().await {
            let kind = message.message_type();
            seen.push(kind);
            if matches!(kind, Type::Transaction | Type::Init) {
                let done = ChaincodeMessage::completed(
                    &message.txid,
                    &chaincode_proto::Response::ok(Vec::new()),
                );
                if answer.send(done).await.is_err() {
                    break;
                }
            }
        }
        seen
    });
    (task, tx)
}

#[tokio::test]
async fn dev_mode_waits_for_the_users_register_and_never_sends_a_transaction_before_ready() {
    let support = dev_peer().await;
    let cc = name("mine:1.0");
    // Many callers, launching and executing before the chaincode exists.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let support = support.clone();
            let cc = cc.clone();
            tokio::spawn(async move {
                support
                    .execute(&cc, TxKind::Transaction, &args(&["x"]))
                    .await
            })
        })
        .collect();
    assert!(wait_for_phase(&support, &cc, Phase::AwaitingRegister, LIMIT).await);
    let (recorder, tx) = recording_chaincode(support.clone(), cc.clone()).await;
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status, 200);
    }
    support.stop(&cc).await.unwrap();
    drop(tx);
    let seen = tokio::time::timeout(LIMIT, recorder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&seen[..2], &[Type::Registered, Type::Ready], "{seen:?}");
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert!(
        seen[2..].iter().all(|t| *t == Type::Transaction),
        "{seen:?}"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dev_mode_accepts_an_unsolicited_register() {
    let support = dev_peer().await;
    let cc = name("solo:1.0");
    let (_recorder, _tx) = recording_chaincode(support.clone(), cc.clone()).await;
    assert!(wait_for_phase(&support, &cc, Phase::Ready, LIMIT).await);
    let response = support
        .execute(&cc, TxKind::Init, &args(&["init"]))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_crash_mid_transaction_fails_the_caller_promptly_and_the_next_launch_recovers() {
    let entered = Arc::new(Notify::new());
    let executor = TaskExecutor::with("kv", kv_notifying(entered.clone()));
    let support = peer(executor.clone()).await;
    let cc = name("kv:1.0");
    let ready = support.launch(&cc).await.unwrap();
    let slow = {
        let ready = ready.clone();
        tokio::spawn(async move {
            ready
                .execute(TxKind::Transaction, &args(&["slow", "60000"]))
                .await
        })
    };
    // Crash once the transaction is in the chaincode's hands.
    tokio::time::timeout(LIMIT, entered.notified())
        .await
        .unwrap();
    executor.crash(&cc);
    let error = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the caller is told promptly")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(error, SupportError::StreamLost { .. }),
        "{error:?}"
    );
    assert!(wait_for_phase(&support, &cc, Phase::Idle, LIMIT).await);
    assert!(
        support.status()[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("exited")
    );

    let again = support.launch(&cc).await.unwrap();
    assert_eq!(again.generation().0, 2, "a fresh runtime");
    assert_eq!(executor.starts(), 2);
    let put = again
        .execute(TxKind::Transaction, &args(&["put", "k", "v"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_transaction_that_takes_too_long_times_out() {
    let executor = TaskExecutor::with("kv", kv());
    let support = peer_with(
        executor,
        |c| c.execute_timeout = Duration::from_millis(300),
        |b| b,
    )
    .await;
    let cc = name("kv:1.0");
    let error = support
        .execute(&cc, TxKind::Transaction, &args(&["slow", "5000"]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, SupportError::ExecuteTimeout { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("kv:1.0"));
    // The chaincode is still fine for the next one.
    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "k", "v"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    let metrics = support.metrics().render();
    assert!(
        metrics.contains("chaincode_execute_timeouts{chaincode=\"kv:1.0\"} 1"),
        "{metrics}"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_caller_that_gives_up_does_not_disturb_the_others() {
    let executor = TaskExecutor::with("kv", kv());
    let gate = Arc::new(Notify::new());
    *executor.gate.lock() = Some(gate.clone());
    let support = peer(executor.clone()).await;
    let cc = name("kv:1.0");
    let impatient = {
        let support = support.clone();
        let cc = cc.clone();
        tokio::spawn(async move { support.launch(&cc).await })
    };
    let patient = {
        let support = support.clone();
        let cc = cc.clone();
        tokio::spawn(async move { support.launch(&cc).await })
    };
    assert!(wait_for_phase(&support, &cc, Phase::Starting, LIMIT).await);
    impatient.abort();
    assert!(impatient.await.unwrap_err().is_cancelled());
    gate.notify_one();
    let ready = tokio::time::timeout(LIMIT, patient)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ready.generation().0, 1);
    assert_eq!(executor.starts(), 1);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_with_launches_in_flight_fails_every_waiter_and_stops_every_runtime() {
    let executor = TaskExecutor::with("kv", kv());
    executor.set("other", kv());
    let gate = Arc::new(Notify::new());
    *executor.gate.lock() = Some(gate.clone());
    let support = peer(executor.clone()).await;
    let waiting: Vec<_> = ["kv:1.0", "kv:1.0", "other:1.0"]
        .into_iter()
        .map(|cc| {
            let support = support.clone();
            tokio::spawn(async move { support.launch(&name(cc)).await })
        })
        .collect();
    assert!(wait_for_phase(&support, &name("kv:1.0"), Phase::Starting, LIMIT).await);
    assert!(wait_for_phase(&support, &name("other:1.0"), Phase::Starting, LIMIT).await);
    tokio::time::timeout(LIMIT, support.shutdown(Duration::from_secs(5)))
        .await
        .unwrap();
    for call in waiting {
        let error = call.await.unwrap().unwrap_err();
        assert!(
            matches!(
                error,
                SupportError::Launch {
                    source: LaunchError::Stopped { .. },
                    ..
                } | SupportError::ShuttingDown { .. }
            ),
            "{error:?}"
        );
    }
    assert_eq!(executor.running(), 0);
    assert_eq!(executor.starts(), 0, "the gated starts were cancelled");
    assert_eq!(support.known_chaincodes(), 0);
    let late = support.launch(&name("kv:1.0")).await.unwrap_err();
    assert!(
        matches!(late, SupportError::ShuttingDown { .. }),
        "{late:?}"
    );
}

#[tokio::test]
async fn a_missing_spec_is_not_found_and_starts_nothing() {
    let executor = TaskExecutor::with("nope", kv());
    let support = peer_with(
        executor.clone(),
        |_| {},
        |b| b.spec_store(Arc::new(MemorySpecStore::new())),
    )
    .await;
    // A user chaincode goes through the spec store, which is empty here.
    let error = support.launch(&name("nope:1.0")).await.unwrap_err();
    assert!(
        matches!(
            error,
            SupportError::Launch {
                source: LaunchError::NotFound { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("resolving"), "{error}");
    assert_eq!(executor.starts(), 0);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn keepalives_are_sent_while_ready_when_configured() {
    let support = peer_with(
        Arc::new(executor::dev::DevExecutor),
        |c| {
            c.mode = Mode::Dev;
            c.keepalive = Duration::from_millis(50);
        },
        |b| b,
    )
    .await;
    let cc = name("alive:1.0");
    let (_tx, mut replies) = raw_stream(&support, ChaincodeMessage::register(&cc)).await;
    let mut kinds = Vec::new();
    while kinds.iter().filter(|k| **k == Type::Keepalive).count() < 3 {
        let reply = next_reply(&mut replies)
            .await
            .expect("the stream stays open");
        kinds.push(reply.message_type());
    }
    assert_eq!(&kinds[..2], &[Type::Registered, Type::Ready], "{kinds:?}");
    assert!(
        kinds[2..].iter().all(|k| *k == Type::Keepalive),
        "{kinds:?}"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn no_keepalive_is_sent_when_the_interval_is_zero() {
    let support = dev_peer().await;
    let cc = name("quiet:1.0");
    let (recorder, tx) = recording_chaincode(support.clone(), cc.clone()).await;
    let response = support
        .execute(&cc, TxKind::Transaction, &args(&["x"]))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    support.stop(&cc).await.unwrap();
    drop(tx);
    let seen = tokio::time::timeout(LIMIT, recorder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, vec![Type::Registered, Type::Ready, Type::Transaction]);
    support.shutdown(Duration::from_secs(5)).await;
}
