//! Helpers shared by the CLI tests: free ports, a peer process that is
//! killed if a test fails, bounded polling.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test.
pub const CCLAUNCH: &str = env!("CARGO_BIN_EXE_cclaunch");

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Runs `cclaunch ARGS` to completion, with a bound on its time.
pub fn cclaunch(args: &[&str]) -> Output {
    cclaunch_env(args, &[])
}

/// Runs `cclaunch ARGS` with `env` added to its environment.
pub fn cclaunch_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut child = Command::new(CCLAUNCH)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("cclaunch {args:?} did not finish within 120s"));
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Text of stdout and stderr.
pub fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits for `child` at most `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Polls `check` every 50 ms until it returns `Some`, at most `limit`.
pub fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `cclaunch peer`, SIGKILLed on drop unless it already exited.
pub struct Peer {
    pub child: Child,
    /// Its state directory.
    pub state: PathBuf,
    /// `unix:{state}/admin.sock`.
    pub admin: String,
}

impl Peer {
    /// Starts `cclaunch peer --state-dir STATE ARGS` in `dir` and waits until
    /// its admin API answers `ps`.
    pub fn start(state: &Path, args: &[&str], dir: &Path) -> Peer {
        let state_arg = state.to_str().unwrap();
        let mut all = vec!["--state-dir", state_arg];
        all.extend(args);
        Self::start_with(state, &all, &[], dir)
    }

    /// Starts `cclaunch peer ARGS` with `env`, whose state directory is
    /// `state`, and waits until its admin API answers `ps`.
    pub fn start_with(state: &Path, args: &[&str], env: &[(&str, &Path)], dir: &Path) -> Peer {
        let admin = format!("unix:{}", state.join("admin.sock").display());
        let child = Command::new(CCLAUNCH)
            .arg("peer")
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut peer = Peer {
            child,
            state: state.to_owned(),
            admin,
        };
        poll(Duration::from_secs(30), "the peer's admin API", || {
            if let Some(status) = peer.child.try_wait().unwrap() {
                panic!("the peer exited early: {status}");
            }
            cclaunch(&["ps", "--admin", &peer.admin])
                .status
                .success()
                .then_some(())
        });
        peer
    }

    /// `cclaunch ARGS --admin <this peer>`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--admin", &self.admin]);
        cclaunch(&all)
    }

    /// `ps --json` of this peer.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        let output = self.run(&["--json", "ps"]);
        assert!(output.status.success(), "{:?}", texts(&output));
        serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The phase `ps` shows for `chaincode`, if it is listed.
    pub fn phase_of(&self, chaincode: &str) -> Option<String> {
        self.ps()
            .into_iter()
            .find(|cc| cc["chaincode"] == chaincode)
            .map(|cc| cc["phase"].as_str().unwrap().to_owned())
    }

    /// Sends `signal` and waits (bounded) for the exit.
    pub fn signal_and_wait(&mut self, signal: Signal) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
        wait_bounded(&mut self.child, Duration::from_secs(60))
            .expect("the peer did not exit within 60s")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The static `kv` sample binary (built on first use).
pub fn kv_sample() -> PathBuf {
    chaincode_samples::static_sample("kv").expect("static build of the kv sample")
}

/// Starts the chaincode `binary` as `name`, dialling the peer at `listen`
/// as a Fabric peer would start it, with `env` on top; output discarded.
pub fn spawn_chaincode(
    binary: &Path,
    name: &str,
    listen: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> Child {
    Command::new(binary)
        .arg(format!("-peer.address={listen}"))
        .env("CORE_CHAINCODE_ID_NAME", name)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Peer {
    /// Waits (bounded) until `ps` shows `chaincode` ready.
    pub fn wait_ready(&self, chaincode: &str) {
        poll(
            Duration::from_secs(30),
            &format!("{chaincode} ready on the peer"),
            || (self.phase_of(chaincode).as_deref() == Some("ready")).then_some(()),
        );
    }
}

/// Pids of processes whose command line mentions `needle` (a /proc scan).
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

/// Opens a `protos.ChaincodeSupport/Register` stream on `channel`: the
/// chaincode's sender and the peer's replies.
pub async fn open_register_stream(
    channel: tonic::transport::Channel,
) -> Result<
    (
        tokio::sync::mpsc::Sender<chaincode_proto::ChaincodeMessage>,
        tonic::Streaming<chaincode_proto::ChaincodeMessage>,
    ),
    tonic::Status,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let replies = chaincode_proto::chaincode_support_client::ChaincodeSupportClient::new(channel)
        .register(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok((tx, replies))
}
