//! Moves a live recording into storage chunk by chunk, in journal order:
//! first the objects a journal chunk names, then the chunk itself, so the
//! journal in storage only ever names objects that are there. After the
//! close: the final checkpoint, the manifest it signs, then the index
//! entries. Storage outages are waited
//! out with backoff; everything waits in the spool meanwhile, on disk.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::LiveRecording;
use super::journal::JournalChunk;
use super::recording::object_path;
use crate::usage::{Usage, UsageEvent, UsageLog};
use custody_format::chain;
use custody_format::manifest::{ObjectEntry, Role};
use custody_proto::RecordingState;
use custody_store::{Store, StoreError, layout};

#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// The bytes of one object named by a journal chunk.
async fn object_bytes(
    rec: &Arc<LiveRecording>,
    chunk: &JournalChunk,
    e: &ObjectEntry,
) -> std::io::Result<Bytes> {
    let entry = rec.entry.clone();
    match e.role {
        Role::Header => Ok(tokio::fs::read(entry.header()).await?.into()),
        Role::RawChunk => {
            // At most one raw chunk per journal chunk, ending at its cut.
            let len = e.range.map(|r| r.length).unwrap_or(e.size);
            let start = chunk.progress.cut - len;
            blocking(move || {
                let mut f = std::fs::File::open(entry.data())?;
                f.seek(SeekFrom::Start(start))?;
                let mut buf = vec![0u8; len as usize];
                f.read_exact(&mut buf)?;
                Ok(Bytes::from(buf))
            })
            .await
        }
        role => Ok(tokio::fs::read(object_path(&entry, e.index, role))
            .await?
            .into()),
    }
}

async fn upload_chunk(
    store: &Store,
    rec: &Arc<LiveRecording>,
    seq: u64,
) -> Result<JournalChunk, UploadError> {
    let j = rec.journal().clone();
    let chunk = blocking(move || j.read(seq)).await?;
    for e in &chunk.entries {
        let body = object_bytes(rec, &chunk, e).await?;
        let h = chain::parse_hex(&e.sha256).unwrap_or_default();
        if chain::sha256(&body) != h {
            return Err(UploadError::Spool(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} in the spool does not match its journal hash", e.key),
            )));
        }
        store.put_bytes(&e.key, body, &h).await?;
    }
    let bytes = tokio::fs::read(rec.journal().path(seq)).await?;
    let h = chain::sha256(&bytes);
    store
        .put_bytes(&layout::journal_key(&rec.prefix, seq), bytes.into(), &h)
        .await?;
    Ok(chunk)
}

async fn finish(
    store: &Store,
    rec: &Arc<LiveRecording>,
    catalog: &crate::catalog::Catalog,
) -> Result<(), UploadError> {
    let mbytes = tokio::fs::read(rec.entry.manifest()).await?;
    let manifest: custody_format::manifest::Manifest = serde_json::from_slice(&mbytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mkey = layout::manifest_key(&rec.prefix);
    rec.seal(store, &manifest, &mbytes).await?;
    crate::finish::finish_recording(
        store,
        catalog,
        crate::finish::Sealed {
            manifest: &manifest,
            manifest_key: &mkey,
            size: manifest.live.as_ref().map(|l| l.stream_bytes).unwrap_or(0),
            sha256: None,
        },
    )
    .await?;
    // Storage has everything: the spool keeps only the small files.
    let entry = rec.entry.clone();
    let mut st = entry
        .load_state()?
        .ok_or_else(|| std::io::Error::other("no spool state"))?;
    st.status = RecordingState::Archived;
    st.chain_head = Some(manifest.chain_head.clone());
    st.size = manifest.live.as_ref().map(|l| l.stream_bytes);
    let r2 = rec.clone();
    blocking(move || {
        r2.mark_archived()?;
        entry.save_state(&st)?;
        entry.release_data()?;
        let _ = std::fs::remove_dir_all(LiveRecording::objects_dir(&entry));
        Ok(())
    })
    .await?;
    Ok(())
}

/// Seconds between signed checkpoints of a growing recording.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// Runs until the recording is closed and in storage.
pub async fn run(
    store: Store,
    rec: Arc<LiveRecording>,
    usage: UsageLog,
    catalog: Arc<crate::catalog::Catalog>,
) {
    let mut backoff = Duration::from_millis(250);
    let mut last_checkpoint: Option<std::time::Instant> = None;
    loop {
        if rec.is_archived() {
            return;
        }
        let seq = rec.uploaded();
        let result = if seq < rec.next_seq() {
            match upload_chunk(&store, &rec, seq).await {
                Ok(chunk) => {
                    let latency = crate::live::recording::age(&chunk.at);
                    let (r2, c2) = (rec.clone(), chunk.clone());
                    let marked = blocking(move || r2.mark_uploaded(&c2, latency))
                        .await
                        .map_err(UploadError::from);
                    // At least every 10 s, sign what storage now holds.
                    let due = last_checkpoint.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
                    if marked.is_ok() && due && !chunk.last {
                        match rec
                            .checkpoint(
                                &store,
                                chunk.progress.next_index,
                                &chunk.progress.chain_head,
                            )
                            .await
                        {
                            Ok(()) => last_checkpoint = Some(std::time::Instant::now()),
                            Err(e) => {
                                tracing::warn!(id = %rec.id, "checkpoint not stored yet: {e}")
                            }
                        }
                    }
                    marked
                }
                Err(e) => Err(e),
            }
        } else if rec.is_closed() {
            match finish(&store, &rec, &catalog).await {
                Ok(()) => {
                    usage
                        .record(Usage {
                            device: &rec.header.uploader.device,
                            officer: rec.header.ledger.officer.as_deref(),
                            event: UsageEvent::Archived,
                            recording_id: Some(&rec.id),
                            detail: format!(
                                "live recording {}/{} closed and stored with its manifest",
                                rec.recorder, rec.id
                            ),
                            peer: None,
                        })
                        .await;
                    tracing::info!(recorder = %rec.recorder, id = %rec.id, "live recording archived");
                    return;
                }
                Err(e) => Err(e),
            }
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(1), rec.changed.notified()).await;
            continue;
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                tracing::warn!(id = %rec.id, "live upload failed, retrying in {backoff:?}: {e}");
                rec.metrics()
                    .storage()
                    .retried(crate::metrics::Retry::LiveUpload);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
