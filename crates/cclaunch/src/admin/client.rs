//! The admin API's client side: where the peer is (`--admin` >
//! `$CCLAUNCH_ADMIN` > `{state dir}/admin.sock`) and how to reach it (a Unix
//! socket, or TCP with mutual TLS), with bounded waits.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use super::listen::ADMIN_SERVER_NAME;
use super::{AdminClient, MAX_MESSAGE_BYTES};
use crate::error::{CliError, root_cause};
use crate::state;

/// How long a client waits to reach the peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the admin API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTarget {
    /// A Unix socket.
    Unix(PathBuf),
    /// `host:port` over TCP with mutual TLS, with the peer's CA and the
    /// admin client identity read from `tls_dir`.
    Tls {
        /// `host:port`.
        addr: String,
        /// Holds `ca.crt`, `admin-client.crt`, `admin-client.key`.
        tls_dir: PathBuf,
    },
}

impl fmt::Display for AdminTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            AdminTarget::Tls { addr, .. } => write!(f, "https://{addr}"),
        }
    }
}

/// The admin API's address and how it was chosen (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where the admin API is.
    pub target: AdminTarget,
    /// How it was chosen: `--admin`, or which state directory.
    pub origin: String,
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.target, self.origin)
    }
}

/// What `ADDR` means: `unix:/path` or a path (a socket), `https://host:port`
/// or `host:port` (TCP with mutual TLS). `http://` is refused: there is no
/// plaintext admin API.
enum Parsed {
    Unix(PathBuf),
    Tls(String),
}

