//! `live`: a recorder streaming a recording as it is made.
//!
//! Bytes are made durable in the spool exactly as for uploads and
//! acknowledged by their offset in the device's stream; the recording's
//! remux pipeline follows them. A lost link ends the stream, not the
//! recording: the recorder reconnects, sends `live` again with the same
//! recording id, and continues from the acknowledged offset.

use std::sync::Arc;
use std::time::Instant;

use quinn::{RecvStream, SendStream};
use tokio::sync::{mpsc, watch};

use super::Session;
use super::frames::{Failure, fail, next_frame, reply, spool_failure};
use super::frames::{blocking, stop};
use super::header::build_header;
use super::status::resolve_recorder;
use crate::live::LiveRecording;
use crate::metrics::{Counter, Kind};
use crate::spool::EntryState;
use crate::spool::writer::{OriginalWriter, SyncPace, WriterItem, run_writer};
use crate::usage::UsageEvent;
use custody_format::layout;
use custody_format::limits;
use custody_format::metadata::{RecordingMeta, RecordingMode};
use custody_proto::frame::{self, Frame};
use custody_proto::{LiveControl, RecordingState, Reply, StreamError};

/// Sustained-rate limiter with a burst allowance, so a recorder catching up
/// after a lost link is not cut off while one streaming too fast is.
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(bytes_per_sec: f64, burst_secs: f64) -> Self {
        Bucket {
            rate: bytes_per_sec,
            capacity: bytes_per_sec * burst_secs,
            tokens: bytes_per_sec * burst_secs,
            last: Instant::now(),
        }
    }

    fn take(&mut self, n: usize) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        self.tokens -= n as f64;
        self.tokens >= 0.0
    }
}

/// Finds the open live recording, reopens it, or starts a new one.
pub(crate) async fn open_live(
    s: &Arc<Session>,
    recorder: &str,
    meta: &RecordingMeta,
    device_clock: Option<&str>,
) -> Result<Arc<LiveRecording>, Failure> {
    let id = &meta.recording_id;
    if let Some(r) = s.gw.live.get(recorder, id) {
        return Ok(r);
    }
    let entry = s.gw.spool.entry(recorder, id);
    let e = entry.clone();
    let existing = blocking(move || {
        let st = e.load_state()?;
        let live = LiveRecording::load_state(&e)?;
        Ok((st, live))
    })
    .await?;
    match existing {
        (Some(_), Some(_)) => {
            return Err(fail(
                StreamError::RecordingClosed,
                format!("live recording {recorder}/{id} is closed; a new recording needs a new id"),
            ));
        }
        (Some(_), None) => {
            return Err(fail(
                StreamError::RecordingConflict,
                format!("recording id {recorder}/{id} belongs to a docked upload"),
            ));
        }
        (None, _) => {}
    }
    if s.gw.find_archived(recorder, id).await.is_some() {
        return Err(fail(
            StreamError::RecordingClosed,
            format!("recording {recorder}/{id} is already stored; a new recording needs a new id"),
        ));
    }
    // Cluster mode: a recording is this gateway's once it holds the
    // recording's lease; one live on another gateway is not taken here. One
    // whose gateway stopped renewing its lease is taken over and continued
    // from its journal in storage.
    let lease = match &s.gw.live.leases {
        None => None,
        Some(leases) => Some(
            leases
                .take_live(&crate::lease::Leases::live_name(recorder, id))
                .await
                .map_err(|e| match e {
                    crate::lease::LeaseError::Db(e) => cluster_db_failure(e),
                    e => fail(
                        StreamError::RecordingBusy,
                        format!("live recording {recorder}/{id} is {e}; it continues there"),
                    ),
                })?,
        ),
    };
    if let (Some(token), Some(leases)) = (lease.as_ref().map(|l| l.token()), &s.gw.live.leases)
        && let Some(row) = leases
            .db()
            .live_get(recorder, id)
            .await
            .map_err(cluster_db_failure)?
    {
        use crate::live::from_storage::{Restored, restore};
        let continued = restore(&s.gw.store, &entry, recorder, id, &row.prefix, token)
            .await
            .map_err(|e| {
                fail(
                    StreamError::StorageFailure,
                    format!("live recording {recorder}/{id} cannot be continued from storage: {e}"),
                )
            })?;
        if let Restored::Continued { header, closed } = continued {
            let opts = s.gw.live.opts.clone();
            let (rec_s, id_s, prefix) = (recorder.to_string(), id.to_string(), row.prefix.clone());
            let rec = blocking(move || {
                let rec = LiveRecording::open(&rec_s, &id_s, entry, prefix, *header, opts)?;
                if closed {
                    rec.write_manifest_if_closed()?;
                }
                Ok(rec)
            })
            .await?;
            leases
                .db()
                .live_set(recorder, id, &row.prefix, token)
                .await
                .map_err(cluster_db_failure)?;
            s.gw.live.adopt(rec.clone(), lease);
            return Ok(rec);
        }
    }
    let now = custody_format::clock::now();
    let mut meta = meta.clone();
    meta.mode.get_or_insert(RecordingMode::Live);
    let header = build_header(s, recorder, &meta, None, now, device_clock)?;
    let header_bytes = header.to_bytes();
    let prefix = layout::recording_prefix(
        meta.category.as_deref(),
        now.to_offset(s.gw.offset),
        recorder,
        id,
    );
    let st = EntryState {
        status: RecordingState::Receiving,
        manifest_key: layout::manifest_key(&prefix),
        prefix: prefix.clone(),
        size: None,
        sha256: None,
        declared_sha256: None,
        chain_head: None,
        reason: None,
    };
    // Cluster mode: where it is stored, before anything is (another
    // gateway continues it from there if this one dies).
    let epoch = lease.as_ref().map_or(0, |l| l.token());
    if let Some(leases) = &s.gw.live.leases {
        leases
            .db()
            .live_set(recorder, id, &prefix, epoch)
            .await
            .map_err(cluster_db_failure)?;
    }
    let opts = s.gw.live.opts.clone();
    let (rec_s, id_s) = (recorder.to_string(), id.to_string());
    let rec = blocking(move || {
        entry.create(&header_bytes, &st)?;
        let rec = LiveRecording::open(&rec_s, &id_s, entry, prefix, header, opts)?;
        if epoch != 0 {
            rec.set_epoch(epoch)?;
        }
        rec.start_chain(&header_bytes)?;
        Ok(rec)
    })
    .await?;
    s.gw.live.adopt(rec.clone(), lease);
    Ok(rec)
}

