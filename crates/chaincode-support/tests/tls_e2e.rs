//! Mutual TLS end to end, with real parts only: the peer's TLS listener on
//! 127.0.0.1, the static `kv` sample as a real child process (and in a real
//! Docker container), the real shim reading Fabric's TLS variables, and
//! impostors dialling over real TLS.
//!
//! A slow launch is a package whose `chaincode` is a shell script that waits
//! for a gate file, then execs the kv binary shipped beside it: the test, not
//! a timer, decides when the real chaincode dials.
//!
//! Over real TLS an impostor without a client certificate, or with one from
//! a CA the peer does not know, is refused by the handshake (logged as "tls
//! handshake failed"), so its REGISTER is never read; the REGISTER check's
//! own reasons ("issued for chaincode X, not Y", "not issued for any
//! launch", "expired") are what certificates from the peer's CA meet.
//!
//! The tests share one process-wide log capture and the peer's file
//! descriptor count, so they run one at a time ([`serial`]).

mod common;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::chaincode_support_client::ChaincodeSupportClient;
use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeMessage, ChaincodeName};
use chaincode_shim::BoxFuture;
use chaincode_support::{
    ChaincodeSupport, MemorySpecStore, PeerTls, ReadyHandle, SupportConfig, SupportError, TxKind,
};
use chaincode_tls::{CertAuthority, CertHash};
use common::*;
use executor::process::{ProcessConfig, ProcessExecutor, TLS_DIR};
use executor::{EventSink, Executor, ExecutorError, StartRequest};
use futures::StreamExt;
use launch_fsm::{LaunchError, Phase};
use parking_lot::Mutex;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

const LIMIT: Duration = Duration::from_secs(30);

/// Impostor REGISTER attempts during one slow launch, and how many at once.
const IMPOSTORS: usize = 1_200;
const IMPOSTORS_AT_ONCE: usize = 16;
/// Bound on one impostor's attempt, and on all of them.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
const STORM_LIMIT: Duration = Duration::from_secs(180);
/// Refused impostors that keep their connection open, and how long the
/// peer lets a connection without an accepted REGISTER live.
const HELD_IMPOSTORS: usize = 64;
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The tests share the log capture and the fd count: one at a time.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

// ---------------------------------------------------------------- logs

/// Every log line of this process, as text (a global subscriber: the peer's
/// tasks run on every worker thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn get() -> &'static Logs {
        static LOGS: OnceLock<Logs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter("chaincode_support=debug,executor=info")
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            logs
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    /// The lines holding every one of `needles`.
    fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const REFUSED: &str = "register refused: the client certificate does not vouch for this chaincode";

// ---------------------------------------------------------------- the peer

fn peer_tls() -> PeerTls {
    let ca = CertAuthority::generate("tls e2e peer CA").expect("a CA");
    PeerTls::new(Arc::new(ca), &["127.0.0.1", "localhost"]).expect("the listener's TLS")
}

/// A TLS peer on 127.0.0.1 running chaincodes as child processes.
struct Rig {
    support: ChaincodeSupport,
    processes: Arc<ProcessExecutor>,
    specs: Arc<MemorySpecStore>,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn new(tls: PeerTls, tweak: impl FnOnce(&mut SupportConfig)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let processes = Arc::new(ProcessExecutor::new(ProcessConfig {
            work_dir: dir.path().join("runtimes"),
            stop_grace: Duration::from_secs(2),
        }));
        let specs = Arc::new(MemorySpecStore::new());
        let support = peer_with(processes.clone(), tweak, |b| {
            b.spec_store(specs.clone()).tls(tls)
        })
        .await;
        Self {
            support,
            processes,
            specs,
            dir,
        }
    }

    fn tls(&self) -> &PeerTls {
        self.support.tls().expect("tls on")
    }

    fn address(&self) -> SocketAddr {
        self.support
            .config()
            .peer_address
            .parse()
            .expect("host:port")
    }

