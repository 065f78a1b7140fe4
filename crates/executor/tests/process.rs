//! The process backend against real child processes.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use executor::process::{ProcessConfig, ProcessExecutor};
use executor::{
    EventSink, Executor, ExecutorError, ExitStatus, Generation, LogStream, RuntimeEvent,
    RuntimeEventKind, StartRequest, package,
};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(20);

fn executor(work: &Path, grace: Duration) -> ProcessExecutor {
    ProcessExecutor::new(ProcessConfig {
        work_dir: work.join("runtimes"),
        stop_grace: grace,
    })
}

/// A code package whose executable is this shell script.
fn script_package(work: &Path, script: &str) -> Vec<u8> {
    let path = work.join(format!("script-{}", script.len()));
    let mut file = fs::File::create(&path).unwrap();
    file.write_all(script.as_bytes()).unwrap();
    drop(file);
    package::package_binary(&path).unwrap()
}

fn request(name: &str, code_package: Vec<u8>, generation: u64) -> StartRequest {
    StartRequest {
        chaincode: name.parse().unwrap(),
        generation: Generation(generation),
        code_package,
        peer_address: "127.0.0.1:7052".to_owned(),
        env: vec![(
            "CORE_CHAINCODE_LOGGING_LEVEL".to_owned(),
            "debug".to_owned(),
        )],
        tls: None,
    }
}