/// The stream offset the journal in storage reaches, read on its own: the
/// watch's lock is not held while the recording's is taken (the uploader
/// takes them the other way round).
fn stored_now(stored: &watch::Receiver<u64>) -> u64 {
    *stored.borrow()
}

fn cluster_db_failure(e: impl std::fmt::Display) -> Failure {
    fail(
        StreamError::Internal,
        format!("the cluster database cannot be reached: {e}"),
    )
}

/// What a `live` request finds.
enum Opened {
    Live(Arc<LiveRecording>),
    /// Closed by its recorder's `end`: asked for again by the recorder,
    /// whose `closed` reply may have been lost with the link (or with the
    /// gateway that received the `end`).
    Closed(AlreadyClosed),
}

/// The `closed` answer of a recording its recorder ended.
struct AlreadyClosed {
    manifest_key: String,
    offset: u64,
    state: RecordingState,
    gaps: Vec<custody_format::manifest::Gap>,
    derivation: custody_proto::DerivationNote,
    /// Cluster mode, a recording still held here: `closed` waits until the
    /// journal in storage reaches `offset`, as after the first `end`.
    stored: Option<watch::Receiver<u64>>,
}

/// A recording this gateway holds, closed by its recorder.
fn closed_in_memory(rec: &LiveRecording, cluster: bool) -> Option<AlreadyClosed> {
    (rec.closed_by()? == custody_format::manifest::ClosedBy::Device).then(|| AlreadyClosed {
        manifest_key: layout::manifest_key(&rec.prefix),
        offset: rec.stream_durable(),
        state: if rec.is_archived() {
            RecordingState::Archived
        } else {
            RecordingState::Spooled
        },
        gaps: rec.gaps(),
        derivation: rec.derivation_note(),
        stored: cluster.then(|| rec.stored_stream()),
    })
}

