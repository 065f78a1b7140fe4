//! System chaincodes on the inproc executor, through the runtime.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chaincode_support::{ChaincodeSupport, SupportConfig, SupportError, TxKind};
use common::*;
use executor::inproc::InprocExecutor;
use launch_fsm::Phase;

const LIMIT: Duration = Duration::from_secs(20);

fn runtime() -> (ChaincodeSupport, Arc<InprocExecutor>) {
    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .unwrap();
    let support = ChaincodeSupport::builder(SupportConfig::default())
        .inproc(inproc.clone())
        .build();
    (support, inproc)
}

#[tokio::test]
async fn a_system_chaincode_runs_in_process_without_a_socket() {
    let (support, _inproc) = runtime();
    let cc = name("sys:1.0");
    assert!(support.is_system(&cc));
    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "a", "1"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    let get = support
        .execute(&cc, TxKind::Transaction, &args(&["get", "a"]))
        .await
        .unwrap();
    assert_eq!(get.payload, b"1");
    assert_eq!(support.status()[0].executor, "inproc");
    support.stop(&cc).await.unwrap();
    assert_eq!(support.status()[0].phase, Phase::Idle);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_panic_in_invoke_fails_the_caller_and_the_next_launch_works() {
    let (support, _inproc) = runtime();
    let cc = name("sys:1.0");
    let first = support.launch(&cc).await.unwrap();
    let error = support
        .execute(&cc, TxKind::Transaction, &args(&["panic"]))
        .await
        .unwrap_err();
    match &error {
        SupportError::ChaincodeError { message, .. } => {
            assert!(message.contains("kv: asked to panic"), "{message}")
        }
        SupportError::StreamLost { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    // The runtime reports the panic as the exit, and the entry goes idle.
    assert!(wait_for_phase(&support, &cc, Phase::Idle, LIMIT).await);
    let last = support.status()[0].last_error.clone().unwrap_or_default();
    assert!(
        last.contains("panicked") && last.contains("kv: asked to panic"),
        "{last}"
    );

    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "b", "2"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    let second = support.launch(&cc).await.unwrap();
    assert_eq!(second.generation().0, first.generation().0 + 1);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn registering_a_system_name_twice_is_an_error() {
    let inproc = InprocExecutor::new();
    inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .unwrap();
    let error = inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .unwrap_err();
    assert!(error.to_string().contains("already registered"), "{error}");
}
