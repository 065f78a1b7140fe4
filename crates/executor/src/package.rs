//! Code packages: the `code_package` bytes of a ChaincodeDeploymentSpec.
//!
//! # Layout
//!
//! A code package is a gzip-compressed tar archive. The chaincode executable is
//! the regular file named [`EXECUTABLE`] (`chaincode`) at the archive root
//! (`chaincode` or `./chaincode`). Other regular files and directories may sit
//! beside it (configuration, data); they are unpacked next to it and become
//! the runtime's working directory (process backend) or `/usr/local/bin`'s
//! neighbours in the image build context (docker backend).
//!
//! ```text
//! chaincode            the executable (mode forced to 0755 on unpack)
//! config/…             optional: anything else the chaincode reads
//! ```
//!
//! # What is refused
//!
//! [`unpack`] checks every entry itself before writing anything, and refuses
//! with [`ExecutorError::BadPackage`] (naming the chaincode and the entry):
//! - bytes that are not a gzip-compressed tar archive;
//! - absolute paths, `..` components, or any other path that would land
//!   outside the destination;
//! - symbolic links, hard links, device files, FIFOs and any other entry
//!   type that is not a regular file or a directory;
//! - more than [`MAX_ENTRIES`] entries or more than [`MAX_UNPACKED_BYTES`]
//!   bytes of content (a decompression bomb);
//! - an archive without a regular file `chaincode` at its root.
//!
//! Setuid, setgid and sticky bits are dropped; files keep at most `0755`.
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//! use chaincode_proto::ChaincodeName;
//! use executor::package;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = package::package_binary(Path::new("target/release/kv"))?;
//! let cc: ChaincodeName = "kv:1.0".parse()?;
//! let exe = package::unpack(&bytes, Path::new("/tmp/kv-1.0"), &cc)?;
//! assert!(exe.ends_with("chaincode"));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use chaincode_proto::ChaincodeName;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tar::EntryType;

use crate::ExecutorError;
use crate::file::{Symlinks, read_regular_file};

/// The name of the executable at the root of every code package.
pub const EXECUTABLE: &str = "chaincode";

/// The most entries a package may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// The most content bytes (summed over all files) a package may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;

/// Packs the executable at `binary` as a code package: a tar.gz holding it as
/// `chaincode`, mode `0755`.
///
/// `binary` must be a regular file (a link to one is followed) of at most
/// [`MAX_UNPACKED_BYTES`]; a FIFO or device is refused without blocking (see
/// [`crate::file`]). A refused or unreadable `binary` is an
/// [`ExecutorError::BadPackage`] whose `chaincode` field is the binary's path
/// (there is no chaincode name yet).
pub fn package_binary(binary: &Path) -> Result<Vec<u8>, ExecutorError> {
    let bad = |reason: String| ExecutorError::BadPackage {
        chaincode: binary.display().to_string(),
        reason,
    };
    // A link to the binary is fine (the user names it), but it must lead to
    // a regular file no larger than any package could unpack to.
    let data = read_regular_file(binary, MAX_UNPACKED_BYTES, Symlinks::Follow)
        .map_err(|e| bad(format!("cannot read the binary: {e}")))?;
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(data.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    builder
        .append_data(&mut header, EXECUTABLE, data.as_slice())
        .map_err(|e| bad(format!("cannot write the archive: {e}")))?;
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| bad(format!("cannot finish the archive: {e}")))
}

/// One checked entry of a code package, held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PackageEntry {
    /// A directory at this relative path.
    Dir(PathBuf),
    /// A regular file at this relative path, with its permission bits
    /// (already masked to `0o755`) and its content.
    File {
        path: PathBuf,
        mode: u32,
        data: Vec<u8>,
    },
}

