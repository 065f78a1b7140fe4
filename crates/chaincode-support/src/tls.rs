//! The peer's TLS identity for the chaincode listener, and who may register
//! as which chaincode.
//!
//! # Expected flow
//! 1. The embedder builds a [`PeerTls`] from its CA and the hosts the
//!    listener answers on, and passes it to [`crate::SupportBuilder::tls`].
//! 2. Every launch whose runtime dials the peer over the network gets a fresh
//!    client certificate (CN = `name:version`); its hash is bound to the
//!    chaincode for the binding's time to live, and unbound when the launch's
//!    generation ends.
//! 3. A network stream's REGISTER is admitted only if the certificate its TLS
//!    handshake presented is bound to exactly the name it claims.
//!
//! # Guarantees
//! - A process that can reach the listener but holds no launch's certificate
//!   cannot register as a chaincode, nor as another launch's chaincode; a
//!   refused stream never reaches the chaincode's driver, so the real launch
//!   is undisturbed.
//! - In dev mode the peer starts nothing and so binds nothing: any client
//!   certificate issued by the peer's CA may register as any name (a
//!   developer gets one from [`PeerTls::issue_dev_client`]).
//!
//! # Errors
//! A refused REGISTER is answered with one ERROR message whose text says why
//! (no certificate, not issued for any launch, issued for another chaincode,
//! expired, not issued by this peer), and the same text is logged at WARN.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaincode_proto::ChaincodeName;
use chaincode_tls::{
    BindingError, CertAuthority, CertBindings, CertHash, IssuedCert, TlsError, server_config,
};
use executor::ClientTls;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::support::StreamOrigin;

/// How long a launch's client certificate is valid by default. The binding
/// (not the certificate) limits when it may register; the certificate must
/// outlive the runtime's connection, which may be re-dialled.
pub const DEFAULT_CLIENT_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The chaincode listener's TLS: the peer's CA, the server identity it
/// presents, and the table binding each launch's client certificate to the
/// chaincode it was issued for.
pub struct PeerTls {
    ca: Arc<CertAuthority>,
    bindings: CertBindings,
    client_validity: Duration,
    server: IssuedCert,
    server_config: Arc<rustls::ServerConfig>,
    // Dev mode checks the chain itself too: the binding table cannot vouch.
    issued_by_ca: Arc<dyn ClientCertVerifier>,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls")
            .field("ca", &self.ca)
            .field("server", &self.server)
            .field("binding_ttl", &self.bindings.ttl())
            .field("client_validity", &self.client_validity)
            .field("bindings", &self.bindings.len())
            .finish_non_exhaustive()
    }
}