/// A stored live recording closed by its recorder, from its manifest.
async fn closed_in_storage(s: &Arc<Session>, recorder: &str, id: &str) -> Option<AlreadyClosed> {
    use custody_format::manifest::{ClosedBy, Role};
    // Found through its locator and checked to be this recording.
    let custody_verify::locate::Found {
        locator: loc,
        manifest: m,
    } = custody_verify::locate::stored(&s.gw.store, recorder, id)
        .await
        .ok()??;
    let live = m
        .live
        .as_ref()
        .filter(|l| l.closed_by == ClosedBy::Device)?;
    let derivation = m.derivation.as_ref();
    Some(AlreadyClosed {
        manifest_key: loc.manifest_key.clone(),
        offset: live.stream_bytes,
        state: RecordingState::Archived,
        gaps: live.gaps.clone(),
        derivation: custody_proto::DerivationNote {
            status: derivation.map_or_else(|| "failed".into(), |d| d.status.to_string()),
            segments: m.objects.iter().filter(|o| o.role == Role::Segment).count() as u64,
            reason: derivation.and_then(|d| d.reason.clone()),
        },
        stored: None,
    })
}

/// Answers a recorder asking again for a recording it ended: `accepted` at
/// the end of its stream, then `closed` once it sends `end` again. Bytes or
/// a gap instead are refused (`recording_closed`).
async fn answer_closed(
    send: &mut SendStream,
    mut recv: RecvStream,
    recorder: &str,
    id: &str,
    c: AlreadyClosed,
) -> Result<(), Failure> {
    tracing::info!(%recorder, %id, "live recording asked for again after its end: answered closed");
    reply(
        send,
        &Reply::Accepted {
            recorder: recorder.to_string(),
            recording_id: id.to_string(),
            offset: c.offset,
            state: c.state,
            manifest_key: c.manifest_key.clone(),
        },
    )
    .await?;
    let refused = || {
        fail(
            StreamError::RecordingClosed,
            format!("live recording {recorder}/{id} is closed; a new recording needs a new id"),
        )
    };
    loop {
        let msg = match next_frame(&mut recv).await? {
            None => return Ok(()),
            Some(Frame::Msg(m)) => frame::decode::<LiveControl>(&m).ok(),
            Some(Frame::Data(_)) => None,
        };
        match msg {
            Some(LiveControl::End) => {
                if let Some(mut stored) = c.stored {
                    let _ = stored.wait_for(|s| *s >= c.offset).await;
                }
                return reply(
                    send,
                    &Reply::Closed {
                        manifest_key: c.manifest_key,
                        complete: c.gaps.is_empty(),
                        gap_count: c.gaps.len() as u64,
                        gaps: c.gaps.into_iter().take(64).collect(),
                        derivation: c.derivation,
                    },
                )
                .await;
            }
            // A mark the recorder sends again, not knowing whether the
            // broken stream carried it: the recorder sends its marks before
            // its `end`, on one ordered stream, so the `end` that closed the
            // recording came after it and it is chained already.
            Some(LiveControl::Mark { .. }) => continue,
            _ => {
                let f = refused();
                stop(&mut recv, &f);
                return Err(f);
            }
        }
    }
}

/// Detaches the stream from its recording however the stream ends.
struct Attached(Arc<LiveRecording>);

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.detach();
    }
}

enum ReadOutcome {
    End,
    Ended,
    Failed(Failure),
}

