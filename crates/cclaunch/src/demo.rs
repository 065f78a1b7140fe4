//! `cclaunch demo`: an embedded peer on 127.0.0.1 that launches a system
//! chaincode in-process, the `kv` chaincode as a local process and, when a
//! Docker Engine is there, `kv` again in a container; runs a few
//! transactions on each, shows every phase change live, prints a summary,
//! and stops everything.
//!
//! The `kv` chaincode is `cclaunch` itself: started as a peer starts a
//! chaincode binary (`chaincode -peer.address=HOST:PORT`), `cclaunch` runs
//! its bundled chaincode named by `CORE_CHAINCODE_ID_NAME`. So the demo needs
//! nothing but its own executable: the process executor gets
//! `current_exe()` as the code package.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_support::{
    ChaincodeSupport, PeerTls, SupportConfig, SupportEvent, SupportEventKind, TxKind,
};
use executor::docker::{DockerConfig, DockerExecutor};
use executor::inproc::InprocExecutor;
use executor::process::{ProcessConfig, ProcessExecutor};
use executor::{EventSink, Executor, ExecutorError, StartRequest};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::chaincodes;
use crate::error::CliError;
use crate::output::{Output, Spinner, outln};

/// `cclaunch demo`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Run the Docker part, building a statically linked chaincode binary if
    /// needed (with cargo, from this workspace); fail if no engine is reachable.
    #[arg(long)]
    pub docker: bool,
}

/// The name of the chaincode run in a container.
const DOCKER_KV: &str = "kv-docker";

/// Sends each chaincode to its backend: the containerised `kv` to Docker,
/// every other user chaincode to the process executor.
struct Router {
    process: Arc<ProcessExecutor>,
    docker: Option<Arc<DockerExecutor>>,
}

impl Router {
    fn pick(&self, chaincode: &ChaincodeName) -> &dyn Executor {
        match &self.docker {
            Some(docker) if chaincode.name() == DOCKER_KV => docker.as_ref(),
            _ => self.process.as_ref(),
        }
    }
}

impl Executor for Router {
    fn kind(&self) -> &'static str {
        "demo"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        self.pick(chaincode).runtime_name(chaincode)
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        let backend = self.pick(&request.chaincode);
        backend.start(request, sink)
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        self.pick(chaincode).stop(chaincode)
    }
}

/// One transaction and what it must answer.
#[derive(Debug, Clone, Serialize)]
struct TxReport {
    args: Vec<String>,
    status: Option<i32>,
    payload: String,
    message: String,
    expected_status: i32,
    expected_payload: Option<String>,
    ok: bool,
}

/// One chaincode's part of the demo.
#[derive(Debug, Clone, Serialize)]
struct ChaincodeReport {
    chaincode: String,
    executor: &'static str,
    phase: String,
    launch_ms: Option<u64>,
    transactions: Vec<TxReport>,
    error: Option<String>,
    ok: bool,
}

/// A phase change or progress line as the demo saw it.
#[derive(Debug, Clone, Serialize)]
struct EventReport {
    elapsed_ms: u64,
    chaincode: String,
    phase: Option<String>,
    generation: u64,
    progress: Option<String>,
}