impl PeerTls {
    /// The listener's TLS with a server certificate from `ca` for `hosts`
    /// (DNS names or IP addresses the chaincode dials), bindings that live
    /// [`CertBindings::FABRIC_TTL`], and client certificates valid
    /// [`DEFAULT_CLIENT_VALIDITY`].
    pub fn new(ca: Arc<CertAuthority>, hosts: &[&str]) -> Result<Self, TlsError> {
        let server = ca.issue_server(hosts)?;
        let server_config = server_config(&server.cert_pem, &server.key_pem, ca.root_pem())?;
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.root_der().to_vec()))
            .map_err(|e| TlsError::Invalid {
                what: "CA certificate",
                reason: e.to_string(),
            })?;
        let issued_by_ca = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Self {
            ca,
            bindings: CertBindings::new(CertBindings::FABRIC_TTL),
            client_validity: DEFAULT_CLIENT_VALIDITY,
            server,
            server_config,
            issued_by_ca,
        })
    }

    /// How long after its launch began a client certificate may register.
    pub fn with_binding_ttl(mut self, ttl: Duration) -> Self {
        self.bindings = CertBindings::new(ttl);
        self
    }

    /// How long the client certificates issued from now on are valid.
    pub fn with_client_validity(mut self, validity: Duration) -> Self {
        self.client_validity = validity;
        self
    }

    /// The CA that signs the server and client certificates.
    pub fn ca(&self) -> &CertAuthority {
        &self.ca
    }

    /// The root certificate (PEM) a chaincode trusts the listener by.
    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The server certificate (PEM) the listener presents.
    pub fn server_cert_pem(&self) -> &str {
        &self.server.cert_pem
    }

    /// How long after its launch began a client certificate may register.
    pub fn binding_ttl(&self) -> Duration {
        self.bindings.ttl()
    }

    /// How long an issued client certificate is valid.
    pub fn client_validity(&self) -> Duration {
        self.client_validity
    }

    /// How many launch certificates are bound now (expired ones included
    /// until the next launch).
    pub fn bound_certificates(&self) -> usize {
        self.bindings.len()
    }

    /// A client certificate for a developer who runs `chaincode` himself
    /// against a peer in dev mode with TLS on (a CLI hands it out).
    ///
    /// It is not bound to any launch: in dev mode the peer admits any
    /// certificate its CA issued, for any name. A peer in net mode refuses it,
    /// since no launch of the peer's made it.
    pub fn issue_dev_client(&self, chaincode: &ChaincodeName) -> Result<IssuedCert, TlsError> {
        self.ca
            .issue_client(&chaincode.to_string(), self.client_validity)
    }

    /// The listener's rustls configuration: the server certificate, client
    /// certificates required and checked against the CA, ALPN `h2`.
    #[allow(dead_code)] // Read by the TLS listener (branch `transport`).
    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }

    /// Issues the client identity of one launch of `chaincode` and binds it
    /// to the chaincode from `now`.
    pub(crate) fn issue_launch(
        &self,
        chaincode: &ChaincodeName,
        now: Instant,
    ) -> Result<(ClientTls, CertHash), TlsError> {
        let name = chaincode.to_string();
        let cert = self.ca.issue_client(&name, self.client_validity)?;
        let hash = cert.hash();
        self.bindings.bind(hash, &name, now);
        let identity = ClientTls {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
            root_cert_pem: self.ca.root_pem().to_owned(),
        };
        Ok((identity, hash))
    }

    /// Forgets a launch's certificate (its generation ended).
    pub(crate) fn unbind(&self, hash: &CertHash) {
        self.bindings.unbind(hash);
    }

    /// Whether a stream from `origin` may register as `claimed` at `now`.
    /// `dev`: the peer did not launch it, so no binding can exist.
    pub(crate) fn admit(
        &self,
        origin: &StreamOrigin,
        claimed: &ChaincodeName,
        dev: bool,
        now: Instant,
    ) -> Result<(), RegisterRefused> {
        let client_cert = match origin {
            // The peer's own streams need no certificate.
            StreamOrigin::InProcess => return Ok(()),
            StreamOrigin::Remote { client_cert, .. } => client_cert,
        };
        let claimed = claimed.to_string();
        let Some(der) = client_cert else {
            return Err(BindingError::NoCertificate { claimed }.into());
        };
        let hash = CertHash::of(der);
        if dev {
            return self
                .issued_by_ca
                .verify_client_cert(&CertificateDer::from(der.as_slice()), &[], UnixTime::now())
                .map(|_| ())
                .map_err(|e| RegisterRefused::Untrusted {
                    claimed,
                    hash: hash.to_string(),
                    reason: e.to_string(),
                });
        }
        self.bindings.check(&hash, &claimed, now)?;
        Ok(())
    }
}

