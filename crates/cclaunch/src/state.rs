//! The peer's state directory: where its admin socket, its certificate
//! authority and (with `peer.fileSystemPath`) its packages and runtimes live.
//!
//! # Where it is
//! `--state-dir DIR` > `peer.fileSystemPath` > `$CCLAUNCH_HOME` >
//! `$XDG_STATE_HOME/cclaunch` > `$HOME/.local/state/cclaunch`. The CLI
//! commands look in the same default place, so that a CLI on the same
//! machine finds the peer without flags.
//!
//! # Guarantees
//! - The directory is created with mode `0700`; an existing one that other
//!   users may write to is refused (they could replace the admin socket).
//!   Reading is closed by the files themselves: the socket is `0600`, the
//!   CA lives in a `0700` directory with its key `0600`.
//! - The CA lives in `{state}/tls` ([`peer_ca`]), its key `0600`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chaincode_tls::{CertAuthority, IssuedCert};

use crate::error::CliError;

/// The admin socket's file name in a state directory.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// The TLS directory's name in a state directory (the CA, the admin identity).
pub const TLS_DIR: &str = "tls";
/// The admin client certificate's file name in the TLS directory.
pub const ADMIN_CLIENT_CERT: &str = "admin-client.crt";
/// The admin client key's file name in the TLS directory (mode `0600`).
pub const ADMIN_CLIENT_KEY: &str = "admin-client.key";
/// The CA's common name.
const CA_COMMON_NAME: &str = "cclaunch peer CA";
/// The admin client certificate's common name (spaces: never a chaincode name).
const ADMIN_CLIENT_CN: &str = "cclaunch admin client";
/// How long an admin client certificate is valid.
const ADMIN_CLIENT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The default state directory: `$CCLAUNCH_HOME`, else
/// `$XDG_STATE_HOME/cclaunch`, else `$HOME/.local/state/cclaunch`; `None`
/// when none of them is set.
pub fn default_state_dir() -> Option<PathBuf> {
    default_state_dir_from(|key| std::env::var_os(key).filter(|v| !v.is_empty()))
}

/// [`default_state_dir`] over an environment lookup (for tests).
pub fn default_state_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(home) = env("CCLAUNCH_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(state) = env("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("cclaunch"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".local/state/cclaunch"))
}

/// The default state directory, or an error that says how to name one.
pub fn require_default_state_dir() -> Result<PathBuf, CliError> {
    default_state_dir().ok_or_else(|| {
        CliError::new("no state directory: none of CCLAUNCH_HOME, XDG_STATE_HOME, HOME is set")
            .with_hint("pass --state-dir DIR (or set CCLAUNCH_HOME)")
    })
}

/// The admin socket of the peer whose state directory is `state_dir`.
pub fn admin_socket(state_dir: &Path) -> PathBuf {
    state_dir.join(ADMIN_SOCKET)
}

/// The TLS directory of `state_dir`.
pub fn tls_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(TLS_DIR)
}

