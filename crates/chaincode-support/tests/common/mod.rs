//! A real peer on 127.0.0.1 and an in-test executor that runs the real shim
//! in a task (the real backends are tested in the executor crate).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chaincode_proto::{ChaincodeInput, ChaincodeName, Response};
use chaincode_shim::{BoxFuture, Chaincode, Stub};
use chaincode_support::{ChaincodeSupport, SupportBuilder, SupportConfig};
use executor::{EventSink, Executor, ExecutorError, ExitStatus, StartRequest};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How a test chaincode behaves once started.
#[derive(Clone)]
pub enum Behaviour {
    /// Run the shim with this chaincode.
    Serve(Arc<dyn Chaincode>),
    /// Start "successfully" but never connect.
    NeverRegister,
}

/// Runs the real shim (over real gRPC) in a task per chaincode.
#[derive(Default)]
pub struct TaskExecutor {
    behaviours: Mutex<HashMap<String, Behaviour>>,
    running: Mutex<HashMap<ChaincodeName, (JoinHandle<()>, EventSink)>>,
    pub starts: AtomicUsize,
    pub stops: AtomicUsize,
    /// When set, `start` waits for a notification before starting.
    pub gate: Mutex<Option<Arc<Notify>>>,
}

impl TaskExecutor {
    pub fn with(name: &str, behaviour: Behaviour) -> Arc<Self> {
        let executor = Arc::new(Self::default());
        executor.set(name, behaviour);
        executor
    }

    pub fn set(&self, name: &str, behaviour: Behaviour) {
        self.behaviours.lock().insert(name.to_owned(), behaviour);
    }

    pub fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> usize {
        self.running.lock().len()
    }

    /// Kills the chaincode's task as a crash would: its connection drops and
    /// the exit is reported.
    pub fn crash(&self, chaincode: &ChaincodeName) {
        if let Some((task, sink)) = self.running.lock().remove(chaincode) {
            task.abort();
            sink.exited(ExitStatus::Code(137));
        }
    }
}

impl Executor for TaskExecutor {
    fn kind(&self) -> &'static str {
        "test-task"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        chaincode.to_string()
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(async move {
            let gate = self.gate.lock().clone();
            if let Some(gate) = gate {
                gate.notified().await;
            }
            self.starts.fetch_add(1, Ordering::SeqCst);
            let behaviour = self
                .behaviours
                .lock()
                .get(request.chaincode.name())
                .cloned()
                .ok_or_else(|| ExecutorError::UnknownChaincode {
                    kind: "test-task",
                    chaincode: request.chaincode.to_string(),
                })?;
            let task = match behaviour {
                Behaviour::NeverRegister => tokio::spawn(std::future::pending()),
                Behaviour::Serve(chaincode) => {
                    let config = chaincode_shim::Config::new(
                        request.chaincode.clone(),
                        request.peer_address.clone(),
                    )
                    .map_err(|e| ExecutorError::Start {
                        chaincode: request.chaincode.to_string(),
                        reason: e.to_string(),
                    })?;
                    let sink = sink.clone();
                    tokio::spawn(async move {
                        let status = match chaincode_shim::start(chaincode, config).await {
                            Ok(()) => ExitStatus::Code(0),
                            Err(error) => ExitStatus::Other(error.to_string()),
                        };
                        sink.exited(status);
                    })
                }
            };
            self.running.lock().insert(request.chaincode, (task, sink));
            Ok(())
        })
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async move {
            self.stops.fetch_add(1, Ordering::SeqCst);
            if let Some((task, _)) = self.running.lock().remove(chaincode) {
                task.abort();
            }
            Ok(())
        })
    }
}

/// A key-value chaincode over the stub's state calls; `slow` sleeps for the
/// given milliseconds first, `panic` panics.
#[derive(Default)]
pub struct KvChaincode {
    /// Notified when a `slow` call has started.
    pub entered: Arc<Notify>,
}

