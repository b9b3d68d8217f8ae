//! One WAL per directory: an exclusive advisory lock on `dir/lock`.
//!
//! Two writers on one log would interleave frames and cut each other's records at
//! recovery, so a second [`Wal::open`](crate::Wal::open) of a directory in use fails. The
//! lock belongs to the open file and goes away with it, also when the process is killed.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::error::OpenError;

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, or fails with [`OpenError::Locked`] without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?;
        match try_lock_exclusive(&file) {
            Ok(()) => Ok(Self { _file: file }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(OpenError::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(source) => Err(OpenError::Io { path, source }),
        }
    }
}

#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a file descriptor that `file` keeps open for the whole call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_of_a_directory_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(OpenError::Locked { .. })
        ));
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
