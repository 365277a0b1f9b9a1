//! One device's feed, whatever its protocol: admitted against the ledger
//! (and, in a cluster, holding the device's ingest lease) before each
//! session, its bytes written through the spool writer into a live
//! recording that stays open across lost sessions (each a `source-restart`
//! gap) until the watchdog closes it or it reaches its maximum length (the
//! stream then goes on in the next), and every outcome in the device's
//! usage record — once per change, not once per retry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::Source;
use super::loss::{self, LossWatch};
use crate::lease::{Lease, LeaseError, Leases};
use crate::live::LiveRecording;
use crate::metrics::Kind;
use crate::session::Session;
use crate::shared::Gateway;
use crate::spool::writer::{OriginalWriter, SyncPace, WriterItem, run_writer, sync};
use crate::usage::{Usage, UsageEvent};
use custody_format::metadata::{RecordingMeta, RecordingMode};
use custody_media::ts_continuity::keyframe_cut;

const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Cluster mode: attempts in a row that a holder of a device's ingest
/// lease may fail to start a session before it gives the lease up, so
/// that another gateway — which may reach the device — tries.
const TRIES_PER_LEASE: u32 = 3;

/// What the last attempt ended with, so that a device away for hours
/// leaves one usage record, not one per retry.
#[derive(Default)]
pub struct LastOutcome(Option<String>);

impl LastOutcome {
    pub fn changed(&mut self, now: &str) -> bool {
        let changed = self.0.as_deref() != Some(now);
        self.0 = Some(now.to_string());
        changed
    }
}

/// A session's bytes as the protocol's thread makes them. Dropping it
/// stops the thread (its `keep_going` turns false).
pub struct Media {
    pub bytes: mpsc::Receiver<Bytes>,
    pub end: oneshot::Receiver<String>,
    /// Who is sending, once known (`host:port`).
    pub peer: Arc<Mutex<Option<String>>>,
}

impl Media {
    /// Runs `work` on a thread of its own, named `name`. It gets the
    /// sender for its bytes and the peer slot; what it returns is why it
    /// stopped.
    pub fn spawn(
        name: String,
        work: impl FnOnce(mpsc::Sender<Bytes>, Arc<Mutex<Option<String>>>) -> String + Send + 'static,
    ) -> Media {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let (etx, erx) = oneshot::channel();
        let peer: Arc<Mutex<Option<String>>> = Arc::default();
        let p2 = peer.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let _ = etx.send(work(tx, p2));
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start an ingest thread: {e}");
        }
        Media {
            bytes: rx,
            end: erx,
            peer,
        }
    }

    /// Why the thread stopped (after its bytes ran out).
    pub async fn ended(&mut self) -> String {
        (&mut self.end)
            .await
            .unwrap_or_else(|_| "the ingest thread stopped".into())
    }

    fn peer(&self) -> Option<String> {
        self.peer.lock().expect("peer").clone()
    }
}

pub async fn record(
    gw: &Gateway,
    device: &str,
    event: UsageEvent,
    detail: String,
    peer: Option<SocketAddr>,
) {
    gw.usage
        .record(Usage {
            device,
            officer: None,
            event,
            recording_id: None,
            detail,
            peer,
        })
        .await;
}

