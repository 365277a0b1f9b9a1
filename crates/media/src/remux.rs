//! Runs an input-kind pipeline over an original's bytes and hands the
//! muxer's output — one initialisation segment, then one media fragment at
//! a time — to an [`Output`]. No decoder or encoder is ever in the path:
//! tracks go demuxer → queue → parser → muxer, and a track whose codec the
//! muxer cannot carry is left out and reported, never transcoded.
//!
//! Memory is bounded whatever the input size: the appsrc holds at most
//! `SRC_MAX_BYTES`, the per-track queues a few seconds, and each fragment is
//! handed on as soon as the muxer closes it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::fmp4::{self, Timeline};
use super::mp4;
use super::registry::{Access, Registry, Timestamps};
use super::selfcheck::{self, Expected, Observed};
use super::typefind;

const SRC_MAX_BYTES: u64 = 8 << 20;
const READ_CHUNK: usize = 1 << 20;

/// Added to every track's running time before the muxer, which clamps
/// negative presentation times to zero (the AAC encoder-priming frame and
/// frames before an MP4 edit list's start have them; clamped, a sample
/// would last nothing). With `offset-to-zero` the derivative's timeline
/// still starts at zero, at the earliest sample of any track.
const PTS_HEADROOM: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// Where the input bytes come from.
pub enum Input {
    /// A complete file.
    File(PathBuf),
    /// A file still being written (an upload in progress); `growth` says
    /// how much of it is there and whether it is complete. Reading starts
    /// at byte `start` (a live pipeline restarted mid-stream).
    Growing {
        path: PathBuf,
        growth: Arc<Growth>,
        start: u64,
    },
}

impl Input {
    fn path(&self) -> &Path {
        match self {
            Input::File(p) | Input::Growing { path: p, .. } => p,
        }
    }
}

/// How much of a growing file may be read, shared by writer and reader.
#[derive(Debug, Default)]
pub struct Growth {
    state: Mutex<GrowthState>,
    cond: Condvar,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct GrowthState {
    available: u64,
    complete: bool,
    abandoned: bool,
}

impl Growth {
    pub fn new(available: u64) -> Arc<Growth> {
        Arc::new(Growth {
            state: Mutex::new(GrowthState {
                available,
                ..Default::default()
            }),
            cond: Condvar::new(),
        })
    }

    fn update(&self, f: impl FnOnce(&mut GrowthState)) {
        let mut s = self.state.lock().expect("growth lock");
        f(&mut s);
        self.cond.notify_all();
    }

    /// More bytes are readable.
    pub fn advance(&self, available: u64) {
        self.update(|s| s.available = s.available.max(available));
    }

    /// No more bytes will come: the file is complete at `available`.
    pub fn finish(&self, available: u64) {
        self.update(|s| {
            s.available = s.available.max(available);
            s.complete = true;
        });
    }

    /// The file will not be completed now (the upload was interrupted):
    /// the reader gives up and the pipeline stops without a result.
    pub fn abandon(&self) {
        self.update(|s| s.abandoned = true);
    }