pub async fn run(
    s: &Arc<Session>,
    send: &mut SendStream,
    mut recv: RecvStream,
    meta: RecordingMeta,
    device_clock: Option<String>,
) -> Result<(), Failure> {
    let prepared = async {
        meta.validate()
            .map_err(|e| fail(StreamError::InvalidMetadata, e.to_string()))?;
        super::header::check_device_clock(device_clock.as_deref())?;
        if custody_format::metadata::is_content_id(&meta.recording_id) {
            return Err(fail(
                StreamError::InvalidMetadata,
                format!(
                    "recording_id: {} has the form f-<40 hex digits>, kept for docked files named by their content",
                    meta.recording_id
                ),
            ));
        }
        let recorder = resolve_recorder(s, meta.recorder.as_deref())?;
        // A full spool takes no stream: the recorder keeps its bytes and
        // comes back (a stream open on a full disk would only fail).
        s.gw.space
            .check()
            .map_err(|e| fail(StreamError::SpoolFull, e.to_string()))?;
        let claimed =
            s.gw.claim_recording(&recorder, &meta.recording_id, s.device())
                .await;
        // Whoever holds it now, only the device that started it may append
        // to it or end it.
        super::owner::ensure_owner(s, &recorder, &meta.recording_id, super::owner::Mode::Live)
            .await?;
        let lock = claimed.ok_or_else(|| {
            fail(
                StreamError::RecordingBusy,
                format!(
                    "recording {recorder}/{} is being received on another stream",
                    meta.recording_id
                ),
            )
        })?;
        let max = s.gw.cfg.live.max_streams_per_device;
        let slot = s.gw.live.stream_slot(s.device(), max).ok_or_else(|| {
            fail(
                StreamError::TooManyStreams,
                format!("{} already has {max} live streams open", s.device()),
            )
        })?;
        let rec = match open_live(s, &recorder, &meta, device_clock.as_deref()).await {
            Ok(rec) => rec,
            Err(f) if f.code == StreamError::RecordingClosed => {
                return match closed_in_storage(s, &recorder, &meta.recording_id).await {
                    Some(c) => Ok((recorder, lock, slot, Opened::Closed(c))),
                    None => Err(f),
                };
            }
            Err(f) => return Err(f),
        };
        if !rec.held() {
            // Reopened from this spool after a restart, its lease not (yet)
            // this gateway's again.
            return Err(fail(
                StreamError::RecordingBusy,
                format!(
                    "live recording {recorder}/{} is held by another gateway; it continues there",
                    meta.recording_id
                ),
            ));
        }
        if rec.is_closed() {
            return match closed_in_memory(&rec, s.gw.live.leases.is_some()) {
                Some(c) => Ok((recorder, lock, slot, Opened::Closed(c))),
                None => Err(fail(
                    StreamError::RecordingClosed,
                    format!(
                        "live recording {recorder}/{} is closed; a new recording needs a new id",
                        meta.recording_id
                    ),
                )),
            };
        }
        Ok((recorder, lock, slot, Opened::Live(rec)))
    }
    .await;
    let (recorder, lock, _slot, rec) = match prepared {
        Ok((recorder, lock, slot, Opened::Live(rec))) => (recorder, lock, slot, rec),
        Ok((recorder, _lock, _slot, Opened::Closed(c))) => {
            return answer_closed(send, recv, &recorder, &meta.recording_id, c).await;
        }
        Err(f) => {
            stop(&mut recv, &f);
            return Err(f);
        }
    };
    let id = meta.recording_id.clone();
    if !rec.attach() {
        let f = fail(
            StreamError::RecordingClosed,
            format!("live recording {recorder}/{id} is closing; a new recording needs a new id"),
        );
        return Err(f);
    }
    let _attached = Attached(rec.clone());
    let _open = s.gw.metrics.live_stream_opened();
    let offset = rec.stream_durable();
    tracing::info!(device = s.device(), %recorder, %id, offset, "live stream open");
    reply(
        send,
        &Reply::Accepted {
            recorder: recorder.clone(),
            recording_id: id.clone(),
            offset,
            state: RecordingState::Receiving,
            manifest_key: layout::manifest_key(&rec.prefix),
        },
    )
    .await?;
    s.usage(
        if offset == 0 {
            UsageEvent::UploadStarted
        } else {
            UsageEvent::UploadResumed
        },
        Some(&id),
        format!("live {recorder}/{id} from stream offset {offset}"),
    )
    .await;

    let e = rec.entry.clone();
    let writer = blocking(move || OriginalWriter::open_unhashed(&e)).await?;
    // Counted in bytes of the data file: a gap the recorder declares moves
    // the stream offset without a byte.
    let mut acks = s.gw.metrics.acknowledged(Kind::Live, writer.durable());
    let (tx, rx) = mpsc::channel::<WriterItem>(8);
    let (dtx, mut drx) = watch::channel(writer.durable());
    let pace = SyncPace::live(s.gw.cfg.gateway.ack_bytes);
    let space = s.gw.space.clone();
    let wjob = tokio::task::spawn_blocking(move || run_writer(writer, rx, dtx, pace, &space));
    let bitrate = s.gw.cfg.live.max_bitrate_kbps as f64 * 1000.0 / 8.0;
    let mut reader = tokio::spawn(read_live(
        recv,
        tx,
        rec.clone(),
        offset,
        Bucket::new(bitrate, 30.0),
        s.device().to_string(),
        s.gw.metrics.received(Kind::Live),
    ));
    let mut acked = offset;
    let mut send_failed = None;
    let mut writer_done = false;
    // Cluster mode: a byte is acknowledged once the journal chunk holding
    // it is in storage, where another gateway can continue from it.
    let cluster = s.gw.live.leases.is_some();
    let mut stored = rec.stored_stream();
    let ackable = |durable: u64, stored: u64| {
        let stream = durable + rec.skipped();
        if cluster { stream.min(stored) } else { stream }
    };
    let outcome = loop {
        // What may be acknowledged now, after the spool or storage moved.
        let upto = tokio::select! {
            r = &mut reader => break r.unwrap_or_else(|e| ReadOutcome::Failed(fail(StreamError::Internal, e.to_string()))),
            _ = lock.superseded.cancelled() => {
                reader.abort();
                let _ = (&mut reader).await;
                break ReadOutcome::Failed(fail(
                    StreamError::Superseded,
                    "a newer stream of this recording from the same device took over",
                ));
            }
            ch = drx.changed(), if !writer_done => {
                if ch.is_err() {
                    writer_done = true;
                    continue;
                }
                let d = *drx.borrow_and_update();
                rec.on_durable(d);
                let held = stored_now(&stored);
                ackable(d, held)
            }
            ch = stored.changed(), if cluster => {
                if ch.is_err() {
                    continue;
                }
                let held = *stored.borrow_and_update();
                let d = *drx.borrow();
                ackable(d, held)
            }
        };
        if upto > acked && send_failed.is_none() {
            if let Err(f) = reply(send, &Reply::Ack { durable: upto }).await {
                send_failed = Some(f);
            } else {
                acks.acked(upto - rec.skipped());
            }
            acked = upto;
        }
    };
    let written = match wjob
        .await
        .map_err(|e| fail(StreamError::Internal, e.to_string()))?
    {
        Ok(w) => w,
        Err(e) => {
            // What the writer made durable before it stopped is acked
            // before the error, so the recorder may let it go.
            let d = *drx.borrow();
            rec.on_durable(d);
            let held = stored_now(&stored);
            let upto = ackable(d, held);
            if upto > acked
                && send_failed.is_none()
                && reply(send, &Reply::Ack { durable: upto }).await.is_ok()
            {
                acks.acked(upto - rec.skipped());
            }
            return Err(spool_failure("spool write failed", e));
        }
    };
    rec.on_durable(written.0);
    if let Some(f) = send_failed {
        return Err(f);
    }
    let stream = written.0 + rec.skipped();
    let held = stored_now(&stored);
    let upto = ackable(written.0, held);
    if upto > acked {
        reply(send, &Reply::Ack { durable: upto }).await?;
        acks.acked(upto - rec.skipped());
        acked = upto;
    }
    match outcome {
        ReadOutcome::Ended => Ok(()),
        ReadOutcome::Failed(f) => Err(f),
        ReadOutcome::End => {
            let r2 = rec.clone();
            blocking(move || r2.close(custody_format::manifest::ClosedBy::Device)).await?;
            if cluster && acked < stream {
                // Closed is the recorder's word to let its bytes go: only
                // once the last journal chunk is in storage.
                let _ = stored.wait_for(|s| *s >= stream).await;
                reply(send, &Reply::Ack { durable: stream }).await?;
                acks.acked(written.0);
            }
            let gaps = rec.gaps();
            s.usage(
                UsageEvent::UploadVerified,
                Some(&id),
                format!(
                    "live {recorder}/{id} ended by the recorder: {stream} bytes, {} gaps",
                    gaps.len()
                ),
            )
            .await;
            reply(
                send,
                &Reply::Closed {
                    manifest_key: layout::manifest_key(&rec.prefix),
                    complete: gaps.is_empty(),
                    gap_count: gaps.len() as u64,
                    gaps: gaps.into_iter().take(64).collect(),
                    derivation: rec.derivation_note(),
                },
            )
            .await?;
            drop(lock);
            Ok(())
        }
    }
}

