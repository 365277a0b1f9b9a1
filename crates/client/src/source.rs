//! Where a recorder's live bytes come from: a GStreamer test source standing
//! in for a camera (H.264 + AAC in MPEG-TS, as body-worn recorders send), a
//! TS file played at real-time pace, or standard input.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// The test camera cannot start (GStreamer, or an element it needs,
    /// is missing) or failed; the message names the element.
    #[cfg(feature = "test-camera")]
    #[error("test source: {0}")]
    Camera(#[from] custody_media::test_camera::CameraError),
    /// This build has no test camera.
    #[cfg(not(feature = "test-camera"))]
    #[error("test source: this build has no test camera (custody-client's `test-camera` feature)")]
    NoCamera,
    // The I/O error is part of the message, not a separate cause, so that
    // it is printed once.
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("standard input: {0}")]
    Stdin(std::io::Error),
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
        } => test_camera_check(*width, *height, *bitrate_kbps),
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
            } => test_camera(bitrate_kbps, width, height, deadline, &tx),
            Source::File { path, start } => paced_file(&path, start, deadline, &tx),
            Source::Stdin => stdin(deadline, &tx),
        };
        let _ = tx.blocking_send(Produced::End(r.err()));
    })
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

#[cfg(feature = "test-camera")]
fn test_camera_check(width: u32, height: u32, bitrate_kbps: u32) -> Result<(), SourceError> {
    Ok(custody_media::test_camera::check(
        width,
        height,
        bitrate_kbps,
    )?)
}

#[cfg(feature = "test-camera")]
fn test_camera(
    bitrate_kbps: u32,
    width: u32,
    height: u32,
    deadline: Option<Instant>,
    tx: &mpsc::Sender<Produced>,
) -> Result<(), SourceError> {
    let mut emit = |b: Vec<u8>| tx.blocking_send(Produced::Bytes(b)).is_ok();
    Ok(custody_media::test_camera::run(
        bitrate_kbps,
        width,
        height,
        deadline,
        &mut emit,
    )?)
}

#[cfg(not(feature = "test-camera"))]
fn test_camera_check(_: u32, _: u32, _: u32) -> Result<(), SourceError> {
    Err(SourceError::NoCamera)
}

#[cfg(not(feature = "test-camera"))]
fn test_camera(
    _: u32,
    _: u32,
    _: u32,
    _: Option<Instant>,
    _: &mpsc::Sender<Produced>,
) -> Result<(), SourceError> {
    Err(SourceError::NoCamera)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let camera = check(&Source::Test {
            bitrate_kbps: 500,
            width: 320,
            height: 180,
        });
        #[cfg(feature = "test-camera")]
        camera.unwrap();
        #[cfg(not(feature = "test-camera"))]
        assert!(matches!(camera, Err(SourceError::NoCamera)));
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