    /// Waits until more than `have` bytes are readable, or the file is
    /// complete or abandoned.
    fn wait_beyond(&self, have: u64, timeout: Duration) -> GrowthState {
        let s = self.state.lock().expect("growth lock");
        let (s, _) = self
            .cond
            .wait_timeout_while(s, timeout, |s| {
                s.available <= have && !s.complete && !s.abandoned
            })
            .expect("growth lock");
        *s
    }
}

#[derive(Debug, Clone)]
pub struct RemuxOptions {
    /// Target media segment duration (segments start at keyframes).
    pub fragment_duration: Duration,
    /// Low-latency chunk duration within a fragment, if any.
    pub chunk_duration: Option<Duration>,
    /// Give up when neither bytes nor fragments move for this long.
    pub stall_timeout: Duration,
}

impl Default for RemuxOptions {
    fn default() -> Self {
        RemuxOptions {
            fragment_duration: Duration::from_secs(2),
            chunk_duration: None,
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// One media fragment as the muxer closed it.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Input bytes handed to the pipeline when the fragment closed (an
    /// absolute file offset): everything the fragment holds came from
    /// before it.
    pub input_end: u64,
    pub data: Vec<u8>,
    /// Media time from the start of the recording, seconds.
    pub start: f64,
    pub duration: f64,
}

/// A low-latency part of a fragment (a CMAF chunk), as soon as the muxer
/// makes it.
#[derive(Debug)]
pub struct Part<'a> {
    pub data: &'a [u8],
    pub start: f64,
    pub duration: f64,
    /// Starts a fragment (and so with a keyframe).
    pub independent: bool,
    /// Input bytes handed to the pipeline when the part was made (an
    /// absolute file offset).
    pub input_end: u64,
}

/// Receives the muxer's output. Errors stop the pipeline.
pub trait Output: Send + 'static {
    fn init(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// Every part, before the fragment it belongs to is complete.
    fn part(&mut self, _part: Part<'_>) -> std::io::Result<()> {
        Ok(())
    }
    /// A complete fragment: all its parts, once the next one starts.
    fn fragment(&mut self, f: Fragment) -> std::io::Result<()>;
}

pub use custody_format::manifest::{Track, left_out_reason};

#[derive(Debug, Clone)]
pub struct RemuxReport {
    pub input: String,
    pub pipeline: String,
    /// The pipeline description file's text, as used.
    pub pipeline_text: String,
    pub tracks: Vec<Track>,
    pub fragments: u64,
    pub duration: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    /// Not an audio-visual container this gateway has a pipeline for.
    #[error("{0}")]
    NotMedia(String),
    /// Media, but no track can be carried in fMP4 without transcoding.
    #[error("no track can be carried in fMP4 without transcoding: {}", describe_tracks(.0))]
    NoSupportedTrack(Vec<Track>),
    /// The pipeline failed (corrupt input, missing index, …).
    #[error("{0}")]
    Failed(String),
    #[error("pipeline stalled: nothing happened for {0:?}")]
    Stalled(Duration),
    #[error("reading the original: {0}")]
    Input(std::io::Error),
    #[error("writing the derivative: {0}")]
    Output(std::io::Error),
    #[error("{0}")]
    Setup(String),
    /// The derivative was made but does not play what the original holds
    /// (`super::selfcheck`).
    #[error("self-check failed, the derivative would misstate the original: {reason}")]
    SelfCheck { reason: String, tracks: Vec<Track> },
}

fn describe_tracks(t: &[Track]) -> String {
    t.iter()
        .map(|t| format!("{} ({})", t.caps, t.reason.as_deref().unwrap_or("included")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A GStreamer error message as people read it:
/// `<element> (<factory>): <error> (<last line of the debug detail>)`.
pub fn describe_error(msg: &gst::MessageRef, e: &gst::message::Error) -> String {
    let src = match msg.src() {
        Some(s) => match s.downcast_ref::<gst::Element>().and_then(|e| e.factory()) {
            Some(f) if f.name() != s.name() => format!("{} ({})", s.name(), f.name()),
            _ => s.name().to_string(),
        },
        None => "pipeline".into(),
    };
    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let detail = debug.lines().last().unwrap_or("").trim().to_string();
    if detail.is_empty() {
        format!("{src}: {}", e.error())
    } else {
        format!("{src}: {} ({detail})", e.error())
    }
}

pub use crate::elements::TRACK_ELEMENTS;

/// The elements that prepare a codec for the muxer — its parser, and for
/// video in containers that carry only one kind of timestamp the gateway's
/// restorer of the other (fMP4 needs both; `super::restamp`) — or why it
/// cannot go in.
fn parser_for(caps: &gst::CapsRef, ts: Timestamps) -> Result<&'static [&'static str], String> {
    let restamp = matches!(ts, Timestamps::PtsOnly | Timestamps::DtsOnly);
    let Some(s) = caps.structure(0) else {
        return Err("unknown codec".into());
    };
    match s.name().as_str() {
        "video/x-h264" if restamp => Ok(&["h264parse", "custodyrestamp"]),
        "video/x-h264" => Ok(&["h264parse"]),
        "video/x-h265" if restamp => Ok(&["h265parse", "custodyrestamp"]),
        "video/x-h265" => Ok(&["h265parse"]),
        "audio/mpeg" => {
            // A caps query may answer with a list of versions; AAC is 2 or 4.
            let aac: gst::Caps = "audio/mpeg, mpegversion=(int){2, 4}".parse().expect("caps");
            let mp1: gst::Caps = "audio/mpeg, mpegversion=(int)1".parse().expect("caps");
            let c = caps.to_owned();
            if c.can_intersect(&aac) && !c.is_subset(&mp1) {
                Ok(&["aacparse"])
            } else {
                Err(
                    "MPEG-1 audio (MP2/MP3) cannot be carried in CMAF fMP4 without transcoding"
                        .into(),
                )
            }
        }
        "audio/x-raw" => {
            Err("uncompressed PCM audio cannot be carried in CMAF fMP4 without transcoding".into())
        }
        "audio/x-alaw" | "audio/x-mulaw" => {
            Err("G.711 audio cannot be carried in CMAF fMP4 without transcoding".into())
        }
        "image/jpeg" => {
            Err("MJPEG video cannot be carried in CMAF fMP4 without transcoding".into())
        }
        other => Err(format!(
            "{other} cannot be carried in CMAF fMP4 without transcoding"
        )),
    }
}

/// Shared between the pipeline's threads and the driver.
struct Shared {
    timestamps: Timestamps,
    /// Absolute offset of the next input byte to hand to the pipeline.
    fed: AtomicU64,
    /// Set once every input byte has been handed to the pipeline.
    input_done: std::sync::atomic::AtomicBool,
    tracks: Mutex<Vec<Track>>,
    linked: AtomicUsize,
    /// Elements that add pads dynamically and have not yet said they are done.
    pending_demuxers: AtomicUsize,
    progress: AtomicU64,
    output_error: Mutex<Option<std::io::Error>>,
    input_error: Mutex<Option<std::io::Error>>,
    /// The original's included tracks, counted as their parsers frame them.
    expected: Mutex<Vec<Expected>>,
    /// Why the derivative cannot be trusted, once that is known.
    selfcheck_failure: Mutex<Option<String>>,
}

impl Shared {
    fn bump(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

fn make(name: &str) -> Result<gst::Element, RemuxError> {
    gst::ElementFactory::make(name)
        .build()
        .map_err(|e| RemuxError::Setup(format!("element {name}: {e}")))
}

/// Links a track pad to the muxer through a queue and the codec's parser,
/// or to a fakesink (with the reason recorded) when it cannot be carried.
fn link_track(bin: &gst::Bin, mux: &gst::Element, pad: &gst::Pad, shared: &Arc<Shared>) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    link_track_with_caps(bin, mux, pad, &caps, shared);
}

fn link_track_with_caps(
    bin: &gst::Bin,
    mux: &gst::Element,
    pad: &gst::Pad,
    caps: &gst::CapsRef,
    shared: &Arc<Shared>,
) {
    let desc = typefind::describe(caps);
    let result = (|| -> Result<(), String> {
        let names = parser_for(caps, shared.timestamps)?;
        let queue = make("queue").map_err(|e| e.to_string())?;
        // Enough to absorb interleaving between tracks, bounded in time.
        queue.set_property("max-size-buffers", 0u32);
        queue.set_property("max-size-bytes", 64u32 << 20);
        queue.set_property("max-size-time", 5_000_000_000u64);
        let mut chain = vec![queue.clone()];
        for n in names {
            let e = make(n).map_err(|e| e.to_string())?;
            if *n == "custodyrestamp" {
                let mode = if shared.timestamps == Timestamps::DtsOnly {
                    "pts-from-order"
                } else {
                    "dts-from-pts"
                };
                e.set_property("mode", mode);
            }
            chain.push(e);
        }
        // Same bin as the demuxer and the muxer: pads link only within a bin.
        bin.add_many(&chain).map_err(|e| e.to_string())?;
        let mux_pad = mux
            .request_pad_simple("sink_%u")
            .ok_or("the muxer takes no more tracks (it has started)")?;
        gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
        let last = chain.last().expect("chain has a queue");
        last.static_pad("src")
            .expect("parsers have a src pad")
            .link(&mux_pad)
            .map_err(|e| format!("cannot link to the muxer: {e:?}"))?;
        mux_pad.set_offset(PTS_HEADROOM.nseconds() as i64);
        observe(&chain[1], caps, &mux_pad, shared);
        last_sample_lasts(&last.static_pad("src").expect("src pad"));
        if shared.timestamps == Timestamps::None
            && caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/"))
        {
            // Raw streams: the parser times frames in decode order; without
            // reordering, presentation order is the same.
            last.static_pad("src").expect("src pad").add_probe(
                gst::PadProbeType::BUFFER,
                |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = &mut info.data
                        && b.pts().is_none()
                        && let Some(dts) = b.dts()
                    {
                        b.make_mut().set_pts(dts);
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
        for e in &chain {
            e.sync_state_with_parent().map_err(|e| e.to_string())?;
        }
        pad.link(&queue.static_pad("sink").expect("queue sink"))
            .map_err(|e| format!("cannot link the track: {e:?}"))?;
        Ok(())
    })();
    let included = result.is_ok();
    if let Err(reason) = &result {
        // Drop the track's data at its pad: the demuxer sees success and
        // goes on (a sink here would hold it in preroll).
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            |_, _| gst::PadProbeReturn::Drop,
        );
        tracing::info!(track = %desc, "track left out: {reason}");
    } else {
        shared.linked.fetch_add(1, Ordering::SeqCst);
    }
    shared.tracks.lock().expect("tracks").push(Track {
        caps: desc,
        included,
        reason: result.err(),
    });
}

/// Counts the samples of an included track as its parser (`parser`, the
/// first element after the queue) frames them, with the times the demuxer
/// gave, for the self-check.
fn observe(parser: &gst::Element, caps: &gst::CapsRef, mux_pad: &gst::Pad, shared: &Arc<Shared>) {
    let index = {
        let mut e = shared.expected.lock().expect("expected");
        e.push(Expected {
            caps: typefind::describe(caps),
            video: caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/")),
            mux_pad: mux_pad.name().to_string(),
            observed: Observed::default(),
        });
        e.len() - 1
    };
    let Some(src) = parser.static_pad("src") else {
        return;
    };
    let shared = shared.clone();
    src.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, info| {
            let segment = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
            let running = |t: Option<gst::ClockTime>| -> Option<i64> {
                let t = t?;
                let rt = match &segment {
                    Some(s) => s.to_running_time_full(t)?,
                    None => gst::Signed::Positive(t),
                };
                Some(match rt {
                    gst::Signed::Positive(v) => v.nseconds() as i64,
                    gst::Signed::Negative(v) => -(v.nseconds() as i64),
                })
            };
            let mut expected = shared.expected.lock().expect("expected");
            let obs = &mut expected[index].observed;
            let mut add = |b: &gst::BufferRef| {
                obs.add(
                    running(b.pts()).or_else(|| running(b.dts())),
                    b.duration().map(|d| d.nseconds()),
                )
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => add(b),
                Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(add),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Adds, as left out, the audio and video tracks an MP4's index declares
/// (`declared`) beyond those the demuxer exposed: qtdemux skips a track
/// whose sample tables it refuses (a sample count past its limits, an
/// empty table) without an error, and the derivation must not pass over
/// it in silence.
fn with_unread_tracks(mut tracks: Vec<Track>, declared: Option<usize>) -> Vec<Track> {
    let seen = tracks.len();
    let declared = declared.unwrap_or(0);
    for _ in seen..declared {
        tracks.push(Track {
            caps: "a track of the file's index".into(),
            included: false,
            reason: Some(format!(
                "the index declares {declared} audio/video tracks but the demuxer could read only {seen}: this one is empty or its sample tables are damaged"
            )),
        });
    }
    tracks
}

/// ISO base media (MP4, MOV, 3GP, M4A) that is not fragmented: read with
/// its index.
fn is_iso_media(caps: &gst::CapsRef) -> bool {
    caps.structure(0).is_some_and(|s| {
        matches!(
            s.name().as_str(),
            "video/quicktime" | "audio/x-m4a" | "application/x-3gp"
        ) && !s.get::<bool>("fragmented").unwrap_or(false)
    })
}

/// Hands on, before a qtdemux track's end of stream, the samples qtdemux
/// 1.22.0 left out at its end although they lie within the track's edit
/// list (`mp4::TailSamples`): for AAC, the last frame.
fn recover_qtdemux_tail(pad: &gst::Pad, path: PathBuf) {
    #[derive(Default)]
    struct Seen {
        track_id: Option<u32>,
        last_dts: Option<u64>,
        stop: Option<u64>,
    }
    let seen = Mutex::new(Seen::default());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let mut s = seen.lock().expect("seen");
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    s.last_dts = b.dts().or(b.pts()).map(|t| t.nseconds()).or(s.last_dts);
                }
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    // qtdemux's stream ids end in "/<track id>".
                    gst::EventView::StreamStart(ss) => {
                        s.track_id = ss
                            .stream_id()
                            .rsplit('/')
                            .next()
                            .and_then(|t| t.parse().ok());
                    }
                    gst::EventView::Segment(seg) => {
                        s.stop = seg
                            .segment()
                            .downcast_ref::<gst::ClockTime>()
                            .and_then(|seg| seg.stop())
                            .map(|t| t.nseconds());
                    }
                    gst::EventView::Eos(_) => {
                        if let (Some(id), Some(last)) = (s.track_id, s.last_dts) {
                            pass_on_tail(pad, &path, id, last, s.stop);
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Pushes the samples qtdemux left out of track `track_id` straight to the
/// pad's peer (the pad itself is already at its end of stream).
fn pass_on_tail(pad: &gst::Pad, path: &Path, track_id: u32, last_dts: u64, stop: Option<u64>) {
    let Some(peer) = pad.peer() else { return };
    let track = match mp4::track(path, track_id, last_dts) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("reading the MP4 index for the last samples: {e}");
            return;
        }
    };
    let tail = mp4::TailSamples::find(&track, last_dts, stop);
    if !tail.is_empty() {
        tracing::debug!(
            track_id,
            samples = tail.len(),
            "passing on the samples qtdemux left out"
        );
    }
    for s in &tail {
        let pushed = mp4::TailSamples::buffer(path, &track, s)
            .map_err(|e| e.to_string())
            .and_then(|b| peer.chain(b).map_err(|e| format!("{e:?}")));
        if let Err(e) = pushed {
            tracing::warn!(track_id, "passing on a left-out sample: {e}");
            break;
        }
    }
}

/// Gives a sample the muxer would get without a duration (some demuxers
/// and parsers leave them out) the time since the previous sample. The
/// muxer takes every other sample's duration from the next one's time, but
/// a last sample without one would last nothing.
fn last_sample_lasts(pad: &gst::Pad) {
    let previous: Mutex<Option<(gst::ClockTime, Option<gst::ClockTime>)>> = Mutex::new(None);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(b)) = &mut info.data {
            // Decode order is what durations follow.
            let Some(t) = b.dts().or(b.pts()) else {
                return gst::PadProbeReturn::Ok;
            };
            let mut prev = previous.lock().expect("previous sample");
            let delta = prev
                .and_then(|(p, _)| t.checked_sub(p))
                .filter(|d| !d.is_zero());
            let delta = delta.or(prev.and_then(|(_, d)| d));
            if b.duration().is_none()
                && let Some(d) = delta
            {
                b.make_mut().set_duration(d);
            }
            *prev = Some((t, b.duration().or(delta)));
        }
        gst::PadProbeReturn::Ok
    });
}

/// Links a new pad now if its caps are fixed, else when its caps event
/// arrives (before any data), so the codec is judged by its real caps and
/// not by the pad template.
fn link_when_caps_known(bin: gst::Bin, mux: gst::Element, pad: &gst::Pad, shared: Arc<Shared>) {
    if pad.current_caps().is_some_and(|c| c.is_fixed()) {
        link_track(&bin, &mux, pad, &shared);
        return;
    }
    shared.pending_demuxers.fetch_add(1, Ordering::SeqCst);
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        let is_caps = matches!(
            &info.data,
            Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Caps
        );
        if !is_caps {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(gst::PadProbeData::Event(e)) = &info.data
            && let gst::EventView::Caps(c) = e.view()
        {
            link_track_with_caps(&bin, &mux, pad, c.caps(), &shared);
        }
        shared.pending_demuxers.fetch_sub(1, Ordering::SeqCst);
        check_no_tracks(&bin, &shared);
        gst::PadProbeReturn::Remove
    });
}

/// Posts an application message when every demuxer has announced all its
/// tracks and none could be linked.
fn check_no_tracks(pipeline: &impl IsA<gst::Element>, shared: &Shared) {
    if shared.pending_demuxers.load(Ordering::SeqCst) == 0
        && shared.linked.load(Ordering::SeqCst) == 0
    {
        let _ = pipeline.post_message(gst::message::Application::new(gst::Structure::new_empty(
            "custody-no-tracks",
        )));
    }
}

/// Remuxes `input` with the pipeline its bytes call for.
pub fn remux(
    registry: &Registry,
    input: Input,
    opts: &RemuxOptions,
    output: Box<dyn Output>,
) -> Result<RemuxReport, RemuxError> {
    super::init().map_err(|e| RemuxError::Setup(e.to_string()))?;
    // A growing input is typefound where its run starts: what lies before
    // belongs to earlier runs (or, for a recording continued from storage,
    // is not in this spool at all).
    let from = match &input {
        Input::Growing { start, .. } => *start,
        Input::File(_) => 0,
    };
    let caps = typefind::caps_of_file_at(input.path(), from)
        .map_err(RemuxError::Input)?
        .ok_or_else(|| {
            RemuxError::NotMedia(
                "not a recognised audio-visual format (GStreamer typefinding found nothing)".into(),
            )
        })?;
    let input_desc = typefind::describe(&caps);
    let spec = registry.select(&caps).ok_or_else(|| {
        RemuxError::NotMedia(format!("{input_desc}: no pipeline for this kind of input"))
    })?;
    if spec.access == Access::Random && matches!(input, Input::Growing { .. }) {
        return Err(RemuxError::Setup(format!(
            "pipeline {} needs the whole file",
            spec.name
        )));
    }
    if is_iso_media(&caps)
        && let Some(why) = mp4::missing_index(input.path()).map_err(RemuxError::Input)?
    {
        return Err(RemuxError::Failed(why));
    }
    let declared_tracks = if is_iso_media(&caps) {
        mp4::declared_media_tracks(input.path()).map_err(RemuxError::Input)?
    } else {
        None
    };
    let ep = spec
        .instantiate()
        .map_err(|e| RemuxError::Setup(e.to_string()))?;
    let pipeline = gst::Pipeline::new();
    pipeline
        .add(&ep.bin)
        .map_err(|e| RemuxError::Setup(e.to_string()))?;

    // Muxer: fragment and chunk durations from the configuration.
    if ep.mux.find_property("fragment-duration").is_some() {
        ep.mux.set_property(
            "fragment-duration",
            opts.fragment_duration.as_nanos() as u64,
        );
    }
    if let Some(c) = opts.chunk_duration
        && ep.mux.find_property("chunk-duration").is_some()
    {
        ep.mux.set_property("chunk-duration", c.as_nanos() as u64);
    }
    if ep.mux.find_property("offset-to-zero").is_some() {
        // The derivative starts at zero despite PTS_HEADROOM.
        ep.mux.set_property("offset-to-zero", true);
    }
    ep.sink.set_property("sync", false);
    ep.sink.set_property("buffer-list", true);
    ep.sink.set_property("max-buffers", 4u32);

    let shared = Arc::new(Shared {
        timestamps: spec.timestamps,
        fed: AtomicU64::new(0),
        input_done: std::sync::atomic::AtomicBool::new(false),
        tracks: Mutex::new(Vec::new()),
        linked: AtomicUsize::new(0),
        pending_demuxers: AtomicUsize::new(0),
        progress: AtomicU64::new(0),
        output_error: Mutex::new(None),
        input_error: Mutex::new(None),
        expected: Mutex::new(Vec::new()),
        selfcheck_failure: Mutex::new(None),
    });

    // Tracks: unlinked static pads now, dynamic pads as demuxers add them.
    let endpoints = [
        ep.src.upcast_ref::<gst::Element>(),
        &ep.mux,
        ep.sink.upcast_ref(),
    ];
    let mut elements = Vec::new();
    let mut it = ep.bin.iterate_recurse();
    while let Ok(Some(e)) = it.next() {
        if !endpoints.contains(&&e) {
            elements.push(e);
        }
    }
    for e in &elements {
        let dynamic = e.pad_template_list().iter().any(|t| {
            t.direction() == gst::PadDirection::Src && t.presence() == gst::PadPresence::Sometimes
        });
        if dynamic {
            shared.pending_demuxers.fetch_add(1, Ordering::SeqCst);
            let (bw, mw, sh) = (ep.bin.downgrade(), ep.mux.downgrade(), shared.clone());
            // qtdemux 1.22.0 leaves out the end of tracks with an edit list
            // (`super::mp4`); it reads the whole file, so the rest is there.
            let tail_from = (spec.access == Access::Random
                && e.factory().is_some_and(|f| f.name() == "qtdemux"))
            .then(|| input.path().to_path_buf());
            e.connect_pad_added(move |_, pad| {
                // A pad the description links itself (`demux.video_0 ! …`,
                // linked on its appearance before this runs) is no track.
                if pad.direction() != gst::PadDirection::Src || pad.is_linked() {
                    return;
                }
                if let Some(path) = &tail_from {
                    recover_qtdemux_tail(pad, path.clone());
                }
                if let (Some(b), Some(m)) = (bw.upgrade(), mw.upgrade()) {
                    link_when_caps_known(b, m, pad, sh.clone());
                }
            });
            let (pw, sh) = (pipeline.downgrade(), shared.clone());
            e.connect_no_more_pads(move |_| {
                sh.pending_demuxers.fetch_sub(1, Ordering::SeqCst);
                if let Some(p) = pw.upgrade() {
                    check_no_tracks(&p, &sh);
                }
            });
        }
        for pad in e.src_pads() {
            if !pad.is_linked() {
                link_when_caps_known(ep.bin.clone(), ep.mux.clone(), &pad, shared.clone());
            }
        }
    }

    if shared.pending_demuxers.load(Ordering::SeqCst) == 0
        && shared.linked.load(Ordering::SeqCst) == 0
    {
        let tracks = shared.tracks.lock().expect("tracks").clone();
        return Err(RemuxError::NoSupportedTrack(tracks));
    }

    // Output side.
    let output = Arc::new(Mutex::new(Collector::new(
        output,
        shared.clone(),
        opts.chunk_duration.is_some(),
    )));
    {
        let (out, sh) = (output.clone(), shared.clone());
        ep.sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    sh.bump();
                    let r = out.lock().expect("collector").sample(&sample);
                    r.map_err(|e| {
                        *sh.output_error.lock().expect("output error") = Some(e);
                        gst::FlowError::Error
                    })
                })
                .build(),
        );
    }

    // Input side.
    ep.src.set_format(gst::Format::Bytes);
    ep.src.set_property("is-live", false);
    ep.src.set_max_bytes(SRC_MAX_BYTES);
    ep.src.set_property("block", true);
    let feeder = match spec.access {
        Access::Random => {
            setup_random_access(&ep.src, input.path(), &shared)?;
            None
        }
        Access::Stream => {
            ep.src.set_stream_type(gst_app::AppStreamType::Stream);
            let (src, sh) = (ep.src.clone(), shared.clone());
            let (path, growth, start) = match input {
                Input::File(p) => (p, None, 0),
                Input::Growing {
                    path,
                    growth,
                    start,
                } => (path, Some(growth), start),
            };
            Some(std::thread::spawn(move || {
                if let Err(e) = feed(&src, &path, growth.as_deref(), start, &sh) {
                    *sh.input_error.lock().expect("input error") = Some(e);
                    // Ends the stream so the pipeline stops rather than waits.
                    let _ = src.end_of_stream();
                }
            }))
        }
    };

    let result = drive(&pipeline, &shared, opts.stall_timeout);
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let tracks = with_unread_tracks(
        shared.tracks.lock().expect("tracks").clone(),
        declared_tracks,
    );
    if let Some(e) = shared.input_error.lock().expect("input error").take() {
        return Err(RemuxError::Input(e));
    }
    if let Some(reason) = shared.selfcheck_failure.lock().expect("self-check").take() {
        return Err(RemuxError::SelfCheck { reason, tracks });
    }
    if let Some(e) = shared.output_error.lock().expect("output error").take() {
        return Err(RemuxError::Output(e));
    }
    match result {
        Drive::Eos => output
            .lock()
            .expect("collector")
            .flush()
            .map_err(RemuxError::Output)?,
        Drive::NoTracks => return Err(RemuxError::NoSupportedTrack(tracks)),
        Drive::Error(e) => return Err(RemuxError::Failed(e)),
        Drive::Stalled => return Err(RemuxError::Stalled(opts.stall_timeout)),
    }
    if !tracks.iter().any(|t| t.included) {
        return Err(RemuxError::NoSupportedTrack(tracks));
    }
    let c = output.lock().expect("collector");
    if !c.init_done || c.fragments == 0 {
        return Err(RemuxError::Failed(
            "the muxer produced no media (no playable data in the input)".into(),
        ));
    }
    if let Some(timeline) = &c.timeline {
        let expected = shared.expected.lock().expect("expected");
        selfcheck::compare(&expected, timeline).map_err(|reason| RemuxError::SelfCheck {
            reason,
            tracks: tracks.clone(),
        })?;
    }
    Ok(RemuxReport {
        input: input_desc,
        pipeline: spec.name.clone(),
        pipeline_text: spec.text.clone(),
        tracks,
        fragments: c.fragments,
        duration: c.end,
    })
}

enum Drive {
    Eos,
    NoTracks,
    Error(String),
    Stalled,
}

fn drive(pipeline: &gst::Pipeline, shared: &Shared, stall: Duration) -> Drive {
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        // The bus holds the reason; fall through to read it.
        tracing::debug!("set_state(Playing): {e}");
    }
    let bus = pipeline.bus().expect("pipelines have a bus");
    let mut last = (shared.progress.load(Ordering::Relaxed), Instant::now());
    loop {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(250),
            &[
                gst::MessageType::Eos,
                gst::MessageType::Error,
                gst::MessageType::Application,
            ],
        );
        if let Some(msg) = msg {
            match msg.view() {
                gst::MessageView::Eos(_) => return Drive::Eos,
                gst::MessageView::Error(e) => return Drive::Error(describe_error(&msg, e)),
                gst::MessageView::Application(a)
                    if a.structure()
                        .is_some_and(|s| s.name() == "custody-no-tracks") =>
                {
                    return Drive::NoTracks;
                }
                _ => {}
            }
        }
        let p = shared.progress.load(Ordering::Relaxed);
        if p != last.0 {
            last = (p, Instant::now());
        } else if shared.input_done.load(Ordering::SeqCst)
            && shared.linked.load(Ordering::SeqCst) == 0
            && last.1.elapsed() > Duration::from_secs(1)
        {
            // Every byte is in and no track could go to the muxer (some
            // demuxers never say they have added all their pads).
            return Drive::NoTracks;
        } else if last.1.elapsed() > stall {
            return Drive::Stalled;
        }
    }
}

/// Pushes a file (or a growing file) into a streaming appsrc.
fn feed(
    src: &gst_app::AppSrc,
    path: &Path,
    growth: Option<&Growth>,
    start: u64,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut pos = start;
    shared.fed.store(pos, Ordering::SeqCst);
    loop {
        let (available, complete) = match growth {
            None => (u64::MAX, false),
            Some(g) => {
                let st = g.wait_beyond(pos, Duration::from_millis(500));
                if st.abandoned {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "the upload was interrupted",
                    ));
                }
                // Waiting for bytes is progress, not a stall.
                shared.bump();
                (st.available, st.complete)
            }
        };
        if pos >= available {
            if complete {
                break;
            }
            continue;
        }
        let want = (available - pos).min(READ_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = f.read(&mut buf)?;
        if n == 0 {
            if growth.is_none() {
                break;
            }
            // The writer has not flushed what it announced yet.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        buf.truncate(n);
        let mut b = gst::Buffer::from_mut_slice(buf);
        b.get_mut().expect("new buffer").set_offset(pos);
        pos += n as u64;
        shared.bump();
        shared.fed.store(pos, Ordering::SeqCst);
        if src.push_buffer(b).is_err() {
            // Flushing or stopped: the pipeline ended (error or EOS).
            return Ok(());
        }
    }
    shared.input_done.store(true, Ordering::SeqCst);
    let _ = src.end_of_stream();
    Ok(())
}

/// Random access for demuxers that seek (MP4 with the index at the end):
/// `need-data` is answered with exactly the bytes asked for at the current
/// offset, `seek-data` moves the offset.
fn setup_random_access(
    src: &gst_app::AppSrc,
    path: &Path,
    shared: &Arc<Shared>,
) -> Result<(), RemuxError> {
    let f = File::open(path).map_err(RemuxError::Input)?;
    let size = f.metadata().map_err(RemuxError::Input)?.len();
    src.set_stream_type(gst_app::AppStreamType::RandomAccess);
    src.set_size(size as i64);
    let state = Arc::new(Mutex::new((f, 0u64)));
    let (st, sh) = (state.clone(), shared.clone());
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, len| {
                let mut g = st.lock().expect("random access");
                let (ref mut f, ref mut off) = *g;
                if *off >= size {
                    sh.input_done.store(true, Ordering::SeqCst);
                    let _ = src.end_of_stream();
                    return;
                }
                let n = (len as u64).min(size - *off) as usize;
                let mut buf = vec![0u8; n];
                let r = f
                    .seek(SeekFrom::Start(*off))
                    .and_then(|_| f.read_exact(&mut buf));
                match r {
                    Ok(()) => {
                        let mut b = gst::Buffer::from_mut_slice(buf);
                        b.get_mut().expect("new buffer").set_offset(*off);
                        *off += n as u64;
                        sh.fed.fetch_max(*off, Ordering::SeqCst);
                        sh.bump();
                        let _ = src.push_buffer(b);
                    }
                    Err(e) => {
                        *sh.input_error.lock().expect("input error") = Some(e);
                        let _ = src.end_of_stream();
                    }
                }
            })
            .seek_data(move |_, offset| {
                state.lock().expect("random access").1 = offset;
                true
            })
            .build(),
    );
    Ok(())
}

