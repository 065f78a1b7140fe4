//! The admin API's transports on the peer: a Unix socket (the default) and
//! TCP with mutual TLS (only when configured). There is no plaintext TCP.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chaincode_tls::{CertAuthority, CertHash};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tonic::{Request, Status};

use super::AdminService;
use super::proto::admin_server::AdminServer;
use crate::error::CliError;
use crate::state;

/// The admin API's listeners, bound before the runtime exists so that a
/// busy address or a running peer stops the start early.
#[derive(Debug)]
pub struct AdminListeners {
    socket: UnixListener,
    guard: AdminSocket,
    tcp: Option<(TcpListener, AdminTls)>,
}

impl AdminListeners {
    /// Binds `{state_dir}/admin.sock` and, when `tcp` is given (checked by
    /// [`tcp_listen_address`]), a TCP listener with mutual TLS: the CA is
    /// [`state::peer_ca`], the accepted client the one in
    /// `{state_dir}/tls/admin-client.crt` (issued on first use).
    pub async fn bind(state_dir: &Path, tcp: Option<&str>) -> Result<Self, CliError> {
        let (socket, guard) = bind_socket(&state::admin_socket(state_dir)).await?;
        let tcp = match tcp {
            None => None,
            Some(addr) => {
                let ca = state::peer_ca(state_dir)?;
                let identity = state::admin_client_identity(&ca, &state::tls_dir(state_dir))?;
                let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
                let tls = AdminTls::new(&ca, host, identity.hash())?;
                let listener = crate::peer::bind(addr, "the admin API", "--admin-listen").await?;
                Some((listener, tls))
            }
        };
        Ok(Self { socket, guard, tcp })
    }

    /// The admin socket's path.
    pub fn socket_path(&self) -> &Path {
        self.guard.path()
    }

    /// The TCP admin address, when there is one.
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves `service` on every listener until `shutdown`.
    pub fn serve(
        self,
        service: AdminServer<AdminService>,
        shutdown: CancellationToken,
    ) -> AdminServing {
        let mut tasks = Vec::new();
        if let Some((listener, tls)) = self.tcp {
            let incoming = tls.incoming(listener, shutdown.clone());
            let service = tonic::service::interceptor::InterceptedService::new(
                service.clone(),
                tls.interceptor(),
            );
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }));
        }
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(self.socket);
        tasks.push(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
        }));
        AdminServing {
            tasks,
            guard: self.guard,
        }
    }
}

/// The running admin servers; [`AdminServing::wait`] removes the socket.
#[derive(Debug)]
pub struct AdminServing {
    tasks: Vec<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
    guard: AdminSocket,
}

impl AdminServing {
    /// Waits until every admin server has stopped, then removes the socket.
    pub async fn wait(self) -> Result<(), String> {
        let mut result = Ok(());
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e.to_string()),
                Err(e) => result = Err(e.to_string()),
            }
        }
        drop(self.guard);
        result
    }
}

/// The DNS name in the admin server certificate that clients check, whatever
/// address they dial: the peer's CA, not a hostname, is what they trust.
pub const ADMIN_SERVER_NAME: &str = "cclaunch-admin";
/// How long a TCP client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the stale-socket probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The admin socket, removed when this is dropped (at the peer's exit).
#[derive(Debug)]
pub struct AdminSocket {
    path: PathBuf,
}

impl AdminSocket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        // Already gone is fine.
        let _ = fs::remove_file(&self.path);
    }
}

/// Binds the admin socket at `path` with mode `0600`. A socket left by a
/// peer that is gone is removed first; one that a running peer answers on is
/// refused.
pub async fn bind_socket(path: &Path) -> Result<(UnixListener, AdminSocket), CliError> {
    let shown = path.display();
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(CliError::new(format!(
                "cannot listen on {shown} for the admin API: the path exists and is not a socket"
            ))
            .with_hint(format!("remove {shown} or pick another --state-dir")));
        }
        match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(socket = %shown, "removing a stale admin socket");
                fs::remove_file(path).map_err(|e| {
                    CliError::new(format!("cannot remove the stale admin socket {shown}: {e}"))
                })?;
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Ok(Err(e)) => {
                return Err(CliError::new(format!(
                    "cannot tell whether a peer answers on the admin socket {shown}: {e}"
                ))
                .with_hint(format!("remove {shown} if no peer uses it")));
            }
            // It accepted, or it is too busy to: a peer is there.
            Ok(Ok(_)) | Err(_) => {
                return Err(CliError::new(format!(
                    "another peer is running with this state directory: its admin socket {shown} accepts connections"
                ))
                .with_hint("stop that peer, or give this one its own --state-dir DIR"));
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        CliError::new(format!(
            "cannot listen on {shown} for the admin API: {}",
            crate::error::root_cause(&e)
        ))
        .with_hint("pick another --state-dir DIR (a socket path is limited to 107 bytes)")
    })?;
    let guard = AdminSocket {
        path: path.to_owned(),
    };
    // The state directory is 0700 already; the mode is the second lock.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::new(format!("cannot set the mode of {shown}: {e}")))?;
    Ok((listener, guard))
}

