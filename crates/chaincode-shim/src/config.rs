//! Configuration from Fabric's conventions: what the peer gives a chaincode
//! process in its environment and arguments.

use std::time::Duration;

use chaincode_proto::ChaincodeName;

use crate::error::ConfigError;

/// Environment variable with the chaincode's canonical `name:version`.
pub const ENV_CHAINCODE_ID_NAME: &str = "CORE_CHAINCODE_ID_NAME";
/// Environment variable with the peer's `HOST:PORT` (used when no argument gives it).
pub const ENV_PEER_ADDRESS: &str = "CORE_PEER_ADDRESS";
/// Environment variable that turns TLS on (`true`) or off (`false`).
pub const ENV_PEER_TLS_ENABLED: &str = "CORE_PEER_TLS_ENABLED";
/// File with the PEM of the root certificate the peer's certificate chains to.
pub const ENV_PEER_TLS_ROOTCERT_FILE: &str = "CORE_PEER_TLS_ROOTCERT_FILE";
/// File with the client certificate, PEM.
pub const ENV_TLS_CLIENT_CERT_FILE: &str = "CORE_TLS_CLIENT_CERT_FILE";
/// File with the client key, PEM.
pub const ENV_TLS_CLIENT_KEY_FILE: &str = "CORE_TLS_CLIENT_KEY_FILE";
/// File with the base64 of the client certificate PEM (Fabric 1.x/2.x).
pub const ENV_TLS_CLIENT_CERT_PATH: &str = "CORE_TLS_CLIENT_CERT_PATH";
/// File with the base64 of the client key PEM (Fabric 1.x/2.x).
pub const ENV_TLS_CLIENT_KEY_PATH: &str = "CORE_TLS_CLIENT_KEY_PATH";

/// Default bound on connecting to the peer.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the shim connects and who it says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The canonical name sent in REGISTER.
    pub name: ChaincodeName,
    /// The peer's `HOST:PORT` (no scheme).
    pub peer_address: String,
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
    /// TLS towards the peer: `None` speaks plain-text gRPC. With `Some`, the
    /// shim trusts only [`ShimTls::root_cert_pem`], checks the peer's
    /// certificate against the host of [`Config::peer_address`], and
    /// presents its client certificate.
    pub tls: Option<ShimTls>,
}

/// The TLS material a chaincode gets from its peer: the root that the peer's
/// server certificate chains to, and this launch's client certificate and key.
///
/// Built by [`ShimTls::from_pem`] (which checks it) or read from the
/// environment by [`Config::from_env_and_args`].
#[derive(Clone, PartialEq, Eq)]
pub struct ShimTls {
    root_cert_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ShimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ShimTls").finish_non_exhaustive()
    }
}

/// Why TLS material was refused by [`ShimTls::from_pem`]: which part
/// (`root`, `cert`, `key`, or `cert` and `key` together) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TLS {part}: {reason}")]
pub struct InvalidTls {
    /// `root`, `cert`, `key` or `cert/key`.
    pub part: &'static str,
    /// What rustls or the PEM parser said.
    pub reason: String,
}

impl ShimTls {
    /// Checks the material (each PEM parses, the key belongs to the
    /// certificate) and keeps it.
    pub fn from_pem(
        root_cert_pem: impl Into<String>,
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> Result<Self, InvalidTls> {
        let tls = Self {
            root_cert_pem: root_cert_pem.into(),
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        };
        tls.check()?;
        Ok(tls)
    }

    /// The root certificate, PEM.
    pub fn root_cert_pem(&self) -> &str {
        &self.root_cert_pem
    }

    /// The client certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The client key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Builds the rustls client configuration that tonic will build later,
    /// so that bad material fails here, with a name, and not at connect.
    fn check(&self) -> Result<(), InvalidTls> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |part: &'static str| {
            move |e: &dyn std::fmt::Display| InvalidTls {
                part,
                reason: e.to_string(),
            }
        };
        let certs = |part: &'static str, pem: &str| {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(part)(&e))?;
            if certs.is_empty() {
                return Err(invalid(part)(&"no CERTIFICATE block in the PEM text"));
            }
            Ok(certs)
        };
        let mut roots = rustls::RootCertStore::empty();
        for root in certs("root", &self.root_cert_pem)? {
            roots.add(root).map_err(|e| invalid("root")(&e))?;
        }
        let chain = certs("cert", &self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("key")(&e))?;
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("cert/key")(&e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| invalid("cert/key")(&e))?;
        Ok(())
    }
}

