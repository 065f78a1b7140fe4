//! Helpers shared by the executor integration tests: waiting for runtime
//! events with a bound, and a minimal `ChaincodeSupport` peer on 127.0.0.1.
#![allow(dead_code, unreachable_pub)]

use std::pin::Pin;
use std::time::Duration;

use chaincode_proto::ChaincodeMessage;
use chaincode_proto::chaincode_message::Type;
use chaincode_proto::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use executor::{ExitStatus, RuntimeEvent, RuntimeEventKind};
use futures::Stream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// How long any single awaited event may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// The next event matching `pred`, skipping others; panics after `within`.
pub async fn next_matching(
    rx: &mut UnboundedReceiver<RuntimeEvent>,
    what: &str,
    within: Duration,
    mut pred: impl FnMut(&RuntimeEventKind) -> bool,
) -> RuntimeEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) if pred(&event.kind) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("sink closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {within:?}"),
        }
    }
}

/// The next exit on the sink.
pub async fn next_exit(rx: &mut UnboundedReceiver<RuntimeEvent>) -> ExitStatus {
    match next_matching(rx, "an exit", WAIT, |k| {
        matches!(k, RuntimeEventKind::Exited(_))
    })
    .await
    .kind
    {
        RuntimeEventKind::Exited(status) => status,
        _ => unreachable!(),
    }
}

/// A peer that accepts `Register` streams, reports each REGISTER's name, and
/// answers REGISTERED then READY (as Fabric does), keeping the stream open.
#[derive(Debug)]
pub struct TestPeer {
    /// `127.0.0.1:port` to give chaincodes.
    pub address: String,
    registers: mpsc::UnboundedReceiver<(String, Option<Vec<u8>>)>,
    _shutdown: oneshot::Sender<()>,
}

struct Support {
    /// Each REGISTER's name, and the DER of the client certificate of its
    /// connection (TLS only).
    registers: mpsc::UnboundedSender<(String, Option<Vec<u8>>)>,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ChaincodeSupport for Support {
    type RegisterStream = Outbound;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Outbound>, Status> {
        let client_cert = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|cert| cert.as_ref().to_vec()));
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let registers = self.registers.clone();
        tokio::spawn(async move {
            // Bounded by the stream: it ends when the chaincode goes away.
            while let Ok(Some(message)) = inbound.message().await {
                if message.message_type() == Type::Register {
                    let name = message
                        .registered_name()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|e| format!("bad register: {e}"));
                    let _ = registers.send((name, client_cert.clone()));
                    let _ = tx.send(Ok(ChaincodeMessage::registered()));
                    let _ = tx.send(Ok(ChaincodeMessage::ready()));
                }
            }
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }
}

impl TestPeer {
    /// Serves on a fresh port of 127.0.0.1 until dropped.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (registers_tx, registers) = mpsc::unbounded_channel();
        let (shutdown, stop) = oneshot::channel::<()>();
        let service = ChaincodeSupportServer::new(Support {
            registers: registers_tx,
        });
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stop.await;
                })
                .await;
        });
        Self {
            address,
            registers,
            _shutdown: shutdown,
        }
    }

    /// Serves on a fresh port of 127.0.0.1 until dropped, over TLS with a
    /// certificate of `ca` for 127.0.0.1, requiring client certificates of
    /// `ca` (what the peer's chaincode listener does).
    pub async fn start_tls(ca: &chaincode_tls::CertAuthority) -> Self {
        let server = ca.issue_server(&["127.0.0.1"]).unwrap();
        let config =
            chaincode_tls::server_config(&server.cert_pem, &server.key_pem, ca.root_pem()).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (streams_tx, streams) = mpsc::channel(8);
        let (registers_tx, registers) = mpsc::unbounded_channel();
        let (shutdown, stop) = oneshot::channel::<()>();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let streams_tx = streams_tx.clone();
                tokio::spawn(async move {
                    // A refused handshake simply never reaches the server.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = streams_tx.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                });
            }
        });
        let service = ChaincodeSupportServer::new(Support {
            registers: registers_tx,
        });
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::ReceiverStream::new(streams),
                    async {
                        let _ = stop.await;
                    },
                )
                .await;
            accept.abort();
        });
        Self {
            address,
            registers,
            _shutdown: shutdown,
        }
    }

    /// The name of the next REGISTER and the DER of the client certificate
    /// it came with; panics after `within`.
    pub async fn next_register_with_cert(&mut self, within: Duration) -> (String, Option<Vec<u8>>) {
        match tokio::time::timeout(within, self.registers.recv()).await {
            Ok(Some(register)) => register,
            Ok(None) => panic!("test peer stopped"),
            Err(_) => panic!("no REGISTER within {within:?}"),
        }
    }

    /// The name of the next REGISTER; panics after `within`.
    pub async fn next_register(&mut self, within: Duration) -> String {
        match tokio::time::timeout(within, self.registers.recv()).await {
            Ok(Some((name, _))) => name,
            Ok(None) => panic!("test peer stopped"),
            Err(_) => panic!("no REGISTER within {within:?}"),
        }
    }
}
