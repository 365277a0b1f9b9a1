//! `upload`: receive a file as a recording's original.
//!
//! The stream reads data frames into a bounded channel; a blocking writer
//! appends them to the spool, hashing as it goes, and reports what is
//! durable; the stream turns that into `ack`s. QUIC flow control plus the
//! bounded channel make a slow disk slow the device down instead of
//! filling memory. After `finish` the SHA-256 is compared end to end.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{RecvStream, SendStream};
use tokio::sync::{mpsc, watch};

use super::Session;
use super::frames::{
    Failure, blocking, decode_finish, fail, next_frame, reply, spool_failure, stop,
};
use super::header::{build_header, check_device_clock};
use super::status::resolve_recorder;
use crate::lease::{Lease, LeaseError};
use crate::metrics::{self, Counter, Kind};
use crate::spool::writer::{OriginalWriter, SyncPace, run_writer};
use crate::spool::{EntryDir, EntryState, write_atomic};
use crate::staging::{self, Staged, StagingError};
use crate::usage::UsageEvent;
use custody_format::chain::Hash;
use custody_format::layout;
use custody_format::limits;
use custody_format::manifest::{CopyOf, HeaderDoc};
use custody_format::metadata::RecordingMeta;
use custody_media::derive;
use custody_proto::frame::Frame;
use custody_proto::{RecordingState, Reply, StreamError};

/// The recording an upload stream was admitted to: who it is for, the id
/// it is stored under and its spool entry as it stood when the stream
/// began.
struct Upload<'a> {
    s: &'a Arc<Session>,
    recorder: String,
    /// The device's id, or `<id>.docked` for the copy of a live recording.
    id: String,
    entry: EntryDir,
    st: EntryState,
}

/// An upload admitted and ready to receive: the recording, the claim on
/// it, the writer (none when it was complete before this stream) and the
/// offset the device resumes from.
struct Admitted<'a> {
    upload: Upload<'a>,
    lock: crate::shared::RecordingLock,
    writer: Option<OriginalWriter>,
    offset: u64,
    /// Cluster mode: the upload's lease, and where its staging stands
    /// (none once the recording is complete).
    staging: Option<(Lease, Option<Staged>)>,
}

/// What arrived on a stream that ended with `finish`, and what the device
/// declared in it.
struct Arrived {
    total: u64,
    hash: Hash,
    declared_size: u64,
    declared_hash: Hash,
    /// The declared hash as the device sent it.
    declared: String,
}

impl Arrived {
    /// Whether the bytes are what the device declared, in `finish` and
    /// (if it did) in the request.
    fn matches(&self, requested_size: Option<u64>) -> bool {
        requested_size.is_none_or(|n| n == self.declared_size)
            && self.total == self.declared_size
            && self.hash == self.declared_hash
    }
}

pub async fn run(
    s: &Arc<Session>,
    send: &mut SendStream,
    mut recv: RecvStream,
    meta: RecordingMeta,
    size: Option<u64>,
    device_clock: Option<String>,
) -> Result<(), Failure> {
    let Admitted {
        upload,
        lock,
        writer,
        offset,
        staging,
    } = match admit(s, &meta, size, device_clock).await {
        Ok(a) => a,
        Err(f) => {
            stop(&mut recv, &f);
            return Err(f);
        }
    };
    reply(
        send,
        &Reply::Accepted {
            recorder: upload.recorder.clone(),
            recording_id: upload.id.clone(),
            offset,
            state: upload.st.status,
            manifest_key: upload.st.manifest_key.clone(),
        },
    )
    .await?;
    let Some(writer) = writer else {
        drop(lock);
        // The archiver takes the upload's lease itself (cluster mode).
        drop(staging);
        return upload
            .already_complete(send, recv, meta.file_name.as_deref())
            .await;
    };
    upload.started(offset).await;

    // A fresh upload of a kind that can be read in order is remuxed while
    // it arrives; anything else is remuxed by the archiver once complete.
    let streaming = (offset == 0)
        .then(|| s.gw.media.clone())
        .flatten()
        .map(|m| (m, meta.file_name.clone()));
    let (received, streaming) = receive(
        s,
        send,
        recv,
        Incoming {
            entry: &upload.entry,
            writer,
            offset,
            declared: size,
            lock: &lock,
            streaming,
            ahead: original_ahead(&upload, meta.file_name.as_deref()),
            staging: staging.as_ref().and_then(|(lease, from)| {
                Some(ToStage {
                    lease,
                    from: (*from)?,
                    recorder: &upload.recorder,
                    id: &upload.id,
                })
            }),
        },
    )
    .await;
    let abandon = |st: Option<derive::Streaming>| async move {
        if let Some(st) = st {
            let _ = tokio::task::spawn_blocking(move || st.abandon()).await;
        }
    };
    let arrived = match received {
        Ok(Some((total, hash, (declared_size, declared_hash, declared)))) => Arrived {
            total,
            hash,
            declared_size,
            declared_hash,
            declared,
        },
        // The device ended the stream early; what arrived is durable and
        // the next upload of this recording resumes from it.
        Ok(None) => {
            abandon(streaming).await;
            return Ok(());
        }
        Err(f) => {
            abandon(streaming).await;
            return Err(f);
        }
    };
    if !arrived.matches(size) {
        abandon(streaming).await;
    } else if let Some(st) = streaming {
        // Wait for the remux to catch up with the last bytes; its result is
        // recorded in the spool for the archiver.
        let total = arrived.total;
        let r = tokio::task::spawn_blocking(move || st.finish(total)).await;
        if !matches!(r, Ok(Ok(_))) {
            tracing::warn!(recorder = %upload.recorder, id = %upload.id, "streaming derivation did not finish; the archiver derives again");
        }
    }
    // Every byte is staged; the archiver takes the lease itself.
    drop(staging);
    upload
        .conclude(send, arrived, size, meta.file_name.as_deref(), lock)
        .await
}

