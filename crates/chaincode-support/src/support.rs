//! [`ChaincodeSupport`]: the runtime's public face.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chaincode_proto::chaincode_message::Type;
use chaincode_proto::{
    ChaincodeDeploymentSpec, ChaincodeInput, ChaincodeMessage, ChaincodeName, Response,
};
use executor::Executor;
use executor::dev::DevExecutor;
use executor::inproc::{InprocExecutor, MessageStream, StreamConnector};
use futures::{Stream, StreamExt};
use launch_fsm::{Config, Generation, Phase, StreamId, WaiterId};
use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info_span, warn};

use crate::config::{Mode, SupportConfig};
use crate::driver::{Driver, DriverMsg, EntryStatus};
use crate::error::SupportError;
use crate::listener::Registration;
use crate::metrics::Metrics;
use crate::server;
use crate::store::{MemorySpecStore, MemoryStateStore, SpecStore, StateStore};
use crate::stream::{self, FirstMessageError, Inbound, StreamConn};
use crate::tls::PeerTls;

/// The kind of message that carries a transaction to the chaincode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// INIT: the chaincode's `init`.
    Init,
    /// TRANSACTION: the chaincode's `invoke`.
    Transaction,
}

/// Something a watcher can see happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportEvent {
    /// The chaincode.
    pub chaincode: ChaincodeName,
    /// What happened.
    pub kind: SupportEventKind,
}

/// What happened to a chaincode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupportEventKind {
    /// It entered a phase (or a new generation).
    Phase {
        /// The new phase.
        phase: Phase,
        /// The launch generation.
        generation: Generation,
    },
    /// A long step made progress (an image build).
    Progress(String),
    /// The runtime forgot the chaincode (an unknown name, or idle for the
    /// idle eviction delay): `status()` no longer shows it.
    Removed,
}

/// One chaincode as `status()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodeStatus {
    /// `name:version`.
    pub chaincode: ChaincodeName,
    /// Where its launch is.
    pub phase: Phase,
    /// Its launch generation (how many times it was launched).
    pub generation: Generation,
    /// The executor that runs it.
    pub executor: &'static str,
    /// How long it has been ready, when it is.
    pub uptime: Option<Duration>,
    /// Why its last launch failed or its last runtime went away.
    pub last_error: Option<String>,
}

/// A chaincode that is ready: READY was sent on its stream. Transactions go
/// through [`ReadyHandle::execute`].
#[derive(Clone)]
pub struct ReadyHandle {
    inner: Arc<Inner>,
    conn: Arc<StreamConn>,
    generation: Generation,
}

impl std::fmt::Debug for ReadyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyHandle")
            .field("chaincode", &self.conn.chaincode.to_string())
            .field("generation", &self.generation)
            .field("stream", &self.conn.id)
            .finish()
    }
}

impl ReadyHandle {
    pub(crate) fn new(inner: Arc<Inner>, conn: Arc<StreamConn>, generation: Generation) -> Self {
        Self {
            inner,
            conn,
            generation,
        }
    }

    /// The chaincode.
    pub fn chaincode(&self) -> &ChaincodeName {
        &self.conn.chaincode
    }

