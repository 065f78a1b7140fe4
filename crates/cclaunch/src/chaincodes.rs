//! Chaincodes bundled in the `cclaunch` binary: `counter`, a system chaincode
//! run in-process, and the `kv` sample ([`chaincode_samples::Kv`]), which
//! `cclaunch` runs as a chaincode process when started the way a peer starts
//! chaincode binaries (`<exe> -peer.address=HOST:PORT` with
//! `CORE_CHAINCODE_ID_NAME=kv:VERSION`).

use std::sync::Arc;

use chaincode_shim::{BoxFuture, Chaincode, Response, Stub};

/// The name of the bundled system chaincode.
pub const COUNTER: &str = "counter";

/// The name of the bundled key-value chaincode.
pub const KV: &str = "kv";

/// A system chaincode: `incr KEY` adds one to KEY and returns the new value;
/// `get KEY` returns it (`0` when unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter;

impl Chaincode for Counter {
    fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { Response::ok(Vec::new()) })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let (function, params) = stub.function_and_params();
            let [key] = params.as_slice() else {
                return Response::error(400, format!("{function}: expected one argument, KEY"));
            };
            let current = match stub.get_state(key).await {
                Ok(value) => value,
                Err(e) => return Response::error(500, e.to_string()),
            };
            let current: u64 = match current {
                None => 0,
                Some(bytes) => match String::from_utf8_lossy(&bytes).parse() {
                    Ok(n) => n,
                    Err(_) => return Response::error(500, format!("{key} does not hold a number")),
                },
            };
            match function.as_str() {
                "get" => Response::ok(current.to_string()),
                "incr" => {
                    let next = current.saturating_add(1).to_string();
                    match stub.put_state(key, next.clone()).await {
                        Ok(()) => Response::ok(next),
                        Err(e) => Response::error(500, e.to_string()),
                    }
                }
                other => Response::error(
                    400,
                    format!("unknown function {other:?}: expected incr or get"),
                ),
            }
        })
    }
}

/// The bundled chaincode called `name`, if there is one.
pub fn bundled(name: &str) -> Option<Arc<dyn Chaincode>> {
    match name {
        KV => Some(Arc::new(chaincode_samples::Kv)),
        COUNTER => Some(Arc::new(Counter)),
        _ => None,
    }
}

/// Whether the process was started the way a peer starts a chaincode
/// binary: with a `-peer.address` argument.
pub fn started_as_chaincode(args: &[String]) -> bool {
    args.iter()
        .skip(1)
        .any(|arg| arg.starts_with("-peer.address") || arg.starts_with("--peer.address"))
}

/// Serves the bundled chaincode that `config.name` names (its name part up
/// to a `-`: `kv`, `kv-docker`, `counter`) until the peer closes the stream.
pub async fn serve(config: chaincode_shim::Config) -> Result<(), String> {
    let family = config.name.name().split('-').next().unwrap_or_default();
    let chaincode = bundled(family).ok_or_else(|| {
        format!(
            "no bundled chaincode for {}: cclaunch bundles kv and counter",
            config.name
        )
    })?;
    let name = config.name.clone();
    chaincode_shim::start(chaincode, config)
        .await
        .map_err(|e| format!("chaincode {name}: {e}"))
}
