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
    // The exit may be reported just after the phase change; either way it
    // is the chaincode's own code, not the peer's SIGTERM.
    let last = wait_for_last_error(&rig.support, &cc, |e| e.contains("exit code 4")).await;
    assert!(
        !last.contains("signal") && !last.contains("stopped"),
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

/// Polls (bounded by `LIMIT`) until `chaincode`'s last error satisfies `pred`;
/// returns it.
async fn wait_for_last_error(
    support: &ChaincodeSupport,
    chaincode: &ChaincodeName,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let last = support
            .status()
            .into_iter()
            .find(|s| &s.chaincode == chaincode)
            .and_then(|s| s.last_error);
        if let Some(last) = last.as_deref().filter(|l| pred(l)) {
            return last.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last error of {chaincode} never matched: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The process executor, passing every event on and telling the test about
/// each exit once it has been handed to the runtime.
struct TellExits {
    inner: Arc<ProcessExecutor>,
    exits: tokio::sync::mpsc::UnboundedSender<executor::ExitStatus>,
}

impl executor::Executor for TellExits {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        self.inner.runtime_name(chaincode)
    }

    fn start(
        &self,
        request: executor::StartRequest,
        sink: executor::EventSink,
    ) -> futures::future::BoxFuture<'_, Result<(), executor::ExecutorError>> {
        let (tee, mut events) = executor::EventSink::channel(sink.generation());
        let exits = self.exits.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let exit = match &event.kind {
                    executor::RuntimeEventKind::Exited(status) => Some(status.clone()),
                    _ => None,
                };
                sink.send(event.kind);
                if let Some(status) = exit {
                    let _ = exits.send(status);
                }
            }
        });
        self.inner.start(request, tee)
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> futures::future::BoxFuture<'a, Result<(), executor::ExecutorError>> {
        self.inner.stop(chaincode)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_leaves_no_error_and_a_crash_names_its_own_code() {
    let faulty = chaincode_samples::static_sample("faulty").unwrap();
    let kv = chaincode_samples::static_sample("kv").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let processes = Arc::new(ProcessExecutor::new(ProcessConfig {
        work_dir: dir.path().to_path_buf(),
        stop_grace: Duration::from_secs(2),
    }));
    let (exits_tx, mut exits) = tokio::sync::mpsc::unbounded_channel();
    let tell = Arc::new(TellExits {
        inner: processes.clone(),
        exits: exits_tx,
    });
    let specs = Arc::new(MemorySpecStore::new());
    let support = peer_with(
        tell,
        |c| c.chaincode_env = vec![("FAULTY_MODE".into(), "crash-after-ready".into())],
        |b| b.spec_store(specs.clone()),
    )
    .await;

    // Stopped by the peer: the exit says so, and status shows no error.
    let cc = name("kv:1.0");
    specs.insert(cc.clone(), spec_for(&kv));
    support.launch(&cc).await.expect("kv launches");
    support.stop(&cc).await.unwrap();
    let status = tokio::time::timeout(LIMIT, exits.recv())
        .await
        .expect("an exit")
        .expect("the executor is alive");
    assert!(status.is_stopped_by_peer(), "{status}");
    // The runtime has the exit; it must not turn it into an error.
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        let last = support.status()[0].last_error.clone();
        assert_eq!(last, None, "a requested stop shows as an error");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A crash: the true code, not the peer's signal.
    let crash = name("faulty:1.0");
    specs.insert(crash.clone(), spec_for(&faulty));
    support.launch(&crash).await.expect("it does get ready");
    let status = tokio::time::timeout(LIMIT, exits.recv())
        .await
        .expect("an exit")
        .expect("the executor is alive");
    assert_eq!(status, executor::ExitStatus::Code(4));
    let last = wait_for_last_error(&support, &crash, |e| e.contains("exit code 4")).await;
    assert!(!last.contains("signal"), "{last}");
    support.shutdown(Duration::from_secs(5)).await;
}
