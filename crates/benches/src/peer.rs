//! A real runtime serving `protos.ChaincodeSupport/Register` on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeName};
use chaincode_shim::BoxFuture;
use chaincode_support::{ChaincodeSupport, SpecStore, SupportBuilder, SupportConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::BenchError;

/// A spec store with an empty deployment spec for every chaincode: the task
/// executor needs no code package.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnySpecStore;

impl SpecStore for AnySpecStore {
    fn lookup<'a>(
        &'a self,
        _: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<ChaincodeDeploymentSpec, String>> {
        Box::pin(async { Ok(ChaincodeDeploymentSpec::default()) })
    }
}

/// A [`ChaincodeSupport`] serving gRPC on a free port of 127.0.0.1.
#[derive(Debug)]
pub struct Peer {
    /// The runtime.
    pub support: ChaincodeSupport,
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Peer {
    /// Binds 127.0.0.1:0, points `config.peer_address` at it, builds the
    /// runtime with `build` and serves it. Call within a tokio runtime.
    pub async fn start(
        mut config: SupportConfig,
        build: impl FnOnce(SupportBuilder) -> SupportBuilder,
    ) -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::Bind)?;
        let address = listener.local_addr().map_err(BenchError::Bind)?;
        config.peer_address = address.to_string();
        let support = build(ChaincodeSupport::builder(config)).build();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = {
            let support = support.clone();
            tokio::spawn(async move {
                support
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        Ok(Self {
            support,
            address,
            shutdown: Some(shutdown),
            server,
        })
    }

    /// Where the runtime listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops every chaincode (within `grace`) and the server.
    pub async fn shutdown(mut self, grace: Duration) {
        self.support.shutdown(grace).await;
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(grace, &mut self.server).await.is_err() {
            self.server.abort();
        }
    }
}
