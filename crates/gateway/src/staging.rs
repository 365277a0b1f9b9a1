//! Docked uploads in cluster mode: staged in storage as they arrive, so
//! that a device whose gateway dies resumes on another gateway.
//!
//! Bytes still go to the spool first (the writer, as in single mode);
//! a [`Stager`] then copies each part of [`PART_BYTES`] from the spool to
//! storage (`layout::staging_part_key`) and records it in the cluster's
//! database (`custody_db::uploads`) under the upload's lease — and only
//! then is the device told the bytes are stored. Whichever gateway the
//! device reaches next takes the lease (over, if the holder let it
//! expire) and [`Staging::restore`]s the spool entry from the staged parts
//! before the device resumes from the last acknowledged byte. The parts
//! are deleted once the recording is archived.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lease::{Lease, Leases};
use crate::metrics::Metrics;
use crate::spool::writer::{OriginalWriter, reset_ack};
use crate::spool::{EntryDir, EntryState};
use custody_db::Db;
use custody_db::uploads::{Part, Refused};
use custody_format::layout;
use custody_proto::RecordingState;
use custody_store::Store;

/// Bytes per staged part: one storage write and one database row each.
pub const PART_BYTES: u64 = 8 << 20;
/// How far the spool may run ahead of storage before the gateway stops
/// reading the upload (QUIC flow control then slows the device): bounds
/// what a dead gateway's spool holds that no other gateway can see.
pub const MAX_LEAD: u64 = 4 * PART_BYTES;
/// How long a part is tried again while storage or the database fails.
const RETRY_FOR: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("cluster database: {0}")]
    Db(#[from] custody_db::DbError),
    #[error("storage: {0}")]
    Store(#[from] custody_store::StoreError),
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error("the upload's lease was taken over by another gateway")]
    LeaseLost,
    #[error("staged part {part} ({key}) does not match what was recorded: {why}")]
    Damaged { part: i32, key: String, why: String },
    #[error("the staged bytes end at {staged}, not where this gateway's part starts ({start})")]
    NotContiguous { staged: u64, start: u64 },
    #[error("the cluster database lost track of the upload")]
    Unknown,
    #[error("{0}")]
    Task(String),
    #[error("{0}")]
    Busy(String),
    #[error("finding the stored recording: {0}")]
    Locate(String),
}

/// What the archiver may do with a spooled docked upload (cluster mode).
pub enum Claim {
    /// Archive it, holding this lease.
    Archive(Lease),
    /// Another gateway stored it, under this manifest and chain head;
    /// this spool's entry is marked so.
    Stored {
        manifest_key: String,
        chain_head: String,
    },
}

/// The sweep looks for complete uploads nobody archives every two lease
/// times, and at most this often.
const SWEEP_AT_MOST_EVERY: Duration = Duration::from_secs(10);

/// This gateway's side of staging.
pub struct Staging {
    pub leases: Arc<Leases>,
    store: Store,
    metrics: Arc<Metrics>,
}

/// Where staging of an upload stands when a stream is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    /// Bytes staged so far.
    pub staged: u64,
    /// The number the next part takes.
    pub next_part: i32,
}

impl Staging {
    pub fn new(leases: Arc<Leases>, store: Store, metrics: Arc<Metrics>) -> Arc<Staging> {
        Arc::new(Staging {
            leases,
            store,
            metrics,
        })
    }

    fn db(&self) -> &Db {
        self.leases.db()
    }

    /// Takes the upload's lease (over, if its holder let it expire).
    pub async fn lease(&self, recorder: &str, id: &str) -> Result<Lease, crate::lease::LeaseError> {
        self.leases
            .take_upload(&Leases::upload_name(recorder, id))
            .await
    }

