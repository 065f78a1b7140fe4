//! The process executor through the runtime: real static sample binaries,
//! real child processes, real gRPC on 127.0.0.1.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeName};
use chaincode_support::{ChaincodeSupport, MemorySpecStore, SupportConfig, SupportError, TxKind};
use common::*;
use executor::process::{ProcessConfig, ProcessExecutor};
use launch_fsm::{LaunchError, Phase};

const LIMIT: Duration = Duration::from_secs(30);

fn spec_for(binary: &Path) -> ChaincodeDeploymentSpec {
    ChaincodeDeploymentSpec {
        code_package: executor::package::package_binary(binary).unwrap(),
        ..Default::default()
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
}

struct Rig {
    support: ChaincodeSupport,
    processes: Arc<ProcessExecutor>,
    specs: Arc<MemorySpecStore>,
    _dir: tempfile::TempDir,
}

async fn rig(tweak: impl FnOnce(&mut SupportConfig)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let processes = Arc::new(ProcessExecutor::new(ProcessConfig {
        work_dir: dir.path().to_path_buf(),
        stop_grace: Duration::from_secs(2),
    }));
    let specs = Arc::new(MemorySpecStore::new());
    let support = peer_with(processes.clone(), tweak, |b| b.spec_store(specs.clone())).await;
    Rig {
        support,
        processes,
        specs,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_kv_sample_runs_serves_and_leaves_no_process() {
    let kv_binary = chaincode_samples::static_sample("kv").unwrap();
    let rig = rig(|_| {}).await;
    let cc: ChaincodeName = name("kv:1.0");
    rig.specs.insert(cc.clone(), spec_for(&kv_binary));

    let ready = rig.support.launch(&cc).await.expect("kv launches");
    let pid = rig.processes.pid(&cc).expect("a child process");
    assert!(pid_alive(pid));
    for (function, expect) in [
        (&["put", "a", "1"][..], 200),
        (&["get", "a"][..], 200),
        (&["del", "a"][..], 200),
        (&["get", "a"][..], 404),
    ] {
        let response = ready
            .execute(TxKind::Transaction, &args(function))
            .await
            .unwrap();
        assert_eq!(response.status, expect, "{function:?}: {response:?}");
    }
    rig.support.stop(&cc).await.unwrap();
    assert!(
        !pid_alive(pid),
        "the chaincode process {pid} is gone after stop"
    );
    assert_eq!(rig.support.status()[0].phase, Phase::Idle);
    rig.support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_crashes_after_ready_is_noticed_and_relaunched() {
    let faulty = chaincode_samples::static_sample("faulty").unwrap();
    let rig =
        rig(|c| c.chaincode_env = vec![("FAULTY_MODE".into(), "crash-after-ready".into())]).await;
    let cc = name("faulty:1.0");
    rig.specs.insert(cc.clone(), spec_for(&faulty));
    let first = rig.support.launch(&cc).await.expect("it does get ready");
    assert!(
        wait_for_phase(&rig.support, &cc, Phase::Idle, LIMIT).await,
        "the exit is noticed"
    );
    let last = rig.support.status()[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        last.contains("exit code 4") || last.contains("stream closed"),
        "{last}"
    );
    // The next launch gets a fresh runtime (which crashes again, but it runs).
    let second = rig.support.launch(&cc).await.expect("relaunch");
    assert!(second.generation() > first.generation());
    rig.support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_never_registers_times_out_and_is_killed() {
    let faulty = chaincode_samples::static_sample("faulty").unwrap();
    let rig = rig(|c| {
        c.startup_timeout = SupportConfig::MIN_STARTUP_TIMEOUT;
        c.chaincode_env = vec![("FAULTY_MODE".into(), "never-register".into())];
    })
    .await;
    let cc = name("faulty:1.0");
    rig.specs.insert(cc.clone(), spec_for(&faulty));
    let launch = {
        let support = rig.support.clone();
        let cc = cc.clone();
        tokio::spawn(async move { support.launch(&cc).await })
    };
    assert!(wait_for_phase(&rig.support, &cc, Phase::AwaitingRegister, LIMIT).await);
    let pid = rig.processes.pid(&cc).expect("a child process");
    let error = launch.await.unwrap().unwrap_err();
    assert!(
        matches!(
            &error,
            SupportError::Launch {
                source: LaunchError::Timeout {
                    phase: Phase::AwaitingRegister,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("faulty:1.0"), "{error}");
    assert!(wait_for_phase(&rig.support, &cc, Phase::Idle, LIMIT).await);
    assert!(
        !pid_alive(pid),
        "the process that never registered was killed"
    );
    rig.support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_broken_package_fails_the_launch_with_a_clear_error() {
    let rig = rig(|_| {}).await;
    let cc = name("broken:1.0");
    rig.specs.insert(
        cc.clone(),
        ChaincodeDeploymentSpec {
            code_package: b"this is not a tar.gz".to_vec(),
            ..Default::default()
        },
    );
    let error = rig.support.launch(&cc).await.unwrap_err();
    assert!(
        matches!(
            &error,
            SupportError::Launch {
                source: LaunchError::StartFailed { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("broken:1.0") && text.contains("starting"),
        "{text}"
    );
    assert!(wait_for_phase(&rig.support, &cc, Phase::Idle, LIMIT).await);
    rig.support.shutdown(Duration::from_secs(5)).await;
}
