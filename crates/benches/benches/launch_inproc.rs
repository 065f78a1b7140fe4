//! Benchmark 2: launch→ready of one chaincode whose real shim runs in a task
//! and dials the runtime's `serve` on 127.0.0.1 over real gRPC (new channel,
//! `Register` stream, REGISTER, REGISTERED, READY), against, in the same
//! run, one gRPC bidirectional-stream round trip with tonic to a trivial
//! echo implementation of the same service: open the stream, one message
//! each way. The baseline is measured twice: with a fresh channel per round
//! trip (the launch dials a fresh channel too) and on an open channel.
//! Each launch is followed by an untimed stop. Target ≤ 3×.
//!
//! `cargo bench -p cclaunch-benches --bench launch_inproc`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cclaunch_benches::echo::{self, EchoServer};
use cclaunch_benches::measure::{Recorder, Target, compare_times, human, notice};
use cclaunch_benches::peer::{AnySpecStore, Peer};
use cclaunch_benches::runtime;
use cclaunch_benches::task::TaskExecutor;
use chaincode_proto::{ChaincodeMessage, ChaincodeName};
use chaincode_support::SupportConfig;
use criterion::{Criterion, criterion_group, criterion_main};

const SAMPLES: usize = 20;
const TARGET: f64 = 3.0;

fn bench(c: &mut Criterion) {
    let rt = runtime().expect("a tokio runtime");
    let executor = Arc::new(TaskExecutor::new(Arc::new(chaincode_samples::Echo)));
    let peer = rt
        .block_on(Peer::start(SupportConfig::default(), |builder| {
            builder
                .executor(executor.clone())
                .spec_store(Arc::new(AnySpecStore))
        }))
        .expect("the runtime serves on 127.0.0.1");
    let echo_server = rt
        .block_on(EchoServer::start())
        .expect("the echo server serves on 127.0.0.1");
    let cc: ChaincodeName = "bench:1.0".parse().expect("a valid name");
    // The first message of a launch, so both sides carry the same bytes.
    let register = ChaincodeMessage::register(&cc);

    let mut group = c.benchmark_group("launch_inproc_grpc");
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let launch = Recorder::new();
    let stops = Recorder::new();
    group.bench_function("launch_to_ready", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                let mut stopping = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let ready = peer.support.launch(&cc).await.expect("launch");
                    timed += started.elapsed();
                    drop(ready);
                    let started = Instant::now();
                    peer.support.stop(&cc).await.expect("stop");
                    stopping += started.elapsed();
                }
                stops.record(iters, stopping);
                launch.record(iters, timed)
            })
        })
    });

    let fresh = Recorder::new();
    group.bench_function("echo_round_trip_new_channel", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let mut client = echo::dial(echo_server.address()).await.expect("dial");
                    let dialed = started.elapsed();
                    let (_, round_trip) = echo::round_trip(&mut client, register.clone())
                        .await
                        .expect("echo");
                    timed += dialed + round_trip;
                    drop(client);
                }
                fresh.record(iters, timed)
            })
        })
    });

    let open = Recorder::new();
    let mut client = rt
        .block_on(echo::dial(echo_server.address()))
        .expect("dial");
    group.bench_function("echo_round_trip_open_channel", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let (_, round_trip) = echo::round_trip(&mut client, register.clone())
                        .await
                        .expect("echo");
                    timed += round_trip;
                }
                open.record(iters, timed)
            })
        })
    });
    group.finish();
    // A connected client would hold the echo server's graceful stop.
    drop(client);

    compare_times(
        "bench 2 launch→ready in-process over gRPC vs echo round trip on a new channel",
        &launch,
        &fresh,
        SAMPLES,
        Target::AtMost(TARGET),
    );
    compare_times(
        "bench 2 launch→ready in-process over gRPC vs echo round trip on an open channel",
        &launch,
        &open,
        SAMPLES,
        Target::AtMost(TARGET),
    );
    if let Some(stop) = stops.per_iteration(SAMPLES) {
        notice(&format!(
            "bench 2 (untimed part) stop of the in-process chaincode: {} per stop; {} runtimes started",
            human(stop),
            executor.starts()
        ));
    }
    rt.block_on(async {
        peer.shutdown(Duration::from_secs(5)).await;
        echo_server.stop(Duration::from_secs(5)).await;
    });
}

criterion_group!(launch_inproc, bench);
criterion_main!(launch_inproc);