/// Checks the request, finds the recording it goes to, claims it and opens
/// its spool entry (and, if it is still receiving, the writer).
async fn admit<'a>(
    s: &'a Arc<Session>,
    meta: &RecordingMeta,
    size: Option<u64>,
    device_clock: Option<String>,
) -> Result<Admitted<'a>, Failure> {
    meta.validate()
        .map_err(|e| fail(StreamError::InvalidMetadata, e.to_string()))?;
    check_device_clock(device_clock.as_deref())?;
    if let Some(n) = size
        && n > limits::MAX_FILE_SIZE
    {
        return Err(fail(
            StreamError::TooLarge,
            format!("{n} bytes is over the limit of {}", limits::MAX_FILE_SIZE),
        ));
    }
    let recorder = resolve_recorder(s, meta.recorder.as_deref())?;
    // A docked file naming a live recording is that recording's local
    // copy: stored beside it as a recording of its own, linked to it, and
    // never appended to the live original.
    let (id, copy_of) = if live_recording_exists(&s.gw, &recorder, &meta.recording_id).await? {
        let copy_of = CopyOf {
            relation: custody_format::manifest::Relation::CopyOf,
            recorder: recorder.clone(),
            recording_id: meta.recording_id.clone(),
        };
        let docked = custody_format::link::docked_id(&meta.recording_id);
        if !custody_format::metadata::valid_id(&docked) {
            return Err(fail(
                StreamError::InvalidMetadata,
                format!(
                    "recording_id: {} is streamed live; its docked copy needs an id of at most {} characters with {:?} added",
                    meta.recording_id,
                    limits::MAX_ID_LEN,
                    custody_format::link::DOCKED_SUFFIX
                ),
            ));
        }
        (docked, Some(copy_of))
    } else {
        (meta.recording_id.clone(), None)
    };
    let claimed = s.gw.claim_recording(&recorder, &id, s.device()).await;
    // Whoever holds it now, only the device that started it may continue it.
    super::owner::ensure_owner(s, &recorder, &id, super::owner::Mode::Upload).await?;
    let Some(lock) = claimed else {
        return Err(fail(
            StreamError::RecordingBusy,
            format!("recording {recorder}/{id} is being received on another stream"),
        ));
    };
    let entry = s.gw.spool.entry(&recorder, &id);
    // Cluster mode: the upload is this gateway's while it holds the lease,
    // and its spool entry is made to hold what the cluster staged of it
    // (all of it, if another gateway received it until now).
    let lease = match &s.gw.staging {
        Some(st) => {
            let lease = st
                .lease(&recorder, &id)
                .await
                .map_err(|e| lease_refusal(&recorder, &id, e))?;
            st.restore(&entry, &recorder, &id)
                .await
                .map_err(|e| staging_failure("restoring the upload from its staged parts", e))?;
            super::owner::ensure_owner(s, &recorder, &id, super::owner::Mode::Upload).await?;
            Some(lease)
        }
        None => None,
    };
    let target = Target {
        recorder: &recorder,
        id: &id,
        copy_of,
    };
    let (st, offset) = open_entry(s, &entry, target, meta, size, device_clock).await?;
    // The writer re-reads (hashes) what is durable before the device may
    // send more: a resume of a large file takes a moment, and bytes sent
    // meanwhile would only wait in memory, lost if the gateway died then.
    let writer = if st.status == RecordingState::Receiving {
        let e = entry.clone();
        let space = s.gw.space.clone();
        Some(
            blocking(move || {
                space.check()?;
                OriginalWriter::open(&e)
            })
            .await?,
        )
    } else {
        None
    };
    // Opening may have kept bytes the last gateway process wrote and never
    // acknowledged (see `OriginalWriter::open`): the device resumes after them.
    let offset = writer.as_ref().map_or(offset, |w| w.durable());
    let staging = match (lease, &s.gw.staging) {
        (Some(lease), Some(st)) if writer.is_some() => {
            let from = st
                .begin(&entry, &recorder, &id)
                .await
                .map_err(|e| staging_failure("recording the upload in the cluster", e))?;
            Some((lease, Some(from)))
        }
        (lease, _) => lease.map(|l| (l, None)),
    };
    Ok(Admitted {
        upload: Upload {
            s,
            recorder,
            id,
            entry,
            st,
        },
        lock,
        writer,
        offset,
        staging,
    })
}