    /// `chaincode` is the kv sample as it is.
    fn deploy_kv(&self, chaincode: &ChaincodeName) {
        let kv = chaincode_samples::static_sample("kv").expect("the static kv sample");
        let package = executor::package::package_binary(&kv).expect("a package");
        self.deploy(chaincode, package);
    }

    /// `chaincode` is the kv sample behind a gate: it dials only once
    /// [`Gate::open`] is called.
    fn deploy_gated_kv(&self, chaincode: &ChaincodeName) -> Gate {
        let gate = Gate(self.dir.path().join(format!("gate-{}", chaincode.name())));
        let kv = chaincode_samples::static_sample("kv").expect("the static kv sample");
        self.deploy(chaincode, gated_package(&kv, &gate.0));
        gate
    }

    fn deploy(&self, chaincode: &ChaincodeName, code_package: Vec<u8>) {
        self.specs.insert(
            chaincode.clone(),
            ChaincodeDeploymentSpec {
                code_package,
                ..Default::default()
            },
        );
    }

    /// Launches `chaincode` in the background; returns once it awaits its
    /// REGISTER (its runtime started, its certificate bound).
    async fn launch_pending(
        &self,
        chaincode: &ChaincodeName,
    ) -> JoinHandle<Result<ReadyHandle, SupportError>> {
        let launch = {
            let support = self.support.clone();
            let chaincode = chaincode.clone();
            tokio::spawn(async move { support.launch(&chaincode).await })
        };
        assert!(
            wait_for_phase(&self.support, chaincode, Phase::AwaitingRegister, LIMIT).await,
            "{chaincode} never awaited its REGISTER"
        );
        launch
    }

    /// The client identity the process executor handed to `chaincode`'s
    /// running launch, copied out (the runtime dir goes with the launch).
    fn identity_of(&self, chaincode: &ChaincodeName) -> Identity {
        let tls = self.processes.runtime_dir(chaincode).join(TLS_DIR);
        let read = |name: &str| {
            std::fs::read_to_string(tls.join(name))
                .unwrap_or_else(|e| panic!("{chaincode}'s {name}: {e}"))
        };
        Identity {
            cert_pem: read("client_pem.crt"),
            key_pem: read("client_pem.key"),
            root_pem: read("peer.crt"),
        }
    }

    fn phase(&self, chaincode: &ChaincodeName) -> Option<Phase> {
        self.support
            .status()
            .into_iter()
            .find(|s| &s.chaincode == chaincode)
            .map(|s| s.phase)
    }
}

/// A file whose existence lets a gated chaincode dial the peer.
struct Gate(PathBuf);

impl Gate {
    fn open(&self) {
        std::fs::write(&self.0, b"go").expect("the gate file");
    }
}