    /// Makes the spool entry of `recorder/id` hold exactly what the cluster
    /// has staged of it: the header and state as recorded, and the staged
    /// bytes — those of this spool kept as far as they agree in length,
    /// the rest fetched from storage, each part checked against its
    /// recorded SHA-256. Bytes of this spool past the staged ones were
    /// never acknowledged (in cluster mode) and are cut. Nothing to do for
    /// an upload the cluster does not know, or one this spool has
    /// finished. Called with the lease held.
    pub async fn restore(
        &self,
        entry: &EntryDir,
        recorder: &str,
        id: &str,
    ) -> Result<(), StagingError> {
        let Some(u) = self.db().upload_get(recorder, id).await? else {
            return Ok(());
        };
        let e = entry.clone();
        let local = blocking(move || Ok((e.load_state()?, e.durable()?))).await?;
        let keep = match &local {
            (Some(st), _)
                if matches!(
                    st.status,
                    RecordingState::Spooled | RecordingState::Archived
                ) =>
            {
                return Ok(());
            }
            (Some(st), durable)
                if matches!(
                    st.status,
                    RecordingState::Receiving | RecordingState::Unknown
                ) =>
            {
                (*durable).min(u.staged)
            }
            _ => 0,
        };
        let state: EntryState = serde_json::from_str(&u.state).map_err(|e| {
            StagingError::Task(format!("the recorded entry state does not parse: {e}"))
        })?;
        let (e, header, fresh) = (
            entry.clone(),
            u.header.clone(),
            local.0.is_none() || keep == 0,
        );
        let mut st = state.clone();
        if !u.complete {
            st.status = RecordingState::Receiving;
        }
        let st2 = st.clone();
        let mut w = blocking(move || {
            if fresh {
                e.create(&header, &st2)?;
            }
            reset_ack(&e.ack(), keep)?;
            let _ = std::fs::remove_dir_all(e.derived());
            OriginalWriter::open_unhashed(&e)
        })
        .await?;
        let mut fetched = 0u64;
        for p in u.parts.iter().filter(|p| p.start + p.len > keep) {
            let body = self.store.get_bytes(&p.key, p.len).await?;
            check_part(p, &body)?;
            let skip = keep.saturating_sub(p.start) as usize;
            fetched += (body.len() - skip) as u64;
            w = blocking(move || {
                w.append(&body[skip..])?;
                Ok(w)
            })
            .await?;
        }
        let e = entry.clone();
        let durable = blocking(move || {
            let d = w.sync()?;
            if !fresh {
                e.save_state(&st)?;
            }
            Ok(d)
        })
        .await?;
        if durable != u.staged {
            return Err(StagingError::NotContiguous {
                staged: u.staged,
                start: durable,
            });
        }
        tracing::info!(%recorder, %id, kept = keep, fetched, staged = u.staged, complete = u.complete, "restored a docked upload from its staged parts");
        Ok(())
    }

    /// Records the upload in the cluster (if it is not yet) from its spool
    /// entry; returns where its staging stands.
    pub async fn begin(
        &self,
        entry: &EntryDir,
        recorder: &str,
        id: &str,
    ) -> Result<Staged, StagingError> {
        let e = entry.clone();
        let (header, st) = blocking(move || Ok((e.read_header()?, e.load_state()?))).await?;
        let st = st.ok_or(StagingError::Unknown)?;
        let state = serde_json::to_string(&st).expect("state serialises");
        self.db()
            .upload_begin(recorder, id, &header, &state)
            .await?;
        let u = self
            .db()
            .upload_get(recorder, id)
            .await?
            .ok_or(StagingError::Unknown)?;
        Ok(Staged {
            staged: u.staged,
            next_part: u.parts.last().map_or(0, |p| p.part + 1),
        })
    }

    /// Records that every byte is staged and the device's hash matched.
    pub async fn complete(
        &self,
        recorder: &str,
        id: &str,
        st: &EntryState,
    ) -> Result<(), StagingError> {
        let state = serde_json::to_string(st).expect("state serialises");
        Ok(self.db().upload_complete(recorder, id, &state).await?)
    }

    /// Forgets the upload (archived, or quarantined) and deletes its
    /// staged parts: those recorded, and any a gateway stored but died
    /// before recording. Called with the upload's lease held, so no new
    /// upload under the same id stages meanwhile.
    pub async fn forget(&self, recorder: &str, id: &str) -> Result<(), StagingError> {
        use futures_util::StreamExt;
        let mut keys: std::collections::BTreeSet<String> = self
            .db()
            .upload_remove(recorder, id)
            .await?
            .into_iter()
            .collect();
        keys.extend(
            self.store
                .list(&layout::staging_upload_prefix(recorder, id))
                .await?
                .into_iter()
                .map(|o| o.key),
        );
        // A few at a time: a large upload has hundreds of parts.
        let mut deletes = futures_util::stream::iter(keys)
            .map(|key| async move { self.store.delete(&key).await })
            .buffer_unordered(8);
        while let Some(r) = deletes.next().await {
            r?;
        }
        Ok(())
    }