/// Why a cluster gateway cannot take an upload now.
fn lease_refusal(recorder: &str, id: &str, e: LeaseError) -> Failure {
    match e {
        LeaseError::HeldBy { holder, until } => fail(
            StreamError::RecordingBusy,
            format!(
                "recording {recorder}/{id} is being received by gateway {holder} (its lease runs until {until})"
            ),
        ),
        LeaseError::Abandoned { holder, since } => fail(
            StreamError::RecordingBusy,
            format!(
                "recording {recorder}/{id} was being received by gateway {holder} until {since}; try again"
            ),
        ),
        LeaseError::Db(e) => fail(
            StreamError::StorageFailure,
            format!("the cluster database cannot be reached: {e}"),
        ),
    }
}

/// A staging failure as the device is told it: all are worth retrying
/// (on this gateway or another).
fn staging_failure(what: &str, e: StagingError) -> Failure {
    let code = match e {
        StagingError::LeaseLost => StreamError::RecordingBusy,
        _ => StreamError::StorageFailure,
    };
    fail(code, format!("{what}: {e}"))
}

impl Upload<'_> {
    /// Records that receiving starts (or resumes) at `offset`.
    async fn started(&self, offset: u64) {
        let (recorder, id) = (&self.recorder, &self.id);
        self.s
            .usage(
                if offset == 0 {
                    UsageEvent::UploadStarted
                } else {
                    UsageEvent::UploadResumed
                },
                Some(id),
                format!("receiving {recorder}/{id} from byte {offset}"),
            )
            .await;
        self.s.gw.metrics.docked_upload(if offset == 0 {
            metrics::Upload::Started
        } else {
            metrics::Upload::Resumed
        });
    }

    /// After `finish`: spooled and handed to the archiver if the bytes are
    /// what the device declared, else quarantined and refused. `lock` is
    /// held until the entry is settled either way.
    async fn conclude(
        self,
        send: &mut SendStream,
        a: Arrived,
        requested_size: Option<u64>,
        file_name: Option<&str>,
        lock: crate::shared::RecordingLock,
    ) -> Result<(), Failure> {
        // The size announced with the request must hold too.
        if let Some(n) = requested_size
            && n != a.declared_size
        {
            let reason = format!(
                "the upload request declared {n} bytes but finish declares {}",
                a.declared_size
            );
            return self
                .refuse(send, &a, StreamError::SizeMismatch, reason)
                .await;
        }
        if a.matches(requested_size) {
            keep_file_name(self.s, &self.recorder, &self.id, file_name).await?;
            return self.spooled(send, a, lock).await;
        }
        let (code, reason) = if a.total != a.declared_size {
            (
                StreamError::SizeMismatch,
                format!(
                    "received {} bytes but the device declared {}",
                    a.total, a.declared_size
                ),
            )
        } else {
            (
                StreamError::Sha256Mismatch,
                format!(
                    "received bytes hash to {} but the device declared {}",
                    hex::encode(a.hash),
                    a.declared
                ),
            )
        };
        self.refuse(send, &a, code, reason).await
    }

    /// Quarantines what arrived and tells the device it failed, and why.
    async fn refuse(
        self,
        send: &mut SendStream,
        a: &Arrived,
        code: StreamError,
        reason: String,
    ) -> Result<(), Failure> {
        self.quarantine(a, &reason).await?;
        reply(
            send,
            &Reply::Verified {
                size: a.total,
                sha256: hex::encode(a.hash),
                matched: false,
                state: RecordingState::Failed,
            },
        )
        .await?;
        Err(fail(code, reason))
    }
}

