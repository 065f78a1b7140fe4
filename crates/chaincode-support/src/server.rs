//! The gRPC face: `protos.ChaincodeSupport/Register` over tonic.

use chaincode_proto::ChaincodeMessage;
use chaincode_proto::chaincode_support_server::{self, ChaincodeSupportServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

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
        // The transport fills the client certificate in when TLS is on.
        let origin = StreamOrigin::Remote { client_cert: None };
        Ok(Response::new(
            self.support.connect_from(request.into_inner(), origin),
        ))
    }
}

impl ChaincodeSupport {
    /// The `protos.ChaincodeSupport` service, to mount on a tonic server.
    pub fn register_service(&self) -> ChaincodeSupportServer<RegisterService> {
        ChaincodeSupportServer::new(RegisterService {
            support: self.clone(),
        })
    }

    /// Serves `protos.ChaincodeSupport/Register` on `listener` until
    /// `shutdown` resolves.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(self.register_service())
            // Without TCP_NODELAY, small replies (REGISTERED, READY, a
            // COMPLETED) can wait ~40 ms on Nagle's algorithm.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
    }
}