/// Splits the muxer's output into the initialisation segment, parts
/// (low-latency chunks, when the muxer makes them) and whole fragments.
struct Collector {
    out: Box<dyn Output>,
    shared: Arc<Shared>,
    /// The muxer cuts fragments into chunks: each sample is a part, and a
    /// fragment is complete when the next one starts (or at the end).
    chunked: bool,
    init_done: bool,
    fragments: u64,
    /// Running time of the first fragment: media time zero.
    origin: Option<gst::ClockTime>,
    end: f64,
    current: Option<Fragment>,
    /// The derivative as a player reads it, for the self-check.
    timeline: Option<Timeline>,
}

impl Collector {
    fn new(out: Box<dyn Output>, shared: Arc<Shared>, chunked: bool) -> Self {
        Collector {
            out,
            shared,
            chunked,
            init_done: false,
            fragments: 0,
            origin: None,
            end: 0.0,
            current: None,
            timeline: None,
        }
    }

    /// Records why the derivative cannot be trusted and stops the pipeline:
    /// nothing more of it is handed on.
    fn distrust(&self, why: String) -> std::io::Error {
        self.shared
            .selfcheck_failure
            .lock()
            .expect("self-check")
            .get_or_insert(why);
        std::io::Error::other("self-check failed")
    }

