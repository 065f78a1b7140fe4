//! The docker backend: each chaincode runs in a container on a Docker Engine
//! (feature `docker`, on by default).
//!
//! # Names and labels
//!
//! - Container: [`container_name`] — Fabric 1.0's rule,
//!   `{network_id}-{peer_id}-{name}-{version}` with every character outside
//!   `[a-zA-Z0-9-_.]` replaced by `-`, lower-cased, and checked against
//!   `^[a-z0-9]+(([._-][a-z0-9]+)+)?$`.
//! - Image: [`image_name`] — the container name, `-`, and the sha256 hex of
//!   the *unsanitised* `{network_id}-{peer_id}-{name}-{version}`, so that
//!   chaincodes which the sanitising makes equal (`My_CC:1.0`, `my_cc:1.0`)
//!   never share an image.
//! - Containers and images carry the labels [`LABEL_PEER`] = peer id and
//!   [`LABEL_CCID`] = `name:version`; [`DockerExecutor::reap_orphans`] finds
//!   a peer's leftovers by the first.
//!
//! # Expected flow of a start
//!
//! 1. Remove a stale container of the same name (stop, then force-remove;
//!    "no such container" is fine).
//! 2. Create the container: image [`image_name`], `cmd` =
//!    [`StartRequest::fabric_args`] (the image's ENTRYPOINT is the chaincode),
//!    env = [`StartRequest::fabric_env`] (TLS files at Fabric's paths under
//!    [`DOCKER_TLS_DIR`]), network mode from the config, labels.
//! 3. If the image is missing, build it from a build context generated in
//!    memory from the code package (see below; progress lines go to the sink
//!    as [`RuntimeEventKind::Progress`]), then create again. A build failure
//!    is [`ExecutorError::Build`] with the builder's own text. An image is
//!    built once: later starts of the same chaincode reuse it.
//! 4. With TLS ([`StartRequest::tls`]), copy the five files of
//!    [`crate::tls_files`] into the created container at
//!    [`DOCKER_TLS_DIR`] (key `0400`, certificates `0444`, owned by the
//!    container's user: root for the images built here, or a numeric
//!    `USER` of the base image). They are never part of the image,
//!    so one image serves every launch, and go with the container.
//! 5. Start it; follow its stdout/stderr into `tracing` (target `chaincode`)
//!    and [`RuntimeEventKind::Log`]; wait for its exit and report
//!    [`ExitStatus::Code`] as the engine gives it, or
//!    [`ExitStatus::Stopped`] around it when the exit came from a stop
//!    (see below).
//!
//! # Build context
//!
//! ```text
//! Dockerfile     FROM scratch (or the configured base image)
//!                COPY chaincode /usr/local/bin/chaincode
//!                COPY files/ /chaincode/          (only if the package has other files)
//!                WORKDIR /chaincode
//!                ENTRYPOINT ["/usr/local/bin/chaincode"]
//! chaincode      the executable from the package (mode 0755)
//! files/…        every other file and directory of the package
//! ```
//!
//! The package is checked as in [`crate::package`] (no links, no device
//! files, nothing outside the root, a `chaincode` executable present). With
//! `FROM scratch` the executable must be statically linked.
//!
//! # Stop
//!
//! A running container first gets a moment to end by itself (a crashing
//! chaincode closes its stream just before it exits; its own code is kept).
//! Then stop with [`DockerConfig::stop_timeout`] (SIGTERM, then SIGKILL), then
//! force-remove; "no such container" is success. An exit during the stop
//! with code 0, 137 or 143 is reported as [`ExitStatus::Stopped`]; any other
//! code is the chaincode's own.
//!
//! # Example
//!
//! ```no_run
//! use executor::docker::{DockerConfig, DockerExecutor};
//!
//! # async fn run() -> Result<(), executor::ExecutorError> {
//! let docker = DockerExecutor::connect(DockerConfig::default()).await?;
//! // At peer start-up, before any launch owns a container:
//! let removed = docker.reap_orphans().await?;
//! println!("removed {} orphaned chaincode containers", removed.len());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, RemoveImageOptions, StartContainerOptions,
    StopContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use chaincode_proto::ChaincodeName;
use futures::StreamExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::package::{self, PackageEntry};
use crate::tls_files::DOCKER_TLS_DIR;
use crate::{
    EventSink, Executor, ExecutorError, ExitStatus, LogStream, RuntimeEventKind, StartRequest,
};

/// Label holding the peer id on every container and image this backend makes.
pub const LABEL_PEER: &str = "org.cclaunch.peer";

/// Label holding the chaincode's `name:version`.
pub const LABEL_CCID: &str = "org.cclaunch.ccid";

/// Label holding the SHA-256 of the code package an image was built from:
/// an image is reused only for the very package it holds.
pub const LABEL_PACKAGE: &str = "org.cclaunch.package-sha256";

/// Where the executable lives inside the image.
const ENTRYPOINT: &str = "/usr/local/bin/chaincode";

