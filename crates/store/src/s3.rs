//! S3-compatible storage through aws-sdk-s3. Every object carries
//! `x-amz-checksum-sha256` (per part for multipart uploads), so the store
//! itself refuses bytes that were damaged on the way.

use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{
    ConfigBag, Intercept, RequestChecksumCalculation, ResponseChecksumValidation, RuntimeComponents,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedPart};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{ObjectInfo, Observer, StoreError, check_key};
use custody_format::chain::{self, Hash};

use crate::StoreConfig;

mod parts;
pub use parts::PartUpload;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    part_size: usize,
    concurrency: usize,
    /// With Object Lock: how long each write-once object is retained from
    /// its write (the standard period plus a margin).
    lock: Arc<std::sync::RwLock<Option<time::Duration>>>,
    /// Told of its operations and of the client's retries.
    observer: Option<Arc<dyn Observer>>,
}

/// Tells the observer of the S3 client's own retries: every attempt at an
/// operation after its first.
#[derive(Debug)]
struct CountRetries(Arc<dyn Observer>);

/// Marks an operation (in its own configuration bag) whose first attempt
/// was made.
#[derive(Debug, Clone)]
struct Attempted;

impl Storable for Attempted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CountRetries {
    fn name(&self) -> &'static str {
        "CountRetries"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if cfg.load::<Attempted>().is_some() {
            self.0.client_retry();
        } else {
            cfg.interceptor_state().store_put(Attempted);
        }
        Ok(())
    }
}

/// Areas written once and kept as evidence: Object Lock applies there.
/// Index objects (locators, the catalog) are rewritten and derived, so
/// locking their old versions would only pile them up.
const LOCKED_AREAS: &[&str] = &["records/", "usage/", "inventory/"];

fn s3_time(t: time::OffsetDateTime) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.unix_timestamp())
}

fn b64(h: &Hash) -> String {
    aws_smithy_types::base64::encode(h)
}

/// A failed S3 operation, its cause kept and judged retryable or not.
fn backend<E: Classify + std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    key: &str,
    e: E,
) -> StoreError {
    StoreError::Service {
        op,
        key: key.to_string(),
        message: format!("{}", DisplayErrorContext(&e)),
        retryable: e.retryable(),
        source: Box::new(e),
    }
}

/// Whether a failure of this kind can go away by itself.
trait Classify {
    fn retryable(&self) -> bool;
}

impl<E> Classify for SdkError<E, HttpResponse> {
    fn retryable(&self) -> bool {
        match self {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => {
                let status = e.raw().status().as_u16();
                status >= 500 || status == 429 || status == 408
            }
            // The request could not even be built: trying again builds it
            // the same way.
            _ => false,
        }
    }
}

/// Reading a response body (the connection broke mid-object).
impl Classify for aws_smithy_types::byte_stream::error::Error {
    fn retryable(&self) -> bool {
        true
    }
}

/// The spool file being uploaded, or the file being downloaded to.
impl Classify for std::io::Error {
    fn retryable(&self) -> bool {
        !matches!(
            self.kind(),
            std::io::ErrorKind::NotFound
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::InvalidInput
                | std::io::ErrorKind::InvalidData
        )
    }
}

/// A part's upload task died (a panic): nothing says the next one would.
impl Classify for tokio::task::JoinError {
    fn retryable(&self) -> bool {
        self.is_cancelled()
    }
}

impl Classify for NoUploadId {
    fn retryable(&self) -> bool {
        // Storage may answer properly, or let go of the old upload, next time.
        true
    }
}

impl S3Store {
    /// Builds a client from the standard AWS environment and config files,
    /// with endpoint, region and credentials from `cfg` taking precedence.
    /// `observer`, if given, is told of the client's retries.
    pub async fn connect(
        cfg: &StoreConfig,
        bucket: &str,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Self, StoreError> {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(ep) = &cfg.endpoint {
            loader = loader.endpoint_url(ep);
        }
        if let Some(r) = &cfg.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let (Some(ak), Some(sk)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                ak.clone(),
                sk.clone(),
                None,
                None,
                "custody-config",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(StoreError::Config(
                "no S3 region: set store.region or AWS_REGION".into(),
            ));
        }
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(cfg.path_style)
            // Garage refuses the SDK's default aws-chunked uploads with
            // trailing checksums; we send precomputed SHA-256s instead.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(o) = &observer {
            conf = conf.interceptor(CountRetries(o.clone()));
        }
        Ok(S3Store {
            client: Client::from_conf(conf.build()),
            bucket: bucket.to_string(),
            part_size: (cfg.part_size_mib.max(5) as usize) << 20,
            concurrency: cfg.concurrency.max(1),
            lock: Arc::new(std::sync::RwLock::new(None)),
            observer,
        })
    }