    /// Reads a fragment (or part) the way a player will, before it is
    /// handed on: decode times must keep increasing.
    fn check(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(tl) = self.timeline.as_mut() else {
            return Err(self.distrust("media came before the initialisation segment".into()));
        };
        if let Err(e) = tl.fragment(data) {
            return Err(self.distrust(e.to_string()));
        }
        let fault = tl.tracks().find_map(|t| {
            t.fault
                .as_ref()
                .map(|f| format!("track {}: {f}", t.track_id))
        });
        match fault {
            Some(f) => Err(self.distrust(f)),
            None => Ok(()),
        }
    }

    fn seconds(&mut self, rt: gst::ClockTime) -> f64 {
        let origin = *self.origin.get_or_insert(rt);
        rt.saturating_sub(origin).nseconds() as f64 / 1e9
    }

    /// Hands the fragment in progress to the output.
    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(mut f) = self.current.take() {
            f.input_end = self.shared.fed.load(Ordering::SeqCst);
            self.end = self.end.max(f.start + f.duration);
            self.fragments += 1;
            self.out.fragment(f)?;
        }
        Ok(())
    }

    fn sample(&mut self, sample: &gst::Sample) -> std::io::Result<gst::FlowSuccess> {
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let mut buffers: Vec<&gst::BufferRef> = Vec::new();
        if let Some(list) = sample.buffer_list() {
            buffers.extend(list.iter());
        } else if let Some(b) = sample.buffer() {
            buffers.push(b);
        }
        let mut init = Vec::new();
        let mut data = Vec::new();
        // (running time, duration, starts a fragment) of this sample's header.
        let mut head: Option<(gst::ClockTime, Option<gst::ClockTime>, bool)> = None;
        for b in buffers {
            let flags = b.flags();
            let map = b
                .map_readable()
                .map_err(|_| std::io::Error::other("unreadable buffer"))?;
            if flags.contains(gst::BufferFlags::HEADER) && flags.contains(gst::BufferFlags::DISCONT)
            {
                if !self.init_done {
                    init.extend_from_slice(&map);
                }
                continue;
            }
            if flags.contains(gst::BufferFlags::HEADER)
                && head.is_none()
                && let Some(pts) = b.pts()
            {
                let rt = segment
                    .as_ref()
                    .and_then(|s| s.to_running_time(pts))
                    .unwrap_or(pts);
                let fragment_start = !flags.contains(gst::BufferFlags::DELTA_UNIT);
                head = Some((rt, b.duration(), fragment_start));
            }
            data.extend_from_slice(&map);
        }
        if !init.is_empty() {
            // No wall-clock time in derived bytes: re-deriving the original
            // must give the same init segment.
            if let Err(e) = fmp4::clear_creation_times(&mut init) {
                return Err(self.distrust(e.to_string()));
            }
            match Timeline::from_init(&init) {
                Ok(t) => self.timeline = Some(t),
                Err(e) => return Err(self.distrust(e.to_string())),
            }
            self.out.init(&init)?;
            self.init_done = true;
        }
        if data.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        self.check(&data)?;
        let (rt, dur, fragment_start) = head.unwrap_or((gst::ClockTime::ZERO, None, true));
        let start = self.seconds(rt);
        let duration = dur.map(|d| d.nseconds() as f64 / 1e9).unwrap_or(0.0);
        if fragment_start || self.current.is_none() {
            self.flush()?;
            self.current = Some(Fragment {
                input_end: 0,
                data: Vec::new(),
                start,
                duration: 0.0,
            });
        }
        self.out.part(Part {
            data: &data,
            start,
            duration,
            independent: fragment_start,
            input_end: self.shared.fed.load(Ordering::SeqCst),
        })?;
        let cur = self.current.as_mut().expect("fragment in progress");
        if cur.data.is_empty() {
            // A fragment's first (for docked files: only) sample: no copy.
            cur.data = data;
        } else {
            cur.data.extend_from_slice(&data);
        }
        cur.duration = cur.duration.max(start + duration - cur.start);
        if !self.chunked {
            self.flush()?;
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parser_the_remux_stage_adds_is_listed() {
        crate::init().unwrap();
        for caps in [
            "video/x-h264",
            "video/x-h265",
            "audio/mpeg, mpegversion=(int)4",
        ] {
            let caps: gst::Caps = caps.parse().unwrap();
            for ts in [Timestamps::PtsDts, Timestamps::PtsOnly, Timestamps::None] {
                for e in parser_for(&caps, ts).unwrap() {
                    assert!(TRACK_ELEMENTS.contains(e), "{e} for {caps}");
                }
            }
        }
    }

    #[test]
    fn the_reason_names_every_track_left_out_within_bounds() {
        let track = |caps: &str, why: Option<&str>| Track {
            caps: caps.into(),
            included: why.is_none(),
            reason: why.map(str::to_string),
        };
        let h264 = track("video/x-h264", None);
        assert_eq!(left_out_reason(std::slice::from_ref(&h264)), None);
        let pcm = track(
            "audio/x-raw, rate=(int)16000",
            Some("PCM cannot be carried"),
        );
        assert_eq!(
            left_out_reason(&[h264.clone(), pcm.clone()]).as_deref(),
            Some("1 of 2 tracks left out: audio/x-raw, rate=(int)16000 (PCM cannot be carried)")
        );
        // Many tracks, long caps: a bounded reason that says how many more.
        let long = track(&"x".repeat(5000), Some("why"));
        let many: Vec<Track> = std::iter::once(h264).chain(vec![long; 20]).collect();
        let r = left_out_reason(&many).unwrap();
        assert!(r.starts_with("20 of 21 tracks left out: "), "{r}");
        assert!(r.ends_with("; and 12 more (see tracks)"), "{r}");
        assert!(r.len() < 4096, "{} bytes", r.len());
    }

    #[test]
    fn codecs_that_fmp4_carries() {
        for (caps, ok) in [
            ("video/x-h264, stream-format=byte-stream", true),
            ("video/x-h265", true),
            ("audio/mpeg, mpegversion=(int)4, stream-format=adts", true),
            ("audio/mpeg, mpegversion=(int)2", true),
            ("audio/mpeg, mpegversion=(int){2, 4}", true),
            ("audio/mpeg, mpegversion=(int)1, layer=(int)3", false),
            ("audio/x-alaw, rate=8000", false),
            ("image/jpeg", false),
            ("audio/x-raw, format=S16LE", false),
        ] {
            super::super::init().unwrap();
            let c: gst::Caps = caps.parse().unwrap();
            assert_eq!(parser_for(&c, Timestamps::PtsDts).is_ok(), ok, "{caps}");
        }
    }

    #[test]
    fn growth_wakes_readers() {
        let g = Growth::new(0);
        let g2 = g.clone();
        let t = std::thread::spawn(move || g2.wait_beyond(0, Duration::from_secs(5)).available);
        std::thread::sleep(Duration::from_millis(50));
        g.advance(10);
        assert_eq!(t.join().unwrap(), 10);
        g.finish(12);
        let st = g.wait_beyond(12, Duration::from_secs(5));
        assert!(st.complete && st.available == 12);
        g.abandon();
        assert!(g.wait_beyond(12, Duration::from_secs(5)).abandoned);
    }
}
