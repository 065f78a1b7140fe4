//! End-to-end tests of the `cclaunch` binary: real processes, real gRPC on
//! Unix sockets in temporary state directories (and 127.0.0.1), bounded waits.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn demo_launches_everything_answers_every_transaction_and_exits_0() {
    let output = cclaunch(&["--json", "demo"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["ok"], true, "{result:#}");
    let chaincodes = result["chaincodes"].as_array().unwrap();
    let names: Vec<&str> = chaincodes
        .iter()
        .map(|c| c["chaincode"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"counter:1.0") && names.contains(&"kv:1.0"),
        "{names:?}"
    );
    assert_eq!(
        result["docker"]["used"].as_bool().unwrap(),
        names.contains(&"kv-docker:1.0"),
        "{result:#}"
    );
    for cc in chaincodes {
        assert_eq!(cc["phase"], "ready", "{cc:#}");
        let txs = cc["transactions"].as_array().unwrap();
        assert!(txs.len() >= 3, "{cc:#}");
        for tx in txs {
            assert!(tx["status"].is_i64(), "unanswered: {tx:#}");
            assert_eq!(tx["ok"], true, "{tx:#}");
        }
    }
    let kv = chaincodes
        .iter()
        .find(|c| c["chaincode"] == "kv:1.0")
        .unwrap();
    let get = &kv["transactions"][1];
    assert_eq!(
        (get["status"].as_i64(), get["payload"].as_str()),
        (Some(200), Some("1"))
    );
    // Every chaincode was seen going through its phases, live, and ended idle.
    let events = result["events"].as_array().unwrap();
    for name in &names {
        let phases: Vec<&str> = events
            .iter()
            .filter(|e| e["chaincode"] == *name)
            .filter_map(|e| e["phase"].as_str())
            .collect();
        assert!(phases.contains(&"ready"), "{name}: {phases:?}");
        assert_eq!(phases.last(), Some(&"idle"), "{name}: {phases:?}");
    }
}

#[test]
fn dev_peer_serves_a_kv_sample_that_registers_by_itself() {
    let kv = kv_sample();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    // The state directory comes from CCLAUNCH_HOME, on both sides.
    let home = dir.path().join("home");
    let mut peer = Peer::start_with(
        &home,
        &["--dev", "--listen", &listen],
        &[("CCLAUNCH_HOME", &home)],
        dir.path(),
    );
    let found = cclaunch_env(&["--json", "ps"], &[("CCLAUNCH_HOME", &home)]);
    assert!(found.status.success(), "{:?}", texts(&found));

    let mut chaincode = spawn_chaincode(&kv, "kv:1.0", &listen, &[]);
    peer.wait_ready("kv:1.0");

    let put = peer.run(&["invoke", "kv:1.0", "put", "a", "1"]);
    assert!(put.status.success(), "{:?}", texts(&put));
    let get = peer.run(&["invoke", "kv:1.0", "get", "a"]);
    let (stdout, stderr) = texts(&get);
    assert!(get.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("status: 200") && stdout.contains("payload: 1"),
        "{stdout}"
    );
    let json = peer.run(&["--json", "invoke", "kv:1.0", "get", "a"]);
    let reply: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (reply["status"].as_i64(), reply["payload"].as_str()),
        (Some(200), Some("1"))
    );

    // A status other than 200 is printed and exits 1.
    let missing = peer.run(&["invoke", "kv:1.0", "get", "nothing"]);
    let (stdout, stderr) = texts(&missing);
    assert_eq!(missing.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("status: 404") && stderr.contains("error: kv:1.0 answered with status 404"),
        "{stdout}{stderr}"
    );

    assert!(peer.signal_and_wait(Signal::SIGTERM).success());
    // The peer closed the stream: the sample exits by itself.
    let exited = wait_bounded(&mut chaincode, Duration::from_secs(30));
    if exited.is_none() {
        let _ = chaincode.kill();
        panic!("the kv sample did not exit after the peer stopped");
    }
}

