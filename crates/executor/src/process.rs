//! The process backend: the chaincode executable from the code package runs
//! as a local child process.
//!
//! # Expected flow
//!
//! 1. [`Executor::start`] stops whatever this executor
//!    still runs for the chaincode, removes a stale runtime directory
//!    `{work_dir}/{runtime_name}`, fills it with the code package's files
//!    (see [`crate::package`] for the layout and what is refused) and spawns
//!    `{dir}/chaincode -peer.address=HOST:PORT` with the directory as its
//!    working directory, in a process group of its own, stdin from
//!    `/dev/null`.
//!    A package is unpacked once, into `{work_dir}/.packages/{sha256}`;
//!    each start hard-links that tree into its runtime directory, so a
//!    relaunch does not inflate and write the binary again. Package files
//!    are shared between runtimes of the same package: treat them as
//!    read-only.
//!    The runtime directory is made `0700`. With TLS
//!    ([`StartRequest::tls`]), the five files of [`crate::tls_files`] are
//!    written, mode `0600`, into its subdirectory `tls/` (also `0700`) before
//!    the spawn — never into the shared package cache — and go with the
//!    runtime directory at stop.
//! 2. The environment is clean: only `PATH` and `HOME` are kept from the
//!    peer's own environment (so that the peer's secrets and settings do not
//!    leak into chaincode), then [`StartRequest::fabric_env_in`] is added
//!    with the files' paths.
//! 3. Every line on stdout/stderr becomes a `tracing` event (target
//!    `chaincode`, fields `chaincode` = `name:version` and `stream`) and a
//!    [`RuntimeEventKind::Log`](crate::RuntimeEventKind::Log) on the sink;
//!    when the process ends, the sink gets
//!    [`Exited`](crate::RuntimeEventKind::Exited) with
//!    [`ExitStatus::Code`] or [`ExitStatus::Signal`], after its last lines
//!    ([`ExitStatus::Stopped`] around it when a stop caused the exit, below).
//!
//! # Stop
//!
//! [`Executor::stop`] gives a process on its way out [`EXIT_SETTLE`] to
//! exit by itself (a crashing chaincode closes its stream just before it
//! exits: its own code is kept), then sends SIGTERM to the process
//! group, waits up to [`ProcessConfig::stop_grace`] for the exit, then sends
//! SIGKILL to the group (which also takes any process the chaincode started),
//! and removes the runtime directory. Stopping a chaincode that was never
//! started or has already exited is success. An exit during the stop with
//! code 0, or by SIGTERM or SIGKILL, is reported as [`ExitStatus::Stopped`];
//! any other status is the chaincode's own and reported as it is. The
//! process stays registered until it is confirmed gone, so a failed or
//! abandoned stop still leaves it for `Drop` to kill.
//!
//! Dropping the executor SIGKILLs every process group it still runs, removes
//! their runtime directories and the package cache, and removes `work_dir`
//! itself if this executor created it and it is then empty.
//!
//! # Example
//!
//! ```no_run
//! use executor::process::{ProcessConfig, ProcessExecutor};
//! use executor::{EventSink, Executor, Generation, StartRequest, package};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = ProcessExecutor::new(ProcessConfig::default());
//! let chaincode = "kv:1.0".parse()?;
//! let request = StartRequest {
//!     chaincode,
//!     generation: Generation::default(),
//!     code_package: package::package_binary("target/release/kv".as_ref())?,
//!     peer_address: "127.0.0.1:7052".into(),
//!     env: vec![],
//!     tls: None,
//! };
//! let (sink, mut events) = EventSink::channel(request.generation);
//! executor.start(request.clone(), sink).await?;
//! executor.stop(&request.chaincode).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chaincode_proto::ChaincodeName;
use futures::future::BoxFuture;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use crate::{EventSink, Executor, ExecutorError, ExitStatus, LogStream, StartRequest, package};

/// Longest line passed on as one log event; longer output is split.
const MAX_LINE: u64 = 64 * 1024;

