//! The recorder side of live streaming (`custody record`): produce into the
//! local buffer, stream to the gateway, and when the link drops reconnect
//! with backoff and resend from the last acknowledged offset of the same
//! recording.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::ring::Ring;
use super::source::{self, Produced, Source};
use super::{Client, ClientError};
use custody_format::manifest::Gap;
use custody_format::metadata::RecordingMeta;
use custody_proto::frame::{self, Frame};
use custody_proto::{DerivationNote, LiveControl, Reply, Request, StreamError};

/// Data frames are kept small so the gateway sees bytes as they are made.
const FRAME: usize = 64 * 1024;

pub struct RecordOptions {
    /// Metadata; the recording id comes from the buffer's state.
    pub meta: RecordingMeta,
    pub state_dir: PathBuf,
    pub buffer_bytes: u64,
    pub source: Source,
    pub duration: Option<Duration>,
    /// A copy of every byte produced, for comparing with what was stored.
    pub tee: Option<PathBuf>,
    /// A recording id for a new recording (default: device and time).
    pub recording_id: Option<String>,
    /// Marks to set while recording, each when this long has passed since
    /// the start (R3: scene, persons, evidence, … — as an officer presses
    /// a button on the recorder).
    pub marks: Vec<(Duration, custody_format::metadata::Marker)>,
}

#[derive(Debug, Clone)]
pub struct RecordOutcome {
    pub recording_id: String,
    pub manifest_key: String,
    pub bytes: u64,
    pub complete: bool,
    pub gaps: Vec<Gap>,
    pub reconnects: u32,
    /// What the gateway derived from the stream.
    pub derivation: DerivationNote,
    /// Why the source stopped early, if it failed (what it produced
    /// before is stored; the recording was ended there).
    pub source_error: Option<String>,
}

/// Events for whoever shows progress.
#[derive(Debug, Clone)]
pub enum RecordEvent {
    Connected { offset: u64 },
    Disconnected(String),
    Acked(u64),
}

#[derive(Default)]
struct Marks {
    due: std::collections::VecDeque<(std::time::Instant, custody_format::metadata::Marker)>,
    sent: Vec<(std::time::Instant, custody_format::metadata::Marker)>,
}

struct Shared {
    ring: Mutex<Ring>,
    more: Notify,
    /// Marks not yet sent, with when they are due, and those sent on the
    /// current stream (no acknowledgement: if the link drops they are sent
    /// again on the next, and the gateway drops the repeats).
    marks: Mutex<Marks>,
    /// Why the source failed, set before the end is marked in the buffer.
    source_error: Mutex<Option<String>>,
    /// The current stream was accepted by the gateway.
    accepted: std::sync::atomic::AtomicBool,
    /// The source produces the same bytes again from a saved position (a
    /// file).
    replays: bool,
}

