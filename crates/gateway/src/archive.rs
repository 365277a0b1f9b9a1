//! Moves finished recordings from the spool to storage: builds the chain
//! and manifest once, writes the objects (header, original), then the final
//! checkpoint that signs them and the manifest, then the manifest, then the
//! index entries, and only then releases the spool copy.
//! Keys and bytes are deterministic, so a retry after any failure rewrites
//! identical objects. Storage outages are retried with backoff forever;
//! nothing leaves the spool before storage has it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, broadcast, mpsc};

use crate::checkpoint;
use crate::finish::{Sealed, finish_recording};
use crate::lease::Lease;
use crate::signing::SigningKey;
use crate::spool::{EntryDir, EntryState, Spool, write_atomic};
use crate::usage::{Usage, UsageEvent, UsageLog};
use custody_format::chain::{self, Hash};
use custody_format::closing::Closing;
use custody_format::manifest::{
    DerivationStatus, DerivationSummary, DerivedFrom, EntryBuilder, HeaderDoc, Manifest,
    MediaRange, Role,
};
use custody_media::derive::{self, Derivation};
use custody_proto::RecordingState;
use custody_store::{Store, StoreError, layout};

/// The outcome of archiving one recording, broadcast to waiting streams.
#[derive(Debug, Clone)]
pub struct Archived {
    pub recorder: String,
    pub recording_id: String,
    pub manifest_key: String,
    pub chain_head: String,
    pub derivation: Option<custody_proto::DerivationNote>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("spool: {0}")]
    Spool(#[from] std::io::Error),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("spool entry is damaged: {0}")]
    Damaged(String),
    /// Cluster mode: another gateway archives it now, or the database
    /// cannot say who may.
    #[error("cluster: {0}")]
    Cluster(String),
}

impl ArchiveError {
    /// Storage errors are worth retrying (and waiting for another gateway);
    /// a damaged spool entry is not.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            ArchiveError::Store(_) | ArchiveError::Spool(_) | ArchiveError::Cluster(_)
        )
    }
}

type Key = (String, String);

/// A recording to archive, and when it was queued (its completion, or the
/// gateway's start for one found complete in the spool).
type Queued = (Key, std::time::Instant);

#[derive(Clone)]
pub struct Archiver {
    queue: mpsc::UnboundedSender<Queued>,
    /// Recordings queued or being archived: each is handled by exactly one
    /// worker, so two never race on the same spool entry or upload id.
    pending: Arc<std::sync::Mutex<HashSet<Key>>>,
    events: broadcast::Sender<Archived>,
    quarantine_wake: Arc<tokio::sync::Notify>,
}

pub use custody_media::derive::Media;

/// The spool file of a docked recording's derived object `index` (the
/// init segment is object 2, media segments follow it).
fn derived_file_name(role: Role, index: u64) -> String {
    match role {
        Role::Init => derive::INIT_FILE.into(),
        _ => derive::segment_file(index.saturating_sub(3) as usize),
    }
}

struct Worker {
    signer: Arc<SigningKey>,
    media: Option<Media>,
    spool: Spool,
    store: Store,
    usage: UsageLog,
    gateway: String,
    events: broadcast::Sender<Archived>,
    linker: Arc<crate::link::Linker>,
    catalog: Arc<crate::catalog::Catalog>,
    policy: crate::policy::Policy,
    metrics: Arc<crate::metrics::Metrics>,
    staging: Option<Arc<crate::staging::Staging>>,
    ahead: Option<Arc<crate::upload_ahead::UploadsAhead>>,
}

