//! Where recordings end up: an S3-compatible bucket, or (the embedded
//! default) a local directory with the same key layout.

// Without the S3 backend, arguments only S3 uses (object lock dates, the
// upload journal) go unused in the local directory's arms.
#![cfg_attr(not(feature = "s3"), allow(unused_variables))]

mod config;
pub mod local;
#[cfg(feature = "s3")]
pub mod s3;

pub use config::StoreConfig;
pub use custody_format::layout;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use custody_format::chain::Hash;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("invalid object key {0:?}")]
    BadKey(String),
    #[error("object {key} is {size} bytes, more than the {max} allowed here")]
    TooLarge { key: String, size: u64, max: u64 },
    #[error("{key}: content SHA-256 is {actual}, expected {expected}")]
    ChecksumMismatch {
        key: String,
        expected: String,
        actual: String,
    },
    /// A local file operation failed (the local store, the spool).
    #[error("{op} {key}: {message}")]
    Backend {
        op: &'static str,
        key: String,
        message: String,
    },
    /// An S3 request failed; `message` is the SDK's full context, `source`
    /// the SDK's error itself.
    #[error("{op} {key}: {message}")]
    Service {
        op: &'static str,
        key: String,
        message: String,
        /// Whether trying again can help (a timeout, a lost connection,
        /// a 5xx or a throttling answer), as opposed to a refusal that
        /// will not change (access denied, no such bucket, a bad request).
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store configuration: {0}")]
    Config(String),
    /// An object read as a JSON document of the storage format is not one.
    #[error("object {key} is not a valid {what}: {message}")]
    NotDocument {
        key: String,
        what: &'static str,
        message: String,
    },
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }

    /// Whether the same operation may succeed if tried again later.
    /// Callers that hold what they were storing (the spool) retry
    /// regardless; this tells an operator, a log or a one-shot command
    /// whether waiting is worth it.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::NotFound(_)
            | StoreError::BadKey(_)
            | StoreError::TooLarge { .. }
            | StoreError::Config(_)
            // The same bytes are read on another try.
            | StoreError::NotDocument { .. } => false,
            // Bytes damaged in transit arrive whole on another try.
            StoreError::ChecksumMismatch { .. } => true,
            StoreError::Backend { .. } => true,
            StoreError::Service { retryable, .. } => *retryable,
        }
    }
}

/// A kind of storage operation, as an [`Observer`] is told of it. One
/// call of [`Store`] is one operation, however many requests it takes (a
/// multipart upload, the S3 client's retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
    /// Object Lock retention and legal holds.
    Retention,
    Probe,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Put,
        Op::Get,
        Op::Head,
        Op::List,
        Op::Delete,
        Op::Retention,
        Op::Probe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Head => "head",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Retention => "retention",
            Op::Probe => "probe",
        }
    }
}

/// Told of every operation of a store opened with [`Store::open_observed`]
/// (the gateway's metrics count them).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// One operation ended; `failed` when in an error (finding no object
    /// at a key is an answer, not an error).
    fn operation(&self, op: Op, failed: bool);
    /// The S3 client tried a request again within one operation.
    fn client_retry(&self);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// Keys are relative, `/`-separated, with no empty, `.` or `..` segments.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.starts_with('.'))
        && !key.contains('\\')
        && !key.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadKey(key.to_string()))
    }
}

pub use custody_fs::{hash_file, hash_reader};

/// A handle to the configured store; cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    #[cfg(feature = "s3")]
    S3(Arc<s3::S3Store>),
    Local(Arc<local::LocalStore>),
}

/// Runs blocking local-store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            op: "local store",
            key: String::new(),
            message: e.to_string(),
        })?
}