/// A code package whose `chaincode` is a shell script that waits (at most
/// 60 s) for `gate` to exist, then becomes the kv binary shipped beside it.
fn gated_package(kv: &Path, gate: &Path) -> Vec<u8> {
    let script = format!(
        "#!/bin/sh\n\
         i=0\n\
         while [ ! -e '{gate}' ]; do\n\
         \x20 i=$((i+1)); [ \"$i\" -gt 1200 ] && exit 9\n\
         \x20 sleep 0.05\n\
         done\n\
         exec ./kv \"$@\"\n",
        gate = gate.display()
    );
    let kv = std::fs::read(kv).expect("the kv binary");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data) in [
        (executor::package::EXECUTABLE, script.as_bytes()),
        ("kv", kv.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        builder
            .append_data(&mut header, path, data)
            .expect("an entry");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("a package")
}

/// A client identity in PEM.
#[derive(Clone)]
struct Identity {
    cert_pem: String,
    key_pem: String,
    root_pem: String,
}

impl Identity {
    fn hash(&self) -> CertHash {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("a PEM cert");
        CertHash::of(der.as_ref())
    }
}

/// Hands every start to `inner`, keeping the client identity each launch
/// was given (the Docker backend writes it into the container only).
struct Recording<E> {
    inner: Arc<E>,
    identities: Mutex<Vec<(ChaincodeName, Option<executor::ClientTls>)>>,
}

impl<E: Executor> Recording<E> {
    fn new(inner: Arc<E>) -> Self {
        Self {
            inner,
            identities: Mutex::new(Vec::new()),
        }
    }

    /// The identity of `chaincode`'s latest launch.
    fn identity_of(&self, chaincode: &ChaincodeName) -> Option<Identity> {
        self.identities
            .lock()
            .iter()
            .rev()
            .find(|(cc, _)| cc == chaincode)
            .and_then(|(_, tls)| tls.clone())
            .map(|tls| Identity {
                cert_pem: tls.cert_pem,
                key_pem: tls.key_pem,
                root_pem: tls.root_cert_pem,
            })
    }
}

impl<E: Executor> Executor for Recording<E> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        self.inner.runtime_name(chaincode)
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        self.identities
            .lock()
            .push((request.chaincode.clone(), request.tls.clone()));
        self.inner.start(request, sink)
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        self.inner.stop(chaincode)
    }
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The file descriptors this process holds (it is the peer, and the
/// impostors).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

async fn put_get(ready: &ReadyHandle, key: &str, value: &str) {
    let put = ready
        .execute(TxKind::Transaction, &args(&["put", key, value]))
        .await
        .expect("put");
    assert_eq!(put.status, 200, "{put:?}");
    let get = ready
        .execute(TxKind::Transaction, &args(&["get", key]))
        .await
        .expect("get");
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.payload, value.as_bytes());
}

// ---------------------------------------------------------------- impostors

/// What an impostor dials with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impostor {
    /// No client certificate at all.
    NoCert,
    /// The certificate of another chaincode's running launch.
    OtherLaunch,
    /// A certificate from a CA the peer does not know, with the right name.
    Stranger,
    /// A certificate from the peer's own CA that no launch holds.
    DevCert,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The connection or stream failed before any message: refused at the
    /// TLS handshake.
    NoAnswer,
    /// The peer's first message.
    Answered(Type, String),
    /// Neither within [`ATTEMPT_LIMIT`].
    Hung,
}

/// An impostor's connection, kept open by its client.
struct Held {
    _channel: Channel,
    _tx: mpsc::Sender<ChaincodeMessage>,
    _replies: tonic::Streaming<ChaincodeMessage>,
}

