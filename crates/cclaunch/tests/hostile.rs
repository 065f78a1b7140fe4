//! Hostile inputs and hostile neighbours: each test names the attack and
//! fails if the defence is removed.

mod common;

// ---------------------------------------------------------------------------
// Admin API: who may reach it, and a peer or pipe that misbehaves.
// ---------------------------------------------------------------------------
mod admin_api {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use cclaunch::admin::AdminService;
    use cclaunch::admin::client::{connect, resolve};
    use cclaunch::admin::listen::AdminListeners;
    use cclaunch::client::{Admin, ps_all};
    use chaincode_support::{ChaincodeSupport, MemorySpecStore, SupportConfig};
    use chaincode_tls::CertAuthority;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::sync::CancellationToken;

    use super::common::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    /// Another local user must not reach the socket: it is 0600 inside a
    /// 0700 state directory, and a state directory others may write to (and
    /// so replace the socket) is refused.
    #[test]
    fn the_admin_socket_is_0600_in_a_0700_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("new/state");
        let peer = Peer::start(&state, &["--listen", "127.0.0.1:0"], dir.path());
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("admin.sock")), 0o600);
        drop(peer);

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let output = cclaunch(&[
            "peer",
            "--state-dir",
            open.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("has mode 777: other users could replace the peer's admin socket")
                && stderr.contains("hint: chmod 700"),
            "{stderr}"
        );
        assert!(!open.join("admin.sock").exists());
    }

    /// The socket is removed at exit; a second peer on the same state
    /// directory is refused while the first runs, and starts after it.
    #[test]
    fn one_peer_per_state_dir_and_the_socket_goes_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut first = Peer::start(&state, &["--listen", "127.0.0.1:0"], dir.path());
        let second = cclaunch(&[
            "peer",
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]);
        let (_, stderr) = texts(&second);
        assert_eq!(second.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("another peer is running with this state directory"),
            "{stderr}"
        );
        // The refused peer left the running one's socket alone.
        assert!(first.ps().is_empty());
        assert!(
            first
                .signal_and_wait(nix::sys::signal::Signal::SIGTERM)
                .success()
        );
        assert!(!state.join("admin.sock").exists(), "socket left at exit");

        // A socket left by a killed peer is stale: the next peer replaces it.
        let mut killed = Peer::start(&state, &["--listen", "127.0.0.1:0"], dir.path());
        let status = killed.signal_and_wait(nix::sys::signal::Signal::SIGKILL);
        assert!(!status.success());
        assert!(state.join("admin.sock").exists());
        let again = Peer::start(&state, &["--listen", "127.0.0.1:0"], dir.path());
        assert!(again.ps().is_empty());
    }

    /// Plaintext TCP for the admin API cannot be asked for, by flag or file.
    #[test]
    fn plaintext_tcp_admin_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let output = cclaunch(&[
            "peer",
            "--state-dir",
            state.to_str().unwrap(),
            "--admin-listen",
            "http://0.0.0.0:0",
        ]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.starts_with("error: refusing a plaintext admin API on http://0.0.0.0:0: anyone who can reach it could launch, invoke and stop chaincode")
                && stderr.contains("always mutual TLS"),
            "{stderr}"
        );
        assert!(!state.exists(), "refused before creating anything");

        let file = dir.path().join("core.toml");
        std::fs::write(&file, "[admin]\nlistenAddress = \"tcp://0.0.0.0:7053\"\n").unwrap();
        let output = cclaunch(&["peer", "--config", file.to_str().unwrap()]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("refusing a plaintext admin API"),
            "{stderr}"
        );

        // No key turns TLS off.
        std::fs::write(&file, "[admin]\ntls = false\n").unwrap();
        let output = cclaunch(&["peer", "--config", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
        assert!(texts(&output).1.contains("unknown field `tls`"));

        // The old plaintext flag is gone.
        let output = cclaunch(&["peer", "--admin", "0.0.0.0:0"]);
        assert_eq!(output.status.code(), Some(2), "{:?}", texts(&output));
        // And the client has no plaintext scheme.
        let output = cclaunch(&["ps", "--admin", "http://127.0.0.1:7053"]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("http:// is not supported"), "{stderr}");
    }

    fn write_identity(dir: &Path, ca_pem: &str, cert_pem: &str, key_pem: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
        std::fs::write(dir.join("admin-client.crt"), cert_pem).unwrap();
        std::fs::write(dir.join("admin-client.key"), key_pem).unwrap();
    }

    /// TCP admin is mutual TLS: the peer's admin identity works; no client
    /// certificate, a stranger CA's certificate, and another certificate of
    /// the peer's own CA (what a chaincode holds) are all refused.
    #[test]
    fn tcp_admin_accepts_only_the_admin_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let addr = free_addr();
        let peer = Peer::start(
            &state,
            &["--listen", "127.0.0.1:0", "--admin-listen", &addr],
            dir.path(),
        );
        let tls = state.join("tls");
        assert_eq!(mode(&tls.join("admin-client.key")), 0o600);
        let state_arg = state.to_str().unwrap();

        // The issued identity, found through --state-dir.
        let ok = cclaunch(&["--json", "ps", "--admin", &addr, "--state-dir", state_arg]);
        assert!(ok.status.success(), "{:?}", texts(&ok));
        let https = format!("https://{addr}");
        let ok = cclaunch(&["ps", "--admin", &https, "--tls-dir", tls.to_str().unwrap()]);
        assert!(ok.status.success(), "{:?}", texts(&ok));

        let ca_pem = std::fs::read_to_string(tls.join("ca.crt")).unwrap();

        // A certificate from a stranger CA fails the handshake.
        let stranger = CertAuthority::generate("stranger").unwrap();
        let foreign = stranger
            .issue_client("cclaunch admin client", Duration::from_secs(3600))
            .unwrap();
        let foreign_dir = dir.path().join("foreign");
        write_identity(&foreign_dir, &ca_pem, &foreign.cert_pem, &foreign.key_pem);
        let refused = cclaunch(&[
            "ps",
            "--admin",
            &addr,
            "--tls-dir",
            foreign_dir.to_str().unwrap(),
        ]);
        let (stdout, stderr) = texts(&refused);
        assert_eq!(refused.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.is_empty() && stderr.starts_with("error: "),
            "{stderr}"
        );

        // A certificate of the peer's own CA that is not the admin identity
        // (a chaincode's launch certificate) passes TLS but is refused.
        let own = CertAuthority::load_or_create(&tls, "unused").unwrap();
        let chaincode = own
            .issue_client("kv:1.0", Duration::from_secs(3600))
            .unwrap();
        let chaincode_dir = dir.path().join("chaincode");
        write_identity(
            &chaincode_dir,
            &ca_pem,
            &chaincode.cert_pem,
            &chaincode.key_pem,
        );
        let refused = cclaunch(&[
            "ps",
            "--admin",
            &addr,
            "--tls-dir",
            chaincode_dir.to_str().unwrap(),
        ]);
        let (_, stderr) = texts(&refused);
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the peer's admin API refused this client")
                && stderr.contains("not the peer's admin identity"),
            "{stderr}"
        );

        // No client certificate: the server never speaks HTTP/2.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let answered = rt.block_on(async {
            let config = chaincode_tls::client_config(&ca_pem, None).unwrap();
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("cclaunch-admin").unwrap();
            let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
            else {
                return 0;
            };
            // The HTTP/2 preface; a server that accepted us answers SETTINGS.
            let _ = tls
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                .await;
            let mut buf = [0u8; 64];
            tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
                .await
                .expect("the server neither answered nor closed")
                .unwrap_or(0)
        });
        assert_eq!(answered, 0, "a client without a certificate got an answer");
        drop(peer);
    }

    /// A registry too large for one 4 MB message is listed whole, page by
    /// page, over the real admin service on a Unix socket.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ps_lists_a_registry_larger_than_one_message() {
        // Long names whose runtime cannot start (an empty code package):
        // entries that stay, with an error, of about 500 bytes each.
        let count = 10_000;
        let stem = "x".repeat(200);
        let names: Vec<String> = (0..count).map(|i| format!("{stem}{i:05}:1.0")).collect();
        let specs = Arc::new(MemorySpecStore::new());
        for name in &names {
            specs.insert(name.parse().unwrap(), Default::default());
        }
        let runtimes = tempfile::tempdir().unwrap();
        let process = executor::process::ProcessExecutor::new(executor::process::ProcessConfig {
            work_dir: runtimes.path().to_owned(),
            ..Default::default()
        });
        let support = ChaincodeSupport::builder(SupportConfig::default())
            .spec_store(specs)
            .executor(Arc::new(process))
            .build();
        futures::future::join_all(names.iter().map(|name| {
            let support = support.clone();
            async move {
                let name = name.parse().unwrap();
                assert!(support.launch(&name).await.is_err());
            }
        }))
        .await;
        assert_eq!(support.status().len(), count);

        let state = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let listeners = AdminListeners::bind(state.path(), None).await.unwrap();
        let socket = listeners.socket_path().to_owned();
        let serving = listeners.serve(
            AdminService::server(support.clone(), shutdown.clone()),
            shutdown.clone(),
        );
        let admin = Admin {
            resolved: resolve(Some(socket.to_str().unwrap()), None, None).unwrap(),
            timeout: Duration::from_secs(60),
        };
        let mut client = connect(&admin.resolved).await.unwrap();
        for page_size in [0, 999] {
            let all = ps_all(&mut client, &admin, page_size).await.unwrap();
            assert_eq!(all.len(), count, "page size {page_size}");
            let bytes: usize = all
                .iter()
                .map(|cc| cc.chaincode.len() + cc.last_error.len())
                .sum();
            assert!(bytes > 4 << 20, "only {bytes} bytes: not a large registry");
            let mut listed: Vec<&str> = all.iter().map(|cc| cc.chaincode.as_str()).collect();
            listed.dedup();
            assert_eq!(listed.len(), count, "an entry listed twice");
        }
        shutdown.cancel();
        serving.wait().await.unwrap();
        assert!(!socket.exists());
    }

    /// A server that accepts and never answers: the CLI fails at its
    /// deadline with an error that names the address and the flag.
    #[test]
    fn a_silent_admin_server_fails_the_cli_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("silent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            // Accept and keep every connection open, saying nothing.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        let addr = format!("unix:{}", socket.display());
        for (args, what) in [
            (vec!["ps"], "ps"),
            (vec!["launch", "kv:1.0"], "launch of kv:1.0"),
            (vec!["watch", "--for", "60"], "watch"),
        ] {
            let mut all = args.clone();
            all.extend(["--admin", &addr, "--timeout", "1s"]);
            let started = Instant::now();
            let output = cclaunch(&all);
            let took = started.elapsed();
            let (_, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "error: {what}: no answer from the peer's admin API at {addr} (from --admin or CCLAUNCH_ADMIN) within 1s"
                )) && stderr.contains("--timeout DURATION"),
                "{args:?}: {stderr}"
            );
            assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
        }
    }

    /// `cclaunch ps | head -1`: a closed stdout ends the command quietly.
    #[test]
    fn a_closed_stdout_exits_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer::start(
            &dir.path().join("state"),
            &["--listen", "127.0.0.1:0", "--packages", "empty"],
            dir.path(),
        );
        // An entry, so that the table has rows.
        assert_eq!(peer.run(&["launch", "nope:1.0"]).status.code(), Some(1));
        for json in [false, true] {
            let mut args = vec!["ps", "--admin", &peer.admin];
            if json {
                args.insert(0, "--json");
            }
            let mut child = Command::new(CCLAUNCH)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // No reader left: the child's first write meets a closed pipe.
            drop(child.stdout.take());
            let status = wait_bounded(&mut child, Duration::from_secs(60)).unwrap();
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            assert_eq!(status.code(), Some(0), "json={json}: {stderr}");
            assert!(stderr.is_empty(), "json={json}: {stderr}");
        }
    }
}

