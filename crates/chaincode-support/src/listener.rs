//! The chaincode listener: what a connection may cost the peer before it has
//! proved to be a chaincode.
//!
//! # Expected flow
//! accept → take a permit (or close at once when all are taken) → TLS
//! handshake in its own task, bounded by the handshake timeout → hand the
//! connection to tonic wrapped in [`ChaincodeConn`], which fails its reads
//! once the first-message deadline passes unless a REGISTER on it was
//! accepted ([`Registration::mark`]).
//!
//! # Guarantees
//! - At most `max_connections` connections are held, handshakes included;
//!   the accept loop itself never waits on a client.
//! - A client that never speaks (TCP or TLS) holds its socket at most the
//!   first-message timeout (the handshake timeout if it is shorter and TLS
//!   is on).
//! - Before its REGISTER is accepted a connection may send at most
//!   [`UNREGISTERED_READ_LIMIT`] bytes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use chaincode_tls::CertHash;
use futures::Stream;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, info, warn};

use crate::config::SupportConfig;

/// How many plaintext bytes a connection may send before a REGISTER on it is
/// accepted: the HTTP/2 preface, settings, headers and a REGISTER fit many
/// times over; a large message from a stranger does not.
pub(crate) const UNREGISTERED_READ_LIMIT: usize = 1024 * 1024;

/// How often at most the listener says it is full.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(1);

/// Pause after a failed accept (out of file descriptors, say), so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a REGISTER was accepted on a connection. Shared by the connection
/// (which stops its watchdog) and the stream that marks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registration(Arc<AtomicBool>);

/// Two handles are equal when they watch the same connection.
impl PartialEq for Registration {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Registration {}

impl Registration {
    /// A REGISTER was accepted on this connection: it may stay.
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`Self::mark`] was called.
    pub(crate) fn is_marked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the transport knows of a connection; tonic puts it in every
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The client's address.
    pub(crate) remote: Option<SocketAddr>,
    /// The leaf client certificate (DER) of the TLS session, if any.
    pub(crate) client_cert: Option<Arc<[u8]>>,
    /// Marked once a REGISTER on this connection is accepted.
    pub(crate) registration: Registration,
}

/// The listener's settings, taken from [`SupportConfig`].
#[derive(Clone)]
pub(crate) struct ListenerSettings {
    pub(crate) max_connections: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) first_message_timeout: Duration,
    pub(crate) tcp_keepalive: Option<Duration>,
    pub(crate) tls: Option<Arc<ServerConfig>>,
}

impl ListenerSettings {
    pub(crate) fn new(config: &SupportConfig, tls: Option<Arc<ServerConfig>>) -> Self {
        Self {
            max_connections: config.max_connections.max(1),
            handshake_timeout: config.handshake_timeout,
            first_message_timeout: config.first_message_timeout,
            tcp_keepalive: config.connection_keepalive_interval(),
            tls,
        }
    }
}

/// The connections `listener` accepts, ready for tonic's
/// `serve_with_incoming_shutdown`. The accept loop runs in its own task and
/// ends when the returned stream is dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    settings: ListenerSettings,
) -> impl Stream<Item = Result<ChaincodeConn, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, settings, tx));
    ReceiverStream::new(rx)
}

type ConnSender = mpsc::Sender<Result<ChaincodeConn, io::Error>>;

async fn accept_loop(listener: TcpListener, settings: ListenerSettings, tx: ConnSender) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let acceptor = settings.tls.clone().map(TlsAcceptor::from);
    let mut full = FullWarning::default();
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "chaincode listener: accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Dropping the socket closes it: a full listener costs nothing.
            drop(tcp);
            full.refused(settings.max_connections);
            continue;
        };
        let deadline = Instant::now() + settings.first_message_timeout;
        tune(&tcp, &settings);
        match &acceptor {
            None => {
                let conn =
                    ChaincodeConn::new(Io::Plain(tcp), remote, None, deadline, &settings, permit);
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                // Off the accept path: a silent client blocks only itself.
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let settings = settings.clone();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(
                        settings
                            .handshake_timeout
                            .min(settings.first_message_timeout),
                        acceptor.accept(tcp),
                    );
                    let tls = match handshake.await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            info!(%remote, reason = %error, "chaincode listener: tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            info!(
                                %remote,
                                reason = "timed out",
                                timeout = ?settings.handshake_timeout,
                                "chaincode listener: tls handshake failed"
                            );
                            return;
                        }
                    };
                    let client_cert = leaf_certificate(&tls);
                    if let Some(der) = &client_cert {
                        debug!(%remote, client_cert = %CertHash::of(der), "chaincode listener: tls client authenticated");
                    }
                    let conn = ChaincodeConn::new(
                        Io::Tls(Box::new(tls)),
                        remote,
                        client_cert,
                        deadline,
                        &settings,
                        permit,
                    );
                    let _ = tx.send(Ok(conn)).await;
                });
            }
        }
    }
}