/// A TLS connection to the TCP admin API, which tells the service the hash
/// of the client certificate it presented.
#[derive(Debug)]
pub struct AdminTlsStream(TlsStream<TcpStream>);

/// The client certificate of an admin connection (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPeer {
    /// The hash of the first certificate the client presented, if any.
    pub cert: Option<CertHash>,
}

impl Connected for AdminTlsStream {
    type ConnectInfo = AdminPeer;

    fn connect_info(&self) -> AdminPeer {
        let (_, session) = self.0.get_ref();
        AdminPeer {
            cert: session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| CertHash::of(cert)),
        }
    }
}

impl AsyncRead for AdminTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for AdminTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// What the TCP admin listener needs: the TLS server configuration and the
/// one client certificate it accepts.
#[derive(Clone)]
pub struct AdminTls {
    acceptor: TlsAcceptor,
    /// The hash of the admin client certificate.
    pub allowed: CertHash,
}

impl std::fmt::Debug for AdminTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTls")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl AdminTls {
    /// A server certificate from `ca` for `listen_host` (and loopback), and
    /// the admin client certificate `allowed`: other certificates the CA
    /// issues (a chaincode's launch certificate) pass TLS but are refused.
    pub fn new(ca: &CertAuthority, listen_host: &str, allowed: CertHash) -> Result<Self, CliError> {
        let mut hosts = vec![ADMIN_SERVER_NAME, "localhost", "127.0.0.1", "::1"];
        let host = listen_host.trim_start_matches('[').trim_end_matches(']');
        let specific = host
            .parse::<std::net::IpAddr>()
            .map(|ip| !ip.is_unspecified())
            .unwrap_or(!host.is_empty());
        if specific && !hosts.contains(&host) {
            hosts.push(host);
        }
        let tls_error = |e: chaincode_tls::TlsError| {
            CliError::new(format!("cannot set up TLS for the admin API: {e}"))
        };
        let server = ca.issue_server(&hosts).map_err(tls_error)?;
        let config = chaincode_tls::server_config(&server.cert_pem, &server.key_pem, ca.root_pem())
            .map_err(tls_error)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(config),
            allowed,
        })
    }

    /// Accepts TCP connections on `listener` and yields those that complete
    /// the TLS handshake, until `shutdown`. Handshakes run concurrently and
    /// are bounded, so that a silent client holds up no one.
    pub fn incoming(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = io::Result<AdminTlsStream>> + use<> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, from) = tokio::select! {
                    () = shutdown.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!(error = %e, "admin API: accept failed");
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(AdminTlsStream(tls))).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%from, error = %e, "admin API: TLS handshake refused");
                        }
                        Err(_) => tracing::warn!(%from, "admin API: TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }

    /// An interceptor that lets through only requests whose TLS client
    /// certificate is the admin identity.
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
        let allowed = self.allowed;
        move |request: Request<()>| {
            let presented = request
                .extensions()
                .get::<AdminPeer>()
                .and_then(|peer| peer.cert);
            if presented == Some(allowed) {
                Ok(request)
            } else {
                Err(Status::unauthenticated(
                    "this client certificate is not the peer's admin identity (tls/admin-client.crt in its state directory)",
                ))
            }
        }
    }
}

/// Checks `admin.listenAddress`: `host:port` (or `https://host:port`) for
/// TCP with mutual TLS. Any other scheme asks for plaintext and is refused.
pub fn tcp_listen_address(addr: &str) -> Result<String, CliError> {
    let plain = match addr.split_once("://") {
        None => addr,
        Some(("https", rest)) => rest,
        Some((scheme, _)) => {
            return Err(CliError::new(format!(
                "refusing a plaintext admin API on {addr}: anyone who can reach it could launch, invoke and stop chaincode ({scheme}:// is not supported)"
            ))
            .with_hint(
                "TCP for the admin API is always mutual TLS: write HOST:PORT; or leave admin.listenAddress unset and use the admin socket",
            ));
        }
    };
    if plain.is_empty() || plain.contains('/') {
        return Err(CliError::usage(format!(
            "bad admin listen address {addr:?}: expected HOST:PORT"
        )));
    }
    Ok(plain.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_schemes_are_refused_with_the_reason() {
        for addr in ["http://0.0.0.0:7053", "tcp://127.0.0.1:1", "h2c://x:1"] {
            let err = tcp_listen_address(addr).unwrap_err();
            assert!(
                err.message.contains("refusing a plaintext admin API"),
                "{err}"
            );
        }
        assert_eq!(
            tcp_listen_address("https://127.0.0.1:1").unwrap(),
            "127.0.0.1:1"
        );
        assert_eq!(tcp_listen_address("0.0.0.0:0").unwrap(), "0.0.0.0:0");
    }
}
