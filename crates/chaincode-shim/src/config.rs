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
        })
    }

    /// Reads the process environment and arguments as a Fabric peer sets
    /// them: `CORE_CHAINCODE_ID_NAME`, `-peer.address=HOST:PORT` (also
    /// `--peer.address=…` and `-peer.address HOST:PORT`) or else
    /// `CORE_PEER_ADDRESS`, and `CORE_PEER_TLS_ENABLED` (only false/unset is
    /// supported). Other arguments are ignored.
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
        if let Some(flag) = env(ENV_PEER_TLS_ENABLED)
            && parse_go_bool(&flag).ok_or_else(|| ConfigError::InvalidTlsFlag(flag.clone()))?
        {
            return Err(ConfigError::TlsNotSupported);
        }
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
        Self::new(name, address)
    }
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
    fn tls_true_is_refused_with_a_clear_error_and_false_accepted() {
        for on in ["true", "TRUE", "1", "t"] {
            let err = Config::from_parts(
                env(&[NAME, (ENV_PEER_TLS_ENABLED, on)]),
                ["-peer.address=h:1"],
            )
            .unwrap_err();
            assert_eq!(err, ConfigError::TlsNotSupported);
            assert!(
                err.to_string().contains("TLS is not supported yet"),
                "{err}"
            );
        }
        for off in ["false", "0", "", "False"] {
            Config::from_parts(
                env(&[NAME, (ENV_PEER_TLS_ENABLED, off)]),
                ["-peer.address=h:1"],
            )
            .unwrap();
        }
        assert_eq!(
            Config::from_parts(
                env(&[NAME, (ENV_PEER_TLS_ENABLED, "yes")]),
                ["-peer.address=h:1"]
            ),
            Err(ConfigError::InvalidTlsFlag("yes".into()))
        );
    }
}
