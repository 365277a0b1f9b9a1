//! Room on the spool's filesystem. The gateway stops taking bytes while the
//! filesystem has less than a reserve free, so the small writes that let it
//! drain (states, manifests, journals, the archiver's bookkeeping) still fit
//! and the spool empties into storage instead of jamming.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The spool has less room than its reserve.
#[derive(Debug, thiserror::Error)]
#[error(
    "the spool is full: {free} bytes free on its filesystem, below the reserve of {reserve}; bytes already acknowledged are kept, try again later"
)]
pub struct SpoolFull {
    pub free: u64,
    pub reserve: u64,
}

impl From<SpoolFull> for std::io::Error {
    fn from(e: SpoolFull) -> Self {
        std::io::Error::new(std::io::ErrorKind::StorageFull, e)
    }
}

/// The room on the spool's filesystem at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Bytes free; `None` when the filesystem cannot be asked.
    pub free: Option<u64>,
    pub reserve: u64,
    /// Below the reserve: no new bytes.
    pub full: bool,
}

/// Watches the room left on the spool's filesystem and logs when it runs
/// out and when it comes back.
#[derive(Debug)]
pub struct SpoolSpace {
    root: PathBuf,
    reserve: u64,
    full: AtomicBool,
}

impl SpoolSpace {
    pub fn new(root: impl Into<PathBuf>, reserve: u64) -> SpoolSpace {
        SpoolSpace {
            root: root.into(),
            reserve,
            full: AtomicBool::new(false),
        }
    }

    /// Ok while the filesystem has at least the reserve free. A filesystem
    /// that cannot be asked counts as having room: the writes themselves
    /// then say what is wrong.
    pub fn check(&self) -> Result<(), SpoolFull> {
        match self.room() {
            Room {
                free: Some(free),
                reserve,
                full: true,
            } => Err(SpoolFull { free, reserve }),
            _ => Ok(()),
        }
    }

    /// Reads the room left now (for `check`, metrics and readiness), and
    /// logs when the spool becomes full or has room again.
    pub fn room(&self) -> Room {
        let Ok(free) = free_bytes(&self.root) else {
            return Room {
                free: None,
                reserve: self.reserve,
                full: false,
            };
        };
        let full = free < self.reserve;
        if self.full.swap(full, Ordering::Relaxed) != full {
            if full {
                tracing::warn!(
                    free,
                    reserve = self.reserve,
                    spool = %self.root.display(),
                    "spool full: refusing new bytes until space returns (acknowledged bytes are kept)"
                );
            } else {
                tracing::info!(
                    free,
                    reserve = self.reserve,
                    spool = %self.root.display(),
                    "spool has room again: taking bytes again"
                );
            }
        }
        Room {
            free: Some(free),
            reserve: self.reserve,
            full,
        }
    }

    /// Whether the last check found the spool full.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }
}

/// Bytes an unprivileged writer may still put on the filesystem holding
/// `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs is plain old data, valid when zeroed; `c` is a valid
    // NUL-terminated path and `st` a valid out-pointer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_the_disk_is_full_and_zero_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(SpoolSpace::new(dir.path(), 0).check().is_ok());
        let s = SpoolSpace::new(dir.path(), u64::MAX);
        let e = s.check().unwrap_err();
        assert_eq!(e.reserve, u64::MAX);
        assert!(s.is_full());
        let room = s.room();
        assert!(room.full && room.free.is_some_and(|f| f > 0), "{room:?}");
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
    }
}