struct Demo {
    support: ChaincodeSupport,
    events: broadcast::Receiver<SupportEvent>,
    started: Instant,
    seen: Vec<EventReport>,
    out: Output,
    spinner: Spinner,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Demo {
    fn show(&mut self, event: SupportEvent) {
        let elapsed_ms = millis(self.started.elapsed());
        let report = match event.kind {
            SupportEventKind::Phase { phase, generation } => EventReport {
                elapsed_ms,
                chaincode: event.chaincode.to_string(),
                phase: Some(phase.to_string()),
                generation: generation.0,
                progress: None,
            },
            SupportEventKind::Progress(line) => EventReport {
                elapsed_ms,
                chaincode: event.chaincode.to_string(),
                phase: None,
                generation: 0,
                progress: Some(line),
            },
            _ => return,
        };
        if !self.out.json {
            let what = report
                .phase
                .clone()
                .or_else(|| report.progress.as_ref().map(|p| format!("  {p}")))
                .unwrap_or_default();
            self.spinner
                .set_message(format!("{}: {what}", report.chaincode));
            self.spinner.println(&format!(
                "{elapsed_ms:>7} ms  {:<20} {what}",
                report.chaincode
            ));
        }
        self.seen.push(report);
    }

    fn drain(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(event) => self.show(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    }

    /// Runs `work`, printing events as they come.
    async fn watching<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        // Bounded by `work`: every round either shows an event or ends.
        loop {
            tokio::select! {
                done = &mut work => {
                    self.drain();
                    return done;
                }
                event = self.events.recv() => match event {
                    Ok(event) => self.show(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        let done = work.await;
                        return done;
                    }
                },
            }
        }
    }

    fn say(&self, line: &str) {
        if !self.out.json {
            self.spinner.println(line);
        }
    }

    async fn run_chaincode(
        &mut self,
        chaincode: &ChaincodeName,
        executor: &'static str,
        spec: Option<chaincode_proto::ChaincodeDeploymentSpec>,
        transactions: &[(&[&str], i32, Option<&str>)],
    ) -> ChaincodeReport {
        let mut report = ChaincodeReport {
            chaincode: chaincode.to_string(),
            executor,
            phase: "idle".to_owned(),
            launch_ms: None,
            transactions: Vec::new(),
            error: None,
            ok: false,
        };
        self.say(&format!("launching {chaincode} ({executor})"));
        self.spinner.set_message(format!("launching {chaincode}"));
        let support = self.support.clone();
        let began = Instant::now();
        let launched = self
            .watching(async {
                match spec {
                    Some(spec) => support.deploy(chaincode, spec).await,
                    None => support.launch(chaincode).await,
                }
            })
            .await;
        let ready = match launched {
            Ok(ready) => ready,
            Err(e) => {
                report.error = Some(e.to_string());
                self.say(&format!("error: {e}"));
                return report;
            }
        };
        report.launch_ms = Some(millis(began.elapsed()));
        report.phase = "ready".to_owned();
        for (args, expected_status, expected_payload) in transactions {
            let input = ChaincodeInput::from_args(args.iter().copied());
            let answer = ready.execute(TxKind::Transaction, &input).await;
            let mut tx = TxReport {
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                status: None,
                payload: String::new(),
                message: String::new(),
                expected_status: *expected_status,
                expected_payload: expected_payload.map(str::to_owned),
                ok: false,
            };
            match answer {
                Ok(response) => {
                    tx.status = Some(response.status);
                    tx.payload = String::from_utf8_lossy(&response.payload).into_owned();
                    tx.message = response.message;
                    tx.ok = response.status == *expected_status
                        && expected_payload.is_none_or(|want| want == tx.payload);
                }
                Err(e) => tx.message = e.to_string(),
            }
            self.say(&format!(
                "          {chaincode} {:<18} -> {} {}{}",
                tx.args.join(" "),
                tx.status.map_or("error".to_owned(), |s| s.to_string()),
                tx.payload,
                if tx.message.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", tx.message)
                },
            ));
            report.transactions.push(tx);
        }
        report.ok = report.transactions.iter().all(|tx| tx.ok);
        report
    }
}

/// The code package of `binary` as [`executor::package::package_binary`]
/// makes it (a tar.gz holding it as `chaincode`, mode 0755) but stored
/// without compression: the demo packs the (large, in debug builds)
/// `cclaunch` executable itself, and deflating it would dominate the launch
/// time it shows.
fn quick_package(binary: &Path) -> Result<Vec<u8>, CliError> {
    let fail =
        |e: std::io::Error| CliError::new(format!("cannot package {}: {e}", binary.display()));
    let data = std::fs::read(binary).map_err(fail)?;
    let gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() + 4096),
        flate2::Compression::none(),
    );
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    builder
        .append_data(&mut header, executor::package::EXECUTABLE, data.as_slice())
        .map_err(fail)?;
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .map_err(fail)
}

/// The deployment spec of `binary` as `chaincode`, packed with [`quick_package`].
fn quick_spec(
    binary: &Path,
    chaincode: &ChaincodeName,
) -> Result<chaincode_proto::ChaincodeDeploymentSpec, CliError> {
    let mut spec = crate::package::spec_with_package(chaincode, Vec::new());
    spec.code_package = quick_package(binary)?;
    Ok(spec)
}

