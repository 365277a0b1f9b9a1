//! Cluster mode: a live recording continued on this gateway from what the
//! gateway that received it left in storage when it died. In cluster mode a
//! live byte is acknowledged only once the journal chunk holding it is in
//! storage, so the journal there holds everything acknowledged: the new
//! holder of the recording's lease makes a spool entry from it — header,
//! journal chunks byte for byte, gaps, checkpoints — and takes the stream
//! from the offset the journal reaches. The data file is sparse before that
//! offset: the bytes before it are in storage, and the next remux run
//! starts after them (`LiveState::spool_from`).

use std::collections::BTreeSet;

use super::journal::{Journal, JournalChunk};
use super::recording::{Closed, LiveRecording, LiveState};
use crate::spool::{EntryDir, EntryState, write_atomic};
use custody_format::chain;
use custody_format::checkpoint::Checkpoint;
use custody_format::layout;
use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::{ClosedBy, HeaderDoc, Role};
use custody_proto::RecordingState;
use custody_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    /// What storage holds is not this recording's journal as written.
    #[error("{0}")]
    Damaged(String),
}

/// What storage held of the recording.
pub enum Restored {
    /// The spool entry now holds the recording as stored.
    Continued {
        header: Box<HeaderDoc>,
        /// It was closed (its last journal chunk stored) but not sealed.
        closed: bool,
    },
    /// Not even its first journal chunk was stored: nothing of it was
    /// acknowledged, and what was under its prefix is deleted.
    NothingStored,
}

/// The numbers `N` of the objects `<dir>N.json` stored (journal chunks,
/// checkpoints).
async fn numbered(store: &Store, dir: &str) -> Result<Vec<u64>, StoreError> {
    Ok(store
        .list(dir)
        .await?
        .iter()
        .filter_map(|o| o.key.strip_prefix(dir)?.strip_suffix(".json")?.parse().ok())
        .collect())
}

/// The journal chunks stored under `prefix`, in order from 0, each with
/// its exact bytes (those after a missing number are not the journal's).
async fn stored_journal(
    store: &Store,
    prefix: &str,
    recorder: &str,
    id: &str,
) -> Result<Vec<(JournalChunk, Vec<u8>)>, RestoreError> {
    let mut seqs = numbered(store, &layout::journal_dir(prefix)).await?;
    seqs.sort_unstable();
    let mut chunks = Vec::new();
    for (i, seq) in seqs.into_iter().enumerate() {
        if seq != i as u64 {
            break;
        }
        let bytes = store
            .get_bytes(&layout::journal_key(prefix, seq), MAX_DOC_BYTES)
            .await?;
        let c: JournalChunk = serde_json::from_slice(&bytes)
            .map_err(|e| RestoreError::Damaged(format!("journal chunk {seq}: {e}")))?;
        if c.seq != seq || c.recorder != recorder || c.recording_id != id {
            return Err(RestoreError::Damaged(format!(
                "journal chunk {seq} under {prefix} is chunk {} of {}/{}",
                c.seq, c.recorder, c.recording_id
            )));
        }
        chunks.push((c, bytes.to_vec()));
    }
    Ok(chunks)
}

/// The stored checkpoints: how many, the last one's SHA-256 and coverage.
async fn stored_checkpoints(
    store: &Store,
    prefix: &str,
) -> Result<(u64, Option<String>, u64), RestoreError> {
    let last = numbered(store, &layout::checkpoints_dir(prefix))
        .await?
        .into_iter()
        .max();
    let Some(seq) = last else {
        return Ok((0, None, 0));
    };
    let bytes = store
        .get_bytes(&layout::checkpoint_key(prefix, seq), MAX_DOC_BYTES)
        .await?;
    let c: Checkpoint = serde_json::from_slice(&bytes)
        .map_err(|e| RestoreError::Damaged(format!("checkpoint {seq}: {e}")))?;
    Ok((
        seq + 1,
        Some(hex::encode(chain::sha256(&bytes))),
        c.object_count,
    ))
}