#[test]
fn dev_peer_with_tls_serves_a_chaincode_holding_the_identity_it_wrote() {
    use std::os::unix::fs::PermissionsExt;
    let kv = kv_sample();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let state = dir.path().join("state");
    let peer = Peer::start(&state, &["--dev", "--tls", "--listen", &listen], dir.path());
    let tls = state.join("tls");
    let key = tls.join("dev-client.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the dev client key is private");

    // Without the identity, the chaincode cannot register at all.
    let mut plaintext = spawn_chaincode(&kv, "plain:1.0", &listen, &[]);
    let status = wait_bounded(&mut plaintext, Duration::from_secs(60)).unwrap_or_else(|| {
        let _ = plaintext.kill();
        panic!("a plaintext chaincode kept trying against a TLS dev peer");
    });
    assert!(
        !status.success(),
        "a plaintext chaincode registered: {status}"
    );
    assert_eq!(peer.phase_of("plain:1.0"), None);

    // With the files the peer wrote (the environment it printed), it does.
    let (cert, root) = (tls.join("dev-client.crt"), tls.join("ca.crt"));
    let mut chaincode = spawn_chaincode(
        &kv,
        "kv:1.0",
        &listen,
        &[
            ("CORE_PEER_TLS_ENABLED", "true".as_ref()),
            ("CORE_TLS_CLIENT_CERT_FILE", cert.as_os_str()),
            ("CORE_TLS_CLIENT_KEY_FILE", key.as_os_str()),
            ("CORE_PEER_TLS_ROOTCERT_FILE", root.as_os_str()),
        ],
    );
    peer.wait_ready("kv:1.0");
    let put = peer.run(&["invoke", "kv:1.0", "put", "a", "1"]);
    assert!(put.status.success(), "{:?}", texts(&put));
    drop(peer);
    if wait_bounded(&mut chaincode, Duration::from_secs(30)).is_none() {
        let _ = chaincode.kill();
        panic!("the kv sample did not exit after the peer went away");
    }
}

