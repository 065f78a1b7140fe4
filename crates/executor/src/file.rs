//! Reading a file that someone else may have put in place: package files in
//! the peer's packages directory, the `--binary` of `cclaunch package`.
//!
//! [`read_regular_file`] reads only a regular file of bounded size:
//! - it opens with `O_NONBLOCK`, so a FIFO cannot block the caller, and, with
//!   [`Symlinks::Refuse`], with `O_NOFOLLOW`, so a symbolic link in place of
//!   the file is refused rather than followed out of its directory;
//! - it checks the *opened* file (fstat), so nothing can be swapped in
//!   between the check and the read, and refuses FIFOs, devices, sockets and
//!   directories;
//! - it checks the size against the cap before reading, and reads at most
//!   cap + 1 bytes, so a file that grows meanwhile is refused too.
//!
//! It blocks: call it from `spawn_blocking` in async code.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// Whether [`read_regular_file`] follows a symbolic link at `path` itself.
/// (Links in the directories leading to it are always followed.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlinks {
    /// A link at `path` is refused with [`ReadFileError::Symlink`].
    Refuse,
    /// A link at `path` is followed; its target must still be a regular file.
    Follow,
}

/// Why [`read_regular_file`] refused a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFileError {
    /// The file could not be opened (missing, no permission...).
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// `path` is a symbolic link and links were refused.
    #[error("{} is a symbolic link: only a regular file is read, links are not followed", path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// `path` is a FIFO, a device, a socket or a directory.
    #[error("{} is a {kind}: only a regular file is read", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead, e.g. `FIFO`.
        kind: &'static str,
    },
    /// The file is larger than the cap.
    #[error("{} is {size} bytes: at most {max} bytes are read", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (a lower bound when it grew while being read).
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Reading failed part way.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Reads the regular file at `path`, at most `max` bytes (see the module
/// docs for what is refused).
pub fn read_regular_file(
    path: &Path,
    max: u64,
    symlinks: Symlinks,
) -> Result<Vec<u8>, ReadFileError> {
    let file = open(path, symlinks)?;
    let meta = file.metadata().map_err(|source| ReadFileError::Open {
        path: path.to_owned(),
        source,
    })?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadFileError::NotRegular {
            path: path.to_owned(),
            kind: kind_name(&kind),
        });
    }
    if meta.len() > max {
        return Err(ReadFileError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            max,
        });
    }
    // The size is at most `max` here, so the capacity is bounded too.
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| ReadFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    let read = data.len() as u64;
    if read > max {
        return Err(ReadFileError::TooLarge {
            path: path.to_owned(),
            size: read,
            max,
        });
    }
    Ok(data)
}

fn open(path: &Path, symlinks: Symlinks) -> Result<File, ReadFileError> {
    let mut flags = OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    if symlinks == Symlinks::Refuse {
        flags |= OFlag::O_NOFOLLOW;
    }
    match OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(file) => Ok(file),
        // O_NOFOLLOW on a link fails with ELOOP.
        Err(e)
            if symlinks == Symlinks::Refuse
                && e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) =>
        {
            Err(ReadFileError::Symlink {
                path: path.to_owned(),
            })
        }
        Err(source) => Err(ReadFileError::Open {
            path: path.to_owned(),
            source,
        }),
    }
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `read` on another thread; a FIFO that blocks it is unblocked by
    /// opening the write end, so a missing defence fails instead of hanging.
    fn read_fifo_promptly(fifo: &Path, symlinks: Symlinks) -> Result<Vec<u8>, ReadFileError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(read_regular_file(&path, 1024, symlinks));
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(result) => result,
            Err(_) => {
                drop(OpenOptions::new().write(true).open(fifo));
                panic!("reading a FIFO blocked");
            }
        }
    }

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        for symlinks in [Symlinks::Refuse, Symlinks::Follow] {
            assert_eq!(read_regular_file(&path, 5, symlinks).unwrap(), b"hello");
        }
    }

    #[test]
    fn refuses_a_symlink_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read_regular_file(&link, 10, Symlinks::Refuse).unwrap_err();
        assert!(matches!(err, ReadFileError::Symlink { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            read_regular_file(&link, 10, Symlinks::Follow).unwrap(),
            b"x"
        );
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        for symlinks in [Symlinks::Refuse, Symlinks::Follow] {
            let err = read_fifo_promptly(&fifo, symlinks).unwrap_err();
            assert!(
                matches!(err, ReadFileError::NotRegular { kind: "FIFO", .. }),
                "{err:?}"
            );
        }
        // Followed through a link, still a FIFO.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let err = read_fifo_promptly(&link, Symlinks::Follow).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
    }

    #[test]
    fn refuses_directories_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular_file(dir.path(), 10, Symlinks::Refuse).unwrap_err();
        assert!(
            matches!(
                err,
                ReadFileError::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{err:?}"
        );
        // /dev/zero would never end: refused before any read.
        let err = read_regular_file(Path::new("/dev/zero"), 10, Symlinks::Follow).unwrap_err();
        assert!(
            matches!(
                err,
                ReadFileError::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_an_oversize_file_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        // Sparse: 4 GiB of nothing. The reported size proves the refusal came
        // from the fstat, not from a read that stopped at the cap.
        File::create(&path).unwrap().set_len(4 << 30).unwrap();
        let err = read_regular_file(&path, 1 << 20, Symlinks::Refuse).unwrap_err();
        assert!(
            matches!(err, ReadFileError::TooLarge { size, max, .. } if size == 4 << 30 && max == 1 << 20),
            "{err:?}"
        );
        // At the cap is fine, one byte over is not.
        std::fs::write(&path, [7u8; 10]).unwrap();
        assert_eq!(
            read_regular_file(&path, 10, Symlinks::Refuse)
                .unwrap()
                .len(),
            10
        );
        assert!(matches!(
            read_regular_file(&path, 9, Symlinks::Refuse),
            Err(ReadFileError::TooLarge {
                size: 10,
                max: 9,
                ..
            })
        ));
    }

    #[test]
    fn a_missing_file_is_an_open_error() {
        let err = read_regular_file(Path::new("/nonexistent/x"), 10, Symlinks::Refuse).unwrap_err();
        assert!(matches!(err, ReadFileError::Open { .. }), "{err:?}");
    }
}