/// Longest log line passed on as one event; longer output is split.
const MAX_LINE: usize = 64 * 1024;

/// How long the last log lines may take to arrive after the exit before the
/// exit is reported anyway.
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// How long a stop waits for a container to end by itself before `docker
/// stop` signals it: a chaincode that crashes closes its stream first and
/// exits a moment later, and SIGTERM in that moment would hide its own code.
const EXIT_SETTLE: Duration = Duration::from_millis(250);

/// A container this executor started and has not seen end.
#[derive(Debug)]
struct Tracked {
    /// Its id: a later container of the same name is not this one.
    id: String,
    /// Set when the peer starts stopping it, so that an exit it caused is
    /// reported as [`ExitStatus::Stopped`].
    stop_requested: Arc<AtomicBool>,
}

/// Request timeout of the engine client. Requests that legitimately take
/// long (stop waits up to `stop_timeout`) stay below it; streams (logs, wait,
/// build) only need their headers within it.
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// Docker image references may not be longer than this.
const MAX_IMAGE_NAME: usize = 255;

/// Settings of the [`DockerExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// `unix:///path/to/docker.sock`, a bare socket path, or
    /// `http://host:port` / `tcp://host:port`. `None` = the local defaults
    /// (`DOCKER_HOST`, else `/var/run/docker.sock`).
    pub endpoint: Option<String>,
    /// The peer id in names and in the [`LABEL_PEER`] label.
    pub peer_id: String,
    /// The network id in names.
    pub network_id: String,
    /// The containers' network mode (`host` lets a chaincode reach a peer
    /// listening on 127.0.0.1).
    pub network_mode: String,
    /// Base image of chaincode images; `None` = `FROM scratch`.
    pub base_image: Option<String>,
    /// How long a container has after SIGTERM before SIGKILL on stop.
    pub stop_timeout: Duration,
    /// How long [`DockerExecutor::connect`] may take to reach the engine.
    pub connect_timeout: Duration,
}

impl Default for DockerConfig {
    /// Local engine, `peer0`, network `dev`, host networking, `FROM scratch`,
    /// 5 s stop timeout, 5 s connect timeout.
    fn default() -> Self {
        Self {
            endpoint: None,
            peer_id: "peer0".to_owned(),
            network_id: "dev".to_owned(),
            network_mode: "host".to_owned(),
            base_image: None,
            stop_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a container name was refused.
fn invalid_name(chaincode: &ChaincodeName, name: &str) -> ExecutorError {
    ExecutorError::Start {
        chaincode: chaincode.to_string(),
        reason: format!(
            "container name {name:?} is not valid: it must match ^[a-z0-9]+(([._-][a-z0-9]+)+)?$ \
             (check the network id, peer id, name and version)"
        ),
    }
}

/// The container name of `chaincode` on this peer: Fabric 1.0's rule (see the
/// module docs). A result that is not a valid name is an
/// [`ExecutorError::Start`] naming the chaincode.
///
/// ```
/// use executor::docker::container_name;
/// let cc = "My_CC:1.0".parse().unwrap();
/// assert_eq!(container_name("dev", "peer0", &cc).unwrap(), "dev-peer0-my_cc-1.0");
/// ```
pub fn container_name(
    network_id: &str,
    peer_id: &str,
    chaincode: &ChaincodeName,
) -> Result<String, ExecutorError> {
    let raw = raw_name(network_id, peer_id, chaincode);
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if is_valid_name(&name) {
        Ok(name)
    } else {
        Err(invalid_name(chaincode, &name))
    }
}

/// The image name of `chaincode` on this peer: the container name, `-`, and
/// the sha256 hex of the unsanitised `{network_id}-{peer_id}-{name}-{version}`
/// (see the module docs). Over-long names keep the hash and lose the end of
/// the readable part, so the result is always a valid image reference.
///
/// ```
/// use executor::docker::image_name;
/// let upper = image_name("dev", "peer0", &"My_CC:1.0".parse().unwrap()).unwrap();
/// let lower = image_name("dev", "peer0", &"my_cc:1.0".parse().unwrap()).unwrap();
/// assert!(upper.starts_with("dev-peer0-my_cc-1.0-"));
/// assert_ne!(upper, lower);
/// ```
pub fn image_name(
    network_id: &str,
    peer_id: &str,
    chaincode: &ChaincodeName,
) -> Result<String, ExecutorError> {
    let container = container_name(network_id, peer_id, chaincode)?;
    let hash = hex::encode(Sha256::digest(
        raw_name(network_id, peer_id, chaincode).as_bytes(),
    ));
    let room = MAX_IMAGE_NAME - hash.len() - 1;
    let mut readable = container.as_str();
    if readable.len() > room {
        // ASCII only (sanitised), so any index is a char boundary.
        readable = readable[..room].trim_end_matches(['-', '_', '.']);
    }
    let image = format!("{readable}-{hash}");
    if is_valid_name(&image) {
        Ok(image)
    } else {
        Err(invalid_name(chaincode, &image))
    }
}

fn raw_name(network_id: &str, peer_id: &str, chaincode: &ChaincodeName) -> String {
    format!(
        "{network_id}-{peer_id}-{}-{}",
        chaincode.name(),
        chaincode.version()
    )
}

/// `^[a-z0-9]+(([._-][a-z0-9]+)+)?$`: alphanumeric runs joined by single
/// separators, starting and ending alphanumeric.
fn is_valid_name(name: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = name.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && bytes
            .iter()
            .all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'))
        && bytes.windows(2).all(|w| alnum(w[0]) || alnum(w[1]))
}

/// Set to `1` to make test suites fail, not skip, when no engine is reachable.
pub const REQUIRE_DOCKER_ENV: &str = "CCLAUNCH_REQUIRE_DOCKER";

/// Runs chaincodes as containers on a Docker Engine. See the module docs.
#[derive(Debug)]
pub struct DockerExecutor {
    docker: Docker,
    config: DockerConfig,
    builds: AtomicU64,
    /// Running containers by name.
    tracked: Arc<Mutex<HashMap<String, Tracked>>>,
}

impl DockerExecutor {
    /// Connects to the engine, negotiates the API version and pings it, all
    /// within [`DockerConfig::connect_timeout`]. An engine that cannot be
    /// reached is [`ExecutorError::Unavailable`] saying where it was looked for.
    pub async fn connect(config: DockerConfig) -> Result<Self, ExecutorError> {
        let endpoint = config.endpoint.clone().unwrap_or_else(|| {
            std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned())
        });
        let unavailable = |reason: String| {
            ExecutorError::Unavailable(format!("no Docker Engine at {endpoint}: {reason}"))
        };
        let docker = client(config.endpoint.as_deref()).map_err(|e| unavailable(e.to_string()))?;
        let reach = async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, DockerError>(docker)
        };
        let docker = match tokio::time::timeout(config.connect_timeout, reach).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => return Err(unavailable(e.to_string())),
            Err(_) => {
                return Err(unavailable(format!(
                    "no answer within {:?}",
                    config.connect_timeout
                )));
            }
        };
        Ok(Self {
            docker,
            config,
            builds: AtomicU64::new(0),
            tracked: Arc::default(),
        })
    }

