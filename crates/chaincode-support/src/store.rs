//! Where deployment specs and world state come from.
//!
//! Both stores are traits so that a peer can plug in its own (its lifecycle,
//! its ledger); the defaults are a directory of packages and memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chaincode_proto::prost::Message;
use chaincode_proto::{ChaincodeDeploymentSpec, ChaincodeName};
use executor::file::{ReadFileError, Symlinks, read_regular_file};
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};

/// Looks up the deployment spec of a chaincode.
pub trait SpecStore: Send + Sync + 'static {
    /// The spec of `chaincode`, or why there is none (the text ends up in a
    /// `not found` launch error).
    fn lookup<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<ChaincodeDeploymentSpec, String>>;
}

/// Specs kept in memory (tests, embedded peers, deploy calls).
#[derive(Debug, Default)]
pub struct MemorySpecStore {
    specs: RwLock<HashMap<ChaincodeName, ChaincodeDeploymentSpec>>,
}

impl MemorySpecStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the spec of `chaincode`.
    pub fn insert(&self, chaincode: ChaincodeName, spec: ChaincodeDeploymentSpec) {
        self.specs.write().insert(chaincode, spec);
    }
}

impl SpecStore for MemorySpecStore {
    fn lookup<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<ChaincodeDeploymentSpec, String>> {
        let found = self.specs.read().get(chaincode).cloned();
        Box::pin(async move {
            found.ok_or_else(|| format!("no deployment spec for {chaincode} in memory"))
        })
    }
}

/// The default cap on a package file read by [`FsSpecStore`]: 512 MiB.
pub const DEFAULT_MAX_PACKAGE_BYTES: u64 = 512 << 20;

/// Specs read from `{dir}/{name}.{version}`, each a marshalled
/// `ChaincodeDeploymentSpec` (Fabric 1.0's `chaincodes/` directory).
///
/// A package file is read only as a regular file inside `dir`:
/// - its path is built from a [`ChaincodeName`], whose rules leave no `/`,
///   no leading `.` and no `..` in `{name}.{version}`, so it cannot leave `dir`;
/// - a symbolic link there is refused, not followed (`O_NOFOLLOW`);
/// - a FIFO, device or directory is refused, without blocking (`O_NONBLOCK`,
///   then fstat of the opened file);
/// - a file over the cap ([`FsSpecStore::with_max_size`], by default
///   [`DEFAULT_MAX_PACKAGE_BYTES`]) is refused before it is read.
///
/// The read runs on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct FsSpecStore {
    dir: PathBuf,
    max_size: u64,
}

impl FsSpecStore {
    /// A store over `dir`, with the default size cap.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_size: DEFAULT_MAX_PACKAGE_BYTES,
        }
    }

    /// The same store, refusing package files larger than `bytes`.
    #[must_use]
    pub fn with_max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// The size cap on a package file, in bytes.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The file that holds the spec of `chaincode`: always a direct child of
    /// the store's directory (see the type docs).
    pub fn path_of(&self, chaincode: &ChaincodeName) -> PathBuf {
        self.dir
            .join(format!("{}.{}", chaincode.name(), chaincode.version()))
    }
}

impl SpecStore for FsSpecStore {
    fn lookup<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<ChaincodeDeploymentSpec, String>> {
        let path = self.path_of(chaincode);
        let max = self.max_size;
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || {
                read_regular_file(&path, max, Symlinks::Refuse).map(|bytes| (path, bytes))
            })
            .await
            .map_err(|e| format!("package file of {chaincode}: the read task failed: {e}"))?;
            let (path, bytes) = read.map_err(|e| {
                // A refusal says the rule; a missing file needs no lecture.
                let rule = match e {
                    ReadFileError::Open { .. } | ReadFileError::Read { .. } => String::new(),
                    _ => format!(
                        " (a package must be a regular file in the packages directory, \
                         not a link, of at most {max} bytes)"
                    ),
                };
                format!("package file of {chaincode}: {e}{rule}")
            })?;
            ChaincodeDeploymentSpec::decode(bytes.as_slice()).map_err(|e| {
                format!(
                    "package file of {chaincode}: {} is not a ChaincodeDeploymentSpec: {e}",
                    path.display()
                )
            })
        })
    }
}

/// The world state the chaincode reads and writes with
/// GET_STATE / PUT_STATE / DEL_STATE, one namespace per chaincode name.
pub trait StateStore: Send + Sync + 'static {
    /// The value of `key`, `None` when absent.
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Sets `key` to `value`.
    fn put(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), String>;
    /// Removes `key` (absent is fine).
    fn delete(&self, namespace: &str, key: &str) -> Result<(), String>;
}

/// World state in memory. Writes apply at once (there is no endorsement or
/// commit step in a dev peer).
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    state: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryStateStore {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateStore for MemoryStateStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .state
            .lock()
            .get(&(namespace.to_owned(), key.to_owned()))
            .cloned())
    }

    fn put(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.state
            .lock()
            .insert((namespace.to_owned(), key.to_owned()), value);
        Ok(())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<(), String> {
        self.state
            .lock()
            .remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }
}

impl<T: SpecStore + ?Sized> SpecStore for Arc<T> {
    fn lookup<'a>(
        &'a self,
        chaincode: &'a ChaincodeName,
    ) -> BoxFuture<'a, Result<ChaincodeDeploymentSpec, String>> {
        (**self).lookup(chaincode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fs_store_reads_marshalled_specs_and_explains_misses() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsSpecStore::new(dir.path());
        let cc: ChaincodeName = "kv:1.0".parse().unwrap();
        let missing = store.lookup(&cc).await.unwrap_err();
        assert!(missing.contains("kv.1.0"), "{missing}");

        let spec = ChaincodeDeploymentSpec {
            code_package: b"package".to_vec(),
            ..Default::default()
        };
        std::fs::write(store.path_of(&cc), spec.encode_to_vec()).unwrap();
        assert_eq!(store.lookup(&cc).await.unwrap(), spec);

        std::fs::write(store.path_of(&cc), b"\xff\xff\xff").unwrap();
        let garbage = store.lookup(&cc).await.unwrap_err();
        assert!(
            garbage.contains("not a ChaincodeDeploymentSpec"),
            "{garbage}"
        );
    }

    #[test]
    fn memory_state_is_namespaced() {
        let state = MemoryStateStore::new();
        state.put("a", "k", b"1".to_vec()).unwrap();
        assert_eq!(state.get("a", "k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(state.get("b", "k").unwrap(), None);
        state.delete("a", "k").unwrap();
        assert_eq!(state.get("a", "k").unwrap(), None);
    }
}