async fn live_recording_exists(
    gw: &Arc<crate::shared::Gateway>,
    recorder: &str,
    id: &str,
) -> Result<bool, Failure> {
    let storage = |e: custody_store::StoreError| {
        fail(
            StreamError::StorageFailure,
            format!(
                "storage cannot be read to tell whether {recorder}/{id} was streamed live: {e}"
            ),
        )
    };
    if gw.live.get(recorder, id).is_some() {
        return Ok(true);
    }
    let entry = gw.spool.entry(recorder, id);
    let ack = entry.ack();
    let in_spool = blocking(move || crate::live::LiveRecording::load_state(&entry)).await?;
    if in_spool.is_some() {
        return Ok(true);
    }
    // Named by its content: never a live id. A docked upload of this id
    // already in the spool: decided when it began (a copy would be spooled
    // under its `.docked` id). Neither needs storage, so both go on while
    // storage is down.
    if custody_format::metadata::is_content_id(id) || ack.exists() {
        return Ok(false);
    }
    match custody_verify::locate::stored(&gw.store, recorder, id).await {
        Ok(found) => Ok(found.is_some_and(|f| f.manifest.live.is_some())),
        Err(custody_verify::locate::LocateError::Store(e)) => Err(storage(e)),
        // The index leads elsewhere: not a live recording of this id that
        // can be told; the upload is stored under its own id, and
        // archiving keeps both if the id turns out to be taken (§6).
        Err(custody_verify::locate::LocateError::Mismatch(why)) => {
            tracing::warn!(%recorder, %id, "{why}");
            Ok(false)
        }
    }
}

/// The recording an upload goes to.
struct Target<'a> {
    recorder: &'a str,
    /// The recording id it is stored under (the device's, or `<id>.docked`
    /// for the copy of a live recording).
    id: &'a str,
    copy_of: Option<CopyOf>,
}

/// Finds or creates the spool entry; returns it with the offset to resume from.
async fn open_entry(
    s: &Arc<Session>,
    entry: &EntryDir,
    target: Target<'_>,
    meta: &RecordingMeta,
    size: Option<u64>,
    device_clock: Option<String>,
) -> Result<(EntryState, u64), Failure> {
    let recorder = target.recorder;
    let e = entry.clone();
    let existing = blocking(move || {
        let st = e.load_state()?;
        let durable = e.durable()?;
        Ok((st, durable))
    })
    .await?;
    match existing {
        (Some(st), durable) => match st.status {
            RecordingState::Receiving | RecordingState::Unknown => Ok((st, durable)),
            RecordingState::Spooled | RecordingState::Archived => {
                let n = st.size.unwrap_or(durable);
                Ok((st, n))
            }
            RecordingState::Failed => {
                // A new attempt after a failed one (already quarantined).
                let mut st = st;
                st.status = RecordingState::Receiving;
                st.size = None;
                st.sha256 = None;
                st.declared_sha256 = None;
                st.reason = None;
                let (e, st2) = (entry.clone(), st.clone());
                blocking(move || {
                    let _ = std::fs::remove_file(e.ack());
                    let _ = std::fs::remove_file(e.data());
                    e.save_state(&st2)
                })
                .await?;
                Ok((st, 0))
            }
        },
        (None, _) => {
            if let Some(loc) = s.gw.find_archived(recorder, target.id).await {
                let st = EntryState {
                    status: RecordingState::Archived,
                    prefix: loc.prefix,
                    manifest_key: loc.manifest_key,
                    size: Some(loc.size),
                    sha256: Some(loc.sha256),
                    declared_sha256: None,
                    chain_head: Some(loc.chain_head),
                    reason: None,
                };
                let n = loc.size;
                return Ok((st, n));
            }
            let now = custody_format::clock::now();
            let mut header = build_header(s, recorder, meta, size, now, device_clock.as_deref())?;
            header.recording_id = target.id.to_string();
            header.copy_of = target.copy_of;
            let prefix = layout::recording_prefix(
                meta.category.as_deref(),
                now.to_offset(s.gw.offset),
                recorder,
                target.id,
            );
            let st = EntryState {
                status: RecordingState::Receiving,
                manifest_key: layout::manifest_key(&prefix),
                prefix,
                size: None,
                sha256: None,
                declared_sha256: None,
                chain_head: None,
                reason: None,
            };
            let (e, st2, hb) = (entry.clone(), st.clone(), header.to_bytes());
            blocking(move || e.create(&hb, &st2)).await?;
            Ok((st, 0))
        }
    }
}

/// A parsed `finish`: declared size, hash, and the hash as sent.
type Declared = (u64, Hash, String);

enum ReadOutcome {
    Finished(Declared),
    Ended,
    Failed(Failure),
}