    /// For test suites: connects, or — when no engine is reachable — prints a
    /// notice and returns `Ok(None)` so the caller can skip, unless
    /// [`REQUIRE_DOCKER_ENV`] is `1` (as in CI), where a missing engine is
    /// the error.
    pub async fn connect_or_skip(config: DockerConfig) -> Result<Option<Self>, ExecutorError> {
        match Self::connect(config).await {
            Ok(executor) => Ok(Some(executor)),
            Err(error) if std::env::var(REQUIRE_DOCKER_ENV).as_deref() == Ok("1") => Err(error),
            Err(error) => {
                eprintln!("skipping: no Docker engine ({REQUIRE_DOCKER_ENV} is not 1): {error}");
                Ok(None)
            }
        }
    }

    /// The settings this executor was made with.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The engine client (for inspection, tests and tooling).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// How many images this executor has built so far (a start that reuses
    /// an existing image does not count).
    pub fn builds_performed(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The container name of `chaincode` on this peer.
    pub fn container_name(&self, chaincode: &ChaincodeName) -> Result<String, ExecutorError> {
        container_name(&self.config.network_id, &self.config.peer_id, chaincode)
    }

    /// The image name of `chaincode` on this peer.
    pub fn image_name(&self, chaincode: &ChaincodeName) -> Result<String, ExecutorError> {
        image_name(&self.config.network_id, &self.config.peer_id, chaincode)
    }

    /// Removes every container labelled [`LABEL_PEER`] = this peer's id, running
    /// or not, and returns their names. Meant for peer start-up, when no launch
    /// owns a container yet.
    pub async fn reap_orphans(&self) -> Result<Vec<String>, ExecutorError> {
        let unavailable =
            |e: DockerError| ExecutorError::Unavailable(format!("cannot reap orphans: {e}"));
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_PEER}={}", self.config.peer_id)],
        )]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(unavailable)?;
        let mut removed = Vec::new();
        for container in containers {
            let Some(id) = container.id else { continue };
            let name = container
                .names
                .and_then(|names| names.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| id.clone());
            match self
                .docker
                .remove_container(&id, Some(force_remove()))
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
            tracing::info!(container = %name, "removed orphaned chaincode container");
            removed.push(name);
        }
        Ok(removed)
    }

    /// Removes the image of `chaincode` (force; "no such image" is fine), so
    /// that the next start builds it afresh from its package.
    pub async fn remove_image(&self, chaincode: &ChaincodeName) -> Result<(), ExecutorError> {
        let image = self.image_name(chaincode)?;
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
        };
        match self.docker.remove_image(&image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(ExecutorError::Stop {
                chaincode: chaincode.to_string(),
                reason: format!("cannot remove image {image}: {e}"),
            }),
        }
    }

    /// Removes `image` when it was built from another code package (a
    /// chaincode re-packaged under the same name and version), so that the
    /// start builds it afresh.
    async fn drop_stale_image(
        &self,
        chaincode: &ChaincodeName,
        image: &str,
        package_hash: &str,
    ) -> Result<(), ExecutorError> {
        let built_from = match self.docker.inspect_image(image).await {
            Ok(inspect) => inspect
                .config
                .and_then(|config| config.labels)
                .and_then(|labels| labels.get(LABEL_PACKAGE).cloned()),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => {
                return Err(ExecutorError::Start {
                    chaincode: chaincode.to_string(),
                    reason: format!("cannot inspect image {image}: {}", docker_text(&e)),
                });
            }
        };
        if built_from.as_deref() == Some(package_hash) {
            return Ok(());
        }
        tracing::info!(%chaincode, %image, "the image holds another code package: rebuilding it");
        self.remove_image(chaincode)
            .await
            .map_err(|e| ExecutorError::Start {
                chaincode: chaincode.to_string(),
                reason: e.to_string(),
            })
    }

    fn labels(&self, chaincode: &ChaincodeName) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_PEER.to_owned(), self.config.peer_id.clone()),
            (LABEL_CCID.to_owned(), chaincode.to_string()),
        ])
    }

    async fn start_inner(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> Result<(), ExecutorError> {
        let chaincode = &request.chaincode;
        let start_err = |reason: String| ExecutorError::Start {
            chaincode: chaincode.to_string(),
            reason,
        };
        let name = self.container_name(chaincode)?;
        let image = self.image_name(chaincode)?;

        if let Some(other) = self.container_owner(chaincode, &name).await? {
            return Err(ExecutorError::NameClash {
                chaincode: chaincode.to_string(),
                other,
                runtime: name,
            });
        }
        self.remove_container(chaincode, &name).await?;
        let package_hash = hex::encode(Sha256::digest(&request.code_package));
        self.drop_stale_image(chaincode, &image, &package_hash)
            .await?;

        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(request.fabric_args()),
            env: Some(
                request
                    .fabric_env_in(Path::new(DOCKER_TLS_DIR))
                    .into_iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect(),
            ),
            labels: Some(self.labels(chaincode)),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some(self.config.network_mode.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            platform: String::new(),
        };
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(created) => created,
            Err(e) if is_not_found(&e) => {
                // "No such image": build it from the package, then create again.
                self.build_image(&request, &image, &package_hash, &sink)
                    .await?;
                self.docker
                    .create_container(Some(options), body)
                    .await
                    .map_err(|e| start_err(format!("cannot create container {name}: {e}")))?
            }
            Err(e) => return Err(start_err(format!("cannot create container {name}: {e}"))),
        };
        let id = created.id;

        let tls_files = request.tls_files();
        if !tls_files.is_empty() {
            // The user the container runs as (its image's USER): the files
            // are made its own so that a non-root chaincode can read its key.
            let user = self
                .docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
                .ok()
                .and_then(|inspect| inspect.config)
                .and_then(|config| config.user)
                .unwrap_or_default();
            let uploaded = match tls_archive(&tls_files, &user) {
                Ok(archive) => self
                    .docker
                    .upload_to_container(
                        &id,
                        Some(UploadToContainerOptions {
                            path: "/".to_owned(),
                            ..Default::default()
                        }),
                        bollard::body_full(bytes::Bytes::from(archive)),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = uploaded {
                let _ = self
                    .docker
                    .remove_container(&id, Some(force_remove()))
                    .await;
                return Err(start_err(format!(
                    "cannot copy the TLS files into container {name}: {e}"
                )));
            }
        }

        if let Err(e) = self
            .docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
        {
            let _ = self
                .docker
                .remove_container(&id, Some(force_remove()))
                .await;
            return Err(start_err(format!("cannot start container {name}: {e}")));
        }
        tracing::debug!(chaincode = %chaincode, container = %name, %id, "chaincode container started");

        // By id, not name: a later container of the same name is not ours.
        let logs = tokio::spawn(follow_logs(
            self.docker.clone(),
            id.clone(),
            chaincode.to_string(),
            sink.clone(),
        ));
        let docker = self.docker.clone();
        let label = chaincode.to_string();
        let stop_requested = Arc::new(AtomicBool::new(false));
        self.tracked.lock().insert(
            name.clone(),
            Tracked {
                id: id.clone(),
                stop_requested: Arc::clone(&stop_requested),
            },
        );
        let tracked = Arc::clone(&self.tracked);
        tokio::spawn(async move {
            let status = wait_exit(&docker, &id).await;
            let status = peer_stopped(status, stop_requested.load(Ordering::SeqCst));
            {
                let mut tracked = tracked.lock();
                if tracked.get(&name).is_some_and(|t| t.id == id) {
                    tracked.remove(&name);
                }
            }
            tracing::debug!(chaincode = %label, %status, "chaincode container ended");
            let _ = tokio::time::timeout(LOG_DRAIN, logs).await;
            sink.exited(status);
        });
        Ok(())
    }

    /// Builds `image` from the request's code package, reporting progress.
    async fn build_image(
        &self,
        request: &StartRequest,
        image: &str,
        package_hash: &str,
        sink: &EventSink,
    ) -> Result<(), ExecutorError> {
        let chaincode = request.chaincode.to_string();
        let build_err = |reason: String| ExecutorError::Build {
            chaincode: chaincode.clone(),
            reason,
        };
        let context = build_context(
            &request.code_package,
            &request.chaincode,
            self.config.base_image.as_deref(),
        )?;
        sink.send(RuntimeEventKind::Progress(format!(
            "building image {image}"
        )));
        tracing::info!(chaincode = %chaincode, %image, "building chaincode image");
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".to_owned(),
            t: Some(image.to_owned()),
            rm: true,
            forcerm: true,
            labels: Some({
                let mut labels = self.labels(&request.chaincode);
                labels.insert(LABEL_PACKAGE.to_owned(), package_hash.to_owned());
                labels
            }),
            ..Default::default()
        };
        let mut stream = self.docker.build_image(
            options,
            None,
            Some(bollard::body_full(bytes::Bytes::from(context))),
        );
        let mut failure = None;
        let mut last_step = None;
        // The engine ends the stream when the build ends; it is as long as
        // the build output.
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref().or(info.status.as_deref()) {
                        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                            tracing::debug!(chaincode = %chaincode, "{line}");
                            if line.starts_with("Step ") {
                                last_step = Some(line.to_owned());
                            }
                            sink.send(RuntimeEventKind::Progress(line.to_owned()));
                        }
                    }
                    let detail = info.error_detail.and_then(|d| d.message);
                    if let Some(error) = info.error.or(detail) {
                        failure = Some(error);
                    }
                }
                Err(e) => {
                    failure = Some(docker_text(&e));
                    break;
                }
            }
        }
        if let Some(reason) = failure {
            // The builder's text, and the step it failed at for context.
            return Err(build_err(match last_step {
                Some(step) => format!("{reason} (at {step})"),
                None => reason,
            }));
        }
        self.builds.fetch_add(1, Ordering::Relaxed);
        sink.send(RuntimeEventKind::Progress(format!("built image {image}")));
        Ok(())
    }

    /// Stops (with the configured timeout) and force-removes the container
    /// `name`; one that does not exist is fine.
    /// The chaincode (other than `chaincode`) whose container holds `name`,
    /// if any: its [`LABEL_CCID`] says whose it is.
    async fn container_owner(
        &self,
        chaincode: &ChaincodeName,
        name: &str,
    ) -> Result<Option<String>, ExecutorError> {
        let inspect = match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => inspect,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => {
                return Err(ExecutorError::Start {
                    chaincode: chaincode.to_string(),
                    reason: format!("cannot inspect container {name}: {}", docker_text(&e)),
                });
            }
        };
        let owner = inspect
            .config
            .and_then(|config| config.labels)
            .and_then(|labels| labels.get(LABEL_CCID).cloned());
        Ok(owner.filter(|owner| *owner != chaincode.to_string()))
    }

    async fn remove_container(
        &self,
        chaincode: &ChaincodeName,
        name: &str,
    ) -> Result<(), ExecutorError> {
        let stop_err = |reason: String| ExecutorError::Stop {
            chaincode: chaincode.to_string(),
            reason,
        };
        let ours = self
            .tracked
            .lock()
            .get(name)
            .map(|t| (t.id.clone(), Arc::clone(&t.stop_requested)));
        if let Some((id, stop_requested)) = ours {
            stop_requested.store(true, Ordering::SeqCst);
            // A container on its way out gets a moment to exit with its own code.
            let _ = tokio::time::timeout(EXIT_SETTLE, wait_exit(&self.docker, &id)).await;
        }
        let t = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            signal: None,
            t: Some(t),
        };
        match self.docker.stop_container(name, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            // 304: already stopped.
            Err(DockerError::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => return Err(stop_err(format!("cannot stop container {name}: {e}"))),
        }
        match self
            .docker
            .remove_container(name, Some(force_remove()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress (a concurrent reap): it goes anyway.
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(stop_err(format!("cannot remove container {name}: {e}"))),
        }
    }
}