fn new_id(device_hint: &str) -> String {
    let t = custody_format::clock::now();
    format!(
        "{device_hint}-{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub async fn record(
    client: &Client,
    opts: RecordOptions,
    events: &(dyn Fn(RecordEvent) + Send + Sync),
) -> Result<RecordOutcome, ClientError> {
    let file_err = |e: std::io::Error| ClientError::File {
        path: opts.state_dir.display().to_string(),
        source: e,
    };
    // A source that cannot start (a missing GStreamer element, a file that
    // does not open) is refused before anything is created — here or at
    // the gateway — unless it has already ended and only its buffer is left
    // to send.
    let saved = Ring::saved_state(&opts.state_dir).map_err(file_err)?;
    if !saved.is_some_and(|s| s.ended) {
        source::check(&opts.source)?;
    }
    let hint = opts.meta.recorder.clone().unwrap_or_else(|| "rec".into());
    let wanted = opts.recording_id.clone();
    let (ring, resumed) = Ring::open(&opts.state_dir, opts.buffer_bytes, || {
        wanted.unwrap_or_else(|| new_id(&hint))
    })
    .map_err(file_err)?;
    if ring.state.closed {
        return Err(ClientError::Config(format!(
            "recording {} in {} is already closed",
            ring.state.recording_id,
            opts.state_dir.display()
        )));
    }
    let mut meta = opts.meta.clone();
    meta.recording_id = ring.state.recording_id.clone();
    // A recorder that restarted cannot reproduce what its camera saw while
    // it was down: the gateway is told, unless the source is a file that
    // simply continues.
    let mut restart_gap =
        (resumed && !ring.state.ended && !matches!(opts.source, Source::File { .. }))
            .then(|| (ring.state.last_produced_at.clone(), ring.produced()));
    let source = match opts.source.clone() {
        Source::File { path, .. } => Source::File {
            path,
            start: ring.state.source_pos,
        },
        s => s,
    };
    let ended_before = ring.state.ended;
    let start = std::time::Instant::now();
    let mut marks: Vec<_> = opts
        .marks
        .iter()
        .map(|(d, m)| (start + *d, m.clone()))
        .collect();
    marks.sort_by_key(|(t, _)| *t);
    let shared = Arc::new(Shared {
        ring: Mutex::new(ring),
        more: Notify::new(),
        marks: Mutex::new(Marks {
            due: marks.into(),
            sent: Vec::new(),
        }),
        source_error: Mutex::new(None),
        accepted: std::sync::atomic::AtomicBool::new(false),
        replays: matches!(source, Source::File { .. }),
    });

    // Producer: source → buffer (→ tee).
    let producer = if ended_before {
        None
    } else {
        let (tx, mut rx) = mpsc::channel::<Produced>(64);
        let thread = source::spawn(source, opts.duration, tx);
        let sh = shared.clone();
        let mut tee = match &opts.tee {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| ClientError::File {
                        path: p.display().to_string(),
                        source: e,
                    })?,
            ),
            None => None,
        };
        Some(tokio::spawn(async move {
            let mut last_persist = Instant::now();
            while let Some(p) = rx.recv().await {
                let mut r = sh.ring.lock().expect("ring");
                match p {
                    Produced::Bytes(b) => {
                        if let Some(t) = tee.as_mut() {
                            use std::io::Write;
                            let _ = t.write_all(&b);
                        }
                        if let Err(e) = r.append(&b) {
                            // Bytes the buffer cannot keep are not recorded:
                            // the recording ends here, saying why, rather
                            // than going on with a hole nobody knows about.
                            tracing::error!("recorder buffer: {e}; ending the recording");
                            *sh.source_error.lock().expect("source error") =
                                Some(format!("the recorder's buffer could not keep bytes: {e}"));
                            r.state.ended = true;
                            let _ = r.persist();
                            drop(r);
                            sh.more.notify_waiters();
                            break;
                        }
                        r.state.source_pos += b.len() as u64;
                        if last_persist.elapsed() > Duration::from_millis(500) {
                            let _ = r.persist();
                            last_persist = Instant::now();
                        }
                    }
                    Produced::End(error) => {
                        if let Some(e) = error {
                            *sh.source_error.lock().expect("source error") = Some(e.to_string());
                        }
                        r.state.ended = true;
                        let _ = r.persist();
                    }
                }
                drop(r);
                sh.more.notify_waiters();
            }
            // A source still producing stops once nobody takes its bytes.
            drop(rx);
            let _ = thread.join();
        }))
    };

    let buffer_log = tokio::spawn(log_buffer(shared.clone()));
    let mut backoff = Duration::from_millis(200);
    let mut reconnects = 0u32;
    let outcome = loop {
        match stream_once(client, &meta, &shared, &mut restart_gap, events).await {
            Ok(o) => break Ok(o),
            Err(e) if e.is_retryable() => {
                if e.is_stream(StreamError::RecordingBusy) {
                    client.try_another();
                }
                events(RecordEvent::Disconnected(e.to_string()));
                reconnects += 1;
                // A stream the gateway accepted was a working link: the next
                // outage starts its back-off over.
                if shared
                    .accepted
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    backoff = Duration::from_millis(200);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => break Err(e),
        }
    };
    if let Some(p) = producer {
        p.abort();
    }
    buffer_log.abort();
    let (gaps, manifest_key, complete, derivation) = outcome?;
    let mut r = shared.ring.lock().expect("ring");
    r.state.closed = true;
    let _ = r.persist();
    Ok(RecordOutcome {
        recording_id: meta.recording_id,
        manifest_key,
        bytes: r.produced(),
        complete,
        gaps,
        reconnects,
        derivation,
        source_error: shared.source_error.lock().expect("source error").take(),
    })
}

