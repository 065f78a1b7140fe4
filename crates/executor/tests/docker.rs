//! The docker backend against the real Docker Engine.
//!
//! Skipped (with a notice) when no engine is reachable, unless
//! `CCLAUNCH_REQUIRE_DOCKER=1`. Each test uses its own peer id, so tests run
//! in parallel without touching each other's containers and images, and a
//! guard removes what the test made even when it fails.
#![cfg(feature = "docker")]

mod common;

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use common::{TestPeer, WAIT, next_exit, next_matching};
use executor::docker::{DockerConfig, DockerExecutor, LABEL_CCID, LABEL_PEER};
use executor::{
    EventSink, Executor, ExecutorError, ExitStatus, Generation, RuntimeEventKind, StartRequest,
    package,
};

fn config(peer_id: &str) -> DockerConfig {
    DockerConfig {
        peer_id: peer_id.to_owned(),
        network_id: "cctest".to_owned(),
        // Short: a chaincode without a SIGTERM handler is PID 1 in its
        // container and ignores SIGTERM, so stop waits this long.
        stop_timeout: Duration::from_secs(1),
        ..DockerConfig::default()
    }
}

/// A peer id no other test (or test run) uses.
fn unique_peer(test: &str) -> String {
    format!("p{}-{test}", std::process::id())
}

/// The executor, or `None` (after a notice) when no engine is reachable and
/// the engine is not required.
async fn engine(peer_id: &str) -> Option<DockerExecutor> {
    DockerExecutor::connect_or_skip(config(peer_id))
        .await
        .expect("a Docker engine (CCLAUNCH_REQUIRE_DOCKER=1)")
}

/// Removes every container and image labelled with the peer id when dropped
/// (also when the test panics). Runs on its own thread and runtime because
/// drop cannot await.
struct Cleanup {
    peer_id: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let peer_id = self.peer_id.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let Ok(executor) = DockerExecutor::connect(config(&peer_id)).await else {
                    return;
                };
                let _ = executor.reap_orphans().await;
                let filters =
                    HashMap::from([("label".to_owned(), vec![format!("{LABEL_PEER}={peer_id}")])]);
                let images = executor
                    .client()
                    .list_images(Some(ListImagesOptions {
                        all: true,
                        filters: Some(filters),
                        ..Default::default()
                    }))
                    .await
                    .unwrap_or_default();
                for image in images {
                    let options = RemoveImageOptions {
                        force: true,
                        noprune: false,
                    };
                    let _ = executor
                        .client()
                        .remove_image(&image.id, Some(options), None)
                        .await;
                }
            });
        })
        .join();
    }
}

fn request(name: &str, code_package: Vec<u8>, peer: &str, generation: u64) -> StartRequest {
    StartRequest {
        chaincode: name.parse().unwrap(),
        generation: Generation(generation),
        code_package,
        peer_address: peer.to_owned(),
        env: Vec::new(),
        tls: None,
    }
}

fn script_package(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    fs::write(&path, text).unwrap();
    package::package_binary(&path).unwrap()
}