impl Executor for DockerExecutor {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
        // The trait wants a plain string; an invalid name shows as the
        // sanitised attempt, and start reports the error.
        self.container_name(chaincode).unwrap_or_else(|_| {
            raw_name(&self.config.network_id, &self.config.peer_id, chaincode).to_ascii_lowercase()
        })
    }

    fn start(
        &self,
        request: StartRequest,
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        Box::pin(self.start_inner(request, sink))
    }

    fn stop<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async move {
            // No valid name, so no container can have been created for it.
            let Ok(name) = self.container_name(chaincode) else {
                return Ok(());
            };
            // Another chaincode's container under the same name is not ours
            // to stop: this one has no runtime.
            if self.container_owner(chaincode, &name).await?.is_some() {
                return Ok(());
            }
            self.remove_container(chaincode, &name).await
        })
    }
}

/// The engine client for `endpoint` (not yet contacted).
fn client(endpoint: Option<&str>) -> Result<Docker, DockerError> {
    let version = bollard::API_DEFAULT_VERSION;
    match endpoint {
        None => Docker::connect_with_local_defaults()
            .map(|d| d.with_timeout(Duration::from_secs(CLIENT_TIMEOUT_SECS))),
        Some(endpoint) => {
            if let Some(path) = endpoint.strip_prefix("unix://") {
                Docker::connect_with_unix(path, CLIENT_TIMEOUT_SECS, version)
            } else if let Some(addr) = endpoint.strip_prefix("tcp://") {
                Docker::connect_with_http(&format!("http://{addr}"), CLIENT_TIMEOUT_SECS, version)
            } else if endpoint.starts_with("http://") {
                Docker::connect_with_http(endpoint, CLIENT_TIMEOUT_SECS, version)
            } else {
                Docker::connect_with_unix(endpoint, CLIENT_TIMEOUT_SECS, version)
            }
        }
    }
}

fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    }
}

fn is_not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The engine's own message when there is one, else the error's text.
fn docker_text(error: &DockerError) -> String {
    match error {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        DockerError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// How a container ended, given whether the peer was stopping it: under a
/// stop, success or the peer's own SIGTERM/SIGKILL (the engine's codes 143
/// and 137) is [`ExitStatus::Stopped`]; any other code is the chaincode's own
/// failure and stays as it is.
fn peer_stopped(status: ExitStatus, stopping: bool) -> ExitStatus {
    if stopping && matches!(status, ExitStatus::Code(0 | 137 | 143)) {
        ExitStatus::Stopped(Box::new(status))
    } else {
        status
    }
}

/// Waits for container `id` to stop and says how it ended.
async fn wait_exit(docker: &Docker, id: &str) -> ExitStatus {
    let options = WaitContainerOptions {
        condition: "not-running".to_owned(),
    };
    let mut stream = docker.wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(response)) => ExitStatus::Code(response.status_code),
        // bollard turns a non-zero exit into this error.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => ExitStatus::Code(code),
        Some(Err(e)) if is_not_found(&e) => {
            ExitStatus::Other("the container was removed before its exit was seen".to_owned())
        }
        Some(Err(e)) => ExitStatus::Other(format!("lost track of the container: {e}")),
        None => ExitStatus::Other("the engine ended the wait without an exit code".to_owned()),
    }
}