/// Reads data frames into the writer's channel until `finish`.
async fn read_data(
    mut recv: RecvStream,
    tx: mpsc::Sender<Bytes>,
    mut offset: u64,
    declared: Option<u64>,
    received: Counter,
    mut staged: Option<watch::Receiver<u64>>,
) -> ReadOutcome {
    let failed = |recv: &mut RecvStream, f: Failure| {
        stop(recv, &f);
        ReadOutcome::Failed(f)
    };
    loop {
        let f = match next_frame(&mut recv).await {
            Ok(f) => f,
            Err(f) => return failed(&mut recv, f),
        };
        match f {
            None => return ReadOutcome::Ended,
            Some(Frame::Data(d)) => {
                received.inc_by(d.len() as u64);
                let end = offset + d.len() as u64;
                if end > limits::MAX_FILE_SIZE {
                    return failed(
                        &mut recv,
                        fail(
                            StreamError::TooLarge,
                            format!("file exceeds {} bytes", limits::MAX_FILE_SIZE),
                        ),
                    );
                }
                if let Some(n) = declared
                    && end > n
                {
                    return failed(
                        &mut recv,
                        fail(
                            StreamError::SizeMismatch,
                            format!("data goes past the declared size of {n} bytes"),
                        ),
                    );
                }
                // Cluster mode: the spool runs at most `MAX_LEAD` ahead of
                // storage; past that the device waits (flow control).
                if let Some(g) = staged.as_mut() {
                    while end > *g.borrow_and_update() + staging::MAX_LEAD {
                        if g.changed().await.is_err() {
                            break;
                        }
                    }
                }
                if tx.send(d).await.is_err() {
                    return failed(
                        &mut recv,
                        fail(StreamError::StorageFailure, "the spool writer stopped"),
                    );
                }
                offset = end;
            }
            Some(Frame::Msg(m)) => {
                return match decode_finish(&m) {
                    Ok(f) => ReadOutcome::Finished(f),
                    Err(f) => failed(&mut recv, f),
                };
            }
        }
    }
}

/// What `receive` works on.
struct Incoming<'a> {
    entry: &'a EntryDir,
    /// Opened on the entry, positioned after its durable bytes.
    writer: OriginalWriter,
    offset: u64,
    declared: Option<u64>,
    lock: &'a crate::shared::RecordingLock,
    /// Remux while receiving, if the kind allows: pipelines and file name.
    streaming: Option<(derive::Media, Option<String>)>,
    /// Cluster mode: the upload's lease and where its staging stands;
    /// bytes are acknowledged once staged, not once durable in the spool.
    staging: Option<ToStage<'a>>,
    /// Single mode: the original to send to storage while it arrives.
    ahead: Option<crate::upload_ahead::Original>,
}

/// Single mode: what to send ahead of `upload`'s original (named as the
/// archiver will name it; if the names differ the archiver sends it whole).
fn original_ahead(
    upload: &Upload<'_>,
    file_name: Option<&str>,
) -> Option<crate::upload_ahead::Original> {
    upload.s.gw.ahead.as_ref()?;
    Some(crate::upload_ahead::Original {
        recorder: upload.recorder.clone(),
        id: upload.id.clone(),
        key: crate::archive::original_key(&upload.st.prefix, file_name),
        journal: upload.entry.multipart_journal(),
        data: upload.entry.data(),
    })
}

/// Cluster mode: the upload to stage, under its lease, from where.
struct ToStage<'a> {
    lease: &'a Lease,
    from: Staged,
    recorder: &'a str,
    id: &'a str,
}

/// Receives data until `finish` or the end of the stream, acknowledging
/// durable bytes as the writer reports them. Returns only after the
/// writer has finished, so the spool entry is quiescent when the
/// recording lock is released.
async fn receive(
    s: &Arc<Session>,
    send: &mut SendStream,
    recv: RecvStream,
    inc: Incoming<'_>,
) -> (
    Result<Option<(u64, Hash, Declared)>, Failure>,
    Option<derive::Streaming>,
) {
    let mut derivation: Option<derive::Streaming> = None;
    let r = receive_inner(s, send, recv, inc, &mut derivation).await;
    (r, derivation)
}

