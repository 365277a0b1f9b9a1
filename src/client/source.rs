//! Where a recorder's live bytes come from: a GStreamer test source standing
//! in for a camera (H.264 + AAC in MPEG-TS, as body-worn recorders send), a
//! TS file played at real-time pace, or standard input.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub enum Source {
    /// videotestsrc + audiotestsrc → x264enc + AAC → MPEG-TS, live.
    Test {
        bitrate_kbps: u32,
        width: u32,
        height: u32,
    },
    /// An MPEG-TS file, sent at the pace of its PCR clock; `start` resumes
    /// mid-file.
    File {
        path: PathBuf,
        start: u64,
    },
    Stdin,
}

/// What a source hands over: bytes, then the end — with why, if the
/// source failed.
pub enum Produced {
    Bytes(Vec<u8>),
    End(Option<SourceError>),
}

/// Why a source cannot start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// GStreamer elements the test source needs are not installed.
    #[error("test source: {0}")]
    Missing(crate::pipeline::elements::Missing),
    /// GStreamer failed: the message names the element and the error.
    #[error("test source: {0}")]
    GStreamer(String),
    // The I/O error is part of the message, not a separate cause, so that
    // it is printed once.
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("standard input: {0}")]
    Stdin(std::io::Error),
}

impl From<crate::pipeline::elements::ParseError> for SourceError {
    fn from(e: crate::pipeline::elements::ParseError) -> Self {
        match e {
            crate::pipeline::elements::ParseError::Missing(m) => SourceError::Missing(m),
            crate::pipeline::elements::ParseError::Invalid(m) => SourceError::GStreamer(m),
        }
    }
}

fn file_error(path: &std::path::Path, error: std::io::Error) -> SourceError {
    SourceError::File {
        path: path.display().to_string(),
        error,
    }
}

/// Checks, before a recording is opened, that the source can start: the
/// test source's GStreamer elements exist (a missing one is named with its
/// Debian package), a file opens for reading.
pub fn check(source: &Source) -> Result<(), SourceError> {
    match source {
        Source::Test {
            bitrate_kbps,
            width,
            height,
        } => {
            crate::pipeline::init().map_err(|e| SourceError::GStreamer(e.to_string()))?;
            crate::pipeline::elements::parse_pipeline(&test_source_description(
                *width,
                *height,
                *bitrate_kbps,
            ))?;
            Ok(())
        }
        Source::File { path, .. } => {
            std::fs::File::open(path).map_err(|e| file_error(path, e))?;
            Ok(())
        }
        Source::Stdin => Ok(()),
    }
}

const TS_PACKET: usize = 188;

/// Runs a source on its own thread until it ends, `duration` passes, it
/// fails, or the receiver goes away. The end is sent in every case, with
/// the error if the source failed.
pub fn spawn(
    source: Source,
    duration: Option<Duration>,
    tx: mpsc::Sender<Produced>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let deadline = duration.map(|d| Instant::now() + d);
        let r = match source {
            Source::Test {
                bitrate_kbps,
                width,
                height,
            } => test_source(bitrate_kbps, width, height, deadline, &tx),
            Source::File { path, start } => paced_file(&path, start, deadline, &tx),
            Source::Stdin => stdin(deadline, &tx),
        };
        let _ = tx.blocking_send(Produced::End(r.err()));
    })
}

pub use custody_media::elements::test_source_description;

fn test_source(
    bitrate: u32,
    width: u32,
    height: u32,
    deadline: Option<Instant>,
    tx: &mpsc::Sender<Produced>,
) -> Result<(), SourceError> {
    crate::pipeline::init().map_err(|e| SourceError::GStreamer(e.to_string()))?;
    let pipeline = crate::pipeline::elements::parse_pipeline(&test_source_description(
        width, height, bitrate,
    ))?;
    let stamp = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("stamp"))
        .and_then(|e| e.static_pad("src"))
        .ok_or_else(|| SourceError::GStreamer("no stamp element".into()))?;
    let (w, h) = (width as usize, height as usize);
    stamp.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer_mut() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            if let Ok(mut m) = buf.make_mut().map_writable() {
                stamp_barcode(m.as_mut_slice(), w, h, now as u32);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pull(&pipeline, deadline, tx)
}

