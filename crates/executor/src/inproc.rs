//! The inproc backend: system chaincodes run as tokio tasks inside the peer,
//! speaking the ordinary protocol through `chaincode-shim` over an in-memory
//! stream — no socket, no process.
//!
//! A panic in the chaincode's `init`/`invoke` (caught by the shim) or in its
//! task becomes `RuntimeExited` with the panic message; the peer keeps running.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use chaincode_proto::{ChaincodeMessage, ChaincodeName};
use chaincode_shim::{Chaincode, ShimError};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::{EventSink, Executor, ExecutorError, ExitStatus, StartRequest};

/// A stream of chaincode messages, in either direction.
pub type MessageStream =
    Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + 'static>>;

/// The peer side of a chaincode stream: what `protos.ChaincodeSupport/Register`
/// does, without the socket. The runtime implements it.
pub trait StreamConnector: Send + Sync + 'static {
    /// Hands the peer a new stream: `inbound` is what the chaincode sends;
    /// the result is what the peer sends back.
    fn connect(&self, inbound: MessageStream) -> MessageStream;
}

/// Makes a fresh instance of a system chaincode for each start.
pub type ChaincodeFactory = Arc<dyn Fn() -> Arc<dyn Chaincode> + Send + Sync>;

struct Running {
    shim: tokio::task::AbortHandle,
    watcher: JoinHandle<()>,
}

/// Runs system chaincodes in-process.
#[derive(Default)]
pub struct InprocExecutor {
    factories: RwLock<HashMap<String, ChaincodeFactory>>,
    connector: RwLock<Option<Arc<dyn StreamConnector>>>,
    running: Mutex<HashMap<ChaincodeName, Running>>,
}

impl std::fmt::Debug for InprocExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InprocExecutor")
            .field("chaincodes", &self.names())
            .finish_non_exhaustive()
    }
}

impl InprocExecutor {
    /// An executor with no system chaincodes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a system chaincode under `name` (no version). A name that
    /// breaks Fabric's name rule ([`chaincode_proto::name::NAME_RULE`]) or is
    /// already registered is an error, and registers nothing.
    pub fn register(&self, name: &str, factory: ChaincodeFactory) -> Result<(), ExecutorError> {
        chaincode_proto::validate_name(name).map_err(|source| ExecutorError::InvalidName {
            kind: "inproc",
            source,
        })?;
        let mut factories = self.factories.write();
        if factories.contains_key(name) {
            return Err(ExecutorError::AlreadyRegistered {
                kind: "inproc",
                chaincode: name.to_owned(),
            });
        }
        factories.insert(name.to_owned(), factory);
        Ok(())
    }

    /// The names of the registered system chaincodes, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.factories.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Connects the executor to the runtime it starts chaincodes for.
    pub fn attach(&self, connector: Arc<dyn StreamConnector>) {
        *self.connector.write() = Some(connector);
    }
}

fn exit_status(result: Result<(), ShimError>) -> ExitStatus {
    match result {
        Ok(()) => ExitStatus::Code(0),
        Err(ShimError::ChaincodePanicked { message, .. }) => ExitStatus::Panic(message),
        Err(other) => ExitStatus::Other(other.to_string()),
    }
}

impl Executor for InprocExecutor {
    fn kind(&self) -> &'static str {
        "inproc"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        format!("inproc-{chaincode}")
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(async move {
            let chaincode = request.chaincode.clone();
            let factory = self
                .factories
                .read()
                .get(chaincode.name())
                .cloned()
                .ok_or_else(|| ExecutorError::UnknownChaincode {
                    kind: "inproc",
                    chaincode: chaincode.to_string(),
                })?;
            let connector = self.connector.read().clone().ok_or_else(|| {
                ExecutorError::Unavailable("inproc executor is not attached to a runtime".into())
            })?;
            let instance = factory();
            let (to_peer, from_chaincode) = mpsc::channel::<ChaincodeMessage>(256);
            let inbound: MessageStream = Box::pin(ReceiverStream::new(from_chaincode).map(Ok));
            let from_peer = connector.connect(inbound);
            let name = chaincode.clone();
            let shim = tokio::spawn(chaincode_shim::serve_stream(
                instance, name, to_peer, from_peer,
            ));
            let shim_handle = shim.abort_handle();
            // The watcher turns however the shim task ends — returned,
            // panicked, or aborted by stop — into one exit report.
            let watcher = tokio::spawn(async move {
                let status = match shim.await {
                    Ok(result) => exit_status(result),
                    Err(join) if join.is_panic() => {
                        ExitStatus::Panic(chaincode_shim::panic_message(join.into_panic().as_ref()))
                    }
                    Err(_) => ExitStatus::Other("stopped".to_owned()),
                };
                tracing::info!(chaincode = %chaincode, %status, "in-process chaincode ended");
                sink.exited(status);
            });
            let running = Running {
                shim: shim_handle,
                watcher,
            };
            let previous = self.running.lock().insert(request.chaincode, running);
            if let Some(previous) = previous {
                previous.shim.abort();
            }
            Ok(())
        })
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async move {
            let running = self.running.lock().remove(chaincode);
            if let Some(Running { shim, watcher }) = running {
                // Ending the shim task drops its stream; the watcher then
                // reports the exit and ends too.
                shim.abort();
                let _ = watcher.await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaincode_shim::{Response, Stub};

    struct Noop;

    impl Chaincode for Noop {
        fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
            Box::pin(async { Response::ok(Vec::new()) })
        }
        fn invoke<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
            Box::pin(async { Response::ok(Vec::new()) })
        }
    }

    fn factory() -> ChaincodeFactory {
        Arc::new(|| Arc::new(Noop) as Arc<dyn Chaincode>)
    }

    #[test]
    fn register_refuses_names_that_break_the_rule_and_keeps_nothing() {
        let exec = InprocExecutor::new();
        for bad in ["../x", "/tmp/evil", "", "a:1", "a.b", "a b", "é"] {
            let err = exec.register(bad, factory()).unwrap_err();
            assert!(
                matches!(err, ExecutorError::InvalidName { kind: "inproc", .. }),
                "{bad:?}: {err:?}"
            );
            assert!(
                err.to_string().contains(chaincode_proto::name::NAME_RULE),
                "{err}"
            );
        }
        assert!(exec.names().is_empty());
        exec.register("sys_cc-1", factory()).unwrap();
        assert_eq!(exec.names(), ["sys_cc-1"]);
    }
}
