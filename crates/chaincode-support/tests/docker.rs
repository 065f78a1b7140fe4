//! The Docker executor through the runtime, on the real engine: the static
//! `kv` sample in a `FROM scratch` image, host network, real gRPC.
//!
//! Skips with a notice when no engine is reachable, unless
//! `CCLAUNCH_REQUIRE_DOCKER=1` (CI), which makes a missing engine fail.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaincode_proto::ChaincodeDeploymentSpec;
use chaincode_support::{MemorySpecStore, TxKind};
use common::*;
use executor::docker::{DockerConfig, DockerExecutor};
use launch_fsm::Phase;

fn docker_config(peer_id: &str) -> DockerConfig {
    DockerConfig {
        peer_id: peer_id.to_owned(),
        network_id: "ccsupport".to_owned(),
        stop_timeout: Duration::from_secs(1),
        ..DockerConfig::default()
    }
}

async fn engine(peer_id: &str) -> Option<DockerExecutor> {
    DockerExecutor::connect_or_skip(docker_config(peer_id))
        .await
        .expect("a Docker engine (CCLAUNCH_REQUIRE_DOCKER=1)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_in_docker_launches_serves_stops_and_reuses_its_image() {
    let peer_id = format!("rt{}", std::process::id());
    let Some(docker) = engine(&peer_id).await else {
        return;
    };
    let docker = Arc::new(docker);
    let cc = name("kv:1.0");
    let container = docker.container_name(&cc).unwrap();
    let kv_binary = chaincode_samples::static_sample("kv").unwrap();
    let specs = Arc::new(MemorySpecStore::new());
    specs.insert(
        cc.clone(),
        ChaincodeDeploymentSpec {
            code_package: executor::package::package_binary(&kv_binary).unwrap(),
            ..Default::default()
        },
    );
    let support = peer_with(
        docker.clone(),
        |c| c.startup_timeout = Duration::from_secs(120),
        |b| b.spec_store(specs.clone()),
    )
    .await;

    let started = Instant::now();
    let ready = support.launch(&cc).await.expect("kv launches in docker");
    let first_launch = started.elapsed();
    assert_eq!(
        docker.builds_performed(),
        1,
        "the first launch builds the image"
    );
    let put = ready
        .execute(TxKind::Transaction, &args(&["put", "k", "v"]))
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    let get = ready
        .execute(TxKind::Transaction, &args(&["get", "k"]))
        .await
        .unwrap();
    assert_eq!(get.payload, b"v");

    support.stop(&cc).await.unwrap();
    let inspect = docker
        .client()
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await;
    assert!(inspect.is_err(), "the container is gone after stop");

    let started = Instant::now();
    let again = support.launch(&cc).await.expect("second launch");
    let second_launch = started.elapsed();
    assert_eq!(
        docker.builds_performed(),
        1,
        "the second launch reuses the image"
    );
    assert!(again.generation() > ready.generation());
    let get = again
        .execute(TxKind::Transaction, &args(&["get", "k"]))
        .await
        .unwrap();
    assert_eq!(
        get.payload, b"v",
        "state lives in the peer, not the container"
    );
    eprintln!(
        "docker launch→ready: first (with build) {first_launch:?}, second (image built) {second_launch:?}"
    );

    support.shutdown(Duration::from_secs(10)).await;
    assert!(
        docker
            .client()
            .inspect_container(
                &container,
                None::<bollard::query_parameters::InspectContainerOptions>
            )
            .await
            .is_err()
    );
    assert!(support.status().iter().all(|s| s.phase == Phase::Idle) || support.status().is_empty());
    docker.remove_image(&cc).await.unwrap();
}