/// The next event matching `pred`, skipping others; panics after `WAIT`.
async fn next_matching(
    rx: &mut UnboundedReceiver<RuntimeEvent>,
    what: &str,
    mut pred: impl FnMut(&RuntimeEventKind) -> bool,
) -> RuntimeEvent {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) if pred(&event.kind) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("sink closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

async fn next_line(rx: &mut UnboundedReceiver<RuntimeEvent>, prefix: &str) -> String {
    let event = next_matching(
        rx,
        &format!("a line starting {prefix:?}"),
        |k| matches!(k, RuntimeEventKind::Log { line, .. } if line.starts_with(prefix)),
    )
    .await;
    match event.kind {
        RuntimeEventKind::Log { line, .. } => line,
        _ => unreachable!(),
    }
}

async fn next_exit(rx: &mut UnboundedReceiver<RuntimeEvent>) -> ExitStatus {
    match next_matching(rx, "an exit", |k| matches!(k, RuntimeEventKind::Exited(_)))
        .await
        .kind
    {
        RuntimeEventKind::Exited(status) => status,
        _ => unreachable!(),
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls (bounded) until `pid` is gone; for processes that are not our
/// children, whose end sends us no event.
async fn gone_within(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

const ECHO_AND_SLEEP: &str = r#"#!/bin/sh
echo "id=$CORE_CHAINCODE_ID_NAME args=$* tls=$CORE_PEER_TLS_ENABLED peer=$CORE_PEER_ADDRESS level=$CORE_CHAINCODE_LOGGING_LEVEL manifest=${CARGO_MANIFEST_DIR:-unset} cwd=$(pwd)"
echo "to stderr" >&2
sleep 300 &
echo "bg=$!"
exec sleep 300
"#;

#[tokio::test]
async fn start_logs_env_and_args_then_stop_kills_the_group() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let req = request("echo:1.0", script_package(work.path(), ECHO_AND_SLEEP), 7);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).expect("a pid while running");
    let dir = exec.runtime_dir(&req.chaincode);
    assert!(dir.join("chaincode").is_file());

    let line = next_line(&mut rx, "id=").await;
    assert!(line.contains("id=echo:1.0 "), "{line}");
    assert!(
        line.contains("args=-peer.address=127.0.0.1:7052 "),
        "{line}"
    );
    assert!(line.contains("tls=false "), "{line}");
    assert!(line.contains("peer=127.0.0.1:7052 "), "{line}");
    assert!(line.contains("level=debug "), "{line}");
    // The peer's own environment does not leak (cargo sets this for tests).
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(line.contains("manifest=unset "), "{line}");
    assert!(line.ends_with(&format!("cwd={}", dir.display())), "{line}");

    // stdout and stderr are separate pipes: their lines may interleave in
    // any order, so collect until both expected lines have arrived.
    let mut stderr_line = None;
    let mut bg = None;
    while stderr_line.is_none() || bg.is_none() {
        let event = next_matching(&mut rx, "the stderr and bg= lines", |k| {
            matches!(k, RuntimeEventKind::Log { .. })
        })
        .await;
        assert_eq!(event.generation, Generation(7));
        match event.kind {
            RuntimeEventKind::Log {
                stream: LogStream::Stderr,
                line,
            } => stderr_line = Some(line),
            RuntimeEventKind::Log { line, .. } if line.starts_with("bg=") => {
                bg = Some(line[3..].parse::<u32>().unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stderr_line.as_deref(), Some("to stderr"));
    let bg = bg.unwrap();
    assert!(alive(pid) && alive(bg));

    let started = Instant::now();
    exec.stop(&req.chaincode).await.unwrap();
    // sleep honours SIGTERM: no need to wait for the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!alive(pid), "chaincode {pid} survived stop");
    // Not our child: SIGKILL reaches it at once, but its end is observable
    // only by polling (init reaps it).
    assert!(
        gone_within(bg, Duration::from_secs(5)).await,
        "background child {bg} survived stop"
    );
    assert!(!dir.exists(), "runtime dir left behind");
    assert_eq!(exec.pid(&req.chaincode), None);
    assert_eq!(
        next_exit(&mut rx).await,
        ExitStatus::Stopped(Box::new(ExitStatus::Signal(15)))
    );
}

#[tokio::test]
async fn exit_code_is_reported_after_the_last_lines() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let script = "#!/bin/sh\necho first\necho last\nexit 3\n";
    let req = request("exit3:1.0", script_package(work.path(), script), 1);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let mut lines = Vec::new();
    let status = loop {
        let event = next_matching(&mut rx, "a log or exit", |_| true).await;
        match event.kind {
            RuntimeEventKind::Log { line, .. } => lines.push(line),
            RuntimeEventKind::Exited(status) => break status,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(status, ExitStatus::Code(3));
    assert_eq!(lines, ["first", "last"]);
    // Stopping an exited runtime is success and cleans its directory.
    exec.stop(&req.chaincode).await.unwrap();
    assert!(!exec.runtime_dir(&req.chaincode).exists());
}

#[tokio::test]
async fn sigterm_ignored_means_sigkill_after_the_grace() {
    let work = tempfile::tempdir().unwrap();
    let grace = Duration::from_millis(500);
    let exec = executor(work.path(), grace);
    // An ignored signal stays ignored across exec, so sleep ignores it too.
    let script = "#!/bin/sh\ntrap '' TERM\necho trapped\nexec sleep 300\n";
    let req = request("stubborn:1.0", script_package(work.path(), script), 1);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).unwrap();
    next_line(&mut rx, "trapped").await;

    let started = Instant::now();
    exec.stop(&req.chaincode).await.unwrap();
    let took = started.elapsed();
    assert!(took >= grace, "killed before the grace period: {took:?}");
    assert!(took < grace + Duration::from_secs(5), "{took:?}");
    assert!(!alive(pid));
    assert_eq!(
        next_exit(&mut rx).await,
        ExitStatus::Stopped(Box::new(ExitStatus::Signal(9)))
    );
}

#[tokio::test]
async fn stop_is_idempotent() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let unknown = "never:1.0".parse().unwrap();
    exec.stop(&unknown).await.unwrap();

    let req = request(
        "twice:1.0",
        script_package(work.path(), "#!/bin/sh\nexec sleep 300\n"),
        1,
    );
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).unwrap();
    exec.stop(&req.chaincode).await.unwrap();
    exec.stop(&req.chaincode).await.unwrap();
    assert!(!alive(pid));
    assert_eq!(
        next_exit(&mut rx).await,
        ExitStatus::Stopped(Box::new(ExitStatus::Signal(15)))
    );
}

#[tokio::test]
async fn a_second_start_replaces_the_running_process() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let package = script_package(work.path(), "#!/bin/sh\necho up\nexec sleep 300\n");
    let first = request("again:1.0", package.clone(), 1);
    let (sink1, mut rx1) = EventSink::channel(first.generation);
    exec.start(first.clone(), sink1).await.unwrap();
    let pid1 = exec.pid(&first.chaincode).unwrap();
    next_line(&mut rx1, "up").await;

    let second = request("again:1.0", package, 2);
    let (sink2, mut rx2) = EventSink::channel(second.generation);
    exec.start(second.clone(), sink2).await.unwrap();
    let pid2 = exec.pid(&second.chaincode).unwrap();
    assert_ne!(pid1, pid2);
    assert!(!alive(pid1));
    let exit1 = next_matching(&mut rx1, "the first exit", |k| {
        matches!(k, RuntimeEventKind::Exited(_))
    })
    .await;
    assert_eq!(exit1.generation, Generation(1));
    assert_eq!(next_line(&mut rx2, "up").await, "up");
    exec.stop(&second.chaincode).await.unwrap();
    assert!(!alive(pid2));
}

#[tokio::test]
async fn dropping_the_executor_kills_its_processes() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let req = request(
        "dropped:1.0",
        script_package(work.path(), "#!/bin/sh\necho up\nexec sleep 300\n"),
        1,
    );
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).unwrap();
    next_line(&mut rx, "up").await;
    drop(exec);
    assert_eq!(
        next_exit(&mut rx).await,
        ExitStatus::Stopped(Box::new(ExitStatus::Signal(9)))
    );
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_chaincode_that_exits_by_itself_reports_its_own_code_not_a_stop() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    // Prints, then exits 4 a moment later: the window in which a peer that
    // saw the stream close would stop it.
    let script = "#!/bin/sh\necho closing\nsleep 0.05\nexit 4\n";
    let req = request("crash4:1.0", script_package(work.path(), script), 1);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    next_line(&mut rx, "closing").await;
    // The peer stops it right away, as the driver does on a stream close.
    exec.stop(&req.chaincode).await.unwrap();
    let status = next_exit(&mut rx).await;
    assert_eq!(status, ExitStatus::Code(4));
    assert!(!status.is_stopped_by_peer());
}

