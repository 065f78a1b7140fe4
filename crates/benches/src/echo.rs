//! The gRPC baseline: a trivial echo implementation of the same
//! `protos.ChaincodeSupport` service, served the same way as the runtime
//! serves it, and the client side of one round trip or of a pipelined run.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chaincode_proto::ChaincodeMessage;
use chaincode_proto::chaincode_support_client::ChaincodeSupportClient;
use chaincode_proto::chaincode_support_server::{self, ChaincodeSupportServer};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use crate::BenchError;

/// Answers every message of a `Register` stream with the same message.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoService;

type EchoStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl chaincode_support_server::ChaincodeSupport for EchoService {
    type RegisterStream = EchoStream;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::RegisterStream>, Status> {
        // The inbound stream is the outbound stream: nothing could do less.
        Ok(Response::new(Box::pin(request.into_inner())))
    }
}

/// [`EchoService`] on a free port of 127.0.0.1, served by tonic's default
/// server with `TCP_NODELAY` on every accepted connection (without it the
/// first answer on a fresh connection can wait 40 ms for a delayed ACK).
#[derive(Debug)]
pub struct EchoServer {
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl EchoServer {
    /// Binds and serves. Call within a tokio runtime.
    pub async fn start() -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::Bind)?;
        let address = listener.local_addr().map_err(BenchError::Bind)?;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ChaincodeSupportServer::new(EchoService))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        Ok(Self {
            address,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving, waiting at most `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(grace, &mut self.server).await.is_err() {
            self.server.abort();
        }
    }
}

/// Opens a gRPC channel to `address` the way the shim does (plain text,
/// `TCP_NODELAY`).
pub async fn dial(address: SocketAddr) -> Result<ChaincodeSupportClient<Channel>, BenchError> {
    let connect_error = |source| BenchError::Connect {
        address: address.to_string(),
        source,
    };
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .map_err(connect_error)?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(connect_error)?;
    Ok(ChaincodeSupportClient::new(channel))
}

/// Bound on closing a finished stream cleanly.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// One round trip: opens a `Register` stream, sends `message`, waits for
/// the echo, and returns it with the time that took. Then, untimed, closes
/// the stream cleanly: our side ends and the server's end is awaited, since
/// dropping an open stream resets it, and HTTP/2 servers close connections
/// that reset streams by the thousand.
pub async fn round_trip(
    client: &mut ChaincodeSupportClient<Channel>,
    message: ChaincodeMessage,
) -> Result<(ChaincodeMessage, Duration), BenchError> {
    let rpc = |status| BenchError::Rpc {
        call: "register",
        status,
    };
    let started = Instant::now();
    // Our side stays open until the answer is in, as a chaincode's does.
    let (outbound, requests) = mpsc::channel(1);
    outbound
        .send(message)
        .await
        .map_err(|_| BenchError::StreamEnded {
            call: "register",
            received: 0,
            expected: 1,
        })?;
    let mut inbound = client
        .register(ReceiverStream::new(requests))
        .await
        .map_err(rpc)?
        .into_inner();
    let answer = match inbound.next().await {
        Some(Ok(answer)) => answer,
        Some(Err(status)) => return Err(rpc(status)),
        None => {
            return Err(BenchError::StreamEnded {
                call: "register",
                received: 0,
                expected: 1,
            });
        }
    };
    let elapsed = started.elapsed();
    drop(outbound);
    let drain = async {
        while let Some(next) = inbound.next().await {
            next.map_err(rpc)?;
        }
        Ok::<_, BenchError>(())
    };
    tokio::time::timeout(CLOSE_LIMIT, drain)
        .await
        .map_err(|_| BenchError::TimedOut {
            what: "the end of an echo stream".to_owned(),
            limit: CLOSE_LIMIT,
        })??;
    Ok((answer, elapsed))
}

/// One open `Register` stream to an echo server, for pipelined runs.
#[derive(Debug)]
pub struct EchoPipe {
    outbound: mpsc::Sender<ChaincodeMessage>,
    inbound: Streaming<ChaincodeMessage>,
}

impl EchoPipe {
    /// Most messages a pipelined run may keep in flight.
    pub const MAX_WINDOW: usize = 1024;

    /// Opens the stream.
    pub async fn open(client: &mut ChaincodeSupportClient<Channel>) -> Result<Self, BenchError> {
        let (outbound, requests) = mpsc::channel(Self::MAX_WINDOW);
        let inbound = client
            .register(ReceiverStream::new(requests))
            .await
            .map_err(|status| BenchError::Rpc {
                call: "register",
                status,
            })?
            .into_inner();
        Ok(Self { outbound, inbound })
    }

    /// Sends `message` `total` times, keeping at most `window` (1 to
    /// [`Self::MAX_WINDOW`]) unanswered, and returns once every echo is in.
    pub async fn run(
        &mut self,
        message: &ChaincodeMessage,
        total: u64,
        window: usize,
    ) -> Result<(), BenchError> {
        let window = window.clamp(1, Self::MAX_WINDOW) as u64;
        let ended = |received| BenchError::StreamEnded {
            call: "register",
            received,
            expected: total,
        };
        let mut sent = 0;
        let mut received = 0;
        while received < total {
            while sent < total && sent - received < window {
                self.outbound
                    .send(message.clone())
                    .await
                    .map_err(|_| ended(received))?;
                sent += 1;
            }
            match self.inbound.next().await {
                Some(Ok(_)) => received += 1,
                Some(Err(status)) => {
                    return Err(BenchError::Rpc {
                        call: "register",
                        status,
                    });
                }
                None => return Err(ended(received)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaincode_proto::{ChaincodeInput, ChaincodeName};

    #[tokio::test]
    async fn the_echo_answers_each_message_with_itself() {
        let server = EchoServer::start().await.unwrap();
        let mut client = dial(server.address()).await.unwrap();
        let name: ChaincodeName = "echo:1.0".parse().unwrap();
        let register = ChaincodeMessage::register(&name);
        for _ in 0..3 {
            let (answer, _) = round_trip(&mut client, register.clone()).await.unwrap();
            assert_eq!(answer, register);
        }

        let tx = ChaincodeMessage::transaction("tx1", &ChaincodeInput::from_args(["a", "b"]));
        let mut pipe = EchoPipe::open(&mut client).await.unwrap();
        pipe.run(&tx, 200, 64).await.unwrap();
        pipe.run(&tx, 3, 1).await.unwrap();
        drop((pipe, client));
        server.stop(Duration::from_secs(5)).await;
    }
}
