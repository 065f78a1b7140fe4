//! The shim's run loop: handshake, then INIT/TRANSACTION served concurrently.

use std::any::Any;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use chaincode_proto::chaincode_support_client::ChaincodeSupportClient;
use chaincode_proto::{ChaincodeInput, ChaincodeMessage, ChaincodeName, chaincode_message::Type};
use futures::{FutureExt, Stream, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Chaincode;
use crate::config::Config;
use crate::error::ShimError;
use crate::stub::Stub;

/// Bound on waiting for each handshake message (REGISTERED, then READY).
/// Fabric's default startup timeout is 300 s; a peer that has not answered by
/// then has given up on this chaincode.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(300);

/// Bound on flushing the last messages to the peer when serving ends.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages buffered towards the peer before senders wait.
const OUTBOUND_CAPACITY: usize = 64;
/// Answers buffered per transaction; a transaction has one state call in
/// flight, so more than this means the peer is misbehaving.
const ANSWERS_CAPACITY: usize = 4;

/// Transactions in flight: txid → where the peer's RESPONSE/ERROR goes.
type Inflight = Arc<Mutex<HashMap<String, mpsc::Sender<ChaincodeMessage>>>>;

/// Connects to the peer, registers and serves until the peer closes the
/// stream (then `Ok`). Built on [`serve_stream`].
///
/// The connection is plain-text gRPC to `http://HOST:PORT`, or with
/// [`Config::tls`] gRPC over TLS (see [`connect`]), bounded by
/// `config.connect_timeout`. When serving ends with an error, the messages
/// already queued for the peer (e.g. the ERROR that explains a refused
/// handshake) are flushed, and `start` waits for the peer to close its side
/// of the stream, at most [`FLUSH_TIMEOUT`], before it returns.
///
/// A connection refused, or a transport failure before REGISTERED came (a
/// peer just starting, or one whose listen queue overflowed under a burst of
/// chaincodes), is retried [`CONNECT_RETRIES`] times with a doubling pause
/// from [`RETRY_PAUSE`]: nothing was registered yet, so a new attempt is
/// safe. Anything later, or a refusal by the peer, ends the run.
pub async fn start(chaincode: Arc<dyn Chaincode>, config: Config) -> Result<(), ShimError> {
    let mut pause = RETRY_PAUSE;
    for _ in 0..CONNECT_RETRIES {
        match start_once(chaincode.clone(), &config).await {
            Err(error) if error.is_retryable_before_register() => {
                tracing::warn!(chaincode = %config.name, %error, ?pause, "retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            result => return result,
        }
    }
    start_once(chaincode, &config).await
}

/// How many times [`start`] retries a failed connection before REGISTERED.
pub const CONNECT_RETRIES: u32 = 5;

/// The first pause between those retries; it doubles each time.
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);

async fn start_once(chaincode: Arc<dyn Chaincode>, config: &Config) -> Result<(), ShimError> {
    let config = config.clone();
    let mut client = connect(&config).await?;
    let (outbound, requests) = mpsc::channel(OUTBOUND_CAPACITY);
    let (inbound_tx, inbound) = mpsc::channel(OUTBOUND_CAPACITY);
    let (flushed_tx, flushed) = oneshot::channel::<()>();
    let mut flushed_tx = Some(flushed_tx);
    // Signals once every queued request was handed to the transport, which
    // happens after all senders are gone (serve_stream has returned).
    let requests = ReceiverStream::new(requests).chain(futures::stream::poll_fn(move |_| {
        if let Some(done) = flushed_tx.take() {
            let _ = done.send(());
        }
        Poll::Ready(None)
    }));
    // The gRPC call runs in its own task so that the response stream (and
    // with it the HTTP/2 stream) outlives serve_stream until our last
    // messages are out. The call is awaited there, not before REGISTER is
    // queued: a peer may wait for REGISTER before it answers with headers.
    let pump = tokio::spawn(async move {
        let mut answers = match client.register(requests).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let _ = inbound_tx.send(Err(status)).await;
                return;
            }
        };
        // Bounded by the peer's stream and by serve_stream's lifetime.
        loop {
            tokio::select! {
                next = answers.next() => match next {
                    Some(item) => {
                        if inbound_tx.send(item).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                () = inbound_tx.closed() => break,
            }
        }
        drop(inbound_tx);
        // Dropping `answers` while the peer's side is open resets the HTTP/2
        // stream and discards what is still queued (the ERROR explaining why
        // we stop), so wait for our side to be flushed and for the peer to
        // close its side, which is what a peer does after an ERROR; bounded.
        let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
        let _ = tokio::time::timeout_at(deadline, flushed).await;
        let drain = async {
            // Anything the peer still sends is moot now.
            while let Some(Ok(_)) = answers.next().await {}
        };
        let _ = tokio::time::timeout_at(deadline, drain).await;
    });
    let result = serve_stream(
        chaincode,
        config.name,
        outbound,
        ReceiverStream::new(inbound),
    )
    .await;
    // The pump ends by itself within FLUSH_TIMEOUT now that serving is over.
    if tokio::time::timeout(FLUSH_TIMEOUT * 2, pump).await.is_err() {
        tracing::warn!("gave up flushing the last messages to the peer");
    }
    result
}

/// Opens the gRPC channel to the peer (no stream yet), bounded by
/// `config.connect_timeout`.
///
/// With [`Config::tls`], the channel speaks TLS: the peer's certificate must
/// chain to the given root and carry the host of the peer address
/// ([`Config::peer_host`]); the client certificate is presented when the
/// peer asks for it. A peer that refuses the certificate does so after the
/// handshake (TLS 1.3), so that refusal shows on the first call, as a
/// [`ShimError::Stream`] carrying the peer's alert.
pub async fn connect(config: &Config) -> Result<ChaincodeSupportClient<Channel>, ShimError> {
    let address = &config.peer_address;
    let connect_error = |source| ShimError::Connect {
        address: address.clone(),
        source,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(connect_error)?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(tls.root_cert_pem()))
            .identity(Identity::from_pem(tls.cert_pem(), tls.key_pem()))
            .domain_name(config.peer_host());
        endpoint = endpoint.tls_config(tls).map_err(connect_error)?;
    }
    tracing::info!(chaincode = %config.name, peer = %address, tls = config.tls.is_some(), "connecting to peer");
    let channel = tokio::time::timeout(config.connect_timeout, endpoint.connect())
        .await
        .map_err(|_| ShimError::ConnectTimeout {
            address: address.clone(),
            timeout: config.connect_timeout,
        })?
        .map_err(connect_error)?;
    Ok(ChaincodeSupportClient::new(channel))
}

/// Runs the chaincode over any bidirectional message stream: sends REGISTER
/// for `name` on `outbound`, requires REGISTERED then READY on `inbound`,
/// then serves INIT and TRANSACTION concurrently until `inbound` ends.
///
/// # Guarantees
///
/// - Out-of-order handshake messages are answered with ERROR and end the run
///   with [`ShimError::Handshake`] ("handshake: expected READY, got
///   TRANSACTION"). KEEPALIVE is echoed in every phase.
/// - Each INIT/TRANSACTION runs in its own task; RESPONSE/ERROR answers to its
///   state calls are routed by txid. The answer is COMPLETED with the
///   chaincode's `Response`, or ERROR when the input cannot be decoded or the
///   txid is already running.
/// - A panic in the chaincode is caught: its transaction is answered ERROR
///   (`chaincode panicked: <message>`) and the run ends with
///   [`ShimError::ChaincodePanicked`], so whoever hosts the shim (a process
///   or the in-process executor) sees and reports it rather than serving on
///   with a chaincode in an unknown state. Other transactions still in
///   flight are abandoned (their tasks are cancelled).
/// - The end of `inbound` returns `Ok(())`; a gRPC error on it returns
///   [`ShimError::Stream`].
pub async fn serve_stream<S>(
    chaincode: Arc<dyn Chaincode>,
    name: ChaincodeName,
    outbound: mpsc::Sender<ChaincodeMessage>,
    mut inbound: S,
) -> Result<(), ShimError>
where
    S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + Unpin + 'static,
{
    tracing::info!(chaincode = %name, "sending REGISTER");
    send(&outbound, ChaincodeMessage::register(&name), "handshake").await?;
    expect(&outbound, &mut inbound, Type::Registered).await?;
    tracing::info!(chaincode = %name, "REGISTERED by the peer");
    expect(&outbound, &mut inbound, Type::Ready).await?;
    tracing::info!(chaincode = %name, "READY: serving transactions");
    let result = serve(chaincode, &outbound, &mut inbound).await;
    match &result {
        Ok(()) => tracing::info!(chaincode = %name, "peer closed the stream"),
        Err(error) => tracing::error!(chaincode = %name, %error, "shim stopped"),
    }
    result
}

async fn send(
    outbound: &mpsc::Sender<ChaincodeMessage>,
    msg: ChaincodeMessage,
    phase: &'static str,
) -> Result<(), ShimError> {
    outbound
        .send(msg)
        .await
        .map_err(|_| ShimError::OutboundClosed { phase })
}

/// Waits for the handshake message `want`, echoing KEEPALIVEs; anything
/// else is refused with ERROR.
async fn expect<S>(
    outbound: &mpsc::Sender<ChaincodeMessage>,
    inbound: &mut S,
    want: Type,
) -> Result<(), ShimError>
where
    S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Unpin,
{
    let expected = want.as_str_name();
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    // Bounded by the deadline: only KEEPALIVEs loop.
    loop {
        let next = tokio::time::timeout_at(deadline, inbound.next())
            .await
            .map_err(|_| ShimError::HandshakeTimeout {
                expected,
                timeout: HANDSHAKE_TIMEOUT,
            })?;
        let msg = match next {
            None => return Err(ShimError::HandshakeClosed { expected }),
            Some(Err(status)) => {
                // "register" until REGISTERED came: nothing is registered yet.
                let phase = if want == Type::Registered {
                    "register"
                } else {
                    "handshake"
                };
                return Err(ShimError::Stream { phase, status });
            }
            Some(Ok(msg)) => msg,
        };
        match msg.known_type() {
            Some(kind) if kind == want => return Ok(()),
            Some(Type::Keepalive) => {
                send(outbound, ChaincodeMessage::keepalive(), "handshake").await?;
            }
            _ => {
                let error = ShimError::Handshake {
                    expected,
                    got: msg.type_label(),
                };
                // Best effort: the peer may already be gone, and the handshake
                // error is what matters to our caller.
                let _ = outbound
                    .send(ChaincodeMessage::error(&msg.txid, error.to_string()))
                    .await;
                return Err(error);
            }
        }
    }
}

/// A caught panic, reported to the serve loop before the peer hears ERROR,
/// so that a peer closing the stream right after the ERROR cannot hide it.
struct PanicReport {
    kind: &'static str,
    txid: String,
    message: String,
}

impl From<PanicReport> for ShimError {
    fn from(report: PanicReport) -> Self {
        ShimError::ChaincodePanicked {
            kind: report.kind,
            txid: report.txid,
            message: report.message,
        }
    }
}

async fn serve<S>(
    chaincode: Arc<dyn Chaincode>,
    outbound: &mpsc::Sender<ChaincodeMessage>,
    inbound: &mut S,
) -> Result<(), ShimError>
where
    S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Unpin,
{
    let inflight: Inflight = Arc::default();
    // Dropping the set (when this returns) cancels transactions in flight.
    let mut tasks: JoinSet<()> = JoinSet::new();
    let (panics_tx, mut panics) = mpsc::unbounded_channel::<PanicReport>();
    // Runs as long as the peer keeps the stream open; every branch consumes
    // one report, one finished task or one message.
    loop {
        tokio::select! {
            biased;
            Some(report) = panics.recv() => return Err(report.into()),
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                // Panics are caught inside the task; a failed join can only
                // be an unexpected failure of the task itself: report it too.
                if let Err(join_error) = joined {
                    return Err(ShimError::ChaincodePanicked {
                        kind: "task",
                        txid: String::new(),
                        message: join_error.to_string(),
                    });
                }
            }
            next = inbound.next() => {
                let msg = match next {
                    None => {
                        return match panics.try_recv() {
                            Ok(report) => Err(report.into()),
                            Err(_) => Ok(()),
                        };
                    }
                    Some(Err(status)) => return Err(ShimError::Stream { phase: "serve", status }),
                    Some(Ok(msg)) => msg,
                };
                let transaction = Transaction {
                    chaincode: &chaincode,
                    outbound,
                    inflight: &inflight,
                    panics: &panics_tx,
                };
                dispatch(transaction, &mut tasks, msg).await?;
            }
        }
    }
}

