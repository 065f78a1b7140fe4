//! Every launch's TLS client identity, through the public API: a fresh
//! certificate per launch, for the chaincode's `name:version`, issued by the
//! peer's CA, bound while its generation lives and unbound when it ends.
//! (The REGISTER check itself is tested in the crate, `src/tls.rs`, where a
//! stream can be handed over with the certificate a handshake presented.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use chaincode_proto::ChaincodeName;
use chaincode_shim::BoxFuture;
use chaincode_support::{ChaincodeSupport, PeerTls, SupportConfig};
use chaincode_tls::CertAuthority;
use common::*;
use executor::inproc::InprocExecutor;
use executor::{ClientTls, EventSink, Executor, ExecutorError, ExitStatus, StartRequest};
use launch_fsm::Phase;
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::Notify;
use x509_parser::prelude::{FromDer, X509Certificate};

const LIMIT: Duration = Duration::from_secs(20);

/// Records every start and keeps its event sink; runs nothing.
#[derive(Default)]
struct RecordingExecutor {
    starts: Mutex<Vec<(StartRequest, EventSink)>>,
    started: Notify,
}

impl RecordingExecutor {
    fn count(&self) -> usize {
        self.starts.lock().len()
    }

    /// Waits for start number `n` (1-based) and returns its request.
    async fn nth_start(&self, n: usize) -> StartRequest {
        let wait = async {
            loop {
                let notified = self.started.notified();
                if let Some((request, _)) = self.starts.lock().get(n - 1) {
                    return request.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(LIMIT, wait).await.expect("a start")
    }

    /// The runtime of the last start exits, as a crash would.
    fn crash_last(&self) {
        if let Some((_, sink)) = self.starts.lock().last() {
            sink.exited(ExitStatus::Code(137));
        }
    }
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
        sink: EventSink,
    ) -> BoxFuture<'_, Result<(), ExecutorError>> {
        self.starts.lock().push((request, sink));
        self.started.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn stop<'a>(&'a self, _: &'a ChaincodeName) -> BoxFuture<'a, Result<(), ExecutorError>> {
        Box::pin(async { Ok(()) })
    }
}

fn peer_tls() -> PeerTls {
    let ca = CertAuthority::generate("test peer CA").expect("a CA");
    PeerTls::new(Arc::new(ca), &["127.0.0.1", "localhost"]).expect("the listener's TLS")
}

async fn tls_peer(executor: Arc<RecordingExecutor>) -> ChaincodeSupport {
    peer_with(executor, |_| {}, |b| b.tls(peer_tls())).await
}

fn launch_in_background(support: &ChaincodeSupport, chaincode: &ChaincodeName) {
    let support = support.clone();
    let chaincode = chaincode.clone();
    tokio::spawn(async move { support.launch(&chaincode).await });
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .to_vec()
}

/// The certificate's common name, after checking that it is a client
/// certificate the peer's CA signed.
fn verified_common_name(identity: &ClientTls, tls: &PeerTls) -> String {
    assert_eq!(identity.root_cert_pem, tls.root_pem());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(der(&identity.root_cert_pem)))
        .expect("a root");
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("a verifier");
    let leaf = der(&identity.cert_pem);
    verifier
        .verify_client_cert(&CertificateDer::from(leaf.as_slice()), &[], UnixTime::now())
        .expect("a client certificate the peer's CA issued");
    let (_, cert) = X509Certificate::from_der(&leaf).expect("DER");
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("a common name")
        .to_owned()
}

fn phase(support: &ChaincodeSupport, chaincode: &ChaincodeName) -> Option<Phase> {
    support
        .status()
        .into_iter()
        .find(|s| &s.chaincode == chaincode)
        .map(|s| s.phase)
}

#[tokio::test]
async fn every_launch_gets_a_fresh_certificate_for_its_name_bound_while_it_lives() {
    let executor = Arc::new(RecordingExecutor::default());
    let support = tls_peer(executor.clone()).await;
    let tls = support.tls().expect("tls on");
    let kv = name("kv:1.0");
    let other = name("other:2.1");

    launch_in_background(&support, &kv);
    let first = executor.nth_start(1).await;
    launch_in_background(&support, &other);
    let second = executor.nth_start(2).await;
    let kv_identity = first.tls.expect("kv's launch has a client identity");
    let other_identity = second.tls.expect("other's launch has one");
    assert_eq!(verified_common_name(&kv_identity, tls), "kv:1.0");
    assert_eq!(verified_common_name(&other_identity, tls), "other:2.1");
    assert_ne!(kv_identity.key_pem, other_identity.key_pem, "own keys");
    assert_eq!(tls.bound_certificates(), 2);

    // The runtime exits before it registers: the generation ends and its
    // certificate is unbound.
    assert!(wait_for_phase(&support, &kv, Phase::AwaitingRegister, LIMIT).await);
    executor.crash_last(); // other's runtime
    assert!(eventually(LIMIT, || tls.bound_certificates() == 1).await);
    assert_eq!(phase(&support, &other), Some(Phase::Idle));

    // A relaunch gets a fresh certificate (and key), bound anew.
    launch_in_background(&support, &other);
    let third = executor.nth_start(3).await;
    let again = third.tls.expect("a fresh identity");
    assert_eq!(verified_common_name(&again, tls), "other:2.1");
    assert_ne!(again.cert_pem, other_identity.cert_pem);
    assert_ne!(again.key_pem, other_identity.key_pem);
    assert_eq!(tls.bound_certificates(), 2);

    // A stop ends a generation too.
    support.stop(&kv).await.expect("stopped");
    assert_eq!(tls.bound_certificates(), 1);
    support.shutdown(LIMIT).await;
    assert_eq!(tls.bound_certificates(), 0, "nothing outlives the runtime");
    assert_eq!(executor.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_launch_that_times_out_unbinds_its_certificate() {
    let executor = Arc::new(RecordingExecutor::default());
    let support = peer_with(
        executor.clone(),
        |c| c.startup_timeout = SupportConfig::MIN_STARTUP_TIMEOUT,
        |b| b.tls(peer_tls()),
    )
    .await;
    let tls = support.tls().expect("tls on");
    let kv = name("kv:1.0");
    let launching = support.clone();
    let waiting = tokio::spawn({
        let kv = kv.clone();
        async move { launching.launch(&kv).await }
    });
    executor.nth_start(1).await;
    assert_eq!(tls.bound_certificates(), 1);
    let outcome = waiting.await.expect("the launch task");
    assert!(outcome.is_err(), "nobody registered: the launch times out");
    assert!(eventually(LIMIT, || tls.bound_certificates() == 0).await);
    support.shutdown(LIMIT).await;
}

#[tokio::test]
async fn in_process_chaincodes_and_plaintext_peers_get_no_certificate() {
    // System chaincodes talk to the peer over its own streams.
    let inproc = Arc::new(InprocExecutor::new());
    inproc
        .register("sys", Arc::new(|| Arc::new(KvChaincode::default()) as _))
        .expect("registered");
    let support = ChaincodeSupport::builder(SupportConfig::default())
        .inproc(inproc)
        .tls(peer_tls())
        .build();
    let sys = name("sys:1.0");
    let put = support
        .execute(
            &sys,
            chaincode_support::TxKind::Transaction,
            &args(&["put", "a", "1"]),
        )
        .await
        .expect("the system chaincode runs");
    assert_eq!(put.status, 200);
    assert_eq!(support.tls().map(PeerTls::bound_certificates), Some(0));
    support.shutdown(LIMIT).await;

    // Without `tls`, the listener is plaintext and launches carry nothing.
    let executor = Arc::new(RecordingExecutor::default());
    let support = peer(executor.clone()).await;
    assert!(support.tls().is_none());
    launch_in_background(&support, &name("kv:1.0"));
    assert!(executor.nth_start(1).await.tls.is_none());
    support.shutdown(LIMIT).await;
}
