//! Benchmark 3: launch→ready of the static `kv` sample with the process
//! executor (unpack the code package, spawn, the shim dials the runtime on
//! 127.0.0.1, REGISTER, REGISTERED, READY), against, in the same run,
//! spawning the same binary with `--version` and waiting for its exit.
//! Each launch is followed by an untimed stop. Target ≤ 2×.
//!
//! Two informative figures say where the launch's time goes: unpacking the
//! code package alone, and spawning the freshly unpacked binary.
//!
//! `cargo bench -p cclaunch-benches --bench launch_process`

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cclaunch_benches::measure::{Recorder, Target, compare_times, human, notice};
use cclaunch_benches::peer::Peer;
use cclaunch_benches::runtime;
use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeName};
use chaincode_support::{MemorySpecStore, SupportConfig};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use executor::process::{ProcessConfig, ProcessExecutor};

const SAMPLES: usize = 15;
const TARGET: f64 = 2.0;

async fn spawn_version(binary: &Path) {
    let status = tokio::process::Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("the binary runs");
    assert!(status.success(), "{} --version: {status}", binary.display());
}

fn bench(c: &mut Criterion) {
    let kv = chaincode_samples::static_sample("kv").expect("the static kv sample builds");
    let package = executor::package::package_binary(&kv).expect("kv packs");
    let work = tempfile::tempdir().expect("a temporary directory");
    let rt = runtime().expect("a tokio runtime");
    let processes = Arc::new(ProcessExecutor::new(ProcessConfig {
        work_dir: work.path().join("runtimes"),
        stop_grace: Duration::from_secs(2),
    }));
    let cc: ChaincodeName = "kv:1.0".parse().expect("a valid name");
    let specs = Arc::new(MemorySpecStore::new());
    specs.insert(
        cc.clone(),
        ChaincodeDeploymentSpec {
            code_package: package.clone(),
            ..Default::default()
        },
    );
    let peer = rt
        .block_on(Peer::start(SupportConfig::default(), |builder| {
            builder
                .executor(processes.clone())
                .spec_store(specs.clone())
        }))
        .expect("the runtime serves on 127.0.0.1");
    println!(
        "bench 3: kv is {} bytes, its package {} bytes",
        std::fs::metadata(&kv).map(|m| m.len()).unwrap_or(0),
        package.len()
    );

    let mut group = c.benchmark_group("launch_process_kv");
    group
        .sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));

    let launch = Recorder::new();
    group.bench_function("launch_to_ready", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let ready = peer.support.launch(&cc).await.expect("launch");
                    timed += started.elapsed();
                    drop(ready);
                    peer.support.stop(&cc).await.expect("stop");
                }
                launch.record(iters, timed)
            })
        })
    });

    let spawn = Recorder::new();
    group.bench_function("spawn_version", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    spawn_version(&kv).await;
                }
                spawn.record(iters, started.elapsed())
            })
        })
    });

    // Where the launch's time goes: the unpack, and the exec of a binary
    // that was just written (not yet shared in the page cache's mappings).
    let unpack = Recorder::new();
    let fresh_spawn = Recorder::new();
    group.bench_function("unpack_then_spawn_version", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut unpacking = Duration::ZERO;
                let mut spawning = Duration::ZERO;
                for n in 0..iters {
                    let dest = work.path().join(format!("unpack-{n}"));
                    let started = Instant::now();
                    let binary =
                        executor::package::unpack(&package, &dest, &cc).expect("kv unpacks");
                    unpacking += started.elapsed();
                    let started = Instant::now();
                    spawn_version(&binary).await;
                    spawning += started.elapsed();
                    std::fs::remove_dir_all(&dest).expect("cleanup");
                }
                fresh_spawn.record(iters, spawning);
                unpack.record(iters, unpacking);
                unpacking + spawning
            })
        })
    });
    group.finish();

    compare_times(
        "bench 3 launch→ready of the static kv process vs spawning kv --version",
        &launch,
        &spawn,
        SAMPLES,
        Target::AtMost(TARGET),
    );
    if let (Some(unpacked), Some(spawned)) = (
        unpack.per_iteration(SAMPLES),
        fresh_spawn.per_iteration(SAMPLES),
    ) {
        notice(&format!(
            "bench 3 breakdown: unpacking the package takes {}, spawning the just-unpacked kv --version {}",
            human(unpacked),
            human(spawned)
        ));
    }
    rt.block_on(peer.shutdown(Duration::from_secs(5)));
}

criterion_group!(launch_process, bench);
criterion_main!(launch_process);