/// Follows container `id`'s stdout/stderr until it ends, line by line.
async fn follow_logs(docker: Docker, id: String, chaincode: String, sink: EventSink) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut stream = docker.logs(&id, Some(options));
    let mut out = LineBuffer::new(LogStream::Stdout);
    let mut err = LineBuffer::new(LogStream::Stderr);
    // Ends when the container stops (the engine closes the stream).
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                out.push(&message, &chaincode, &sink);
            }
            Ok(LogOutput::StdErr { message }) => err.push(&message, &chaincode, &sink),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                tracing::debug!(chaincode = %chaincode, error = %e, "container log stream ended");
                break;
            }
        }
    }
    out.flush(&chaincode, &sink);
    err.flush(&chaincode, &sink);
}

/// Reassembles lines from the chunks the engine sends.
struct LineBuffer {
    stream: LogStream,
    pending: Vec<u8>,
}

impl LineBuffer {
    fn new(stream: LogStream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, bytes: &[u8], chaincode: &str, sink: &EventSink) {
        for &byte in bytes {
            if byte == b'\n' {
                self.emit(chaincode, sink);
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE {
                    self.emit(chaincode, sink);
                }
            }
        }
    }

    fn flush(&mut self, chaincode: &str, sink: &EventSink) {
        if !self.pending.is_empty() {
            self.emit(chaincode, sink);
        }
    }

    fn emit(&mut self, chaincode: &str, sink: &EventSink) {
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        let stream = match self.stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        };
        tracing::info!(target: "chaincode", chaincode = %chaincode, stream, "{line}");
        sink.log(self.stream, line);
    }
}

/// Who owns the TLS files in a container whose user is `user` (the image's
/// `USER`: empty, `uid`, `uid:gid`, or a name): `(uid, gid, key mode)`.
/// A name cannot be resolved without the image's `/etc/passwd`, so its files
/// stay root's and the key is made readable (`0444`) inside the container.
fn tls_owner(user: &str) -> (u64, u64, Option<u32>) {
    if user.is_empty() {
        return (0, 0, None);
    }
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    match (uid.parse::<u64>(), gid.parse::<u64>()) {
        (Ok(uid), Ok(gid)) => (uid, gid, None),
        (Ok(uid), Err(_)) if gid.is_empty() => (uid, uid, None),
        _ => (0, 0, Some(0o444)),
    }
}