impl Chaincode for KvChaincode {
    fn init<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            match stub.put_state("initialised", b"yes".to_vec()).await {
                Ok(()) => Response::ok(Vec::new()),
                Err(e) => Response::error(500, e.to_string()),
            }
        })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let (function, params) = stub.function_and_params();
            match (function.as_str(), params.as_slice()) {
                ("put", [key, value]) => {
                    match stub.put_state(key, value.clone().into_bytes()).await {
                        Ok(()) => Response::ok(Vec::new()),
                        Err(e) => Response::error(500, e.to_string()),
                    }
                }
                ("get", [key]) => match stub.get_state(key).await {
                    Ok(Some(value)) => Response::ok(value),
                    Ok(None) => Response::error(404, format!("{key} not found")),
                    Err(e) => Response::error(500, e.to_string()),
                },
                ("del", [key]) => match stub.del_state(key).await {
                    Ok(()) => Response::ok(Vec::new()),
                    Err(e) => Response::error(500, e.to_string()),
                },
                ("slow", [millis]) => {
                    self.entered.notify_one();
                    let millis: u64 = millis.parse().unwrap_or(1000);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Response::ok(b"slept".to_vec())
                }
                ("panic", []) => panic!("kv: asked to panic"),
                _ => Response::error(400, format!("unknown function {function}")),
            }
        })
    }
}

pub fn kv() -> Behaviour {
    Behaviour::Serve(Arc::new(KvChaincode::default()))
}

/// A kv chaincode whose `slow` calls notify `entered` when they begin.
pub fn kv_notifying(entered: Arc<Notify>) -> Behaviour {
    Behaviour::Serve(Arc::new(KvChaincode { entered }))
}

/// A spec store that has an (empty) spec for every chaincode: the test
/// executor needs no package.
pub struct AnySpecStore;

impl chaincode_support::SpecStore for AnySpecStore {
    fn lookup<'a>(
        &'a self,
        _: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<chaincode_proto::ChaincodeDeploymentSpec, String>> {
        Box::pin(async { Ok(chaincode_proto::ChaincodeDeploymentSpec::default()) })
    }
}

pub fn name(text: &str) -> ChaincodeName {
    text.parse().unwrap()
}

pub fn args(list: &[&str]) -> ChaincodeInput {
    ChaincodeInput::from_args(list.iter().map(|a| a.as_bytes().to_vec()))
}

/// A peer serving `Register` on 127.0.0.1 with `executor`; `tweak` adjusts
/// the config and builder.
pub async fn peer_with(
    executor: Arc<dyn Executor>,
    tweak: impl FnOnce(&mut SupportConfig),
    build: impl FnOnce(SupportBuilder) -> SupportBuilder,
) -> ChaincodeSupport {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = SupportConfig {
        peer_address: listener.local_addr().unwrap().to_string(),
        startup_timeout: Duration::from_secs(20),
        ..SupportConfig::default()
    };
    tweak(&mut config);
    let builder = ChaincodeSupport::builder(config)
        .executor(executor)
        .spec_store(Arc::new(AnySpecStore));
    let support = build(builder).build();
    let server = support.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    support
}

pub async fn peer(executor: Arc<dyn Executor>) -> ChaincodeSupport {
    peer_with(executor, |_| {}, |b| b).await
}

/// Polls `check` until it holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

/// Waits (at most `limit`) for `chaincode` to enter `phase`, using the
/// runtime's own phase events; true if it did.
pub async fn wait_for_phase(
    support: &ChaincodeSupport,
    chaincode: &ChaincodeName,
    phase: launch_fsm::Phase,
    limit: Duration,
) -> bool {
    let mut events = support.subscribe();
    let already = support
        .status()
        .iter()
        .any(|s| &s.chaincode == chaincode && s.phase == phase);
    if already {
        return true;
    }
    let wait = async {
        loop {
            match events.recv().await {
                Ok(chaincode_support::SupportEvent {
                    chaincode: c,
                    kind: chaincode_support::SupportEventKind::Phase { phase: p, .. },
                }) if &c == chaincode && p == phase => return true,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if support
                        .status()
                        .iter()
                        .any(|s| &s.chaincode == chaincode && s.phase == phase)
                    {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}
