//! The certificate authority and the certificates it issues.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::TlsError;
use crate::bindings::CertHash;

/// The CA certificate's file name in a state directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA key's file name in a state directory (mode `0600`).
pub const CA_KEY_FILE: &str = "ca.key";

/// How long the CA itself is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a server certificate is valid (it is reissued at every start).
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Tolerated clock skew between the peer and what checks its certificates.
const BACKDATE: Duration = Duration::from_secs(300);

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

impl IssuedCert {
    /// The SHA-256 of the certificate's DER: what a binding is keyed by.
    pub fn hash(&self) -> CertHash {
        CertHash::of(&self.cert_der)
    }
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("IssuedCert")
            .field("hash", &self.hash().to_string())
            .finish_non_exhaustive()
    }
}

/// The peer's own CA: it signs the chaincode listener's server certificate,
/// every launch's client certificate and the admin API's certificates.
pub struct CertAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("hash", &CertHash::of(&self.cert_der).to_string())
            .finish_non_exhaustive()
    }
}

fn issue_error(subject: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |e| TlsError::Issue {
        subject: subject.to_owned(),
        reason: e.to_string(),
    }
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> TlsError + '_ {
    move |e| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + valid_for;
}

fn named(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "cclaunch");
    name.push(DnType::CommonName, common_name);
    name
}

impl CertAuthority {
    /// A fresh CA held in memory only (tests, the demo).
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let error = issue_error(common_name);
        let key = KeyPair::generate().map_err(&error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = named(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key).map_err(&error)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Reads the CA kept in `dir` ([`CA_CERT_FILE`], [`CA_KEY_FILE`]), or
    /// makes one and keeps it there. `dir` is created with mode `0700`; the
    /// key is written with mode `0600`, and a key file that others may read
    /// is refused rather than used.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<Self, TlsError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(file_error(dir))?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if key_path.exists() || cert_path.exists() {
            return Self::load(&cert_path, &key_path);
        }
        let ca = Self::generate(common_name)?;
        write_new(&key_path, ca.key_pem.as_bytes(), 0o600)?;
        write_new(&cert_path, ca.cert_pem.as_bytes(), 0o644)?;
        Ok(ca)
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let key_meta = fs::symlink_metadata(key_path).map_err(file_error(key_path))?;
        if !key_meta.is_file() {
            return Err(TlsError::File {
                path: key_path.display().to_string(),
                reason: "not a regular file".to_owned(),
            });
        }
        if key_meta.permissions().mode() & 0o077 != 0 {
            return Err(TlsError::File {
                path: key_path.display().to_string(),
                reason: format!(
                    "mode {:o} lets other users read the CA key: expected 0600 (chmod 600 it or remove the directory to start afresh)",
                    key_meta.permissions().mode() & 0o777
                ),
            });
        }
        let key_pem = fs::read_to_string(key_path).map_err(file_error(key_path))?;
        let cert_pem = fs::read_to_string(cert_path).map_err(file_error(cert_path))?;
        let invalid = |what: &'static str| {
            move |e: rcgen::Error| TlsError::Invalid {
                what,
                reason: e.to_string(),
            }
        };
        let key = KeyPair::from_pem(&key_pem).map_err(invalid("CA key"))?;
        let cert_der = pem_to_der(&cert_pem, "CA certificate")?;
        // A key that does not belong to the certificate would issue
        // certificates nobody can verify: refuse it at load.
        if certified_public_key(&cert_der)? != key.public_key_raw() {
            return Err(TlsError::Invalid {
                what: "CA key",
                reason: format!(
                    "{} does not belong to {}",
                    key_path.display(),
                    cert_path.display()
                ),
            });
        }
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(invalid("CA certificate"))?;
        Ok(Self {
            cert_pem,
            cert_der,
            key_pem,
            issuer,
        })
    }

    /// The CA certificate, PEM (what clients and servers trust).
    pub fn root_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A server certificate for `hosts` (DNS names or IP addresses).
    pub fn issue_server(&self, hosts: &[&str]) -> Result<IssuedCert, TlsError> {
        let subject = hosts.first().copied().unwrap_or("cclaunch peer");
        let error = issue_error(subject);
        let mut params = CertificateParams::default();
        params.distinguished_name = named(subject);
        for host in hosts {
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*host).try_into().map_err(&error)?),
            };
            params.subject_alt_names.push(san);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, SERVER_VALIDITY);
        self.sign(params, &error)
    }

    /// A client certificate whose common name is `common_name`, valid for
    /// `valid_for` from now.
    pub fn issue_client(
        &self,
        common_name: &str,
        valid_for: Duration,
    ) -> Result<IssuedCert, TlsError> {
        let now = SystemTime::now();
        self.issue_client_between(
            common_name,
            now.checked_sub(BACKDATE).unwrap_or(now),
            now + valid_for,
        )
    }

    /// A client certificate whose common name is `common_name`, valid from
    /// `not_before` to `not_after`.
    pub fn issue_client_between(
        &self,
        common_name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCert, TlsError> {
        let error = issue_error(common_name);
        let mut params = CertificateParams::default();
        params.distinguished_name = named(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        self.sign(params, &error)
    }

    fn sign(
        &self,
        params: CertificateParams,
        error: &impl Fn(rcgen::Error) -> TlsError,
    ) -> Result<IssuedCert, TlsError> {
        let key = KeyPair::generate().map_err(error)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(error)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }
}

/// The DER of the first certificate in `pem`.
pub(crate) fn pem_to_der(pem: &str, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| TlsError::Invalid {
            what,
            reason: e.to_string(),
        })
}

/// The raw public key a DER certificate certifies.
fn certified_public_key(der: &[u8]) -> Result<Vec<u8>, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Invalid {
        what: "CA certificate",
        reason: e.to_string(),
    })?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(file_error(path))?;
    file.write_all(bytes).map_err(file_error(path))?;
    file.sync_all().map_err(file_error(path))
}