async fn receive_inner(
    s: &Arc<Session>,
    send: &mut SendStream,
    recv: RecvStream,
    inc: Incoming<'_>,
    derivation: &mut Option<derive::Streaming>,
) -> Result<Option<(u64, Hash, Declared)>, Failure> {
    let Incoming {
        entry,
        writer,
        offset,
        declared,
        lock,
        mut streaming,
        staging,
        ahead,
    } = inc;
    // One frame (at most `MAX_DATA_LEN`) waits while the writer appends the
    // one before: what a killed gateway held in memory, and so what the
    // device sends again, stays small.
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (dtx, mut drx) = watch::channel(offset);
    let ack_bytes = s.gw.cfg.gateway.ack_bytes;
    let space = s.gw.space.clone();
    let pace = SyncPace::upload(ack_bytes);
    let wjob = tokio::task::spawn_blocking(move || run_writer(writer, rx, dtx, pace, &space));
    let received = s.gw.metrics.received(Kind::Docked);
    let stager = match (staging, &s.gw.staging) {
        (Some(t), Some(st)) => {
            Some(st.stager(t.lease, t.recorder, t.id, entry.data(), t.from, drx.clone()))
        }
        _ => None,
    };
    if let (Some(o), Some(a)) = (ahead, &s.gw.ahead) {
        a.follow(o, drx.clone());
    }
    let mut staged_rx = stager.as_ref().map(|st| st.staged.clone());
    let mut reader = tokio::spawn(read_data(
        recv,
        tx,
        offset,
        declared,
        received,
        staged_rx.clone(),
    ));
    let mut acks = s.gw.metrics.acknowledged(Kind::Docked, offset);
    let mut acked = offset;
    let mut send_failed: Option<Failure> = None;
    let mut writer_done = false;
    let outcome = loop {
        tokio::select! {
            r = &mut reader => break r.unwrap_or_else(|e| ReadOutcome::Failed(fail(StreamError::Internal, e.to_string()))),
            _ = lock.superseded.cancelled() => {
                // The device reconnected and resumed on a new stream; stop
                // reading here and let the writer make what arrived durable.
                reader.abort();
                let _ = (&mut reader).await;
                break ReadOutcome::Failed(fail(
                    StreamError::Superseded,
                    "a newer upload of this recording from the same device took over",
                ));
            }
            ch = changed(&mut staged_rx) => {
                let Ok(n) = ch else {
                    // The stager ends before the upload only when it fails.
                    reader.abort();
                    let _ = (&mut reader).await;
                    break ReadOutcome::Failed(fail(StreamError::StorageFailure, "staging in storage stopped"));
                };
                if n > acked && send_failed.is_none() {
                    if let Err(f) = reply(send, &Reply::Ack { durable: n }).await {
                        send_failed = Some(f);
                    } else {
                        acks.acked(n);
                    }
                    acked = n;
                }
            }
            ch = drx.changed(), if !writer_done => {
                if ch.is_err() {
                    writer_done = true;
                    continue;
                }
                let d = *drx.borrow_and_update();
                if let Some(st) = derivation.as_ref() {
                    st.advance(d);
                } else if d >= custody_media::typefind::PROBE_BYTES as u64
                    && let Some((media, name)) = streaming.take()
                {
                    let (data, dir) = (entry.data(), entry.derived());
                    *derivation = tokio::task::spawn_blocking(move || {
                        derive::Streaming::start(&media, &data, d, name, dir)
                    })
                    .await
                    .ok()
                    .flatten();
                    if derivation.is_some() {
                        tracing::info!(device = s.device(), "remuxing while the upload arrives");
                    }
                }
                if stager.is_none() && d > acked && send_failed.is_none() {
                    if let Err(f) = reply(send, &Reply::Ack { durable: d }).await {
                        send_failed = Some(f);
                    } else {
                        acks.acked(d);
                    }
                    acked = d;
                }
            }
        }
    };
    let written = wjob
        .await
        .map_err(|e| fail(StreamError::Internal, e.to_string()))?;
    // What may be acknowledged now: what the writer made durable, or in
    // cluster mode what the stager staged of it (it ends after the writer).
    let ackable = match stager {
        Some(st) => st
            .finish()
            .await
            .map_err(|e| staging_failure("staging in storage failed", e)),
        None => Ok(match &written {
            Ok((total, _)) => *total,
            Err(_) => *drx.borrow(),
        }),
    };
    if let Ok(n) = ackable
        && n > acked
        && send_failed.is_none()
    {
        match reply(send, &Reply::Ack { durable: n }).await {
            Ok(()) => {
                acks.acked(n);
                acked = n;
            }
            Err(f) => send_failed = Some(f),
        }
    }
    // What was durable (staged) before a writer error is acked first, so
    // the device knows it is kept.
    let (total, hash) = written.map_err(|e| spool_failure("spool write failed", e))?;
    // An upload's writer is opened hashing (`OriginalWriter::open`).
    let hash = hash.ok_or_else(|| fail(StreamError::Internal, "the spool writer kept no hash"))?;
    ackable?;
    if let Some(f) = send_failed {
        return Err(f);
    }
    if acked < total {
        return Err(fail(
            StreamError::StorageFailure,
            format!("{acked} of {total} bytes could be acknowledged"),
        ));
    }
    match outcome {
        ReadOutcome::Finished(f) => Ok(Some((total, hash, f))),
        ReadOutcome::Ended => Ok(None),
        ReadOutcome::Failed(f) => Err(f),
    }
}

/// The next value of an optional watch; never, without one.
async fn changed(rx: &mut Option<watch::Receiver<u64>>) -> Result<u64, ()> {
    match rx {
        Some(rx) => {
            rx.changed().await.map_err(|_| ())?;
            Ok(*rx.borrow_and_update())
        }
        None => std::future::pending().await,
    }
}

