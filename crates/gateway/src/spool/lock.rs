//! One gateway per spool. Two gateways on one spool would both resume its
//! live recordings and archive its entries, each unaware of the other's
//! writes; so `custody serve` takes an exclusive lock on `<spool>/gateway.lock`
//! before anything else touches the spool, and holds it for the life of the
//! process. The lock is the kernel's (`flock`): it goes with the process,
//! so a gateway that was killed leaves no stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file, in the spool's root.
pub const LOCK_FILE: &str = "gateway.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "spool {path} is in use by another gateway ({holder}); only one gateway may use a spool at a time"
    )]
    Busy { path: PathBuf, holder: String },
    #[error("spool {path}: cannot take its lock: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct SpoolLock {
    file: File,
    path: PathBuf,
}

impl SpoolLock {
    /// Takes the spool's lock without waiting, and writes who holds it
    /// (`holder`, e.g. the process id and gateway id) into the lock file,
    /// so that a second gateway can name the first in its error.
    pub fn acquire(root: &Path, holder: &str) -> Result<SpoolLock, LockError> {
        let path = root.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        // Not truncated on open: the holder's line must survive a refused
        // second opener.
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = f.read_to_string(&mut who);
                let who = custody_format::text::escape(who.trim()).into_owned();
                return Err(LockError::Busy {
                    path: root.to_path_buf(),
                    holder: if who.is_empty() {
                        "a process that has not yet said who it is".into()
                    } else {
                        who
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        f.set_len(0).map_err(io)?;
        f.rewind().map_err(io)?;
        f.write_all(format!("{holder}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(SpoolLock { file: f, path })
    }

    /// Whether this lock still guards the spool. The kernel keeps the lock
    /// on the open file for as long as the process lives, but if the lock
    /// file was deleted or replaced, a second gateway would lock the new
    /// file and share the spool: `Err` says so.
    pub fn check_held(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let ours = self
            .file
            .metadata()
            .map_err(|e| format!("spool lock {}: {e}", self.path.display()))?;
        match std::fs::metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) == (ours.dev(), ours.ino()) => Ok(()),
            Ok(_) => Err(format!(
                "spool lock {} was replaced by another file: another gateway could take the spool",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "spool lock {} is gone ({e}): another gateway could take the spool",
                self.path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = SpoolLock::acquire(dir.path(), "custody serve, pid 1, gateway gw-a").unwrap();
        match SpoolLock::acquire(dir.path(), "custody serve, pid 2, gateway gw-b") {
            Err(LockError::Busy { holder, .. }) => {
                assert_eq!(holder, "custody serve, pid 1, gateway gw-a")
            }
            other => panic!("a second lock on one spool: {other:?}"),
        }
        drop(first);
        SpoolLock::acquire(dir.path(), "custody serve, pid 2, gateway gw-b").unwrap();
    }

    #[test]
    fn a_lock_whose_file_was_removed_or_replaced_is_no_longer_held() {
        let dir = tempfile::tempdir().unwrap();
        let lock = SpoolLock::acquire(dir.path(), "custody serve, pid 1").unwrap();
        assert_eq!(lock.check_held(), Ok(()));
        let path = dir.path().join(LOCK_FILE);
        std::fs::remove_file(&path).unwrap();
        let gone = lock.check_held().unwrap_err();
        assert!(gone.contains("is gone"), "{gone}");
        // A second gateway could now lock a new file of the same name.
        let _second = SpoolLock::acquire(dir.path(), "custody serve, pid 2").unwrap();
        let replaced = lock.check_held().unwrap_err();
        assert!(replaced.contains("replaced"), "{replaced}");
    }
}