/// Plays a pipeline whose appsink is named `out` and hands over what it
/// makes until it ends, `deadline` passes or the receiver goes away. An
/// error on the pipeline's bus stops it and is returned, naming the
/// element: a camera that fails must not look like one that had nothing to
/// say.
fn pull(
    pipeline: &gst::Element,
    deadline: Option<Instant>,
    tx: &mpsc::Sender<Produced>,
) -> Result<(), SourceError> {
    let sink = pipeline
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("out"))
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| SourceError::GStreamer("no appsink named out".into()))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| SourceError::GStreamer("no bus".into()))?;
    // Reads the bus dry (nothing else does), keeping the first error.
    let bus_error = || {
        let mut first = None;
        while let Some(msg) = bus.pop() {
            if let (None, gst::MessageView::Error(e)) = (&first, msg.view()) {
                first = Some(SourceError::GStreamer(
                    crate::pipeline::remux::describe_error(&msg, e),
                ));
            }
        }
        first
    };
    let result = match pipeline.set_state(gst::State::Playing) {
        // The bus says why.
        Err(e) => Err(bus_error().unwrap_or_else(|| SourceError::GStreamer(e.to_string()))),
        Ok(_) => loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ok(());
            }
            if let Some(e) = bus_error() {
                break Err(e);
            }
            match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
                Some(s) => {
                    let Some(b) = s.buffer() else { continue };
                    let Ok(m) = b.map_readable() else { continue };
                    if tx.blocking_send(Produced::Bytes(m.to_vec())).is_err() {
                        break Ok(());
                    }
                }
                // After the end, an error posted with it still counts.
                None if sink.is_eos() => break bus_error().map_or(Ok(()), Err),
                None => {}
            }
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Draws `value` as 32 blocks, most significant bit first, into the luma
/// plane of an I420 frame: block i is 16×16 at x = 8 + 20·i, y = 8 in a
/// 640×360 frame (scaled with the frame), white for 1 and black for 0.
pub fn stamp_barcode(frame: &mut [u8], width: usize, height: usize, value: u32) {
    // GStreamer's default I420 luma stride: the width rounded up to 4.
    let stride = width.div_ceil(4) * 4;
    let sx = |v: usize| v * width / 640;
    let sy = |v: usize| v * height / 360;
    for i in 0..32 {
        let bit = (value >> (31 - i)) & 1 == 1;
        let luma = if bit { 235 } else { 16 };
        let (x0, x1) = (sx(8 + 20 * i), sx(8 + 20 * i + 16));
        for y in sy(8)..sy(24).min(height) {
            let row = y * stride;
            if let Some(px) = frame.get_mut(row + x0..row + x1.min(width)) {
                px.fill(luma);
            }
        }
    }
}

/// Reads a barcode drawn by [`stamp_barcode`] back (for tests).
pub fn read_barcode(frame: &[u8], width: usize, height: usize) -> u32 {
    let stride = width.div_ceil(4) * 4;
    let mut v = 0u32;
    for i in 0..32 {
        let (x, y) = ((8 + 20 * i + 8) * width / 640, 16 * height / 360);
        let bit = frame.get(y * stride + x).is_some_and(|&l| l >= 128);
        v = (v << 1) | bit as u32;
    }
    v
}

/// The PCR of a TS packet, in 27 MHz ticks, if it carries one.
fn pcr(p: &[u8]) -> Option<u64> {
    if p.len() < 12 || p[0] != 0x47 || p[3] & 0x20 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let base = ((p[6] as u64) << 25)
        | ((p[7] as u64) << 17)
        | ((p[8] as u64) << 9)
        | ((p[9] as u64) << 1)
        | ((p[10] as u64) >> 7);
    let ext = (((p[10] & 1) as u64) << 8) | p[11] as u64;
    Some(base * 300 + ext)
}

