//! Fixed cameras pulled over RTSP. Every device the ledger lists with a
//! `[device.rtsp]` source is pulled while the ledger admits it; its stream
//! (depayloaded, in MPEG-TS: `custody_media::rtsp`) becomes a live
//! recording exactly like a recorder's QUIC stream — spooled, remuxed,
//! chained, closed by the watchdog when the camera stays away. A lost
//! camera is reached again with back-off; the time it was away is a
//! `source-restart` gap of its recording.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::ledger::{RtspCamera, RtspTransport};
use crate::live::LiveRecording;
use crate::metrics::Kind;
use crate::session::Session;
use crate::shared::Gateway;
use crate::spool::writer::{OriginalWriter, SyncPace, WriterItem, run_writer};
use crate::usage::{Usage, UsageEvent};
use custody_format::manifest::Ingest;
use custody_format::metadata::{RecordingMeta, RecordingMode};

/// How often the ledger is read again for cameras added, changed or
/// removed.
const LEDGER_POLL: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Keeps one puller per camera the ledger lists, restarting it when its
/// source changes and stopping it when the camera leaves the ledger.
pub async fn supervise(gw: Arc<Gateway>) {
    let mut running: HashMap<String, (RtspCamera, Puller)> = HashMap::new();
    loop {
        let ledger = gw.ledger.current();
        let wanted: HashMap<String, RtspCamera> = ledger
            .devices()
            .filter_map(|d| Some((d.id.clone(), d.rtsp.clone()?)))
            .collect();
        running.retain(|id, (cam, p)| wanted.get(id) == Some(cam) && !p.0.is_finished());
        for (id, cam) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(id) {
                let id = slot.key().clone();
                tracing::info!(device = %id, url = %cam.url, "pulling RTSP camera");
                let task = tokio::spawn(pull_camera(gw.clone(), id, cam.clone()));
                slot.insert((cam, Puller(task)));
            }
        }
        tokio::time::sleep(LEDGER_POLL).await;
    }
}

/// A camera's puller, stopped when dropped.
struct Puller(tokio::task::JoinHandle<()>);

impl Drop for Puller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the last attempt to reach the camera ended with, so that a camera
/// down for hours leaves one usage record, not one per retry.
#[derive(Default)]
struct LastOutcome(Option<String>);

impl LastOutcome {
    fn changed(&mut self, now: &str) -> bool {
        let changed = self.0.as_deref() != Some(now);
        self.0 = Some(now.to_string());
        changed
    }
}

/// One camera, for as long as the ledger lists it with this source.
async fn pull_camera(gw: Arc<Gateway>, device: String, cam: RtspCamera) {
    let max_backoff = Duration::from_secs(gw.cfg.rtsp.max_backoff_secs.max(1));
    let mut backoff = FIRST_RETRY;
    let mut current: Option<Arc<LiveRecording>> = None;
    // When and why the last session with the camera ended.
    let mut lost: Option<(String, String)> = None;
    let mut last = LastOutcome::default();
    let peer = peer_of(&cam.url).await;
    loop {
        let now = custody_format::clock::now();
        let admission = match gw.ledger.current().admit(&device, now) {
            Ok(a) => a,
            Err(refusal) => {
                let detail = format!(
                    "{}: {} (the RTSP camera is not pulled)",
                    refusal.code.name(),
                    refusal.reason
                );
                if last.changed(&detail) {
                    gw.metrics
                        .refused(crate::metrics::Refusal::Admission(refusal.code));
                    record(&gw, &device, None, UsageEvent::Refused, None, detail, peer).await;
                }
                tokio::time::sleep(max_backoff).await;
                continue;
            }
        };
        let session = Arc::new(Session {
            gw: gw.clone(),
            admission,
            fingerprint: String::new(),
            peer,
            ingest: Some(Ingest {
                protocol: "rtsp".into(),
                source: cam.url.clone(),
                identified_by: "ledger-url".into(),
            }),
        });
        let mut media = start_pull(&gw, &device, &cam);
        let Some(first) = media.bytes.recv().await else {
            let why = media.ended().await;
            let detail = format!("the RTSP camera {} cannot be pulled: {why}", cam.url);
            if last.changed(&detail) {
                tracing::warn!(%device, "{detail}");
                session.usage(UsageEvent::UploadFailed, None, detail).await;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
            continue;
        };
        backoff = FIRST_RETRY;
        last = LastOutcome::default();
        let rec = match recording_for(&session, &device, current.take(), lost.take()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(%device, "no recording for the RTSP camera: {e}");
                session
                    .usage(UsageEvent::UploadFailed, None, format!("no recording: {e}"))
                    .await;
                drop(media);
                tokio::time::sleep(max_backoff).await;
                continue;
            }
        };
        session
            .usage(
                UsageEvent::SessionOpened,
                Some(&rec.id),
                format!(
                    "RTSP session with {} into {device}/{} from stream offset {}",
                    cam.url,
                    rec.id,
                    rec.stream_durable()
                ),
            )
            .await;
        let why = match receive(&session, &rec, first, &mut media).await {
            Ok(()) => media.ended().await,
            Err(e) => e,
        };
        tracing::warn!(%device, id = %rec.id, "RTSP session ended: {why}");
        session
            .usage(
                UsageEvent::SessionClosed,
                Some(&rec.id),
                format!("RTSP session with {} ended: {why}", cam.url),
            )
            .await;
        lost = Some((custody_format::time_fmt::now(), why));
        current = Some(rec);
        tokio::time::sleep(backoff).await;
    }
}