/// Creates `dir` (mode `0700`, parents too) or checks that other users
/// cannot write to an existing one.
pub fn prepare(dir: &Path) -> Result<(), CliError> {
    let failed = |e: std::io::Error| {
        CliError::new(format!(
            "cannot create the state directory {}: {e}",
            dir.display()
        ))
        .with_hint("pick another with --state-dir DIR")
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let meta = fs::metadata(dir).map_err(failed)?;
    if !meta.is_dir() {
        return Err(CliError::new(format!(
            "the state directory {} is not a directory",
            dir.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(CliError::new(format!(
            "the state directory {} has mode {mode:o}: other users could replace the peer's admin socket",
            dir.display()
        ))
        .with_hint(format!("chmod 700 {}", dir.display())));
    }
    Ok(())
}

/// The peer's CA, kept in `{state_dir}/tls` (created on first use; key
/// `0600`). The chaincode listener's certificates come from the same CA.
pub fn peer_ca(state_dir: &Path) -> Result<CertAuthority, CliError> {
    let dir = tls_dir(state_dir);
    CertAuthority::load_or_create(&dir, CA_COMMON_NAME).map_err(|e| {
        CliError::new(format!(
            "cannot load the peer's CA in {}: {e}",
            dir.display()
        ))
    })
}

/// The admin client identity in `tls_dir`: read if both files are there,
/// else issued by `ca` and written (key `0600`). The TCP admin API accepts
/// only this certificate.
pub fn admin_client_identity(ca: &CertAuthority, tls_dir: &Path) -> Result<IssuedCert, CliError> {
    let cert_path = tls_dir.join(ADMIN_CLIENT_CERT);
    let key_path = tls_dir.join(ADMIN_CLIENT_KEY);
    let file_error = |path: &Path, e: &dyn std::fmt::Display| {
        CliError::new(format!(
            "cannot use the admin client identity {}: {e}",
            path.display()
        ))
        .with_hint(format!(
            "remove {} and {} to have a new one issued",
            cert_path.display(),
            key_path.display()
        ))
    };
    if cert_path.exists() && key_path.exists() {
        let mode = fs::metadata(&key_path)
            .map_err(|e| file_error(&key_path, &e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(file_error(
                &key_path,
                &format!("mode {mode:o} lets other users read the key: expected 0600"),
            ));
        }
        let cert_pem = fs::read_to_string(&cert_path).map_err(|e| file_error(&cert_path, &e))?;
        let key_pem = fs::read_to_string(&key_path).map_err(|e| file_error(&key_path, &e))?;
        let cert_der = first_cert_der(&cert_pem).map_err(|e| file_error(&cert_path, &e))?;
        return Ok(IssuedCert {
            cert_pem,
            key_pem,
            cert_der,
        });
    }
    let issued = ca
        .issue_client(ADMIN_CLIENT_CN, ADMIN_CLIENT_VALIDITY)
        .map_err(|e| CliError::new(format!("cannot issue the admin client identity: {e}")))?;
    write_private(&key_path, issued.key_pem.as_bytes(), 0o600)
        .map_err(|e| file_error(&key_path, &e))?;
    write_private(&cert_path, issued.cert_pem.as_bytes(), 0o644)
        .map_err(|e| file_error(&cert_path, &e))?;
    Ok(issued)
}

/// The client identity a developer's chaincode presents to a dev-mode peer
/// with TLS on: PEM files in the state directory's `tls/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevIdentity {
    /// The client certificate (`CORE_TLS_CLIENT_CERT_FILE`).
    pub cert_file: PathBuf,
    /// Its key, mode `0600` (`CORE_TLS_CLIENT_KEY_FILE`).
    pub key_file: PathBuf,
    /// The peer's CA (`CORE_PEER_TLS_ROOTCERT_FILE`).
    pub root_file: PathBuf,
}

impl DevIdentity {
    /// The environment a chaincode shim reads them from (Fabric's names).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CORE_PEER_TLS_ENABLED", "true".to_owned()),
            (
                "CORE_TLS_CLIENT_CERT_FILE",
                self.cert_file.display().to_string(),
            ),
            (
                "CORE_TLS_CLIENT_KEY_FILE",
                self.key_file.display().to_string(),
            ),
            (
                "CORE_PEER_TLS_ROOTCERT_FILE",
                self.root_file.display().to_string(),
            ),
        ]
    }
}

/// Issues a fresh dev-mode client identity from `tls` and writes it into
/// `{state_dir}/tls` (`dev-client.crt`, `dev-client.key` with mode `0600`).
pub fn write_dev_identity(
    tls: &chaincode_support::PeerTls,
    state_dir: &Path,
) -> Result<DevIdentity, CliError> {
    let dir = tls_dir(state_dir);
    let name: chaincode_proto::ChaincodeName = DEV_CLIENT_CN
        .parse()
        .map_err(|e| CliError::new(format!("dev client name: {e}")))?;
    let issued = tls
        .issue_dev_client(&name)
        .map_err(|e| CliError::new(format!("cannot issue the dev client identity: {e}")))?;
    let identity = DevIdentity {
        cert_file: dir.join("dev-client.crt"),
        key_file: dir.join("dev-client.key"),
        root_file: dir.join(chaincode_tls::CA_CERT_FILE),
    };
    let error = |path: &Path, e: std::io::Error| {
        CliError::new(format!("cannot write {}: {e}", path.display()))
    };
    write_private(&identity.key_file, issued.key_pem.as_bytes(), 0o600)
        .map_err(|e| error(&identity.key_file, e))?;
    write_private(&identity.cert_file, issued.cert_pem.as_bytes(), 0o644)
        .map_err(|e| error(&identity.cert_file, e))?;
    Ok(identity)
}

/// The common name of dev-mode client certificates (any name may register
/// with them in dev mode; none in net mode).
const DEV_CLIENT_CN: &str = "dev-client:1";

fn first_cert_der(pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

/// Writes `bytes` to `path` with `mode`, replacing a file left from before.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn default_state_dir_prefers_cclaunch_home_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        const ALL: [(&str, &str); 3] = [
            ("CCLAUNCH_HOME", "/c"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(default_state_dir_from(env(&ALL)), Some("/c".into()));
        assert_eq!(
            default_state_dir_from(env(&ALL[1..])),
            Some("/x/cclaunch".into())
        );
        assert_eq!(
            default_state_dir_from(env(&ALL[2..])),
            Some("/h/.local/state/cclaunch".into())
        );
        assert_eq!(default_state_dir_from(env(&[])), None);
    }

    #[test]
    fn prepare_creates_0700_and_refuses_a_writable_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        for open in [0o775, 0o757, 0o777] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(open)).unwrap();
            let err = prepare(&dir).unwrap_err();
            assert!(err.message.contains(&format!("mode {open:o}")), "{err}");
        }
    }

    #[test]
    fn the_admin_identity_is_issued_once_then_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = peer_ca(tmp.path()).unwrap();
        let tls = tls_dir(tmp.path());
        let first = admin_client_identity(&ca, &tls).unwrap();
        let key_mode = fs::metadata(tls.join(ADMIN_CLIENT_KEY))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
        let again = admin_client_identity(&ca, &tls).unwrap();
        assert_eq!(first.hash(), again.hash());
    }
}
