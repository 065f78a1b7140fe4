//! The benches' parts do what the benches rely on (no timing is asserted).

use std::sync::Arc;
use std::time::Duration;

use cclaunch_benches::peer::{AnySpecStore, Peer};
use cclaunch_benches::task::TaskExecutor;
use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_support::{SupportConfig, TxKind};
use launch_fsm::Phase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_executor_runs_the_real_shim_over_grpc_and_stops_it() {
    let executor = Arc::new(TaskExecutor::new(Arc::new(chaincode_samples::Echo)));
    let peer = Peer::start(SupportConfig::default(), |builder| {
        builder
            .executor(executor.clone())
            .spec_store(Arc::new(AnySpecStore))
    })
    .await
    .unwrap();
    assert!(peer.address().ip().is_loopback());
    let cc: ChaincodeName = "bench:1.0".parse().unwrap();

    let ready = peer.support.launch(&cc).await.unwrap();
    let response = ready
        .execute(TxKind::Transaction, &ChaincodeInput::from_args(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(response.payload, b"a b");
    assert_eq!(executor.starts(), 1);
    // A second launch of a ready chaincode starts nothing.
    peer.support.launch(&cc).await.unwrap();
    assert_eq!(executor.starts(), 1);

    drop(ready);
    peer.support.stop(&cc).await.unwrap();
    assert_eq!(peer.support.status()[0].phase, Phase::Idle);
    let again = peer.support.launch(&cc).await.unwrap();
    assert_eq!(executor.starts(), 2, "a stopped chaincode starts afresh");
    drop(again);
    peer.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn the_scale_run_checks_and_reports_a_small_run() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scale"))
        .args([
            "--chaincodes",
            "20",
            "--calls",
            "200",
            "--timeout-secs",
            "60",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("200 of 200 calls ready, 20 starts, 20 chaincodes ready"),
        "{stdout}"
    );
    assert!(stdout.contains("launch latency p50"), "{stdout}");
    assert!(stdout.contains("peak RSS"), "{stdout}");
}

#[test]
fn the_scale_run_refuses_bad_arguments() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scale"))
        .args(["--chaincodes", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--chaincodes"), "{stderr}");
}