    /// The launch generation that became ready.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Sends INIT or TRANSACTION with a fresh txid and waits, at most the
    /// execute timeout, for the matching COMPLETED or ERROR.
    pub async fn execute(
        &self,
        kind: TxKind,
        input: &ChaincodeInput,
    ) -> Result<Response, SupportError> {
        let txid = self.inner.next_txid();
        let chaincode = self.conn.chaincode.to_string();
        let span = info_span!("transaction", chaincode = %chaincode, txid = %txid, kind = ?kind);
        async {
            let lost = |reason: &str| SupportError::StreamLost {
                chaincode: chaincode.clone(),
                txid: txid.clone(),
                reason: reason.to_owned(),
            };
            let reply = self
                .conn
                .expect_reply(&txid)
                .ok_or_else(|| lost("the stream is closed"))?;
            let message = match kind {
                TxKind::Init => ChaincodeMessage::init(&txid, input),
                TxKind::Transaction => ChaincodeMessage::transaction(&txid, input),
            };
            if !self.conn.send(message).await {
                self.conn.forget(&txid);
                return Err(lost("the stream is closed"));
            }
            let timeout = self.inner.config.execute_timeout;
            let answer = match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => return Err(lost("the stream closed or the runtime exited")),
                Err(_) => {
                    self.conn.forget(&txid);
                    self.inner.metrics.execute_timed_out(&chaincode);
                    return Err(SupportError::ExecuteTimeout {
                        chaincode: chaincode.clone(),
                        txid: txid.clone(),
                        timeout,
                    });
                }
            };
            match answer.known_type() {
                Some(Type::Completed) => {
                    answer
                        .decode_payload::<Response>()
                        .map_err(|e| SupportError::BadReply {
                            chaincode: chaincode.clone(),
                            txid: txid.clone(),
                            reason: e.to_string(),
                        })
                }
                _ => Err(SupportError::ChaincodeError {
                    chaincode: chaincode.clone(),
                    txid: txid.clone(),
                    message: answer.payload_text(),
                }),
            }
        }
        .instrument(span)
        .await
    }
}

/// One chaincode the runtime knows. It leaves the registry only under the
/// registry lock, by its own driver, when that driver's inbox is empty: a
/// message sent to an entry found in the registry is always read.
struct Entry {
    /// Tells this entry from a later one of the same name.
    id: u64,
    tx: mpsc::UnboundedSender<DriverMsg>,
    status: Arc<Mutex<EntryStatus>>,
}

pub(crate) struct Inner {
    pub(crate) config: SupportConfig,
    executor: Arc<dyn Executor>,
    system_executor: Option<Arc<dyn Executor>>,
    system_chaincodes: HashSet<String>,
    pub(crate) specs: Arc<dyn SpecStore>,
    state: Arc<dyn StateStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// The chaincode listener's TLS and the launch certificate bindings.
    pub(crate) tls: Option<PeerTls>,
    registry: Mutex<HashMap<ChaincodeName, Entry>>,
    events: broadcast::Sender<SupportEvent>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    pub(crate) tasks: TaskTracker,
    /// The chaincode listener's TLS settings; `None` = plaintext.
    pub(crate) tls_server: Option<Arc<rustls::ServerConfig>>,
}

impl Inner {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_txid(&self) -> String {
        format!("{}-tx{}", self.config.peer_id, self.next_id())
    }

    pub(crate) fn emit(&self, event: SupportEvent) {
        // No watcher is fine.
        let _ = self.events.send(event);
    }

    /// Removes the entry `id` of `chaincode`, in `phase`, with its metric
    /// series, unless `inbox_empty` says a message reached its driver.
    /// Checked under the registry lock, which every sender holds, so no
    /// message can slip in between the check and the removal: a later
    /// sender finds no entry and creates a fresh driver. True if the entry
    /// is gone (or was already, at shutdown) and the driver must end.
    pub(crate) fn retire(
        &self,
        chaincode: &ChaincodeName,
        id: u64,
        phase: Phase,
        inbox_empty: impl FnOnce() -> bool,
    ) -> bool {
        {
            let mut registry = self.registry.lock();
            if !inbox_empty() {
                return false;
            }
            if registry.get(chaincode).is_some_and(|entry| entry.id == id) {
                registry.remove(chaincode);
            }
            // Still under the lock: once the entry is gone, so are its series.
            self.metrics.forget(&chaincode.to_string());
            self.metrics.phase_changed(Some(phase), None);
        }
        self.emit(SupportEvent {
            chaincode: chaincode.clone(),
            kind: SupportEventKind::Removed,
        });
        true
    }
}

/// Who is on the other end of a chaincode stream, as its transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamOrigin {
    /// The peer's own process (the inproc executor, an embedder's `connect`).
    InProcess,
    /// A network connection.
    Remote {
        /// The leaf client certificate (DER) the TLS handshake presented.
        client_cert: Option<Vec<u8>>,
        /// The connection's watchdog: marked once a REGISTER is accepted.
        connection: Registration,
    },
}