#[tokio::test]
async fn a_stop_by_the_peer_is_told_apart_from_a_crash() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    // Exits 0 on SIGTERM, as a chaincode with a graceful shutdown does.
    let script = "#!/bin/sh\ntrap 'exit 0' TERM\necho up\nwhile :; do sleep 1; done\n";
    let req = request("graceful:1.0", script_package(work.path(), script), 1);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    next_line(&mut rx, "up").await;
    exec.stop(&req.chaincode).await.unwrap();
    let status = next_exit(&mut rx).await;
    assert!(status.is_stopped_by_peer(), "{status}");
    // Inside: what the process itself reported (the shell's trap ran, or
    // the group's SIGKILL took it).
    assert!(
        matches!(&status, ExitStatus::Stopped(how) if matches!(**how, ExitStatus::Code(0) | ExitStatus::Signal(9))),
        "{status:?}"
    );
    assert!(
        status.to_string().starts_with("stopped by the peer ("),
        "{status}"
    );
}

#[tokio::test]
async fn dropping_the_executor_removes_the_work_dir_it_created() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let work_dir = exec.config().work_dir.clone();
    assert!(!work_dir.exists());
    let req = request(
        "tidy:1.0",
        script_package(work.path(), "#!/bin/sh\necho up\nexec sleep 300\n"),
        1,
    );
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    next_line(&mut rx, "up").await;
    assert!(work_dir.join(".packages").is_dir());
    drop(exec);
    assert!(!work_dir.exists(), "the work dir is left behind");
    assert!(work.path().is_dir());
}

