//! The CA on disk and real TLS handshakes on 127.0.0.1 with what it issues.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use chaincode_tls::{CA_KEY_FILE, CertAuthority, TlsError, client_config, server_config};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[test]
fn the_ca_is_kept_private_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("tls");
    let first = CertAuthority::load_or_create(&state, "test CA").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(CA_KEY_FILE)), 0o600);
    let again = CertAuthority::load_or_create(&state, "test CA").unwrap();
    assert_eq!(first.root_pem(), again.root_pem(), "the same CA is reused");

    // A key others can read is refused, not used.
    std::fs::set_permissions(
        state.join(CA_KEY_FILE),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = CertAuthority::load_or_create(&state, "test CA").unwrap_err();
    assert!(matches!(err, TlsError::File { .. }), "{err}");
    assert!(err.to_string().contains("expected 0600"), "{err}");
}

#[test]
fn a_key_of_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    CertAuthority::load_or_create(&a, "a").unwrap();
    CertAuthority::load_or_create(&b, "b").unwrap();
    std::fs::copy(b.join(CA_KEY_FILE), a.join(CA_KEY_FILE)).unwrap();
    let err = CertAuthority::load_or_create(&a, "a").unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

/// Serves one TLS connection on 127.0.0.1 and echoes one line; returns
/// the server's view of the client's certificate chain length.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<usize, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let certs = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        tls.write_all(&byte).await.map_err(|e| e.to_string())?;
        Ok::<usize, String>(certs)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let client_side = async {
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"x").await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    let client_result = tokio::time::timeout(Duration::from_secs(10), client_side)
        .await
        .expect("handshake bounded");
    let server_result = tokio::time::timeout(Duration::from_secs(10), serve)
        .await
        .expect("server bounded")
        .unwrap();
    client_result?;
    server_result
}

#[tokio::test]
async fn mutual_tls_admits_only_certificates_of_the_ca() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let server_cert = ca.issue_server(&["127.0.0.1", "localhost"]).unwrap();
    let server = server_config(&server_cert.cert_pem, &server_cert.key_pem, ca.root_pem()).unwrap();
    let client = ca
        .issue_client("kv:1.0", Duration::from_secs(3600))
        .unwrap();

    let ok = client_config(ca.root_pem(), Some((&client.cert_pem, &client.key_pem))).unwrap();
    assert_eq!(handshake(server.clone(), ok).await, Ok(1));

    let anonymous = client_config(ca.root_pem(), None).unwrap();
    assert!(handshake(server.clone(), anonymous).await.is_err());

    let stranger_ca = CertAuthority::generate("another CA").unwrap();
    let stranger = stranger_ca
        .issue_client("kv:1.0", Duration::from_secs(3600))
        .unwrap();
    let forged =
        client_config(ca.root_pem(), Some((&stranger.cert_pem, &stranger.key_pem))).unwrap();
    assert!(handshake(server, forged).await.is_err());
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused_by_the_handshake() {
    let ca = CertAuthority::generate("peer CA").unwrap();
    let server_cert = ca.issue_server(&["127.0.0.1"]).unwrap();
    let server = server_config(&server_cert.cert_pem, &server_cert.key_pem, ca.root_pem()).unwrap();
    let now = std::time::SystemTime::now();
    let day = Duration::from_secs(86_400);
    let client = ca
        .issue_client_between("kv:1.0", now - 2 * day, now - day)
        .unwrap();
    let config = client_config(ca.root_pem(), Some((&client.cert_pem, &client.key_pem))).unwrap();
    let err = handshake(server, config).await.unwrap_err();
    assert!(!err.is_empty());
}