/// What dispatch needs to start a transaction task.
struct Transaction<'a> {
    chaincode: &'a Arc<dyn Chaincode>,
    outbound: &'a mpsc::Sender<ChaincodeMessage>,
    inflight: &'a Inflight,
    panics: &'a mpsc::UnboundedSender<PanicReport>,
}

async fn dispatch(
    context: Transaction<'_>,
    tasks: &mut JoinSet<()>,
    msg: ChaincodeMessage,
) -> Result<(), ShimError> {
    let Transaction {
        chaincode,
        outbound,
        inflight,
        panics,
    } = context;
    match msg.known_type() {
        Some(kind @ (Type::Init | Type::Transaction)) => {
            let input = match msg.decode_payload::<ChaincodeInput>() {
                Ok(input) => input,
                Err(error) => {
                    tracing::warn!(txid = %msg.txid, %error, "refusing undecodable input");
                    let reply = ChaincodeMessage::error(&msg.txid, format!("serve: {error}"))
                        .with_channel(msg.channel_id);
                    return send(outbound, reply, "serve").await;
                }
            };
            let (answers_tx, answers_rx) = mpsc::channel(ANSWERS_CAPACITY);
            let duplicate = {
                let mut running = inflight.lock();
                if running.contains_key(&msg.txid) {
                    true
                } else {
                    running.insert(msg.txid.clone(), answers_tx);
                    false
                }
            };
            if duplicate {
                let reply = ChaincodeMessage::error(
                    &msg.txid,
                    format!("serve: transaction {:?} is already running", msg.txid),
                )
                .with_channel(msg.channel_id);
                return send(outbound, reply, "serve").await;
            }
            let stub = Stub::new(
                msg.txid,
                msg.channel_id,
                input,
                outbound.clone(),
                answers_rx,
            );
            tasks.spawn(run_transaction(
                Arc::clone(chaincode),
                kind,
                stub,
                outbound.clone(),
                Arc::clone(inflight),
                panics.clone(),
            ));
            Ok(())
        }
        Some(Type::Response | Type::Error) => {
            let target = inflight.lock().get(&msg.txid).cloned();
            match target {
                Some(answers) => {
                    if answers.try_send(msg).is_err() {
                        tracing::warn!("dropping an answer nobody waits for");
                    }
                }
                None => tracing::warn!(txid = %msg.txid, "answer for no running transaction"),
            }
            Ok(())
        }
        Some(Type::Keepalive) => send(outbound, ChaincodeMessage::keepalive(), "serve").await,
        _ => {
            let error = ShimError::Unexpected {
                got: msg.type_label(),
                txid: msg.txid.clone(),
            };
            let reply = ChaincodeMessage::error(&msg.txid, error.to_string());
            // Best effort: the error we return is what matters.
            let _ = outbound.send(reply).await;
            Err(error)
        }
    }
}