/// Logs how full the buffer is every second, at debug level under
/// `custody::buffer`: on a slow or lossy link this is how far the
/// recorder runs behind what it makes.
async fn log_buffer(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = shared.ring.lock().expect("ring");
        tracing::debug!(
            target: "custody::buffer",
            produced = r.produced(),
            acked = r.state.acked,
            unacked = r.unacked(),
            ended = r.state.ended,
            "recorder buffer"
        );
    }
}

/// One connection's worth of streaming; `Ok` once the gateway closed the
/// recording.
async fn stream_once(
    client: &Client,
    meta: &RecordingMeta,
    shared: &Arc<Shared>,
    restart_gap: &mut Option<(String, u64)>,
    events: &(dyn Fn(RecordEvent) + Send + Sync),
) -> Result<(Vec<Gap>, String, bool, DerivationNote), ClientError> {
    let conn = client.connect().await?;
    let w = |e: frame::FrameError| ClientError::Protocol(e.to_string());
    // The request carries this recorder's clock; a gateway too old to know
    // the field refuses it, and is asked again without.
    let mut device_clock = Some(custody_format::time_fmt::now());
    let (mut send, mut recv, offset) = loop {
        let (mut send, mut recv) = conn.open_bi().await.map_err(ClientError::from_connection)?;
        frame::write_msg(
            &mut send,
            &Request::Live {
                meta: Box::new(meta.clone()),
                device_clock: device_clock.clone(),
            },
        )
        .await
        .map_err(w)?;
        match read_reply(&mut recv).await {
            Ok(Some(Reply::Accepted { offset, .. })) => break (send, recv, offset),
            Err(e) if device_clock.is_some() && e.refuses_device_clock() => device_clock = None,
            Err(e) => return Err(e),
            Ok(other) => {
                return Err(ClientError::Protocol(format!(
                    "expected accepted, got {other:?}"
                )));
            }
        }
    };
    {
        // Marks sent on a stream that broke may not have arrived: again.
        let mut m = shared.marks.lock().expect("marks");
        let again: Vec<_> = m.sent.drain(..).collect();
        for x in again.into_iter().rev() {
            m.due.push_front(x);
        }
    }
    shared
        .accepted
        .store(true, std::sync::atomic::Ordering::Relaxed);
    events(RecordEvent::Connected { offset });
    let mut pos = offset;
    {
        let mut r = shared.ring.lock().expect("ring");
        if pos > r.produced() {
            // The recorder crashed after the gateway had these bytes but
            // before it saved how far it had got: the gateway's word counts.
            if shared.replays {
                // A file is read again from the saved position: what it
                // produces up to `pos` is what the gateway has.
                r.skip_produced_until(pos);
            } else {
                // A camera's or standard input's bytes are new: they go
                // after what the gateway holds.
                let lost_locally = pos - r.produced();
                r.state.produced = pos;
                r.state.source_pos += lost_locally;
                let _ = r.persist();
            }
            if let Some((_, at)) = restart_gap.as_mut() {
                *at = (*at).max(pos);
            }
        }
    }

    // Replies: acknowledgements and, at the end, the close.
    let sh = shared.clone();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut closed_tx = Some(closed_tx);
        loop {
            match read_reply(&mut recv).await {
                Ok(Some(Reply::Ack { durable })) => {
                    sh.ring.lock().expect("ring").ack(durable);
                }
                Ok(Some(Reply::Closed {
                    manifest_key,
                    complete,
                    gaps,
                    derivation,
                    ..
                })) => {
                    if let Some(t) = closed_tx.take() {
                        let _ = t.send(Ok((gaps, manifest_key, complete, derivation)));
                    }
                }
                Ok(Some(other)) => {
                    if let Some(t) = closed_tx.take() {
                        let _ = t.send(Err(ClientError::Protocol(format!(
                            "unexpected reply {other:?}"
                        ))));
                    }
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    if let Some(t) = closed_tx.take() {
                        let _ = t.send(Err(e));
                    }
                    return;
                }
            }
        }
    });

    let mut restart_gap_sent = false;
    let sent = async {
        loop {
            let more = shared.more.notified();
            let (chunk, floor, ended, produced, acked) = {
                let r = shared.ring.lock().expect("ring");
                let floor = r.floor();
                let chunk = if pos >= floor {
                    r.read(pos, FRAME)
                } else {
                    Ok(Vec::new())
                };
                (chunk, floor, r.state.ended, r.produced(), r.state.acked)
            };
            events(RecordEvent::Acked(acked));
            // The restart, once the bytes held from before it are sent: a
            // gap where the bytes produced after it begin. Sent on every
            // stream until the gateway acknowledges bytes beyond it (then it
            // was recorded; the gateway drops a repeat of the same gap).
            if let Some((since, at)) = restart_gap.clone() {
                if acked > at {
                    *restart_gap = None;
                } else if !restart_gap_sent && pos >= at {
                    frame::write_msg(
                        &mut send,
                        &LiveControl::Gap {
                            to: pos,
                            kind: "source-restart".into(),
                            reason:
                                "the recorder restarted; nothing was recorded while it was down"
                                    .into(),
                            since: Some(since),
                        },
                    )
                    .await
                    .map_err(w)?;
                    restart_gap_sent = true;
                    continue;
                }
            }
            // A mark that is due goes out now; it leaves the queue only
            // once sent, so a lost link sends it on the next one.
            let due = {
                let m = shared.marks.lock().expect("marks");
                m.due
                    .front()
                    .filter(|(t, _)| *t <= std::time::Instant::now())
                    .map(|(_, m)| m.clone())
            };
            if let Some(marker) = due {
                frame::write_msg(&mut send, &LiveControl::Mark { marker })
                    .await
                    .map_err(w)?;
                let mut m = shared.marks.lock().expect("marks");
                if let Some(x) = m.due.pop_front() {
                    m.sent.push(x);
                }
                continue;
            }
            if pos < floor {
                // The link was down longer than the buffer lasts.
                frame::write_msg(
                    &mut send,
                    &LiveControl::Gap {
                        to: floor,
                        kind: "lost-bytes".into(),
                        reason: format!(
                            "the recorder's buffer overflowed while the link was down: bytes {pos}..{floor} were overwritten"
                        ),
                        since: None,
                    },
                )
                .await
                .map_err(w)?;
                pos = floor;
                continue;
            }
            let chunk = chunk.map_err(|e| ClientError::File {
                path: "recorder buffer".into(),
                source: e,
            })?;
            if !chunk.is_empty() {
                send.write_all(&frame::data_header(chunk.len()))
                    .await
                    .map_err(super::dock::write_err)?;
                send.write_all(&chunk)
                    .await
                    .map_err(super::dock::write_err)?;
                pos += chunk.len() as u64;
                continue;
            }
            if ended && pos >= produced {
                frame::write_msg(&mut send, &LiveControl::End)
                    .await
                    .map_err(w)?;
                return Ok::<(), ClientError>(());
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), more).await;
        }
    };
    if let Err(e) = sent.await {
        // A gateway that refuses the stream says why on the reply stream,
        // then stops it: its answer (and whether it is worth retrying)
        // counts over the failed write.
        if matches!(e, ClientError::Stream(_) | ClientError::Protocol(_))
            && let Ok(Ok(Err(refused @ ClientError::Stream(_)))) =
                tokio::time::timeout(Duration::from_secs(2), closed_rx).await
        {
            reader.abort();
            return Err(refused);
        }
        reader.abort();
        return Err(e);
    }
    let r = closed_rx.await.map_err(|_| {
        ClientError::Protocol("the stream ended before the recording closed".into())
    })?;
    reader.abort();
    let _ = send.finish();
    conn.close(0u32.into(), b"done");
    r
}

async fn read_reply(recv: &mut quinn::RecvStream) -> Result<Option<Reply>, ClientError> {
    match frame::read_frame(recv).await {
        Ok(None) => Ok(None),
        Ok(Some(Frame::Msg(m))) => match frame::decode::<Reply>(&m) {
            Ok(Reply::Error(b)) => Err(ClientError::Stream(b)),
            Ok(r) => Ok(Some(r)),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        },
        Ok(Some(Frame::Data(_))) => Err(ClientError::Protocol("gateway sent a data frame".into())),
        Err(frame::FrameError::Io(e)) => Err(ClientError::Protocol(format!("connection: {e}"))),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}
