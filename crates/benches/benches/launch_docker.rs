//! Benchmark 4: the Docker executor on the real engine, against the docker
//! CLI doing the same work, in the same run.
//!
//! - Launch→ready with the image already built (remove a stale container,
//!   create, start, the shim dials the runtime over the host network,
//!   REGISTER, REGISTERED, READY) vs `docker run --rm --network host IMAGE
//!   --version` of the same image until its first line of output. Each
//!   launch is followed by an untimed stop. Target ≤ 1.2×.
//! - The first launch, image build included (the image is removed, untimed,
//!   before each), vs `docker build` by the CLI of the same context (the
//!   same Dockerfile and binary written to a directory; the legacy builder,
//!   which is what the engine API builds with). Target ≤ 1.1×.
//!
//! The binary is the static `kv` sample with a tail of bytes unique to this
//! run appended (the ELF loader ignores it), so that no image already on the
//! engine can serve either side's build from its cache.
//!
//! Skips with a notice when no engine is reachable (fails instead with
//! `CCLAUNCH_REQUIRE_DOCKER=1`).
//!
//! `cargo bench -p cclaunch-benches --bench launch_docker`

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cclaunch_benches::measure::{Recorder, Target, compare_times, notice};
use cclaunch_benches::peer::Peer;
use cclaunch_benches::runtime;
use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeName};
use chaincode_support::{MemorySpecStore, SupportConfig, SupportEventKind};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use executor::docker::{DockerConfig, DockerExecutor, LABEL_CCID, LABEL_PEER};
use tokio::io::{AsyncBufReadExt, BufReader};

const SAMPLES: usize = 10;
const TARGET_BUILT: f64 = 1.2;
const TARGET_BUILD: f64 = 1.1;

/// The Dockerfile the executor writes for a package holding only the
/// executable (see `executor::docker`).
const DOCKERFILE: &str = "FROM scratch\nCOPY chaincode /usr/local/bin/chaincode\nWORKDIR /chaincode\nENTRYPOINT [\"/usr/local/bin/chaincode\"]\n";

/// kv with a tail unique to this run, written into `dir` as `chaincode`.
fn unique_binary(kv: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(kv).expect("kv is readable");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    bytes
        .extend_from_slice(format!("\ncclaunch-bench-{}-{nanos}\n", std::process::id()).as_bytes());
    let path = dir.join("chaincode");
    std::fs::write(&path, bytes).expect("the binary is written");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("the binary is made executable");
    path
}

