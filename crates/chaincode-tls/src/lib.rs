//! The peer's own certificate authority and what it issues.
//!
//! Fabric 2.x closes the door on a local process that poses as a chaincode by
//! giving every launch its own TLS client certificate and binding the
//! certificate's hash to the chaincode name. This crate holds the pieces that
//! need no runtime: the [`CertAuthority`] (generated once and kept in the
//! peer's state directory), the certificates it issues ([`IssuedCert`]), the
//! [`CertBindings`] table (hash → name, expiring), and the rustls
//! configurations built from them.
//!
//! # What it promises
//! - Keys are ECDSA P-256, made and signed by rcgen; nothing here parses or
//!   writes ASN.1 by hand.
//! - A CA kept on disk has its key in a file of mode `0600` inside a
//!   directory of mode `0700`; a key file others can read is refused.
//! - [`server_config`] requires a client certificate issued by the CA;
//!   [`CertBindings::check`] then tells whether that certificate may register
//!   as the name it claims. Time is an argument: nothing here reads a clock
//!   except certificate validity dates, which X.509 needs.
//!
//! # Example
//! ```
//! use std::time::{Duration, Instant};
//! use chaincode_tls::{CertAuthority, CertBindings, CertHash};
//!
//! let ca = CertAuthority::generate("cclaunch peer CA")?;
//! let client = ca.issue_client("kv:1.0", Duration::from_secs(3600))?;
//! let bindings = CertBindings::new(Duration::from_secs(600));
//! let now = Instant::now();
//! bindings.bind(client.hash(), "kv:1.0", now);
//! assert!(bindings.check(&client.hash(), "kv:1.0", now).is_ok());
//! assert!(bindings.check(&client.hash(), "other:1.0", now).is_err());
//! assert!(bindings.check(&CertHash::of(b"unknown"), "kv:1.0", now).is_err());
//! # Ok::<(), chaincode_tls::TlsError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod authority;
mod bindings;
mod config;

pub use authority::{CA_CERT_FILE, CA_KEY_FILE, CertAuthority, IssuedCert};
pub use bindings::{BindingError, CertBindings, CertHash};
pub use config::{client_config, server_config};

/// Why a certificate could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen could not make or sign a certificate.
    #[error("cannot issue a certificate for {subject}: {reason}")]
    Issue {
        /// The certificate's subject (common name).
        subject: String,
        /// rcgen's reason.
        reason: String,
    },
    /// A file of the CA could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// PEM or key material that does not parse.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}