    pub fn observer(&self) -> Option<&dyn Observer> {
        self.observer.as_deref()
    }

    /// Writes from now on carry a COMPLIANCE retain-until `retain` after
    /// the write (in the write-once areas).
    pub fn enable_lock(&self, retain: time::Duration) {
        *self.lock.write().expect("lock settings") = Some(retain);
    }

    /// Whether writes carry Object Lock (storage enforces it).
    pub fn locking(&self) -> bool {
        self.lock.read().expect("lock settings").is_some()
    }

    /// The retain-until date for a new object at `key`, if locked.
    fn lock_until(&self, key: &str) -> Option<time::OffsetDateTime> {
        let retain = (*self.lock.read().expect("lock settings"))?;
        LOCKED_AREAS
            .iter()
            .any(|a| key.starts_with(a))
            .then(|| time::OffsetDateTime::now_utc() + retain)
    }

    /// Whether the bucket really enforces Object Lock: its configuration
    /// says so, and a locked probe object cannot be deleted.
    pub async fn probe_lock(&self) -> Result<(), String> {
        let cfg = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the bucket reports no Object Lock configuration ({})",
                    DisplayErrorContext(e)
                )
            })?;
        let enabled = cfg
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled");
        if !enabled {
            return Err("Object Lock is not enabled on the bucket".into());
        }
        let key = format!(
            "_probe/object-lock/{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
            .object_lock_retain_until_date(s3_time(until))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(b64(&chain::sha256(b"probe")))
            .body(ByteStream::from_static(b"probe"))
            .send()
            .await
            .map_err(|e| format!("a locked write failed ({})", DisplayErrorContext(e)))?;
        let Some(version) = put.version_id().map(str::to_string) else {
            return Err("the bucket keeps no object versions".into());
        };
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await;
        // Remove the probe once its lock has expired.
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            let _ = client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .version_id(version)
                .send()
                .await;
        });
        match deleted {
            Ok(_) => Err("a locked object could be deleted at once".into()),
            Err(_) => Ok(()),
        }
    }

    /// Extends the COMPLIANCE retention of the latest version of `key`.
    pub async fn extend_retention(
        &self,
        key: &str,
        until: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .retention(
                aws_sdk_s3::types::ObjectLockRetention::builder()
                    .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
                    .retain_until_date(s3_time(until))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| backend("put object retention", key, e))?;
        Ok(())
    }

    /// Puts the latest version of `key` under legal hold.
    pub async fn legal_hold(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .legal_hold(
                aws_sdk_s3::types::ObjectLockLegalHold::builder()
                    .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| backend("put object legal hold", key, e))?;
        Ok(())
    }

    /// The Object Lock state of the latest version of `key`: (mode,
    /// retain-until, legal hold).
    pub async fn lock_state(
        &self,
        key: &str,
    ) -> Result<(Option<String>, Option<time::OffsetDateTime>, bool), StoreError> {
        check_key(key)?;
        let h = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("head", key, e))?;
        Ok((
            h.object_lock_mode().map(|m| m.as_str().to_string()),
            h.object_lock_retain_until_date()
                .and_then(|d| time::OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
            h.object_lock_legal_hold_status()
                .is_some_and(|s| s.as_str() == "ON"),
        ))
    }

    /// Every part of a multipart upload but the last is this long.
    pub fn part_size(&self) -> u64 {
        self.part_size as u64
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn put_bytes(&self, key: &str, body: Bytes, sha256: &Hash) -> Result<(), StoreError> {
        check_key(key)?;
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_sha256(b64(sha256))
            .body(ByteStream::from(body));
        if let Some(until) = self.lock_until(key) {
            // Locked writes must name their checksum algorithm (the value
            // is the one given above, not computed again).
            put = put
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
                .object_lock_retain_until_date(s3_time(until));
        }
        put.send().await.map_err(|e| backend("put", key, e))?;
        Ok(())
    }

    /// Uploads a file; multipart above one part size. `journal` records a
    /// multipart upload from before it is created until it is completed or
    /// aborted, so that an upload orphaned by a crash (or left open because
    /// storage refused the abort) is aborted on the next attempt.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256: &Hash,
        journal: Option<&Path>,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        if size <= self.part_size as u64 {
            if let Some(j) = journal {
                self.abort_journaled(j).await?;
            }
            let body = tokio::fs::read(path)
                .await
                .map_err(|e| backend("read spool", key, e))?;
            if chain::sha256(&body) != *sha256 {
                return Err(StoreError::ChecksumMismatch {
                    key: key.to_string(),
                    expected: hex::encode(sha256),
                    actual: hex::encode(chain::sha256(&body)),
                });
            }
            return self.put_bytes(key, body.into(), sha256).await;
        }
        self.begin_upload(key, journal)
            .await?
            .finish(path, size, sha256)
            .await
    }

    /// Aborts a multipart upload; whether it is gone (aborted now, or
    /// unknown to storage: completed or aborted before).
    async fn abort(&self, key: &str, upload_id: &str) -> bool {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(key, upload_id, "aborted multipart upload");
                true
            }
            // Unknown to storage: completed or aborted before.
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_upload())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                true
            }
            Err(e) => {
                tracing::warn!(
                    key,
                    upload_id,
                    "abort multipart upload: {}",
                    DisplayErrorContext(e)
                );
                false
            }
        }
    }

    /// Aborts what a journal of an earlier attempt names: its upload id,
    /// and any other upload open at its key (one created just before a
    /// crash, whose id never reached the journal). The journal goes once
    /// storage has let go of all of them; until then the upload waits.
    async fn abort_journaled(&self, journal: &Path) -> Result<(), StoreError> {
        let Ok(text) = tokio::fs::read_to_string(journal).await else {
            return Ok(());
        };
        let mut lines = text.lines();
        let Some(key) = lines.next().filter(|k| check_key(k).is_ok()) else {
            let _ = tokio::fs::remove_file(journal).await;
            return Ok(());
        };
        let mut ids: Vec<String> = lines.next().map(str::to_string).into_iter().collect();
        for u in self.list_multipart_uploads(key).await? {
            if u.key == key && !ids.contains(&u.upload_id) {
                ids.push(u.upload_id);
            }
        }
        let mut all = true;
        for id in &ids {
            all &= self.abort(key, id).await;
        }
        if !all {
            return Err(backend(
                "abort multipart upload",
                key,
                NoUploadId::Abort(journal.display().to_string()),
            ));
        }
        let _ = tokio::fs::remove_file(journal).await;
        Ok(())
    }

    /// Multipart uploads open in the bucket under `prefix`.
    pub async fn list_multipart_uploads(
        &self,
        prefix: &str,
    ) -> Result<Vec<MultipartUpload>, StoreError> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| backend("list multipart uploads", prefix, e))?;
            for u in page.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(MultipartUpload {
                        key: k.to_string(),
                        upload_id: id.to_string(),
                    });
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// A GET of the whole object at `key`.
    async fn get(&self, key: &str) -> Result<GetObjectOutput, StoreError> {
        check_key(key)?;
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| get_error(key, e))
    }

    pub async fn get_bytes(&self, key: &str, max: u64) -> Result<Bytes, StoreError> {
        let out = self.get(key).await?;
        let len = out.content_length().unwrap_or(0).max(0) as u64;
        if len > max {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                size: len,
                max,
            });
        }
        let mut body = out.body;
        let mut buf = Vec::with_capacity(len as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| backend("get", key, e))? {
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(StoreError::TooLarge {
                    key: key.to_string(),
                    size: (buf.len() + chunk.len()) as u64,
                    max,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.into())
    }

    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        check_key(key)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", offset, offset + len - 1))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            // Past the end: S3 answers 416 InvalidRange.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Bytes::new());
            }
            Err(e) => return Err(get_error(key, e)),
        };
        let mut body = out.body;
        let mut buf = Vec::with_capacity(len.min(1 << 24) as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| backend("get", key, e))? {
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 >= len {
                break;
            }
        }
        buf.truncate(len as usize);
        Ok(buf.into())
    }

    pub async fn read_hash(&self, key: &str) -> Result<(u64, Hash), StoreError> {
        let out = self.get(key).await?;
        let mut body = out.body;
        // Hash on a separate thread while the next chunks arrive; the
        // bounded hand-off keeps memory flat when hashing is the slower side.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            (n, <Hash>::from(h.finalize()))
        });
        while let Some(chunk) = body.try_next().await.map_err(|e| backend("get", key, e))? {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
        drop(tx);
        Ok(hasher.await.expect("hash thread"))
    }

    /// Streams an object into a local file.
    pub async fn download(&self, key: &str, to: &Path) -> Result<u64, StoreError> {
        use tokio::io::AsyncWriteExt;
        let out = self.get(key).await?;
        let mut f = tokio::fs::File::create(to)
            .await
            .map_err(|e| backend("create", key, e))?;
        let mut body = out.body;
        let mut n = 0u64;
        while let Some(chunk) = body.try_next().await.map_err(|e| backend("get", key, e))? {
            f.write_all(&chunk)
                .await
                .map_err(|e| backend("write", key, e))?;
            n += chunk.len() as u64;
        }
        f.flush().await.map_err(|e| backend("write", key, e))?;
        Ok(n)
    }

    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(se) if se.is_not_found() => Ok(false),
                _ => Err(backend("head", key, e)),
            },
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| backend("list", prefix, e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("delete", key, e))?;
        Ok(())
    }

    /// Deletes every version of `key` (and its delete markers). Storage
    /// that does not implement version listing (Garage answers
    /// `NotImplemented`) keeps no versions and gets a plain delete; any
    /// other listing failure is returned, since a plain delete on a
    /// versioned bucket would only hide the versions behind a marker. A
    /// version still under Object Lock makes storage refuse, and that
    /// refusal is returned.
    pub async fn purge(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let mut ids: Vec<String> = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let listed = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await;
            let listed = match listed {
                Ok(l) => l,
                Err(e) => {
                    let unsupported = e
                        .as_service_error()
                        .and_then(|s| s.meta().code())
                        .is_some_and(|c| c == "NotImplemented")
                        || e.raw_response().is_some_and(|r| r.status().as_u16() == 501);
                    if unsupported && ids.is_empty() {
                        return self.delete(key).await;
                    }
                    return Err(backend("list object versions", key, e));
                }
            };
            ids.extend(
                listed
                    .versions()
                    .iter()
                    .filter(|v| v.key() == Some(key))
                    .filter_map(|v| v.version_id().map(str::to_string)),
            );
            ids.extend(
                listed
                    .delete_markers()
                    .iter()
                    .filter(|m| m.key() == Some(key))
                    .filter_map(|m| m.version_id().map(str::to_string)),
            );
            if !listed.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = listed.next_key_marker().map(str::to_string);
            version_marker = listed.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        if ids.is_empty() {
            // Nothing stored under the key in any version.
            return Ok(());
        }
        for id in ids {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .version_id(&id)
                .send()
                .await
                .map_err(|e| backend("delete version", key, e))?;
        }
        Ok(())
    }

    /// A cheap request that succeeds only when the bucket is reachable.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| backend("head bucket", &self.bucket, e))?;
        Ok(())
    }
}