#[tokio::test]
async fn dropping_the_executor_keeps_a_given_work_dir_and_what_others_put_there() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().join("runtimes");
    fs::create_dir(&work_dir).unwrap();
    fs::write(work_dir.join("theirs.txt"), b"keep me").unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let req = request(
        "given:1.0",
        script_package(work.path(), "#!/bin/sh\necho up\nexec sleep 300\n"),
        1,
    );
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    next_line(&mut rx, "up").await;
    let runtime = exec.runtime_dir(&req.chaincode);
    assert!(runtime.is_dir());
    drop(exec);
    assert!(
        !work_dir.join(".packages").exists(),
        "the package cache is left behind"
    );
    assert!(!runtime.exists(), "the runtime dir is left behind");
    assert_eq!(fs::read(work_dir.join("theirs.txt")).unwrap(), b"keep me");
}

#[tokio::test]
async fn bad_packages_are_refused_naming_the_chaincode() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));

    // Not an archive at all.
    let req = request("garbage:2.0", b"definitely not a tar.gz".to_vec(), 1);
    let (sink, _rx) = EventSink::channel(req.generation);
    match exec.start(req.clone(), sink).await {
        Err(ExecutorError::BadPackage { chaincode, reason }) => {
            assert_eq!(chaincode, "garbage:2.0");
            assert!(reason.contains("gzip"), "{reason}");
        }
        other => panic!("expected BadPackage, got {other:?}"),
    }
    assert!(!exec.runtime_dir(&req.chaincode).exists());
    assert_eq!(exec.pid(&req.chaincode), None);

    // A path escaping the destination, written with a raw header.
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for path in ["chaincode", "../../escaped"] {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(2);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, &b"x\n"[..]).unwrap();
    }
    let evil = builder.into_inner().unwrap().finish().unwrap();
    let req = request("evil:1.0", evil, 1);
    let (sink, _rx) = EventSink::channel(req.generation);
    let err = exec.start(req.clone(), sink).await.unwrap_err();
    assert!(
        matches!(&err, ExecutorError::BadPackage { chaincode, reason } if chaincode == "evil:1.0" && reason.contains("..")),
        "{err:?}"
    );
    assert!(!work.path().join("escaped").exists());
    assert!(!work.path().join("runtimes/escaped").exists());
}

#[tokio::test]
async fn an_executable_that_cannot_run_is_a_start_error() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    // A script whose interpreter does not exist: exec fails with ENOENT.
    let req = request(
        "noint:1.0",
        script_package(work.path(), "#!/nonexistent/interpreter\n"),
        1,
    );
    let (sink, _rx) = EventSink::channel(req.generation);
    let err = exec.start(req.clone(), sink).await.unwrap_err();
    assert!(
        matches!(&err, ExecutorError::Start { chaincode, reason } if chaincode == "noint:1.0" && reason.contains("cannot spawn")),
        "{err:?}"
    );
    assert!(!exec.runtime_dir(&req.chaincode).exists());
}

#[test]
fn runtime_names_are_sanitised_and_distinct() {
    let exec = ProcessExecutor::new(ProcessConfig::default());
    let a = exec.runtime_name(&"a-b:1".parse().unwrap());
    let b = exec.runtime_name(&"a:b-1".parse().unwrap());
    assert!(
        a.starts_with("a-b-1-") && b.starts_with("a-b-1-"),
        "{a} {b}"
    );
    assert_ne!(a, b);
    // A path in a name never gets this far: the name rules refuse it.
    assert!(
        "../we ird:1/0"
            .parse::<chaincode_proto::ChaincodeName>()
            .is_err()
    );
    // A package-id label's '+' is still sanitised.
    let hash = "0".repeat(64);
    let odd = exec.runtime_name(&format!("we+ird.x:{hash}").parse().unwrap());
    assert!(odd.starts_with(&format!("we-ird.x-{hash}-")), "{odd}");
    assert_eq!(exec.kind(), "process");
}