/// How long the last output of an exited process may take to drain before
/// the exit is reported anyway (a grandchild may hold the pipes open).
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// How long a stop waits for a runtime to end by itself before signalling
/// it: a chaincode that crashes closes its stream first and exits a moment
/// later, and SIGTERM in that moment would hide its own exit code.
pub const EXIT_SETTLE: Duration = Duration::from_millis(250);

/// How long to wait for the exit after SIGKILL before giving up.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Variables kept from the peer's environment; everything else is dropped.
const KEPT_ENV: [&str; 2] = ["PATH", "HOME"];

/// Settings of the [`ProcessExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Directory under which each chaincode gets its runtime directory
    /// (`{work_dir}/{runtime_name}`); created if missing.
    pub work_dir: PathBuf,
    /// How long a chaincode has to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
}

impl Default for ProcessConfig {
    /// `work_dir` = `$TMPDIR/cclaunch-process-<peer pid>`, `stop_grace` = 5 s.
    fn default() -> Self {
        Self {
            work_dir: std::env::temp_dir().join(format!("cclaunch-process-{}", std::process::id())),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// One chaincode process this executor started.
#[derive(Debug)]
struct Running {
    /// The process id, which is also its process group id.
    pgid: Pid,
    /// The runtime directory the package was unpacked into.
    dir: PathBuf,
    /// `Some` once the process has been reaped.
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Set when the peer starts stopping the process, so that an exit it
    /// caused is reported as [`ExitStatus::Stopped`].
    stop_requested: Arc<AtomicBool>,
}

/// Runs chaincode executables as local child processes. See the module docs.
#[derive(Debug)]
pub struct ProcessExecutor {
    config: ProcessConfig,
    running: Mutex<HashMap<ChaincodeName, Running>>,
    /// Whether this executor created `work_dir` (it then removes it when dropped).
    created_work_dir: AtomicBool,
}

impl ProcessExecutor {
    /// An executor with these settings. Nothing is created until a start.
    pub fn new(config: ProcessConfig) -> Self {
        Self {
            config,
            running: Mutex::new(HashMap::new()),
            created_work_dir: AtomicBool::new(false),
        }
    }

    /// The settings this executor was made with.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    /// The process id (and process group id) of the running process of
    /// `chaincode`, if this executor started one that has not been stopped.
    pub fn pid(&self, chaincode: &ChaincodeName) -> Option<u32> {
        self.running
            .lock()
            .get(chaincode)
            .and_then(|r| u32::try_from(r.pgid.as_raw()).ok())
    }

    /// The runtime directory of `chaincode`.
    pub fn runtime_dir(&self, chaincode: &ChaincodeName) -> PathBuf {
        self.config.work_dir.join(runtime_name(chaincode))
    }

    async fn start_inner(
        &self,
        mut request: StartRequest,
        sink: EventSink,
    ) -> Result<(), ExecutorError> {
        let chaincode = request.chaincode.clone();
        let start_err = |reason: String| ExecutorError::Start {
            chaincode: chaincode.to_string(),
            reason,
        };

        // A runtime still registered here is stale (the driver never overlaps
        // start and stop of one chaincode): take it down first.
        self.stop_inner(&chaincode).await?;

        let dir = self.runtime_dir(&chaincode);
        let work_dir = &self.config.work_dir;
        if !work_dir.is_dir() {
            std::fs::create_dir_all(work_dir)
                .map_err(|e| start_err(format!("cannot create {}: {e}", work_dir.display())))?;
            self.created_work_dir.store(true, Ordering::Relaxed);
        }
        // Moved out: the package can be large and is needed only here.
        let package = std::mem::take(&mut request.code_package);
        let unpack_dir = dir.clone();
        let unpack_cc = chaincode.clone();
        let cache = self.config.work_dir.join(PACKAGE_CACHE);
        let tls_files = request.tls_files();
        let executable = tokio::task::spawn_blocking(move || {
            remove_dir(&unpack_dir).map_err(|e| ExecutorError::Start {
                chaincode: unpack_cc.to_string(),
                reason: format!(
                    "cannot remove stale directory {}: {e}",
                    unpack_dir.display()
                ),
            })?;
            let executable = prepare_runtime_dir(&cache, &package, &unpack_dir, &unpack_cc)?;
            write_tls_files(&unpack_dir, &tls_files).map_err(|reason| ExecutorError::Start {
                chaincode: unpack_cc.to_string(),
                reason,
            })?;
            Ok(executable)
        })
        .await
        .map_err(|e| start_err(format!("unpacking task failed: {e}")))?;
        let executable = match executable {
            Ok(exe) => exe,
            Err(err) => {
                // Leave nothing half-written behind.
                let _ = remove_dir(&dir);
                return Err(err);
            }
        };

        let mut command = Command::new(&executable);
        command
            .args(request.fabric_args())
            .current_dir(&dir)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for key in KEPT_ENV {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.envs(request.fabric_env_in(&dir.join(TLS_DIR)));

        let mut child = match spawn_retrying(&mut command).await {
            Ok(child) => child,
            Err(e) => {
                let _ = remove_dir(&dir);
                return Err(start_err(format!(
                    "cannot spawn {}: {e}",
                    executable.display()
                )));
            }
        };
        let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
            let _ = remove_dir(&dir);
            return Err(start_err(
                "the process exited before its pid was known".to_owned(),
            ));
        };
        let pgid = Pid::from_raw(pid);
        tracing::debug!(chaincode = %chaincode, pid, dir = %dir.display(), "chaincode process spawned");

        let label = chaincode.to_string();
        let stdout = child.stdout.take().map(|out| {
            tokio::spawn(forward_lines(
                out,
                LogStream::Stdout,
                label.clone(),
                sink.clone(),
            ))
        });
        let stderr = child.stderr.take().map(|err| {
            tokio::spawn(forward_lines(
                err,
                LogStream::Stderr,
                label.clone(),
                sink.clone(),
            ))
        });

        let (exit_tx, exit_rx) = watch::channel(None);
        let stop_requested = Arc::new(AtomicBool::new(false));
        let requested = Arc::clone(&stop_requested);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => ExitStatus::Code(i64::from(code)),
                    (None, Some(signal)) => ExitStatus::Signal(signal),
                    (None, None) => ExitStatus::Other(format!("ended: {status}")),
                },
                Err(e) => ExitStatus::Other(format!("could not wait for the process: {e}")),
            };
            let status = peer_stopped(status, requested.load(Ordering::SeqCst));
            tracing::debug!(chaincode = %label, %status, "chaincode process ended");
            let _ = exit_tx.send(Some(status.clone()));
            // Report the last lines before the exit, but do not wait forever
            // for pipes a grandchild may still hold.
            for reader in [stdout, stderr].into_iter().flatten() {
                let _ = tokio::time::timeout(LOG_DRAIN, reader).await;
            }
            sink.exited(status);
        });