/// What the archiver works with.
pub struct ArchiverParts {
    /// Cluster mode: staged parts of docked uploads, deleted once archived.
    pub staging: Option<Arc<crate::staging::Staging>>,
    /// Single mode: originals whose parts were sent while they arrived.
    pub ahead: Option<Arc<crate::upload_ahead::UploadsAhead>>,
    pub spool: Spool,
    pub store: Store,
    pub usage: UsageLog,
    /// Pipelines for deriving CMAF; `None` when turned off.
    pub media: Option<Media>,
    /// Signs each recording's final checkpoint.
    pub signer: Arc<SigningKey>,
    /// The gateway's name, in manifests.
    pub gateway: String,
    /// Links docked copies to their live recordings.
    pub linker: Arc<crate::link::Linker>,
    /// Lists stored recordings.
    pub catalog: Arc<crate::catalog::Catalog>,
    /// The storage deadline's calendar.
    pub policy: crate::policy::Policy,
    /// Counts archive durations and retries.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Archiver {
    /// Starts `workers` archiving tasks and queues everything the spool
    /// holds that is finished but not yet archived.
    pub fn start(
        parts: ArchiverParts,
        workers: usize,
        tasks: &crate::tasks::Tasks,
    ) -> std::io::Result<Archiver> {
        let ArchiverParts {
            staging,
            ahead,
            spool,
            store,
            usage,
            media,
            signer,
            gateway,
            linker,
            catalog,
            policy,
            metrics,
        } = parts;
        let (tx, rx) = mpsc::unbounded_channel::<Queued>();
        let (events, _) = broadcast::channel(1024);
        let rx = Arc::new(Mutex::new(rx));
        let pending = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let worker = Arc::new(Worker {
            signer,
            media,
            spool: spool.clone(),
            store: store.clone(),
            usage,
            gateway,
            events: events.clone(),
            linker,
            catalog,
            policy,
            metrics,
            staging,
            ahead,
        });
        for _ in 0..workers.max(1) {
            let (w, rx, pending) = (worker.clone(), rx.clone(), pending.clone());
            tasks.spawn("archiver", async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some((key, since)) = next else { return };
                    w.archive_with_retry(&key.0, &key.1, since).await;
                    pending.lock().expect("pending lock").remove(&key);
                }
            });
        }
        let quarantine_wake = Arc::new(tokio::sync::Notify::new());
        tasks.spawn(
            "quarantine upload",
            quarantine_loop(spool.clone(), store, quarantine_wake.clone()),
        );
        let a = Archiver {
            queue: tx,
            pending,
            events,
            quarantine_wake,
        };
        if let Some(staging) = &worker.staging {
            let a2 = a.clone();
            tasks.spawn(
                "staged uploads sweep",
                staging
                    .clone()
                    .sweep(spool.clone(), move |r, id| a2.enqueue(r, id)),
            );
        }
        for (recorder, id, st) in spool.scan()? {
            if st.status == RecordingState::Spooled {
                tracing::info!(recorder, id, "resuming archive of spooled recording");
                a.enqueue(&recorder, &id);
            }
        }
        Ok(a)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Archived> {
        self.events.subscribe()
    }

    /// Queues a recording unless it is already queued or being archived.
    pub fn enqueue(&self, recorder: &str, recording_id: &str) {
        let key = (recorder.to_string(), recording_id.to_string());
        if self
            .pending
            .lock()
            .expect("pending lock")
            .insert(key.clone())
        {
            let _ = self.queue.send((key, std::time::Instant::now()));
        }
    }

    pub fn wake_quarantine(&self) {
        self.quarantine_wake.notify_one();
    }
}

impl Worker {
    /// Cluster mode: the archived recording's staged parts are no longer
    /// needed (called with its lease held). A failure leaves them (and the database row) behind, which
    /// costs space, not evidence.
    async fn forget_staged(&self, recorder: &str, id: &str) {
        if let Some(s) = &self.staging
            && let Err(e) = s.forget(recorder, id).await
        {
            tracing::warn!(recorder, id, "staged parts not removed: {e}");
        }
    }

