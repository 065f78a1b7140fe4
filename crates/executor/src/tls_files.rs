//! The files and variables through which a chaincode receives its TLS
//! client identity, as Fabric hands them over.
//!
//! | variable | file (Docker path under [`DOCKER_TLS_DIR`]) | contents |
//! |---|---|---|
//! | `CORE_TLS_CLIENT_KEY_PATH` | `client.key` | base64 of the key PEM |
//! | `CORE_TLS_CLIENT_CERT_PATH` | `client.crt` | base64 of the certificate PEM |
//! | `CORE_TLS_CLIENT_KEY_FILE` | `client_pem.key` | the key PEM |
//! | `CORE_TLS_CLIENT_CERT_FILE` | `client_pem.crt` | the certificate PEM |
//! | `CORE_PEER_TLS_ROOTCERT_FILE` | `peer.crt` | the root certificate PEM |
//!
//! plus `CORE_PEER_TLS_ENABLED=true`. The base64 files follow Fabric 1.x/2.x
//! (the Go shim decodes them); the PEM files serve the other shims.

use std::path::Path;

use crate::{ClientTls, StartRequest};

/// Where Fabric puts the files inside a chaincode container.
pub const DOCKER_TLS_DIR: &str = "/etc/hyperledger/fabric";

/// Env var: `true` when the chaincode must speak TLS to the peer.
pub const ENV_TLS_ENABLED: &str = "CORE_PEER_TLS_ENABLED";
/// Env var: file with the base64 of the client key PEM.
pub const ENV_CLIENT_KEY_PATH: &str = "CORE_TLS_CLIENT_KEY_PATH";
/// Env var: file with the base64 of the client certificate PEM.
pub const ENV_CLIENT_CERT_PATH: &str = "CORE_TLS_CLIENT_CERT_PATH";
/// Env var: file with the client key PEM.
pub const ENV_CLIENT_KEY_FILE: &str = "CORE_TLS_CLIENT_KEY_FILE";
/// Env var: file with the client certificate PEM.
pub const ENV_CLIENT_CERT_FILE: &str = "CORE_TLS_CLIENT_CERT_FILE";
/// Env var: file with the root certificate PEM the peer's certificate chains to.
pub const ENV_ROOT_CERT_FILE: &str = "CORE_PEER_TLS_ROOTCERT_FILE";

/// One file of a chaincode's TLS material.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsFile {
    /// The variable that names the file.
    pub env: &'static str,
    /// The file name (no directory).
    pub name: &'static str,
    /// What the file holds.
    pub contents: Vec<u8>,
    /// Whether it holds the private key (readable by its owner only).
    pub secret: bool,
}

impl std::fmt::Debug for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsFile")
            .field("env", &self.env)
            .field("name", &self.name)
            .field("bytes", &self.contents.len())
            .field("secret", &self.secret)
            .finish()
    }
}

impl TlsFile {
    /// The mode inside a container: `0400` for the key, `0444` otherwise.
    pub fn container_mode(&self) -> u32 {
        if self.secret { 0o400 } else { 0o444 }
    }
}

/// The five files for `tls`, in the order of the table in the module docs.
pub fn files_for(tls: &ClientTls) -> Vec<TlsFile> {
    use base64::Engine as _;
    let b64 = |pem: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(pem.as_bytes())
            .into_bytes()
    };
    vec![
        TlsFile {
            env: ENV_CLIENT_KEY_PATH,
            name: "client.key",
            contents: b64(&tls.key_pem),
            secret: true,
        },
        TlsFile {
            env: ENV_CLIENT_CERT_PATH,
            name: "client.crt",
            contents: b64(&tls.cert_pem),
            secret: false,
        },
        TlsFile {
            env: ENV_CLIENT_KEY_FILE,
            name: "client_pem.key",
            contents: tls.key_pem.as_bytes().to_vec(),
            secret: true,
        },
        TlsFile {
            env: ENV_CLIENT_CERT_FILE,
            name: "client_pem.crt",
            contents: tls.cert_pem.as_bytes().to_vec(),
            secret: false,
        },
        TlsFile {
            env: ENV_ROOT_CERT_FILE,
            name: "peer.crt",
            contents: tls.root_cert_pem.as_bytes().to_vec(),
            secret: false,
        },
    ]
}

