//! One multipart upload whose parts are sent as their bytes become
//! available: [`S3Store::put_file`] sends a whole file through it, and the
//! gateway sends a docked original's parts while the file is still
//! arriving, then finishes the upload from the spool file once it is whole.
//!
//! The object only exists once [`PartUpload::finish`] completes it, after
//! checking that every byte sent — early or at the end — hashes to the
//! SHA-256 the caller expects; until then nothing is stored under its key.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::task::JoinSet;

use super::{NoUploadId, S3Store, b64, backend, join_part, s3_time, write_journal};
use crate::{StoreError, check_key};
use custody_format::chain::{self, Hash};

/// An open multipart upload of one object; parts go in order.
pub struct PartUpload {
    store: S3Store,
    key: String,
    upload_id: String,
    /// Names the upload in the spool until it is completed or aborted.
    journal: Option<PathBuf>,
    /// Bytes handed to [`PartUpload::send`] so far.
    sent: u64,
    /// SHA-256 of those bytes, in order.
    whole: Sha256,
    inflight: JoinSet<Result<CompletedPart, StoreError>>,
    done: Vec<CompletedPart>,
}

impl S3Store {
    /// Opens a multipart upload of `key`. `journal` records it from before
    /// it is created until it is completed or aborted; whatever an earlier
    /// attempt's journal names there is aborted first.
    pub async fn begin_upload(
        &self,
        key: &str,
        journal: Option<&Path>,
    ) -> Result<PartUpload, StoreError> {
        check_key(key)?;
        if let Some(j) = journal {
            self.abort_journaled(j).await?;
            // The key first: a crash between creating the upload and
            // recording its id still leaves a trace to clean up after.
            write_journal(j, key, None)
                .await
                .map_err(|e| backend("journal multipart upload", key, e))?;
        }
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(u) = self.lock_until(key) {
            create = create
                .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
                .object_lock_retain_until_date(s3_time(u));
        }
        let created = create
            .send()
            .await
            .map_err(|e| backend("create multipart upload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| backend("create multipart upload", key, NoUploadId::Missing))?
            .to_string();
        if let Some(j) = journal
            && let Err(e) = write_journal(j, key, Some(&upload_id)).await
        {
            self.abort(key, &upload_id).await;
            return Err(backend("journal multipart upload", key, e));
        }
        Ok(PartUpload {
            store: self.clone(),
            key: key.to_string(),
            upload_id,
            journal: journal.map(Path::to_path_buf),
            sent: 0,
            whole: Sha256::new(),
            inflight: JoinSet::new(),
            done: Vec::new(),
        })
    }
}

impl PartUpload {
    /// Every part but the last is exactly this long.
    pub fn part_size(&self) -> u64 {
        self.store.part_size as u64
    }

    /// Bytes sent (or sending) so far: where the next part starts.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Sends the next part: the bytes at [`PartUpload::sent`], exactly
    /// [`PartUpload::part_size`] of them unless it is the last. Returns once
    /// the part is on its way; at most the store's concurrency are in flight
    /// (so memory stays bounded when storage is slow).
    pub async fn send(&mut self, body: Bytes) -> Result<(), StoreError> {
        while self.inflight.len() >= self.store.concurrency {
            let p = join_part(self.inflight.join_next().await, &self.key)?;
            self.done.push(p);
        }
        let part_number = i32::try_from(self.sent / self.part_size() + 1)
            .map_err(|_| backend("upload part", &self.key, NoUploadId::TooManyParts))?;
        self.sent += body.len() as u64;
        // The running hash of the whole, and the part's own (its checksum
        // in storage), on a blocking thread each: both are CPU-bound.
        let mut whole = std::mem::take(&mut self.whole);
        let b = body.clone();
        self.whole = tokio::task::spawn_blocking(move || {
            whole.update(&b);
            whole
        })
        .await
        .map_err(|e| backend("hash part", &self.key, e))?;
        let (client, bucket, key, upload) = (
            self.store.client.clone(),
            self.store.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        self.inflight.spawn(async move {
            let h = tokio::task::spawn_blocking({
                let body = body.clone();
                move || chain::sha256(&body)
            })
            .await
            .map_err(|e| backend("hash part", &key, e))?;
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(&key)
                .upload_id(upload)
                .part_number(part_number)
                .checksum_sha256(b64(&h))
                .body(ByteStream::from(body))
                .send()
                .await
                .map_err(|e| backend("upload part", &key, e))?;
            Ok(CompletedPart::builder()
                .part_number(part_number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .checksum_sha256(b64(&h))
                .build())
        });
        Ok(())
    }

    /// Waits for the parts in flight; the first failure among them.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        while !self.inflight.is_empty() {
            let p = join_part(self.inflight.join_next().await, &self.key)?;
            self.done.push(p);
        }
        Ok(())
    }

    /// Sends the rest of the file at `path` (from [`PartUpload::sent`] to
    /// `size`), checks that all bytes sent hash to `sha256`, and completes
    /// the upload: only now does the object exist. On failure the upload
    /// is aborted (the journal stays if storage refuses the abort, and the
    /// next attempt aborts it first).
    pub async fn finish(mut self, path: &Path, size: u64, sha256: &Hash) -> Result<(), StoreError> {
        match self.finish_inner(path, size, sha256).await {
            Ok(()) => {
                if let Some(j) = &self.journal {
                    let _ = tokio::fs::remove_file(j).await;
                }
                // Some servers ignore the lock given at creation of a
                // multipart upload: set it on the object again.
                if let Some(u) = self.store.lock_until(&self.key) {
                    self.store.extend_retention(&self.key, u).await?;
                }
                Ok(())
            }
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn finish_inner(
        &mut self,
        path: &Path,
        size: u64,
        sha256: &Hash,
    ) -> Result<(), StoreError> {
        if self.sent > size {
            return Err(StoreError::ChecksumMismatch {
                key: self.key.clone(),
                expected: format!("{size} bytes ({})", hex::encode(sha256)),
                actual: format!("{} bytes sent already", self.sent),
            });
        }
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| backend("read spool", &self.key, e))?;
        file.seek(std::io::SeekFrom::Start(self.sent))
            .await
            .map_err(|e| backend("read spool", &self.key, e))?;
        while self.sent < size {
            let len = self.part_size().min(size - self.sent) as usize;
            let mut buf = vec![0u8; len];
            file.read_exact(&mut buf)
                .await
                .map_err(|e| backend("read spool", &self.key, e))?;
            self.send(Bytes::from(buf)).await?;
        }
        self.flush().await?;
        let got: Hash = std::mem::take(&mut self.whole).finalize().into();
        if got != *sha256 {
            return Err(StoreError::ChecksumMismatch {
                key: self.key.clone(),
                expected: hex::encode(sha256),
                actual: hex::encode(got),
            });
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| backend("complete multipart upload", &self.key, e))?;
        Ok(())
    }

    /// Gives the upload up: nothing is stored under its key. The journal
    /// goes once storage let go of it.
    pub async fn abort(mut self) {
        self.inflight.abort_all();
        while self.inflight.join_next().await.is_some() {}
        if self.store.abort(&self.key, &self.upload_id).await
            && let Some(j) = &self.journal
        {
            let _ = tokio::fs::remove_file(j).await;
        }
    }
}
