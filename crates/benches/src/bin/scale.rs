//! Benchmark 6, scale: `--calls` concurrent `launch` calls spread over
//! `--chaincodes` chaincodes (call `i` launches chaincode `i mod N`) on a
//! two-worker tokio runtime. Checks that every call ends Ready and that each
//! chaincode was started exactly once, then reports p50/p99 launch latency,
//! the total time and the peak RSS (`VmHWM`) against the targets (p99 < 1 s,
//! peak RSS < 512 MiB).
//!
//! `--executor inproc` (default) runs each chaincode on the inproc executor
//! (the shim over an in-memory stream, one registered factory per name);
//! `--executor grpc` runs the real shim in a task that dials the runtime's
//! gRPC server on 127.0.0.1 (one TCP connection per chaincode).
//!
//! ```text
//! cargo run --release -p cclaunch-benches --bin scale -- --chaincodes 1000 --calls 10000
//! ```
//!
//! Exits 1 when a call fails or the start count is wrong (a correctness
//! failure); the timing targets are reported, never enforced.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cclaunch_benches::BenchError;
use cclaunch_benches::measure::{human, notice, peak_rss_kib, quantile, rss_kib};
use cclaunch_benches::peer::{AnySpecStore, Peer};
use cclaunch_benches::task::TaskExecutor;
use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_support::{ChaincodeSupport, SupportConfig, TxKind};
use clap::{Parser, ValueEnum};
use executor::inproc::InprocExecutor;
use launch_fsm::Phase;

/// The p99 launch latency target.
const P99_TARGET: Duration = Duration::from_secs(1);
/// The peak RSS target, in MiB.
const RSS_TARGET_MIB: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The inproc executor: the shim over an in-memory stream.
    Inproc,
    /// The real shim in a task, over gRPC on 127.0.0.1.
    Grpc,
}