/// Why a network stream may not register as the chaincode it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterRefused {
    /// The certificate is not bound to that name (net mode).
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The certificate does not chain to the peer's CA (dev mode).
    #[error(
        "register {claimed}: client certificate {hash} was not issued by this peer's CA: {reason}"
    )]
    Untrusted {
        claimed: String,
        hash: String,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ChaincodeName {
        text.parse().expect("a valid chaincode name")
    }

    fn peer_tls(ttl: Duration) -> PeerTls {
        let ca = CertAuthority::generate("test peer CA").expect("a CA");
        PeerTls::new(Arc::new(ca), &["127.0.0.1", "localhost"])
            .expect("the listener's TLS")
            .with_binding_ttl(ttl)
    }

    fn remote(cert_pem: &str) -> StreamOrigin {
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|der: CertificateDer<'_>| der.to_vec())
            .expect("a PEM certificate");
        StreamOrigin::Remote {
            client_cert: Some(der),
            connection: Default::default(),
        }
    }

    #[test]
    fn a_launch_certificate_admits_its_own_chaincode_only() {
        let tls = peer_tls(Duration::from_secs(600));
        let t0 = Instant::now();
        let kv = name("kv:1.0");
        let (identity, hash) = tls.issue_launch(&kv, t0).expect("issued");
        assert_eq!(identity.root_cert_pem, tls.root_pem());
        assert_eq!(tls.bound_certificates(), 1);
        let origin = remote(&identity.cert_pem);
        assert_eq!(tls.admit(&origin, &kv, false, t0), Ok(()));

        // Another chaincode's launch certificate cannot pose as kv.
        let (other, _) = tls.issue_launch(&name("other:1.0"), t0).expect("issued");
        let refused = tls.admit(&remote(&other.cert_pem), &kv, false, t0);
        let text = refused.expect_err("refused").to_string();
        assert!(
            text.contains("issued for chaincode other:1.0, not kv:1.0"),
            "{text}"
        );
        // Nor kv's another version.
        assert!(tls.admit(&origin, &name("kv:2.0"), false, t0).is_err());

        // Once the generation ended, the certificate admits nobody.
        tls.unbind(&hash);
        let text = tls
            .admit(&origin, &kv, false, t0)
            .expect_err("unbound")
            .to_string();
        assert!(text.contains("not issued for any launch"), "{text}");
    }

    #[test]
    fn no_certificate_foreign_certificate_and_expired_binding_are_refused() {
        let ttl = Duration::from_secs(5);
        let tls = peer_tls(ttl);
        let t0 = Instant::now();
        let kv = name("kv:1.0");
        let (identity, _) = tls.issue_launch(&kv, t0).expect("issued");

        let none = StreamOrigin::Remote {
            client_cert: None,
            connection: Default::default(),
        };
        let refused = tls.admit(&none, &kv, false, t0).expect_err("no cert");
        assert!(matches!(
            refused,
            RegisterRefused::Binding(BindingError::NoCertificate { .. })
        ));
        assert!(refused.to_string().contains("no client certificate"));

        // A certificate from another CA, with the right name in it.
        let stranger = CertAuthority::generate("someone else").expect("a CA");
        let forged = stranger
            .issue_client("kv:1.0", Duration::from_secs(3600))
            .expect("issued");
        let refused = tls
            .admit(&remote(&forged.cert_pem), &kv, false, t0)
            .expect_err("foreign");
        assert!(matches!(
            refused,
            RegisterRefused::Binding(BindingError::Unknown { .. })
        ));

        // The same CA's certificate, not issued for a launch (a dev cert).
        let dev = tls.issue_dev_client(&kv).expect("issued");
        assert!(tls.admit(&remote(&dev.cert_pem), &kv, false, t0).is_err());

        let origin = remote(&identity.cert_pem);
        assert_eq!(tls.admit(&origin, &kv, false, t0 + ttl), Ok(()));
        let late = t0 + ttl + Duration::from_millis(1);
        let refused = tls.admit(&origin, &kv, false, late).expect_err("late");
        assert!(refused.to_string().contains("expired"), "{refused}");
    }

    #[test]
    fn dev_mode_admits_any_name_with_a_certificate_from_the_ca_only() {
        let tls = peer_tls(Duration::from_secs(600));
        let t0 = Instant::now();
        let dev = tls.issue_dev_client(&name("mine:0.1")).expect("issued");
        let origin = remote(&dev.cert_pem);
        assert_eq!(tls.admit(&origin, &name("mine:0.1"), true, t0), Ok(()));
        assert_eq!(tls.admit(&origin, &name("anything:9"), true, t0), Ok(()));
        assert_eq!(tls.bound_certificates(), 0, "dev mode binds nothing");

        let none = StreamOrigin::Remote {
            client_cert: None,
            connection: Default::default(),
        };
        assert!(tls.admit(&none, &name("mine:0.1"), true, t0).is_err());
        let stranger = CertAuthority::generate("someone else").expect("a CA");
        let forged = stranger
            .issue_client("mine:0.1", Duration::from_secs(3600))
            .expect("issued");
        let refused = tls
            .admit(&remote(&forged.cert_pem), &name("mine:0.1"), true, t0)
            .expect_err("foreign");
        assert!(
            refused.to_string().contains("not issued by this peer's CA"),
            "{refused}"
        );
    }

    #[test]
    fn in_process_streams_are_the_peers_own() {
        let tls = peer_tls(Duration::from_secs(600));
        let origin = StreamOrigin::InProcess;
        assert_eq!(
            tls.admit(&origin, &name("lscc:1"), false, Instant::now()),
            Ok(())
        );
    }

    #[test]
    fn issuing_a_launch_certificate_is_cheap_enough_to_do_inline() {
        let tls = peer_tls(Duration::from_secs(600));
        let kv = name("kv:1.0");
        let started = Instant::now();
        for _ in 0..20 {
            tls.issue_launch(&kv, Instant::now()).expect("issued");
        }
        let each = started.elapsed() / 20;
        eprintln!("one launch certificate: {each:?}");
        // Generous: debug builds on a loaded machine. The driver does this
        // inline; tens of milliseconds would call for spawn_blocking.
        assert!(each < Duration::from_millis(50), "{each:?}");
    }

    #[test]
    fn the_server_config_requires_h2() {
        let tls = peer_tls(Duration::from_secs(600));
        assert_eq!(tls.server_config().alpn_protocols, vec![b"h2".to_vec()]);
    }
}