    async fn archive_with_retry(&self, recorder: &str, id: &str, since: std::time::Instant) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.archive(recorder, id).await {
                // The upload's lease (cluster mode) is held until its
                // staged parts are forgotten.
                Ok(Some((a, header, _lease))) => {
                    self.metrics.docked_archived(since.elapsed());
                    tracing::info!(recorder, id, manifest = %a.manifest_key, "archived");
                    self.usage
                        .record(Usage {
                            device: &header.uploader.device,
                            officer: header.ledger.officer.as_deref(),
                            event: UsageEvent::Archived,
                            recording_id: Some(id),
                            detail: format!(
                                "{recorder}/{id} stored with its manifest {}",
                                a.manifest_key
                            ),
                            peer: None,
                        })
                        .await;
                    let _ = self.events.send(a);
                    self.forget_staged(recorder, id).await;
                    return;
                }
                Ok(None) => return,
                Err(e) if e.is_transient() => {
                    tracing::warn!(recorder, id, "archive failed, retrying in {backoff:?}: {e}");
                    self.metrics
                        .storage()
                        .retried(crate::metrics::Retry::Archive);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(recorder, id, "cannot archive: {e}; left in the spool");
                    return;
                }
            }
        }
    }

    /// Archives one spooled recording; `None` if there was nothing to do.
    async fn archive(
        &self,
        recorder: &str,
        id: &str,
    ) -> Result<Option<(Archived, HeaderDoc, Option<Lease>)>, ArchiveError> {
        let entry = self.spool.entry(recorder, id);
        let Some(mut st) = load(&entry).await? else {
            return Ok(None);
        };
        if st.status != RecordingState::Spooled {
            return Ok(None);
        }
        // Cluster mode: a docked upload is archived by one gateway at a
        // time, under its lease, and not again once another gateway did.
        let lease = match &self.staging {
            Some(staging) => match staging.claim(&entry, recorder, id).await {
                Ok(crate::staging::Claim::Archive(lease)) => Some(lease),
                Ok(crate::staging::Claim::Stored {
                    manifest_key,
                    chain_head,
                }) => {
                    // A device waiting here for its recording is told where
                    // it is stored.
                    let _ = self.events.send(Archived {
                        recorder: recorder.to_string(),
                        recording_id: id.to_string(),
                        manifest_key,
                        chain_head,
                        derivation: None,
                    });
                    return Ok(None);
                }
                Err(e) => return Err(ArchiveError::Cluster(e.to_string())),
            },
            None => None,
        };
        let header_bytes = tokio::fs::read(entry.header()).await?;
        let header: HeaderDoc = serde_json::from_slice(&header_bytes)
            .map_err(|e| ArchiveError::Damaged(format!("header.json: {e}")))?;
        let size = st
            .size
            .ok_or_else(|| ArchiveError::Damaged("spooled entry without size".into()))?;
        let sha = st
            .sha256
            .as_deref()
            .and_then(chain::parse_hex)
            .ok_or_else(|| ArchiveError::Damaged("spooled entry without sha256".into()))?;

        let manifest_bytes = match tokio::fs::read(entry.manifest()).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let derivation = self.derivation(&entry, &header).await?;
                let m = self.build_manifest(&st, &header, &header_bytes, size, &sha, &derivation);
                let b = m.to_bytes();
                let (p, b2) = (entry.manifest(), b.clone());
                tokio::task::spawn_blocking(move || write_atomic(&p, &b2))
                    .await
                    .map_err(|e| ArchiveError::Damaged(e.to_string()))??;
                b
            }
            Err(e) => return Err(e.into()),
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| ArchiveError::Damaged(format!("manifest.json: {e}")))?;

        for obj in &manifest.objects {
            let h = chain::parse_hex(&obj.sha256)
                .ok_or_else(|| ArchiveError::Damaged("manifest hash".into()))?;
            match obj.role {
                Role::Header => {
                    self.store
                        .put_bytes(&obj.key, Bytes::from(header_bytes.clone()), &h)
                        .await?
                }
                Role::Original => self.put_original(&entry, recorder, id, obj, &h).await?,
                Role::Init | Role::Segment => {
                    let file = derived_file_name(obj.role, obj.index);
                    self.store
                        .put_file(
                            &obj.key,
                            &entry.derived().join(file),
                            obj.size,
                            &h,
                            Some(&entry.multipart_journal()),
                        )
                        .await?
                }
                Role::Annotation | Role::RawChunk => {
                    return Err(ArchiveError::Damaged(
                        "unexpected annotation object in a new manifest".into(),
                    ));
                }
            }
        }
        // The gateway's signature over the whole chain and the manifest,
        // then the manifest: a docked recording is closed the moment it is
        // archived.
        let place = checkpoint::Place {
            seq: 0,
            previous: None,
            journal: None,
        };
        checkpoint::seal(&self.store, &self.signer, &manifest, &manifest_bytes, place).await?;

        // A docked copy of a live recording: the live recording is to name
        // it. Recorded before the entry counts as archived, so a crash here
        // only repeats this step.
        if let Some(c) = &header.copy_of {
            let pending = crate::link::PendingLink {
                recorder: recorder.to_string(),
                live_id: c.recording_id.clone(),
                docked_id: id.to_string(),
                docked_manifest_key: st.manifest_key.clone(),
                original_sha256: hex::encode(sha),
            };
            let linker = self.linker.clone();
            tokio::task::spawn_blocking(move || linker.queue(&pending))
                .await
                .map_err(|e| ArchiveError::Damaged(e.to_string()))??;
        }
        finish_recording(
            &self.store,
            &self.catalog,
            Sealed {
                manifest: &manifest,
                manifest_key: &st.manifest_key,
                size,
                sha256: Some(&sha),
            },
        )
        .await?;
        let manifest_key = st.manifest_key.clone();
        st.status = RecordingState::Archived;
        st.chain_head = Some(manifest.chain_head.clone());
        let e2 = entry.clone();
        tokio::task::spawn_blocking(move || {
            e2.save_state(&st)?;
            e2.release_data()
        })
        .await
        .map_err(|e| ArchiveError::Damaged(e.to_string()))??;
        Ok(Some((
            Archived {
                recorder: recorder.to_string(),
                recording_id: id.to_string(),
                manifest_key,
                derivation: manifest
                    .derivation
                    .as_ref()
                    .map(|d| custody_proto::DerivationNote {
                        status: d.status.to_string(),
                        segments: manifest
                            .objects
                            .iter()
                            .filter(|o| o.role == Role::Segment)
                            .count() as u64,
                        reason: d.reason.clone(),
                    }),
                chain_head: manifest.chain_head,
            },
            header,
            lease,
        )))
    }

    /// Stores the original: completes the upload sent while it arrived,
    /// if there is one, or sends the whole file.
    async fn put_original(
        &self,
        entry: &EntryDir,
        recorder: &str,
        id: &str,
        obj: &custody_format::manifest::ObjectEntry,
        sha: &Hash,
    ) -> Result<(), StoreError> {
        let ahead = match &self.ahead {
            Some(a) => a.take(recorder, id, &obj.key).await,
            None => None,
        };
        if let Some(u) = ahead {
            let sent = u.sent();
            match self
                .store
                .finish_upload(u, &entry.data(), obj.size, sha)
                .await
            {
                Ok(()) => {
                    self.metrics.sent_ahead(sent);
                    tracing::info!(
                        recorder,
                        id,
                        sent_ahead = sent,
                        size = obj.size,
                        "original completed from the parts sent while it arrived"
                    );
                    return Ok(());
                }
                // Aborted; sent whole below (a failure there is retried).
                Err(e) => tracing::warn!(
                    recorder,
                    id,
                    "completing the original sent ahead failed: {e}; sending it whole"
                ),
            }
        }
        self.store
            .put_final_file(
                &obj.key,
                &entry.data(),
                obj.size,
                sha,
                Some(&entry.multipart_journal()),
            )
            .await
    }

    /// The derivation for a spooled original: the recorded one, or a new
    /// one made now (CPU-bound, on a blocking thread).
    async fn derivation(
        &self,
        entry: &EntryDir,
        header: &HeaderDoc,
    ) -> Result<Derivation, ArchiveError> {
        let dir = entry.derived();
        let d2 = dir.clone();
        if let Some(d) = tokio::task::spawn_blocking(move || derive::load(&d2))
            .await
            .map_err(|e| ArchiveError::Damaged(e.to_string()))??
        {
            return Ok(d);
        }
        let Some(media) = self.media.clone() else {
            return Ok(Derivation::None {
                input: None,
                reason: "derivation is turned off on this gateway".into(),
            });
        };
        let (data, name) = (entry.data(), header.meta.file_name.clone());
        let started = std::time::Instant::now();
        let d = tokio::task::spawn_blocking(move || {
            derive::derive(
                &media.registry,
                &data,
                name.as_deref(),
                &dir,
                &media.options,
            )
        })
        .await
        .map_err(|e| ArchiveError::Damaged(e.to_string()))??;
        tracing::info!(
            recorder = %header.recorder,
            id = %header.recording_id,
            status = d.status(),
            secs = started.elapsed().as_secs_f64(),
            "derivation"
        );
        Ok(d)
    }

    fn build_manifest(
        &self,
        st: &EntryState,
        header: &HeaderDoc,
        header_bytes: &[u8],
        size: u64,
        sha: &Hash,
        derivation: &Derivation,
    ) -> Manifest {
        // The recording is whole in the gateway's custody (durable in its
        // spool) from now: that is when it counts as stored.
        let now = custody_format::clock::now();
        docked_manifest(Docked {
            header,
            header_bytes,
            prefix: &st.prefix,
            declared_sha256: st.declared_sha256.as_deref(),
            size,
            sha256: sha,
            derivation,
            gateway: &self.gateway,
            stored_at: now,
            deadline: crate::policy::deadline::assess(&self.policy, header, None, now),
        })
    }
}