/// Deletes what a dead gateway stored under `prefix` but never listed in
/// a stored journal chunk (objects of a chunk it did not finish storing):
/// the recording goes on with other objects at those indexes.
async fn delete_unlisted(
    store: &Store,
    prefix: &str,
    listed: &BTreeSet<String>,
) -> Result<usize, RestoreError> {
    let checkpoints = layout::checkpoints_dir(prefix);
    let mut n = 0;
    for o in store.list(&layout::recording_dir(prefix)).await? {
        if !listed.contains(&o.key) && !o.key.starts_with(&checkpoints) {
            store.delete(&o.key).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes `entry` hold live recording `recorder/id` as stored under
/// `prefix`, its spool copy of epoch `epoch`. On an error the entry is
/// removed again (a later attempt starts over).
pub async fn restore(
    store: &Store,
    entry: &EntryDir,
    recorder: &str,
    id: &str,
    prefix: &str,
    epoch: i64,
) -> Result<Restored, RestoreError> {
    let r = restore_into(store, entry, recorder, id, prefix, epoch).await;
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&entry.dir);
    }
    r
}

async fn restore_into(
    store: &Store,
    entry: &EntryDir,
    recorder: &str,
    id: &str,
    prefix: &str,
    epoch: i64,
) -> Result<Restored, RestoreError> {
    let chunks = stored_journal(store, prefix, recorder, id).await?;
    let Some((last, _)) = chunks.last() else {
        delete_unlisted(store, prefix, &BTreeSet::new()).await?;
        return Ok(Restored::NothingStored);
    };
    let last = last.clone();
    let h0 = chunks[0]
        .0
        .entries
        .first()
        .filter(|e| e.role == Role::Header && e.index == 0)
        .ok_or_else(|| RestoreError::Damaged("journal chunk 0 lists no header".into()))?
        .clone();
    let header_bytes = store.get_bytes(&h0.key, MAX_DOC_BYTES).await?.to_vec();
    if hex::encode(chain::sha256(&header_bytes)) != h0.sha256 {
        return Err(RestoreError::Damaged(format!(
            "the stored header {} is not the one the journal lists",
            h0.key
        )));
    }
    let header: HeaderDoc = serde_json::from_slice(&header_bytes)
        .map_err(|e| RestoreError::Damaged(format!("header: {e}")))?;
    let (checkpoints, last_checkpoint, checkpoint_count) =
        stored_checkpoints(store, prefix).await?;
    let mut listed = BTreeSet::new();
    for (c, _) in &chunks {
        listed.insert(layout::journal_key(prefix, c.seq));
        listed.extend(c.entries.iter().map(|e| e.key.clone()));
    }
    let deleted = delete_unlisted(store, prefix, &listed).await?;

    let gaps: Vec<_> = chunks.iter().flat_map(|(c, _)| c.gaps.clone()).collect();
    let skipped: u64 = gaps.iter().filter_map(|g| g.bytes.map(|b| b.length)).sum();
    let cut = last.progress.cut;
    let closed = last.last.then(|| Closed {
        by: if last.gaps.iter().any(|g| g.kind == "tail") {
            ClosedBy::Timeout
        } else {
            ClosedBy::Device
        },
        at: last.at.clone(),
    });
    let raw_ext = last
        .progress
        .last_raw
        .as_ref()
        .and_then(|r| r.key.rsplit_once('.').map(|(_, ext)| ext.to_string()))
        .unwrap_or_else(|| "ts".into());
    let state = LiveState {
        started_at: header.received_at.clone(),
        last_byte_at: last.at.clone(),
        gaps,
        pending_gaps: Vec::new(),
        uploaded: chunks.len() as u64,
        skipped,
        raw_ext,
        raw_chunks: last.raw_chunks,
        closed: closed.clone(),
        archived: false,
        checkpoints,
        last_checkpoint,
        checkpoint_count,
        log: false,
        last_gap_at: None,
        derivative_holes: Vec::new(),
        stored_stream: cut + skipped,
        stored_skipped: skipped,
        spool_from: cut,
        epoch,
    };
    let st = EntryState {
        status: RecordingState::Receiving,
        prefix: prefix.to_string(),
        manifest_key: layout::manifest_key(prefix),
        size: None,
        sha256: None,
        declared_sha256: None,
        chain_head: None,
        reason: None,
    };
    let e = entry.clone();
    let n = chunks.len();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        e.create(&header_bytes, &st)?;
        let journal = Journal::new(e.dir.join("journal"));
        std::fs::create_dir_all(e.dir.join("journal"))?;
        for (c, bytes) in &chunks {
            write_atomic(&journal.path(c.seq), bytes)?;
        }
        std::fs::create_dir_all(LiveRecording::objects_dir(&e))?;
        // Sparse up to the cut: those bytes are in storage.
        let f = std::fs::File::create(e.data())?;
        f.set_len(cut)?;
        f.sync_all()?;
        crate::spool::writer::reset_ack(&e.ack(), cut)?;
        // Last: a live state makes the entry a live recording.
        LiveRecording::save_state_of(&e, &state)
    })
    .await
    .map_err(std::io::Error::other)??;
    tracing::info!(%recorder, %id, %prefix, chunks = n, stream = cut + skipped, deleted, closed = closed.is_some(), epoch, "continuing a live recording from its journal in storage");
    Ok(Restored::Continued {
        header: Box::new(header),
        closed: closed.is_some(),
    })
}