/// Where the static `kv` sample is when it has been built already
/// (`CCLAUNCH_SAMPLES_DIR`, else the samples' own static target directory):
/// found without running cargo.
fn prebuilt_static_kv() -> Option<PathBuf> {
    let path = match std::env::var_os(chaincode_samples::SAMPLES_DIR_ENV) {
        Some(dir) => PathBuf::from(dir).join("kv"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/static-samples")
            .join(chaincode_samples::STATIC_TARGET)
            .join("release/kv"),
    };
    (path.is_file() && is_static_elf(&path).unwrap_or(false)).then_some(path)
}

/// The statically linked executable to run in a `FROM scratch` container:
/// the prebuilt static `kv` sample, else `cclaunch` itself when it is static,
/// else (only when `build`) the `kv` sample built with cargo.
async fn static_chaincode(build: bool) -> Result<PathBuf, String> {
    if let Some(kv) = prebuilt_static_kv() {
        return Ok(kv);
    }
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the cclaunch executable: {e}"))?;
    if is_static_elf(&exe).unwrap_or(false) {
        return Ok(exe);
    }
    if !build {
        return Err(
            "no statically linked chaincode binary yet (cclaunch is dynamically linked); `cclaunch demo --docker` builds one"
                .to_owned(),
        );
    }
    let spinner = Spinner::start("building the static kv sample with cargo (once)", false);
    if !spinner.is_shown() {
        eprintln!("building the static kv sample with cargo (once; this takes a few minutes)");
    }
    tokio::task::spawn_blocking(|| chaincode_samples::static_sample("kv"))
        .await
        .map_err(|e| format!("the static build task failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// Whether `path` is an ELF executable without a program interpreter (that
/// is, statically linked: it runs in a `FROM scratch` image).
fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header)?;
    // 64-bit little-endian ELF only (what this project builds for).
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&header[32..40]);
    let phoff = u64::from_le_bytes(phoff);
    let (phentsize, phnum) = (u64::from(u16_at(54)), u16_at(56));
    const PT_INTERP: u32 = 3;
    for index in 0..u64::from(phnum) {
        file.seek(SeekFrom::Start(phoff + index * phentsize))?;
        let mut kind = [0u8; 4];
        file.read_exact(&mut kind)?;
        if u32::from_le_bytes(kind) == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs the demo.
pub async fn run(args: DemoArgs, out: Output) -> Result<(), CliError> {
    let started = Instant::now();
    let listener = crate::peer::bind("127.0.0.1:0", "the demo peer", "(none)").await?;
    let peer_address = listener
        .local_addr()
        .map_err(|e| CliError::new(format!("cannot read the demo peer's address: {e}")))?
        .to_string();
    let work = tempfile::Builder::new()
        .prefix("cclaunch-demo-")
        .tempdir()
        .map_err(|e| CliError::new(format!("cannot create a work directory: {e}")))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find the cclaunch executable: {e}")))?;

    // Docker: used when an engine answers; required with --docker.
    let mut docker_note = None;
    let docker = match DockerExecutor::connect(DockerConfig {
        peer_id: "demo".to_owned(),
        connect_timeout: Duration::from_secs(3),
        ..DockerConfig::default()
    })
    .await
    {
        Ok(docker) => match static_chaincode(args.docker).await {
            Ok(binary) => Some((Arc::new(docker), binary)),
            Err(why) if args.docker => return Err(CliError::new(format!("demo --docker: {why}"))),
            Err(why) => {
                docker_note = Some(why);
                None
            }
        },
        Err(e) if args.docker => {
            return Err(CliError::new(format!("demo --docker: {e}")).with_hint(
                "start the Docker Engine (or set DOCKER_HOST), or run the demo without --docker",
            ));
        }
        Err(e) => {
            docker_note = Some(e.to_string());
            None
        }
    };
    if let Some(note) = &docker_note {
        if out.json {
            // Reported in the JSON result below.
        } else {
            let _ = outln!("docker: skipped ({note})");
        }
    }

    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register(
            chaincodes::COUNTER,
            Arc::new(|| Arc::new(chaincodes::Counter) as _),
        )
        .map_err(|e| CliError::new(e.to_string()))?;
    let process = Arc::new(ProcessExecutor::new(ProcessConfig {
        work_dir: work.path().join("runtimes"),
        stop_grace: Duration::from_secs(5),
    }));
    let router = Arc::new(Router {
        process: process.clone(),
        docker: docker.as_ref().map(|(d, _)| d.clone()),
    });
    let config = SupportConfig {
        peer_address: peer_address.clone(),
        peer_id: "demo".to_owned(),
        startup_timeout: Duration::from_secs(120),
        execute_timeout: Duration::from_secs(10),
        ..SupportConfig::default()
    };
    // Mutual TLS as `cclaunch peer` in net mode, with a CA that lives and
    // dies with the demo.
    let tls = chaincode_tls::CertAuthority::generate("cclaunch demo CA")
        .and_then(|ca| PeerTls::new(Arc::new(ca), &["127.0.0.1", "localhost"]))
        .map_err(|e| CliError::new(format!("cannot set up the demo peer's TLS: {e}")))?;
    let support = ChaincodeSupport::builder(config)
        .executor(router)
        .inproc(inproc)
        .tls(tls)
        .build();
    let server_stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn({
        let support = support.clone();
        let stop = server_stop.clone();
        async move { support.serve(listener, stop.cancelled_owned()).await }
    });
    if !out.json {
        let _ = outln!("demo peer on {peer_address} (mutual TLS)");
    }

    let mut demo = Demo {
        events: support.subscribe(),
        support: support.clone(),
        started,
        seen: Vec::new(),
        out,
        spinner: Spinner::start("starting", out.json),
    };
    let kv_transactions: &[(&[&str], i32, Option<&str>)] = &[
        (&["put", "a", "1"], 200, None),
        (&["get", "a"], 200, Some("1")),
        (&["del", "a"], 200, None),
        (&["get", "a"], 404, None),
    ];
    let mut reports = Vec::new();
    let counter: ChaincodeName =
        ChaincodeName::new(chaincodes::COUNTER, "1.0").map_err(|e| CliError::new(e.to_string()))?;
    reports.push(
        demo.run_chaincode(
            &counter,
            "inproc",
            None,
            &[
                (&["incr", "visits"], 200, Some("1")),
                (&["incr", "visits"], 200, Some("2")),
                (&["get", "visits"], 200, Some("2")),
            ],
        )
        .await,
    );
    let kv = ChaincodeName::new(chaincodes::KV, "1.0").map_err(|e| CliError::new(e.to_string()))?;
    // The small prebuilt static sample when there is one, else ourselves.
    let kv_binary = prebuilt_static_kv().unwrap_or_else(|| exe.clone());
    demo.say(&format!("packing {} as {kv}", kv_binary.display()));
    let kv_spec = quick_spec(&kv_binary, &kv)?;
    reports.push(
        demo.run_chaincode(&kv, "process", Some(kv_spec), kv_transactions)
            .await,
    );
    if let Some((_, binary)) = &docker {
        let kvd = ChaincodeName::new(DOCKER_KV, "1.0").map_err(|e| CliError::new(e.to_string()))?;
        demo.say(&format!("packing {} as {kvd}", binary.display()));
        let spec = quick_spec(binary, &kvd)?;
        reports.push(
            demo.run_chaincode(&kvd, "docker", Some(spec), kv_transactions)
                .await,
        );
    }

    demo.say("stopping every chaincode");
    demo.spinner.set_message("stopping");
    demo.watching(support.shutdown(Duration::from_secs(15)))
        .await;
    server_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let leftover = process.pid(&kv);
    drop(demo.spinner);

    let ok = reports.iter().all(|r| r.ok) && leftover.is_none();
    let total_ms = millis(started.elapsed());
    if out.json {
        out.json_line(&json!({
            "ok": ok,
            "peer_address": peer_address,
            "chaincodes": reports,
            "events": demo.seen,
            "docker": {
                "used": docker.is_some(),
                "skipped": docker_note,
            },
            "total_ms": total_ms,
        }))?;
    } else {
        outln!()?;
        outln!(
            "{:<16} {:<9} {:>10}  {:<12} RESULT",
            "CHAINCODE",
            "EXECUTOR",
            "LAUNCH",
            "TRANSACTIONS"
        )?;
        for r in &reports {
            let passed = r.transactions.iter().filter(|t| t.ok).count();
            outln!(
                "{:<16} {:<9} {:>10}  {:<12} {}",
                r.chaincode,
                r.executor,
                r.launch_ms.map_or("-".to_owned(), |ms| format!("{ms} ms")),
                format!("{passed}/{} ok", r.transactions.len()),
                match (&r.error, r.ok) {
                    (Some(e), _) => format!("failed: {e}"),
                    (None, true) => "ok".to_owned(),
                    (None, false) => "wrong answers".to_owned(),
                }
            )?;
        }
        outln!("everything stopped; demo took {total_ms} ms")?;
    }
    if ok {
        Ok(())
    } else {
        Err(
            CliError::new("demo: some chaincode did not launch or answered wrongly (see above)")
                .with_hint("run with RUST_LOG=info for the runtime's log"),
        )
    }
}