async fn record(
    gw: &Gateway,
    device: &str,
    officer: Option<&str>,
    event: UsageEvent,
    recording_id: Option<&str>,
    detail: String,
    peer: SocketAddr,
) {
    gw.usage
        .record(Usage {
            device,
            officer,
            event,
            recording_id,
            detail,
            peer: Some(peer),
        })
        .await;
}

/// The camera's address, for usage records (unspecified if its name does
/// not resolve now).
async fn peer_of(url: &str) -> SocketAddr {
    let authority = url
        .strip_prefix("rtsp://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:554")
    };
    match tokio::net::lookup_host(with_port).await {
        Ok(mut a) => a.next(),
        Err(_) => None,
    }
    .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// The camera's MPEG-TS as the puller thread makes it.
struct Media {
    bytes: mpsc::Receiver<Bytes>,
    end: oneshot::Receiver<String>,
}

impl Media {
    /// Why the puller stopped (after its bytes ran out).
    async fn ended(&mut self) -> String {
        (&mut self.end)
            .await
            .unwrap_or_else(|_| "the puller stopped".into())
    }
}

/// Starts pulling the camera on its own thread. Dropping the [`Media`]
/// stops it (at its next buffer, or when the camera stalls).
fn start_pull(gw: &Gateway, device: &str, cam: &RtspCamera) -> Media {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let (etx, erx) = oneshot::channel();
    let cam = cam.clone();
    let stall = Duration::from_secs(gw.cfg.rtsp.stall_secs.max(1));
    let dev = device.to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("rtsp-{device}"))
        .spawn(move || {
            let src = custody_media::rtsp::RtspSource {
                url: &cam.url,
                username: cam.username.as_deref(),
                password: cam.password.as_deref(),
                tcp: cam.transport == RtspTransport::Tcp,
            };
            let left_out = move |what: String| {
                tracing::warn!(device = %dev, "left out of the recording: {what}");
            };
            let r = custody_media::rtsp::pull(&src, stall, left_out, &mut |b| {
                tx.blocking_send(Bytes::from(b)).is_ok()
            });
            let _ = etx.send(match r {
                Ok(()) => "the camera ended its stream".to_string(),
                Err(e) => e.to_string(),
            });
        });
    if let Err(e) = spawned {
        tracing::error!(%device, "cannot start the RTSP puller: {e}");
    }
    Media {
        bytes: rx,
        end: erx,
    }
}

/// The recording the camera's stream goes on in: the one it was in, if
/// still open (the time it was away recorded as a gap), or a new one.
async fn recording_for(
    s: &Arc<Session>,
    device: &str,
    current: Option<Arc<LiveRecording>>,
    lost: Option<(String, String)>,
) -> Result<Arc<LiveRecording>, String> {
    if let Some(rec) = current.filter(|r| r.attach()) {
        if let Some((since, why)) = lost {
            let r = rec.clone();
            let to = rec.stream_durable();
            let reason =
                format!("the RTSP session with the camera was lost ({why}) and made again");
            let res = tokio::task::spawn_blocking(move || {
                r.gap(to, "source-restart", &reason, Some(since))
            })
            .await;
            if !matches!(res, Ok(Ok(()))) {
                rec.detach();
                return Err("the gap could not be recorded".into());
            }
        }
        return Ok(rec);
    }
    let now = custody_format::clock::now();
    let meta = RecordingMeta {
        recording_id: recording_id(now),
        mode: Some(RecordingMode::Live),
        ..Default::default()
    };
    let rec = crate::session::live::open_live(s, device, &meta, None)
        .await
        .map_err(|f| f.message)?;
    if !rec.attach() {
        return Err(format!("recording {device}/{} closed as it opened", rec.id));
    }
    Ok(rec)
}

/// A camera's recordings are named by when they began (UTC, to the
/// millisecond): `rtsp-20261208T010203.456Z`.
fn recording_id(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "rtsp-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Writes the camera's bytes into the recording's spool file until the
/// puller stops; the recording follows what becomes durable. `Err` says
/// why it stopped when it was the gateway's side.
async fn receive(
    s: &Session,
    rec: &Arc<LiveRecording>,
    first: Bytes,
    media: &mut Media,
) -> Result<(), String> {
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
            },
        };
        received.inc_by(b.len() as u64);
        file_end += b.len() as u64;
        if tx.send(WriterItem::Data(b)).await.is_err() {
            failed = Some("the spool writer stopped".to_string());
            break;
        }
        rec.on_arrival(file_end);
    }
    drop(tx);
    match job.await.map_err(|e| e.to_string())? {
        Ok((durable, _)) => rec.on_durable(durable),
        Err(e) => {
            rec.on_durable(*drx.borrow());
            return Err(format!("spool write failed: {e}"));
        }
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_named_by_their_start_in_utc() {
        let at = time::macros::datetime!(2026-12-08 09:02:03.456 +08:00);
        let id = recording_id(at);
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

    #[tokio::test]
    async fn a_camera_address_is_its_host_and_port() {
        assert_eq!(
            peer_of("rtsp://127.0.0.1:8554/cam").await,
            "127.0.0.1:8554".parse().unwrap()
        );
        assert_eq!(
            peer_of("rtsp://127.0.0.1/cam").await,
            "127.0.0.1:554".parse().unwrap()
        );
    }
}