#[tokio::test]
async fn static_kv_registers_with_a_real_peer() {
    let kv = tokio::task::spawn_blocking(|| chaincode_samples::static_sample("kv"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("static sample kv: {e}"));
    let mut peer = common::TestPeer::start().await;
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let req = StartRequest {
        peer_address: peer.address.clone(),
        env: Vec::new(),
        tls: None,
        ..request("kv:1.0", package::package_binary(&kv).unwrap(), 1)
    };
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).unwrap();
    assert_eq!(peer.next_register(common::WAIT).await, "kv:1.0");
    assert!(alive(pid));
    exec.stop(&req.chaincode).await.unwrap();
    assert!(!alive(pid), "kv {pid} survived stop");
    assert!(next_exit(&mut rx).await.is_stopped_by_peer());
}

#[tokio::test]
async fn a_package_is_unpacked_once_and_linked_into_each_runtime() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let package = script_package(work.path(), "#!/bin/sh\necho cached\nexec sleep 300\n");
    let mut inodes = Vec::new();
    for (generation, name) in [(1, "one:1.0"), (2, "one:1.0"), (3, "two:1.0")] {
        let request = request(name, package.clone(), generation);
        let (sink, mut rx) = EventSink::channel(request.generation);
        exec.start(request.clone(), sink).await.unwrap();
        assert_eq!(next_line(&mut rx, "cached").await, "cached");
        let executable = exec
            .runtime_dir(&request.chaincode)
            .join(package::EXECUTABLE);
        inodes.push(fs::metadata(&executable).unwrap().ino());
        exec.stop(&request.chaincode).await.unwrap();
        assert!(
            !exec.runtime_dir(&request.chaincode).exists(),
            "stop removes the runtime dir"
        );
    }
    assert!(
        inodes.windows(2).all(|w| w[0] == w[1]),
        "one unpacked copy: {inodes:?}"
    );
    let cached: Vec<_> = fs::read_dir(work.path().join("runtimes").join(".packages"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "no staging directory left behind");
}

/// Prints what the chaincode sees of its TLS material: the variables, each
/// file's mode and contents (the script checks the files before any test
/// code could create them).
const PRINT_TLS: &str = r#"#!/bin/sh
echo "tls=$CORE_PEER_TLS_ENABLED"
for v in CORE_TLS_CLIENT_KEY_PATH CORE_TLS_CLIENT_CERT_PATH CORE_TLS_CLIENT_KEY_FILE CORE_TLS_CLIENT_CERT_FILE CORE_PEER_TLS_ROOTCERT_FILE; do
  eval "f=\$$v"
  echo "file $v $f $(stat -c %a "$f") $(tr '\n' '|' < "$f")"
done
echo "done"
exec sleep 300
"#;

