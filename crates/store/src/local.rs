//! The embedded default store: the same key layout in a local directory,
//! used when no S3 endpoint is configured. Every write goes to a temporary
//! file that is fsynced and renamed into place, so a key is either absent or
//! complete.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{ObjectInfo, StoreError, check_key};
use custody_format::chain::Hash;

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Told of its operations (the gateway's metrics).
    observer: Option<Arc<dyn super::Observer>>,
}

fn io<'a>(key: &'a str, op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound(key.to_string())
        } else {
            StoreError::Backend {
                op,
                key: key.to_string(),
                message: e.to_string(),
            }
        }
    }
}

impl LocalStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io("", "create store directory"))?;
        Ok(LocalStore {
            root,
            observer: None,
        })
    }

    /// Tells `observer` of this store's operations.
    pub fn observed(self, observer: Option<Arc<dyn super::Observer>>) -> Self {
        LocalStore { observer, ..self }
    }

    pub fn observer(&self) -> Option<&dyn super::Observer> {
        self.observer.as_deref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// The path of `key`, its directory (made if missing), and a temporary
    /// name beside it (`tag`: what kind of temporary file).
    fn temp_for(&self, key: &str, tag: &str) -> Result<(PathBuf, PathBuf), StoreError> {
        let path = self.path(key)?;
        let dir = path.parent().expect("keys have a parent");
        std::fs::create_dir_all(dir).map_err(io(key, "create directory"))?;
        let tmp = dir.join(format!(
            ".{}.{tag}-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        Ok((path, tmp))
    }

    /// Renames a complete temporary file into place and syncs the
    /// directory: the key is now present, whole.
    fn publish(key: &str, tmp: &Path, path: &Path) -> Result<(), StoreError> {
        std::fs::rename(tmp, path).map_err(io(key, "rename"))?;
        let dir = path.parent().expect("keys have a parent");
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(key, "fsync directory"))
    }

    /// Writes `fill`'s output to `key` atomically, checking its SHA-256.
    fn put_with(
        &self,
        key: &str,
        sha256: &Hash,
        fill: impl FnOnce(&mut std::fs::File, &mut Sha256) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let (path, tmp) = self.temp_for(key, "tmp")?;
        let mut f = std::fs::File::create(&tmp).map_err(io(key, "create"))?;
        let mut h = Sha256::new();
        fill(&mut f, &mut h).map_err(io(key, "write"))?;
        let got: Hash = h.finalize().into();
        if &got != sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::ChecksumMismatch {
                key: key.to_string(),
                expected: hex::encode(sha256),
                actual: hex::encode(got),
            });
        }
        f.sync_all().map_err(io(key, "fsync"))?;
        Self::publish(key, &tmp, &path)
    }

    /// Links `src` in as `key` if both are on one filesystem: whether it
    /// did. The link is made under a temporary name, checked and renamed
    /// into place (the directory synced), so a key is either absent or
    /// complete.
    fn link_file(
        &self,
        key: &str,
        src: &Path,
        size: u64,
        sha256: &Hash,
    ) -> Result<bool, StoreError> {
        let (path, tmp) = self.temp_for(key, "link")?;
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(src, &tmp).is_err() {
            return Ok(false);
        }
        // The bytes are the spool's, hashed as they were written and
        // synced; what is checked here is that the link is that file whole.
        let len = std::fs::metadata(&tmp).map(|m| m.len());
        if len.as_ref().ok() != Some(&size) {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::ChecksumMismatch {
                key: key.to_string(),
                expected: format!("{size} bytes ({})", hex::encode(sha256)),
                actual: match len {
                    Ok(n) => format!("{n} bytes"),
                    Err(e) => e.to_string(),
                },
            });
        }
        Self::publish(key, &tmp, &path)?;
        Ok(true)
    }

    pub fn put_bytes(&self, key: &str, body: &[u8], sha256: &Hash) -> Result<(), StoreError> {
        self.put_with(key, sha256, |f, h| {
            h.update(body);
            f.write_all(body)
        })
    }

    /// Stores a file nobody writes again (a spooled docked original, whose
    /// SHA-256 the spool computed as it wrote and synced it; the spool only
    /// drops its name for it once stored): on the same filesystem it is
    /// linked in rather than copied (its length checked), elsewhere copied
    /// (its SHA-256 checked).
    pub fn put_final_file(
        &self,
        key: &str,
        src: &Path,
        size: u64,
        sha256: &Hash,
    ) -> Result<(), StoreError> {
        if self.link_file(key, src, size, sha256)? {
            return Ok(());
        }
        self.put_file(key, src, sha256)
    }

    pub fn put_file(&self, key: &str, src: &Path, sha256: &Hash) -> Result<(), StoreError> {
        self.put_with(key, sha256, |f, h| {
            let mut input = std::fs::File::open(src)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                h.update(&buf[..n]);
                f.write_all(&buf[..n])?;
            }
        })
    }

    pub fn get_bytes(&self, key: &str, max: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let f = std::fs::File::open(&path).map_err(io(key, "open"))?;
        let len = f.metadata().map_err(io(key, "stat"))?.len();
        if len > max {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                size: len,
                max,
            });
        }
        let mut v = Vec::with_capacity(len as usize);
        f.take(max.saturating_add(1))
            .read_to_end(&mut v)
            .map_err(io(key, "read"))?;
        Ok(v.into())
    }

    pub fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        use std::io::{Seek, SeekFrom};
        let path = self.path(key)?;
        let mut f = std::fs::File::open(&path).map_err(io(key, "open"))?;
        f.seek(SeekFrom::Start(offset)).map_err(io(key, "seek"))?;
        let mut v = Vec::new();
        f.take(len).read_to_end(&mut v).map_err(io(key, "read"))?;
        Ok(v.into())
    }

    pub fn read_hash(&self, key: &str) -> Result<(u64, Hash), StoreError> {
        let path = self.path(key)?;
        super::hash_file(&path).map_err(io(key, "read"))
    }

    pub fn download(&self, key: &str, to: &Path) -> Result<u64, StoreError> {
        let path = self.path(key)?;
        std::fs::copy(&path, to).map_err(io(key, "copy"))
    }

    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        // Walk the deepest directory the prefix names, then filter by prefix.
        let base = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if base.is_empty() {
            self.root.clone()
        } else {
            self.path(base)?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(prefix, "list")(e)),
            };
            for ent in rd {
                let ent = ent.map_err(io(prefix, "list"))?;
                let ft = ent.file_type().map_err(io(prefix, "list"))?;
                let p = ent.path();
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() {
                    let name = ent.file_name();
                    if name.to_string_lossy().starts_with('.') {
                        continue; // in-progress temporary files
                    }
                    let key = p
                        .strip_prefix(&self.root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned();
                    if key.starts_with(prefix) {
                        let size = ent.metadata().map_err(io(prefix, "stat"))?.len();
                        out.push(ObjectInfo { key, size });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(key, "delete")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_final_file_is_linked_in_whole_and_a_short_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("store")).unwrap();
        let src = dir.path().join("data");
        std::fs::write(&src, b"original bytes").unwrap();
        let h = custody_format::chain::sha256(b"original bytes");
        store
            .put_final_file("r/1/000001-original.mp4", &src, 14, &h)
            .unwrap();
        let stored = dir.path().join("store/r/1/000001-original.mp4");
        assert_eq!(std::fs::read(&stored).unwrap(), b"original bytes");
        // The same inode: no copy was made.
        assert_eq!(
            std::fs::metadata(&stored).unwrap().ino(),
            std::fs::metadata(&src).unwrap().ino()
        );
        // The spool dropping its name leaves the stored object whole.
        std::fs::remove_file(&src).unwrap();
        assert_eq!(std::fs::read(&stored).unwrap(), b"original bytes");

        std::fs::write(&src, b"short").unwrap();
        let e = store
            .put_final_file("r/2/000001-original.mp4", &src, 14, &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("14 bytes") && e.contains("5 bytes"), "{e}");
        assert!(!dir.path().join("store/r/2/000001-original.mp4").exists());
        // No temporary link is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("store/r/2"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