async fn container_exists(executor: &DockerExecutor, name_or_id: &str) -> bool {
    match executor
        .client()
        .inspect_container(
            name_or_id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {name_or_id}: {e}"),
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_quickly() {
    let started = Instant::now();
    let missing = DockerConfig {
        endpoint: Some("unix:///nonexistent.sock".to_owned()),
        ..config("unreachable")
    };
    let err = DockerExecutor::connect(missing).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    match err {
        ExecutorError::Unavailable(reason) => {
            assert!(reason.contains("/nonexistent.sock"), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // A TCP endpoint that accepts but never answers: the connect timeout bounds it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_config = DockerConfig {
        endpoint: Some(format!("tcp://{}", silent.local_addr().unwrap())),
        connect_timeout: Duration::from_millis(500),
        ..config("silent")
    };
    let started = Instant::now();
    let err = DockerExecutor::connect(silent_config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, ExecutorError::Unavailable(reason) if reason.contains("no answer within")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_package_without_a_binary_is_refused() {
    let peer_id = unique_peer("nobinary");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    // A valid tar.gz holding no `chaincode`.
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "README", &b"hello"[..])
        .unwrap();
    let package = builder.into_inner().unwrap().finish().unwrap();

    let req = request("nobin:1.0", package, "127.0.0.1:1", 1);
    let (sink, _rx) = EventSink::channel(req.generation);
    let err = executor.start(req.clone(), sink).await.unwrap_err();
    match err {
        ExecutorError::BadPackage { chaincode, reason } => {
            assert_eq!(chaincode, "nobin:1.0");
            assert!(reason.contains("no executable"), "{reason}");
        }
        other => panic!("expected BadPackage, got {other:?}"),
    }
    assert_eq!(executor.builds_performed(), 0);
    let name = executor.container_name(&req.chaincode).unwrap();
    assert!(!container_exists(&executor, &name).await);

    // Stop is idempotent: never started, and a name no container can have.
    executor.stop(&req.chaincode).await.unwrap();
    executor.stop(&"a:-1".parse().unwrap()).await.unwrap();
    // Starting under a name Docker would refuse is a clear Start error.
    let invalid = request("a:-1", script_package("#!/bin/sh\n"), "127.0.0.1:1", 1);
    let (sink, _rx) = EventSink::channel(invalid.generation);
    let err = executor.start(invalid, sink).await.unwrap_err();
    assert!(
        matches!(&err, ExecutorError::Start { chaincode, reason } if chaincode == "a:-1" && reason.contains("is not valid")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failing_build_reports_the_builders_text() {
    let peer_id = unique_peer("badbase");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    // No registry is reachable and this base image does not exist locally.
    let executor = DockerExecutor::connect(DockerConfig {
        base_image: Some("cclaunch-test-no-such-base:0".to_owned()),
        ..executor.config().clone()
    })
    .await
    .unwrap();
    let req = request(
        "badbase:1.0",
        script_package("#!/bin/sh\n"),
        "127.0.0.1:1",
        1,
    );
    let (sink, mut rx) = EventSink::channel(req.generation);
    let err = tokio::time::timeout(WAIT, executor.start(req.clone(), sink))
        .await
        .expect("the build did not end")
        .unwrap_err();
    match err {
        ExecutorError::Build { chaincode, reason } => {
            assert_eq!(chaincode, "badbase:1.0");
            // The builder's own words first (they depend on the registry
            // setup), then the step that failed.
            let (builder_text, step) = reason.split_once(" (at Step ").expect(&reason);
            assert!(!builder_text.trim().is_empty(), "{reason}");
            assert!(!builder_text.contains("Docker stream error"), "{reason}");
            assert!(
                step.contains("FROM cclaunch-test-no-such-base:0"),
                "{reason}"
            );
        }
        other => panic!("expected Build, got {other:?}"),
    }
    assert_eq!(executor.builds_performed(), 0);
    let progress = next_matching(&mut rx, "build progress", WAIT, |k| {
        matches!(k, RuntimeEventKind::Progress(_))
    })
    .await;
    assert!(
        matches!(progress.kind, RuntimeEventKind::Progress(text) if text.starts_with("building image"))
    );
}

/// The static `kv` sample, packaged.
async fn sample_package(bin: &'static str) -> Vec<u8> {
    let path = tokio::task::spawn_blocking(move || chaincode_samples::static_sample(bin))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("static sample {bin}: {e}"));
    package::package_binary(&path).unwrap()
}

async fn container_id(executor: &DockerExecutor, name: &str) -> String {
    executor
        .client()
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap()
        .id
        .unwrap()
}

#[tokio::test]
async fn kv_registers_from_a_container_and_a_second_start_reuses_the_image() {
    let peer_id = unique_peer("kv");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let mut peer = TestPeer::start().await;
    let package = sample_package("kv").await;

    let first = request("kv:1.0", package.clone(), &peer.address, 1);
    let (sink, mut rx) = EventSink::channel(first.generation);
    executor.start(first.clone(), sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");
    assert_eq!(executor.builds_performed(), 1);
    let progress = next_matching(
        &mut rx,
        "build progress",
        WAIT,
        |k| matches!(k, RuntimeEventKind::Progress(text) if text.starts_with("building image")),
    )
    .await;
    assert_eq!(progress.generation, Generation(1));

    // Named and labelled as documented.
    let name = executor.container_name(&first.chaincode).unwrap();
    assert_eq!(name, format!("cctest-{peer_id}-kv-1.0"));
    let inspect = executor
        .client()
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let labels = inspect.config.as_ref().unwrap().labels.clone().unwrap();
    assert_eq!(labels[LABEL_PEER], peer_id);
    assert_eq!(labels[LABEL_CCID], "kv:1.0");
    assert_eq!(
        inspect.config.unwrap().image.unwrap(),
        executor.image_name(&first.chaincode).unwrap()
    );

    executor.stop(&first.chaincode).await.unwrap();
    assert!(
        !container_exists(&executor, &name).await,
        "container left after stop"
    );
    // The peer stopped it: told apart from a crash, with the engine's code inside.
    let status = next_exit(&mut rx).await;
    assert!(
        matches!(&status, ExitStatus::Stopped(how) if matches!(**how, ExitStatus::Code(0 | 137 | 143))),
        "{status:?}"
    );
    // Idempotent.
    executor.stop(&first.chaincode).await.unwrap();

    // Same chaincode again: the image exists, so no build.
    let second = request("kv:1.0", package, &peer.address, 2);
    let (sink, mut rx) = EventSink::channel(second.generation);
    executor.start(second.clone(), sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");
    assert_eq!(
        executor.builds_performed(),
        1,
        "the second start rebuilt the image"
    );
    executor.stop(&second.chaincode).await.unwrap();
    assert!(!container_exists(&executor, &name).await);
    let mut events = Vec::new();
    loop {
        let event = next_matching(&mut rx, "the second exit", WAIT, |_| true).await;
        if matches!(event.kind, RuntimeEventKind::Exited(_)) {
            break;
        }
        events.push(event.kind);
    }
    assert!(
        !events
            .iter()
            .any(|k| matches!(k, RuntimeEventKind::Progress(_))),
        "build progress on the second start: {events:?}"
    );
}

#[tokio::test]
async fn a_crashing_container_reports_its_exit_code() {
    let peer_id = unique_peer("crash");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let peer = TestPeer::start().await;
    let mut req = request(
        "faulty:1.0",
        sample_package("faulty").await,
        &peer.address,
        1,
    );
    req.env
        .push(("FAULTY_MODE".to_owned(), "crash-before-register".to_owned()));
    let (sink, mut rx) = EventSink::channel(req.generation);
    executor.start(req.clone(), sink).await.unwrap();
    let status = next_exit(&mut rx).await;
    assert_eq!(status, ExitStatus::Code(3));
    assert!(!status.is_stopped_by_peer());
    // The exited container is still there until stopped; stop removes it.
    let name = executor.container_name(&req.chaincode).unwrap();
    assert!(container_exists(&executor, &name).await);
    executor.stop(&req.chaincode).await.unwrap();
    assert!(!container_exists(&executor, &name).await);
}

#[tokio::test]
async fn a_stale_container_of_the_same_name_is_replaced() {
    let peer_id = unique_peer("stale");
    let Some(earlier) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let mut peer = TestPeer::start().await;
    let package = sample_package("kv").await;
    let req = request("kv:1.0", package, &peer.address, 1);

    // An earlier peer run left its container running.
    let (sink, mut old_rx) = EventSink::channel(req.generation);
    earlier.start(req.clone(), sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");
    let name = earlier.container_name(&req.chaincode).unwrap();
    let old_id = container_id(&earlier, &name).await;

    // The restarted peer starts the same chaincode.
    let restarted = engine(&peer_id).await.unwrap();
    let again = StartRequest {
        generation: Generation(2),
        ..req.clone()
    };
    let (sink, _rx) = EventSink::channel(again.generation);
    restarted.start(again, sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");
    assert_eq!(
        restarted.builds_performed(),
        0,
        "the image should be reused"
    );
    let new_id = container_id(&restarted, &name).await;
    assert_ne!(old_id, new_id);
    assert!(
        !container_exists(&restarted, &old_id).await,
        "stale container survived"
    );
    assert!(matches!(next_exit(&mut old_rx).await, ExitStatus::Code(_)));

    restarted.stop(&req.chaincode).await.unwrap();
    assert!(!container_exists(&restarted, &name).await);
}

#[tokio::test]
async fn orphans_labelled_with_the_peer_id_are_reaped() {
    let peer_id = unique_peer("orphan");
    let other_id = unique_peer("orphan-other");
    let (Some(crashed), Some(other)) = (engine(&peer_id).await, engine(&other_id).await) else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let _cleanup_other = Cleanup {
        peer_id: other_id.clone(),
    };
    let mut peer = TestPeer::start().await;
    let package = sample_package("kv").await;

    // This peer's container, left behind by a "crashed" peer run, and
    // another peer's container, which must survive.
    let mine = request("kv:1.0", package.clone(), &peer.address, 1);
    let (sink, mut rx) = EventSink::channel(mine.generation);
    crashed.start(mine.clone(), sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");
    let theirs = request("kv:1.0", package, &peer.address, 1);
    let (sink, _other_rx) = EventSink::channel(theirs.generation);
    other.start(theirs.clone(), sink).await.unwrap();
    assert_eq!(peer.next_register(WAIT).await, "kv:1.0");

    let restarted = engine(&peer_id).await.unwrap();
    let mine_name = restarted.container_name(&mine.chaincode).unwrap();
    let theirs_name = other.container_name(&theirs.chaincode).unwrap();
    let reaped = restarted.reap_orphans().await.unwrap();
    assert_eq!(reaped, vec![mine_name.clone()]);
    assert!(!container_exists(&restarted, &mine_name).await);
    assert!(container_exists(&restarted, &theirs_name).await);
    assert!(matches!(next_exit(&mut rx).await, ExitStatus::Code(_)));
    // Nothing left to reap.
    assert_eq!(
        restarted.reap_orphans().await.unwrap(),
        Vec::<String>::new()
    );

    other.stop(&theirs.chaincode).await.unwrap();
}

/// The regular files of a tar, by path: (mode, uid, contents).
fn tar_files(archive: &[u8]) -> HashMap<String, (u32, u64, Vec<u8>)> {
    use std::io::Read as _;
    let mut files = HashMap::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().unwrap().display().to_string();
        let mode = entry.header().mode().unwrap();
        let uid = entry.header().uid().unwrap();
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        files.insert(path, (mode, uid, contents));
    }
    files
}

/// The tar of `path` in the container, or the engine's error.
async fn download(
    executor: &DockerExecutor,
    container: &str,
    path: &str,
) -> Result<Vec<u8>, bollard::errors::Error> {
    use futures::TryStreamExt as _;
    let chunks: Vec<_> = executor
        .client()
        .download_from_container(
            container,
            Some(bollard::query_parameters::DownloadFromContainerOptions {
                path: path.to_owned(),
            }),
        )
        .try_collect()
        .await?;
    Ok(chunks.concat())
}

#[tokio::test]
async fn tls_files_are_copied_into_the_container_and_never_into_the_image() {
    use base64::Engine as _;
    let peer_id = unique_peer("tls");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let ca = chaincode_tls::CertAuthority::generate("peer CA").unwrap();
    let mut peer = TestPeer::start_tls(&ca).await;
    let client = ca.issue_client("kv:1.0", Duration::from_secs(600)).unwrap();
    let mut req = request("kv:1.0", sample_package("kv").await, &peer.address, 1);
    req.tls = Some(executor::ClientTls {
        cert_pem: client.cert_pem.clone(),
        key_pem: client.key_pem.clone(),
        root_cert_pem: ca.root_pem().to_owned(),
    });
    let (sink, mut rx) = EventSink::channel(req.generation);
    executor.start(req.clone(), sink).await.unwrap();
    // kv read the files at start-up and presented this launch's certificate.
    let (name, presented) = peer.next_register_with_cert(WAIT).await;
    assert_eq!(name, "kv:1.0");
    assert_eq!(presented.as_deref(), Some(client.cert_der.as_slice()));

    let container = executor.container_name(&req.chaincode).unwrap();
    let files = tar_files(
        &download(&executor, &container, "/etc/hyperledger/fabric")
            .await
            .unwrap(),
    );
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(s)
            .into_bytes()
    };
    let expected = [
        ("fabric/client.key", 0o400, b64(&client.key_pem)),
        ("fabric/client.crt", 0o444, b64(&client.cert_pem)),
        (
            "fabric/client_pem.key",
            0o400,
            client.key_pem.clone().into_bytes(),
        ),
        (
            "fabric/client_pem.crt",
            0o444,
            client.cert_pem.clone().into_bytes(),
        ),
        ("fabric/peer.crt", 0o444, ca.root_pem().as_bytes().to_vec()),
    ];
    assert_eq!(files.len(), expected.len(), "{:?}", files.keys());
    for (path, mode, contents) in expected {
        let (got_mode, uid, got) = files.get(path).unwrap_or_else(|| panic!("no {path}"));
        assert_eq!(got_mode & 0o7777, mode, "{path}");
        assert_eq!(*uid, 0, "{path}");
        assert_eq!(got, &contents, "{path}");
    }

    // A fresh container of the same image has none of it: the files were
    // never part of the image, so the image serves every launch.
    let image = executor.image_name(&req.chaincode).unwrap();
    let probe = executor
        .client()
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(image),
                // Found by the cleanup guard should the test fail early.
                labels: Some(HashMap::from([(LABEL_PEER.to_owned(), peer_id.clone())])),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let missing = download(&executor, &probe, "/etc/hyperledger/fabric").await;
    let _ = executor
        .client()
        .remove_container(
            &probe,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    assert!(
        matches!(
            missing,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })
        ),
        "{missing:?}"
    );

    executor.stop(&req.chaincode).await.unwrap();
    assert!(!container_exists(&executor, &container).await);
    // The peer stopped it: told apart from a crash, with the engine's code inside.
    let status = next_exit(&mut rx).await;
    assert!(
        matches!(&status, ExitStatus::Stopped(how) if matches!(**how, ExitStatus::Code(0 | 137 | 143))),
        "{status:?}"
    );
}

/// `My_CC:1.0` and `my_cc:1.0` map to one container name: starting the
/// second is refused naming the clash, and neither its start nor its stop
/// touches the first one's container.
#[tokio::test]
async fn names_that_share_a_container_name_never_remove_each_other() {
    let peer_id = unique_peer("clash");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let kv = sample_package("kv").await;
    // Nothing listens on port 1: the chaincode retries, then exits; its
    // container stays until it is stopped.
    let first = request("My_CC:1.0", kv.clone(), "127.0.0.1:1", 1);
    let name = executor.container_name(&first.chaincode).unwrap();
    let (sink, _rx) = EventSink::channel(first.generation);
    tokio::time::timeout(WAIT, executor.start(first.clone(), sink))
        .await
        .expect("start bounded")
        .unwrap();
    let id = container_id(&executor, &name).await;

    let second = request("my_cc:1.0", kv, "127.0.0.1:1", 1);
    assert_eq!(executor.container_name(&second.chaincode).unwrap(), name);
    let (sink, _rx2) = EventSink::channel(second.generation);
    let err = tokio::time::timeout(WAIT, executor.start(second.clone(), sink))
        .await
        .expect("start bounded")
        .unwrap_err();
    match &err {
        ExecutorError::NameClash {
            chaincode,
            other,
            runtime,
        } => {
            assert_eq!(
                (chaincode.as_str(), other.as_str(), runtime.as_str()),
                ("my_cc:1.0", "My_CC:1.0", name.as_str())
            );
        }
        other => panic!("expected NameClash, got {other:?}"),
    }
    assert!(err.to_string().contains("differ only in case"), "{err}");
    assert_eq!(
        container_id(&executor, &name).await,
        id,
        "the first container was touched"
    );

    executor.stop(&second.chaincode).await.unwrap();
    assert_eq!(
        container_id(&executor, &name).await,
        id,
        "a stop of the other name removed it"
    );

    executor.stop(&first.chaincode).await.unwrap();
    assert!(!container_exists(&executor, &name).await);
}

/// A chaincode re-packaged under the same name and version gets a new image;
/// the same package reuses the one it built.
#[tokio::test]
async fn an_image_is_reused_only_for_the_package_it_was_built_from() {
    let peer_id = unique_peer("repack");
    let Some(executor) = engine(&peer_id).await else {
        return;
    };
    let _cleanup = Cleanup {
        peer_id: peer_id.clone(),
    };
    let kv = sample_package("kv").await;
    let faulty = sample_package("faulty").await;
    let mut builds = 0;
    for (package, rebuilt) in [(&kv, true), (&kv, false), (&faulty, true), (&faulty, false)] {
        let req = request("repack:1.0", package.clone(), "127.0.0.1:1", 1);
        let (sink, _rx) = EventSink::channel(req.generation);
        tokio::time::timeout(WAIT, executor.start(req.clone(), sink))
            .await
            .expect("start bounded")
            .unwrap();
        executor.stop(&req.chaincode).await.unwrap();
        builds += u64::from(rebuilt);
        assert_eq!(executor.builds_performed(), builds, "rebuilt: {rebuilt}");
    }
}