impl Config {
    /// A configuration with the default connect timeout; the address is checked.
    pub fn new(name: ChaincodeName, peer_address: impl Into<String>) -> Result<Self, ConfigError> {
        let peer_address = peer_address.into();
        check_address(&peer_address)?;
        Ok(Self {
            name,
            peer_address,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
        })
    }

    /// This configuration, speaking TLS with `tls`.
    pub fn with_tls(mut self, tls: ShimTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The host part of [`Config::peer_address`] (brackets of an IPv6
    /// literal removed): the name the peer's certificate must carry.
    pub fn peer_host(&self) -> &str {
        let host = self
            .peer_address
            .rsplit_once(':')
            .map_or(self.peer_address.as_str(), |(host, _)| host);
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// Reads the process environment and arguments as a Fabric peer sets
    /// them: `CORE_CHAINCODE_ID_NAME`, `-peer.address=HOST:PORT` (also
    /// `--peer.address=…` and `-peer.address HOST:PORT`) or else
    /// `CORE_PEER_ADDRESS`, and `CORE_PEER_TLS_ENABLED`. Other arguments are
    /// ignored.
    ///
    /// With `CORE_PEER_TLS_ENABLED=true` the TLS material is read as Fabric
    /// hands it over: the root from `CORE_PEER_TLS_ROOTCERT_FILE` (PEM); the
    /// client certificate and key from `CORE_TLS_CLIENT_CERT_FILE` and
    /// `CORE_TLS_CLIENT_KEY_FILE` (PEM), or else from
    /// `CORE_TLS_CLIENT_CERT_PATH` and `CORE_TLS_CLIENT_KEY_PATH` (files
    /// holding the base64 of the PEM). A missing variable, an unreadable
    /// file or invalid contents is a [`ConfigError`] naming the variable and
    /// the file.
    pub fn from_env_and_args() -> Result<Self, ConfigError> {
        Self::from_parts(|key| std::env::var(key).ok(), std::env::args().skip(1))
    }

    /// Like [`Config::from_env_and_args`] with the environment given as a
    /// lookup function and the arguments without the program name.
    pub fn from_parts<I, A>(
        env: impl Fn(&str) -> Option<String>,
        args: I,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        let tls_enabled = match env(ENV_PEER_TLS_ENABLED) {
            Some(flag) => {
                parse_go_bool(&flag).ok_or_else(|| ConfigError::InvalidTlsFlag(flag.clone()))?
            }
            None => false,
        };
        let name = env(ENV_CHAINCODE_ID_NAME)
            .filter(|name| !name.is_empty())
            .ok_or(ConfigError::MissingName)?;
        let name =
            ChaincodeName::parse(&name).map_err(|source| ConfigError::InvalidName { source })?;
        let address = match peer_address_arg(args)? {
            Some(address) => address,
            None => env(ENV_PEER_ADDRESS)
                .filter(|address| !address.is_empty())
                .ok_or(ConfigError::MissingPeerAddress)?,
        };
        let config = Self::new(name, address)?;
        if !tls_enabled {
            return Ok(config);
        }
        Ok(config.with_tls(tls_from_env(&env)?))
    }
}

/// Reads the TLS files named by the environment; see
/// [`Config::from_env_and_args`].
fn tls_from_env(env: &impl Fn(&str) -> Option<String>) -> Result<ShimTls, ConfigError> {
    let var = |name: &'static str| env(name).filter(|value| !value.is_empty());
    let read = |name: &'static str, path: &str| {
        std::fs::read(path).map_err(|e| ConfigError::TlsUnreadable {
            var: name,
            path: path.to_owned(),
            reason: e.to_string(),
        })
    };
    let invalid = |name: &'static str, path: &str, reason: String| ConfigError::TlsInvalid {
        var: name,
        path: path.to_owned(),
        reason,
    };
    let text = |name: &'static str, path: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| invalid(name, path, "not UTF-8 text".to_owned()))
    };
    // The PEM file, or else the base64 one; returns the text and its source.
    let pem_or_base64 = |pem_var: &'static str, b64_var: &'static str| {
        if let Some(path) = var(pem_var) {
            let pem = text(pem_var, &path, read(pem_var, &path)?)?;
            return Ok((pem, pem_var, path));
        }
        let Some(path) = var(b64_var) else {
            return Err(ConfigError::TlsMissingVar { var: pem_var });
        };
        use base64::Engine as _;
        let raw = read(b64_var, &path)?;
        // Fabric writes no newline, but tolerate one added by hand.
        let trimmed: Vec<u8> = raw
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&trimmed)
            .map_err(|e| invalid(b64_var, &path, format!("not base64: {e}")))?;
        let pem = text(b64_var, &path, decoded)?;
        Ok((pem, b64_var, path))
    };
    let root_path = var(ENV_PEER_TLS_ROOTCERT_FILE).ok_or(ConfigError::TlsMissingVar {
        var: ENV_PEER_TLS_ROOTCERT_FILE,
    })?;
    let root = text(
        ENV_PEER_TLS_ROOTCERT_FILE,
        &root_path,
        read(ENV_PEER_TLS_ROOTCERT_FILE, &root_path)?,
    )?;
    let (cert, cert_var, cert_path) =
        pem_or_base64(ENV_TLS_CLIENT_CERT_FILE, ENV_TLS_CLIENT_CERT_PATH)?;
    let (key, key_var, key_path) = pem_or_base64(ENV_TLS_CLIENT_KEY_FILE, ENV_TLS_CLIENT_KEY_PATH)?;
    ShimTls::from_pem(root, cert, key).map_err(|e| {
        let (var, path) = match e.part {
            "root" => (ENV_PEER_TLS_ROOTCERT_FILE, root_path.clone()),
            "cert" => (cert_var, cert_path.clone()),
            "key" => (key_var, key_path.clone()),
            // The key does not belong to the certificate: name both.
            _ => (cert_var, format!("{cert_path} (with {key_var}={key_path})")),
        };
        invalid(var, &path, e.to_string())
    })
}

