//! The admin API of `cclaunch peer` (`proto/admin.proto`, package
//! `cclaunch.admin`): the server over a [`ChaincodeSupport`], and the client
//! the other commands use.

use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_support::{ChaincodeSupport, SupportError, SupportEvent, SupportEventKind, TxKind};
use futures::{Stream, StreamExt};
use launch_fsm::LaunchError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::error::{CliError, root_cause};

/// The code generated from `proto/admin.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("cclaunch.admin");
}

pub use proto::admin_client::AdminClient;
use proto::admin_server::{Admin, AdminServer};
use proto::*;

/// Serves the admin API over a runtime. Watch streams end when `shutdown`
/// is cancelled, so that the server can stop gracefully.
#[derive(Debug, Clone)]
pub struct AdminService {
    support: ChaincodeSupport,
    shutdown: CancellationToken,
}

impl AdminService {
    /// The tonic service over `support`.
    pub fn server(support: ChaincodeSupport, shutdown: CancellationToken) -> AdminServer<Self> {
        AdminServer::new(Self { support, shutdown })
    }
}

fn parse_name(text: &str) -> Result<ChaincodeName, Status> {
    text.parse()
        .map_err(|e: chaincode_proto::NameError| Status::invalid_argument(e.to_string()))
}

/// The gRPC status of a runtime error; the message is the error's own text
/// (it names the chaincode and the phase).
fn status_of(error: &SupportError) -> Status {
    let code = match error {
        SupportError::Launch {
            source: LaunchError::NotFound { .. },
            ..
        } => tonic::Code::NotFound,
        SupportError::Launch {
            source: LaunchError::Timeout { .. },
            ..
        }
        | SupportError::ExecuteTimeout { .. } => tonic::Code::DeadlineExceeded,
        SupportError::ShuttingDown { .. } => tonic::Code::Unavailable,
        _ => tonic::Code::Aborted,
    };
    Status::new(code, error.to_string())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The admin API's view of a runtime event.
pub fn watch_event(event: &SupportEvent) -> Option<WatchEvent> {
    let mut out = WatchEvent {
        chaincode: event.chaincode.to_string(),
        unix_ms: unix_ms(),
        ..Default::default()
    };
    match &event.kind {
        SupportEventKind::Phase { phase, generation } => {
            out.phase = phase.to_string();
            out.generation = generation.0;
        }
        SupportEventKind::Progress(line) => out.progress = line.clone(),
        // Kinds added later are not shown by older clients.
        _ => return None,
    }
    Some(out)
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn launch(
        &self,
        request: Request<LaunchRequest>,
    ) -> Result<Response<LaunchReply>, Status> {
        let chaincode = parse_name(&request.get_ref().chaincode)?;
        let started = Instant::now();
        let ready = self
            .support
            .launch(&chaincode)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(LaunchReply {
            chaincode: chaincode.to_string(),
            generation: ready.generation().0,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeReply>, Status> {
        let request = request.into_inner();
        let chaincode = parse_name(&request.chaincode)?;
        let kind = if request.init {
            TxKind::Init
        } else {
            TxKind::Transaction
        };
        let input = ChaincodeInput {
            args: request.args,
            is_init: request.init,
            ..Default::default()
        };
        let response = self
            .support
            .execute(&chaincode, kind, &input)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(InvokeReply {
            status: response.status,
            message: response.message,
            payload: response.payload,
        }))
    }

    async fn stop(&self, request: Request<StopRequest>) -> Result<Response<StopReply>, Status> {
        let chaincode = parse_name(&request.get_ref().chaincode)?;
        self.support
            .stop(&chaincode)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(StopReply {}))
    }

    async fn ps(&self, _: Request<PsRequest>) -> Result<Response<PsReply>, Status> {
        let chaincodes = self
            .support
            .status()
            .into_iter()
            .map(|status| ChaincodeInfo {
                chaincode: status.chaincode.to_string(),
                phase: status.phase.to_string(),
                executor: status.executor.to_owned(),
                generation: status.generation.0,
                uptime_ms: status
                    .uptime
                    .map(|up| u64::try_from(up.as_millis()).unwrap_or(u64::MAX)),
                last_error: status.last_error.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(PsReply { chaincodes }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let events =
            BroadcastStream::new(self.support.subscribe()).filter_map(|event| async move {
                // A watcher that falls behind skips what it missed.
                event.ok().as_ref().and_then(watch_event).map(Ok)
            });
        let shutdown = self.shutdown.clone().cancelled_owned();
        Ok(Response::new(Box::pin(events.take_until(shutdown))))
    }
}

/// How long a client waits to reach the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects to the admin API at `addr` (`host:port`).
pub async fn connect(addr: &str) -> Result<AdminClient<Channel>, CliError> {
    let unreachable = |cause: String| {
        CliError::new(format!(
            "cannot reach the peer's admin API at {addr}: {cause}"
        ))
        .with_hint("start one with `cclaunch peer` (or pass --admin ADDR of a running peer)")
    };
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| unreachable(format!("bad address: {}", root_cause(&e))))?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| unreachable(root_cause(&e)))?;
    Ok(AdminClient::new(channel))
}

/// Turns an admin API error into what the user reads, with a hint where one helps.
pub fn cli_error(status: &Status, chaincode: &str) -> CliError {
    let error = CliError::new(status.message().to_owned());
    match status.code() {
        tonic::Code::NotFound => {
            let (name, version) = chaincode.split_once(':').unwrap_or((chaincode, "VERSION"));
            error.with_hint(format!(
                "package it into the peer's packages directory: `cclaunch package --binary PATH --name {name} --version {version} --out DIR`"
            ))
        }
        tonic::Code::DeadlineExceeded => error.with_hint(
            "the chaincode did not register or answer in time: check that it can reach the peer's --listen address, and its output in the peer's log (RUST_LOG=info)",
        ),
        tonic::Code::InvalidArgument => CliError { code: 2, ..error },
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            if status.message().contains("transport") || status.message().is_empty() =>
        {
            CliError::new(format!("the peer's admin API failed: {}", status.message()))
        }
        _ => error,
    }
}