impl StreamOrigin {
    /// A REGISTER from this origin was accepted: its connection may stay
    /// past the first-message timeout.
    fn accepted(&self) {
        if let Self::Remote { connection, .. } = self {
            connection.mark();
        }
    }
}

/// Builds a [`ChaincodeSupport`].
pub struct SupportBuilder {
    config: SupportConfig,
    executor: Option<Arc<dyn Executor>>,
    system_executor: Option<Arc<dyn Executor>>,
    system_chaincodes: HashSet<String>,
    specs: Option<Arc<dyn SpecStore>>,
    state: Option<Arc<dyn StateStore>>,
    inproc_executor: Option<Arc<InprocExecutor>>,
    tls: Option<PeerTls>,
    tls_server: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for SupportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SupportBuilder {
    /// The executor for user chaincode (ignored in dev mode, where the peer
    /// never starts chaincode). Default: the dev executor.
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// The executor for system chaincodes (the inproc backend), and the names
    /// (without version) it serves. System chaincodes need no deployment spec.
    pub fn system_executor<I, S>(mut self, executor: Arc<dyn Executor>, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.system_executor = Some(executor);
        self.system_chaincodes = names.into_iter().map(Into::into).collect();
        self
    }

    /// Runs system chaincodes in-process: every chaincode registered with
    /// `inproc` (now or later is fine for starts, but the names are read now)
    /// is launched there, with no deployment spec.
    pub fn inproc(mut self, inproc: Arc<InprocExecutor>) -> Self {
        let names = inproc.names();
        self.inproc_executor = Some(inproc.clone());
        self.system_executor(inproc, names)
    }

    /// Where deployment specs are looked up. Default: an empty memory store.
    pub fn spec_store(mut self, specs: Arc<dyn SpecStore>) -> Self {
        self.specs = Some(specs);
        self
    }

    /// The world state chaincodes read and write. Default: memory.
    pub fn state_store(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = Some(state);
        self
    }

    /// Turns TLS on for the chaincode listener: it presents `tls`'s server
    /// certificate and requires a client certificate from its CA; every
    /// launch whose runtime dials the peer gets its own client certificate,
    /// and a network stream may register only as the chaincode its
    /// certificate was issued for (in dev mode: as any chaincode, with any
    /// certificate the CA issued). Default: plaintext, no check.
    pub fn tls(mut self, tls: PeerTls) -> Self {
        self.tls_server = Some(tls.server_config());
        self.tls = Some(tls);
        self
    }

    /// Serves chaincode over TLS with `config` (which may require client
    /// certificates); the leaf certificate a client presents reaches the
    /// stream's origin. Default: plaintext.
    pub fn tls_server_config(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls_server = Some(config);
        self
    }

    /// The runtime. Call from within a tokio runtime.
    pub fn build(self) -> ChaincodeSupport {
        let executor: Arc<dyn Executor> = match (self.config.mode, self.executor) {
            (Mode::Dev, _) | (Mode::Net, None) => Arc::new(DevExecutor),
            (Mode::Net, Some(executor)) => executor,
        };
        let (events, _) = broadcast::channel(1024);
        let support = ChaincodeSupport {
            inner: Arc::new(Inner {
                config: self.config,
                executor,
                system_executor: self.system_executor,
                system_chaincodes: self.system_chaincodes,
                specs: self
                    .specs
                    .unwrap_or_else(|| Arc::new(MemorySpecStore::new())),
                state: self
                    .state
                    .unwrap_or_else(|| Arc::new(MemoryStateStore::new())),
                metrics: Arc::new(Metrics::new()),
                tls: self.tls,
                registry: Mutex::new(HashMap::new()),
                events,
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                tasks: TaskTracker::new(),
                tls_server: self.tls_server,
            }),
        };
        if let Some(inproc) = self.inproc_executor {
            // Weak: the runtime owns the executor, not the other way round.
            inproc.attach(Arc::new(WeakConnector(Arc::downgrade(&support.inner))));
        }
        support
    }
}

/// The runtime's `Register` handler as seen by the inproc executor.
struct WeakConnector(Weak<Inner>);

impl StreamConnector for WeakConnector {
    fn connect(&self, inbound: MessageStream) -> MessageStream {
        match self.0.upgrade() {
            Some(inner) => Box::pin(ChaincodeSupport { inner }.connect(inbound)),
            None => Box::pin(futures::stream::empty()),
        }
    }
}

/// Launches chaincode, serves its `Register` streams, runs transactions on
/// it and stops it. Cheap to clone: clones share one runtime.
#[derive(Clone)]
pub struct ChaincodeSupport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ChaincodeSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeSupport")
            .field("config", &self.inner.config)
            .field("chaincodes", &self.inner.registry.lock().len())
            .finish()
    }
}

