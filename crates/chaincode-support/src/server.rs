//! The gRPC face: `protos.ChaincodeSupport/Register` over tonic.

use chaincode_proto::ChaincodeMessage;
use chaincode_proto::ChaincodeName;
use chaincode_proto::chaincode_support_server::{self, ChaincodeSupportServer};
use chaincode_tls::CertHash;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::config::SupportConfig;
use crate::listener::{self, ConnInfo, ListenerSettings};
use crate::support::{ChaincodeSupport, StreamOrigin};

/// The tonic service; mount it on your own server with
/// [`ChaincodeSupport::register_service`] or let [`ChaincodeSupport::serve`] run one.
#[derive(Debug, Clone)]
pub struct RegisterService {
    support: ChaincodeSupport,
}

#[tonic::async_trait]
impl chaincode_support_server::ChaincodeSupport for RegisterService {
    type RegisterStream = ReceiverStream<Result<ChaincodeMessage, Status>>;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::RegisterStream>, Status> {
        // Our listener puts its facts in; a server of the embedder's has none.
        let info = request.extensions().get::<ConnInfo>().cloned();
        let origin = match info {
            Some(info) => {
                let hash = info.client_cert.as_deref().map(CertHash::of);
                debug!(
                    remote = ?info.remote,
                    client_cert = %hash.map_or_else(|| "none".to_owned(), |h| h.to_string()),
                    "chaincode stream opened"
                );
                StreamOrigin::Remote {
                    client_cert: info.client_cert.map(|der| der.to_vec()),
                    connection: info.registration,
                }
            }
            None => StreamOrigin::Remote {
                client_cert: None,
                connection: Default::default(),
            },
        };
        Ok(Response::new(
            self.support.connect_from(request.into_inner(), origin),
        ))
    }
}

/// What to answer when a chaincode stream's inbound side fails with
/// `status`: RESOURCE_EXHAUSTED naming the limit for a message over
/// [`SupportConfig::max_message_size`] (tonic reports it as OUT_OF_RANGE),
/// nothing for the rest (the client went away or broke the framing).
pub(crate) fn inbound_failure(
    status: &Status,
    config: &SupportConfig,
    chaincode: Option<&ChaincodeName>,
) -> Option<Status> {
    let chaincode = chaincode.map_or_else(|| "(not registered)".to_owned(), |c| c.to_string());
    if status.code() != Code::OutOfRange {
        debug!(%chaincode, %status, "chaincode stream failed");
        return None;
    }
    let limit = config.max_message_size;
    warn!(%chaincode, limit, reason = %status.message(), "chaincode message too large: stream closed");
    Some(Status::resource_exhausted(format!(
        "chaincode {chaincode}: message larger than the peer's limit of {limit} bytes"
    )))
}

impl ChaincodeSupport {
    /// The `protos.ChaincodeSupport` service, to mount on a tonic server,
    /// with the message size limit of [`SupportConfig::max_message_size`]
    /// both ways.
    pub fn register_service(&self) -> ChaincodeSupportServer<RegisterService> {
        let limit = self.config().max_message_size;
        ChaincodeSupportServer::new(RegisterService {
            support: self.clone(),
        })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit)
    }

    /// Serves `protos.ChaincodeSupport/Register` on `listener` until
    /// `shutdown` resolves: at most [`SupportConfig::max_connections`]
    /// connections, TLS when configured, and a connection that has not
    /// registered within [`SupportConfig::first_message_timeout`] is closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let config = self.config();
        let incoming =
            listener::incoming(listener, ListenerSettings::new(config, self.listener_tls()));
        // TCP_NODELAY and TCP keepalive are set by the listener: tonic
        // ignores its own socket settings for connections it is handed.
        tonic::transport::Server::builder()
            .http2_keepalive_interval(config.connection_keepalive_interval())
            .http2_keepalive_timeout(Some(config.connection_keepalive_timeout))
            .add_service(self.register_service())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}