impl Upload<'_> {
    /// The bytes are what the device declared: the recording is spooled
    /// whole, handed to the archiver, and the device told when it is stored.
    async fn spooled(
        self,
        send: &mut SendStream,
        a: Arrived,
        lock: crate::shared::RecordingLock,
    ) -> Result<(), Failure> {
        let Upload {
            s,
            recorder,
            id,
            entry,
            mut st,
        } = self;
        let (recorder, id) = (recorder.as_str(), id.as_str());
        let Arrived {
            total,
            hash,
            declared,
            ..
        } = a;
        st.status = RecordingState::Spooled;
        st.size = Some(total);
        st.sha256 = Some(hex::encode(hash));
        st.declared_sha256 = Some(declared);
        let (e, st2) = (entry.clone(), st.clone());
        blocking(move || e.save_state(&st2)).await?;
        // Cluster mode: another gateway the device asks from now on finds
        // the upload complete. If this is not recorded, it finds every byte
        // staged and the device's `finish` completes it again.
        if let Some(staging) = &s.gw.staging
            && let Err(e) = staging.complete(recorder, id, &st).await
        {
            tracing::warn!(%recorder, %id, "upload not marked complete in the cluster: {e}");
        }
        s.usage(
            UsageEvent::UploadVerified,
            Some(id),
            format!(
                "{recorder}/{id}: {total} bytes, sha256 {} matches the device",
                hex::encode(hash)
            ),
        )
        .await;
        s.gw.metrics.docked_upload(metrics::Upload::Completed);
        // The recording is complete; nothing more will be written to it.
        drop(lock);
        let events = s.gw.archiver.subscribe();
        s.gw.archiver.enqueue(recorder, id);
        reply(
            send,
            &Reply::Verified {
                size: total,
                sha256: hex::encode(hash),
                matched: true,
                state: RecordingState::Spooled,
            },
        )
        .await?;
        wait_archived(s, send, events, recorder, id).await
    }
}

/// Waits (bounded) for the archiver and tells the device when its
/// recording is in storage. If storage is slow or down, the stream ends
/// with the recording safely spooled; the device can ask `status` later.
async fn wait_archived(
    s: &Arc<Session>,
    send: &mut SendStream,
    mut events: tokio::sync::broadcast::Receiver<crate::archive::Archived>,
    recorder: &str,
    id: &str,
) -> Result<(), Failure> {
    let wait = Duration::from_secs(s.gw.cfg.gateway.archive_wait_secs);
    let found = tokio::time::timeout(wait, async {
        loop {
            match events.recv().await {
                Ok(a) if a.recorder == recorder && a.recording_id == id => return Some(a),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: ask the spool directly.
                    let e = s.gw.spool.entry(recorder, id);
                    if let Ok(Some(st)) = e.load_state()
                        && st.status == RecordingState::Archived
                    {
                        return Some(crate::archive::Archived {
                            recorder: recorder.to_string(),
                            recording_id: id.to_string(),
                            manifest_key: st.manifest_key,
                            chain_head: st.chain_head.unwrap_or_default(),
                            derivation: None,
                        });
                    }
                }
                Err(_) => return None,
            }
        }
    })
    .await;
    if let Ok(Some(a)) = found {
        reply(
            send,
            &Reply::Archived {
                manifest_key: a.manifest_key,
                chain_head: a.chain_head,
                derivation: a.derivation,
            },
        )
        .await?;
    }
    Ok(())
}

/// Keeps the file name an upload came under when the recording's header
/// names another (or none, or the spool no longer holds the header): the
/// same bytes docked under a second name, or a resumed upload of a renamed
/// file. The gateway appends it to the stored recording as a signed
/// `docked-as` annotation (`crate::link`); it is durable in the spool
/// before the device is told the upload succeeded.
async fn keep_file_name(
    s: &Arc<Session>,
    recorder: &str,
    id: &str,
    file_name: Option<&str>,
) -> Result<(), Failure> {
    let Some(name) = file_name else {
        return Ok(());
    };
    let entry = s.gw.spool.entry(recorder, id);
    let header = blocking(move || Ok(entry.read_header().ok())).await?;
    let known = header
        .and_then(|b| serde_json::from_slice::<HeaderDoc>(&b).ok())
        .and_then(|h| h.meta.file_name);
    if known.as_deref() == Some(name) {
        return Ok(());
    }
    let pending = crate::link::PendingName {
        recorder: recorder.to_string(),
        recording_id: id.to_string(),
        file_name: name.to_string(),
        uploader: s.device().to_string(),
    };
    let linker = s.gw.linker.clone();
    blocking(move || linker.queue_name(&pending)).await
}

