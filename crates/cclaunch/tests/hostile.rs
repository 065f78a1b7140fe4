//! Hostile input at every way into `cclaunch`: each section is one attack,
//! driven through the real binary (and the real admin API on 127.0.0.1), and
//! checks that it is refused, says why, and leaves nothing behind.

mod common;

use cclaunch::admin::AdminClient;
use cclaunch::admin::proto::LaunchRequest;
use chaincode_proto::name::{NAME_RULE, VERSION_RULE};
use common::*;

/// Names that would leave the packages directory, or are not names at all.
const BAD_NAMES: [&str; 4] = ["/tmp/evil:1", "../x:1", "a/b:1", "my cc:1"];

// ---------------------------------------------------------------------------
// Path traversal through chaincode names on the command line: refused before
// any connection, as a usage error (exit 2), quoting Fabric's rule.
// ---------------------------------------------------------------------------

#[test]
fn launch_invoke_and_stop_refuse_names_that_break_the_rule() {
    // No peer listens there: a refusal must come before any connection.
    let admin = free_addr();
    for bad in BAD_NAMES {
        for command in [
            &["launch", bad][..],
            &["invoke", bad, "get", "k"],
            &["stop", bad],
        ] {
            let mut args = command.to_vec();
            args.extend(["--admin", &admin]);
            let output = cclaunch(&args);
            let (_, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(NAME_RULE), "{args:?}: {stderr}");
            assert!(stderr.contains("is invalid"), "{args:?}: {stderr}");
        }
    }
    let output = cclaunch(&["launch", "kv:1/../../x", "--admin", &admin]);
    let (_, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(VERSION_RULE), "{stderr}");
}

// ---------------------------------------------------------------------------
// The same names sent straight to the admin API, bypassing the CLI's check:
// the peer refuses them as invalid arguments and creates no entry.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_admin_api_refuses_names_that_break_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pk")).unwrap();
    let peer = Peer::start(
        &free_addr(),
        &["--listen", "127.0.0.1:0", "--packages", "pk"],
        dir.path(),
    );
    let mut client = AdminClient::connect(format!("http://{}", peer.admin))
        .await
        .unwrap();
    for bad in BAD_NAMES {
        let status = client
            .launch(LaunchRequest {
                chaincode: bad.to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{bad}: {status:?}"
        );
        assert!(status.message().contains(NAME_RULE), "{bad}: {status:?}");
    }
    assert!(peer.ps().is_empty(), "no entry for a refused name");
}

// ---------------------------------------------------------------------------
// `cclaunch package --name ../x`: the name and version are checked before
// the binary is read or any directory or file is made.
// ---------------------------------------------------------------------------

#[test]
fn package_refuses_a_bad_name_or_version_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("cc");
    std::fs::write(&binary, b"\x7fELF not really").unwrap();
    let out = dir.path().join("pk");
    for (name, version, rule) in [
        ("../x", "1", NAME_RULE),
        ("/tmp/evil", "1", NAME_RULE),
        (".hidden", "1", NAME_RULE),
        ("x", "../../1", VERSION_RULE),
        ("x", "1/2", VERSION_RULE),
    ] {
        let output = cclaunch(&[
            "package",
            "--binary",
            binary.to_str().unwrap(),
            "--name",
            name,
            "--version",
            version,
            "--out",
            out.to_str().unwrap(),
        ]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(2), "{name}:{version}: {stderr}");
        assert!(stderr.contains(rule), "{name}:{version}: {stderr}");
        assert!(
            !out.exists(),
            "{name}:{version}: the packages directory was made"
        );
    }
    // Only the binary: no `x.1` beside `pk`, nothing anywhere else.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["cc"]);
}

// ---------------------------------------------------------------------------
// `cclaunch package --binary` naming a FIFO or a directory: refused at once
// (a FIFO must not block the packager), and nothing is written.
// ---------------------------------------------------------------------------

#[test]
fn package_refuses_a_binary_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = dir.path().join("pk");
    for (binary, kind) in [
        (fifo.as_path(), "is a FIFO"),
        (dir.path(), "is a directory"),
    ] {
        let output = cclaunch(&[
            "package",
            "--binary",
            binary.to_str().unwrap(),
            "--name",
            "x",
            "--version",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("cannot package x:1") && stderr.contains(kind),
            "{stderr}"
        );
        assert!(!out.exists(), "{stderr}");
    }
}

// ---------------------------------------------------------------------------
// Package files planted in the peer's packages directory: a FIFO (which
// would hang a plain read) and a symbolic link out of the directory are
// refused, promptly, naming the chaincode, the path and the rule.
// ---------------------------------------------------------------------------

#[test]
fn the_peer_refuses_package_files_that_are_fifos_or_links() {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("pk");
    std::fs::create_dir(&packages).unwrap();
    nix::unistd::mkfifo(&packages.join("fifo.1"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"not yours").unwrap();
    std::os::unix::fs::symlink(&secret, packages.join("link.1")).unwrap();
    let peer = Peer::start(
        &free_addr(),
        &["--listen", "127.0.0.1:0", "--packages", "pk"],
        dir.path(),
    );
    for (chaincode, file, kind) in [
        ("fifo:1", "fifo.1", "is a FIFO"),
        ("link:1", "link.1", "is a symbolic link"),
    ] {
        let output = peer.run(&["launch", chaincode]);
        let (_, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{chaincode}: {stderr}");
        for needle in [
            chaincode,
            kind,
            // The peer was given `--packages pk`.
            &format!("pk/{file}"),
            "a package must be a regular file",
        ] {
            assert!(
                stderr.contains(needle),
                "{chaincode}: no {needle:?} in {stderr}"
            );
        }
    }
}