impl StartRequest {
    /// The TLS files this launch hands to its chaincode; empty without TLS.
    pub fn tls_files(&self) -> Vec<TlsFile> {
        self.tls.as_ref().map(files_for).unwrap_or_default()
    }

    /// The environment Fabric gives every chaincode, with the TLS files
    /// (when [`Self::tls`] is set) placed in `tls_dir` as the chaincode sees
    /// it, followed by [`Self::env`]. Without TLS, `tls_dir` is unused and
    /// `CORE_PEER_TLS_ENABLED=false`.
    pub fn fabric_env_in(&self, tls_dir: &Path) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "CORE_CHAINCODE_ID_NAME".to_owned(),
                self.chaincode.to_string(),
            ),
            (ENV_TLS_ENABLED.to_owned(), self.tls.is_some().to_string()),
            ("CORE_PEER_ADDRESS".to_owned(), self.peer_address.clone()),
        ];
        for file in self.tls_files() {
            env.push((
                file.env.to_owned(),
                tls_dir.join(file.name).to_string_lossy().into_owned(),
            ));
        }
        env.extend(self.env.iter().cloned());
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Generation;
    use base64::Engine as _;

    fn request(tls: Option<ClientTls>) -> StartRequest {
        StartRequest {
            chaincode: "kv:1.0".parse().unwrap(),
            generation: Generation::default(),
            code_package: Vec::new(),
            peer_address: "127.0.0.1:7052".into(),
            env: vec![("EXTRA".into(), "1".into())],
            tls,
        }
    }

    #[test]
    fn without_tls_there_are_no_files_and_tls_is_off() {
        let request = request(None);
        assert!(request.tls_files().is_empty());
        let env = request.fabric_env_in(Path::new("/x"));
        assert!(env.contains(&(ENV_TLS_ENABLED.into(), "false".into())));
        assert!(!env.iter().any(|(k, _)| k.starts_with("CORE_TLS")));
        assert_eq!(env.last(), Some(&("EXTRA".into(), "1".into())));
        assert_eq!(env, request.fabric_env());
    }

    #[test]
    fn with_tls_the_five_files_hold_pem_or_its_base64() {
        let tls = ClientTls {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
            root_cert_pem: "ROOT".into(),
        };
        let request = request(Some(tls));
        let files = request.tls_files();
        let by_env = |env: &str| files.iter().find(|f| f.env == env).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(by_env(ENV_CLIENT_KEY_PATH).contents, b64("KEY").as_bytes());
        assert_eq!(
            by_env(ENV_CLIENT_CERT_PATH).contents,
            b64("CERT").as_bytes()
        );
        assert_eq!(by_env(ENV_CLIENT_KEY_FILE).contents, b"KEY");
        assert_eq!(by_env(ENV_CLIENT_CERT_FILE).contents, b"CERT");
        assert_eq!(by_env(ENV_ROOT_CERT_FILE).contents, b"ROOT");
        let secrets: Vec<_> = files.iter().filter(|f| f.secret).map(|f| f.name).collect();
        assert_eq!(secrets, ["client.key", "client_pem.key"]);
        let env = request.fabric_env_in(Path::new(DOCKER_TLS_DIR));
        assert!(env.contains(&(ENV_TLS_ENABLED.into(), "true".into())));
        for (var, path) in [
            (ENV_CLIENT_KEY_PATH, "/etc/hyperledger/fabric/client.key"),
            (ENV_CLIENT_CERT_PATH, "/etc/hyperledger/fabric/client.crt"),
            (
                ENV_CLIENT_KEY_FILE,
                "/etc/hyperledger/fabric/client_pem.key",
            ),
            (
                ENV_CLIENT_CERT_FILE,
                "/etc/hyperledger/fabric/client_pem.crt",
            ),
            (ENV_ROOT_CERT_FILE, "/etc/hyperledger/fabric/peer.crt"),
        ] {
            assert!(env.contains(&(var.into(), path.into())), "{var}");
        }
    }
}
