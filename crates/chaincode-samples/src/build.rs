//! Builds the sample binaries fully statically, for tests of other crates
//! (process and Docker executors need a binary that runs `FROM scratch`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The sample binaries this crate ships.
pub const SAMPLES: [&str; 2] = ["kv", "faulty"];
/// The target triple of the static build.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// When set, a directory that already holds the static binaries (no build).
pub const SAMPLES_DIR_ENV: &str = "CCLAUNCH_SAMPLES_DIR";

/// The path of the statically linked sample binary `bin` (`kv` or `faulty`).
///
/// With `CCLAUNCH_SAMPLES_DIR` set, the binary is taken from that directory.
/// Otherwise both samples are built once per process with
/// `cargo build --release --locked --target x86_64-unknown-linux-gnu -p
/// chaincode-samples --bin kv --bin faulty` and
/// `RUSTFLAGS=-C target-feature=+crt-static`, into
/// `<workspace>/target/static-samples`: a target directory of its own, so
/// that it does not wait on the lock held by an outer `cargo test`. Cargo
/// decides whether anything needs rebuilding.
///
/// # Errors
///
/// An unknown `bin`, a missing binary in `CCLAUNCH_SAMPLES_DIR`, or a failed
/// build (the error carries cargo's stderr).
pub fn static_sample(bin: &str) -> io::Result<PathBuf> {
    if !SAMPLES.contains(&bin) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("static sample: unknown binary {bin:?}: expected one of {SAMPLES:?}"),
        ));
    }
    if let Some(dir) = std::env::var_os(SAMPLES_DIR_ENV) {
        let path = Path::new(&dir).join(bin);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "static sample: {SAMPLES_DIR_ENV}={} holds no {bin}",
                    Path::new(&dir).display()
                ),
            ))
        };
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let release_dir = BUILT
        .get_or_init(build_static_samples)
        .as_ref()
        .map_err(|message| io::Error::other(message.clone()))?;
    let path = release_dir.join(bin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "static sample: cargo succeeded but {} is missing",
                path.display()
            ),
        ))
    }
}

/// Runs the static build; the directory holding the binaries, or a message.
fn build_static_samples() -> Result<PathBuf, String> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/chaincode-samples → workspace root.
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!(
                "static sample: no workspace above {}",
                manifest_dir.display()
            )
        })?;
    let target_dir = root.join("target").join("static-samples");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "--locked", "--target", STATIC_TARGET])
        .args(["-p", "chaincode-samples"])
        // Stripped: a sample that goes into every package and image need not
        // carry the workspace's line tables (25 MB → 4 MB).
        .args(["--config", "profile.release.strip=true"])
        .args(SAMPLES.iter().flat_map(|bin| ["--bin", bin]))
        .arg("--target-dir")
        .arg(&target_dir)
        // Takes precedence over RUSTFLAGS when an outer cargo set it.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    let output = command.output().map_err(|e| {
        format!(
            "static sample: cannot run {}: {e}",
            Path::new(&cargo).display()
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "static sample: `{command:?}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join(STATIC_TARGET).join("release"))
}