// ---------------------------------------------------------------------------
// Names and package files: path traversal, absolute names, links and FIFOs.
// ---------------------------------------------------------------------------
mod names {
    use cclaunch::admin::client::{connect, resolve};
    use cclaunch::admin::proto::LaunchRequest;
    use chaincode_proto::name::{NAME_RULE, VERSION_RULE};

    use super::common::*;

    /// Names that would leave the packages directory, or are not names at all.
    const BAD_NAMES: [&str; 4] = ["/tmp/evil:1", "../x:1", "a/b:1", "my cc:1"];

    // ---------------------------------------------------------------------------
    // Path traversal through chaincode names on the command line: refused before
    // any connection, as a usage error (exit 2), quoting Fabric's rule.
    // ---------------------------------------------------------------------------

    #[test]
    fn launch_invoke_and_stop_refuse_names_that_break_the_rule() {
        // No peer listens there: a refusal must come before any connection.
        let admin = free_addr();
        for bad in BAD_NAMES {
            for command in [
                &["launch", bad][..],
                &["invoke", bad, "get", "k"],
                &["stop", bad],
            ] {
                let mut args = command.to_vec();
                args.extend(["--admin", &admin]);
                let output = cclaunch(&args);
                let (_, stderr) = texts(&output);
                assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
                assert!(stderr.contains(NAME_RULE), "{args:?}: {stderr}");
                assert!(stderr.contains("is invalid"), "{args:?}: {stderr}");
            }
        }
        let output = cclaunch(&["launch", "kv:1/../../x", "--admin", &admin]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(VERSION_RULE), "{stderr}");
    }

