//! The shim over TLS against a real gRPC peer on 127.0.0.1 whose listener
//! requires client certificates of its own CA (`chaincode_tls::server_config`,
//! served through a tokio-rustls acceptor), with the material handed over
//! in files named by the environment, as Fabric does.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::chaincode_support_client::ChaincodeSupportClient;
use chaincode_proto::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use chaincode_proto::{ChaincodeMessage, ChaincodeName, Response, chaincode_message::Type};
use chaincode_shim::{BoxFuture, Chaincode, Config, ShimError, ShimTls, Stub};
use chaincode_tls::{CertAuthority, CertHash, IssuedCert};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

const STEP: Duration = Duration::from_secs(20);
const NAME: &str = "tlscc:1.0";

/// What the peer saw of one REGISTER: the name and the client certificate.
#[derive(Debug)]
struct Registered {
    name: String,
    client_cert: Option<CertHash>,
}

struct Peer {
    registers: mpsc::UnboundedSender<Registered>,
}

#[tonic::async_trait]
impl ChaincodeSupport for Peer {
    type RegisterStream =
        Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send + 'static>>;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<Self::RegisterStream>, Status> {
        let client_cert = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| CertHash::of(c.as_ref())));
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let registers = self.registers.clone();
        tokio::spawn(async move {
            // Bounded by the stream: it ends when the chaincode goes away.
            while let Ok(Some(message)) = inbound.message().await {
                if message.message_type() == Type::Register {
                    let name = message
                        .registered_name()
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    let _ = registers.send(Registered { name, client_cert });
                    let _ = tx.send(Ok(ChaincodeMessage::registered()));
                    let _ = tx.send(Ok(ChaincodeMessage::ready()));
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        )))
    }
}

/// A TLS peer on 127.0.0.1: its address, the REGISTERs it answered, and the
/// handshakes it refused (with rustls's reason).
struct TlsPeer {
    address: String,
    registers: mpsc::UnboundedReceiver<Registered>,
    refused: mpsc::UnboundedReceiver<String>,
}

impl TlsPeer {
    /// Serves with a certificate of `ca` for `hosts`, requiring client
    /// certificates of `ca`.
    async fn start(ca: &CertAuthority, hosts: &[&str]) -> Self {
        let server = ca.issue_server(hosts).unwrap();
        let config =
            chaincode_tls::server_config(&server.cert_pem, &server.key_pem, ca.root_pem()).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (streams_tx, streams) = mpsc::channel(8);
        let (refused_tx, refused) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // Ends with the test's runtime.
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let streams_tx = streams_tx.clone();
                let refused_tx = refused_tx.clone();
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(tls) => {
                            let _ = streams_tx.send(Ok::<_, std::io::Error>(tls)).await;
                        }
                        Err(e) => {
                            let _ = refused_tx.send(e.to_string());
                        }
                    }
                });
            }
        });
        let (registers_tx, registers) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ChaincodeSupportServer::new(Peer {
                    registers: registers_tx,
                }))
                .serve_with_incoming(ReceiverStream::new(streams)),
        );
        Self {
            address,
            registers,
            refused,
        }
    }

    async fn next_register(&mut self) -> Registered {
        tokio::time::timeout(STEP, self.registers.recv())
            .await
            .expect("no REGISTER in time")
            .expect("peer gone")
    }

    async fn next_refusal(&mut self) -> String {
        tokio::time::timeout(STEP, self.refused.recv())
            .await
            .expect("no refused handshake in time")
            .expect("peer gone")
    }
}

struct Idle;

impl Chaincode for Idle {
    fn init<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { Response::ok(Vec::new()) })
    }
    fn invoke<'a>(&'a self, _stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async { Response::ok(Vec::new()) })
    }
}

/// Writes the files Fabric writes (PEM, or base64 of PEM) and returns the
/// environment naming them.
fn fabric_files(
    dir: &std::path::Path,
    root_pem: &str,
    client: &IssuedCert,
    base64_files: bool,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut env = vec![
        ("CORE_CHAINCODE_ID_NAME".to_owned(), NAME.to_owned()),
        ("CORE_PEER_TLS_ENABLED".to_owned(), "true".to_owned()),
    ];
    let files = if base64_files {
        [
            (
                "CORE_PEER_TLS_ROOTCERT_FILE",
                "peer.crt",
                root_pem.to_owned(),
            ),
            (
                "CORE_TLS_CLIENT_CERT_PATH",
                "client.crt",
                b64(&client.cert_pem),
            ),
            (
                "CORE_TLS_CLIENT_KEY_PATH",
                "client.key",
                b64(&client.key_pem),
            ),
        ]
    } else {
        [
            (
                "CORE_PEER_TLS_ROOTCERT_FILE",
                "peer.crt",
                root_pem.to_owned(),
            ),
            (
                "CORE_TLS_CLIENT_CERT_FILE",
                "client_pem.crt",
                client.cert_pem.clone(),
            ),
            (
                "CORE_TLS_CLIENT_KEY_FILE",
                "client_pem.key",
                client.key_pem.clone(),
            ),
        ]
    };
    for (var, name, contents) in files {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        env.push((var.to_owned(), path.display().to_string()));
    }
    env
}