#[test]
fn process_peer_launches_a_packaged_chaincode_and_leaves_nothing_running() {
    let kv = kv_sample();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("peer-fs");
    let metrics = free_addr();
    let config = dir.path().join("core.toml");
    std::fs::write(
        &config,
        format!(
            "[peer]\nid = \"ptest\"\nfileSystemPath = \"{}\"\n\n[chaincode]\nlistenAddress = \"127.0.0.1:0\"\nstartuptimeout = \"60s\"\nexecutetimeout = \"20s\"\n\n[metrics]\nlistenAddress = \"{metrics}\"\n",
            work.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // The package lands in the config's packages directory.
    let packaged = cclaunch(&[
        "package",
        "--config",
        config,
        "--binary",
        kv.to_str().unwrap(),
        "--name",
        "kv",
        "--version",
        "1.0",
    ]);
    assert!(packaged.status.success(), "{:?}", texts(&packaged));
    assert!(work.join("chaincodes/kv.1.0").is_file());

    // peer.fileSystemPath is the state directory.
    let mut peer = Peer::start_with(&work, &["--config", config], &[], dir.path());
    let mut watch = Command::new(CCLAUNCH)
        .args(["--json", "watch", "--for", "120", "--admin", &peer.admin])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let launched = peer.run(&["--json", "launch", "kv:1.0"]);
    let (stdout, stderr) = texts(&launched);
    assert!(launched.status.success(), "{stdout}{stderr}");
    let reply: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reply["generation"], 1);

    let runtimes = work.join("runtimes");
    let needle = runtimes.to_str().unwrap().to_owned();
    let pids = pids_mentioning(&needle);
    assert_eq!(pids.len(), 1, "one kv process under {needle}: {pids:?}");

    let put = peer.run(&["invoke", "kv:1.0", "put", "k", "v"]);
    assert!(put.status.success(), "{:?}", texts(&put));
    let get = peer.run(&["invoke", "kv:1.0", "get", "k"]);
    assert!(texts(&get).0.contains("payload: v"), "{:?}", texts(&get));

    let ps = peer.ps();
    let entry = ps.iter().find(|cc| cc["chaincode"] == "kv:1.0").unwrap();
    assert_eq!(
        (entry["phase"].as_str(), entry["executor"].as_str()),
        (Some("ready"), Some("process"))
    );
    assert!(entry["uptime_ms"].is_u64(), "{entry}");
    let table = texts(&peer.run(&["ps"])).0;
    assert!(
        table.contains("kv:1.0") && table.contains("ready") && table.contains("process"),
        "{table}"
    );

    // Metrics over HTTP, under Fabric's names.
    let mut http = std::net::TcpStream::connect(&metrics).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    assert!(
        body.contains("chaincode_launch_duration_count{chaincode=\"kv:1.0\",success=\"true\"} 1"),
        "{body}"
    );
    // Prometheus text 0.0.4 unless OpenMetrics is asked for.
    assert!(
        body.contains("Content-Type: text/plain; version=0.0.4") && !body.contains("# EOF"),
        "{body}"
    );
    let mut http = std::net::TcpStream::connect(&metrics).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(
        b"GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    )
    .unwrap();
    let mut open = String::new();
    http.read_to_string(&mut open).unwrap();
    assert!(
        open.contains("Content-Type: application/openmetrics-text")
            && open.trim_end().ends_with("# EOF"),
        "{open}"
    );

    let stopped = peer.run(&["stop", "kv:1.0"]);
    assert!(stopped.status.success(), "{:?}", texts(&stopped));
    assert_eq!(peer.phase_of("kv:1.0").as_deref(), Some("idle"));
    assert!(pids_mentioning(&needle).is_empty(), "stop left a process");

    // Launched again (generation 2), then the peer is terminated with it running.
    let again = peer.run(&["--json", "launch", "kv:1.0"]);
    let reply: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(reply["generation"], 2, "{:?}", texts(&again));
    assert_eq!(pids_mentioning(&needle).len(), 1);

    let status = peer.signal_and_wait(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "peer exit: {status}");
    assert!(
        pids_mentioning(&needle).is_empty(),
        "SIGTERM left a chaincode process"
    );

    // The watcher saw the phases live and ended with the peer.
    wait_bounded(&mut watch, Duration::from_secs(30)).expect("watch did not end with the peer");
    let mut seen = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    let phases: Vec<String> = seen
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|e| e["chaincode"] == "kv:1.0")
        .filter_map(|e| e["phase"].as_str().map(str::to_owned))
        .collect();
    for phase in ["starting", "awaiting register", "ready", "stopping", "idle"] {
        assert!(
            phases.iter().any(|p| p == phase),
            "{phase} missing from {phases:?}"
        );
    }
    let first_ready = phases.iter().position(|p| p == "ready").unwrap();
    let first_start = phases.iter().position(|p| p == "starting").unwrap();
    assert!(first_start < first_ready, "{phases:?}");
}

#[test]
fn bad_config_names_the_key_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[chaincode]\nstartuptimeut = \"30s\"\n").unwrap();
    let output = cclaunch(&["peer", "--config", unknown.to_str().unwrap()]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: bad config file")
            && stderr.contains("unknown field `startuptimeut`")
            && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[peer]\nid = \"p\"\n[chaincode]\nexecutetimeout = \"soon\"\n",
    )
    .unwrap();
    let output = cclaunch(&["peer", "--config", bad.to_str().unwrap(), "--print-config"]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("executetimeout") && stderr.contains("invalid duration \"soon\""),
        "{stderr}"
    );
}

#[test]
fn print_config_shows_the_file_with_flags_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.toml");
    std::fs::write(
        &file,
        "[chaincode]\nstartuptimeout = \"45s\"\nmode = \"net\"\n",
    )
    .unwrap();
    let output = cclaunch(&[
        "peer",
        "--config",
        file.to_str().unwrap(),
        "--dev",
        "--admin-listen",
        "127.0.0.1:9999",
        "--print-config",
    ]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let printed: toml::Table = stdout.parse().unwrap();
    assert_eq!(printed["chaincode"]["startuptimeout"].as_str(), Some("45s"));
    assert_eq!(printed["chaincode"]["mode"].as_str(), Some("dev"));
    assert_eq!(printed["chaincode"]["executetimeout"].as_str(), Some("30s"));
    assert_eq!(
        printed["admin"]["listenAddress"].as_str(),
        Some("127.0.0.1:9999")
    );
}

#[test]
fn unknown_chaincode_fails_with_not_found_and_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(
        &dir.path().join("state"),
        &["--listen", "127.0.0.1:0", "--packages", "empty"],
        dir.path(),
    );
    let output = peer.run(&["launch", "nope:1.0"]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: launch of nope:1.0 failed: resolving: deployment spec not found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.lines().count() == 2,
        "{stderr}"
    );
    // A name the peer cannot find leaves nothing behind (a flood of
    // unknown names must not grow the registry).
    let ps = peer.ps();
    assert!(ps.iter().all(|cc| cc["chaincode"] != "nope:1.0"), "{ps:?}");
}