/// Reads and checks every entry of `package` (see the module docs for what
/// is refused), without touching the file system. The result holds a regular
/// file [`EXECUTABLE`] at the root.
pub(crate) fn read_entries(
    package: &[u8],
    chaincode: &ChaincodeName,
) -> Result<Vec<PackageEntry>, ExecutorError> {
    let bad = |reason: String| ExecutorError::BadPackage {
        chaincode: chaincode.to_string(),
        reason,
    };
    if package.is_empty() {
        return Err(bad("the code package is empty".to_owned()));
    }
    // gzip magic: report "not gzip" plainly instead of a tar parse error.
    if !package.starts_with(&[0x1f, 0x8b]) {
        return Err(bad(
            "the code package is not gzip-compressed (expected a tar.gz)".to_owned(),
        ));
    }
    let mut archive = tar::Archive::new(GzDecoder::new(package));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a valid tar.gz: {e}")))?;

    let mut out = Vec::new();
    // What each path already is (true = directory), so that a file is never
    // also a directory or the parent of another entry.
    let mut kinds: HashMap<PathBuf, bool> = HashMap::new();
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a valid tar.gz: {e}")))?;
        if out.len() >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = checked_path(&raw).map_err(|why| bad(format!("entry {raw:?}: {why}")))?;
        if let Some(path) = &path {
            let is_dir = entry.header().entry_type() == EntryType::Directory;
            record_kind(&mut kinds, path, is_dir)
                .map_err(|why| bad(format!("entry {raw:?}: {why}")))?;
        }
        match entry.header().entry_type() {
            EntryType::Directory => {
                if let Some(path) = path {
                    out.push(PackageEntry::Dir(path));
                }
            }
            // Old tars mark regular files with a NUL type byte; tar maps it to Regular.
            EntryType::Regular | EntryType::Continuous => {
                let Some(path) = path else {
                    return Err(bad(format!("entry {raw:?}: a file cannot be the root")));
                };
                let size = entry
                    .header()
                    .size()
                    .map_err(|e| bad(format!("entry {raw:?}: {e}")))?;
                if total.saturating_add(size) > MAX_UNPACKED_BYTES {
                    return Err(bad(format!(
                        "more than {MAX_UNPACKED_BYTES} bytes of content (at entry {raw:?})"
                    )));
                }
                let mut data = Vec::new();
                // take() keeps a lying size field from reading past the limit.
                (&mut entry)
                    .take(MAX_UNPACKED_BYTES - total)
                    .read_to_end(&mut data)
                    .map_err(|e| bad(format!("entry {raw:?}: cannot read: {e}")))?;
                total += data.len() as u64;
                let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
                out.push(PackageEntry::File { path, mode, data });
            }
            EntryType::Symlink => {
                return Err(bad(format!(
                    "entry {raw:?}: symbolic links are not allowed"
                )));
            }
            EntryType::Link => {
                return Err(bad(format!("entry {raw:?}: hard links are not allowed")));
            }
            EntryType::Char | EntryType::Block => {
                return Err(bad(format!("entry {raw:?}: device files are not allowed")));
            }
            EntryType::Fifo => {
                return Err(bad(format!("entry {raw:?}: FIFOs are not allowed")));
            }
            other => {
                return Err(bad(format!(
                    "entry {raw:?}: entry type {other:?} is not allowed (only regular files and directories)"
                )));
            }
        }
    }

    if kinds.get(Path::new(EXECUTABLE)) != Some(&false) {
        return Err(bad(format!(
            "no executable: the archive must hold a regular file {EXECUTABLE:?} at its root"
        )));
    }
    Ok(out)
}

/// Records that `path` is a directory or a file, and that its ancestors are
/// directories; refuses a path that would be both.
fn record_kind(
    kinds: &mut HashMap<PathBuf, bool>,
    path: &Path,
    is_dir: bool,
) -> Result<(), String> {
    for ancestor in path.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match kinds.get(ancestor) {
            Some(false) => {
                return Err(format!(
                    "{} is both a file and a directory",
                    ancestor.display()
                ));
            }
            Some(true) => {}
            None => {
                kinds.insert(ancestor.to_path_buf(), true);
            }
        }
    }
    match kinds.get(path) {
        Some(&was_dir) if was_dir != is_dir => {
            Err(format!("{} is both a file and a directory", path.display()))
        }
        _ => {
            kinds.insert(path.to_path_buf(), is_dir);
            Ok(())
        }
    }
}

/// Checks one entry path: relative, no `..`, no root or prefix. Returns the
/// normalised path (without `.` components), or `None` for the root itself.
fn checked_path(raw: &str) -> Result<Option<PathBuf>, &'static str> {
    if raw.contains('\0') {
        return Err("path holds a NUL byte");
    }
    let mut clean = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err("path has a `..` component (outside the destination)");
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path (outside the destination)");
            }
        }
    }
    Ok((!clean.as_os_str().is_empty()).then_some(clean))
}