/// TCP_NODELAY (small replies must not wait on Nagle's algorithm) and TCP
/// keepalive (a vanished host is noticed even when HTTP/2 pings are off).
fn tune(tcp: &TcpStream, settings: &ListenerSettings) {
    if let Err(error) = tcp.set_nodelay(true) {
        debug!(%error, "chaincode listener: cannot set TCP_NODELAY");
    }
    if let Some(idle) = settings.tcp_keepalive {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        if let Err(error) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
            debug!(%error, "chaincode listener: cannot set TCP keepalive");
        }
    }
}

fn leaf_certificate(tls: &TlsStream<TcpStream>) -> Option<Arc<[u8]>> {
    let (_, session) = tls.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| Arc::from(leaf.as_ref()))
}

/// Says "full" at most once per [`FULL_WARNING_EVERY`], with how many
/// connections were closed since it last said so.
#[derive(Debug, Default)]
struct FullWarning {
    last: Option<Instant>,
    refused: u64,
}

impl FullWarning {
    fn refused(&mut self, limit: usize) {
        self.refused += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= FULL_WARNING_EVERY)
        {
            warn!(
                limit,
                refused = self.refused,
                "chaincode listener full: closing new connections"
            );
            self.last = Some(now);
            self.refused = 0;
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection as tonic sees it: it holds a listener permit for
/// its whole life and fails its reads once the first-message deadline passes
/// unless a REGISTER on it was accepted.
pub(crate) struct ChaincodeConn {
    io: Io,
    info: ConnInfo,
    /// `None` once the connection is registered.
    deadline: Option<Pin<Box<Sleep>>>,
    first_message_timeout: Duration,
    unregistered_read: usize,
    /// Set once the deadline fired: the connection stays failed.
    expired: bool,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for ChaincodeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeConn")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ChaincodeConn {
    fn new(
        io: Io,
        remote: SocketAddr,
        client_cert: Option<Arc<[u8]>>,
        deadline: Instant,
        settings: &ListenerSettings,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            io,
            info: ConnInfo {
                remote: Some(remote),
                client_cert,
                registration: Registration::default(),
            },
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            first_message_timeout: settings.first_message_timeout,
            unregistered_read: 0,
            expired: false,
            _permit: permit,
        }
    }

    /// Fails once the deadline has passed on an unregistered connection;
    /// otherwise arms the deadline's wake-up on `cx`.
    fn watchdog(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.expired {
            if self.info.registration.is_marked() {
                self.deadline = None;
                return Ok(());
            }
            let Some(deadline) = self.deadline.as_mut() else {
                return Ok(());
            };
            if deadline.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            info!(
                remote = ?self.info.remote,
                timeout = ?self.first_message_timeout,
                "chaincode connection closed: no REGISTER accepted in time"
            );
            self.expired = true;
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no REGISTER accepted within {:?}",
                self.first_message_timeout
            ),
        ))
    }
}

impl Connected for ChaincodeConn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for ChaincodeConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.watchdog(cx)?;
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        };
        if this.deadline.is_some() && !this.info.registration.is_marked() {
            this.unregistered_read += buf.filled().len() - before;
            if this.unregistered_read > UNREGISTERED_READ_LIMIT {
                info!(
                    remote = ?this.info.remote,
                    limit = UNREGISTERED_READ_LIMIT,
                    "chaincode connection closed: too much data before REGISTER"
                );
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "too much data before REGISTER",
                )));
            }
        }
        polled
    }
}

impl AsyncWrite for ChaincodeConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
