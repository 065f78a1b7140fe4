//! rustls configurations for the peer's listeners and its clients.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::TlsError;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // An explicit provider: no dependence on a process-wide default.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(root_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::Invalid {
            what: "root certificate",
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::Invalid {
            what: "root certificate",
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Invalid {
            what: "root certificate",
            reason: "no certificate in the PEM text".to_owned(),
        });
    }
    Ok(roots)
}

fn identity(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            what: "certificate",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            what: "certificate",
            reason: "no certificate in the PEM text".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Invalid {
        what: "private key",
        reason: e.to_string(),
    })?;
    Ok((certs, key))
}

/// A server configuration presenting `cert_pem`/`key_pem`, speaking HTTP/2
/// (ALPN `h2`, as gRPC needs) and requiring a client certificate issued by
/// one of `client_roots_pem`.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_roots_pem: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_roots_pem)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Config(e.to_string()))?;
    let (certs, key) = identity(cert_pem, key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting `root_pem`, presenting the client
/// certificate `identity` (`(cert_pem, key_pem)`) when given, speaking HTTP/2.
pub fn client_config(
    root_pem: &str,
    client: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(root_pem)?);
    let mut config = match client {
        Some((cert_pem, key_pem)) => {
            let (certs, key) = identity(cert_pem, key_pem)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