#[tokio::test]
async fn tls_material_is_written_private_into_the_runtime_dir_before_the_spawn() {
    use base64::Engine as _;
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let mut req = request("tlscc:1.0", script_package(work.path(), PRINT_TLS), 1);
    let tls = executor::ClientTls {
        cert_pem: "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n".into(),
        key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".into(),
        root_cert_pem: "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n".into(),
    };
    req.tls = Some(tls.clone());
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let dir = exec.runtime_dir(&req.chaincode);
    let tls_dir = dir.join(executor::process::TLS_DIR);

    assert_eq!(next_line(&mut rx, "tls=").await, "tls=true");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let oneline = |s: &str| s.replace('\n', "|");
    let expected = [
        ("CORE_TLS_CLIENT_KEY_PATH", "client.key", b64(&tls.key_pem)),
        (
            "CORE_TLS_CLIENT_CERT_PATH",
            "client.crt",
            b64(&tls.cert_pem),
        ),
        (
            "CORE_TLS_CLIENT_KEY_FILE",
            "client_pem.key",
            oneline(&tls.key_pem),
        ),
        (
            "CORE_TLS_CLIENT_CERT_FILE",
            "client_pem.crt",
            oneline(&tls.cert_pem),
        ),
        (
            "CORE_PEER_TLS_ROOTCERT_FILE",
            "peer.crt",
            oneline(&tls.root_cert_pem),
        ),
    ];
    for (var, name, contents) in &expected {
        let line = next_line(&mut rx, &format!("file {var} ")).await;
        let path = tls_dir.join(name);
        assert_eq!(
            line,
            format!("file {var} {} 600 {contents}", path.display()),
            "{var}"
        );
    }
    next_line(&mut rx, "done").await;
    use std::os::unix::fs::PermissionsExt as _;
    for private in [&dir, &tls_dir] {
        let mode = fs::metadata(private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", private.display());
    }
    // Nothing of it reached the shared package cache.
    let cache = work.path().join("runtimes/.packages");
    let cached: Vec<_> = walk(&cache);
    assert!(!cached.is_empty());
    assert!(
        cached
            .iter()
            .all(|p| !p.contains("client") && !p.contains("peer.crt")),
        "{cached:?}"
    );

    exec.stop(&req.chaincode).await.unwrap();
    assert!(!tls_dir.exists() && !dir.exists(), "TLS files left behind");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        out.push(entry.path().display().to_string());
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

/// A launch's identity issued by `ca` for `name`, as the peer hands it over.
fn client_tls(ca: &chaincode_tls::CertAuthority, name: &str) -> (executor::ClientTls, Vec<u8>) {
    let client = ca.issue_client(name, Duration::from_secs(600)).unwrap();
    let tls = executor::ClientTls {
        cert_pem: client.cert_pem.clone(),
        key_pem: client.key_pem.clone(),
        root_cert_pem: ca.root_pem().to_owned(),
    };
    (tls, client.cert_der)
}

#[tokio::test]
async fn static_kv_registers_over_mutual_tls_with_the_files_it_was_given() {
    let kv = tokio::task::spawn_blocking(|| chaincode_samples::static_sample("kv"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("static sample kv: {e}"));
    let ca = chaincode_tls::CertAuthority::generate("peer CA").unwrap();
    let mut peer = common::TestPeer::start_tls(&ca).await;
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(5));
    let (tls, cert_der) = client_tls(&ca, "kv:1.0");
    let req = StartRequest {
        peer_address: peer.address.clone(),
        env: Vec::new(),
        tls: Some(tls),
        ..request("kv:1.0", package::package_binary(&kv).unwrap(), 1)
    };
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let (name, presented) = peer.next_register_with_cert(common::WAIT).await;
    assert_eq!(name, "kv:1.0");
    // The chaincode presented this launch's certificate, read from the files.
    assert_eq!(presented, Some(cert_der));
    exec.stop(&req.chaincode).await.unwrap();
    assert!(!exec.runtime_dir(&req.chaincode).exists());
    assert!(next_exit(&mut rx).await.is_stopped_by_peer());
}

#[tokio::test]
async fn an_abandoned_stop_leaves_the_process_known_and_drop_still_kills_it() {
    let work = tempfile::tempdir().unwrap();
    let exec = executor(work.path(), Duration::from_secs(60));
    // Notes SIGTERM and carries on, so the stop sits in its grace period.
    let script = "#!/bin/sh\ntrap 'echo got-term' TERM\necho up\nwhile :; do sleep 0.05; done\n";
    let req = request("abandoned:1.0", script_package(work.path(), script), 1);
    let (sink, mut rx) = EventSink::channel(req.generation);
    exec.start(req.clone(), sink).await.unwrap();
    let pid = exec.pid(&req.chaincode).unwrap();
    next_line(&mut rx, "up").await;
    {
        let stop = exec.stop(&req.chaincode);
        tokio::select! {
            result = stop => panic!("the stop ended within the grace: {result:?}"),
            line = next_line(&mut rx, "got-term") => assert_eq!(line, "got-term"),
        }
        // The stop future is dropped here, after its SIGTERM.
    }
    assert_eq!(
        exec.pid(&req.chaincode),
        Some(pid),
        "the child was forgotten"
    );
    assert!(alive(pid));
    drop(exec);
    assert!(gone_within(pid, WAIT).await, "{pid} outlived the executor");
}