/// What a docked recording's manifest is made of.
pub(crate) struct Docked<'a> {
    pub header: &'a HeaderDoc,
    /// The header's exact bytes (object 0).
    pub header_bytes: &'a [u8],
    pub prefix: &'a str,
    /// The SHA-256 the device declared for its file, if it did.
    pub declared_sha256: Option<&'a str>,
    /// The original's size and SHA-256.
    pub size: u64,
    pub sha256: &'a Hash,
    pub derivation: &'a Derivation,
    /// The gateway's name.
    pub gateway: &'a str,
    /// When the recording counts as stored (whole in the spool).
    pub stored_at: time::OffsetDateTime,
    /// Its storage deadline, assessed at `stored_at`.
    pub deadline: crate::policy::deadline::DeadlineRecord,
}

/// The key of a docked recording's original (object 1), from the name the
/// device gave its file.
pub(crate) fn original_key(prefix: &str, file_name: Option<&str>) -> String {
    let ext = layout::original_ext(file_name);
    layout::object_key(prefix, 1, Role::Original, &ext)
}

/// The manifest of a docked recording: header, original and derived
/// objects chained in that order. Pure: every time is passed in.
pub(crate) fn docked_manifest(d: Docked<'_>) -> Manifest {
    let Docked {
        header,
        header_bytes,
        prefix,
        declared_sha256,
        size,
        sha256: sha,
        derivation,
        gateway,
        stored_at: now,
        deadline,
    } = d;
    let mut b = EntryBuilder::new();
    let hh = chain::sha256(header_bytes);
    b.push(
        layout::object_key(prefix, 0, Role::Header, "json"),
        Role::Header,
        header_bytes.len() as u64,
        &hh,
    )
    .content_type = Some("application/json".into());
    let original_key = original_key(prefix, header.meta.file_name.as_deref());
    b.push(original_key.clone(), Role::Original, size, sha);
    let from = DerivedFrom {
        index: 1,
        key: original_key,
        sha256: hex::encode(sha),
    };
    let summary = match derivation {
        Derivation::Derived {
            input,
            pipeline,
            tracks,
            init,
            segments,
            recipe,
        } => {
            for (i, f) in std::iter::once(init).chain(segments).enumerate() {
                let role = if i == 0 { Role::Init } else { Role::Segment };
                let index = 2 + i as u64;
                let e = b.push(
                    layout::object_key(prefix, index, role, layout::media_ext(role)),
                    role,
                    f.size,
                    &f.sha256,
                );
                e.content_type = Some("video/mp4".into());
                e.derived_from = Some(from.clone());
                if role == Role::Segment {
                    e.media = Some(MediaRange {
                        start: f.start,
                        end: f.end,
                    });
                }
            }
            DerivationSummary {
                status: DerivationStatus::Derived,
                input: Some(input.clone()),
                pipeline: Some(pipeline.clone()),
                tracks: tracks.clone(),
                reason: custody_media::remux::left_out_reason(tracks),
                recipe: recipe.clone(),
                holes: Vec::new(),
            }
        }
        Derivation::None { input, reason } => DerivationSummary {
            status: DerivationStatus::None,
            input: input.clone(),
            pipeline: None,
            tracks: Vec::new(),
            reason: Some(reason.clone()),
            recipe: None,
            holes: Vec::new(),
        },
        Derivation::Failed {
            input,
            tracks,
            reason,
        } => DerivationSummary {
            status: DerivationStatus::Failed,
            input: input.clone(),
            pipeline: None,
            tracks: tracks.clone(),
            reason: Some(reason.clone()),
            recipe: None,
            holes: Vec::new(),
        },
    };
    let chain_head = b.head_hex();
    let objects = b.into_entries();
    Manifest::build(Closing {
        header,
        prefix,
        objects,
        chain_head,
        finalized_at: custody_format::time_fmt::rfc3339(now),
        gateway,
        declared_sha256,
        derivation: summary,
        live: None,
        live_end: None,
        deadline: Some(deadline),
    })
}