/// Many concurrent launches over many chaincodes.
#[derive(Debug, Parser)]
#[command(name = "scale")]
struct Args {
    /// How many distinct chaincodes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    chaincodes: u32,
    /// How many concurrent launch calls in all.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    calls: u32,
    /// Where the chaincodes run.
    #[arg(long, value_enum, default_value_t = Backend::Inproc)]
    executor: Backend,
    /// Bound on the whole run, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

/// What a run found.
struct Outcome {
    latencies: Vec<Duration>,
    failures: Vec<String>,
    starts: usize,
    ready: usize,
    total: Duration,
    shutdown: Duration,
}

fn names(count: u32) -> Result<Vec<ChaincodeName>, BenchError> {
    (0..count)
        .map(|n| {
            format!("cc{n:06}:1.0")
                .parse()
                .map_err(|e| BenchError::Setup(format!("chaincode name cc{n:06}: {e}")))
        })
        .collect()
}

async fn run(args: &Args) -> Result<Outcome, BenchError> {
    let chaincodes = Arc::new(names(args.chaincodes)?);
    let config = SupportConfig {
        startup_timeout: Duration::from_secs(args.timeout_secs),
        ..SupportConfig::default()
    };
    let inproc_starts = Arc::new(AtomicUsize::new(0));
    let (support, peer, tasks) = match args.executor {
        Backend::Inproc => {
            let inproc = Arc::new(InprocExecutor::new());
            for chaincode in chaincodes.iter() {
                let starts = inproc_starts.clone();
                inproc
                    .register(
                        chaincode.name(),
                        Arc::new(move || {
                            starts.fetch_add(1, Ordering::Relaxed);
                            Arc::new(chaincode_samples::Echo) as _
                        }),
                    )
                    .map_err(|e| BenchError::Setup(e.to_string()))?;
            }
            let support = ChaincodeSupport::builder(config).inproc(inproc).build();
            (support, None, None)
        }
        Backend::Grpc => {
            let tasks = Arc::new(TaskExecutor::new(Arc::new(chaincode_samples::Echo)));
            let peer = Peer::start(config, |builder| {
                builder
                    .executor(tasks.clone())
                    .spec_store(Arc::new(AnySpecStore))
            })
            .await?;
            (peer.support.clone(), Some(peer), Some(tasks))
        }
    };

    let started = Instant::now();
    let calls: Vec<_> = (0..args.calls as usize)
        .map(|call| {
            let support = support.clone();
            let chaincodes = chaincodes.clone();
            // From the call, not from the task's first poll: waiting for a
            // worker is part of the latency a caller sees.
            let started = Instant::now();
            tokio::spawn(async move {
                let chaincode = &chaincodes[call % chaincodes.len()];
                let result = support.launch(chaincode).await;
                (
                    started.elapsed(),
                    result.map(drop).map_err(|e| e.to_string()),
                )
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(calls.len());
    let mut failures = Vec::new();
    for call in calls {
        match call.await {
            Ok((latency, Ok(()))) => latencies.push(latency),
            Ok((_, Err(error))) => failures.push(error),
            Err(error) => failures.push(format!("launch task failed: {error}")),
        }
    }
    let total = started.elapsed();

    let ready = support
        .status()
        .iter()
        .filter(|status| status.phase == Phase::Ready)
        .count();
    // One transaction proves the chaincodes serve, not only that they said READY.
    if let Some(first) = chaincodes.first() {
        let input = ChaincodeInput::from_args(["ping"]);
        match support.execute(first, TxKind::Transaction, &input).await {
            Ok(response) if response.payload == b"ping" => {}
            Ok(response) => failures.push(format!("{first}: unexpected answer {response:?}")),
            Err(error) => failures.push(format!("{first}: {error}")),
        }
    }
    let starts = match &tasks {
        Some(tasks) => tasks.starts(),
        None => inproc_starts.load(Ordering::Relaxed),
    };
    let stopping = Instant::now();
    match peer {
        Some(peer) => peer.shutdown(Duration::from_secs(60)).await,
        None => support.shutdown(Duration::from_secs(60)).await,
    }
    Ok(Outcome {
        latencies,
        failures,
        starts,
        ready,
        total,
        shutdown: stopping.elapsed(),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rss_before = rss_kib().unwrap_or(0);
    let runtime = match cclaunch_benches::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("scale: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let limit = Duration::from_secs(args.timeout_secs);
    let outcome = runtime.block_on(async {
        match tokio::time::timeout(limit, run(&args)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(BenchError::TimedOut {
                what: format!(
                    "{} launch calls over {} chaincodes",
                    args.calls, args.chaincodes
                ),
                limit,
            }),
        }
    });
    let peak_mib = peak_rss_kib().unwrap_or(0) / 1024;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("scale: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut latencies = outcome.latencies;
    latencies.sort();
    let p50 = quantile(&latencies, 0.50).unwrap_or_default();
    let p99 = quantile(&latencies, 0.99).unwrap_or_default();
    let max = latencies.last().copied().unwrap_or_default();
    let verdict = |met: bool| if met { "met" } else { "not met" };
    let kind = match args.executor {
        Backend::Inproc => "inproc",
        Backend::Grpc => "grpc",
    };
    let run = format!(
        "bench 6 scale ({kind}, {} chaincodes, {} calls, 2 workers)",
        args.chaincodes, args.calls
    );
    notice(&format!(
        "{run}: {} of {} calls ready, {} starts, {} chaincodes ready; total {}, {:.0} calls/s; shutdown {}",
        latencies.len(),
        args.calls,
        outcome.starts,
        outcome.ready,
        human(outcome.total),
        f64::from(args.calls) / outcome.total.as_secs_f64(),
        human(outcome.shutdown)
    ));
    notice(&format!(
        "{run}: launch latency p50 {} p99 {} max {} (target p99 < {}): {}",
        human(p50),
        human(p99),
        human(max),
        human(P99_TARGET),
        verdict(p99 < P99_TARGET)
    ));
    notice(&format!(
        "{run}: peak RSS {peak_mib} MiB (VmHWM; {} MiB before the runtime) (target < {RSS_TARGET_MIB} MiB): {}",
        rss_before / 1024,
        verdict(peak_mib < RSS_TARGET_MIB)
    ));

    // Fewer calls than chaincodes launch only as many.
    let expected = args.chaincodes.min(args.calls) as usize;
    let mut correct = true;
    if !outcome.failures.is_empty() {
        correct = false;
        eprintln!(
            "scale: {} calls failed; first: {}",
            outcome.failures.len(),
            outcome.failures[0]
        );
    }
    if outcome.starts != expected {
        correct = false;
        eprintln!(
            "scale: {} starts for {expected} launched chaincodes (expected exactly one each)",
            outcome.starts
        );
    }
    if outcome.ready != expected {
        correct = false;
        eprintln!(
            "scale: {} of {expected} chaincodes ready after the calls",
            outcome.ready
        );
    }
    if correct {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