    /// Before the archiver stores spooled upload `recorder/id`: takes its
    /// lease (an error while another gateway holds it: try later), so two
    /// gateways never archive it at once. If it is stored already — by
    /// another gateway, or by one that died before it could forget the
    /// staged parts — this spool's entry is marked archived and the parts
    /// are forgotten instead.
    pub async fn claim(
        &self,
        entry: &EntryDir,
        recorder: &str,
        id: &str,
    ) -> Result<Claim, StagingError> {
        let lease = self
            .lease(recorder, id)
            .await
            .map_err(|e| StagingError::Busy(format!("upload {recorder}/{id}: {e}")))?;
        let e = entry.clone();
        let Some(st) = blocking(move || e.load_state()).await? else {
            return Ok(Claim::Archive(lease));
        };
        let found = custody_verify::locate::stored(&self.store, recorder, id)
            .await
            .map_err(|e| StagingError::Locate(e.to_string()))?;
        // The same bytes stored under this id: this recording. (Other bytes
        // under the id are another recording; both are kept.)
        let Some(loc) = found
            .map(|f| f.locator)
            .filter(|l| st.sha256.as_deref() == Some(l.sha256.as_str()))
        else {
            return Ok(Claim::Archive(lease));
        };
        let stored = Claim::Stored {
            manifest_key: loc.manifest_key.clone(),
            chain_head: loc.chain_head.clone(),
        };
        let e = entry.clone();
        blocking(move || {
            let mut st = st;
            st.status = RecordingState::Archived;
            st.prefix = loc.prefix;
            st.manifest_key = loc.manifest_key;
            st.chain_head = Some(loc.chain_head);
            e.save_state(&st)?;
            e.release_data()
        })
        .await?;
        self.forget(recorder, id).await?;
        tracing::info!(%recorder, %id, "already stored (by another gateway); this spool's copy released");
        Ok(stored)
    }

    /// Every two lease times (at least 10 s): complete uploads that no gateway holds (the one that
    /// received them died after the device's `finish` matched, before
    /// storing them) are restored into this spool from their parts and
    /// handed to `archive`, so they are stored without their device.
    pub async fn sweep(
        self: Arc<Self>,
        spool: crate::spool::Spool,
        archive: impl Fn(&str, &str) + Send + 'static,
    ) {
        let every = (self.leases.ttl() * 2).max(SWEEP_AT_MOST_EVERY);
        loop {
            tokio::time::sleep(every).await;
            let orphans = match self.db().uploads_unheld(self.leases.ttl()).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!("staged uploads sweep: {e}");
                    continue;
                }
            };
            for (recorder, id) in orphans {
                let entry = spool.entry(&recorder, &id);
                let adopted = async {
                    let _lease = self
                        .lease(&recorder, &id)
                        .await
                        .map_err(|e| StagingError::Busy(e.to_string()))?;
                    self.restore(&entry, &recorder, &id).await
                };
                match adopted.await {
                    Ok(()) => {
                        tracing::info!(%recorder, %id, "a complete upload nobody held: restored from its staged parts to be stored here");
                        archive(&recorder, &id);
                    }
                    Err(e) => tracing::debug!(%recorder, %id, "not adopted: {e}"),
                }
            }
        }
    }

    /// Starts staging the spool entry's `data` from `from.staged` as the
    /// writer makes it durable (`durable`); ends after the writer does,
    /// with everything it made durable staged.
    pub fn stager(
        self: &Arc<Self>,
        lease: &Lease,
        recorder: &str,
        id: &str,
        data: PathBuf,
        from: Staged,
        durable: watch::Receiver<u64>,
    ) -> Stager {
        let (tx, rx) = watch::channel(from.staged);
        let job = StageJob {
            staging: self.clone(),
            lease_name: lease.name().to_string(),
            token: lease.token(),
            lost: lease.lost(),
            recorder: recorder.to_string(),
            id: id.to_string(),
            data,
        };
        let task = tokio::spawn(job.run(from, durable, tx));
        Stager { staged: rx, task }
    }
}

/// Staging one upload while it arrives.
pub struct Stager {
    /// Bytes staged so far: what may be acknowledged.
    pub staged: watch::Receiver<u64>,
    task: JoinHandle<Result<u64, StagingError>>,
}

impl Stager {
    /// Waits for the stager to end; the bytes staged, or why it stopped.
    pub async fn finish(self) -> Result<u64, StagingError> {
        self.task
            .await
            .map_err(|e| StagingError::Task(e.to_string()))?
    }
}

struct StageJob {
    staging: Arc<Staging>,
    lease_name: String,
    token: i64,
    lost: tokio_util::sync::CancellationToken,
    recorder: String,
    id: String,
    data: PathBuf,
}

