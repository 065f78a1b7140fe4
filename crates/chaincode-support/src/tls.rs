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
            StreamOrigin::Remote { client_cert } => client_cert,
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
    #[error("register {claimed}: client certificate {hash} was not issued by this peer's CA: {reason}")]
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

        let none = StreamOrigin::Remote { client_cert: None };
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

        let none = StreamOrigin::Remote { client_cert: None };
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