impl ChaincodeSupport {
    /// Starts building a runtime with `config`.
    pub fn builder(config: SupportConfig) -> SupportBuilder {
        SupportBuilder {
            config,
            executor: None,
            system_executor: None,
            system_chaincodes: HashSet::new(),
            specs: None,
            state: None,
            inproc_executor: None,
            tls: None,
            tls_server: None,
        }
    }

    /// The chaincode listener's TLS, when on: its root certificate, and
    /// [`PeerTls::issue_dev_client`] for a developer in dev mode.
    pub fn tls(&self) -> Option<&PeerTls> {
        self.inner.tls.as_ref()
    }

    /// The settings in force.
    pub fn config(&self) -> &SupportConfig {
        &self.inner.config
    }

    /// The chaincode listener's TLS settings, if TLS is on.
    pub(crate) fn listener_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.inner.tls_server.clone()
    }

    /// The runtime's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Phase changes and progress of every chaincode, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<SupportEvent> {
        self.inner.events.subscribe()
    }

    /// Whether `chaincode` is served by the system (inproc) executor.
    pub fn is_system(&self, chaincode: &ChaincodeName) -> bool {
        self.inner.system_executor.is_some()
            && self.inner.system_chaincodes.contains(chaincode.name())
    }

    /// The executor that runs `chaincode`.
    pub fn executor_for(&self, chaincode: &ChaincodeName) -> Arc<dyn Executor> {
        match &self.inner.system_executor {
            Some(system) if self.is_system(chaincode) => system.clone(),
            _ => self.inner.executor.clone(),
        }
    }

    /// Makes `chaincode` ready and returns at once if it is. Concurrent
    /// callers share one start. The deployment spec is looked up in the spec
    /// store (system chaincodes need none). Dropping the future gives up
    /// waiting without disturbing anyone else.
    pub async fn launch(&self, chaincode: &ChaincodeName) -> Result<ReadyHandle, SupportError> {
        self.launch_with(chaincode, None).await
    }

    /// Like [`Self::launch`], with the deployment spec in hand (a deploy call).
    pub async fn deploy(
        &self,
        chaincode: &ChaincodeName,
        spec: ChaincodeDeploymentSpec,
    ) -> Result<ReadyHandle, SupportError> {
        self.launch_with(chaincode, Some(spec)).await
    }

    async fn launch_with(
        &self,
        chaincode: &ChaincodeName,
        spec: Option<ChaincodeDeploymentSpec>,
    ) -> Result<ReadyHandle, SupportError> {
        let (reply, answer) = oneshot::channel();
        let waiter = WaiterId(self.inner.next_id());
        self.send_to(
            chaincode,
            true,
            DriverMsg::Launch {
                waiter,
                spec,
                reply,
            },
        )?;
        answer.await.unwrap_or_else(|_| {
            Err(SupportError::ShuttingDown {
                chaincode: chaincode.to_string(),
            })
        })
    }

    /// Launches `chaincode` if needed, then runs one INIT or TRANSACTION.
    pub async fn execute(
        &self,
        chaincode: &ChaincodeName,
        kind: TxKind,
        input: &ChaincodeInput,
    ) -> Result<Response, SupportError> {
        self.launch(chaincode).await?.execute(kind, input).await
    }

    /// Stops `chaincode`: waiters fail with a `stopped` error, a runtime is
    /// stopped, and the entry is idle when this returns. Stopping a
    /// chaincode that is not running is fine.
    pub async fn stop(&self, chaincode: &ChaincodeName) -> Result<(), SupportError> {
        let (reply, answer) = oneshot::channel();
        let waiter = WaiterId(self.inner.next_id());
        match self.send_to(chaincode, false, DriverMsg::Stop { waiter, reply }) {
            Ok(()) => {}
            Err(SupportError::ShuttingDown { .. }) => return Ok(()),
            Err(other) => return Err(other),
        }
        let _ = answer.await;
        Ok(())
    }

    /// Every chaincode the runtime knows, by name.
    pub fn status(&self) -> Vec<ChaincodeStatus> {
        let registry = self.inner.registry.lock();
        let mut all: Vec<ChaincodeStatus> = registry
            .iter()
            .map(|(chaincode, entry)| {
                let status = entry.status.lock();
                ChaincodeStatus {
                    chaincode: chaincode.clone(),
                    phase: status.phase,
                    generation: status.generation,
                    executor: status.executor,
                    uptime: status.ready_since.map(|since| since.elapsed()),
                    last_error: status.last_error.clone(),
                }
            })
            .collect();
        all.sort_by(|a, b| a.chaincode.cmp(&b.chaincode));
        all
    }

    /// Stops every runtime (waiting at most `grace` for them), fails every
    /// waiter with a clear error, and ends every driver. New calls fail with
    /// [`SupportError::ShuttingDown`].
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let names: Vec<ChaincodeName> = self.inner.registry.lock().keys().cloned().collect();
        let stops = names.iter().map(|name| {
            let (reply, answer) = oneshot::channel();
            let waiter = WaiterId(self.inner.next_id());
            if let Some(entry) = self.inner.registry.lock().get(name) {
                let _ = entry.tx.send(DriverMsg::Stop { waiter, reply });
            }
            answer
        });
        let all_stopped = futures::future::join_all(stops);
        if tokio::time::timeout(grace, all_stopped).await.is_err() {
            warn!(?grace, "some runtimes did not stop within the grace period");
        }
        let entries: Vec<Entry> = self.inner.registry.lock().drain().map(|(_, e)| e).collect();
        for entry in &entries {
            let _ = entry.tx.send(DriverMsg::Shutdown);
        }
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_err()
        {
            warn!("some runtime tasks did not end within the grace period");
        }
    }

    /// Sends a message to the driver of `chaincode`, creating it if asked.
    fn send_to(
        &self,
        chaincode: &ChaincodeName,
        create: bool,
        message: DriverMsg,
    ) -> Result<(), SupportError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(SupportError::ShuttingDown {
                chaincode: chaincode.to_string(),
            });
        }
        let mut registry = self.inner.registry.lock();
        if let Some(entry) = registry.get(chaincode) {
            // Sent under the lock: the driver cannot leave before reading it.
            let _ = entry.tx.send(message);
            return Ok(());
        }
        if !create {
            // Nothing to stop: answer at once.
            if let DriverMsg::Stop { reply, .. } = message {
                let _ = reply.send(());
            }
            return Ok(());
        }
        let limit = self.inner.config.max_chaincodes;
        if registry.len() >= limit {
            return Err(SupportError::TooManyChaincodes {
                chaincode: chaincode.to_string(),
                limit,
            });
        }
        let entry = self.spawn_driver(chaincode);
        let _ = entry.tx.send(message);
        registry.insert(chaincode.clone(), entry);
        Ok(())
    }

    fn spawn_driver(&self, chaincode: &ChaincodeName) -> Entry {
        let system = self.is_system(chaincode);
        let executor = self.executor_for(chaincode);
        let config = Config {
            startup_timeout: self.inner.config.effective_startup_timeout(),
            dev_mode: self.inner.config.mode == Mode::Dev && !system,
            keepalive: self.inner.config.keepalive_interval(),
        };
        let status = Arc::new(Mutex::new(EntryStatus {
            phase: Phase::Idle,
            generation: Generation(0),
            executor: executor.kind(),
            ready_since: None,
            last_error: None,
        }));
        let (tx, inbox) = mpsc::unbounded_channel();
        let id = self.inner.next_id();
        let driver = Driver::new(
            chaincode.clone(),
            self.inner.clone(),
            executor,
            system,
            config,
            inbox,
            tx.clone(),
            status.clone(),
            id,
        );
        self.inner.tasks.spawn(driver.run());
        Entry { id, tx, status }
    }

    /// Serves one chaincode stream: `inbound` is what the chaincode sends;
    /// the returned stream is what the peer sends back. This is the whole of
    /// `protos.ChaincodeSupport/Register`, usable without a socket.
    ///
    /// A stream handed over here is trusted as the peer's own (in-process):
    /// no TLS binding is checked. Network streams come through
    /// [`Self::serve`], which checks them.
    pub fn connect<S>(&self, inbound: S) -> ReceiverStream<Result<ChaincodeMessage, tonic::Status>>
    where
        S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + Unpin + 'static,
    {
        self.connect_from(inbound, StreamOrigin::InProcess)
    }

    /// Serves one chaincode stream that arrived from `origin`.
    pub(crate) fn connect_from<S>(
        &self,
        inbound: S,
        origin: StreamOrigin,
    ) -> ReceiverStream<Result<ChaincodeMessage, tonic::Status>>
    where
        S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(256);
        let support = self.clone();
        self.inner
            .tasks
            .spawn(async move { support.serve_stream(inbound, tx, origin).await });
        ReceiverStream::new(rx)
    }

    async fn serve_stream<S>(
        self,
        mut inbound: S,
        outbound: mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>,
        origin: StreamOrigin,
    ) where
        S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send + Unpin + 'static,
    {
        let refuse = |reason: String| {
            let outbound = outbound.clone();
            async move {
                warn!(%reason, "chaincode stream refused");
                let _ = outbound.send(Ok(ChaincodeMessage::error("", reason))).await;
            }
        };
        let limit = self.inner.config.effective_startup_timeout();
        let first = match tokio::time::timeout(limit, inbound.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(status))) => {
                if let Some(answer) = server::inbound_failure(&status, self.config(), None) {
                    let _ = outbound.send(Err(answer)).await;
                }
                return;
            }
            Ok(None) => {
                debug!("{}", FirstMessageError::Closed);
                return;
            }
            Err(_) => return refuse(FirstMessageError::TimedOut(limit).to_string()).await,
        };
        let chaincode = match stream::validate_first(&first) {
            Ok(chaincode) => chaincode,
            Err(error) => return refuse(error.to_string()).await,
        };
        let dev = self.inner.config.mode == Mode::Dev && !self.is_system(&chaincode);
        if let Some(tls) = &self.inner.tls {
            let now = tokio::time::Instant::now().into_std();
            if let Err(refused) = tls.admit(&origin, &chaincode, dev, now) {
                // Before the driver hears of it: the real launch is untouched.
                warn!(%chaincode, reason = %refused, "register refused: the client certificate does not vouch for this chaincode");
                let text = refused.to_string();
                let _ = outbound.send(Ok(ChaincodeMessage::error("", text))).await;
                return;
            }
        }
        let conn = StreamConn::new(
            StreamId(self.inner.next_id()),
            chaincode.clone(),
            outbound.clone(),
        );
        let limit = self.inner.config.max_chaincodes;
        let driver = {
            let mut registry = self.inner.registry.lock();
            let driver = if self.inner.shutting_down.load(Ordering::SeqCst) {
                Err(format!("register: the peer is shutting down ({chaincode})"))
            } else if let Some(entry) = registry.get(&chaincode) {
                Ok(entry.tx.clone())
            } else if dev && registry.len() >= limit {
                Err(format!(
                    "register {chaincode} refused: the peer already knows {limit} chaincodes"
                ))
            } else if dev {
                let entry = self.spawn_driver(&chaincode);
                let tx = entry.tx.clone();
                registry.insert(chaincode.clone(), entry);
                Ok(tx)
            } else {
                Err(format!(
                    "register: no launch is waiting for chaincode {chaincode}"
                ))
            };
            // Sent under the registry lock: a driver retires only under it,
            // so the REGISTER cannot fall between an entry and its removal.
            driver.and_then(|tx| {
                tx.send(DriverMsg::Register { conn: conn.clone() })
                    .map(|()| tx)
                    .map_err(|_| format!("register: chaincode {chaincode} is going away, retry"))
            })
        };
        let driver = match driver {
            Ok(driver) => driver,
            Err(reason) => return refuse(reason).await,
        };
        origin.accepted();
        loop {
            tokio::select! {
                biased;
                () = conn.closed() => break,
                next = inbound.next() => match next {
                    Some(Ok(message)) => self.on_inbound(&conn, message).await,
                    Some(Err(status)) => {
                        if let Some(answer) = server::inbound_failure(&status, self.config(), Some(&chaincode)) {
                            let _ = outbound.send(Err(answer)).await;
                        }
                        break;
                    }
                    None => break,
                },
            }
        }
        conn.close();
        let _ = driver.send(DriverMsg::StreamClosed { stream: conn.id });
    }

    async fn on_inbound(&self, conn: &StreamConn, message: ChaincodeMessage) {
        match stream::classify(&message) {
            Inbound::Reply { txid } => {
                if !conn.deliver(message) {
                    debug!(%txid, "reply for a transaction nobody waits for");
                }
            }
            Inbound::State { txid, op } => {
                let answer = if conn.is_pending(&txid) {
                    stream::answer_state(self.inner.state.as_ref(), &conn.chaincode, &txid, op)
                } else {
                    ChaincodeMessage::error(&txid, format!("no transaction {txid} in progress"))
                };
                conn.send(answer).await;
            }
            Inbound::Keepalive => {}
            Inbound::Refuse { txid, reason } => {
                debug!(%txid, %reason, "chaincode request refused");
                conn.send(ChaincodeMessage::error(&txid, reason)).await;
            }
        }
    }

    /// The registry size, for tests that check nothing is left behind.
    pub fn known_chaincodes(&self) -> usize {
        self.inner.registry.lock().len()
    }

    /// Whether [`Self::shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_peer() -> ChaincodeSupport {
        ChaincodeSupport::builder(SupportConfig::default()).build()
    }

    #[tokio::test]
    async fn unknown_names_leave_no_driver_task_behind() {
        let support = unknown_peer();
        let names: Vec<ChaincodeName> = (0..2_000)
            .map(|i| format!("ghost{i}:1.0").parse().unwrap())
            .collect();
        for chunk in names.chunks(250) {
            let results =
                futures::future::join_all(chunk.iter().map(|cc| support.launch(cc))).await;
            assert!(results.iter().all(Result::is_err));
        }
        // Every driver ends on its own once its caller is answered.
        let settled = tokio::time::timeout(Duration::from_secs(20), async {
            while !support.inner.tasks.is_empty() || support.known_chaincodes() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "{} tasks, {} entries left",
            support.inner.tasks.len(),
            support.known_chaincodes()
        );
    }

    #[tokio::test]
    async fn an_entry_with_mail_is_not_retired() {
        let support = unknown_peer();
        let cc: ChaincodeName = "kept:1.0".parse().unwrap();
        let (reply, _answer) = oneshot::channel();
        support
            .send_to(
                &cc,
                true,
                DriverMsg::Stop {
                    waiter: WaiterId(0),
                    reply,
                },
            )
            .unwrap();
        let id = support
            .inner
            .registry
            .lock()
            .get(&cc)
            .map(|e| e.id)
            .unwrap();
        // A message reached the driver meanwhile: the entry stays.
        assert!(!support.inner.retire(&cc, id, Phase::Idle, || false));
        assert_eq!(support.known_chaincodes(), 1);
        // A stale id never removes a newer entry of the same name.
        assert!(support.inner.retire(&cc, id + 1_000, Phase::Idle, || true));
        assert_eq!(support.known_chaincodes(), 1);
    }
}