/// Go's `strconv.ParseBool` spellings, since Fabric's peer and shims use it
/// (an empty value counts as false: the variable is effectively unset).
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        _ => None,
    }
}

/// Finds `-peer.address` among the arguments, in Go's flag spellings.
fn peer_address_arg<I, A>(args: I) -> Result<Option<String>, ConfigError>
where
    I: IntoIterator<Item = A>,
    A: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut found = None;
    while let Some(arg) = args.next() {
        let Some(rest) = arg
            .strip_prefix("--peer.address")
            .or_else(|| arg.strip_prefix("-peer.address"))
        else {
            continue;
        };
        if let Some(value) = rest.strip_prefix('=') {
            found = Some(value.to_owned());
        } else if rest.is_empty() {
            let value = args
                .next()
                .ok_or_else(|| ConfigError::MissingFlagValue { flag: arg.clone() })?;
            found = Some(value);
        }
        // Anything else (e.g. `-peer.addressX`) is another flag: ignore it.
    }
    Ok(found)
}

fn check_address(address: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidPeerAddress {
        address: address.to_owned(),
        reason,
    };
    if address.contains("://") {
        return Err(invalid("give HOST:PORT without a scheme"));
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| invalid("missing :PORT"))?;
    if host.is_empty() {
        return Err(invalid("empty host"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid("port must be a number from 1 to 65535")),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    const NAME: (&str, &str) = (ENV_CHAINCODE_ID_NAME, "mycc:1.0");

    #[test]
    fn reads_every_peer_address_spelling() {
        for args in [
            vec!["-peer.address=127.0.0.1:7052"],
            vec!["--peer.address=127.0.0.1:7052"],
            vec!["-peer.address", "127.0.0.1:7052"],
            vec!["--peer.address", "127.0.0.1:7052"],
            vec!["--mode=ok", "-peer.address=127.0.0.1:7052", "extra"],
        ] {
            let config = Config::from_parts(env(&[NAME]), args.clone()).unwrap();
            assert_eq!(config.peer_address, "127.0.0.1:7052", "{args:?}");
            assert_eq!(config.name.to_string(), "mycc:1.0");
            assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        }
    }

    #[test]
    fn argument_wins_over_environment_which_is_the_fallback() {
        let both = env(&[NAME, (ENV_PEER_ADDRESS, "peer:1")]);
        let config = Config::from_parts(&both, ["-peer.address=peer:2"]).unwrap();
        assert_eq!(config.peer_address, "peer:2");
        let config = Config::from_parts(&both, Vec::<String>::new()).unwrap();
        assert_eq!(config.peer_address, "peer:1");
    }

    #[test]
    fn refuses_missing_or_bad_values() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            Config::from_parts(env(&[]), ["-peer.address=h:1"]),
            Err(ConfigError::MissingName)
        );
        assert!(matches!(
            Config::from_parts(
                env(&[(ENV_CHAINCODE_ID_NAME, "mycc")]),
                ["-peer.address=h:1"]
            ),
            Err(ConfigError::InvalidName { .. })
        ));
        assert_eq!(
            Config::from_parts(env(&[NAME]), none.clone()),
            Err(ConfigError::MissingPeerAddress)
        );
        assert_eq!(
            Config::from_parts(env(&[NAME]), ["-peer.address"]),
            Err(ConfigError::MissingFlagValue {
                flag: "-peer.address".into()
            })
        );
        for bad in ["nohost", ":7052", "h:0", "h:70000", "h:x", "http://h:1"] {
            let err = Config::from_parts(env(&[NAME, (ENV_PEER_ADDRESS, bad)]), none.clone())
                .unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidPeerAddress { address, .. } if address == bad),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn tls_flag_false_or_unset_means_no_tls_and_garbage_is_refused() {
        for off in ["false", "0", "", "False"] {
            let config = Config::from_parts(
                env(&[NAME, (ENV_PEER_TLS_ENABLED, off)]),
                ["-peer.address=h:1"],
            )
            .unwrap();
            assert_eq!(config.tls, None);
        }
        assert_eq!(
            Config::from_parts(
                env(&[NAME, (ENV_PEER_TLS_ENABLED, "yes")]),
                ["-peer.address=h:1"]
            ),
            Err(ConfigError::InvalidTlsFlag("yes".into()))
        );
    }

    /// A CA, a client certificate of it, and the five files Fabric writes.
    struct Material {
        dir: tempfile::TempDir,
        root: String,
        client: chaincode_tls::IssuedCert,
    }

    impl Material {
        fn new() -> Self {
            use base64::Engine as _;
            let ca = chaincode_tls::CertAuthority::generate("test CA").unwrap();
            let client = ca
                .issue_client("mycc:1.0", Duration::from_secs(3600))
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            for (name, contents) in [
                ("peer.crt", ca.root_pem().to_owned()),
                ("client_pem.crt", client.cert_pem.clone()),
                ("client_pem.key", client.key_pem.clone()),
                ("client.crt", b64(&client.cert_pem)),
                ("client.key", b64(&client.key_pem)),
            ] {
                std::fs::write(dir.path().join(name), contents).unwrap();
            }
            Self {
                root: ca.root_pem().to_owned(),
                client,
                dir,
            }
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        /// The environment naming `vars` (variable, file name) with TLS on.
        fn env(&self, vars: &[(&'static str, &str)]) -> impl Fn(&str) -> Option<String> {
            let mut pairs: Vec<(String, String)> = vec![
                (NAME.0.into(), NAME.1.into()),
                (ENV_PEER_TLS_ENABLED.into(), "true".into()),
            ];
            for (var, name) in vars {
                pairs.push(((*var).into(), self.path(name)));
            }
            move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        }
    }

    const PEM_VARS: [(&str, &str); 3] = [
        (ENV_PEER_TLS_ROOTCERT_FILE, "peer.crt"),
        (ENV_TLS_CLIENT_CERT_FILE, "client_pem.crt"),
        (ENV_TLS_CLIENT_KEY_FILE, "client_pem.key"),
    ];
    const B64_VARS: [(&str, &str); 3] = [
        (ENV_PEER_TLS_ROOTCERT_FILE, "peer.crt"),
        (ENV_TLS_CLIENT_CERT_PATH, "client.crt"),
        (ENV_TLS_CLIENT_KEY_PATH, "client.key"),
    ];

    #[test]
    fn tls_material_is_read_from_pem_files_or_else_from_base64_files() {
        let m = Material::new();
        for vars in [&PEM_VARS[..], &B64_VARS[..]] {
            let config = Config::from_parts(m.env(vars), ["-peer.address=localhost:7052"]).unwrap();
            let tls = config.tls.expect("TLS on");
            assert_eq!(tls.root_cert_pem(), m.root);
            assert_eq!(tls.cert_pem(), m.client.cert_pem);
            assert_eq!(tls.key_pem(), m.client.key_pem);
            assert!(!format!("{tls:?}").contains("PRIVATE"));
        }
        // Both given: the PEM file wins (the base64 one is garbage here).
        std::fs::write(m.dir.path().join("bad.b64"), "!!!").unwrap();
        let mut both = PEM_VARS.to_vec();
        both.push((ENV_TLS_CLIENT_KEY_PATH, "bad.b64"));
        Config::from_parts(m.env(&both), ["-peer.address=h:1"]).unwrap();
    }

    #[test]
    fn missing_unreadable_or_invalid_tls_material_names_the_variable_and_file() {
        let m = Material::new();
        let err = |vars: &[(&'static str, &str)]| {
            Config::from_parts(m.env(vars), ["-peer.address=h:1"]).unwrap_err()
        };
        assert_eq!(
            err(&PEM_VARS[1..]),
            ConfigError::TlsMissingVar {
                var: ENV_PEER_TLS_ROOTCERT_FILE
            }
        );
        assert_eq!(
            err(&[PEM_VARS[0], PEM_VARS[2]]),
            ConfigError::TlsMissingVar {
                var: ENV_TLS_CLIENT_CERT_FILE
            }
        );
        let e = err(&[
            PEM_VARS[0],
            (ENV_TLS_CLIENT_CERT_FILE, "nope.crt"),
            PEM_VARS[2],
        ]);
        assert!(
            matches!(&e, ConfigError::TlsUnreadable { var, path, .. }
                if *var == ENV_TLS_CLIENT_CERT_FILE && path.ends_with("nope.crt")),
            "{e:?}"
        );
        assert!(e.to_string().contains("CORE_TLS_CLIENT_CERT_FILE="), "{e}");

        std::fs::write(m.dir.path().join("bad.b64"), "not base64!").unwrap();
        let e = err(&[
            B64_VARS[0],
            B64_VARS[1],
            (ENV_TLS_CLIENT_KEY_PATH, "bad.b64"),
        ]);
        assert!(
            matches!(&e, ConfigError::TlsInvalid { var, reason, .. }
                if *var == ENV_TLS_CLIENT_KEY_PATH && reason.contains("base64")),
            "{e:?}"
        );
        // A PEM file where base64 is expected is refused, not half-read.
        let e = err(&[
            B64_VARS[0],
            (ENV_TLS_CLIENT_CERT_PATH, "client_pem.crt"),
            B64_VARS[2],
        ]);
        assert!(
            matches!(&e, ConfigError::TlsInvalid { var, .. } if *var == ENV_TLS_CLIENT_CERT_PATH),
            "{e:?}"
        );
        // A root that is no certificate.
        let e = err(&[
            (ENV_PEER_TLS_ROOTCERT_FILE, "client_pem.key"),
            PEM_VARS[1],
            PEM_VARS[2],
        ]);
        assert!(
            matches!(&e, ConfigError::TlsInvalid { var, .. } if *var == ENV_PEER_TLS_ROOTCERT_FILE),
            "{e:?}"
        );
        // A key that does not belong to the certificate.
        let other = chaincode_tls::CertAuthority::generate("other CA")
            .unwrap()
            .issue_client("mycc:1.0", Duration::from_secs(3600))
            .unwrap();
        std::fs::write(m.dir.path().join("other.key"), &other.key_pem).unwrap();
        let e = err(&[
            PEM_VARS[0],
            PEM_VARS[1],
            (ENV_TLS_CLIENT_KEY_FILE, "other.key"),
        ]);
        assert!(
            matches!(&e, ConfigError::TlsInvalid { var, path, .. }
                if *var == ENV_TLS_CLIENT_CERT_FILE && path.contains("other.key")),
            "{e:?}"
        );
    }

    #[test]
    fn peer_host_is_the_name_the_certificate_must_carry() {
        let name = ChaincodeName::parse("mycc:1.0").unwrap();
        for (address, host) in [
            ("127.0.0.1:7052", "127.0.0.1"),
            ("peer0.org1:7052", "peer0.org1"),
            ("[::1]:7052", "::1"),
        ] {
            assert_eq!(
                Config::new(name.clone(), address).unwrap().peer_host(),
                host
            );
        }
    }
}
