//! Benchmark 5: execute throughput on one chaincode whose real shim runs in
//! a task and talks to the runtime over real gRPC on 127.0.0.1: TRANSACTION
//! → COMPLETED round trips per second through [`ReadyHandle::execute`],
//! sequentially and with 64 in flight, against, in the same run, a raw tonic
//! bidirectional stream to a trivial echo of the same service carrying a
//! message of the same size (the TRANSACTION), sequentially and with 64 in
//! flight. Target ≥ 0.7× the echo's rate.
//!
//! The chaincode is the `Echo` sample (no state calls), so a transaction is
//! exactly one message each way.
//!
//! `cargo bench -p cclaunch-benches --bench execute`
//!
//! [`ReadyHandle::execute`]: chaincode_support::ReadyHandle::execute

use std::sync::Arc;
use std::time::{Duration, Instant};

use cclaunch_benches::echo::{self, EchoPipe, EchoServer};
use cclaunch_benches::measure::{Recorder, Target, compare_rates};
use cclaunch_benches::peer::{AnySpecStore, Peer};
use cclaunch_benches::runtime;
use cclaunch_benches::task::TaskExecutor;
use chaincode_proto::{ChaincodeInput, ChaincodeMessage, ChaincodeName};
use chaincode_support::{SupportConfig, TxKind};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

const SAMPLES: usize = 15;
const IN_FLIGHT: usize = 64;
const TARGET: f64 = 0.7;

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
    let cc: ChaincodeName = "bench:1.0".parse().expect("a valid name");
    let ready = rt
        .block_on(peer.support.launch(&cc))
        .expect("the chaincode launches");
    let input = ChaincodeInput::from_args(["put", "key-0001", "value-0001"]);
    let check = rt
        .block_on(ready.execute(TxKind::Transaction, &input))
        .expect("a transaction completes");
    assert_eq!(check.payload, b"put key-0001 value-0001");
    // The runtime's txids look like `peer0-tx123`: the echo carries one of the
    // same length, so both sides move the same bytes.
    let message = ChaincodeMessage::transaction("peer0-tx1000000", &input);

    let echo_server = rt
        .block_on(EchoServer::start())
        .expect("the echo server serves on 127.0.0.1");
    let mut pipe = rt
        .block_on(async {
            let mut client = echo::dial(echo_server.address()).await?;
            EchoPipe::open(&mut client).await
        })
        .expect("an echo stream");

    for (window, name) in [(1, "sequential"), (IN_FLIGHT, "in_flight_64")] {
        let mut group = c.benchmark_group(format!("execute_{name}"));
        group
            .sample_size(SAMPLES)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(window as u64));

        let execute = Recorder::new();
        group.bench_function("transaction_completed", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let total = iters * window as u64;
                    let started = Instant::now();
                    let mut sent = 0;
                    let mut running = FuturesUnordered::new();
                    while sent < total || !running.is_empty() {
                        while sent < total && running.len() < window {
                            running.push(ready.execute(TxKind::Transaction, &input));
                            sent += 1;
                        }
                        if let Some(result) = running.next().await {
                            let response = result.expect("a transaction completes");
                            assert_eq!(response.status, 200);
                        }
                    }
                    execute.record(iters, started.elapsed())
                })
            })
        });

        let raw = Recorder::new();
        group.bench_function("tonic_echo", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let started = Instant::now();
                    pipe.run(&message, iters * window as u64, window)
                        .await
                        .expect("the echo answers");
                    raw.record(iters, started.elapsed())
                })
            })
        });
        group.finish();

        compare_rates(
            &format!(
                "bench 5 execute TRANSACTION→COMPLETED ({name}) vs tonic bidi echo of the same size"
            ),
            &execute,
            &raw,
            SAMPLES,
            window as u64,
            Target::AtLeast(TARGET),
        );
    }
    drop(ready);
    // A connected client would hold the echo server's graceful stop.
    drop(pipe);
    rt.block_on(async {
        peer.shutdown(Duration::from_secs(5)).await;
        echo_server.stop(Duration::from_secs(5)).await;
    });
}

criterion_group!(execute, bench);
criterion_main!(execute);