async fn load(entry: &EntryDir) -> std::io::Result<Option<EntryState>> {
    let e = entry.clone();
    tokio::task::spawn_blocking(move || e.load_state())
        .await
        .map_err(std::io::Error::other)?
}

/// Uploads quarantined failed uploads to `quarantine/…` in storage and then
/// removes the local copy.
async fn quarantine_loop(spool: Spool, store: Store, wake: Arc<tokio::sync::Notify>) {
    loop {
        let dirs = quarantine_dirs(&spool.root().join("quarantine"));
        let mut failed = false;
        for (rel, dir) in dirs {
            match upload_dir(&store, &rel, &dir).await {
                Ok(()) => {
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                    tracing::info!(dir = %rel, "quarantined upload stored");
                }
                Err(e) => {
                    tracing::warn!(dir = %rel, "quarantine upload failed, will retry: {e}");
                    failed = true;
                    break;
                }
            }
        }
        let wait = if failed { 5 } else { 30 };
        let _ = tokio::time::timeout(Duration::from_secs(wait), wake.notified()).await;
    }
}

/// `(directory under quarantine/, local dir)` for every complete quarantine directory
/// (one with its `report.json`, which is written last).
fn quarantine_dirs(base: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let walk = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for rec in walk(base) {
        for id in walk(&rec) {
            for stamp in walk(&id) {
                if stamp.join("report.json").is_file() {
                    let rel = stamp
                        .strip_prefix(base)
                        .expect("under base")
                        .to_string_lossy()
                        .into_owned();
                    out.push((rel, stamp));
                }
            }
        }
    }
    out
}

async fn upload_dir(store: &Store, rel: &str, dir: &Path) -> Result<(), ArchiveError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    // The report goes last: its presence in storage means the rest is there.
    names.sort_by_key(|n| (n == "report.json", n.clone()));
    for name in names {
        let path = dir.join(&name);
        let (size, h) = {
            let p = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(p)?;
                custody_store::hash_reader(&mut f)
            })
            .await
            .map_err(|e| ArchiveError::Damaged(e.to_string()))??
        };
        // The journal's name starts with a dot: it is not uploaded itself.
        let journal = dir.join(".multipart");
        store
            .put_file(
                &layout::quarantine_key(rel, &name),
                &path,
                size,
                &h,
                Some(&journal),
            )
            .await?;
    }
    Ok(())
}