/// The binding check in the real runtime: a real driver launches through a
/// recording executor, and streams arrive as the listener hands them over
/// (`connect_from` with the certificate the handshake saw).
#[cfg(test)]
mod runtime_tests {
    use std::time::Duration;

    use chaincode_proto::chaincode_message::Type;
    use chaincode_proto::{ChaincodeMessage, ChaincodeName};
    use chaincode_tls::CertAuthority;
    use executor::{EventSink, Executor, ExecutorError, StartRequest};
    use futures::future::BoxFuture;
    use launch_fsm::Phase;
    use parking_lot::Mutex;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use tokio::sync::{Notify, mpsc};
    use tokio_stream::StreamExt;
    use tokio_stream::wrappers::ReceiverStream;

    use super::PeerTls;
    use crate::store::MemorySpecStore;
    use crate::support::StreamOrigin;
    use crate::{ChaincodeSupport, Mode, SupportConfig};

    /// Records every start; never runs anything (the test registers).
    #[derive(Default)]
    struct RecordingExecutor {
        requests: Mutex<Vec<StartRequest>>,
        started: Notify,
    }

    impl Executor for RecordingExecutor {
        fn kind(&self) -> &'static str {
            "recording"
        }

        fn runtime_name(&self, chaincode: &ChaincodeName) -> String {
            chaincode.to_string()
        }

