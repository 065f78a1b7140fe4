//! `FsSpecStore` reads a package file only as a bounded regular file inside
//! its directory: each test plants one hostile thing where a package file
//! should be and checks the lookup refuses it, promptly, saying why.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use chaincode_proto::ChaincodeDeploymentSpec;
use chaincode_proto::prost::Message;
use chaincode_support::{DEFAULT_MAX_PACKAGE_BYTES, FsSpecStore, SpecStore};

fn cc() -> chaincode_proto::ChaincodeName {
    "kv:1.0".parse().unwrap()
}

fn spec() -> ChaincodeDeploymentSpec {
    ChaincodeDeploymentSpec {
        code_package: b"package".to_vec(),
        ..Default::default()
    }
}

/// The lookup's error, which must come within a few seconds. A lookup stuck
/// on a FIFO is unblocked (by opening its write end) before failing, so a
/// missing defence fails the test instead of hanging it.
async fn refusal(store: &FsSpecStore) -> String {
    let cc = cc();
    match tokio::time::timeout(Duration::from_secs(5), store.lookup(&cc)).await {
        Ok(result) => result.expect_err("the lookup should have been refused"),
        Err(_) => {
            drop(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(store.path_of(&cc)),
            );
            panic!("the lookup blocked");
        }
    }
}

fn assert_names_chaincode_path_and_rule(err: &str, path: &Path) {
    assert!(err.contains("kv:1.0"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("a package must be a regular file"), "{err}");
}

#[tokio::test]
async fn a_regular_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    assert_eq!(store.max_size(), DEFAULT_MAX_PACKAGE_BYTES);
    std::fs::write(store.path_of(&cc()), spec().encode_to_vec()).unwrap();
    assert_eq!(store.lookup(&cc()).await.unwrap(), spec());
}

#[tokio::test]
async fn the_path_stays_inside_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    let id = format!("my.cc+1:{}", "ab".repeat(32)).parse().unwrap();
    for chaincode in [cc(), id] {
        let path = store.path_of(&chaincode);
        assert_eq!(path.parent(), Some(dir.path()), "{}", path.display());
        assert!(!path.file_name().unwrap().to_str().unwrap().starts_with('.'));
    }
}

#[tokio::test]
async fn a_symlink_to_a_file_inside_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    let real = dir.path().join("other.1.0");
    std::fs::write(&real, spec().encode_to_vec()).unwrap();
    std::os::unix::fs::symlink(&real, store.path_of(&cc())).unwrap();
    let err = refusal(&store).await;
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_names_chaincode_path_and_rule(&err, &store.path_of(&cc()));
}

#[tokio::test]
async fn a_symlink_pointing_outside_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, spec().encode_to_vec()).unwrap();
    let store = FsSpecStore::new(dir.path());
    std::os::unix::fs::symlink(&secret, store.path_of(&cc())).unwrap();
    let err = refusal(&store).await;
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert_names_chaincode_path_and_rule(&err, &store.path_of(&cc()));
}

#[tokio::test]
async fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    nix::unistd::mkfifo(&store.path_of(&cc()), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = refusal(&store).await;
    assert!(err.contains("is a FIFO"), "{err}");
    assert_names_chaincode_path_and_rule(&err, &store.path_of(&cc()));
}

#[tokio::test]
async fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    std::fs::create_dir(store.path_of(&cc())).unwrap();
    let err = refusal(&store).await;
    assert!(err.contains("is a directory"), "{err}");
    assert_names_chaincode_path_and_rule(&err, &store.path_of(&cc()));
}

#[tokio::test]
async fn an_oversize_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsSpecStore::new(dir.path());
    // Sparse, well over the default cap. The size in the message is the
    // file's (from fstat), not the cap + 1 a bounded read would stop at.
    let size = 4 * DEFAULT_MAX_PACKAGE_BYTES;
    File::create(store.path_of(&cc()))
        .unwrap()
        .set_len(size)
        .unwrap();
    let err = refusal(&store).await;
    assert!(err.contains(&format!("is {size} bytes")), "{err}");
    assert!(
        err.contains(&format!("at most {DEFAULT_MAX_PACKAGE_BYTES} bytes")),
        "{err}"
    );
    assert_names_chaincode_path_and_rule(&err, &store.path_of(&cc()));
}

#[tokio::test]
async fn the_cap_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = spec().encode_to_vec();
    let len = bytes.len() as u64;
    let exact = FsSpecStore::new(dir.path()).with_max_size(len);
    std::fs::write(exact.path_of(&cc()), &bytes).unwrap();
    assert_eq!(exact.lookup(&cc()).await.unwrap(), spec());
    // Well under: the size reported is the file's, not what a read got.
    let tight = FsSpecStore::new(dir.path()).with_max_size(len / 2);
    let err = refusal(&tight).await;
    assert!(err.contains(&format!("is {len} bytes")), "{err}");
}
