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

/// What a source hands over: bytes, then the end.
pub enum Produced {
    Bytes(Vec<u8>),
    End,
}

const TS_PACKET: usize = 188;

/// Runs a source on its own thread until it ends, `duration` passes, or the
/// receiver goes away.
pub fn spawn(
    source: Source,
    duration: Option<Duration>,
    tx: mpsc::Sender<Produced>,
) -> std::thread::JoinHandle<Result<(), String>> {
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
        let _ = tx.blocking_send(Produced::End);
        r
    })
}

fn test_source(
    bitrate: u32,
    width: u32,
    height: u32,
    deadline: Option<Instant>,
    tx: &mpsc::Sender<Produced>,
) -> Result<(), String> {
    crate::pipeline::init().map_err(|e| e.to_string())?;
    // Each frame carries the wall-clock time it was captured, as a barcode
    // (see `stamp_barcode`): the browser test reads it back from the
    // decoded picture to measure glass-to-glass latency. The running time is
    // also shown as text for people watching.
    let desc = format!(
        "videotestsrc is-live=true pattern=ball \
         ! video/x-raw,format=I420,width={width},height={height},framerate=25/1 \
         ! identity name=stamp \
         ! timeoverlay time-mode=running-time halignment=left valignment=bottom font-desc=\"Sans 24\" \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 bitrate={bitrate} \
         ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! queue \
         ! mpegtsmux name=mux alignment=7 ! appsink name=out sync=false \
         audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 \
         ! audioconvert ! avenc_aac ! aacparse ! queue ! mux."
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| format!("test source: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "test source is not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("test source has no appsink")?;
    let stamp = pipeline
        .by_name("stamp")
        .and_then(|e| e.static_pad("src"))
        .ok_or("test source has no stamp element")?;
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
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("test source: {e}"))?;
    let result = loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        match sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            Some(s) => {
                let Some(b) = s.buffer() else { continue };
                let Ok(m) = b.map_readable() else { continue };
                if tx.blocking_send(Produced::Bytes(m.to_vec())).is_err() {
                    break Ok(());
                }
            }
            None if sink.is_eos() => break Ok(()),
            None => {}
        }
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
) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut clock: Option<(u64, Instant)> = None;
    let mut buf = vec![0u8; TS_PACKET * 64];
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let n = read_full(&mut f, &mut buf).map_err(|e| e.to_string())?;
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

fn stdin(deadline: Option<Instant>, tx: &mpsc::Sender<Produced>) -> Result<(), String> {
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let n = input.read(&mut buf).map_err(|e| e.to_string())?;
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