impl Store {
    /// Opens the store `cfg` describes: S3 when a bucket is configured,
    /// otherwise the local directory.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        Self::open_observed(cfg, None).await
    }

    /// As [`Store::open`], telling `observer` of every operation, failure
    /// and retry of the store.
    pub async fn open_observed(
        cfg: &StoreConfig,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Store, StoreError> {
        match &cfg.bucket {
            #[cfg(feature = "s3")]
            Some(bucket) => Ok(Store::S3(Arc::new(
                s3::S3Store::connect(cfg, bucket, observer).await?,
            ))),
            #[cfg(not(feature = "s3"))]
            Some(bucket) => Err(StoreError::Config(format!(
                "bucket {bucket:?} is configured, but this build has no S3 support \
                 (custody-store's `s3` feature)"
            ))),
            None => Ok(Store::Local(Arc::new(
                local::LocalStore::open(&cfg.local_dir)?.observed(observer),
            ))),
        }
    }

    /// Tells the observer, if any, of `r` as one `op`; a missing object is
    /// an answer, not a failure.
    fn counted<T>(&self, op: Op, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let observer = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.observer(),
            Store::Local(l) => l.observer(),
        };
        if let Some(o) = observer {
            o.operation(op, r.as_ref().is_err_and(|e| !e.is_not_found()));
        }
        r
    }

    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => format!("s3://{}", s.bucket()),
            Store::Local(l) => format!("local directory {}", l.root().display()),
        }
    }

    pub async fn put_bytes(&self, key: &str, body: Bytes, sha256: &Hash) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.put_bytes(key, body, sha256).await,
            Store::Local(l) => {
                let (l, key, h) = (l.clone(), key.to_string(), *sha256);
                blocking(move || l.put_bytes(&key, &body, &h)).await
            }
        };
        self.counted(Op::Put, r)
    }

    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256: &Hash,
        journal: Option<&Path>,
    ) -> Result<(), StoreError> {
        self.put_file_as(key, path, size, sha256, journal, false)
            .await
    }

    /// `final_file`: nobody writes the file again (the local directory may
    /// link it in, see [`Store::put_final_file`]).
    async fn put_file_as(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256: &Hash,
        journal: Option<&Path>,
        final_file: bool,
    ) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.put_file(key, path, size, sha256, journal).await,
            Store::Local(l) => {
                let (l, key, p, h) = (l.clone(), key.to_string(), path.to_path_buf(), *sha256);
                blocking(move || {
                    if final_file {
                        l.put_final_file(&key, &p, size, &h)
                    } else {
                        l.put_file(&key, &p, &h)
                    }
                })
                .await
            }
        };
        self.counted(Op::Put, r)
    }

    /// Opens a multipart upload of `key` whose parts the caller sends as
    /// their bytes become available (see [`s3::PartUpload`]); `None` for
    /// the local directory, which writes whole files only.
    #[cfg(feature = "s3")]
    pub async fn begin_upload(
        &self,
        key: &str,
        journal: &Path,
    ) -> Result<Option<s3::PartUpload>, StoreError> {
        match self {
            Store::S3(s) => {
                let r = s.begin_upload(key, Some(journal)).await;
                self.counted(Op::Put, r).map(Some)
            }
            Store::Local(_) => Ok(None),
        }
    }

    /// The part size of [`Store::begin_upload`]'s uploads; `None` for the
    /// local directory.
    pub fn upload_part_size(&self) -> Option<u64> {
        match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => Some(s.part_size()),
            Store::Local(_) => None,
        }
    }

    /// Sends the rest of `path` through `upload` and completes it (see
    /// [`s3::PartUpload::finish`]).
    #[cfg(feature = "s3")]
    pub async fn finish_upload(
        &self,
        upload: s3::PartUpload,
        path: &Path,
        size: u64,
        sha256: &Hash,
    ) -> Result<(), StoreError> {
        let r = upload.finish(path, size, sha256).await;
        self.counted(Op::Put, r)
    }

    /// [`Store::put_file`] for a file nobody writes again once stored (a
    /// spooled docked original): the local directory links it in instead
    /// of copying it when it is on the same filesystem.
    pub async fn put_final_file(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256: &Hash,
        journal: Option<&Path>,
    ) -> Result<(), StoreError> {
        self.put_file_as(key, path, size, sha256, journal, true)
            .await
    }

    /// Reads a whole object of at most `max` bytes.
    pub async fn get_bytes(&self, key: &str, max: u64) -> Result<Bytes, StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.get_bytes(key, max).await,
            Store::Local(l) => {
                let (l, key) = (l.clone(), key.to_string());
                blocking(move || l.get_bytes(&key, max)).await
            }
        };
        self.counted(Op::Get, r)
    }

    /// Reads a JSON document of the storage format (manifest, locator,
    /// checkpoint, annotation, journal chunk), at most
    /// [`MAX_DOC_BYTES`](custody_format::locator::MAX_DOC_BYTES) long.
    /// `what` names it in the error when it does not parse.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<T, StoreError> {
        let b = self
            .get_bytes(key, custody_format::locator::MAX_DOC_BYTES)
            .await?;
        serde_json::from_slice(&b).map_err(|e| StoreError::NotDocument {
            key: key.to_string(),
            what,
            message: e.to_string(),
        })
    }

    /// Writes a JSON document as the storage format writes them (pretty,
    /// `docs/manifest.md`), checked end to end by its SHA-256; returns the
    /// bytes written.
    pub async fn put_json<T: serde::Serialize>(
        &self,
        key: &str,
        doc: &T,
    ) -> Result<Bytes, StoreError> {
        let b =
            Bytes::from(
                serde_json::to_vec_pretty(doc).map_err(|e| StoreError::NotDocument {
                    key: key.to_string(),
                    what: std::any::type_name::<T>(),
                    message: e.to_string(),
                })?,
            );
        let h = custody_format::chain::sha256(&b);
        self.put_bytes(key, b.clone(), &h).await?;
        Ok(b)
    }

    /// Whether this store enforces retention itself (S3 Object Lock,
    /// probed), and if so, writes from now on are locked for `retain`.
    pub async fn set_up_retention(
        &self,
        retain: Option<time::Duration>,
    ) -> custody_format::retention::Enforcement {
        use custody_format::retention::Enforcement;
        match self {
            Store::Local(_) => Enforcement::Gateway {
                why: "a local directory has no retention lock".into(),
            },
            #[cfg(feature = "s3")]
            Store::S3(s) => match s.probe_lock().await {
                Ok(()) => {
                    if let Some(r) = retain {
                        s.enable_lock(r);
                    }
                    Enforcement::ObjectLock
                }
                Err(why) => Enforcement::Gateway { why },
            },
        }
    }

    /// Keeps the latest version of `key` at least until `until` (Object
    /// Lock; nothing to do where storage does not enforce it). A lock that
    /// already lasts longer is left as it is: COMPLIANCE dates only grow.
    pub async fn extend_retention(
        &self,
        key: &str,
        until: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => match s.lock_state(key).await {
                Ok((_, current, _)) if current.is_some_and(|c| c >= until) => Ok(()),
                Ok(_) => s.extend_retention(key, until).await,
                Err(e) => Err(e),
            },
            Store::Local(_) => Ok(()),
        };
        self.counted(Op::Retention, r)
    }

    /// Deletes `key` for good: every version where storage keeps versions
    /// (a plain delete there only hides the object behind a marker).
    /// Storage refuses versions still under Object Lock.
    pub async fn purge(&self, key: &str) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.purge(key).await,
            Store::Local(l) => l.delete(key),
        };
        self.counted(Op::Delete, r)
    }

    /// Whether this store writes with Object Lock (S3 that enforces it).
    pub fn locking(&self) -> bool {
        match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.locking(),
            Store::Local(_) => false,
        }
    }

    /// Puts `key` under legal hold (Object Lock; nothing to do elsewhere).
    pub async fn legal_hold(&self, key: &str) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.legal_hold(key).await,
            Store::Local(_) => Ok(()),
        };
        self.counted(Op::Retention, r)
    }

    /// Reads up to `len` bytes from `offset`; empty at or past the end.
    /// Lets callers stream objects of any size in bounded memory.
    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.get_range(key, offset, len).await,
            Store::Local(l) => {
                let (l, key) = (l.clone(), key.to_string());
                blocking(move || l.get_range(&key, offset, len)).await
            }
        };
        self.counted(Op::Get, r)
    }

    /// Streams an object through SHA-256: its size and hash.
    pub async fn read_hash(&self, key: &str) -> Result<(u64, Hash), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.read_hash(key).await,
            Store::Local(l) => {
                let (l, key) = (l.clone(), key.to_string());
                blocking(move || l.read_hash(&key)).await
            }
        };
        self.counted(Op::Get, r)
    }

    /// Copies an object into a local file; returns its size.
    pub async fn download(&self, key: &str, to: &Path) -> Result<u64, StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.download(key, to).await,
            Store::Local(l) => {
                let (l, key, to) = (l.clone(), key.to_string(), to.to_path_buf());
                blocking(move || l.download(&key, &to)).await
            }
        };
        self.counted(Op::Get, r)
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.exists(key).await,
            Store::Local(l) => l.exists(key),
        };
        self.counted(Op::Head, r)
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.list(prefix).await,
            Store::Local(l) => {
                let (l, prefix) = (l.clone(), prefix.to_string());
                blocking(move || l.list(&prefix)).await
            }
        };
        self.counted(Op::List, r)
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.delete(key).await,
            Store::Local(l) => l.delete(key),
        };
        self.counted(Op::Delete, r)
    }

    /// Succeeds when the store is reachable.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let r = match self {
            #[cfg(feature = "s3")]
            Store::S3(s) => s.probe().await,
            Store::Local(l) => {
                std::fs::metadata(l.root())
                    .map(|_| ())
                    .map_err(|e| StoreError::Backend {
                        op: "probe",
                        key: String::new(),
                        message: e.to_string(),
                    })
            }
        };
        self.counted(Op::Probe, r)
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn only_failures_that_can_pass_are_retryable() {
        let table = [
            (StoreError::NotFound("k".into()), false),
            (StoreError::BadKey("../k".into()), false),
            (
                StoreError::TooLarge {
                    key: "k".into(),
                    size: 2,
                    max: 1,
                },
                false,
            ),
            (StoreError::Config("no region".into()), false),
            (
                StoreError::NotDocument {
                    key: "k".into(),
                    what: "locator",
                    message: "EOF".into(),
                },
                false,
            ),
            (
                StoreError::ChecksumMismatch {
                    key: "k".into(),
                    expected: "00".into(),
                    actual: "11".into(),
                },
                true,
            ),
            (
                StoreError::Backend {
                    op: "write",
                    key: "k".into(),
                    message: "disk".into(),
                },
                true,
            ),
        ];
        for (e, retryable) in table {
            assert_eq!(e.retryable(), retryable, "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        for (k, ok) in [
            ("records/a/b.json", true),
            ("a", true),
            ("", false),
            ("/abs", false),
            ("a//b", false),
            ("a/../b", false),
            ("a/./b", false),
            ("a/.hidden", false),
            ("a\\b", false),
            ("a\nb", false),
        ] {
            assert_eq!(check_key(k).is_ok(), ok, "{k:?}");
        }
    }

    #[tokio::test]
    async fn local_store_round_trip() {
        let dir = std::env::temp_dir().join(format!("custody-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Store::Local(Arc::new(local::LocalStore::open(&dir).unwrap()));
        let body = Bytes::from_static(b"hello");
        let h = custody_format::chain::sha256(&body);
        s.put_bytes("a/b/c.txt", body.clone(), &h).await.unwrap();
        assert!(s.exists("a/b/c.txt").await.unwrap());
        assert_eq!(s.get_bytes("a/b/c.txt", 10).await.unwrap(), body);
        assert!(matches!(
            s.get_bytes("a/b/c.txt", 2).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(s.read_hash("a/b/c.txt").await.unwrap(), (5, h));
        let wrong = custody_format::chain::sha256(b"other");
        assert!(matches!(
            s.put_bytes("a/x", body.clone(), &wrong).await,
            Err(StoreError::ChecksumMismatch { .. })
        ));
        assert!(!s.exists("a/x").await.unwrap());
        s.put_bytes("a/c", body.clone(), &h).await.unwrap();
        let keys: Vec<String> = s
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b/c.txt", "a/c"]);
        let keys: Vec<String> = s
            .list("a/b")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b/c.txt"]);
        assert!(s.get_bytes("nope", 10).await.unwrap_err().is_not_found());
        s.delete("a/c").await.unwrap();
        assert!(!s.exists("a/c").await.unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn json_documents_round_trip_and_a_non_document_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::Local(Arc::new(local::LocalStore::open(dir.path()).unwrap()));
        let loc = custody_format::locator::Locator {
            recorder: "bwc-1".into(),
            recording_id: "r-1".into(),
            prefix: "records/x/2026/11/30/bwc-1/r-1".into(),
            manifest_key: "records/x/2026/11/30/bwc-1/r-1/manifest.json".into(),
            size: 5,
            sha256: String::new(),
            chain_head: "00".into(),
        };
        let written = s.put_json("index/l.json", &loc).await.unwrap();
        // Written as every document of the format is: pretty JSON.
        assert_eq!(written, serde_json::to_vec_pretty(&loc).unwrap());
        assert_eq!(s.get_bytes("index/l.json", 1 << 20).await.unwrap(), written);
        let back: custody_format::locator::Locator =
            s.get_json("index/l.json", "locator").await.unwrap();
        assert_eq!(back, loc);
        s.put_bytes(
            "index/bad.json",
            Bytes::from_static(b"{"),
            &custody_format::chain::sha256(b"{"),
        )
        .await
        .unwrap();
        let e = s
            .get_json::<custody_format::locator::Locator>("index/bad.json", "locator")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::NotDocument {
                    what: "locator",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("index/bad.json is not a valid locator"),
            "{e}"
        );
        assert!(
            s.get_json::<custody_format::locator::Locator>("index/none.json", "locator")
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
}

#[cfg(test)]
mod observer_tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps what it is told.
    #[derive(Debug, Default)]
    struct Seen(Mutex<Vec<(Op, bool)>>);

    impl Observer for Seen {
        fn operation(&self, op: Op, failed: bool) {
            self.0.lock().unwrap().push((op, failed));
        }
        fn client_retry(&self) {}
    }

    #[tokio::test]
    async fn an_observed_store_reports_each_operation_and_only_real_failures() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Seen::default());
        let cfg = StoreConfig {
            local_dir: dir.path().join("store"),
            ..StoreConfig::default()
        };
        let s = Store::open_observed(&cfg, Some(seen.clone()))
            .await
            .unwrap();
        let body = Bytes::from_static(b"hello");
        let h = custody_format::chain::sha256(&body);
        s.put_bytes("a/b", body.clone(), &h).await.unwrap();
        s.get_bytes("a/b", 10).await.unwrap();
        // Not there: an answer, not a failure.
        assert!(s.get_bytes("a/none", 10).await.unwrap_err().is_not_found());
        // Refused: the bytes do not match their hash.
        let wrong = custody_format::chain::sha256(b"other");
        s.put_bytes("a/c", body, &wrong).await.unwrap_err();
        assert!(s.exists("a/b").await.unwrap());
        s.list("a/").await.unwrap();
        s.purge("a/b").await.unwrap();
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                (Op::Put, false),
                (Op::Get, false),
                (Op::Get, false),
                (Op::Put, true),
                (Op::Head, false),
                (Op::List, false),
                (Op::Delete, false),
            ]
        );
        // A store opened without an observer counts nothing and works alike.
        let plain = Store::open(&cfg).await.unwrap();
        assert!(!plain.exists("a/b").await.unwrap());
        assert_eq!(seen.0.lock().unwrap().len(), 7);
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;

    #[test]
    fn overlapped_file_hash_equals_plain_sha256() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 10, (8 << 20) - 1, 8 << 20, (8 << 20) + 1, 20 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let p = dir.path().join(format!("f{len}"));
            std::fs::write(&p, &data).unwrap();
            assert_eq!(
                hash_file(&p).unwrap(),
                (len as u64, custody_format::chain::sha256(&data)),
                "{len}"
            );
        }
    }
}
