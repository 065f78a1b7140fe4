//! The dev backend: the developer runs the chaincode, which registers by
//! itself; start and stop do nothing.

use chaincode_proto::ChaincodeName;
use futures::future::BoxFuture;

use crate::{EventSink, Executor, ExecutorError, StartRequest};

/// No-op executor for dev mode.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevExecutor;

impl Executor for DevExecutor {
    fn kind(&self) -> &'static str {
        "dev"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        chaincode.to_string()
    }

    fn start(&self, _: StartRequest, _: EventSink) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(async { Ok(()) })
    }

    fn stop<'a>(&'a self, _: &'a ChaincodeName) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async { Ok(()) })
    }
}