#[test]
fn peer_not_running_is_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let addr = format!("unix:{}", socket.display());
    for args in [
        vec!["ps"],
        vec!["launch", "kv:1.0"],
        vec!["invoke", "kv:1.0", "get", "a"],
        vec!["watch", "--for", "1"],
    ] {
        let mut all = args.clone();
        all.extend(["--admin", &addr]);
        let output = cclaunch(&all);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "error: cannot reach the peer's admin API at {addr} (from --admin or CCLAUNCH_ADMIN): no such file or directory\nhint: start one with `cclaunch peer`, or point at a running one with --admin ADDR, CCLAUNCH_ADMIN or --state-dir DIR\n"
            ),
            "{args:?}"
        );
    }
    // Without flags, the default state directory's socket is what was tried.
    let output = cclaunch_env(&["ps"], &[("CCLAUNCH_HOME", dir.path())]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach the peer's admin API at {addr} (the socket in the default state directory {})",
            dir.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(cclaunch(&["invoke"]).status.code(), Some(2));
    assert_eq!(
        cclaunch(&["peer", "--executor", "vm"]).status.code(),
        Some(2)
    );
    let output = cclaunch(&["launch", "no-version", "--admin", &free_addr()]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has no version"), "{stderr}");
}

#[test]
fn package_writes_a_deployment_spec_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pk");
    // Any file packs; a small one keeps the (debug-build) gzip quick.
    let binary = dir.path().join("cc");
    std::fs::write(&binary, b"\x7fELF not really").unwrap();
    let output = cclaunch(&[
        "--json",
        "package",
        "--binary",
        binary.to_str().unwrap(),
        "--name",
        "mycc",
        "--version",
        "2.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{:?}", texts(&output));
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reply["chaincode"], "mycc:2.1");
    use chaincode_proto::prost::Message;
    let spec = chaincode_proto::ChaincodeDeploymentSpec::decode(
        std::fs::read(out.join("mycc.2.1")).unwrap().as_slice(),
    )
    .unwrap();
    let id = spec.chaincode_spec.unwrap().chaincode_id.unwrap();
    assert_eq!((id.name.as_str(), id.version.as_str()), ("mycc", "2.1"));
    assert!(spec.code_package.starts_with(&[0x1f, 0x8b]));

    let missing = cclaunch(&[
        "package",
        "--binary",
        "/nonexistent/cc",
        "--name",
        "x",
        "--version",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, stderr) = texts(&missing);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot package x:1") && stderr.contains("/nonexistent/cc"),
        "{stderr}"
    );
}