async fn run_transaction(
    chaincode: Arc<dyn Chaincode>,
    kind: Type,
    stub: Stub,
    outbound: mpsc::Sender<ChaincodeMessage>,
    inflight: Inflight,
    panics: mpsc::UnboundedSender<PanicReport>,
) {
    let txid = stub.txid().to_owned();
    let channel_id = stub.channel_id().to_owned();
    let label = if kind == Type::Init {
        "INIT"
    } else {
        "TRANSACTION"
    };
    let call = async move {
        let mut stub = stub;
        if kind == Type::Init {
            chaincode.init(&mut stub).await
        } else {
            chaincode.invoke(&mut stub).await
        }
    };
    let result = AssertUnwindSafe(call).catch_unwind().await;
    // Before answering: the peer may reuse the txid as soon as it sees the answer.
    inflight.lock().remove(&txid);
    match result {
        Ok(response) => {
            tracing::debug!(%txid, status = response.status, "{label} completed");
            let reply = ChaincodeMessage::completed(&txid, &response).with_channel(channel_id);
            // A closed outbound means the peer is gone; the serve loop sees
            // the end of the stream and returns.
            let _ = outbound.send(reply).await;
        }
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(%txid, %message, "chaincode panicked in {label}");
            let reply = ChaincodeMessage::error(&txid, format!("chaincode panicked: {message}"))
                .with_channel(channel_id);
            // The serve loop may already be gone (then nobody needs the report).
            let _ = panics.send(PanicReport {
                kind: label,
                txid,
                message,
            });
            let _ = outbound.send(reply).await;
        }
    }
}

/// The text of a caught panic's payload (`&str` or `String`), for reports.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
