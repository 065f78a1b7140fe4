//! The registry stays bounded: unknown names leave nothing behind, idle
//! entries are evicted, and the number of names is capped. Its own test
//! binary, because it measures the process's memory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::ChaincodeName;
use chaincode_support::{
    ChaincodeSupport, MemorySpecStore, SupportConfig, SupportError, SupportEvent, SupportEventKind,
    TxKind,
};
use common::*;
use executor::inproc::InprocExecutor;
use launch_fsm::{LaunchError, Phase};
use tokio::sync::broadcast;

const LIMIT: Duration = Duration::from_secs(20);
const IDLE: Duration = Duration::from_secs(60);

/// The process's resident set, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// The metric lines (not comments) that carry a chaincode label.
fn chaincode_series(support: &ChaincodeSupport) -> Vec<String> {
    support
        .metrics()
        .render()
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("chaincode=\""))
        .map(str::to_owned)
        .collect()
}

/// The sum of the `chaincode_phase` gauges: the number of known chaincodes.
fn phase_gauge_total(support: &ChaincodeSupport) -> i64 {
    support
        .metrics()
        .render()
        .lines()
        .filter(|line| line.starts_with("chaincode_phase{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum()
}

/// Launches `count` distinct names nobody deployed, `batch` at a time, and
/// checks each fails at the spec lookup.
async fn launch_unknown(support: &ChaincodeSupport, prefix: &str, count: usize, batch: usize) {
    let names: Vec<ChaincodeName> = (0..count)
        .map(|i| name(&format!("{prefix}{i}:1.0")))
        .collect();
    for chunk in names.chunks(batch) {
        let results = futures::future::join_all(chunk.iter().map(|cc| support.launch(cc))).await;
        for result in results {
            let error = result.unwrap_err();
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
        }
    }
}

/// A peer over real gRPC whose spec store is empty: every user name is
/// unknown.
async fn empty_peer(executor: Arc<TaskExecutor>) -> ChaincodeSupport {
    peer_with(
        executor,
        |_| {},
        |b| b.spec_store(Arc::new(MemorySpecStore::new())),
    )
    .await
}

#[tokio::test]
async fn twenty_thousand_unknown_names_leave_no_entries_series_or_memory() {
    let executor = TaskExecutor::with("kv", kv());
    let support = empty_peer(executor.clone()).await;
    // Warm the allocator and the runtime before measuring.
    launch_unknown(&support, "warm", 1_000, 500).await;
    assert!(eventually(LIMIT, || support.known_chaincodes() == 0).await);
    let before = rss_bytes();

    launch_unknown(&support, "ghost", 20_000, 500).await;
    assert!(
        eventually(LIMIT, || support.known_chaincodes() == 0).await,
        "{} entries left",
        support.known_chaincodes()
    );
    let after = rss_bytes();

    assert!(support.status().is_empty());
    assert_eq!(chaincode_series(&support), Vec::<String>::new());
    assert_eq!(phase_gauge_total(&support), 0);
    assert_eq!(executor.starts(), 0);
    // Unbounded, this flood grew the peer by ~560 MiB; bounded, it stays
    // within allocator noise.
    let growth = after.saturating_sub(before);
    assert!(
        growth < 64 * 1024 * 1024,
        "rss grew by {} MiB",
        growth / (1024 * 1024)
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_chaincode_that_ran_and_failed_stays_visible_with_its_error() {
    // The spec is found but the executor cannot start "broken": the entry
    // got past the lookup, so `status()` keeps it and its last error.
    let executor = TaskExecutor::with("kv", kv());
    let support = peer(executor.clone()).await;
    let cc = name("broken:1.0");
    let error = support.launch(&cc).await.unwrap_err();
    assert!(
        matches!(
            error,
            SupportError::Launch {
                source: LaunchError::StartFailed { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let status = support.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].chaincode, cc);
    assert!(status[0].last_error.is_some(), "{status:?}");
    assert_eq!(support.known_chaincodes(), 1);
    assert_eq!(phase_gauge_total(&support), 1);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn with_the_registry_full_a_new_name_fails_at_once_and_creates_nothing() {
    let executor = TaskExecutor::with("a", kv());
    executor.set("b", kv());
    executor.set("c", kv());
    executor.set("d", kv());
    let support = peer_with(executor.clone(), |c| c.max_chaincodes = 3, |b| b).await;
    for cc in ["a:1.0", "b:1.0", "c:1.0"] {
        support.launch(&name(cc)).await.unwrap();
    }
    let series_before = chaincode_series(&support);

    let error = support.launch(&name("d:1.0")).await.unwrap_err();
    assert_eq!(
        error,
        SupportError::TooManyChaincodes {
            chaincode: "d:1.0".to_owned(),
            limit: 3,
        }
    );
    assert!(error.to_string().contains("d:1.0"), "{error}");
    assert!(error.to_string().contains('3'), "{error}");
    assert_eq!(support.known_chaincodes(), 3);
    assert_eq!(executor.starts(), 3);
    assert!(
        support
            .status()
            .iter()
            .all(|s| s.chaincode != name("d:1.0"))
    );
    assert_eq!(chaincode_series(&support), series_before);
    assert_eq!(phase_gauge_total(&support), 3);

    // Names already known are unaffected.
    let put = support
        .execute(
            &name("a:1.0"),
            TxKind::Transaction,
            &args(&["put", "k", "v"]),
        )
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unknown_names_do_not_use_up_the_cap() {
    let executor = TaskExecutor::with("a", kv());
    let support = peer_with(
        executor.clone(),
        |c| c.max_chaincodes = 2,
        |b| b.spec_store(Arc::new(MemorySpecStore::new())),
    )
    .await;
    // One at a time: each unknown entry is gone before the next launch.
    for i in 0..50 {
        let cc = name(&format!("nobody{i}:1.0"));
        let error = support.launch(&cc).await.unwrap_err();
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
        assert!(eventually(LIMIT, || support.known_chaincodes() == 0).await);
    }
    support.shutdown(Duration::from_secs(5)).await;
}

/// A runtime with the system chaincode `sys` (the real shim, in process: no
/// socket, so it runs on paused time) and idle eviction after [`IDLE`].
fn inproc_runtime() -> ChaincodeSupport {
    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .unwrap();
    let config = SupportConfig {
        idle_eviction: IDLE,
        ..SupportConfig::default()
    };
    ChaincodeSupport::builder(config).inproc(inproc).build()
}

async fn next_removal(events: &mut broadcast::Receiver<SupportEvent>) -> ChaincodeName {
    loop {
        let event = events.recv().await.unwrap();
        if event.kind == SupportEventKind::Removed {
            return event.chaincode;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_chaincode_that_ran_and_stopped_is_evicted_after_the_idle_time_and_not_before() {
    let support = inproc_runtime();
    let cc = name("sys:1.0");
    let put = support
        .execute(&cc, TxKind::Transaction, &args(&["put", "a", "1"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    support.stop(&cc).await.unwrap();
    let idle_from = tokio::time::Instant::now();
    let mut events = support.subscribe();
    assert_eq!(support.status()[0].phase, Phase::Idle);
    assert_eq!(phase_gauge_total(&support), 1);

    // Everything else runs before the clock reaches this point.
    tokio::time::sleep(IDLE - Duration::from_millis(1)).await;
    assert_eq!(support.known_chaincodes(), 1, "evicted too early");
    assert_eq!(support.status()[0].chaincode, cc);

    let removed = tokio::time::timeout(IDLE, next_removal(&mut events))
        .await
        .expect("evicted");
    assert_eq!(removed, cc);
    assert!(idle_from.elapsed() >= IDLE, "{:?}", idle_from.elapsed());
    assert_eq!(support.known_chaincodes(), 0);
    assert!(support.status().is_empty());
    assert_eq!(chaincode_series(&support), Vec::<String>::new());
    assert_eq!(phase_gauge_total(&support), 0);

    // The name launches afresh.
    let again = support.launch(&cc).await.unwrap();
    assert_eq!(again.generation().0, 1);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_ready_chaincode_is_never_evicted() {
    let support = inproc_runtime();
    let cc = name("sys:1.0");
    support.launch(&cc).await.unwrap();
    tokio::time::sleep(IDLE * 10).await;
    assert_eq!(support.known_chaincodes(), 1);
    let get = support
        .execute(&cc, TxKind::Transaction, &args(&["get", "missing"]))
        .await
        .unwrap();
    assert_eq!(get.status, 404);
    assert_eq!(support.status()[0].phase, Phase::Ready);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_launch_racing_with_eviction_succeeds() {
    let support = inproc_runtime();
    let cc = name("sys:1.0");
    // Launch just before, exactly at and just after the eviction deadline:
    // whichever side wins, the launch is served (by the same entry or a
    // fresh one) and the books stay consistent.
    for offset in [-1i64, 0, 1, 0, -1, 1] {
        support.launch(&cc).await.unwrap();
        support.stop(&cc).await.unwrap();
        let wait = if offset < 0 {
            IDLE - Duration::from_millis(1)
        } else {
            IDLE + Duration::from_millis(offset.unsigned_abs())
        };
        tokio::time::sleep(wait).await;
        let put = support
            .execute(&cc, TxKind::Transaction, &args(&["put", "k", "v"]))
            .await
            .unwrap();
        assert_eq!(put.status, 200);
        assert_eq!(support.known_chaincodes(), 1);
        assert_eq!(support.status()[0].phase, Phase::Ready);
        assert_eq!(phase_gauge_total(&support), 1);
    }
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_zero_idle_time_keeps_idle_entries() {
    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .unwrap();
    let config = SupportConfig {
        idle_eviction: Duration::ZERO,
        ..SupportConfig::default()
    };
    let support = ChaincodeSupport::builder(config).inproc(inproc).build();
    let cc = name("sys:1.0");
    support.launch(&cc).await.unwrap();
    support.stop(&cc).await.unwrap();
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(support.known_chaincodes(), 1);
    support.shutdown(Duration::from_secs(5)).await;
}