/// One device, for as long as the ledger lists it with this source.
pub async fn run(gw: Arc<Gateway>, device: String, source: Source) {
    let max_backoff = source.max_backoff(&gw);
    let mut backoff = FIRST_RETRY;
    let mut current: Option<Arc<LiveRecording>> = None;
    // When and why the last session ended.
    let mut lost: Option<(String, String)> = None;
    let mut last = LastOutcome::default();
    // Who holds the device's ingest lease, logged once per holder.
    let mut lease_note = LastOutcome::default();
    // Sessions that failed to start in a row while holding the lease.
    let mut failed_tries = 0;
    let name = source.protocol();
    // Cluster mode: one gateway takes the device in at a time.
    let mut held: Option<Lease> = None;
    // When the current recording began (for its maximum length).
    let mut began = Instant::now();
    loop {
        if held.as_ref().is_some_and(|l| l.lost().is_cancelled()) {
            // Another gateway may take the device in from now on.
            held = None;
            current = None;
        }
        let now = custody_format::clock::now();
        let admission = match gw.ledger.current().admit(&device, now) {
            Ok(a) => a,
            Err(refusal) => {
                let detail = format!(
                    "{}: {} ({} is not taken)",
                    refusal.code.name(),
                    refusal.reason,
                    source.what()
                );
                if last.changed(&detail) {
                    gw.metrics
                        .refused(crate::metrics::Refusal::Admission(refusal.code));
                    record(
                        &gw,
                        &device,
                        UsageEvent::Refused,
                        detail,
                        source.known_peer().await,
                    )
                    .await;
                }
                tokio::time::sleep(max_backoff).await;
                continue;
            }
        };
        if let (None, Some(leases)) = (&held, &gw.live.leases) {
            match leases.take_ingest(&Leases::ingest_name(&device)).await {
                Ok(l) => {
                    tracing::info!(%device, "this gateway takes in {}", source.what());
                    lease_note = LastOutcome::default();
                    held = Some(l);
                }
                Err(e) => {
                    // Named without the lease's expiry, which every renewal
                    // moves: logged once per holder.
                    let detail = match e {
                        LeaseError::HeldBy { holder, .. } => format!(
                            "{} is taken in by another gateway: held by gateway {holder}",
                            source.what()
                        ),
                        e => format!("{} is not taken in: {e}", source.what()),
                    };
                    if lease_note.changed(&detail) {
                        tracing::info!(%device, "{detail}");
                    }
                    tokio::time::sleep(leases.ttl() / 3).await;
                    continue;
                }
            }
        }
        let lost_lease = held.as_ref().map(Lease::lost).unwrap_or_default();
        let mut media = source.start(&gw, &device);
        // A listener may wait long for its caller: the lease can go meanwhile.
        let first = tokio::select! {
            b = media.bytes.recv() => b,
            _ = lost_lease.cancelled() => {
                tracing::warn!(%device, "this gateway lost the device's ingest lease; it stops taking in {}", source.what());
                continue;
            }
        };
        let Some(first) = first else {
            let why = media.ended().await;
            let detail = format!("{} {}: {why}", source.what(), source.cannot());
            if last.changed(&detail) {
                tracing::warn!(%device, "{detail}");
                record(
                    &gw,
                    &device,
                    UsageEvent::UploadFailed,
                    detail,
                    source.known_peer().await,
                )
                .await;
            }
            if let (Some(_), Some(leases)) = (&held, &gw.live.leases) {
                failed_tries += 1;
                if failed_tries >= TRIES_PER_LEASE {
                    tracing::info!(%device, "gives the ingest lease up after {failed_tries} failed attempts: another gateway may reach {}", source.what());
                    held = None;
                    failed_tries = 0;
                    // Long enough for the others, which look every third.
                    tokio::time::sleep(leases.ttl()).await;
                    continue;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
            continue;
        };
        if lost_lease.is_cancelled() {
            continue;
        }
        failed_tries = 0;
        backoff = FIRST_RETRY;
        last = LastOutcome::default();
        let peer_text = media.peer();
        let peer = match &peer_text {
            Some(p) => p.parse().ok(),
            None => source.known_peer().await,
        };
        let session = Arc::new(Session {
            gw: gw.clone(),
            admission,
            fingerprint: String::new(),
            peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            ingest: Some(source.ingest(peer_text.as_deref())),
        });
        let (mut rec, fresh) =
            match recording_for(&session, &device, &source, current.take(), lost.take()).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%device, "no recording for {}: {e}", source.what());
                    session
                        .usage(UsageEvent::UploadFailed, None, format!("no recording: {e}"))
                        .await;
                    drop(media);
                    tokio::time::sleep(max_backoff).await;
                    continue;
                }
            };
        if fresh {
            began = Instant::now();
        }
        let from = session
            .ingest
            .as_ref()
            .map_or("", |i| i.source.as_str())
            .to_string();
        session
            .usage(
                UsageEvent::SessionOpened,
                Some(&rec.id),
                format!(
                    "{name} session with {from} into {device}/{} from stream offset {}",
                    rec.id,
                    rec.stream_durable()
                ),
            )
            .await;
        let _receiving = gw.metrics.ingest_session(source.id_prefix());
        // One session may fill several recordings of at most
        // `max_recording_secs`, each begun at a video keyframe.
        let mut first = first;
        let received = loop {
            let mut loss = matches!(source, Source::Srt(_))
                .then(|| LossWatch::new(rec.stream_durable(), gw.cfg.srt.latency_ms));
            let cut_at = source.max_recording(&gw).map(|m| began + m);
            let r = receive(
                &session,
                &rec,
                first,
                &mut media,
                lost_lease.clone(),
                &mut loss,
                cut_at,
            )
            .await;
            if let Some(lost) = loss.as_mut().and_then(LossWatch::flush) {
                loss_gap(&rec, lost).await;
            }
            match r {
                Ok(Received::Cut { rest, keyframe }) => {
                    match next_recording(&session, &device, &source, &rec, keyframe).await {
                        Ok(next) => {
                            gw.metrics.ingest_cut(source.id_prefix());
                            rec = next;
                            began = Instant::now();
                            first = rest;
                        }
                        Err(e) => break Err(e),
                    }
                }
                Ok(Received::Ended) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let why = match received {
            Ok(()) => media.ended().await,
            Err(e) => e,
        };
        tracing::warn!(%device, id = %rec.id, "{name} session ended: {why}");
        session
            .usage(
                UsageEvent::SessionClosed,
                Some(&rec.id),
                format!("{name} session with {from} ended: {why}"),
            )
            .await;
        lost = Some((custody_format::time_fmt::now(), why));
        current = Some(rec);
        tokio::time::sleep(FIRST_RETRY).await;
    }
}

/// Opens the recording the stream goes on in once `rec` has reached its
/// maximum length, and ends `rec` (`closed_by` = `device`: ended on
/// purpose by the side making the stream, not by timeout) in the
/// background, so that the device's bytes are taken meanwhile.
async fn next_recording(
    s: &Arc<Session>,
    device: &str,
    source: &Source,
    rec: &Arc<LiveRecording>,
    keyframe: bool,
) -> Result<Arc<LiveRecording>, String> {
    let (next, _) = recording_for(s, device, source, None, None).await?;
    let r = rec.clone();
    tokio::spawn(async move {
        let id = r.id.clone();
        let closed = tokio::task::spawn_blocking(move || {
            r.close(custody_format::manifest::ClosedBy::Device)
        })
        .await;
        if !matches!(closed, Ok(Ok(()))) {
            tracing::error!(%id, "a recording at its maximum length could not be closed: {closed:?}");
        }
    });
    let detail = format!(
        "{device}/{} reached {} s and was closed {}; the {} stream goes on in {device}/{}",
        rec.id,
        source.max_recording(&s.gw).map_or(0, |d| d.as_secs()),
        if keyframe {
            "at a video keyframe"
        } else {
            "at the start of a received chunk (no video keyframe came)"
        },
        source.protocol(),
        next.id
    );
    tracing::info!(%device, "{detail}");
    s.usage(UsageEvent::SessionOpened, Some(&next.id), detail)
        .await;
    Ok(next)
}

/// The recording the device's stream goes on in: the one it was in, if
/// still open (the time it was away recorded as a gap), or a new one.
async fn recording_for(
    s: &Arc<Session>,
    device: &str,
    source: &Source,
    current: Option<Arc<LiveRecording>>,
    lost: Option<(String, String)>,
) -> Result<(Arc<LiveRecording>, bool), String> {
    if let Some(rec) = current.filter(|r| r.attach()) {
        if let Some((since, why)) = lost {
            let r = rec.clone();
            let to = rec.stream_durable();
            let reason = format!(
                "the {} session with the device was lost ({why}) and made again",
                source.protocol()
            );
            let res = tokio::task::spawn_blocking(move || {
                r.gap(to, "source-restart", &reason, Some(since))
            })
            .await;
            if !matches!(res, Ok(Ok(()))) {
                rec.detach();
                return Err("the gap could not be recorded".into());
            }
        }
        return Ok((rec, false));
    }
    let now = custody_format::clock::now();
    let meta = RecordingMeta {
        recording_id: recording_id(source.id_prefix(), now),
        mode: Some(RecordingMode::Live),
        ..Default::default()
    };
    let rec = crate::session::live::open_live(s, device, &meta, None)
        .await
        .map_err(|f| f.message)?;
    if !rec.attach() {
        return Err(format!("recording {device}/{} closed as it opened", rec.id));
    }
    Ok((rec, true))
}

/// How long past its maximum length a recording waits for a video
/// keyframe before it is cut at a packet boundary anyway.
const CUT_GRACE: Duration = Duration::from_secs(30);

/// Records packets the transport lost as a gap where the stream is now.
async fn loss_gap(rec: &Arc<LiveRecording>, (reason, packets): (String, u64)) {
    rec.metrics().ingest_lost_packets(loss::PROTOCOL, packets);
    let r = rec.clone();
    let to = rec.stream_durable();
    let res = tokio::task::spawn_blocking(move || r.gap(to, loss::KIND, &reason, None)).await;
    if !matches!(res, Ok(Ok(()))) {
        tracing::error!(id = %rec.id, "transport loss not recorded as a gap: {res:?}");
    }
}

/// A device's recordings are named by their protocol and when they began
/// (UTC, to the millisecond): `rtsp-20261208T010203.456Z`.
fn recording_id(prefix: &str, at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{prefix}-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Writes the device's bytes into the recording's spool file until the
/// puller stops; the recording follows what becomes durable. `Err` says
/// why it stopped when it was the gateway's side.
async fn receive(
    s: &Session,
    rec: &Arc<LiveRecording>,
    first: Bytes,
    media: &mut Media,
    lost_lease: CancellationToken,
    loss: &mut Option<LossWatch>,
    cut_at: Option<Instant>,
) -> Result<Received, String> {
    struct Detach<'a>(&'a LiveRecording);
    impl Drop for Detach<'_> {
        fn drop(&mut self) {
            self.0.detach();
        }
    }
    let _attached = Detach(rec);
    let gw = &s.gw;
    let e = rec.entry.clone();
    let writer = tokio::task::spawn_blocking(move || OriginalWriter::open_unhashed(&e))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the spool cannot be written: {e}"))?;
    let mut file_end = writer.durable();
    let (tx, rx) = mpsc::channel::<WriterItem>(8);
    let (dtx, mut drx) = watch::channel(writer.durable());
    let pace = SyncPace::live(gw.cfg.gateway.ack_bytes);
    let space = gw.space.clone();
    let job = tokio::task::spawn_blocking(move || run_writer(writer, rx, dtx, pace, &space));
    let received = gw.metrics.received(Kind::Live);
    let mut next = Some(first);
    let mut failed = None;
    let mut cut = None;
    loop {
        let b = match next.take() {
            Some(b) => b,
            None => tokio::select! {
                b = media.bytes.recv() => match b {
                    Some(b) => b,
                    None => break,
                },
                ch = drx.changed() => {
                    if ch.is_ok() {
                        rec.on_durable(*drx.borrow_and_update());
                    }
                    continue;
                }
                _ = lost_lease.cancelled() => {
                    failed = Some("this gateway lost the device's ingest lease".to_string());
                    break;
                }
            },
        };
        let mut b = b;
        let now = Instant::now();
        if let Some(at) = cut_at.filter(|at| now >= *at) {
            // At the next video keyframe (with the tables just before it);
            // a stream without one (audio only) at the start of a chunk
            // once CUT_GRACE has passed too.
            let split = match keyframe_cut(&b) {
                Some(k) => Some((k, true)),
                None => (now >= at + CUT_GRACE).then_some((0, false)),
            };
            if let Some((k, keyframe)) = split {
                cut = Some((b.split_off(k), keyframe));
                if b.is_empty() {
                    break;
                }
            }
        }
        received.inc_by(b.len() as u64);
        file_end += b.len() as u64;
        let due = loss.as_mut().and_then(|w| {
            w.feed(&b);
            w.due(now)
        });
        if tx.send(WriterItem::Data(b)).await.is_err() {
            failed = Some("the spool writer stopped".to_string());
            break;
        }
        rec.on_arrival(file_end);
        if let Some(lost) = due {
            // The gap goes after the bytes with the hole: durable first.
            let Some(durable) = sync(&tx).await else {
                failed = Some("the spool writer stopped".to_string());
                break;
            };
            rec.on_durable(durable);
            loss_gap(rec, lost).await;
        }
        if cut.is_some() {
            break;
        }
    }
    drop(tx);
    match job.await.map_err(|e| e.to_string())? {
        Ok((durable, _)) => rec.on_durable(durable),
        Err(e) => {
            rec.on_durable(*drx.borrow());
            return Err(format!("spool write failed: {e}"));
        }
    }
    match (failed, cut) {
        (Some(e), _) => Err(e),
        (None, Some((rest, keyframe))) => Ok(Received::Cut { rest, keyframe }),
        (None, None) => Ok(Received::Ended),
    }
}

/// How [`receive`] stopped without failing.
enum Received {
    /// The device's stream ended.
    Ended,
    /// The recording reached its maximum length; `rest` begins the next
    /// one: a video keyframe (and the tables before it) if `keyframe`.
    Cut { rest: Bytes, keyframe: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_named_by_their_start_in_utc() {
        let at = time::macros::datetime!(2026-12-08 09:02:03.456 +08:00);
        let id = recording_id("rtsp", at);
        assert_eq!(id, "rtsp-20261208T010203.456Z");
        assert!(custody_format::metadata::valid_id(&id));
    }

    #[test]
    fn an_outcome_is_recorded_once_until_it_changes() {
        let mut l = LastOutcome::default();
        assert!(l.changed("refused"));
        assert!(!l.changed("refused"));
        assert!(l.changed("unreachable"));
        assert!(l.changed("refused"));
    }
}