fn config_from(env: Vec<(String, String)>, address: &str) -> Config {
    let lookup = move |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Config::from_parts(lookup, [format!("-peer.address={address}")]).unwrap()
}

#[tokio::test]
async fn registers_over_mutual_tls_with_the_files_fabric_writes() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let client = ca.issue_client(NAME, Duration::from_secs(600)).unwrap();
    let mut peer = TlsPeer::start(&ca, &["127.0.0.1"]).await;
    for base64_files in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let env = fabric_files(dir.path(), ca.root_pem(), &client, base64_files);
        let config = config_from(env, &peer.address);
        assert!(config.tls.is_some());
        let shim = tokio::spawn(chaincode_shim::start(Arc::new(Idle), config));
        let registered = peer.next_register().await;
        assert_eq!(registered.name, NAME);
        // The peer saw this launch's certificate: TLS was mutual.
        assert_eq!(registered.client_cert, Some(client.hash()));
        shim.abort();
    }
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_is_refused_with_the_peers_alert() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let stranger = CertAuthority::generate("stranger CA")
        .unwrap()
        .issue_client(NAME, Duration::from_secs(600))
        .unwrap();
    let mut peer = TlsPeer::start(&ca, &["127.0.0.1"]).await;
    let tls = ShimTls::from_pem(ca.root_pem(), &stranger.cert_pem, &stranger.key_pem).unwrap();
    let config = Config::new(ChaincodeName::parse(NAME).unwrap(), &peer.address)
        .unwrap()
        .with_tls(tls);
    let err = tokio::time::timeout(STEP * 2, chaincode_shim::start(Arc::new(Idle), config))
        .await
        .expect("the shim gave up in time")
        .unwrap_err();
    let refusal = peer.next_refusal().await;
    assert!(refusal.contains("UnknownIssuer"), "{refusal}");
    let text = err.to_string();
    // TLS 1.3: the refusal comes after the client's handshake, as an alert
    // on the first call; the error carries it.
    assert!(text.contains("received fatal alert: UnknownCA"), "{text}");
    assert!(peer.registers.try_recv().is_err(), "registered anyway");
}

#[tokio::test]
async fn a_peer_certificate_of_another_ca_or_for_another_host_is_refused_at_connect() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let client = ca.issue_client(NAME, Duration::from_secs(600)).unwrap();
    let name = ChaincodeName::parse(NAME).unwrap();

    // The shim trusts only the root it was given.
    let impostor_ca = CertAuthority::generate("impostor CA").unwrap();
    let mut impostor = TlsPeer::start(&impostor_ca, &["127.0.0.1"]).await;
    let tls = ShimTls::from_pem(ca.root_pem(), &client.cert_pem, &client.key_pem).unwrap();
    let config = Config::new(name.clone(), &impostor.address)
        .unwrap()
        .with_tls(tls.clone());
    let err = chaincode_shim::start(Arc::new(Idle), config)
        .await
        .unwrap_err();
    assert!(matches!(err, ShimError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(impostor.registers.try_recv().is_err());

    // The peer's certificate must name the host the shim dials.
    let mut elsewhere = TlsPeer::start(&ca, &["peer.example"]).await;
    let config = Config::new(name, &elsewhere.address).unwrap().with_tls(tls);
    let err = chaincode_shim::start(Arc::new(Idle), config)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert!(elsewhere.registers.try_recv().is_err());
}

#[tokio::test]
async fn without_a_client_certificate_or_without_tls_nothing_registers() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let mut peer = TlsPeer::start(&ca, &["127.0.0.1"]).await;

    // TLS, but no client certificate: the peer refuses the handshake.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://{}", peer.address))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca.root_pem()))
                .domain_name("127.0.0.1"),
        )
        .unwrap();
    let result = async {
        let mut client = ChaincodeSupportClient::new(endpoint.connect().await?);
        let register = ChaincodeMessage::register(&ChaincodeName::parse(NAME).unwrap());
        let mut answers = client
            .register(futures::stream::iter([register]))
            .await?
            .into_inner();
        answers.next().await.transpose()?;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    assert!(result.is_err(), "a client without a certificate was served");
    let refusal = peer.next_refusal().await;
    assert!(refusal.contains("peer sent no certificates"), "{refusal}");

    // Plain text against the TLS listener.
    let config = Config::new(ChaincodeName::parse(NAME).unwrap(), &peer.address).unwrap();
    let err = tokio::time::timeout(STEP * 2, chaincode_shim::start(Arc::new(Idle), config))
        .await
        .expect("the shim gave up in time")
        .unwrap_err();
    assert!(err.is_retryable_before_register(), "{err:?}");
    assert!(peer.registers.try_recv().is_err());
}
