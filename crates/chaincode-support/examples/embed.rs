//! Embedding the runtime: a peer with one in-process system chaincode,
//! serving `protos.ChaincodeSupport/Register` on 127.0.0.1, one transaction,
//! a graceful shutdown. Run with `cargo run -p chaincode-support --example embed`.

use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::{ChaincodeInput, ChaincodeName};
use chaincode_shim::{BoxFuture, Chaincode, Response, Stub};
use chaincode_support::{ChaincodeSupport, SupportConfig, TxKind};
use executor::inproc::InprocExecutor;

/// Answers every call with its arguments, and remembers the last one.
struct Echo;

impl Chaincode for Echo {
    fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { Response::ok(Vec::new()) })
    }
    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let words = stub.function_and_params().1.join(" ");
            match stub.put_state("last", words.clone()).await {
                Ok(()) => Response::ok(words),
                Err(e) => Response::error(500, e.to_string()),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let config = SupportConfig {
        peer_address: listener.local_addr()?.to_string(),
        ..Default::default()
    };
    let inproc = Arc::new(InprocExecutor::new());
    inproc.register("echo", Arc::new(|| Arc::new(Echo) as Arc<dyn Chaincode>))?;
    let support = ChaincodeSupport::builder(config).inproc(inproc).build();
    let server = tokio::spawn({
        let support = support.clone();
        async move { support.serve(listener, std::future::pending()).await }
    });

    let echo: ChaincodeName = "echo:1.0".parse()?;
    let input = ChaincodeInput::from_args(["say", "hello", "world"]);
    let response = support.execute(&echo, TxKind::Transaction, &input).await?;
    println!(
        "{echo} answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.payload)
    );

    support.shutdown(Duration::from_secs(5)).await;
    server.abort();
    Ok(())
}