impl StageJob {
    async fn run(
        self,
        from: Staged,
        mut durable: watch::Receiver<u64>,
        staged: watch::Sender<u64>,
    ) -> Result<u64, StagingError> {
        let (mut start, mut part) = (from.staged, from.next_part);
        let mut writer_done = false;
        loop {
            let d = *durable.borrow_and_update();
            let end = if d >= start + PART_BYTES {
                start + PART_BYTES
            } else if writer_done {
                d
            } else {
                tokio::select! {
                    r = durable.changed() => writer_done = r.is_err(),
                    _ = self.lost.cancelled() => return Err(StagingError::LeaseLost),
                }
                continue;
            };
            if end > start {
                self.stage(part, start, end).await?;
                start = end;
                part += 1;
                let _ = staged.send(start);
            }
            if writer_done && end >= d {
                return Ok(start);
            }
        }
    }

    /// Copies bytes `start..end` of the spool to storage as part `part`
    /// and records it, trying again while storage or the database fail.
    async fn stage(&self, part: i32, start: u64, end: u64) -> Result<(), StagingError> {
        let data = self.data.clone();
        let body: Bytes =
            blocking(move || crate::spool::read_range(&data, start, end - start)).await?;
        let sha: [u8; 32] = Sha256::digest(&body).into();
        let p = Part {
            part,
            start,
            len: end - start,
            key: layout::staging_part_key(&self.recorder, &self.id, self.token, part),
            sha256: hex::encode(sha),
        };
        let db = self.staging.db();
        let store = &self.staging.store;
        retrying(
            &format!("staging part {part} of {}/{}", self.recorder, self.id),
            &self.lost,
            || async {
                store.put_bytes(&p.key, body.clone(), &sha).await?;
                match db
                    .upload_stage(&self.recorder, &self.id, &self.lease_name, self.token, &p)
                    .await?
                {
                    Ok(_) => Ok(()),
                    Err(Refused::LeaseLost) => Err(StagingError::LeaseLost),
                    Err(Refused::Unknown) => Err(StagingError::Unknown),
                    Err(Refused::NotContiguous { staged }) => {
                        Err(StagingError::NotContiguous { staged, start })
                    }
                }
            },
        )
        .await?;
        self.staging.metrics.staged(end - start);
        Ok(())
    }
}

/// Runs `f` until it succeeds, gives up with an error no retry can mend,
/// or has failed for [`RETRY_FOR`].
async fn retrying<F, Fut>(
    what: &str,
    lost: &tokio_util::sync::CancellationToken,
    mut f: F,
) -> Result<(), StagingError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), StagingError>>,
{
    let began = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match f().await {
            Ok(()) => return Ok(()),
            Err(e) if retryable(&e) && began.elapsed() < RETRY_FOR && !lost.is_cancelled() => {
                tracing::warn!("{what}: {e}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(e),
        }
    }
}

fn retryable(e: &StagingError) -> bool {
    match e {
        StagingError::Db(_) => true,
        StagingError::Store(s) => s.retryable(),
        _ => false,
    }
}

fn check_part(p: &Part, body: &[u8]) -> Result<(), StagingError> {
    let damaged = |why: String| StagingError::Damaged {
        part: p.part,
        key: p.key.clone(),
        why,
    };
    if body.len() as u64 != p.len {
        return Err(damaged(format!("{} bytes, recorded {}", body.len(), p.len)));
    }
    let sha = hex::encode(Sha256::digest(body));
    if sha != p.sha256 {
        return Err(damaged(format!("sha256 {sha}, recorded {}", p.sha256)));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StagingError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StagingError::Task(e.to_string()))?
        .map_err(StagingError::Spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_must_have_its_recorded_length_and_hash() {
        let body = b"part bytes";
        let p = Part {
            part: 3,
            start: 0,
            len: body.len() as u64,
            key: "staging/r/i/1/000003".into(),
            sha256: hex::encode(Sha256::digest(body)),
        };
        assert!(check_part(&p, body).is_ok());
        let e = check_part(&p, b"part byteZ").unwrap_err().to_string();
        assert!(e.contains("part 3") && e.contains("sha256"), "{e}");
        let e = check_part(&p, b"short").unwrap_err().to_string();
        assert!(e.contains("5 bytes, recorded 10"), "{e}");
    }

    #[test]
    fn only_storage_and_database_failures_are_tried_again() {
        assert!(!retryable(&StagingError::LeaseLost));
        assert!(!retryable(&StagingError::Unknown));
        assert!(!retryable(&StagingError::NotContiguous {
            staged: 1,
            start: 2
        }));
    }
}