/// A tar (to extract at `/`) holding [`DOCKER_TLS_DIR`] and the TLS files,
/// owned by the container's `user` (see [`tls_owner`]).
fn tls_archive(files: &[crate::TlsFile], user: &str) -> std::io::Result<Vec<u8>> {
    let (uid, gid, key_mode) = tls_owner(user);
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |path: &Path, mode: u32, kind: tar::EntryType, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        // Directories stay root's: /etc may already exist in the image.
        let owner = if kind == tar::EntryType::Directory {
            (0, 0)
        } else {
            (uid, gid)
        };
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        tar.append_data(&mut header, path, data)
    };
    let dir = Path::new(DOCKER_TLS_DIR.trim_start_matches('/'));
    // Parents first: a scratch image has no /etc.
    let mut parents: Vec<&Path> = dir
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    parents.reverse();
    for parent in parents {
        append(parent, 0o755, tar::EntryType::Directory, &[])?;
    }
    for file in files {
        let mode = match key_mode {
            Some(mode) if file.secret => mode,
            _ => file.container_mode(),
        };
        append(
            &dir.join(file.name),
            mode,
            tar::EntryType::Regular,
            &file.contents,
        )?;
    }
    tar.into_inner()
}

/// The in-memory build context (an uncompressed tar) for `package`: see the
/// module docs for its layout.
fn build_context(
    package: &[u8],
    chaincode: &ChaincodeName,
    base_image: Option<&str>,
) -> Result<Vec<u8>, ExecutorError> {
    let entries = package::read_entries(package, chaincode)?;
    let build_err = |e: std::io::Error| ExecutorError::Build {
        chaincode: chaincode.to_string(),
        reason: format!("cannot write the build context: {e}"),
    };
    let executable = Path::new(package::EXECUTABLE);
    let has_files = entries.iter().any(|entry| match entry {
        PackageEntry::Dir(_) => true,
        PackageEntry::File { path, .. } => path != executable,
    });
    let mut dockerfile = format!(
        "FROM {}\nCOPY {} {ENTRYPOINT}\n",
        base_image.unwrap_or("scratch"),
        package::EXECUTABLE
    );
    if has_files {
        dockerfile.push_str("COPY files/ /chaincode/\n");
    }
    dockerfile.push_str(&format!(
        "WORKDIR /chaincode\nENTRYPOINT [\"{ENTRYPOINT}\"]\n"
    ));

    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |path: &Path, mode: u32, kind: tar::EntryType, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        tar.append_data(&mut header, path, data)
    };
    append(
        Path::new("Dockerfile"),
        0o644,
        tar::EntryType::Regular,
        dockerfile.as_bytes(),
    )
    .map_err(build_err)?;
    let files = Path::new("files");
    for entry in &entries {
        match entry {
            PackageEntry::File { path, data, .. } if path == executable => {
                append(path, 0o755, tar::EntryType::Regular, data).map_err(build_err)?;
            }
            PackageEntry::File { path, mode, data } => {
                append(&files.join(path), *mode, tar::EntryType::Regular, data)
                    .map_err(build_err)?;
            }
            PackageEntry::Dir(path) => {
                append(&files.join(path), 0o755, tar::EntryType::Directory, &[])
                    .map_err(build_err)?;
            }
        }
    }
    tar.into_inner().map_err(build_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(text: &str) -> ChaincodeName {
        text.parse().unwrap()
    }

    #[test]
    fn container_names_follow_fabric() {
        assert_eq!(
            container_name("dev", "peer0", &cc("mycc:1.0")).unwrap(),
            "dev-peer0-mycc-1.0"
        );
        assert_eq!(
            container_name("Net", "Peer0.Org1", &cc("My-CC:v1+2")).unwrap(),
            "net-peer0.org1-my-cc-v1-2"
        );
        assert_eq!(
            container_name("dev", "peer0", &cc("My_CC:1.0")).unwrap(),
            "dev-peer0-my_cc-1.0"
        );
    }

    #[test]
    fn invalid_container_names_are_refused_naming_the_chaincode() {
        // Two separators in a row.
        let err = container_name("dev", "peer0", &cc("a:-1")).unwrap_err();
        match err {
            ExecutorError::Start { chaincode, reason } => {
                assert_eq!(chaincode, "a:-1");
                assert!(reason.contains("dev-peer0-a--1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Ends with a separator.
        assert!(container_name("dev", "peer0", &cc("a:1.")).is_err());
        assert!(container_name("dev", "", &cc("a:1")).is_err());
    }

    #[test]
    fn image_names_do_not_collide_when_names_differ_only_in_case() {
        let upper = image_name("dev", "peer0", &cc("My_CC:1.0")).unwrap();
        let lower = image_name("dev", "peer0", &cc("my_cc:1.0")).unwrap();
        assert_ne!(upper, lower);
        // The readable part is the container name; the suffix the hash of
        // the unsanitised name.
        let hash = hex::encode(Sha256::digest(b"dev-peer0-My_CC-1.0"));
        assert_eq!(upper, format!("dev-peer0-my_cc-1.0-{hash}"));
        // Sanitising also merges a label's '+' into '-': still distinct images.
        let hash = "0".repeat(64);
        let a = image_name("dev", "peer0", &cc(&format!("a+b:{hash}"))).unwrap();
        let b = image_name("dev", "peer0", &cc(&format!("a-b:{hash}"))).unwrap();
        assert_ne!(a, b);
        assert!(is_valid_name(&a) && is_valid_name(&b));
    }

    #[test]
    fn long_image_names_stay_valid_and_keep_the_hash() {
        // As long as a chaincode name may be.
        let long = "x".repeat(chaincode_proto::name::MAX_LEN - 2);
        let image = image_name("dev", "peer0", &cc(&format!("{long}:1"))).unwrap();
        assert!(image.len() <= MAX_IMAGE_NAME, "{}", image.len());
        assert!(is_valid_name(&image));
        let other = image_name("dev", "peer0", &cc(&format!("{long}:2"))).unwrap();
        assert_ne!(image, other);
    }

    #[test]
    fn name_regex() {
        for ok in ["a", "a1", "a.b", "a-b_c.d", "0-0"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "a._b", "A", "a b", "a/b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn build_context_layout() {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, data) in [("chaincode", &b"exe"[..]), ("conf/a.toml", &b"a"[..])] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, data).unwrap();
        }
        let package = builder.into_inner().unwrap().finish().unwrap();
        let context = build_context(&package, &cc("kv:1.0"), Some("alpine:3")).unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let mut seen = HashMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mode = entry.header().mode().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            seen.insert(path, (mode, text));
        }
        let dockerfile = &seen["Dockerfile"].1;
        assert!(dockerfile.starts_with("FROM alpine:3\n"), "{dockerfile}");
        assert!(dockerfile.contains("COPY chaincode /usr/local/bin/chaincode\n"));
        assert!(dockerfile.contains("COPY files/ /chaincode/\n"));
        assert!(dockerfile.ends_with("ENTRYPOINT [\"/usr/local/bin/chaincode\"]\n"));
        assert_eq!(seen["chaincode"], (0o755, "exe".to_owned()));
        assert_eq!(seen["files/conf/a.toml"].1, "a");
    }

    #[test]
    fn build_context_of_a_package_without_binary_is_refused() {
        let err = build_context(b"not a package", &cc("kv:1.0"), None).unwrap_err();
        assert!(
            matches!(err, ExecutorError::BadPackage { ref chaincode, .. } if chaincode == "kv:1.0"),
            "{err:?}"
        );
    }

    #[test]
    fn tls_files_belong_to_the_containers_user() {
        assert_eq!(tls_owner(""), (0, 0, None));
        assert_eq!(tls_owner("1000"), (1000, 1000, None));
        assert_eq!(tls_owner("1000:2000"), (1000, 2000, None));
        assert_eq!(tls_owner("nobody"), (0, 0, Some(0o444)));
        let files = crate::tls_files::files_for(&crate::ClientTls {
            cert_pem: "C".into(),
            key_pem: "K".into(),
            root_cert_pem: "R".into(),
        });
        let archive = tls_archive(&files, "1000:2000").unwrap();
        let mut archive = tar::Archive::new(archive.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let path = entry.path().unwrap().display().to_string();
            let owner = (header.uid().unwrap(), header.gid().unwrap());
            let mode = header.mode().unwrap();
            seen.push((path, owner, mode));
        }
        assert_eq!(
            seen,
            [
                ("etc".to_owned(), (0, 0), 0o755),
                ("etc/hyperledger".to_owned(), (0, 0), 0o755),
                ("etc/hyperledger/fabric".to_owned(), (0, 0), 0o755),
                (
                    "etc/hyperledger/fabric/client.key".to_owned(),
                    (1000, 2000),
                    0o400
                ),
                (
                    "etc/hyperledger/fabric/client.crt".to_owned(),
                    (1000, 2000),
                    0o444
                ),
                (
                    "etc/hyperledger/fabric/client_pem.key".to_owned(),
                    (1000, 2000),
                    0o400
                ),
                (
                    "etc/hyperledger/fabric/client_pem.crt".to_owned(),
                    (1000, 2000),
                    0o444
                ),
                (
                    "etc/hyperledger/fabric/peer.crt".to_owned(),
                    (1000, 2000),
                    0o444
                ),
            ]
        );
    }

    #[test]
    fn log_lines_are_reassembled_from_chunks() {
        let (sink, mut rx) = EventSink::channel(crate::Generation(1));
        let mut buffer = LineBuffer::new(LogStream::Stdout);
        buffer.push(b"hel", "cc:1", &sink);
        buffer.push(b"lo\r\nwor", "cc:1", &sink);
        buffer.push(b"ld", "cc:1", &sink);
        buffer.flush("cc:1", &sink);
        let lines: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            lines,
            [
                RuntimeEventKind::Log {
                    stream: LogStream::Stdout,
                    line: "hello".into()
                },
                RuntimeEventKind::Log {
                    stream: LogStream::Stdout,
                    line: "world".into()
                },
            ]
        );
    }
}