fn docker_cli() -> tokio::process::Command {
    let mut command = tokio::process::Command::new("docker");
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// `docker run --rm --network host IMAGE --version`, timed until the first
/// line of output; the exit is awaited untimed.
async fn docker_run_first_line(image: &str) -> Duration {
    let started = Instant::now();
    let mut child = docker_cli()
        .args(["run", "--rm", "--network", "host", image, "--version"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the docker CLI runs");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next_line().await.expect("docker run prints");
    let elapsed = started.elapsed();
    assert!(
        first.as_deref().is_some_and(|line| line.starts_with("kv ")),
        "docker run printed {first:?}"
    );
    let status = child.wait().await.expect("docker run ends");
    assert!(status.success(), "docker run: {status}");
    elapsed
}

/// Runs a docker CLI command to its end; its stdout.
async fn docker_cli_run(args: &[&str]) -> String {
    let output = docker_cli()
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .await
        .expect("the docker CLI runs");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn bench(c: &mut Criterion) {
    let rt = runtime().expect("a tokio runtime");
    let peer_id = format!("bench{}", std::process::id());
    let connected = rt.block_on(DockerExecutor::connect(DockerConfig {
        peer_id: peer_id.clone(),
        network_id: "perf".to_owned(),
        stop_timeout: Duration::from_secs(1),
        ..DockerConfig::default()
    }));
    let docker = match connected {
        Ok(docker) => Arc::new(docker),
        Err(error) if std::env::var("CCLAUNCH_REQUIRE_DOCKER").as_deref() == Ok("1") => {
            panic!("CCLAUNCH_REQUIRE_DOCKER=1 but no Docker engine: {error}")
        }
        Err(error) => {
            notice(&format!("bench 4 skipped: no Docker engine: {error}"));
            return;
        }
    };

    let kv = chaincode_samples::static_sample("kv").expect("the static kv sample builds");
    let context = tempfile::tempdir().expect("a temporary directory");
    let binary = unique_binary(&kv, context.path());
    std::fs::write(context.path().join("Dockerfile"), DOCKERFILE).expect("the Dockerfile");
    let cc: ChaincodeName = "kv:1.0".parse().expect("a valid name");
    let image = docker.image_name(&cc).expect("an image name");
    let cli_image = format!("{image}-cli");
    let specs = Arc::new(MemorySpecStore::new());
    specs.insert(
        cc.clone(),
        ChaincodeDeploymentSpec {
            code_package: executor::package::package_binary(&binary).expect("kv packs"),
            ..Default::default()
        },
    );
    let peer = rt
        .block_on(Peer::start(
            SupportConfig {
                startup_timeout: Duration::from_secs(120),
                ..SupportConfig::default()
            },
            |builder| builder.executor(docker.clone()).spec_store(specs.clone()),
        ))
        .expect("the runtime serves on 127.0.0.1");
    // Counts build steps served from the cache, which would flatter a side.
    let cached_steps = Arc::new(AtomicUsize::new(0));
    {
        let mut events = peer.support.subscribe();
        let cached_steps = cached_steps.clone();
        rt.spawn(async move {
            while let Ok(event) = events.recv().await {
                if let SupportEventKind::Progress(line) = event.kind
                    && line.contains("Using cache")
                {
                    cached_steps.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    rt.block_on(async {
        docker.remove_image(&cc).await.expect("no stale image");
        let ready = peer.support.launch(&cc).await.expect("the first launch");
        drop(ready);
        peer.support.stop(&cc).await.expect("stop");
    });

    let mut group = c.benchmark_group("launch_docker_kv");
    group
        .sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(3));

    let launch = Recorder::new();
    group.bench_function("launch_to_ready_image_built", |b| {
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

    let run = Recorder::new();
    group.bench_function("docker_run_version_first_line", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    timed += docker_run_first_line(&image).await;
                }
                run.record(iters, timed)
            })
        })
    });

    let first_launch = Recorder::new();
    group.bench_function("first_launch_with_build", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    docker.remove_image(&cc).await.expect("remove the image");
                    let builds = docker.builds_performed();
                    let started = Instant::now();
                    let ready = peer.support.launch(&cc).await.expect("launch");
                    timed += started.elapsed();
                    assert_eq!(docker.builds_performed(), builds + 1, "the launch built");
                    drop(ready);
                    peer.support.stop(&cc).await.expect("stop");
                }
                first_launch.record(iters, timed)
            })
        })
    });
    rt.block_on(async { docker.remove_image(&cc).await.expect("remove the image") });
    let executor_cached = cached_steps.load(Ordering::Relaxed);

    let build = Recorder::new();
    let mut cli_cached = 0;
    let context_dir = context.path().display().to_string();
    let peer_label = format!("{LABEL_PEER}={peer_id}");
    let ccid_label = format!("{LABEL_CCID}={cc}");
    group.bench_function("docker_build_cli", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let output = docker_cli_run(&[
                        "build",
                        "--rm",
                        "--force-rm",
                        "--label",
                        &peer_label,
                        "--label",
                        &ccid_label,
                        "-t",
                        &cli_image,
                        &context_dir,
                    ])
                    .await;
                    timed += started.elapsed();
                    cli_cached += output.matches("Using cache").count();
                    docker_cli_run(&["rmi", "-f", &cli_image]).await;
                }
                build.record(iters, timed)
            })
        })
    });
    group.finish();

    compare_times(
        "bench 4 docker launch→ready (image built) vs docker run --version (first line)",
        &launch,
        &run,
        SAMPLES,
        Target::AtMost(TARGET_BUILT),
    );
    compare_times(
        "bench 4 docker first launch (image build included) vs docker build by the CLI",
        &first_launch,
        &build,
        SAMPLES,
        Target::AtMost(TARGET_BUILD),
    );
    notice(&format!(
        "bench 4 build steps served from the cache: executor {executor_cached}, CLI {cli_cached} (0 and 0 = both built from scratch)"
    ));
    rt.block_on(async {
        peer.shutdown(Duration::from_secs(10)).await;
        let _ = docker.remove_image(&cc).await;
    });
}

criterion_group!(launch_docker, bench);
criterion_main!(launch_docker);
