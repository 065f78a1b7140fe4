//! The well-behaved sample chaincodes.

use chaincode_shim::{BoxFuture, Chaincode, Response, Stub};

/// A key-value chaincode: `put K V`, `get K`, `del K`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

impl Chaincode for Kv {
    fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { Response::ok(Vec::new()) })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let (function, params) = stub.function_and_params();
            match (function.as_str(), params.as_slice()) {
                ("put", [key, value]) => match stub.put_state(key, value.as_bytes()).await {
                    Ok(()) => Response::ok(b"OK".to_vec()),
                    Err(e) => Response::error(Response::ERROR, e.to_string()),
                },
                ("get", [key]) => match stub.get_state(key).await {
                    Ok(Some(value)) => Response::ok(value),
                    Ok(None) => Response::error(404, format!("{key} not found")),
                    Err(e) => Response::error(Response::ERROR, e.to_string()),
                },
                ("del", [key]) => match stub.del_state(key).await {
                    Ok(()) => Response::ok(Vec::new()),
                    Err(e) => Response::error(Response::ERROR, e.to_string()),
                },
                _ => Response::error(
                    400,
                    format!(
                        "kv: unknown call {function:?} with {} parameters: expected put K V, get K or del K",
                        params.len()
                    ),
                ),
            }
        })
    }
}

/// Answers every call with 200 and its arguments joined by spaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Chaincode for Echo {
    fn init<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move { Response::ok(joined(stub)) })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move { Response::ok(joined(stub)) })
    }
}

pub(crate) fn joined(stub: &Stub) -> Vec<u8> {
    stub.args().join(&b' ')
}