        self.running.lock().insert(
            chaincode,
            Running {
                pgid,
                dir,
                exit: exit_rx,
                stop_requested,
            },
        );
        Ok(())
    }

    async fn stop_inner(&self, chaincode: &ChaincodeName) -> Result<(), ExecutorError> {
        let stop_err = |reason: String| ExecutorError::Stop {
            chaincode: chaincode.to_string(),
            reason,
        };
        // The entry stays registered until the process is confirmed gone, so
        // that a failed or abandoned stop still leaves it to `Drop` to kill.
        let taken = self
            .running
            .lock()
            .get(chaincode)
            .map(|r| (r.pgid, r.exit.clone(), Arc::clone(&r.stop_requested)));
        let dir = match taken {
            None => self.runtime_dir(chaincode),
            Some((pgid, mut exit, stop_requested)) => {
                // A runtime that is on its way out (its stream just closed)
                // gets a moment to exit with its own status.
                stop_requested.store(true, Ordering::SeqCst);
                let _ = tokio::time::timeout(EXIT_SETTLE, exit.wait_for(Option::is_some)).await;
                let exited = exit.borrow().is_some();
                if !exited {
                    signal_group(pgid, Signal::SIGTERM)
                        .map_err(|e| stop_err(format!("SIGTERM failed: {e}")))?;
                    let graceful = tokio::time::timeout(
                        self.config.stop_grace,
                        exit.wait_for(Option::is_some),
                    )
                    .await;
                    if graceful.is_err() {
                        tracing::info!(
                            chaincode = %chaincode,
                            grace = ?self.config.stop_grace,
                            "chaincode ignored SIGTERM; sending SIGKILL"
                        );
                    }
                }
                // SIGKILL the group in every case: it also takes down whatever
                // the chaincode started and left behind.
                signal_group(pgid, Signal::SIGKILL)
                    .map_err(|e| stop_err(format!("SIGKILL failed: {e}")))?;
                if tokio::time::timeout(KILL_WAIT, exit.wait_for(Option::is_some))
                    .await
                    .is_err()
                {
                    return Err(stop_err(format!(
                        "process {pgid} still running {KILL_WAIT:?} after SIGKILL"
                    )));
                }
                let mut running = self.running.lock();
                match running.remove(chaincode) {
                    Some(gone) if gone.pgid == pgid => gone.dir,
                    // Not ours to forget: put back what a concurrent start registered.
                    Some(other) => {
                        running.insert(chaincode.clone(), other);
                        self.runtime_dir(chaincode)
                    }
                    None => self.runtime_dir(chaincode),
                }
            }
        };
        let remove = dir.clone();
        tokio::task::spawn_blocking(move || remove_dir(&remove))
            .await
            .map_err(|e| stop_err(format!("cleanup task failed: {e}")))?
            .map_err(|e| stop_err(format!("cannot remove {}: {e}", dir.display())))
    }
}