    // ---------------------------------------------------------------------------
    // The same names sent straight to the admin API, bypassing the CLI's check:
    // the peer refuses them as invalid arguments and creates no entry.
    // ---------------------------------------------------------------------------

    #[tokio::test]
    async fn the_admin_api_refuses_names_that_break_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pk")).unwrap();
        let state = dir.path().join("state");
        let peer = Peer::start(
            &state,
            &["--listen", "127.0.0.1:0", "--packages", "pk"],
            dir.path(),
        );
        let resolved = resolve(Some(&peer.admin), None, None).unwrap();
        let mut client = connect(&resolved).await.unwrap();
        for bad in BAD_NAMES {
            let status = client
                .launch(LaunchRequest {
                    chaincode: bad.to_owned(),
                })
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{bad}: {status:?}"
            );
            assert!(status.message().contains(NAME_RULE), "{bad}: {status:?}");
        }
        assert!(peer.ps().is_empty(), "no entry for a refused name");
    }

    // ---------------------------------------------------------------------------
    // `cclaunch package --name ../x`: the name and version are checked before
    // the binary is read or any directory or file is made.
    // ---------------------------------------------------------------------------

    #[test]
    fn package_refuses_a_bad_name_or_version_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("cc");
        std::fs::write(&binary, b"\x7fELF not really").unwrap();
        let out = dir.path().join("pk");
        for (name, version, rule) in [
            ("../x", "1", NAME_RULE),
            ("/tmp/evil", "1", NAME_RULE),
            (".hidden", "1", NAME_RULE),
            ("x", "../../1", VERSION_RULE),
            ("x", "1/2", VERSION_RULE),
        ] {
            let output = cclaunch(&[
                "package",
                "--binary",
                binary.to_str().unwrap(),
                "--name",
                name,
                "--version",
                version,
                "--out",
                out.to_str().unwrap(),
            ]);
            let (_, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(2), "{name}:{version}: {stderr}");
            assert!(stderr.contains(rule), "{name}:{version}: {stderr}");
            assert!(
                !out.exists(),
                "{name}:{version}: the packages directory was made"
            );
        }
        // Only the binary: no `x.1` beside `pk`, nothing anywhere else.
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["cc"]);
    }

    // ---------------------------------------------------------------------------
    // `cclaunch package --binary` naming a FIFO or a directory: refused at once
    // (a FIFO must not block the packager), and nothing is written.
    // ---------------------------------------------------------------------------

    #[test]
    fn package_refuses_a_binary_that_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let out = dir.path().join("pk");
        for (binary, kind) in [
            (fifo.as_path(), "is a FIFO"),
            (dir.path(), "is a directory"),
        ] {
            let output = cclaunch(&[
                "package",
                "--binary",
                binary.to_str().unwrap(),
                "--name",
                "x",
                "--version",
                "1",
                "--out",
                out.to_str().unwrap(),
            ]);
            let (_, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(1), "{stderr}");
            assert!(
                stderr.contains("cannot package x:1") && stderr.contains(kind),
                "{stderr}"
            );
            assert!(!out.exists(), "{stderr}");
        }
    }

    // ---------------------------------------------------------------------------
    // Package files planted in the peer's packages directory: a FIFO (which
    // would hang a plain read) and a symbolic link out of the directory are
    // refused, promptly, naming the chaincode, the path and the rule.
    // ---------------------------------------------------------------------------

    #[test]
    fn the_peer_refuses_package_files_that_are_fifos_or_links() {
        let dir = tempfile::tempdir().unwrap();
        let packages = dir.path().join("pk");
        std::fs::create_dir(&packages).unwrap();
        nix::unistd::mkfifo(&packages.join("fifo.1"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"not yours").unwrap();
        std::os::unix::fs::symlink(&secret, packages.join("link.1")).unwrap();
        let state = dir.path().join("state");
        let peer = Peer::start(
            &state,
            &["--listen", "127.0.0.1:0", "--packages", "pk"],
            dir.path(),
        );
        for (chaincode, file, kind) in [
            ("fifo:1", "fifo.1", "is a FIFO"),
            ("link:1", "link.1", "is a symbolic link"),
        ] {
            let output = peer.run(&["launch", chaincode]);
            let (_, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(1), "{chaincode}: {stderr}");
            for needle in [
                chaincode,
                kind,
                // The peer was given `--packages pk`.
                &format!("pk/{file}"),
                "a package must be a regular file",
            ] {
                assert!(
                    stderr.contains(needle),
                    "{chaincode}: no {needle:?} in {stderr}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Chaincode listener: a flood of silent TCP connections to the chaincode port
// (the peer used to hold each one, and its fds, forever) and messages far over
// the size limit.
// ---------------------------------------------------------------------------
mod chaincode_listener {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use chaincode_proto::ChaincodeMessage;
    use chaincode_proto::chaincode_message::Type;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tonic::transport::{Channel, Endpoint};

    use super::common::*;

    const FLOOD: usize = 2_000;
    const MAX_CONNECTIONS: usize = 128;

    /// Writes `core.toml` in `dir` with `[chaincode]` set to `keys` (TOML lines).
    fn config_file(dir: &Path, keys: &[&str]) -> PathBuf {
        let path = dir.join("core.toml");
        std::fs::write(&path, format!("[chaincode]\n{}\n", keys.join("\n"))).unwrap();
        path
    }

    /// The file descriptors process `pid` holds.
    fn open_fds(pid: u32) -> usize {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    }

    /// Raises this process's soft fd limit towards `want`; the limit in force.
    fn raise_fd_limit(want: u64) -> u64 {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        if soft >= want {
            return soft;
        }
        let target = want.min(hard);
        setrlimit(Resource::RLIMIT_NOFILE, target, hard).map_or(soft, |()| target)
    }

    async fn plain_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
    }

    /// The peer's replies until the stream ends (bounded), and how it ended.
    async fn drain(replies: &mut tonic::Streaming<ChaincodeMessage>) -> (Vec<Type>, tonic::Status) {
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), replies.message()).await {
                Ok(Ok(Some(message))) => seen.push(message.message_type()),
                Ok(Ok(None)) => return (seen, tonic::Status::ok("")),
                Ok(Err(status)) => return (seen, status),
                Err(_) => panic!("the stream neither ended nor answered: {seen:?}"),
            }
        }
    }

    /// Registers `name` on a fresh plaintext connection: the first reply.
    async fn register_once(addr: &str, name: &str) -> Option<ChaincodeMessage> {
        let channel = plain_channel(addr).await.ok()?;
        let (tx, mut replies) = open_register_stream(channel).await.ok()?;
        tx.send(ChaincodeMessage::register(&name.parse().ok()?))
            .await
            .ok()?;
        tokio::time::timeout(Duration::from_secs(10), replies.message())
            .await
            .ok()?
            .ok()
            .flatten()
    }

    /// Starts the kv sample as `kv:1.0` against a dev peer, waits for it to
    /// be ready, and checks it answers a put and a get.
    fn kv_registers_and_answers(peer: &Peer, listen: &str) {
        let mut chaincode = spawn_chaincode(&kv_sample(), "kv:1.0", listen, &[]);
        peer.wait_ready("kv:1.0");
        let put = peer.run(&["invoke", "kv:1.0", "put", "a", "1"]);
        assert!(put.status.success(), "{:?}", texts(&put));
        let get = peer.run(&["invoke", "kv:1.0", "get", "a"]);
        let (stdout, stderr) = texts(&get);
        assert!(
            get.status.success() && stdout.contains("payload: 1"),
            "{stdout}{stderr}"
        );
        let _ = chaincode.kill();
        let _ = chaincode.wait();
    }

    /// The limits come from the config file, and a limit that would refuse
    /// every chaincode stops the peer at start with the key and the reason.
    #[test]
    fn limits_are_read_from_the_config_file_and_zero_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let keys = [
            "maxConnections = 64",
            "handshakeTimeout = \"2s\"",
            "firstMessageTimeout = \"1s\"",
            "maxMessageSize = 65536",
            "idleEviction = \"0\"",
            "maxChaincodes = 100",
        ];
        let config = config_file(dir.path(), &keys);
        let output = cclaunch(&[
            "peer",
            "--config",
            config.to_str().unwrap(),
            "--print-config",
        ]);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{stderr}");
        for key in keys {
            assert!(stdout.contains(key), "{key} not in\n{stdout}");
        }

        let state = dir.path().join("state");
        let config = config_file(
            dir.path(),
            &["firstMessageTimeout = \"1s\"", "maxConnections = 0"],
        );
        let output = cclaunch(&[
            "peer",
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("core.toml line 3: chaincode.maxConnections = 0 connections")
                && stderr.contains("would close every chaincode connection")
                && stderr.contains("hint: raise chaincode.maxConnections"),
            "{stderr}"
        );
        assert!(!state.exists(), "refused before anything was created");
    }

    /// Attack: 2,000 TCP connections to the chaincode port that never say a
    /// word. The peer holds at most `maxConnections` of them (its fds stay
    /// bounded while they are open), closes every one within
    /// `firstMessageTimeout`, gives its fds back, and still serves the admin
    /// API and a chaincode that registers afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_silent_connections_is_closed_and_the_peer_still_serves() {
        let limit = raise_fd_limit(FLOOD as u64 + 512);
        assert!(limit > FLOOD as u64 + 64, "fd limit {limit} too low");
        let dir = tempfile::tempdir().unwrap();
        let listen = free_addr();
        let first_message_timeout = Duration::from_secs(1);
        let config = config_file(
            dir.path(),
            &[
                "firstMessageTimeout = \"1s\"",
                &format!("maxConnections = {MAX_CONNECTIONS}"),
            ],
        );
        let peer = Peer::start(
            &dir.path().join("state"),
            &[
                "--dev",
                "--listen",
                &listen,
                "--config",
                config.to_str().unwrap(),
            ],
            dir.path(),
        );
        let pid = peer.child.id();
        let before = open_fds(pid);

        // Connect in bounded batches, sampling the peer's fds as we go.
        let mut sockets = Vec::with_capacity(FLOOD);
        let mut most = before;
        for _ in 0..FLOOD / 100 {
            let batch = futures::future::join_all((0..100).map(|_| {
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&listen))
            }))
            .await;
            for socket in batch {
                sockets.push(socket.expect("connect timed out").expect("connect"));
            }
            most = most.max(open_fds(pid));
        }
        let connected = Instant::now();
        let during = open_fds(pid);
        most = most.max(during);
        // A little room for the admin socket's `ps` calls and accepts that are
        // closed at once for being over the cap.
        assert!(
            most <= before + MAX_CONNECTIONS + 32,
            "the peer held {most} fds with {FLOOD} silent connections open (before: {before}, cap: {MAX_CONNECTIONS})"
        );

        // Every connection is closed by the peer: EOF or reset, within the
        // first-message timeout of its accept (plus scheduling margin). The
        // peer speaks first (its HTTP/2 SETTINGS), so read until the end.
        let closed = futures::future::join_all(sockets.iter_mut().map(|socket| async move {
            let mut buf = [0u8; 256];
            let until_end = async {
                // Bounded: a peer that kept talking would hit the timeout.
                while let Ok(read) = socket.read(&mut buf).await {
                    if read == 0 {
                        break;
                    }
                }
            };
            tokio::time::timeout(first_message_timeout * 10, until_end)
                .await
                .is_ok()
        }))
        .await;
        let took = connected.elapsed();
        let open = closed.iter().filter(|closed| !**closed).count();
        assert_eq!(open, 0, "{open} of {FLOOD} silent connections still open");
        assert!(
            took < first_message_timeout * 5,
            "closing took {took:?} after the last connect"
        );
        drop(sockets);

        // The peer gave its fds back.
        let after = poll(
            Duration::from_secs(10),
            "the peer's fds back to normal",
            || {
                let now = open_fds(pid);
                (now <= before + 4).then_some(now)
            },
        );
        assert!(after <= before + 4, "before {before}, after {after}");

        // And still serves: ps, and a chaincode that registers and answers.
        let listed = tokio::task::block_in_place(|| peer.ps());
        assert!(listed.is_empty(), "{listed:?}");
        tokio::task::block_in_place(|| kv_registers_and_answers(&peer, &listen));
    }

    /// Attack: one chaincode message far over `maxMessageSize`, first as the
    /// opening message and then after a REGISTER. The stream ends with
    /// RESOURCE_EXHAUSTED naming the limit (nothing is buffered beyond it),
    /// and the peer keeps serving other chaincode.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversized_message_ends_its_stream_with_resource_exhausted() {
        const LIMIT: usize = 65_536;
        let dir = tempfile::tempdir().unwrap();
        let listen = free_addr();
        let config = config_file(dir.path(), &[&format!("maxMessageSize = {LIMIT}")]);
        let peer = Peer::start(
            &dir.path().join("state"),
            &[
                "--dev",
                "--listen",
                &listen,
                "--config",
                config.to_str().unwrap(),
            ],
            dir.path(),
        );
        let big = || ChaincodeMessage::put_state("tx1", "k", vec![7; LIMIT * 4]);

        // As the first message: refused before any REGISTER is read.
        let (tx, mut replies) = open_register_stream(plain_channel(&listen).await.unwrap())
            .await
            .unwrap();
        tx.send(big()).await.unwrap();
        let (seen, status) = drain(&mut replies).await;
        assert!(seen.is_empty(), "{seen:?}");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains(&LIMIT.to_string()), "{status:?}");

        // After a REGISTER: the stream of that chaincode ends the same way.
        let (tx, mut replies) = open_register_stream(plain_channel(&listen).await.unwrap())
            .await
            .unwrap();
        tx.send(ChaincodeMessage::register(&"big:1.0".parse().unwrap()))
            .await
            .unwrap();
        let first = replies.message().await.unwrap().unwrap();
        assert_eq!(first.message_type(), Type::Registered);
        tx.send(big()).await.unwrap();
        let (_, status) = drain(&mut replies).await;
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains(&LIMIT.to_string()) && status.message().contains("big:1.0"),
            "{status:?}"
        );

        // The peer keeps serving: the admin API answers and another
        // chaincode registers.
        let reply = register_once(&listen, "next:1.0").await;
        assert_eq!(
            reply.map(|m| m.message_type()),
            Some(Type::Registered),
            "a chaincode could not register after the oversized messages"
        );
        let listed = tokio::task::block_in_place(|| peer.ps());
        assert!(
            listed.iter().any(|cc| cc["chaincode"] == "next:1.0"),
            "{listed:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Impostor REGISTER: a local process that is not the launched chaincode
// registers on a net-mode peer with TLS on, over plaintext or with a
// certificate of the peer's own CA that no launch was given.
// ---------------------------------------------------------------------------
mod impostor_register {
    use std::io;
    use std::time::Duration;

    use chaincode_proto::ChaincodeMessage;
    use chaincode_proto::chaincode_message::Type;
    use tokio::net::TcpStream;
    use tonic::transport::{Channel, Endpoint, Uri};

    use super::common::*;

    /// Registers `name` over plaintext: the first reply, if any.
    async fn plaintext_register(addr: &str, name: &str) -> Option<ChaincodeMessage> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .ok()?;
        let (tx, mut replies) = open_register_stream(channel).await.ok()?;
        tx.send(ChaincodeMessage::register(&name.parse().ok()?))
            .await
            .ok()?;
        tokio::time::timeout(Duration::from_secs(10), replies.message())
            .await
            .ok()?
            .ok()
            .flatten()
    }
    /// A gRPC channel over TLS to `addr`, trusting `ca_pem`, presenting
    /// `client` (certificate, key) if given; server name 127.0.0.1.
    async fn tls_channel(
        addr: &str,
        ca_pem: &str,
        client: Option<(&str, &str)>,
    ) -> Result<Channel, tonic::transport::Error> {
        let config = chaincode_tls::client_config(ca_pem, client).unwrap();
        let addr = addr.to_owned();
        let connector = tower::service_fn(move |_: Uri| {
            let config = config.clone();
            let addr = addr.clone();
            async move {
                let tcp = TcpStream::connect(&addr).await?;
                let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(server_name, tcp)
                    .await?;
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        Endpoint::from_static("http://127.0.0.1")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(connector)
            .await
    }

    /// Attack: a local process that is not the launched chaincode REGISTERs
    /// on a net-mode peer (TLS on, the default). Over plaintext it gets no
    /// answer at all; with a certificate of the peer's own CA that was given
    /// to no launch (the admin client identity) its REGISTER is answered
    /// with ERROR "not issued for any launch", and nothing is registered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_impostor_register_is_refused_on_a_tls_peer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pk")).unwrap();
        let listen = free_addr();
        let state = dir.path().join("state");
        let admin_tcp = free_addr();
        // The TCP admin listener makes the peer write its admin identity.
        let peer = Peer::start(
            &state,
            &[
                "--listen",
                &listen,
                "--packages",
                "pk",
                "--admin-listen",
                &admin_tcp,
            ],
            dir.path(),
        );

        // Plaintext: the TLS listener never speaks HTTP/2 to it.
        let plaintext = plaintext_register(&listen, "kv:1.0").await;
        assert!(
            plaintext.is_none(),
            "a plaintext client got an answer: {plaintext:?}"
        );

        let tls = state.join("tls");
        let ca_pem = std::fs::read_to_string(tls.join("ca.crt")).unwrap();
        let cert = std::fs::read_to_string(tls.join("admin-client.crt")).unwrap();
        let key = std::fs::read_to_string(tls.join("admin-client.key")).unwrap();
        let channel = tls_channel(&listen, &ca_pem, Some((&cert, &key)))
            .await
            .expect("the handshake with a certificate of the peer's CA");
        let (tx, mut replies) = open_register_stream(channel).await.unwrap();
        tx.send(ChaincodeMessage::register(&"kv:1.0".parse().unwrap()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), replies.message())
            .await
            .expect("no answer to the REGISTER")
            .expect("a message, not a status")
            .expect("a message before the end");
        assert_eq!(
            answer.message_type(),
            Type::Error,
            "{}",
            answer.payload_text()
        );
        assert!(
            answer.payload_text().contains("not issued for any launch"),
            "{}",
            answer.payload_text()
        );
        let listed = tokio::task::block_in_place(|| peer.ps());
        assert!(listed.is_empty(), "{listed:?}");
    }
}

// ---------------------------------------------------------------------------
// Registry: 20,000 launches of distinct names that do not exist. Each used
// to leave an entry (and a driver, a `ps` row, metric series) behind for good.
// ---------------------------------------------------------------------------
mod registry {
    use std::path::{Path, PathBuf};

    use cclaunch::admin::AdminClient;
    use cclaunch::admin::client::{connect, resolve};
    use cclaunch::admin::proto::LaunchRequest;

    use super::common::*;

    const NAMES: usize = 20_000;
    const BATCH: usize = 250;
    /// What 20,000 failed launches may add to the peer's RSS. Measured on a
    /// debug build: 0.5 to 2 MiB (allocator caches); the library's unbounded
    /// registry grew ~560 MiB for the same flood.
    const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

    /// Writes `core.toml` in `dir` with `[chaincode]` set to `keys` (TOML lines).
    fn config_file(dir: &Path, keys: &[&str]) -> PathBuf {
        let path = dir.join("core.toml");
        std::fs::write(&path, format!("[chaincode]\n{}\n", keys.join("\n"))).unwrap();
        path
    }

    /// Process `pid`'s resident set size in KiB (`VmRSS`).
    fn rss_kib(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
    }

    async fn launch_all(
        client: &mut AdminClient<tonic::transport::Channel>,
        names: impl Iterator<Item = String>,
    ) {
        let names: Vec<String> = names.collect();
        for chunk in names.chunks(BATCH) {
            let answers = futures::future::join_all(chunk.iter().map(|name| {
                let mut client = client.clone();
                async move {
                    client
                        .launch(LaunchRequest {
                            chaincode: name.clone(),
                        })
                        .await
                }
            }))
            .await;
            for (name, answer) in chunk.iter().zip(answers) {
                let status = answer.expect_err("a name with no package launched");
                // Not "too many chaincodes": the failed names were dropped.
                assert_eq!(status.code(), tonic::Code::NotFound, "{name}: {status:?}");
            }
        }
    }

    /// Attack: launch 20,000 distinct unknown names through the admin API.
    /// Every launch fails with NOT_FOUND (none hits `maxChaincodes`, set
    /// below the count), the peer's RSS grows less than a measured bound,
    /// and `ps` afterwards lists none of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twenty_thousand_unknown_names_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pk")).unwrap();
        let config = config_file(dir.path(), &["maxChaincodes = 1000"]);
        let peer = Peer::start(
            &dir.path().join("state"),
            &[
                "--listen",
                "127.0.0.1:0",
                "--packages",
                "pk",
                "--config",
                config.to_str().unwrap(),
            ],
            dir.path(),
        );
        let pid = peer.child.id();
        let resolved = resolve(Some(&peer.admin), None, None).unwrap();
        let mut client = connect(&resolved).await.unwrap();

        // Warm up the allocator and the channel with names of the same shape.
        launch_all(&mut client, (0..2_000).map(|i| format!("warm{i:05}:1.0"))).await;
        let before = rss_kib(pid);
        launch_all(&mut client, (0..NAMES).map(|i| format!("ghost{i:05}:1.0"))).await;
        let after = rss_kib(pid);
        let grew = after.saturating_sub(before);
        eprintln!("peer RSS: {before} KiB before, {after} KiB after {NAMES} unknown names");
        assert!(
            grew < RSS_GROWTH_BOUND_KIB,
            "the peer's RSS grew {grew} KiB ({before} -> {after}) for {NAMES} unknown names"
        );

        let listed = tokio::task::block_in_place(|| peer.ps());
        let left: Vec<_> = listed
            .iter()
            .filter_map(|cc| cc["chaincode"].as_str())
            .filter(|name| name.starts_with("ghost") || name.starts_with("warm"))
            .collect();
        assert!(
            left.is_empty(),
            "{} names listed: {:?}",
            left.len(),
            &left[..left.len().min(5)]
        );
    }
}
