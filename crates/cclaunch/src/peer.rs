//! `cclaunch peer`: a Fabric-free chaincode development peer. Serves
//! `protos.ChaincodeSupport/Register` and the admin API until SIGINT or
//! SIGTERM, then stops every runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chaincode_support::{ChaincodeSupport, FsSpecStore, PeerTls};
use executor::Executor;
use executor::docker::{DockerConfig, DockerExecutor};
use executor::inproc::InprocExecutor;
use executor::process::{ProcessConfig, ProcessExecutor};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::admin::AdminService;
use crate::admin::listen::{self, AdminListeners};
use crate::chaincodes;
use crate::config::{ExecutorName, ModeName, PeerConfig};
use crate::error::CliError;
use crate::output::Output;
use crate::state;

/// `cclaunch peer`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// The config file (TOML; keys mirror Fabric's core.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where chaincode registers (`chaincode.listenAddress`) [default: 127.0.0.1:7052].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The state directory: admin socket, CA (`peer.fileSystemPath`)
    /// [default: $CCLAUNCH_HOME, else $XDG_STATE_HOME/cclaunch, else ~/.local/state/cclaunch].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also serve the admin API on TCP HOST:PORT, always with mutual TLS
    /// (`admin.listenAddress`) [default: the Unix socket only].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Dev mode: never start chaincode; accept registrations of any name.
    #[arg(long)]
    pub dev: bool,
    /// Mutual TLS on the chaincode listener (`peer.tls.enabled`) [default: on in net mode, off in dev mode].
    #[arg(long, conflicts_with = "no_tls")]
    pub tls: bool,
    /// Plaintext chaincode listener: any local process may then register
    /// as a chaincode being launched (see docs/security.md).
    #[arg(long)]
    pub no_tls: bool,
    /// The executor of user chaincode (`chaincode.executor`) [default: process].
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorName>,
    /// Where packages (`{name}.{version}`) are read [default: ./packages, or {peer.fileSystemPath or --state-dir}/chaincodes].
    #[arg(long, value_name = "DIR")]
    pub packages: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (`metrics.listenAddress`).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Print the effective configuration (TOML) and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl PeerArgs {
    /// The file's settings with the flags on top.
    pub fn effective_config(&self) -> Result<PeerConfig, CliError> {
        let mut config = match &self.config {
            Some(path) => PeerConfig::load(path)?,
            None => PeerConfig::default(),
        };
        // Flags are checked as the file's keys are, before anything binds.
        for (flag, value) in [("--listen", &self.listen), ("--metrics", &self.metrics)] {
            if let Some(reason) = value
                .as_deref()
                .and_then(|v| crate::config::host_port_problem(v).err())
            {
                return Err(CliError::usage(format!(
                    "{flag} {:?}: {reason}",
                    value.as_deref().unwrap_or_default()
                ))
                .with_hint(format!(
                    "write {flag} HOST:PORT, e.g. 127.0.0.1:0 for a free port"
                )));
            }
        }
        if let Some(listen) = &self.listen {
            config.chaincode.listen_address.clone_from(listen);
        }
        if let Some(dir) = &self.state_dir {
            config.peer.file_system_path = Some(dir.clone());
        }
        if let Some(admin) = &self.admin_listen {
            config.admin.listen_address = Some(admin.clone());
        }
        if self.dev {
            config.chaincode.mode = ModeName::Dev;
        }
        if self.tls {
            config.peer.tls.enabled = Some(true);
        }
        if self.no_tls {
            config.peer.tls.enabled = Some(false);
        }
        if let Some(executor) = self.executor {
            config.chaincode.executor = executor;
        }
        if let Some(metrics) = &self.metrics {
            config.metrics.listen_address = Some(metrics.clone());
        }
        Ok(config)
    }
}

/// Binds `addr`, saying what it was for when it fails.
pub async fn bind(addr: &str, what: &str, flag: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|e| {
        CliError::new(format!(
            "cannot listen on {addr} for {what}: {}",
            crate::error::root_cause(&e)
        ))
        .with_hint(format!(
            "pick another address with {flag} ADDR (127.0.0.1:0 picks a free port)"
        ))
    })
}

/// The address chaincode should dial to reach `local` (an unspecified IP
/// becomes loopback).
pub fn dialable(local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), local.port()).to_string()
    } else {
        local.to_string()
    }
}