#[test]
fn invoke_with_fabric_ctor_json_answers_as_positional_args_do() {
    let kv = kv_sample();
    let dir = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let peer = Peer::start(
        &dir.path().join("state"),
        &["--dev", "--listen", &listen],
        dir.path(),
    );
    let mut chaincode = spawn_chaincode(&kv, "kv:1.0", &listen, &[]);
    peer.wait_ready("kv:1.0");
    let reply = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json", "invoke", "kv:1.0"];
        all.extend(args);
        let output = peer.run(&all);
        assert!(output.status.success(), "{args:?}: {:?}", texts(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    // Args only: put a=1, read back by positional args.
    reply(&["-c", r#"{"Args":["put","a","1"]}"#]);
    let positional = reply(&["get", "a"]);
    assert_eq!(positional["payload"], "1", "{positional}");
    // function + Args: the function is the first argument.
    reply(&["-c", r#"{"function":"put","Args":["b","2"]}"#]);
    assert_eq!(reply(&["get", "b"])["payload"], "2");
    // And a read through -c answers what the positional read answers.
    let by_ctor = reply(&["--ctor", r#"{"function":"get","Args":["a"]}"#]);
    assert_eq!(by_ctor, positional);
    assert_eq!(reply(&["-c", r#"{"Args":["get","a"]}"#]), positional);
    drop(peer);
    if wait_bounded(&mut chaincode, Duration::from_secs(30)).is_none() {
        let _ = chaincode.kill();
        panic!("the kv sample did not exit after the peer went away");
    }
}

#[test]
fn invoke_ctor_mistakes_exit_2_with_the_reason_before_any_call() {
    // No peer: a usage error is found before the admin API is tried.
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix:{}", dir.path().join("admin.sock").display());
    for (args, reason) in [
        (
            vec![
                "invoke",
                "kv:1.0",
                "get",
                "a",
                "-c",
                r#"{"Args":["get","a"]}"#,
            ],
            "error: invoke of kv:1.0: both -c and positional arguments (get a) were given",
        ),
        (
            vec!["invoke", "kv:1.0", "-c", r#"{"Args":["get""#],
            "error: invoke of kv:1.0: -c is not valid JSON: ",
        ),
        (
            vec!["invoke", "kv:1.0", "-c", r#"{"Args":["put","a",1]}"#],
            "error: invoke of kv:1.0: -c \"Args\"[2] must be a string, not a number",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--admin", &addr]);
        let output = cclaunch(&all);
        let (stdout, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(reason), "{args:?}: {stderr}");
        assert!(stderr.contains("\nhint: write -c '{\"Args\""), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            !stderr.contains("admin API"),
            "the peer was tried: {stderr}"
        );
    }
}

#[test]
fn json_errors_are_one_object_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix:{}", dir.path().join("admin.sock").display());
    let object = |output: &std::process::Output| -> serde_json::Value {
        let (stdout, stderr) = texts(output);
        assert!(stdout.is_empty(), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        let value: serde_json::Value = serde_json::from_str(&stderr).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error", "exit_code", "hint"], "{value}");
        value
    };

    // An unreachable peer: exit 1, the same message and hint as text.
    let output = cclaunch(&["--json", "ps", "--admin", &addr]);
    assert_eq!(output.status.code(), Some(1));
    let error = object(&output);
    assert_eq!(error["exit_code"], 1);
    assert_eq!(
        error["error"],
        format!(
            "cannot reach the peer's admin API at {addr} (from --admin or CCLAUNCH_ADMIN): no such file or directory"
        )
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .starts_with("start one with `cclaunch peer`"),
        "{error}"
    );

    // A usage error of ours (exit 2).
    let output = cclaunch(&["--json", "invoke", "kv:1.0", "-c", "{", "--admin", &addr]);
    assert_eq!(output.status.code(), Some(2));
    let error = object(&output);
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("invoke of kv:1.0: -c is not valid JSON"),
        "{error}"
    );
    // A usage error clap finds, --json anywhere before `--`.
    let output = cclaunch(&["invoke", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let error = object(&output);
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"].as_str().unwrap().contains("<CCID>"),
        "{error}"
    );
    assert!(
        error["hint"].as_str().unwrap().starts_with("Usage: "),
        "{error}"
    );
    // A config refused at load, with no hint lost.
    let file = dir.path().join("core.toml");
    std::fs::write(&file, "[chaincode]\nstartuptimeout = \"1s\"\n").unwrap();
    let output = cclaunch(&["--json", "peer", "--config", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let error = object(&output);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("line 2: chaincode.startuptimeout = \"1s\""),
        "{error}"
    );
    assert!(error["hint"].is_string(), "{error}");

    // Without --json, text stays as it was.
    let output = cclaunch(&["invoke", "kv:1.0", "-c", "{", "--admin", &addr]);
    let (_, stderr) = texts(&output);
    assert!(
        stderr.starts_with("error: invoke of kv:1.0: -c is not valid JSON"),
        "{stderr}"
    );
    assert!(serde_json::from_str::<serde_json::Value>(&stderr).is_err());
}

#[test]
fn bad_listen_addresses_in_the_config_are_refused_before_anything_binds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("core.toml");
    std::fs::write(
        &file,
        "[chaincode]\nlistenAddress = \"127.0.0.1:0\"\n\n[metrics]\nlistenAddress = \"9443\"\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let output = cclaunch(&[
        "peer",
        "--config",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: bad config file {} line 5: metrics.listenAddress = \"9443\": not HOST:PORT",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        !state.exists(),
        "the peer started before refusing its config"
    );

    // The flags that set the same addresses are checked the same way (usage).
    for (flag, value) in [
        ("--listen", "localhost"),
        ("--metrics", "http://127.0.0.1:9443"),
    ] {
        let output = cclaunch(&["peer", "--state-dir", state.to_str().unwrap(), flag, value]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {flag} \"{value}\": not HOST:PORT")),
            "{stderr}"
        );
        assert!(!state.exists(), "the peer started before refusing {flag}");
    }
}