/// Reads data and control frames of a live stream.
async fn read_live(
    mut recv: RecvStream,
    tx: mpsc::Sender<WriterItem>,
    rec: Arc<LiveRecording>,
    mut offset: u64,
    mut bucket: Bucket,
    device: String,
    received: Counter,
) -> ReadOutcome {
    let failed = |recv: &mut RecvStream, f: Failure| {
        stop(recv, &f);
        ReadOutcome::Failed(f)
    };
    let mut marks = 0usize;
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
                        fail(StreamError::TooLarge, "stream exceeds the size limit"),
                    );
                }
                if !bucket.take(d.len()) {
                    // What arrived so far is kept; the recording stays open.
                    let _ = tx.send(WriterItem::Data(d)).await;
                    return failed(
                        &mut recv,
                        fail(
                            StreamError::BitrateExceeded,
                            format!(
                                "the stream exceeds {} kbit/s sustained",
                                (bucket.rate * 8.0 / 1000.0) as u64
                            ),
                        ),
                    );
                }
                if tx.send(WriterItem::Data(d)).await.is_err() {
                    return failed(
                        &mut recv,
                        fail(StreamError::StorageFailure, "the spool writer stopped"),
                    );
                }
                rec.on_arrival(end.saturating_sub(rec.skipped()));
                offset = end;
            }
            Some(Frame::Msg(m)) => match frame::decode::<LiveControl>(&m) {
                Ok(LiveControl::End) => return ReadOutcome::End,
                Ok(LiveControl::Mark { marker }) => {
                    marks += 1;
                    if marks > limits::MAX_MARKERS {
                        return failed(
                            &mut recv,
                            fail(
                                StreamError::BadMessage,
                                format!("more than {} marks on one stream", limits::MAX_MARKERS),
                            ),
                        );
                    }
                    if let Err(e) = marker.validate() {
                        return failed(&mut recv, fail(StreamError::BadMessage, e.to_string()));
                    }
                    if rec.mark_seen(&marker) {
                        continue;
                    }
                    let a = custody_format::annotation::Annotation {
                        format: custody_format::annotation::ANNOTATION_FORMAT.into(),
                        recorder: rec.recorder.clone(),
                        recording_id: rec.id.clone(),
                        fact: custody_format::annotation::Fact::Markers(vec![marker]),
                        by: device.clone(),
                        reason: Some("marked on the recorder while recording".into()),
                        at: custody_format::time_fmt::now(),
                    };
                    let mut body = serde_json::to_vec_pretty(&a).expect("annotation serialises");
                    body.push(b'\n');
                    let r2 = rec.clone();
                    let res = tokio::task::spawn_blocking(move || r2.annotate_live(&body)).await;
                    if !matches!(res, Ok(Ok(_))) {
                        return failed(
                            &mut recv,
                            fail(StreamError::StorageFailure, "could not record the mark"),
                        );
                    }
                }
                Ok(LiveControl::Gap {
                    to,
                    kind,
                    reason,
                    since,
                }) => {
                    if to < offset
                        || to > limits::MAX_FILE_SIZE
                        || !matches!(kind.as_str(), "lost-bytes" | "source-restart")
                    {
                        return failed(
                            &mut recv,
                            fail(
                                StreamError::BadMessage,
                                format!("gap to {to} from offset {offset} ({kind}) is not valid"),
                            ),
                        );
                    }
                    // Text for people, and a time that parses: what reaches
                    // `custody verify` cannot carry terminal escapes.
                    let checked = custody_format::metadata::check_text("gap.reason", &reason)
                        .and_then(|_| {
                            since.as_deref().map_or(Ok(()), |t| {
                                custody_format::metadata::check_time("gap.since", t)
                            })
                        });
                    if let Err(e) = checked {
                        return failed(&mut recv, fail(StreamError::BadMessage, e.to_string()));
                    }
                    // Everything before the gap must be durable first.
                    let Some(durable) = crate::spool::writer::sync(&tx).await else {
                        return failed(
                            &mut recv,
                            fail(StreamError::StorageFailure, "the spool writer stopped"),
                        );
                    };
                    rec.on_durable(durable);
                    let r2 = rec.clone();
                    let res =
                        tokio::task::spawn_blocking(move || r2.gap(to, &kind, &reason, since))
                            .await;
                    if !matches!(res, Ok(Ok(()))) {
                        return failed(
                            &mut recv,
                            fail(StreamError::StorageFailure, "could not record the gap"),
                        );
                    }
                    offset = to;
                }
                Err(e) => return failed(&mut recv, Failure::from(e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_bursts_then_the_sustained_rate() {
        let mut b = Bucket::new(1000.0, 2.0);
        assert!(b.take(1500));
        assert!(b.take(500));
        assert!(!b.take(100));
    }
}
