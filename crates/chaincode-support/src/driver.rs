//! The driver: one task per chaincode that owns its `launch_fsm::Launch`,
//! feeds it inputs, performs its actions and sleeps until its next timeout.
//!
//! It is the only place the machine is touched, so the start and stop of
//! one chaincode never overlap, and chaincodes never wait on each other.
//!
//! A driver also ends on its own, taking its registry entry and metric
//! series with it, when its chaincode is quiet (idle, nobody waiting,
//! nothing running or connected) and either never got past the spec lookup
//! (an unknown name) or stayed quiet for the idle eviction delay. This is
//! registry bookkeeping, not a launch rule, so it lives here and not in
//! `launch_fsm`: the machine would be the same whether the entry is kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeMessage, ChaincodeName};
use chaincode_tls::CertHash;
use executor::{
    ClientTls, EventSink, Executor, ExecutorError, RuntimeEvent, RuntimeEventKind, StartRequest,
};
use launch_fsm::{
    Action, Config, Generation, Input, Launch, LaunchError, Phase, SpecSource, StreamId, WaiterId,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::SupportError;
use crate::stream::StreamConn;
use crate::support::{Inner, ReadyHandle, SupportEvent, SupportEventKind};

/// How many lines of a runtime's output are kept for error reports.
const KEPT_OUTPUT_LINES: usize = 20;
/// How many of them an error carries.
const REPORTED_OUTPUT_LINES: usize = 5;

/// What the driver's inbox carries.
pub(crate) enum DriverMsg {
    Launch {
        waiter: WaiterId,
        spec: Option<ChaincodeDeploymentSpec>,
        reply: oneshot::Sender<Result<ReadyHandle, SupportError>>,
    },
    Stop {
        waiter: WaiterId,
        reply: oneshot::Sender<()>,
    },
    Register {
        conn: Arc<StreamConn>,
    },
    StreamClosed {
        stream: StreamId,
    },
    SpecLookup {
        generation: Generation,
        result: Result<ChaincodeDeploymentSpec, String>,
    },
    RuntimeStopped {
        generation: Generation,
        result: Result<(), ExecutorError>,
    },
    Shutdown,
}

/// What `status()` shows of one chaincode; the driver keeps it current.
#[derive(Debug, Clone)]
pub(crate) struct EntryStatus {
    pub(crate) phase: Phase,
    pub(crate) generation: Generation,
    pub(crate) executor: &'static str,
    pub(crate) ready_since: Option<StdInstant>,
    pub(crate) last_error: Option<String>,
}

pub(crate) struct Driver {
    chaincode: ChaincodeName,
    inner: Arc<Inner>,
    executor: Arc<dyn Executor>,
    system: bool,
    machine: Launch,
    inbox: mpsc::UnboundedReceiver<DriverMsg>,
    self_tx: mpsc::UnboundedSender<DriverMsg>,
    runtime_rx: mpsc::UnboundedReceiver<RuntimeEvent>,
    runtime_tx: mpsc::UnboundedSender<RuntimeEvent>,
    waiters: HashMap<WaiterId, oneshot::Sender<Result<ReadyHandle, SupportError>>>,
    stop_waiters: HashMap<WaiterId, oneshot::Sender<()>>,
    streams: HashMap<StreamId, Arc<StreamConn>>,
    ready: Option<Arc<StreamConn>>,
    spec: Option<ChaincodeDeploymentSpec>,
    start_task: Option<JoinHandle<()>>,
    last_output: VecDeque<String>,
    recorded: Generation,
    published: (Phase, Generation),
    last_exit: Option<(Generation, String)>,
    launch_span: tracing::Span,
    status: Arc<Mutex<EntryStatus>>,
    /// This driver's registry entry (a later entry of the same name differs).
    entry_id: u64,
    /// Whether a runtime was ever asked to start: such an entry is kept
    /// (its last error is useful) until idle eviction.
    ever_started: bool,
    /// Since when the chaincode has been quiet.
    quiet_since: Option<std::time::Instant>,
    /// Whether the entry already left the registry (and its metrics).
    retired: bool,
    /// The client certificate bound for a launch, while its generation lives.
    launch_cert: Option<(Generation, CertHash)>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        chaincode: ChaincodeName,
        inner: Arc<Inner>,
        executor: Arc<dyn Executor>,
        system: bool,
        config: Config,
        inbox: mpsc::UnboundedReceiver<DriverMsg>,
        self_tx: mpsc::UnboundedSender<DriverMsg>,
        status: Arc<Mutex<EntryStatus>>,
        entry_id: u64,
    ) -> Self {
        let (runtime_tx, runtime_rx) = mpsc::unbounded_channel();
        Self {
            chaincode,
            inner,
            executor,
            system,
            machine: Launch::new(config),
            inbox,
            self_tx,
            runtime_rx,
            runtime_tx,
            waiters: HashMap::new(),
            stop_waiters: HashMap::new(),
            streams: HashMap::new(),
            ready: None,
            spec: None,
            start_task: None,
            last_output: VecDeque::new(),
            recorded: Generation(0),
            published: (Phase::Idle, Generation(0)),
            last_exit: None,
            launch_span: tracing::Span::none(),
            status,
            entry_id,
            ever_started: false,
            quiet_since: None,
            retired: false,
            launch_cert: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let span = info_span!("chaincode", chaincode = %self.chaincode);
        async move {
            self.inner.metrics.phase_changed(None, Some(Phase::Idle));
            loop {
                let deadline = self.machine.poll_timeout();
                let evict_at = self.eviction_deadline();
                tokio::select! {
                    // A backend reports an exit before its stop returns:
                    // take its events first so they are seen in that order.
                    biased;
                    Some(event) = self.runtime_rx.recv() => self.on_runtime_event(event),
                    message = self.inbox.recv() => match message {
                        None | Some(DriverMsg::Shutdown) => break,
                        Some(message) => self.on_message(message),
                    },
                    () = sleep_until(deadline), if deadline.is_some() => {
                        // Compare with the clock rather than trust the wake-up.
                        self.machine.handle_timeout(now());
                        self.publish();
                    }
                    () = sleep_until(evict_at), if evict_at.is_some() => {
                        if evict_at.is_some_and(|at| now() >= at) && self.retire("idle") {
                            break;
                        }
                    }
                }
                self.drain().await;
                self.publish();
                self.track_quiet();
                if self.never_got_past_lookup() && self.retire("unknown") {
                    break;
                }
            }
            self.finish().await;
        }
        .instrument(span)
        .await;
    }

    fn feed(&mut self, input: Input) {
        match self.machine.handle(now(), input) {
            // Each input moves the machine at most one phase: publishing here
            // shows every phase, even those one drain passes through.
            Ok(()) => self.publish(),
            Err(rejected) => debug!(%rejected, "input ignored"),
        }
    }

    fn on_message(&mut self, message: DriverMsg) {
        match message {
            DriverMsg::Launch {
                waiter,
                spec,
                reply,
            } => {
                let source = if spec.is_some() || self.system {
                    SpecSource::Provided
                } else {
                    SpecSource::Lookup
                };
                if spec.is_some() {
                    self.spec = spec;
                }
                self.waiters.insert(waiter, reply);
                self.feed(Input::Launch {
                    waiter,
                    spec: source,
                });
            }
            DriverMsg::Stop { waiter, reply } => {
                self.stop_waiters.insert(waiter, reply);
                self.feed(Input::Stop { waiter });
            }
            DriverMsg::Register { conn } => {
                let stream = conn.id;
                self.streams.insert(stream, conn);
                self.feed(Input::Register { stream });
            }
            DriverMsg::StreamClosed { stream } => {
                self.feed(Input::StreamClosed { stream });
                self.forget_stream(stream);
            }
            DriverMsg::SpecLookup { generation, result } => match result {
                Ok(spec) => {
                    self.spec = Some(spec);
                    self.feed(Input::SpecResolved { generation });
                }
                Err(reason) => self.feed(Input::SpecNotFound { generation, reason }),
            },
            DriverMsg::RuntimeStopped { generation, result } => {
                if let Err(error) = result {
                    warn!(%error, "stopping the runtime failed");
                    self.remember_output(format!("stop failed: {error}"));
                }
                self.feed(Input::RuntimeStopped { generation });
            }
            DriverMsg::Shutdown => {}
        }
    }

    fn on_runtime_event(&mut self, event: RuntimeEvent) {
        let generation = event.generation;
        match event.kind {
            RuntimeEventKind::Started => self.feed(Input::RuntimeStarted { generation }),
            RuntimeEventKind::Failed(reason) => {
                self.feed(Input::RuntimeStartFailed { generation, reason })
            }
            RuntimeEventKind::Exited(status) => {
                info!(%generation, %status, "runtime exited");
                // A runtime the peer stopped did not fail: its status is no
                // error to show. Any other exit may come after the stream
                // close that already moved the machine on: keep it for
                // `status()` either way.
                if !status.is_stopped_by_peer() {
                    self.last_exit = Some((generation, status.to_string()));
                    self.status.lock().last_error = self.error_summary();
                }
                self.feed(Input::RuntimeExited {
                    generation,
                    status: status.to_string(),
                })
            }
            RuntimeEventKind::Log { line, .. } => self.remember_output(line),
            RuntimeEventKind::Progress(line) => {
                info!(%generation, progress = %line, "runtime progress");
                self.inner.emit(SupportEvent {
                    chaincode: self.chaincode.clone(),
                    kind: SupportEventKind::Progress(line),
                });
            }
            _ => {}
        }
    }

    fn remember_output(&mut self, line: String) {
        if self.last_output.len() == KEPT_OUTPUT_LINES {
            self.last_output.pop_front();
        }
        self.last_output.push_back(line);
    }

    fn forget_stream(&mut self, stream: StreamId) {
        if let Some(conn) = self.streams.remove(&stream) {
            conn.close();
        }
        if self.ready.as_ref().is_some_and(|conn| conn.id == stream) {
            self.ready = None;
        }
    }

    /// Performs every action, feeding back what the actions themselves
    /// produce (READY sent, a send that failed), until the machine is quiet.
    async fn drain(&mut self) {
        let mut follow_ups = VecDeque::new();
        loop {
            while let Some(action) = self.machine.poll_action() {
                self.perform(action, &mut follow_ups).await;
            }
            match follow_ups.pop_front() {
                Some(input) => self.feed(input),
                None => break,
            }
        }
    }

    async fn perform(&mut self, action: Action, follow_ups: &mut VecDeque<Input>) {
        match action {
            Action::ResolveSpec { generation } => {
                let inner = self.inner.clone();
                let chaincode = self.chaincode.clone();
                let reply = self.self_tx.clone();
                self.inner.tasks.spawn(async move {
                    let result = inner.specs.lookup(&chaincode).await;
                    let _ = reply.send(DriverMsg::SpecLookup { generation, result });
                });
            }
            Action::StartRuntime { generation } => {
                self.ever_started = true;
                self.start_runtime(generation)
            }
            Action::SendRegistered { stream, .. } => {
                if !self.send(stream, ChaincodeMessage::registered()).await {
                    follow_ups.push_back(Input::StreamClosed { stream });
                }
            }
            Action::SendReady { stream, .. } => {
                if self.send(stream, ChaincodeMessage::ready()).await {
                    self.ready = self.streams.get(&stream).cloned();
                    follow_ups.push_back(Input::ReadySent { stream });
                } else {
                    follow_ups.push_back(Input::StreamClosed { stream });
                }
            }
            Action::SendKeepalive { stream } => {
                if !self.send(stream, ChaincodeMessage::keepalive()).await {
                    follow_ups.push_back(Input::StreamClosed { stream });
                }
            }
            Action::RejectRegister { stream, reason } => {
                if let Some(conn) = self.streams.remove(&stream) {
                    warn!(%stream, %reason, "register refused");
                    let text = format!("register refused for {}: {reason}", self.chaincode);
                    conn.send(ChaincodeMessage::error("", text)).await;
                    conn.close();
                }
            }
            Action::CloseStream { stream } => self.forget_stream(stream),
            Action::StopRuntime { generation } => self.stop_runtime(generation).await,
            Action::CompleteLaunch { waiters, result } => {
                // Callers see the new phase in `status()` once woken.
                self.publish();
                self.complete_launch(waiters, result)
            }
            Action::CompleteStop { waiters } => {
                self.publish();
                for waiter in waiters {
                    if let Some(reply) = self.stop_waiters.remove(&waiter) {
                        let _ = reply.send(());
                    }
                }
            }
        }
    }

    async fn send(&self, stream: StreamId, message: ChaincodeMessage) -> bool {
        match self.streams.get(&stream) {
            Some(conn) => conn.send(message).await,
            None => false,
        }
    }

    fn start_runtime(&mut self, generation: Generation) {
        let sink = EventSink::new(generation, self.runtime_tx.clone());
        let tls = match self.issue_launch_identity(generation) {
            Ok(tls) => tls,
            Err(reason) => {
                warn!(%generation, %reason, "no client certificate for the launch");
                sink.send(RuntimeEventKind::Failed(reason));
                return;
            }
        };
        let request = StartRequest {
            chaincode: self.chaincode.clone(),
            generation,
            code_package: self
                .spec
                .as_ref()
                .map(|spec| spec.code_package.clone())
                .unwrap_or_default(),
            peer_address: self.inner.config.peer_address.clone(),
            env: self.inner.config.chaincode_env.clone(),
            tls,
        };
        let executor = self.executor.clone();
        info!(%generation, executor = executor.kind(), "starting runtime");
        self.start_task = Some(tokio::spawn(async move {
            match executor.start(request, sink.clone()).await {
                Ok(()) => sink.send(RuntimeEventKind::Started),
                Err(error) => sink.send(RuntimeEventKind::Failed(error.to_string())),
            }
        }));
    }

    /// A fresh client certificate for this launch, bound to the chaincode,
    /// when TLS is on and the runtime dials the peer over the network
    /// (in-process runtimes use the peer's own streams; dev mode starts none).
    ///
    /// Issued inline: an ECDSA P-256 key and signature take well under a
    /// millisecond in release builds, less than a spawn_blocking round trip.
    fn issue_launch_identity(
        &mut self,
        generation: Generation,
    ) -> Result<Option<ClientTls>, String> {
        let Some(tls) = &self.inner.tls else {
            return Ok(None);
        };
        if self.system || matches!(self.executor.kind(), "inproc" | "dev") {
            return Ok(None);
        }
        if let Some((_, previous)) = self.launch_cert.take() {
            tls.unbind(&previous);
        }
        let (identity, hash) = tls
            .issue_launch(&self.chaincode, now())
            .map_err(|e| format!("cannot issue the launch's tls client certificate: {e}"))?;
        debug!(%generation, %hash, "client certificate bound to the launch");
        self.launch_cert = Some((generation, hash));
        Ok(Some(identity))
    }

    /// Unbinds the launch's certificate once its generation no longer
    /// starts or runs: after that no stream may register with it.
    fn release_launch_cert(&mut self) {
        let live = matches!(
            self.machine.phase(),
            Phase::Starting | Phase::AwaitingRegister | Phase::Registered | Phase::Ready
        );
        let generation = self.machine.generation();
        let ended = match &self.launch_cert {
            Some((bound, _)) => !live || *bound != generation,
            None => false,
        };
        if ended
            && let (Some(tls), Some((bound, hash))) = (&self.inner.tls, self.launch_cert.take())
        {
            debug!(generation = %bound, %hash, "client certificate unbound");
            tls.unbind(&hash);
        }
    }

    async fn stop_runtime(&mut self, generation: Generation) {
        // Never overlap start and stop: a start still running (an image
        // build, say) is cancelled first; the stop then removes whatever it
        // had created.
        if let Some(start) = self.start_task.take() {
            start.abort();
            let _ = start.await;
        }
        let executor = self.executor.clone();
        let chaincode = self.chaincode.clone();
        let reply = self.self_tx.clone();
        let limit = self.inner.config.stop_timeout;
        info!(%generation, "stopping runtime");
        self.inner.tasks.spawn(async move {
            let result = match tokio::time::timeout(limit, executor.stop(&chaincode)).await {
                Ok(result) => result,
                Err(_) => Err(ExecutorError::Stop {
                    chaincode: chaincode.to_string(),
                    reason: format!("no answer within {limit:?}"),
                }),
            };
            let _ = reply.send(DriverMsg::RuntimeStopped { generation, result });
        });
    }

    fn complete_launch(&mut self, waiters: Vec<WaiterId>, result: Result<Generation, LaunchError>) {
        let generation = self.machine.generation();
        // A name whose spec was never found gets no series: unknown names
        // must not grow the metrics.
        let measured = !matches!(
            result,
            Err(LaunchError::Stopped { .. } | LaunchError::NotFound { .. })
        );
        if self.recorded != generation && measured {
            self.recorded = generation;
            let took = self
                .machine
                .launched_at()
                .map(|at| now().saturating_duration_since(at))
                .unwrap_or_default();
            let timed_out = matches!(result, Err(LaunchError::Timeout { .. }));
            self.inner.metrics.launch_finished(
                &self.chaincode.to_string(),
                took,
                result.is_ok(),
                timed_out,
            );
            match &result {
                Ok(_) => info!(%generation, ?took, "chaincode ready"),
                Err(error) => warn!(%generation, %error, "launch failed"),
            }
        }
        let outcome: Result<ReadyHandle, SupportError> = match (result, &self.ready) {
            (Ok(generation), Some(conn)) => Ok(ReadyHandle::new(
                self.inner.clone(),
                conn.clone(),
                generation,
            )),
            (Ok(_), None) => Err(self.launch_error(LaunchError::StreamClosed {
                phase: Phase::Ready,
            })),
            (Err(error), _) => Err(self.launch_error(error)),
        };
        for waiter in waiters {
            if let Some(reply) = self.waiters.remove(&waiter) {
                // A caller that gave up has dropped its receiver: fine.
                let _ = reply.send(outcome.clone());
            }
        }
    }

    fn launch_error(&self, source: LaunchError) -> SupportError {
        let skip = self.last_output.len().saturating_sub(REPORTED_OUTPUT_LINES);
        SupportError::Launch {
            chaincode: self.chaincode.to_string(),
            source,
            last_output: self.last_output.iter().skip(skip).cloned().collect(),
        }
    }

    /// The last failure, with how the runtime of that launch ended if known.
    fn error_summary(&self) -> Option<String> {
        let error = self.machine.last_error().map(ToString::to_string);
        let exit = self
            .last_exit
            .as_ref()
            .filter(|(generation, _)| *generation == self.machine.generation())
            .map(|(_, status)| format!("runtime {status}"));
        match (error, exit) {
            (Some(error), Some(exit)) if !error.contains(&exit) => Some(format!("{error}; {exit}")),
            (Some(error), _) => Some(error),
            (None, exit) => exit,
        }
    }

    /// Publishes a phase change since the last one: status, metrics,
    /// tracing, watchers.
    fn publish(&mut self) {
        self.release_launch_cert();
        let phase = self.machine.phase();
        let generation = self.machine.generation();
        let (phase_before, generation_before) = self.published;
        if phase == phase_before && generation == generation_before {
            return;
        }
        self.published = (phase, generation);
        {
            let mut status = self.status.lock();
            status.phase = phase;
            status.generation = generation;
            status.ready_since = (phase == Phase::Ready).then(StdInstant::now);
            status.last_error = self.error_summary();
        }
        if phase != phase_before {
            self.inner
                .metrics
                .phase_changed(Some(phase_before), Some(phase));
            if generation != generation_before {
                // One span per launch, so a launch's events read together.
                self.launch_span = info_span!("launch", chaincode = %self.chaincode, %generation);
            }
            self.launch_span
                .in_scope(|| info!(from = %phase_before, to = %phase, "phase"));
        }
        self.inner.emit(SupportEvent {
            chaincode: self.chaincode.clone(),
            kind: SupportEventKind::Phase { phase, generation },
        });
    }

    /// Whether nothing runs, connects, waits or is under way: the entry
    /// could go without anyone noticing.
    fn is_quiet(&self) -> bool {
        self.machine.phase() == Phase::Idle
            && self.machine.waiters().is_empty()
            && self.machine.queued() == 0
            && self.machine.stream().is_none()
            && !self.machine.runtime_started()
            && self.machine.poll_timeout().is_none()
            && self.waiters.is_empty()
            && self.stop_waiters.is_empty()
            && self.streams.is_empty()
            && self.ready.is_none()
            && self.start_task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn track_quiet(&mut self) {
        if !self.is_quiet() {
            self.quiet_since = None;
        } else if self.quiet_since.is_none() {
            self.quiet_since = Some(now());
        }
    }

    /// When a quiet entry is evicted, if it is quiet and eviction is on.
    fn eviction_deadline(&self) -> Option<std::time::Instant> {
        let after = self.inner.config.idle_eviction_after()?;
        Some(self.quiet_since? + after)
    }

    /// A name whose only launches failed at the spec lookup: nothing about
    /// it is worth keeping (and a flood of unknown names must leave nothing).
    fn never_got_past_lookup(&self) -> bool {
        !self.ever_started
            && matches!(
                self.machine.last_error(),
                Some(LaunchError::NotFound { .. })
            )
            && self.is_quiet()
    }

    /// Leaves the registry if the chaincode is still quiet and no message
    /// is on its way; true if the driver must now end.
    fn retire(&mut self, why: &'static str) -> bool {
        if !self.is_quiet() {
            return false;
        }
        let inbox = &self.inbox;
        let retired =
            self.inner
                .retire(&self.chaincode, self.entry_id, self.machine.phase(), || {
                    inbox.is_empty()
                });
        if retired {
            debug!(reason = why, "entry forgotten");
            self.retired = true;
        }
        retired
    }

    /// The driver is going away (shutdown or retirement): nothing may be
    /// left behind.
    async fn finish(mut self) {
        if let (Some(tls), Some((_, hash))) = (&self.inner.tls, self.launch_cert.take()) {
            tls.unbind(&hash);
        }
        if let Some(start) = self.start_task.take() {
            start.abort();
            let _ = start.await;
        }
        for (_, conn) in self.streams.drain() {
            conn.close();
        }
        let error = SupportError::ShuttingDown {
            chaincode: self.chaincode.to_string(),
        };
        for (_, reply) in self.waiters.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        for (_, reply) in self.stop_waiters.drain() {
            let _ = reply.send(());
        }
        if !self.retired {
            self.inner
                .metrics
                .phase_changed(Some(self.machine.phase()), None);
        }
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