fn parse(addr: &str) -> Result<Parsed, CliError> {
    if let Some(path) = addr.strip_prefix("unix:") {
        // unix:///run/x and unix:/run/x both name /run/x.
        let path = path.strip_prefix("//").unwrap_or(path);
        return Ok(Parsed::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = addr.strip_prefix("https://") {
        return Ok(Parsed::Tls(rest.trim_end_matches('/').to_owned()));
    }
    if let Some((scheme, _)) = addr.split_once("://") {
        return Err(CliError::usage(format!(
            "bad admin address {addr:?}: {scheme}:// is not supported; the admin API is a Unix socket (unix:/PATH) or TCP with mutual TLS (https://HOST:PORT)"
        )));
    }
    if addr.contains('/') {
        return Ok(Parsed::Unix(PathBuf::from(addr)));
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(Parsed::Tls(addr.to_owned()))
        }
        _ => Ok(Parsed::Unix(PathBuf::from(addr))),
    }
}

/// Resolves the admin API from `--admin`/`$CCLAUNCH_ADMIN` (`admin`),
/// `--state-dir` and `--tls-dir`: the address if given, else the state
/// directory's socket (the default state directory if none is given).
pub fn resolve(
    admin: Option<&str>,
    state_dir: Option<&Path>,
    tls_dir: Option<&Path>,
) -> Result<Resolved, CliError> {
    let state = || match state_dir {
        Some(dir) => Ok((dir.to_owned(), "--state-dir")),
        None => state::require_default_state_dir().map(|dir| (dir, "the default state directory")),
    };
    match admin {
        Some(addr) => {
            let target = match parse(addr)? {
                Parsed::Unix(path) => AdminTarget::Unix(path),
                Parsed::Tls(addr) => AdminTarget::Tls {
                    addr,
                    tls_dir: match tls_dir {
                        Some(dir) => dir.to_owned(),
                        None => state::tls_dir(&state()?.0),
                    },
                },
            };
            Ok(Resolved {
                target,
                origin: "from --admin or CCLAUNCH_ADMIN".to_owned(),
            })
        }
        None => {
            let (dir, origin) = state()?;
            Ok(Resolved {
                target: AdminTarget::Unix(state::admin_socket(&dir)),
                origin: format!("the socket in {origin} {}", dir.display()),
            })
        }
    }
}

fn unreachable(resolved: &Resolved, cause: &str) -> CliError {
    let error = CliError::new(format!(
        "cannot reach the peer's admin API at {resolved}: {cause}"
    ));
    match &resolved.target {
        AdminTarget::Unix(_) => error.with_hint(
            "start one with `cclaunch peer`, or point at a running one with --admin ADDR, CCLAUNCH_ADMIN or --state-dir DIR",
        ),
        AdminTarget::Tls { tls_dir, .. } => error.with_hint(format!(
            "check that the peer listens there (admin.listenAddress) and that {} holds its ca.crt, admin-client.crt and admin-client.key (--tls-dir DIR)",
            tls_dir.display()
        )),
    }
}

fn read_tls_file(dir: &Path, name: &str) -> Result<String, String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Connects to the admin API, within [`CONNECT_TIMEOUT`].
pub async fn connect(resolved: &Resolved) -> Result<AdminClient<Channel>, CliError> {
    let failed = |cause: String| unreachable(resolved, &cause);
    // The URI is unused by our connectors; tonic needs one.
    let endpoint = Endpoint::from_static("http://cclaunch-admin").connect_timeout(CONNECT_TIMEOUT);
    let connecting = async {
        match &resolved.target {
            AdminTarget::Unix(path) => {
                let path = path.clone();
                endpoint
                    .connect_with_connector(tower::service_fn(move |_| {
                        let path = path.clone();
                        async move { UnixStream::connect(path).await.map(TokioIo::new) }
                    }))
                    .await
            }
            AdminTarget::Tls { addr, tls_dir } => {
                let ca = read_tls_file(tls_dir, chaincode_tls::CA_CERT_FILE).map_err(&failed)?;
                let cert = read_tls_file(tls_dir, state::ADMIN_CLIENT_CERT).map_err(&failed)?;
                let key = read_tls_file(tls_dir, state::ADMIN_CLIENT_KEY).map_err(&failed)?;
                let config = chaincode_tls::client_config(&ca, Some((&cert, &key)))
                    .map_err(|e| failed(e.to_string()))?;
                let connector = TlsConnector::from(config);
                let addr = addr.clone();
                endpoint
                    .connect_with_connector(tower::service_fn(move |_| {
                        let connector = connector.clone();
                        let addr = addr.clone();
                        async move {
                            let tcp = TcpStream::connect(&addr).await?;
                            let name = ServerName::try_from(ADMIN_SERVER_NAME)
                                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                            connector.connect(name, tcp).await.map(TokioIo::new)
                        }
                    }))
                    .await
            }
        }
        .map_err(|e| failed(root_cause(&e)))
    };
    let channel = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| failed(format!("no connection within {CONNECT_TIMEOUT:?}")))??;
    Ok(AdminClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// Waits for `call` at most `deadline`; past it, an error that names the
/// peer, the operation and the flag that raises the limit.
pub async fn with_deadline<T>(
    resolved: &Resolved,
    what: &str,
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<Result<T, Status>, CliError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(reply) => Ok(reply.map(tonic::Response::into_inner)),
        Err(_) => Err(deadline_error(resolved, what, deadline)),
    }
}

/// The error of a call that passed its deadline.
pub fn deadline_error(resolved: &Resolved, what: &str, deadline: Duration) -> CliError {
    CliError::new(format!(
        "{what}: no answer from the peer's admin API at {resolved} within {}",
        crate::config::format_duration(deadline)
    ))
    .with_hint("the peer may be busy or hung (see its log); raise the limit with --timeout DURATION, e.g. --timeout 10m")
}

/// Turns an admin API error into what the user reads, with a hint where one helps.
pub fn cli_error(status: &Status, chaincode: &str) -> CliError {
    let error = CliError::new(status.message().to_owned());
    match status.code() {
        tonic::Code::NotFound => {
            let (name, version) = chaincode.split_once(':').unwrap_or((chaincode, "VERSION"));
            error.with_hint(format!(
                "package it into the peer's packages directory: `cclaunch package --binary PATH --name {name} --version {version} --out DIR`"
            ))
        }
        tonic::Code::DeadlineExceeded => error.with_hint(
            "the chaincode did not register or answer in time: check that it can reach the peer's --listen address, and its output in the peer's log (RUST_LOG=info)",
        ),
        tonic::Code::InvalidArgument => CliError { code: 2, ..error },
        tonic::Code::Unauthenticated => CliError::new(format!(
            "the peer's admin API refused this client: {}",
            status.message()
        ))
        .with_hint("use the admin-client.crt/.key from the peer's state directory (tls/), via --tls-dir DIR"),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            if status.message().contains("transport") || status.message().is_empty() =>
        {
            CliError::new(format!("the peer's admin API failed: {}", status.message()))
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str) -> AdminTarget {
        resolve(Some(addr), Some(Path::new("/s")), None)
            .unwrap()
            .target
    }

    #[test]
    fn addresses_name_a_socket_or_tls() {
        let unix = |p: &str| AdminTarget::Unix(PathBuf::from(p));
        let tls = |a: &str| AdminTarget::Tls {
            addr: a.to_owned(),
            tls_dir: PathBuf::from("/s/tls"),
        };
        assert_eq!(target("unix:/run/a.sock"), unix("/run/a.sock"));
        assert_eq!(target("unix:///run/a.sock"), unix("/run/a.sock"));
        assert_eq!(target("/run/a.sock"), unix("/run/a.sock"));
        assert_eq!(target("./a.sock"), unix("./a.sock"));
        assert_eq!(target("a.sock"), unix("a.sock"));
        assert_eq!(target("https://h:7053/"), tls("h:7053"));
        assert_eq!(target("127.0.0.1:7053"), tls("127.0.0.1:7053"));
        assert_eq!(target("[::1]:7053"), tls("[::1]:7053"));
        let err = resolve(Some("http://127.0.0.1:7053"), None, None).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("http:// is not supported"), "{err}");
        let default = resolve(None, Some(Path::new("/s")), None).unwrap();
        assert_eq!(default.target, unix("/s/admin.sock"));
        assert!(default.origin.contains("--state-dir /s"), "{default}");
        let tls_dir = resolve(Some("h:1"), None, Some(Path::new("/t"))).unwrap();
        assert_eq!(
            tls_dir.target,
            AdminTarget::Tls {
                addr: "h:1".to_owned(),
                tls_dir: PathBuf::from("/t")
            }
        );
    }
}
