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
    // The running time is burned into the picture: the live-view test reads
    // it back to measure glass-to-glass latency.
    let desc = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=25/1 \
         ! timeoverlay time-mode=running-time halignment=left valignment=top font-desc=\"Sans 24\" \
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