/// Runs the peer until SIGINT or SIGTERM.
pub async fn run(args: PeerArgs, out: Output) -> Result<(), CliError> {
    let config = args.effective_config()?;
    if args.print_config {
        return crate::output::outln!("{}", config.to_toml().trim_end());
    }
    // A plaintext TCP admin API is refused before anything is created.
    let admin_tcp = config
        .admin
        .listen_address
        .as_deref()
        .map(listen::tcp_listen_address)
        .transpose()?;
    let state_dir = config.state_dir()?;
    state::prepare(&state_dir)?;
    let packages = args
        .packages
        .clone()
        .unwrap_or_else(|| config.packages_dir());

    // Signals first, so that a SIGTERM during start-up is not lost.
    let signal_err =
        |e: std::io::Error| CliError::new(format!("cannot install signal handlers: {e}"));
    let mut sigterm = signal(SignalKind::terminate()).map_err(signal_err)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(signal_err)?;

    let chaincode_listener = bind(
        &config.chaincode.listen_address,
        "chaincode registration",
        "--listen",
    )
    .await?;
    let admin_listeners = AdminListeners::bind(&state_dir, admin_tcp.as_deref()).await?;
    let metrics_listener = match &config.metrics.listen_address {
        Some(addr) => Some(bind(addr, "metrics", "--metrics").await?),
        None => None,
    };
    let local = |l: &TcpListener| {
        l.local_addr()
            .map_err(|e| CliError::new(format!("cannot read a listening address: {e}")))
    };
    let chaincode_addr = dialable(local(&chaincode_listener)?);
    let admin_socket = admin_listeners.socket_path().display().to_string();
    let admin_tcp_addr = admin_listeners.tcp_addr().map(|a| a.to_string());
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(local(l)?.to_string()),
        None => None,
    };

    let support_config = config.support_config(chaincode_addr.clone());
    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register(
            chaincodes::COUNTER,
            Arc::new(|| Arc::new(chaincodes::Counter) as _),
        )
        .map_err(|e| CliError::new(e.to_string()))?;
    let mut builder = ChaincodeSupport::builder(support_config.clone())
        .inproc(inproc)
        .spec_store(Arc::new(FsSpecStore::new(packages.clone())));
    let dev_identity = if config.tls_enabled() {
        let (peer_tls, dev_identity) = chaincode_tls(&config, &state_dir, &chaincode_addr)?;
        builder = builder.tls(peer_tls);
        dev_identity
    } else {
        None
    };
    let executor_name = match config.chaincode.mode {
        ModeName::Dev => "dev".to_owned(),
        ModeName::Net => config.chaincode.executor.to_string(),
    };
    if config.chaincode.mode == ModeName::Net {
        let executor: Arc<dyn Executor> = match config.chaincode.executor {
            ExecutorName::Process => {
                let mut process = ProcessConfig::default();
                if let Some(dir) = config.runtimes_dir() {
                    process.work_dir = dir;
                }
                Arc::new(ProcessExecutor::new(process))
            }
            ExecutorName::Docker => {
                Arc::new(connect_docker(&config, support_config.stop_timeout).await?)
            }
        };
        builder = builder.executor(executor);
    }
    let support = builder.build();

    let shutdown = CancellationToken::new();
    let register_server = tokio::spawn({
        let support = support.clone();
        let shutdown = shutdown.clone();
        async move {
            support
                .serve(chaincode_listener, shutdown.cancelled_owned())
                .await
        }
    });
    let admin_server = admin_listeners.serve(
        AdminService::server(support.clone(), shutdown.clone()),
        shutdown.clone(),
    );
    let metrics_server = metrics_listener.map(|listener| {
        tokio::spawn(crate::metrics_http::serve(
            listener,
            support.clone(),
            shutdown.clone(),
        ))
    });

    out.peer_started(
        &chaincode_addr,
        &admin_socket,
        admin_tcp_addr.as_deref(),
        metrics_addr.as_deref(),
        &executor_name,
        &packages,
    );
    if let Some(identity) = &dev_identity {
        out.dev_tls(identity);
    }

    let signal_name = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    out.peer_stopping(signal_name);
    let grace = support_config.stop_timeout;
    support.shutdown(grace).await;
    shutdown.cancel();
    let servers_done = async {
        let register = register_server.await;
        let admin = admin_server.wait().await;
        if let Some(metrics) = metrics_server {
            let _ = metrics.await;
        }
        (register, admin)
    };
    match tokio::time::timeout(Duration::from_secs(10), servers_done).await {
        Ok((Ok(Ok(())), Ok(()))) => {}
        Ok((register, admin)) => {
            tracing::warn!(?register, ?admin, "a server ended with an error");
        }
        Err(_) => tracing::warn!("servers did not stop within 10s"),
    }
    out.peer_stopped();
    Ok(())
}

/// The chaincode listener's TLS: a server certificate from the peer's CA for
/// loopback and the address chaincode dials. In dev mode, also a client
/// identity for the developer's chaincode, written into the state directory
/// (dev mode accepts any client certificate of the peer's CA).
fn chaincode_tls(
    config: &PeerConfig,
    state_dir: &Path,
    chaincode_addr: &str,
) -> Result<(PeerTls, Option<state::DevIdentity>), CliError> {
    let ca = Arc::new(state::peer_ca(state_dir)?);
    let dialed = chaincode_addr
        .rsplit_once(':')
        .map_or(chaincode_addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut hosts = vec!["127.0.0.1", "localhost", "::1"];
    if !hosts.contains(&dialed) {
        hosts.push(dialed);
    }
    let tls = PeerTls::new(ca, &hosts)
        .map_err(|e| CliError::new(format!("cannot set up TLS for the chaincode listener: {e}")))?;
    let dev_identity = match config.chaincode.mode {
        ModeName::Dev => Some(state::write_dev_identity(&tls, state_dir)?),
        ModeName::Net => None,
    };
    Ok((tls, dev_identity))
}

/// Connects to the Docker Engine of the config and removes containers an
/// earlier run of this peer left behind.
pub async fn connect_docker(
    config: &PeerConfig,
    stop_timeout: Duration,
) -> Result<DockerExecutor, CliError> {
    let docker_config = DockerConfig {
        endpoint: config.vm.endpoint.clone(),
        peer_id: config.peer.id.clone(),
        network_id: config.peer.network_id.clone(),
        network_mode: config.vm.docker.network_mode.clone(),
        base_image: config.vm.docker.base_image.clone(),
        // The container's own grace; the runtime's stop timeout bounds the whole stop.
        stop_timeout: stop_timeout.min(DockerConfig::default().stop_timeout),
        ..DockerConfig::default()
    };
    let docker = DockerExecutor::connect(docker_config).await.map_err(|e| {
        CliError::new(e.to_string())
            .with_hint("start the Docker Engine, set vm.endpoint, or use --executor process")
    })?;
    match docker.reap_orphans().await {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(
                count = removed.len(),
                "removed orphaned chaincode containers"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not reap orphaned containers"),
    }
    Ok(docker)
}
