//! The chaincode listener under hostile clients, over real gRPC (and TLS) on
//! 127.0.0.1: silent connections are closed, the connection cap holds and
//! says so, oversized messages end the stream with RESOURCE_EXHAUSTED, and
//! TLS hands the client certificate to the stream.
//!
//! Each test runs on a current-thread runtime so a thread-local tracing
//! subscriber sees every task's logs.

mod common;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::chaincode_support_client::ChaincodeSupportClient;
use chaincode_proto::{ChaincodeMessage, ChaincodeName};
use chaincode_support::{ChaincodeSupport, Mode, SupportConfig, TxKind};
use chaincode_tls::{CertAuthority, IssuedCert};
use common::{TaskExecutor, args, eventually, kv, name, peer_with};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::subscriber::DefaultGuard;

/// Every log line of the current thread, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("chaincode_support=debug")
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
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

/// The file descriptors this process holds (it is the peer).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Raises the soft fd limit towards `want`; returns the limit in force.
fn raise_fd_limit(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

/// Whether the peer has closed `socket` (EOF or reset), without blocking.
fn closed_by_peer(socket: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match socket.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

fn address(support: &ChaincodeSupport) -> SocketAddr {
    support.config().peer_address.parse().unwrap()
}

/// A dev-mode peer (any REGISTER is accepted) with `tweak` applied.
async fn dev_peer(
    tweak: impl FnOnce(&mut SupportConfig),
    tls: Option<Arc<rustls::ServerConfig>>,
) -> ChaincodeSupport {
    peer_with(
        Arc::new(TaskExecutor::default()),
        |config| {
            config.mode = Mode::Dev;
            tweak(config);
        },
        |builder| match tls {
            Some(tls) => builder.tls_server_config(tls),
            None => builder,
        },
    )
    .await
}

/// Opens a `Register` stream on `channel`; returns the sender of the
/// chaincode's side and the peer's replies.
async fn open_stream(
    channel: Channel,
) -> Result<
    (
        mpsc::Sender<ChaincodeMessage>,
        tonic::Streaming<ChaincodeMessage>,
    ),
    tonic::Status,
> {
    let (tx, rx) = mpsc::channel(8);
    let mut client = ChaincodeSupportClient::new(channel);
    let replies = client.register(ReceiverStream::new(rx)).await?.into_inner();
    Ok((tx, replies))
}

async fn plain_channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The peer's replies until the stream ends, and how it ended.
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

#[tokio::test]
async fn silent_connections_are_closed_at_the_first_message_timeout_and_the_peer_recovers() {
    let (logs, _guard) = Logs::capture();
    let executor = TaskExecutor::with("kv", kv());
    let cap = SupportConfig::default().max_connections;
    let support = peer_with(
        executor.clone(),
        |config| config.first_message_timeout = Duration::from_secs(1),
        |b| b,
    )
    .await;
    let address = address(&support);

    // Client sockets + at most `cap` peer sockets, with room to spare.
    let limit = raise_fd_limit(8192);
    let baseline = open_fds();
    let silent = 2000.min(limit.saturating_sub(baseline as u64 + cap as u64 + 256) as usize);
    assert!(
        silent > cap,
        "fd limit {limit} too low to exceed the cap of {cap}"
    );

    let mut clients = Vec::with_capacity(silent);
    for _ in 0..silent {
        clients.push(TcpStream::connect(address).await.unwrap());
        // Let the peer accept as fast as we connect: an overflowing accept
        // queue would delay connections in the kernel, not in the peer.
        tokio::task::yield_now().await;
    }
    let opened = tokio::time::Instant::now();

    // Every silent connection is closed by the peer (the cap closes the
    // excess at once, the watchdog the rest), and the peer holds none.
    let mut closed = vec![false; silent];
    let all_closed = eventually(Duration::from_secs(10), || {
        for (seen, client) in closed.iter_mut().zip(&clients) {
            // Sticky: a reset socket may read as "would block" afterwards.
            *seen = *seen || closed_by_peer(client);
        }
        closed.iter().all(|c| *c) && open_fds() <= baseline + silent
    })
    .await;
    assert!(
        all_closed,
        "{} of {silent} silent connections still open; {} fds above the clients'",
        closed.iter().filter(|c| !**c).count(),
        open_fds().saturating_sub(baseline + silent)
    );
    // The timeout runs from each accept; under this flood the kernel may
    // hold a few connections back a second or two before the peer sees them.
    assert!(
        opened.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        opened.elapsed()
    );
    assert!(logs.contains("chaincode listener full: closing new connections"));
    assert!(logs.contains("no REGISTER accepted in time"));
    drop(clients);

    // The peer still serves a real chaincode, and a registered connection
    // outlives the first-message timeout.
    let kv_name = name("kv:1.0");
    let put = support
        .execute(&kv_name, TxKind::Transaction, &args(&["put", "k", "v"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    let watchdog_closures = logs.text().matches("no REGISTER accepted in time").count();
    // Time itself is the event here: the deadline must pass.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let get = support
        .execute(&kv_name, TxKind::Transaction, &args(&["get", "k"]))
        .await
        .unwrap();
    assert_eq!(get.payload, b"v");
    assert_eq!(executor.starts(), 1, "the chaincode was never restarted");
    assert_eq!(
        logs.text().matches("no REGISTER accepted in time").count(),
        watchdog_closures,
        "the registered connection was closed"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_full_listener_closes_new_connections_at_once_and_recovers_when_they_close() {
    let (logs, _guard) = Logs::capture();
    let support = dev_peer(
        |config| {
            config.max_connections = 8;
            config.first_message_timeout = Duration::from_secs(60);
        },
        None,
    )
    .await;
    let address = address(&support);

    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    let extra = TcpStream::connect(address).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || closed_by_peer(&extra)).await,
        "a connection beyond the cap was held"
    );
    assert!(held.iter().all(|c| !closed_by_peer(c)));
    assert!(logs.contains("chaincode listener full: closing new connections"));
    assert!(logs.contains("limit=8"));

    // The held ones go away: their permits come back and a chaincode registers.
    drop(held);
    let mut answer = None;
    for _ in 0..50 {
        answer = registered_once(address).await;
        if answer.is_some() {
            break;
        }
    }
    assert_eq!(
        answer.map(|m| m.message_type()),
        Some(Type::Registered),
        "the peer did not recover once the connections closed"
    );
    support.shutdown(Duration::from_secs(5)).await;
}

/// One attempt to register `late:1.0`: the first reply, if any.
async fn registered_once(address: SocketAddr) -> Option<ChaincodeMessage> {
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let (tx, mut replies) = open_stream(channel).await.ok()?;
    tx.send(ChaincodeMessage::register(&name("late:1.0")))
        .await
        .ok()?;
    let reply = replies.message().await.ok().flatten();
    if reply.is_none() {
        // The permits were not back yet; let the peer catch up.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reply
}

const SMALL_LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn an_oversized_message_ends_the_stream_with_resource_exhausted() {
    let (logs, _guard) = Logs::capture();
    let support = dev_peer(|config| config.max_message_size = SMALL_LIMIT, None).await;
    let (tx, mut replies) = open_stream(plain_channel(address(&support)).await)
        .await
        .unwrap();
    let big: ChaincodeName = name("big:1.0");
    tx.send(ChaincodeMessage::register(&big)).await.unwrap();
    let first = replies.message().await.unwrap().unwrap();
    assert_eq!(first.message_type(), Type::Registered);

    tx.send(ChaincodeMessage::put_state(
        "tx1",
        "k",
        vec![7; SMALL_LIMIT * 2],
    ))
    .await
    .unwrap();
    let (_, status) = drain(&mut replies).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&SMALL_LIMIT.to_string()),
        "{status:?}"
    );
    assert!(status.message().contains("big:1.0"), "{status:?}");
    assert!(logs.contains("chaincode message too large"));
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_oversized_first_message_is_refused_with_resource_exhausted() {
    let support = dev_peer(|config| config.max_message_size = SMALL_LIMIT, None).await;
    let (tx, mut replies) = open_stream(plain_channel(address(&support)).await)
        .await
        .unwrap();
    tx.send(ChaincodeMessage::put_state(
        "tx1",
        "k",
        vec![7; SMALL_LIMIT * 2],
    ))
    .await
    .unwrap();
    let (seen, status) = drain(&mut replies).await;
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains(&SMALL_LIMIT.to_string()),
        "{status:?}"
    );
    assert_eq!(support.known_chaincodes(), 0);
    support.shutdown(Duration::from_secs(5)).await;
}

/// The peer's CA, its server certificate for 127.0.0.1, and the server config
/// requiring client certificates of the CA.
fn tls_setup() -> (CertAuthority, Arc<rustls::ServerConfig>) {
    let ca = CertAuthority::generate("transport test ca").unwrap();
    let server = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
    let config =
        chaincode_tls::server_config(&server.cert_pem, &server.key_pem, ca.root_pem()).unwrap();
    (ca, config)
}

/// A gRPC channel over TLS to `address`, presenting `client` if given.
async fn tls_channel(
    address: SocketAddr,
    ca: &CertAuthority,
    client: Option<&IssuedCert>,
) -> Result<Channel, tonic::transport::Error> {
    let config = chaincode_tls::client_config(
        ca.root_pem(),
        client.map(|c| (c.cert_pem.as_str(), c.key_pem.as_str())),
    )
    .unwrap();
    let connector = tower::service_fn(move |_: Uri| {
        let config = config.clone();
        async move {
            let tcp = TcpStream::connect(address).await?;
            let server_name = rustls::pki_types::ServerName::try_from("localhost")
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await?;
            Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
}

#[tokio::test]
async fn tls_hands_the_client_certificate_to_the_stream_and_the_registered_connection_stays() {
    let (logs, _guard) = Logs::capture();
    let (ca, tls) = tls_setup();
    let support = dev_peer(
        |config| config.first_message_timeout = Duration::from_secs(1),
        Some(tls),
    )
    .await;
    let client = ca
        .issue_client("tlscc:1.0", Duration::from_secs(3600))
        .unwrap();
    let channel = tls_channel(address(&support), &ca, Some(&client))
        .await
        .unwrap();
    let (tx, mut replies) = open_stream(channel).await.unwrap();
    tx.send(ChaincodeMessage::register(&name("tlscc:1.0")))
        .await
        .unwrap();
    let first = replies.message().await.unwrap().unwrap();
    assert_eq!(first.message_type(), Type::Registered);
    let second = replies.message().await.unwrap().unwrap();
    assert_eq!(second.message_type(), Type::Ready);
    let opened = format!("client_cert={}", client.hash());
    assert!(
        logs.text()
            .lines()
            .any(|line| line.contains("chaincode stream opened") && line.contains(&opened)),
        "the stream's origin did not carry the client certificate:\n{}",
        logs.text()
    );

    // Time itself is the event here: the first-message deadline must pass.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!logs.contains("no REGISTER accepted in time"));
    let now = futures::FutureExt::now_or_never(replies.message());
    assert!(now.is_none(), "the registered stream ended: {now:?}");
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tls_refuses_a_client_without_a_certificate_at_the_handshake() {
    let (logs, _guard) = Logs::capture();
    let (ca, tls) = tls_setup();
    let support = dev_peer(|_| {}, Some(tls)).await;
    let attempt = async {
        let channel = tls_channel(address(&support), &ca, None).await.ok()?;
        let (tx, mut replies) = open_stream(channel).await.ok()?;
        tx.send(ChaincodeMessage::register(&name("nocert:1.0")))
            .await
            .ok()?;
        replies.message().await.ok().flatten()
    };
    assert!(
        attempt.await.is_none(),
        "a client without a certificate got an answer"
    );
    assert!(
        eventually(Duration::from_secs(5), || logs.text().lines().any(|l| l
            .contains("tls handshake failed")
            && l.contains("no certificates")))
        .await,
        "no handshake failure logged:\n{}",
        logs.text()
    );
    assert!(!logs.contains("chaincode stream opened"));
    assert_eq!(support.known_chaincodes(), 0);
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tls_closes_a_silent_client_at_the_handshake_timeout() {
    let (logs, _guard) = Logs::capture();
    let (_ca, tls) = tls_setup();
    let support = dev_peer(
        |config| {
            config.handshake_timeout = Duration::from_millis(500);
            config.max_connections = 2;
        },
        Some(tls),
    )
    .await;
    let silent = TcpStream::connect(address(&support)).await.unwrap();
    // While it is silent it blocks nobody else's accept.
    let other = TcpStream::connect(address(&support)).await.unwrap();
    assert!(!closed_by_peer(&other));
    assert!(
        eventually(Duration::from_secs(5), || closed_by_peer(&silent)).await,
        "a silent TLS client was held past the handshake timeout"
    );
    assert!(
        logs.text()
            .lines()
            .any(|l| l.contains("tls handshake failed") && l.contains("timed out")),
        "{}",
        logs.text()
    );
    support.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_connection_that_sends_a_lot_before_register_is_closed() {
    let (logs, _guard) = Logs::capture();
    // The message limit is the default (100 MiB): only the listener's
    // budget for unregistered connections stops this one.
    let support = dev_peer(|_| {}, None).await;
    let (tx, mut replies) = open_stream(plain_channel(address(&support)).await)
        .await
        .unwrap();
    tx.send(ChaincodeMessage::put_state(
        "tx1",
        "k",
        vec![7; 4 * 1024 * 1024],
    ))
    .await
    .unwrap();
    let (seen, status) = drain(&mut replies).await;
    assert!(
        seen.is_empty(),
        "the peer read the whole message and answered: {seen:?}"
    );
    assert_ne!(status.code(), tonic::Code::Ok, "{status:?}");
    assert!(
        logs.contains("too much data before REGISTER"),
        "{}",
        logs.text()
    );
    support.shutdown(Duration::from_secs(5)).await;
}