fn paced_file(
    path: &std::path::Path,
    start: u64,
    deadline: Option<Instant>,
    tx: &mpsc::Sender<Produced>,
) -> Result<(), SourceError> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| file_error(path, e))?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| file_error(path, e))?;
    let mut clock: Option<(u64, Instant)> = None;
    let mut buf = vec![0u8; TS_PACKET * 64];
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let n = read_full(&mut f, &mut buf).map_err(|e| file_error(path, e))?;
        if n == 0 {
            return Ok(());
        }
        let mut out = Vec::with_capacity(n);
        for p in buf[..n].chunks(TS_PACKET) {
            if let Some(t) = pcr(p) {
                match clock {
                    None => clock = Some((t, Instant::now())),
                    Some((t0, i0)) if t >= t0 => {
                        let due = i0 + Duration::from_nanos((t - t0) * 1000 / 27);
                        let now = Instant::now();
                        if due > now {
                            // Send what is due before waiting for the clock.
                            if !out.is_empty()
                                && tx
                                    .blocking_send(Produced::Bytes(std::mem::take(&mut out)))
                                    .is_err()
                            {
                                return Ok(());
                            }
                            std::thread::sleep(due - now);
                        }
                    }
                    // The clock jumped back (a loop or splice): restart pacing.
                    Some(_) => clock = Some((t, Instant::now())),
                }
            }
            out.extend_from_slice(p);
        }
        if !out.is_empty() && tx.blocking_send(Produced::Bytes(out)).is_err() {
            return Ok(());
        }
    }
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

fn stdin(deadline: Option<Instant>, tx: &mpsc::Sender<Produced>) -> Result<(), SourceError> {
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let n = input.read(&mut buf).map_err(SourceError::Stdin)?;
        if n == 0 {
            return Ok(());
        }
        if tx
            .blocking_send(Produced::Bytes(buf[..n].to_vec()))
            .is_err()
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_round_trips_at_any_frame_size() {
        for (w, h) in [(640, 360), (1280, 720), (320, 180)] {
            let mut f = vec![128u8; w * h * 3 / 2];
            for v in [0u32, 1, 0x8000_0001, 0xdead_beef, u32::MAX] {
                stamp_barcode(&mut f, w, h, v);
                assert_eq!(read_barcode(&f, w, h), v, "{w}x{h} {v:#x}");
            }
        }
    }

    /// Runs `pull` on a description; what it returned and how many
    /// buffers it handed over.
    fn pull_all(desc: &str) -> (Result<(), SourceError>, usize) {
        crate::pipeline::init().unwrap();
        let p = crate::pipeline::elements::parse_pipeline(desc).unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        let r = pull(&p, Some(Instant::now() + Duration::from_secs(60)), &tx);
        let mut n = 0;
        while let Ok(Produced::Bytes(_)) = rx.try_recv() {
            n += 1;
        }
        (r, n)
    }

    #[test]
    fn a_pipeline_that_fails_stops_with_the_gstreamer_error() {
        // Fails mid-stream: identity posts an error after 5 buffers.
        let (r, n) = pull_all(
            "videotestsrc num-buffers=50 ! identity name=cam error-after=5 ! appsink name=out",
        );
        match r {
            Err(SourceError::GStreamer(m)) => {
                assert!(m.starts_with("cam (identity): "), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(n < 50, "{n} buffers");
        // Fails at the start: the file is not there.
        let (r, n) = pull_all("filesrc location=/nonexistent/cam.ts ! appsink name=out");
        match r {
            Err(SourceError::GStreamer(m)) => assert!(m.contains("filesrc"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(n, 0);
        // Runs to its end: no error, everything handed over.
        let (r, n) = pull_all("audiotestsrc num-buffers=5 ! appsink name=out");
        r.unwrap();
        assert_eq!(n, 5);
    }

    #[test]
    fn a_source_that_cannot_start_is_refused_before_recording() {
        let e = check(&Source::File {
            path: "/nonexistent/recording.ts".into(),
            start: 0,
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/recording.ts: "),
            "{e}"
        );
        check(&Source::Test {
            bitrate_kbps: 500,
            width: 320,
            height: 180,
        })
        .unwrap();
    }

    #[test]
    fn reads_pcr() {
        let mut p = [0u8; 188];
        p[0] = 0x47;
        p[3] = 0x30; // adaptation field + payload
        p[4] = 7;
        p[5] = 0x10; // PCR flag
        // base = 1 (at bit 0 of byte 10's top bit), ext = 5
        p[10] = 0x80;
        p[11] = 5;
        assert_eq!(pcr(&p), Some(300 + 5));
        p[5] = 0;
        assert_eq!(pcr(&p), None);
    }
}