impl Drop for ProcessExecutor {
    fn drop(&mut self) {
        for (chaincode, running) in self.running.get_mut().drain() {
            running.stop_requested.store(true, Ordering::SeqCst);
            if let Err(e) = signal_group(running.pgid, Signal::SIGKILL) {
                tracing::warn!(chaincode = %chaincode, error = %e, "could not kill chaincode process group");
            }
            let _ = remove_dir(&running.dir);
        }
        // Leave nothing behind: the package cache, and the work directory
        // itself if this executor made it (only if empty: what others put
        // there is theirs).
        let _ = remove_dir(&self.config.work_dir.join(PACKAGE_CACHE));
        if *self.created_work_dir.get_mut() {
            let _ = std::fs::remove_dir(&self.config.work_dir);
        }
    }
}

impl Executor for ProcessExecutor {
    fn kind(&self) -> &'static str {
        "process"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        runtime_name(chaincode)
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(self.start_inner(request, sink))
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(self.stop_inner(chaincode))
    }
}

/// The runtime directory name of `chaincode`: `name-version` with every
/// character outside `[A-Za-z0-9._-]` replaced by `-`, then `-` and the first
/// 8 hex digits of the sha256 of `name:version`, so that names the
/// replacement makes equal (`a-b:1` and `a:b-1`) still get distinct
/// directories.
///
/// ```
/// let cc = "my_cc:1.0+rc1".parse().unwrap();
/// let name = executor::process::runtime_name(&cc);
/// assert!(name.starts_with("my_cc-1.0-rc1-"), "{name}");
/// ```
pub fn runtime_name(chaincode: &ChaincodeName) -> String {
    let readable: String = format!("{}-{}", chaincode.name(), chaincode.version())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let digest = Sha256::digest(chaincode.to_string().as_bytes());
    format!("{readable}-{}", &hex::encode(digest)[..8])
}