impl Upload<'_> {
    /// The recording was complete before this stream: compare the
    /// device's hash with what is stored.
    async fn already_complete(
        self,
        send: &mut SendStream,
        mut recv: RecvStream,
        file_name: Option<&str>,
    ) -> Result<(), Failure> {
        let Upload {
            s,
            recorder,
            id,
            st,
            ..
        } = self;
        let (recorder, id) = (recorder.as_str(), id.as_str());
        let f = match next_frame(&mut recv).await {
            Ok(Some(Frame::Msg(m))) => decode_finish(&m),
            Ok(Some(Frame::Data(_))) => Err(fail(
                StreamError::UnexpectedMessage,
                "the recording is complete; send finish, not data",
            )),
            Ok(None) => return Ok(()),
            Err(f) => Err(f),
        };
        let (size, _, sha256) = match f {
            Ok(f) => f,
            Err(f) => {
                stop(&mut recv, &f);
                return Err(f);
            }
        };
        let matched = st.size == Some(size) && st.sha256.as_deref() == Some(sha256.as_str());
        if matched {
            keep_file_name(s, recorder, id, file_name).await?;
        }
        reply(
            send,
            &Reply::Verified {
                size: st.size.unwrap_or(0),
                sha256: st.sha256.clone().unwrap_or_default(),
                matched,
                state: st.status,
            },
        )
        .await?;
        if !matched {
            return Err(fail(
                StreamError::RecordingConflict,
                format!(
                    "recording {recorder}/{id} is already stored with sha256 {}; a different file cannot take its id",
                    st.sha256.unwrap_or_default()
                ),
            ));
        }
        match st.status {
            RecordingState::Archived => {
                reply(
                    send,
                    &Reply::Archived {
                        manifest_key: st.manifest_key,
                        chain_head: st.chain_head.unwrap_or_default(),
                        derivation: None,
                    },
                )
                .await
            }
            _ => {
                let events = s.gw.archiver.subscribe();
                s.gw.archiver.enqueue(recorder, id);
                wait_archived(s, send, events, recorder, id).await
            }
        }
    }
}

impl Upload<'_> {
    /// Moves the bytes of a failed upload to the quarantine (kept, and
    /// copied to storage under `quarantine/`), and marks the recording
    /// failed.
    async fn quarantine(&self, a: &Arrived, reason: &str) -> Result<(), Failure> {
        let Upload {
            s,
            recorder,
            id,
            entry,
            st,
        } = self;
        let mut st = st.clone();
        let (recorder, id) = (recorder.as_str(), id.as_str());
        let (total, hash, declared) = (a.total, a.hash, a.declared.as_str());
        let now = custody_format::clock::now();
        let qdir =
            s.gw.spool
                .quarantine_dir(recorder, id, &now.unix_timestamp_nanos().to_string());
        let report = serde_json::json!({
            "format": "custody-quarantine/1",
            "recorder": recorder,
            "recording_id": id,
            "uploader": s.device(),
            "reason": reason,
            "size": total,
            "sha256": hex::encode(hash),
            "declared_sha256": declared,
            "at": custody_format::time_fmt::rfc3339(now),
            "gateway": s.gw.cfg.gateway.id,
        });
        st.status = RecordingState::Failed;
        st.size = Some(total);
        st.sha256 = Some(hex::encode(hash));
        st.declared_sha256 = Some(declared.to_string());
        st.reason = Some(reason.to_string());
        let e = entry.clone();
        blocking(move || {
            std::fs::create_dir_all(&qdir)?;
            std::fs::rename(e.data(), qdir.join("data"))?;
            std::fs::copy(e.header(), qdir.join("header.json"))?;
            std::fs::File::open(qdir.join("header.json"))?.sync_all()?;
            crate::spool::sync_dir(&qdir)?;
            write_atomic(
                &qdir.join("report.json"),
                &serde_json::to_vec_pretty(&report).expect("report serialises"),
            )?;
            let _ = std::fs::remove_file(e.ack());
            e.save_state(&st)
        })
        .await?;
        s.gw.archiver.wake_quarantine();
        if let Some(a) = &s.gw.ahead {
            a.discard(recorder, id).await;
        }
        // Cluster mode: the quarantine holds the bytes now; a new attempt
        // starts from byte 0.
        // Under the lease again, so a new attempt's parts are not forgotten.
        if let Some(staging) = &s.gw.staging
            && let Err(e) = async {
                let _lease = staging
                    .lease(recorder, id)
                    .await
                    .map_err(|e| crate::staging::StagingError::Busy(e.to_string()))?;
                staging.forget(recorder, id).await
            }
            .await
        {
            tracing::warn!(%recorder, %id, "staged parts of a quarantined upload not removed: {e}");
        }
        s.usage(
            UsageEvent::UploadFailed,
            Some(id),
            format!("{recorder}/{id} failed its integrity check and was quarantined: {reason}"),
        )
        .await;
        Ok(())
    }
}
