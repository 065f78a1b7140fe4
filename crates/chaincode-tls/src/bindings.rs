//! Which chaincode each issued client certificate may register as.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertHash(pub [u8; 32]);

impl CertHash {
    /// The hash of `der`.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl fmt::Display for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertHash({self})")
    }
}

/// Why a certificate may not register as the name it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The stream presented no client certificate.
    #[error("register {claimed}: no client certificate was presented")]
    NoCertificate {
        /// The name in the REGISTER.
        claimed: String,
    },
    /// The certificate was not issued for any launch (or its binding is gone).
    #[error("register {claimed}: client certificate {hash} was not issued for any launch")]
    Unknown {
        /// The name in the REGISTER.
        claimed: String,
        /// The certificate's hash.
        hash: String,
    },
    /// The certificate was issued for another chaincode.
    #[error(
        "register {claimed}: client certificate {hash} was issued for chaincode {bound}, not {claimed}"
    )]
    WrongName {
        /// The name in the REGISTER.
        claimed: String,
        /// The name the certificate was issued for.
        bound: String,
        /// The certificate's hash.
        hash: String,
    },
    /// The binding outlived its time to live.
    #[error(
        "register {claimed}: client certificate {hash} expired: it was issued {age:?} ago and may register only within {ttl:?}"
    )]
    Expired {
        /// The name in the REGISTER.
        claimed: String,
        /// The certificate's hash.
        hash: String,
        /// How long ago it was bound.
        age: Duration,
        /// The time to live.
        ttl: Duration,
    },
}

#[derive(Debug)]
struct Binding {
    name: String,
    since: Instant,
}

/// hash(certificate) → chaincode name, each entry good for a time to live
/// (Fabric: 10 minutes). Bounded: expired entries go at every [`Self::bind`].
#[derive(Debug)]
pub struct CertBindings {
    ttl: Duration,
    bound: Mutex<HashMap<CertHash, Binding>>,
}

impl CertBindings {
    /// Fabric's time to live for a binding.
    pub const FABRIC_TTL: Duration = Duration::from_secs(600);

    /// An empty table whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            bound: Mutex::new(HashMap::new()),
        }
    }

    /// The time to live of an entry.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Binds `hash` to `name` from `now`, and forgets expired entries.
    pub fn bind(&self, hash: CertHash, name: &str, now: Instant) {
        let mut bound = self.bound.lock();
        bound.retain(|_, b| now.saturating_duration_since(b.since) <= self.ttl);
        bound.insert(
            hash,
            Binding {
                name: name.to_owned(),
                since: now,
            },
        );
    }

    /// Forgets `hash` (its launch ended).
    pub fn unbind(&self, hash: &CertHash) {
        self.bound.lock().remove(hash);
    }

    /// Whether a stream presenting the certificate `hash` may register as
    /// `claimed` at `now`.
    pub fn check(&self, hash: &CertHash, claimed: &str, now: Instant) -> Result<(), BindingError> {
        let bound = self.bound.lock();
        let Some(binding) = bound.get(hash) else {
            return Err(BindingError::Unknown {
                claimed: claimed.to_owned(),
                hash: hash.to_string(),
            });
        };
        let age = now.saturating_duration_since(binding.since);
        if age > self.ttl {
            return Err(BindingError::Expired {
                claimed: claimed.to_owned(),
                hash: hash.to_string(),
                age,
                ttl: self.ttl,
            });
        }
        if binding.name != claimed {
            return Err(BindingError::WrongName {
                claimed: claimed.to_owned(),
                bound: binding.name.clone(),
                hash: hash.to_string(),
            });
        }
        Ok(())
    }

    /// How many bindings are held (expired ones included until the next bind).
    pub fn len(&self) -> usize {
        self.bound.lock().len()
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_admits_its_name_only_and_only_within_its_ttl() {
        let table = CertBindings::new(Duration::from_secs(600));
        let t0 = Instant::now();
        let hash = CertHash::of(b"cert");
        table.bind(hash, "kv:1.0", t0);
        assert_eq!(table.check(&hash, "kv:1.0", t0), Ok(()));
        let later = t0 + Duration::from_secs(600);
        assert_eq!(table.check(&hash, "kv:1.0", later), Ok(()));
        let wrong = table.check(&hash, "other:1.0", t0).unwrap_err();
        assert!(
            wrong
                .to_string()
                .contains("issued for chaincode kv:1.0, not other:1.0"),
            "{wrong}"
        );
        let expired = table
            .check(&hash, "kv:1.0", t0 + Duration::from_secs(601))
            .unwrap_err();
        assert!(matches!(expired, BindingError::Expired { .. }), "{expired}");
        assert!(expired.to_string().contains("expired"), "{expired}");
        let unknown = table.check(&CertHash::of(b"x"), "kv:1.0", t0).unwrap_err();
        assert!(matches!(unknown, BindingError::Unknown { .. }));
        table.unbind(&hash);
        assert!(table.check(&hash, "kv:1.0", t0).is_err());
    }

    #[test]
    fn expired_entries_are_dropped_at_the_next_bind() {
        let table = CertBindings::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..100u32 {
            table.bind(CertHash::of(&i.to_be_bytes()), "a:1", t0);
        }
        assert_eq!(table.len(), 100);
        table.bind(CertHash::of(b"new"), "a:1", t0 + Duration::from_secs(11));
        assert_eq!(table.len(), 1);
    }
}