/// Spawns, retrying a few times on ETXTBSY: the executable was just written,
/// and a fork elsewhere in this process may briefly hold its write descriptor.
async fn spawn_retrying(command: &mut Command) -> io::Result<tokio::process::Child> {
    let mut delay = Duration::from_millis(10);
    for _ in 0..6 {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(Errno::ETXTBSY as i32) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    command.spawn()
}

/// How a runtime ended, given whether the peer was stopping it: under a
/// stop, success or the peer's own SIGTERM/SIGKILL is
/// [`ExitStatus::Stopped`]; any other code or signal is the chaincode's own
/// failure and stays as it is.
fn peer_stopped(status: ExitStatus, stopping: bool) -> ExitStatus {
    let by_peer = matches!(status, ExitStatus::Code(0))
        || matches!(status, ExitStatus::Signal(s) if s == Signal::SIGTERM as i32 || s == Signal::SIGKILL as i32);
    if stopping && by_peer {
        ExitStatus::Stopped(Box::new(status))
    } else {
        status
    }
}

/// Sends `signal` to the process group; a group that no longer exists is fine.
fn signal_group(pgid: Pid, signal: Signal) -> Result<(), Errno> {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree; one that does not exist is fine.
/// Under the work directory: one unpacked copy per distinct package.
const PACKAGE_CACHE: &str = ".packages";

/// Fills `dir` with the package's files and returns the executable.
///
/// A package is unpacked (and checked, see [`package::unpack`]) once, into
/// `{cache}/{sha256 of the package}`; every start then hard-links that tree
/// into its own runtime directory, so a relaunch costs a few links instead of
/// inflating and writing the whole binary again.
fn prepare_runtime_dir(
    cache: &Path,
    package: &[u8],
    dir: &Path,
    chaincode: &ChaincodeName,
) -> Result<PathBuf, ExecutorError> {
    let start_error = |what: &str, path: &Path, e: io::Error| ExecutorError::Start {
        chaincode: chaincode.to_string(),
        reason: format!("cannot {what} {}: {e}", path.display()),
    };
    let unpacked = cache.join(hex::encode(Sha256::digest(package)));
    if !unpacked.is_dir() {
        // Unpack beside the cache entry, then rename: a concurrent start of
        // the same package never sees a half-written tree.
        let staging = cache.join(format!(
            ".staging-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(cache).map_err(|e| start_error("create", cache, e))?;
        let unpack = package::unpack(package, &staging, chaincode);
        if let Err(error) = unpack {
            let _ = remove_dir(&staging);
            return Err(error);
        }
        if std::fs::rename(&staging, &unpacked).is_err() {
            // Another start won the race; its tree is the same.
            let _ = remove_dir(&staging);
        }
    }
    link_tree(&unpacked, dir).map_err(|e| start_error("prepare", dir, e))?;
    Ok(dir.join(package::EXECUTABLE))
}

/// Subdirectory of a runtime directory holding its TLS files.
pub const TLS_DIR: &str = "tls";

/// Makes `dir` private (`0700`) and, when there are TLS files, writes them
/// into `{dir}/tls/` (`0700`), each `0600`. Files are created, never
/// overwritten: the runtime directory holds hard links into the package
/// cache, and writing through one would change the cache.
fn write_tls_files(dir: &Path, files: &[crate::TlsFile]) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
    if files.is_empty() {
        return Ok(());
    }
    let tls_dir = dir.join(TLS_DIR);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tls_dir)
        .map_err(|e| format!("cannot create {}: {e}", tls_dir.display()))?;
    for file in files {
        let path = tls_dir.join(file.name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut out| out.write_all(&file.contents))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

static STAGING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Recreates the directory tree `from` at `to`, hard-linking files (copying
/// where a link is impossible, e.g. across file systems).
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Passes each line of `output` to tracing and the sink, until end of file.
async fn forward_lines(
    output: impl AsyncRead + Unpin,
    stream: LogStream,
    chaincode: String,
    sink: EventSink,
) {
    let stream_name = match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    };
    let mut reader = BufReader::new(output);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // take() bounds one line's memory; a longer line arrives in pieces.
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) => break,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                let line = String::from_utf8_lossy(&buf);
                tracing::info!(target: "chaincode", chaincode = %chaincode, stream = stream_name, "{line}");
                sink.log(stream, line.into_owned());
            }
            Err(e) => {
                tracing::debug!(chaincode = %chaincode, stream = stream_name, error = %e, "output closed");
                break;
            }
        }
    }
}
