//! An executor that runs the real shim in a tokio task: the chaincode dials
//! the peer's `Register` server on 127.0.0.1 over real gRPC, exactly as a
//! chaincode process would, without the process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chaincode_proto::ChaincodeName;
use chaincode_shim::Chaincode;
use executor::{EventSink, Executor, ExecutorError, ExitStatus, StartRequest};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// How long a stop waits for the shim to end by itself (the peer closes its
/// stream first) before it aborts the task, as SIGKILL would.
const STOP_GRACE: Duration = Duration::from_millis(250);

/// Runs one chaincode implementation for every name, each start in a task of
/// its own that speaks gRPC to the peer.
pub struct TaskExecutor {
    chaincode: Arc<dyn Chaincode>,
    running: Mutex<HashMap<ChaincodeName, JoinHandle<()>>>,
    starts: AtomicUsize,
}

impl std::fmt::Debug for TaskExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskExecutor")
            .field("running", &self.running.lock().len())
            .field("starts", &self.starts())
            .finish()
    }
}

impl TaskExecutor {
    /// Serves `chaincode` under whatever name is started.
    pub fn new(chaincode: Arc<dyn Chaincode>) -> Self {
        Self {
            chaincode,
            running: Mutex::new(HashMap::new()),
            starts: AtomicUsize::new(0),
        }
    }

    /// How many runtimes were started so far.
    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::Relaxed)
    }
}

impl Executor for TaskExecutor {
    fn kind(&self) -> &'static str {
        "bench-task"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        format!("task-{chaincode}")
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(async move {
            let config = chaincode_shim::Config::new(
                request.chaincode.clone(),
                request.peer_address.clone(),
            )
            .map_err(|e| ExecutorError::Start {
                chaincode: request.chaincode.to_string(),
                reason: e.to_string(),
            })?;
            self.starts.fetch_add(1, Ordering::Relaxed);
            let chaincode = self.chaincode.clone();
            let task = tokio::spawn(async move {
                let status = match chaincode_shim::start(chaincode, config).await {
                    Ok(()) => ExitStatus::Code(0),
                    Err(error) => ExitStatus::Other(error.to_string()),
                };
                sink.exited(status);
            });
            if let Some(stale) = self.running.lock().insert(request.chaincode, task) {
                stale.abort();
            }
            Ok(())
        })
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async move {
            let Some(mut task) = self.running.lock().remove(chaincode) else {
                return Ok(());
            };
            if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
                task.abort();
            }
            Ok(())
        })
    }
}