/// A failed GET: a missing key is `NotFound`, anything else a backend error.
fn get_error(key: &str, e: SdkError<GetObjectError, HttpResponse>) -> StoreError {
    match e.as_service_error() {
        Some(se) if se.is_no_such_key() => StoreError::NotFound(key.to_string()),
        _ => backend("get", key, e),
    }
}

/// An open multipart upload, as storage lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
}

/// Records (durably) the multipart upload a spool entry has open: its key,
/// and its id once storage gave one.
async fn write_journal(journal: &Path, key: &str, upload_id: Option<&str>) -> std::io::Result<()> {
    let rec = match upload_id {
        Some(id) => format!("{key}\n{id}\n"),
        None => format!("{key}\n"),
    };
    let j = journal.to_path_buf();
    tokio::task::spawn_blocking(move || custody_fs::write_atomic(&j, rec.as_bytes()))
        .await
        .map_err(std::io::Error::other)?
}

#[derive(Debug)]
enum NoUploadId {
    Missing,
    /// More parts than S3 numbers (10 000 is the usual limit).
    TooManyParts,
    /// Storage did not let go of an upload an earlier attempt left open.
    Abort(String),
}
impl std::fmt::Display for NoUploadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoUploadId::Missing => f.write_str("the store returned no upload id"),
            NoUploadId::TooManyParts => {
                f.write_str("more parts than a multipart upload can number")
            }
            NoUploadId::Abort(j) => write!(
                f,
                "an upload left open by an earlier attempt ({j}) could not be aborted yet"
            ),
        }
    }
}
impl std::error::Error for NoUploadId {}

fn join_part(
    r: Option<Result<Result<CompletedPart, StoreError>, tokio::task::JoinError>>,
    key: &str,
) -> Result<CompletedPart, StoreError> {
    match r {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(backend("upload part", key, e)),
        None => Err(backend("upload part", key, NoUploadId::Missing)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectError;

    #[test]
    fn s3_failures_say_whether_a_retry_can_help() {
        type E = SdkError<GetObjectError, HttpResponse>;
        let table: Vec<(StoreError, bool)> = vec![
            (backend("get", "k", E::timeout_error("timed out")), true),
            (
                backend("get", "k", E::construction_failure("bad request")),
                false,
            ),
            (
                backend(
                    "read spool",
                    "k",
                    std::io::Error::from(std::io::ErrorKind::ConnectionReset),
                ),
                true,
            ),
            (
                backend(
                    "read spool",
                    "k",
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ),
                false,
            ),
            (backend("upload part", "k", NoUploadId::Missing), true),
        ];
        for (e, retryable) in table {
            assert_eq!(e.retryable(), retryable, "{e}");
            // The cause is kept, not only its text.
            assert!(std::error::Error::source(&e).is_some(), "{e}");
        }
    }
}