        fn start(
            &self,
            request: StartRequest,
            _: EventSink,
        ) -> BoxFuture<'_, Result<(), ExecutorError>> {
            self.requests.lock().push(request);
            self.started.notify_one();
            Box::pin(async { Ok(()) })
        }

        fn stop<'a>(&'a self, _: &'a ChaincodeName) -> BoxFuture<'a, Result<(), ExecutorError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn name(text: &str) -> ChaincodeName {
        text.parse().expect("a valid chaincode name")
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("a PEM certificate")
            .to_vec()
    }

    fn peer(mode: Mode, ttl: Duration) -> (ChaincodeSupport, std::sync::Arc<RecordingExecutor>) {
        let ca = CertAuthority::generate("test peer CA").expect("a CA");
        let tls = PeerTls::new(std::sync::Arc::new(ca), &["127.0.0.1"])
            .expect("the listener's TLS")
            .with_binding_ttl(ttl);
        let executor = std::sync::Arc::new(RecordingExecutor::default());
        let specs = MemorySpecStore::new();
        for cc in ["kv:1.0", "other:1.0"] {
            specs.insert(
                name(cc),
                chaincode_proto::ChaincodeDeploymentSpec::default(),
            );
        }
        let config = SupportConfig {
            mode,
            ..SupportConfig::default()
        };
        let support = ChaincodeSupport::builder(config)
            .executor(executor.clone())
            .spec_store(std::sync::Arc::new(specs))
            .tls(tls)
            .build();
        (support, executor)
    }

    /// Sends REGISTER for `claimed` from `origin`; returns the first answer
    /// and the channel that keeps the stream open.
    async fn register(
        support: &ChaincodeSupport,
        claimed: &ChaincodeName,
        origin: StreamOrigin,
    ) -> (
        ChaincodeMessage,
        mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>,
        ReceiverStream<Result<ChaincodeMessage, tonic::Status>>,
    ) {
        let (tx, rx) = mpsc::channel(8);
        tx.send(Ok(ChaincodeMessage::register(claimed)))
            .await
            .expect("open");
        let mut replies = support.connect_from(ReceiverStream::new(rx), origin);
        let first = replies
            .next()
            .await
            .expect("an answer")
            .expect("not a transport error");
        (first, tx, replies)
    }

    async fn launch_started(
        support: &ChaincodeSupport,
        executor: &RecordingExecutor,
        chaincode: &ChaincodeName,
    ) -> StartRequest {
        let starts = executor.requests.lock().len();
        let launching = support.clone();
        let target = chaincode.clone();
        tokio::spawn(async move { launching.launch(&target).await });
        while executor.requests.lock().len() == starts {
            executor.started.notified().await;
        }
        executor.requests.lock().last().cloned().expect("a start")
    }

    fn phase_of(support: &ChaincodeSupport, chaincode: &ChaincodeName) -> Option<Phase> {
        support
            .status()
            .into_iter()
            .find(|s| &s.chaincode == chaincode)
            .map(|s| s.phase)
    }

    fn remote(der: Vec<u8>) -> StreamOrigin {
        StreamOrigin::Remote {
            client_cert: Some(der),
            connection: Default::default(),
        }
    }

    #[tokio::test]
    async fn only_the_launchs_own_certificate_registers_and_impostors_do_not_disturb_it() {
        let (support, executor) = peer(Mode::Net, Duration::from_secs(600));
        let kv = name("kv:1.0");
        let other = name("other:1.0");
        let kv_start = launch_started(&support, &executor, &kv).await;
        let other_start = launch_started(&support, &executor, &other).await;
        let kv_tls = kv_start
            .tls
            .clone()
            .expect("kv's launch has a client identity");
        let other_tls = other_start.tls.clone().expect("other's launch has one");
        assert_ne!(kv_tls.cert_pem, other_tls.cert_pem);
        let tls = support.tls().expect("tls on");
        assert_eq!(kv_tls.root_cert_pem, tls.root_pem());
        assert_eq!(tls.bound_certificates(), 2);

        // (a) no certificate.
        let (answer, _, _) = register(
            &support,
            &kv,
            StreamOrigin::Remote {
                client_cert: None,
                connection: Default::default(),
            },
        )
        .await;
        assert_eq!(answer.known_type(), Some(Type::Error));
        assert!(
            answer.payload_text().contains("no client certificate"),
            "{}",
            answer.payload_text()
        );
        // (b) the certificate of another chaincode's launch.
        let (answer, _, _) = register(&support, &kv, remote(der(&other_tls.cert_pem))).await;
        assert!(
            answer
                .payload_text()
                .contains("issued for chaincode other:1.0, not kv:1.0"),
            "{}",
            answer.payload_text()
        );
        // (d) a certificate the peer never issued, with kv's name in it.
        let stranger = CertAuthority::generate("someone else").expect("a CA");
        let forged = stranger
            .issue_client("kv:1.0", Duration::from_secs(3600))
            .expect("issued");
        let (answer, _, _) = register(&support, &kv, remote(der(&forged.cert_pem))).await;
        assert!(
            answer
                .payload_text()
                .contains("was not issued for any launch"),
            "{}",
            answer.payload_text()
        );
        // A dev certificate from the peer's own CA is no launch's either.
        let dev = tls.issue_dev_client(&kv).expect("issued");
        let (answer, _, _) = register(&support, &kv, remote(der(&dev.cert_pem))).await;
        assert!(
            answer
                .payload_text()
                .contains("was not issued for any launch"),
            "{}",
            answer.payload_text()
        );

        // The launch never saw them.
        assert_eq!(phase_of(&support, &kv), Some(Phase::AwaitingRegister));

        // (e) the bound certificate registers, and the launch completes.
        let (answer, _keep, mut replies) =
            register(&support, &kv, remote(der(&kv_tls.cert_pem))).await;
        assert_eq!(
            answer.known_type(),
            Some(Type::Registered),
            "{}",
            answer.payload_text()
        );
        let ready = replies.next().await.expect("READY").expect("not an error");
        assert_eq!(ready.known_type(), Some(Type::Ready));
        let handle = support.launch(&kv).await.expect("ready");
        assert_eq!(handle.generation().0, 1);
        assert_eq!(
            executor
                .requests
                .lock()
                .iter()
                .filter(|r| r.chaincode == kv)
                .count(),
            1
        );

        // The stop ends the generation: its certificate is unbound.
        support.stop(&kv).await.expect("stopped");
        assert_eq!(
            tls.bound_certificates(),
            1,
            "other's launch still holds its own"
        );
        let (answer, _, _) = register(&support, &kv, remote(der(&kv_tls.cert_pem))).await;
        assert_eq!(answer.known_type(), Some(Type::Error));

        // A relaunch gets a fresh certificate; the old one stays refused.
        let again = launch_started(&support, &executor, &kv).await;
        let fresh = again.tls.expect("a fresh identity");
        assert_ne!(fresh.cert_pem, kv_tls.cert_pem);
        let (answer, _, _) = register(&support, &kv, remote(der(&kv_tls.cert_pem))).await;
        assert!(
            answer.payload_text().contains("not issued for any launch"),
            "{}",
            answer.payload_text()
        );
        support.shutdown(Duration::from_secs(5)).await;
        assert_eq!(tls.bound_certificates(), 0, "shutdown unbinds every launch");
    }

    #[tokio::test(start_paused = true)]
    async fn a_binding_past_its_ttl_is_refused() {
        let ttl = Duration::from_secs(5);
        let (support, executor) = peer(Mode::Net, ttl);
        let kv = name("kv:1.0");
        let start = launch_started(&support, &executor, &kv).await;
        let cert = der(&start.tls.expect("an identity").cert_pem);
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        let (answer, _, _) = register(&support, &kv, remote(cert)).await;
        assert_eq!(answer.known_type(), Some(Type::Error));
        assert!(
            answer.payload_text().contains("expired"),
            "{}",
            answer.payload_text()
        );
        assert_eq!(phase_of(&support, &kv), Some(Phase::AwaitingRegister));
        support.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn in_process_streams_and_dev_mode_need_no_binding() {
        // The peer's own streams (`connect`) are trusted.
        let (support, executor) = peer(Mode::Net, Duration::from_secs(600));
        let kv = name("kv:1.0");
        launch_started(&support, &executor, &kv).await;
        let (answer, _keep, _replies) = register(&support, &kv, StreamOrigin::InProcess).await;
        assert_eq!(answer.known_type(), Some(Type::Registered));
        support.shutdown(Duration::from_secs(5)).await;

        // Dev mode: the peer launched nothing, so any CA certificate will
        // do for any name; none, or a stranger's, will not.
        let (support, executor) = peer(Mode::Dev, Duration::from_secs(600));
        let tls = support.tls().expect("tls on");
        let dev = tls.issue_dev_client(&name("mine:0.1")).expect("issued");
        let (answer, _keep, _replies) =
            register(&support, &name("yours:2.0"), remote(der(&dev.cert_pem))).await;
        assert_eq!(
            answer.known_type(),
            Some(Type::Registered),
            "{}",
            answer.payload_text()
        );
        let (answer, _, _) = register(
            &support,
            &name("theirs:1"),
            StreamOrigin::Remote {
                client_cert: None,
                connection: Default::default(),
            },
        )
        .await;
        assert!(answer.payload_text().contains("no client certificate"));
        let stranger = CertAuthority::generate("someone else").expect("a CA");
        let forged = stranger
            .issue_client("theirs:1", Duration::from_secs(3600))
            .expect("issued");
        let (answer, _, _) =
            register(&support, &name("theirs:1"), remote(der(&forged.cert_pem))).await;
        assert!(
            answer
                .payload_text()
                .contains("not issued by this peer's CA"),
            "{}",
            answer.payload_text()
        );
        assert!(
            phase_of(&support, &name("theirs:1")).is_none(),
            "a refused stream creates no entry"
        );
        assert!(
            executor.requests.lock().is_empty(),
            "dev mode starts nothing"
        );
        support.shutdown(Duration::from_secs(5)).await;
    }
}