/// One REGISTER as `claimed` over a fresh TLS connection that trusts the
/// peer's root and presents `client` (cert, key) if given; the connection,
/// if it got that far, is handed back open.
async fn register_over_tls(
    address: SocketAddr,
    root_pem: &str,
    client: Option<(&str, &str)>,
    claimed: &ChaincodeName,
) -> (Outcome, Option<Held>) {
    let config = chaincode_tls::client_config(root_pem, client).expect("a client config");
    let connector = tower::service_fn(move |_: Uri| {
        let config = config.clone();
        async move {
            let tcp = TcpStream::connect(address).await?;
            let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let attempt = async {
        let channel = Endpoint::from_static("http://127.0.0.1")
            .connect_with_connector(connector)
            .await
            .ok()?;
        let (tx, rx) = mpsc::channel(2);
        tx.send(ChaincodeMessage::register(claimed)).await.ok()?;
        let mut replies = ChaincodeSupportClient::new(channel.clone())
            .register(ReceiverStream::new(rx))
            .await
            .ok()?
            .into_inner();
        let first = replies.message().await.ok()??;
        let held = Held {
            _channel: channel,
            _tx: tx,
            _replies: replies,
        };
        Some((first.message_type(), first.payload_text(), held))
    };
    match tokio::time::timeout(ATTEMPT_LIMIT, attempt).await {
        Ok(Some((kind, text, held))) => (Outcome::Answered(kind, text), Some(held)),
        Ok(None) => (Outcome::NoAnswer, None),
        Err(_) => (Outcome::Hung, None),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_as_a_process_registers_over_mutual_tls_serves_and_leaves_no_process() {
    let _serial = serial().await;
    let logs = Logs::get();
    let rig = Rig::new(peer_tls(), |_| {}).await;
    let cc = name("tlskv:1.0");
    rig.deploy_kv(&cc);

    let ready = rig.support.launch(&cc).await.expect("kv launches over TLS");
    let pid = rig.processes.pid(&cc).expect("a child process");
    assert!(pid_alive(pid));
    // Fabric's hand-over: TLS on, the files in the runtime dir.
    let env = environ(pid);
    assert!(
        env.iter().any(|v| v == "CORE_PEER_TLS_ENABLED=true"),
        "{env:?}"
    );
    assert!(
        env.iter()
            .any(|v| v.starts_with("CORE_TLS_CLIENT_CERT_FILE=")),
        "{env:?}"
    );
    // The stream it registered on presented this launch's certificate.
    let identity = rig.identity_of(&cc);
    let opened = format!("client_cert={}", identity.hash());
    assert!(
        !logs
            .lines_with(&["chaincode stream opened", &opened])
            .is_empty(),
        "no stream with the launch's certificate:\n{}",
        logs.text()
    );
    assert_eq!(rig.tls().bound_certificates(), 1);

    put_get(&ready, "a", "1").await;
    let del = ready
        .execute(TxKind::Transaction, &args(&["del", "a"]))
        .await
        .expect("del");
    assert_eq!(del.status, 200);
    let gone = ready
        .execute(TxKind::Transaction, &args(&["get", "a"]))
        .await
        .expect("get");
    assert_eq!(gone.status, 404);

    rig.support.stop(&cc).await.expect("stopped");
    assert!(!pid_alive(pid), "the chaincode process {pid} outlived stop");
    assert_eq!(rig.phase(&cc), Some(Phase::Idle));
    assert_eq!(rig.tls().bound_certificates(), 0, "stop unbinds the launch");
    rig.support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_in_docker_registers_over_mutual_tls_and_serves() {
    use executor::docker::{DockerConfig, DockerExecutor};

    let _serial = serial().await;
    let peer_id = format!("tlse2e{}", std::process::id());
    let config = DockerConfig {
        peer_id: peer_id.clone(),
        network_id: "ccsupport".to_owned(),
        network_mode: "host".to_owned(),
        stop_timeout: Duration::from_secs(1),
        ..DockerConfig::default()
    };
    let Some(docker) = DockerExecutor::connect_or_skip(config)
        .await
        .expect("a Docker engine (CCLAUNCH_REQUIRE_DOCKER=1)")
    else {
        return;
    };
    let docker = Arc::new(docker);
    let logs = Logs::get();
    let cc = name("tlskv:1.0");
    let container = docker.container_name(&cc).expect("a container name");
    let kv = chaincode_samples::static_sample("kv").expect("the static kv sample");
    let specs = Arc::new(MemorySpecStore::new());
    specs.insert(
        cc.clone(),
        ChaincodeDeploymentSpec {
            code_package: executor::package::package_binary(&kv).expect("a package"),
            ..Default::default()
        },
    );
    let recording = Arc::new(Recording::new(docker.clone()));
    let support = peer_with(
        recording.clone(),
        |c| c.startup_timeout = Duration::from_secs(120),
        |b| b.spec_store(specs.clone()).tls(peer_tls()),
    )
    .await;
    let tls = support.tls().expect("tls on");

    let ready = support.launch(&cc).await.expect("kv launches in docker");
    assert_eq!(tls.bound_certificates(), 1);
    // The container got Fabric's TLS hand-over ...
    let env = docker
        .client()
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .expect("the container runs")
        .config
        .and_then(|c| c.env)
        .unwrap_or_default();
    assert!(
        env.iter().any(|v| v == "CORE_PEER_TLS_ENABLED=true"),
        "{env:?}"
    );
    // ... and the stream that registered presented this launch's certificate.
    let identity = recording.identity_of(&cc).expect("the launch's identity");
    let opened = format!("client_cert={}", identity.hash());
    assert!(
        !logs
            .lines_with(&["chaincode stream opened", &opened])
            .is_empty(),
        "no stream with the launch's certificate:\n{}",
        logs.text()
    );
    put_get(&ready, "k", "v").await;

    support.stop(&cc).await.expect("stopped");
    let inspect = docker
        .client()
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await;
    assert!(inspect.is_err(), "the container is gone after stop");
    assert_eq!(tls.bound_certificates(), 0);
    support.shutdown(Duration::from_secs(10)).await;
    docker.remove_image(&cc).await.expect("image removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_racing_a_slow_launch_never_register_and_the_real_chaincode_does() {
    let _serial = serial().await;
    let logs = Logs::get();
    let rig = Rig::new(peer_tls(), |c| {
        c.first_message_timeout = FIRST_MESSAGE_TIMEOUT;
    })
    .await;
    let race = name("race:1.0");
    let other = name("other:1.0");

    // Another chaincode's launch runs: its certificate is real and bound.
    rig.deploy_kv(&other);
    let other_ready = rig.support.launch(&other).await.expect("other launches");
    let other_identity = rig.identity_of(&other);

    // The slow launch: its runtime is up, its certificate bound, and it
    // will not dial until the storm is over.
    let gate = rig.deploy_gated_kv(&race);
    let launch = rig.launch_pending(&race).await;
    let pid = rig.processes.pid(&race).expect("a child process");

    let stranger = CertAuthority::generate("stranger CA").expect("a CA");
    let forged = stranger
        .issue_client(&race.to_string(), Duration::from_secs(3600))
        .expect("issued");
    let dev = rig.tls().issue_dev_client(&race).expect("issued");
    let root = rig.tls().root_pem().to_owned();
    let address = rig.address();

    let baseline = open_fds();
    let kinds = [
        Impostor::NoCert,
        Impostor::OtherLaunch,
        Impostor::Stranger,
        Impostor::DevCert,
    ];
    let storm = futures::stream::iter(0..IMPOSTORS)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            let client = match kind {
                Impostor::NoCert => None,
                Impostor::OtherLaunch => Some((
                    other_identity.cert_pem.as_str(),
                    other_identity.key_pem.as_str(),
                )),
                Impostor::Stranger => Some((forged.cert_pem.as_str(), forged.key_pem.as_str())),
                Impostor::DevCert => Some((dev.cert_pem.as_str(), dev.key_pem.as_str())),
            };
            let (root, race) = (&root, &race);
            async move { (kind, register_over_tls(address, root, client, race).await.0) }
        })
        .buffer_unordered(IMPOSTORS_AT_ONCE)
        .collect::<Vec<_>>();
    let started = tokio::time::Instant::now();
    let outcomes = tokio::time::timeout(STORM_LIMIT, storm)
        .await
        .expect("the impostors finished in time");
    eprintln!("{IMPOSTORS} impostor attempts took {:?}", started.elapsed());

    // Nobody but the real chaincode may register.
    let registered: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Answered(Type::Registered, _)))
        .collect();
    assert!(
        registered.is_empty(),
        "impostors registered: {registered:?}"
    );
    for (kind, outcome) in &outcomes {
        let expected = match kind {
            // Refused by the handshake: the peer never reads their REGISTER.
            Impostor::NoCert | Impostor::Stranger => None,
            Impostor::OtherLaunch => Some("issued for chaincode other:1.0, not race:1.0"),
            Impostor::DevCert => Some("was not issued for any launch"),
        };
        match (expected, outcome) {
            (None, Outcome::NoAnswer) => {}
            (Some(why), Outcome::Answered(Type::Error, text)) if text.contains(why) => {}
            _ => panic!("{kind:?}: expected {expected:?}, got {outcome:?}"),
        }
    }
    // The launch never heard of them.
    assert_eq!(rig.phase(&race), Some(Phase::AwaitingRegister));
    assert_eq!(rig.processes.pid(&race), Some(pid), "the runtime was kept");

    // The peer said why, for each.
    let per_kind = IMPOSTORS / kinds.len();
    let refused_other = logs.lines_with(&[
        REFUSED,
        "chaincode=race:1.0",
        "issued for chaincode other:1.0, not race:1.0",
    ]);
    assert!(refused_other.len() >= per_kind, "{}", refused_other.len());
    let refused_dev = logs.lines_with(&[REFUSED, "race:1.0", "not issued for any launch"]);
    assert!(refused_dev.len() >= per_kind, "{}", refused_dev.len());
    let handshakes = logs.lines_with(&["tls handshake failed"]);
    assert!(
        handshakes.len() >= 2 * per_kind,
        "{} handshake failures logged",
        handshakes.len()
    );
    assert!(
        handshakes.iter().any(|l| l.contains("no certificates")),
        "the missing certificate is named"
    );
    assert!(
        handshakes
            .iter()
            .any(|l| l.contains("UnknownIssuer") || l.contains("unknown issuer")),
        "the stranger's CA is named: {:?}",
        handshakes.first()
    );

    // Every impostor connection is closed: the peer is back near its
    // baseline (a few fds of slack for the runtime's own).
    let mut now = open_fds();
    let settled = eventually(LIMIT, || {
        now = open_fds();
        now <= baseline + 8
    })
    .await;
    assert!(settled, "{now} fds open, {baseline} before the impostors");

    // Refused impostors that keep their connections open are closed by the
    // peer all the same, at the first-message timeout.
    let mut held = Vec::with_capacity(HELD_IMPOSTORS);
    for _ in 0..HELD_IMPOSTORS {
        let client = (
            other_identity.cert_pem.as_str(),
            other_identity.key_pem.as_str(),
        );
        let (outcome, connection) = register_over_tls(address, &root, Some(client), &race).await;
        assert!(
            matches!(&outcome, Outcome::Answered(Type::Error, _)),
            "{outcome:?}"
        );
        held.push(connection.expect("an open connection"));
    }
    let holding = open_fds();
    assert!(
        holding >= baseline + HELD_IMPOSTORS,
        "{holding} fds with {HELD_IMPOSTORS} connections held, {baseline} before"
    );
    let settled = eventually(LIMIT, || {
        now = open_fds();
        now <= baseline + 8
    })
    .await;
    assert!(
        settled,
        "{now} fds open while impostors hold their refused connections, {baseline} before"
    );
    assert!(
        !logs
            .lines_with(&["no REGISTER accepted in time"])
            .is_empty()
    );
    drop(held);

    // The real chaincode dials now: it registers and serves.
    gate.open();
    let ready = tokio::time::timeout(LIMIT, launch)
        .await
        .expect("the launch ended in time")
        .expect("the launch task")
        .expect("the real chaincode registered");
    put_get(&ready, "who", "the real one").await;
    put_get(&other_ready, "other", "undisturbed").await;

    rig.support.shutdown(Duration::from_secs(5)).await;
    assert!(!pid_alive(pid), "the runtime outlived shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_dialling_after_its_binding_expired_is_refused_and_the_launch_fails() {
    let _serial = serial().await;
    let logs = Logs::get();
    let ttl = Duration::from_millis(300);
    let rig = Rig::new(peer_tls().with_binding_ttl(ttl), |c| {
        c.startup_timeout = SupportConfig::MIN_STARTUP_TIMEOUT;
    })
    .await;
    let late = name("late:1.0");
    let gate = rig.deploy_gated_kv(&late);
    let launch = rig.launch_pending(&late).await;
    let pid = rig.processes.pid(&late).expect("a child process");
    // Time itself is the event: the binding must outlive its TTL.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    gate.open();

    let error = tokio::time::timeout(LIMIT, launch)
        .await
        .expect("the launch ended in time")
        .expect("the launch task")
        .expect_err("an expired binding registers nobody");
    assert!(
        matches!(
            &error,
            SupportError::Launch {
                source: LaunchError::Exited { .. }
                    | LaunchError::StreamClosed { .. }
                    | LaunchError::Timeout { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("late:1.0"), "{error}");
    let refused = logs.lines_with(&[REFUSED, "chaincode=late:1.0", "expired"]);
    assert!(!refused.is_empty(), "{}", logs.text());
    assert!(wait_for_phase(&rig.support, &late, Phase::Idle, LIMIT).await);
    assert!(
        eventually(LIMIT, || !pid_alive(pid)).await,
        "the refused runtime is gone"
    );
    assert_eq!(rig.tls().bound_certificates(), 0);
    rig.support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_shim_with_another_launchs_certificate_is_refused() {
    let _serial = serial().await;
    let logs = Logs::get();
    let rig = Rig::new(peer_tls(), |_| {}).await;
    let kv = name("kv:1.0");
    let bystander = name("bystander:1.0");
    rig.deploy_kv(&bystander);
    let _bystander = rig
        .support
        .launch(&bystander)
        .await
        .expect("bystander launches");
    let stolen = rig.identity_of(&bystander);
    // kv's launch is pending: an impostor that got in would take its place.
    let gate = rig.deploy_gated_kv(&kv);
    let launch = rig.launch_pending(&kv).await;

    // The kv binary, by hand, as kv:1.0 with the bystander's files.
    let files = tempfile::tempdir().expect("a temp dir");
    let write = |name: &str, pem: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, pem).expect("written");
        path
    };
    let cert = write("client.crt", &stolen.cert_pem);
    let key = write("client.key", &stolen.key_pem);
    let root = write("root.crt", &stolen.root_pem);
    let binary = chaincode_samples::static_sample("kv").expect("the static kv sample");
    let mut shim = tokio::process::Command::new(binary)
        .arg(format!("-peer.address={}", rig.address()))
        .env_clear()
        .env("CORE_CHAINCODE_ID_NAME", "kv:1.0")
        .env("CORE_PEER_TLS_ENABLED", "true")
        .env("CORE_TLS_CLIENT_CERT_FILE", &cert)
        .env("CORE_TLS_CLIENT_KEY_FILE", &key)
        .env("CORE_PEER_TLS_ROOTCERT_FILE", &root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the kv binary runs");
    let stderr = shim.stderr.take().expect("piped");
    let output = tokio::time::timeout(LIMIT, async {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::BufReader::new(stderr), &mut text)
            .await
            .map(|_| text)
    })
    .await
    .expect("the shim gave up in time")
    .unwrap_or_default();
    let status = tokio::time::timeout(LIMIT, shim.wait())
        .await
        .expect("the shim exited in time")
        .expect("its status");
    assert_eq!(
        status.code(),
        Some(i32::from(chaincode_samples::exit_code::SHIM_ERROR)),
        "{output}"
    );
    let refused = logs.lines_with(&[
        REFUSED,
        "chaincode=kv:1.0",
        "issued for chaincode bystander:1.0, not kv:1.0",
    ]);
    assert!(!refused.is_empty(), "{}", logs.text());
    assert_eq!(rig.phase(&kv), Some(Phase::AwaitingRegister));

    // The real kv registers once it dials.
    gate.open();
    let ready = tokio::time::timeout(LIMIT, launch)
        .await
        .expect("the launch ended in time")
        .expect("the launch task")
        .expect("the real kv registered");
    put_get(&ready, "k", "v").await;
    rig.support.shutdown(Duration::from_secs(5)).await;
}