/// Unpacks `package` into `dest` (created if missing; it should be empty) and
/// returns the path of the executable, `dest/chaincode`.
///
/// Every entry is checked before anything is written (see the module docs);
/// a refused package writes nothing. I/O failures while writing are reported
/// as [`ExecutorError::BadPackage`] too, with the path that failed.
pub fn unpack(
    package: &[u8],
    dest: &Path,
    chaincode: &ChaincodeName,
) -> Result<PathBuf, ExecutorError> {
    let entries = read_entries(package, chaincode)?;
    let bad = |reason: String| ExecutorError::BadPackage {
        chaincode: chaincode.to_string(),
        reason,
    };
    let io_bad = |what: &Path, e: io::Error| bad(format!("cannot write {}: {e}", what.display()));

    fs::create_dir_all(dest).map_err(|e| io_bad(dest, e))?;
    for entry in &entries {
        match entry {
            PackageEntry::Dir(path) => {
                let target = dest.join(path);
                fs::create_dir_all(&target).map_err(|e| io_bad(&target, e))?;
            }
            PackageEntry::File { path, mode, data } => {
                let target = dest.join(path);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(|e| io_bad(parent, e))?;
                }
                // A later entry of the same name replaces an earlier one
                // (read_entries made sure it is a file, never a directory).
                if fs::symlink_metadata(&target).is_ok() {
                    fs::remove_file(&target).map_err(|e| io_bad(&target, e))?;
                }
                let mode = if path.as_path() == Path::new(EXECUTABLE) {
                    0o755
                } else {
                    *mode
                };
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&target)
                    .map_err(|e| io_bad(&target, e))?;
                file.write_all(data).map_err(|e| io_bad(&target, e))?;
                // The umask may have cut bits off; set them as intended.
                file.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| io_bad(&target, e))?;
                file.sync_all().map_err(|e| io_bad(&target, e))?;
            }
        }
    }
    Ok(dest.join(EXECUTABLE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc() -> ChaincodeName {
        "mycc:1.0".parse().unwrap()
    }

    /// A tar.gz from raw headers, so that malicious entries can be written
    /// (tar::Builder's path setters refuse `..` and absolute paths).
    fn raw_archive(entries: &[(&str, EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, kind, data, link) in entries {
            let mut header = tar::Header::new_old();
            {
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
            }
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            if let Some(link) = link {
                header.set_link_name(link).unwrap();
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn refused(package: &[u8], needle: &str) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        match unpack(package, &dest, &cc()) {
            Err(ExecutorError::BadPackage { chaincode, reason }) => {
                assert_eq!(chaincode, "mycc:1.0");
                assert!(
                    reason.contains(needle),
                    "reason {reason:?} lacks {needle:?}"
                );
            }
            other => panic!("expected BadPackage containing {needle:?}, got {other:?}"),
        }
        // Nothing may have been written outside (nor inside) the destination.
        let written: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(written.is_empty(), "refused package wrote {written:?}");
    }

    #[test]
    fn round_trip_of_a_packaged_binary() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("mybin");
        fs::write(&bin, b"#!/bin/sh\necho hi\n").unwrap();
        let package = package_binary(&bin).unwrap();
        assert_eq!(&package[..2], &[0x1f, 0x8b]);
        let dest = dir.path().join("unpacked");
        let exe = unpack(&package, &dest, &cc()).unwrap();
        assert_eq!(exe, dest.join("chaincode"));
        assert_eq!(fs::read(&exe).unwrap(), b"#!/bin/sh\necho hi\n");
        let mode = fs::metadata(&exe).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn files_beside_the_executable_are_unpacked() {
        let package = raw_archive(&[
            ("./", EntryType::Directory, b"", None),
            ("./chaincode", EntryType::Regular, b"exe", None),
            ("conf/", EntryType::Directory, b"", None),
            ("conf/app.toml", EntryType::Regular, b"x = 1", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let exe = unpack(&package, dir.path(), &cc()).unwrap();
        assert_eq!(fs::read(exe).unwrap(), b"exe");
        assert_eq!(
            fs::read(dir.path().join("conf/app.toml")).unwrap(),
            b"x = 1"
        );
    }

    #[test]
    fn package_binary_of_a_missing_file_is_refused() {
        let err = package_binary(Path::new("/nonexistent/bin")).unwrap_err();
        assert!(
            matches!(err, ExecutorError::BadPackage { ref chaincode, .. } if chaincode == "/nonexistent/bin"),
            "{err:?}"
        );
    }

    #[test]
    fn package_binary_refuses_fifos_directories_and_huge_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // O_NONBLOCK: returns at once (a blocking open would hang this test).
        let err = package_binary(&fifo).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        let err = package_binary(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let huge = dir.path().join("huge");
        fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_UNPACKED_BYTES + 1)
            .unwrap();
        let err = package_binary(&huge).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("is {} bytes", MAX_UNPACKED_BYTES + 1)),
            "{err}"
        );
    }

    #[test]
    fn refuses_bytes_that_are_not_gzip() {
        refused(b"hello, not an archive", "not gzip-compressed");
        refused(b"", "empty");
    }

    #[test]
    fn refuses_gzip_that_is_not_tar() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&[7u8; 1024]).unwrap();
        refused(&gz.finish().unwrap(), "not a valid tar.gz");
    }

    #[test]
    fn refuses_a_truncated_archive() {
        let package = raw_archive(&[("chaincode", EntryType::Regular, &[1u8; 4096], None)]);
        refused(&package[..package.len() / 2], "");
    }

    #[test]
    fn refuses_an_archive_without_the_executable() {
        refused(
            &raw_archive(&[("other", EntryType::Regular, b"x", None)]),
            "no executable",
        );
        // Not at the root.
        refused(
            &raw_archive(&[("sub/chaincode", EntryType::Regular, b"x", None)]),
            "no executable",
        );
        // A directory named chaincode is not an executable.
        refused(
            &raw_archive(&[("chaincode/", EntryType::Directory, b"", None)]),
            "no executable",
        );
    }

    #[test]
    fn refuses_parent_components() {
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("../evil", EntryType::Regular, b"x", None),
            ]),
            "`..`",
        );
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("a/../../evil", EntryType::Regular, b"x", None),
            ]),
            "`..`",
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("/tmp/evil", EntryType::Regular, b"x", None),
            ]),
            "absolute path",
        );
    }

    #[test]
    fn refuses_symlinks() {
        refused(
            &raw_archive(&[("chaincode", EntryType::Symlink, b"", Some("/bin/sh"))]),
            "symbolic links",
        );
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("escape", EntryType::Symlink, b"", Some("/etc")),
                ("escape/passwd", EntryType::Regular, b"x", None),
            ]),
            "symbolic links",
        );
    }

    #[test]
    fn refuses_hard_links() {
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("link", EntryType::Link, b"", Some("/etc/passwd")),
            ]),
            "hard links",
        );
    }

    #[test]
    fn refuses_device_files_and_fifos() {
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("null", EntryType::Char, b"", None),
            ]),
            "device files",
        );
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("disk", EntryType::Block, b"", None),
            ]),
            "device files",
        );
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("pipe", EntryType::Fifo, b"", None),
            ]),
            "FIFOs",
        );
    }

    #[test]
    fn refuses_a_file_and_a_directory_of_the_same_name() {
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("d/", EntryType::Directory, b"", None),
                ("d", EntryType::Regular, b"x", None),
            ]),
            "both a file and a directory",
        );
        refused(
            &raw_archive(&[
                ("chaincode", EntryType::Regular, b"x", None),
                ("chaincode/inner", EntryType::Regular, b"x", None),
            ]),
            "both a file and a directory",
        );
    }

    #[test]
    fn setuid_bits_are_dropped() {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, mode) in [("chaincode", 0o4755), ("tool", 0o6777)] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(EntryType::Regular);
            header.set_size(1);
            header.set_mode(mode);
            builder.append_data(&mut header, path, &b"x"[..]).unwrap();
        }
        let package = builder.into_inner().unwrap().finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack(&package, dir.path(), &cc()).unwrap();
        let mode = |p: &str| {
            fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("chaincode"), 0o755);
        assert_eq!(mode("tool"), 0o755);
    }
}
