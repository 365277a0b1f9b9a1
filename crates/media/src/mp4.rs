//! ISO base media (MP4/MOV/3GP/M4A) originals, read directly where
//! GStreamer's `qtdemux` is not enough:
//!
//! - a file whose index (`moov`) is missing — a recorder that lost power
//!   before writing it — is recognised as truncated, with a reason that
//!   says so ([`missing_index`]);
//! - `qtdemux` 1.22.0 ends a track early when the track's edit list starts
//!   inside its media (AAC encoder priming: the last AAC frame is lost). It
//!   compares the movie's duration with sample times that still include the
//!   edit's start (GStreamer issue 2549, fixed in 1.22.3). [`TailSamples`]
//!   reads the samples it left out from the file's sample tables so the
//!   gateway can hand them on (`super::remux`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most `moov` the gateway reads into memory: hours of recording need a
/// few MiB; anything far larger is not a recorder's file.
const MAX_MOOV: u64 = 64 << 20;

/// The most samples a track may declare (a day at 240 fps is 21 million).
const MAX_SAMPLES: usize = 50_000_000;

/// A top-level box of a file: type, offset, header length, size (as
/// declared, which may run past the end of a cut file).
#[derive(Debug, Clone, Copy)]
struct TopBox {
    kind: [u8; 4],
    offset: u64,
    header: u64,
    size: u64,
}

/// The top-level boxes of a file of `len` bytes, in order, as far as their
/// headers can be read. Stops at the first header that does not fit or
/// makes no sense; the second value then says which and why.
fn top_level<R: Read + Seek>(
    f: &mut R,
    len: u64,
) -> std::io::Result<(Vec<TopBox>, Option<String>)> {
    let mut out = Vec::new();
    let mut stopped = None;
    let mut at = 0u64;
    // `at` may be any offset a box size led to, up to u64::MAX: no `at + 8`.
    while len.saturating_sub(at) >= 8 {
        f.seek(SeekFrom::Start(at))?;
        let mut h = [0u8; 16];
        let n = f.read(&mut h)?;
        if n < 8 {
            break;
        }
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let kind = [h[4], h[5], h[6], h[7]];
        let (header, size) = match size32 {
            1 if n >= 16 => (16, u64::from_be_bytes(h[8..16].try_into().expect("8"))),
            1 => break,
            0 => (8, len - at),
            s => (8, s),
        };
        if size < header {
            stopped = Some(format!(
                "the box at offset {at} ({}) declares {size} bytes, fewer than its own {header}-byte header",
                String::from_utf8_lossy(&kind)
            ));
            break;
        }
        out.push(TopBox {
            kind,
            offset: at,
            header,
            size,
        });
        match at.checked_add(size) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    Ok((out, stopped))
}

/// Why an MP4-family file cannot be remuxed because its index is missing,
/// or `None` when it has one (or is fragmented, with its index spread over
/// `moof` boxes).
pub fn missing_index(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    missing_index_in(&mut f, len)
}

/// [`missing_index`] over any seekable bytes of length `len` (the pure
/// part, which the fuzz target `mp4` drives over memory).
pub fn missing_index_in<R: Read + Seek>(f: &mut R, len: u64) -> std::io::Result<Option<String>> {
    let (boxes, stopped) = top_level(f, len)?;
    if boxes
        .iter()
        .any(|b| &b.kind == b"moov" || &b.kind == b"moof")
    {
        return Ok(None);
    }
    let cut = boxes
        .last()
        // Sizes come from the file: a declared size may not fit in u64.
        .filter(|b| b.offset.saturating_add(b.size) > len)
        .map(|b| {
            format!(
                "; its last box ({}) declares {} bytes but only {} are there",
                String::from_utf8_lossy(&b.kind),
                b.size,
                len - b.offset
            )
        })
        .unwrap_or_default();
    if let Some(why) = stopped {
        return Ok(Some(format!(
            "the file is damaged: {why}, so the boxes after it cannot be found and it has no index (the moov box) before it; its samples cannot be located; the original is kept exactly as received"
        )));
    }
    Ok(Some(format!(
        "the file is truncated: it has no index (the moov box, which MP4/MOV recorders write last, is missing{cut}), so its samples cannot be located; the original is kept exactly as received"
    )))
}

/// How many audio and video tracks (`trak` boxes whose handler is `vide`
/// or `soun`) the index of the file at `path` declares; `None` when it has
/// no index.
pub fn declared_media_tracks(path: &Path) -> std::io::Result<Option<usize>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    Ok(read_moov(&mut f, len)?.map(|m| media_tracks(&m)))
}

/// The audio and video tracks a `moov` body declares.
pub fn media_tracks(moov: &[u8]) -> usize {
    children(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .filter(|(_, t)| {
            child(t, b"mdia")
                .and_then(|m| child(m, b"hdlr"))
                .and_then(|h| h.get(8..12))
                .is_some_and(|h| h == b"vide" || h == b"soun")
        })
        .count()
}

/// Reads the `moov` box of a file of `len` bytes (if any, within
/// [`MAX_MOOV`]).
pub fn read_moov<R: Read + Seek>(f: &mut R, len: u64) -> std::io::Result<Option<Vec<u8>>> {
    let (boxes, _) = top_level(f, len)?;
    let Some(b) = boxes.iter().find(|b| &b.kind == b"moov") else {
        return Ok(None);
    };
    if b.size > MAX_MOOV || b.offset + b.size > len {
        return Ok(None);
    }
    let mut body = vec![0u8; (b.size - b.header) as usize];
    f.seek(SeekFrom::Start(b.offset + b.header))?;
    f.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Child boxes of a box body: (type, body).
fn children(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4")) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("4");
        let (header, size) = match size {
            1 if at + 16 <= data.len() => (
                16,
                u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8")) as usize,
            ),
            0 => (8, data.len() - at),
            s => (8, s),
        };
        if size < header || at.saturating_add(size) > data.len() {
            break;
        }
        out.push((kind, &data[at + header..at + size]));
        at += size;
    }
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, b)| b)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One sample of a track, from its sample tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub offset: u64,
    pub size: u32,
    /// Decode time and composition offset, in the track's timescale.
    pub dts: u64,
    pub cts_offset: i64,
    pub duration: u32,
    pub keyframe: bool,
}

/// A track's samples (`stbl`), as qtdemux would read them.
#[derive(Debug, Clone)]
pub struct Track {
    pub track_id: u32,
    pub timescale: u32,
    pub samples: Vec<Sample>,
    /// Added to every composition offset so none is negative (qtdemux does
    /// the same).
    pub cts_shift: i64,
}

/// Walks a table of (count, value) runs (`stts`, `ctts`) sample by sample.
struct Runs<'a> {
    table: &'a [u8],
    entries: usize,
    entry: usize,
    left: u32,
    value: u32,
}

impl<'a> Runs<'a> {
    fn new(table: &'a [u8]) -> Option<Runs<'a>> {
        Some(Runs {
            table,
            entries: be32(table, 4)? as usize,
            entry: 0,
            left: 0,
            value: 0,
        })
    }

    /// The value for the next sample (the last run's value past the end).
    fn next(&mut self) -> Option<u32> {
        while self.left == 0 && self.entry < self.entries {
            self.left = be32(self.table, 8 + 8 * self.entry)?;
            self.value = be32(self.table, 12 + 8 * self.entry)?;
            self.entry += 1;
        }
        self.left = self.left.saturating_sub(1);
        Some(self.value)
    }
}

impl Track {
    /// The track in `trak`, with its samples whose decode time is at least
    /// `from` (track units): the tables are walked, not held, so an hours
    /// long recording costs only the samples kept. The walk stops at the
    /// first sample whose bytes do not lie within the file's `file_len`
    /// bytes: a table may declare millions of samples of a fixed size in a
    /// few bytes, and what is not in the file cannot be read anyway.
    fn parse(trak: &[u8], from: u64, file_len: u64) -> Option<Track> {
        let tkhd = child(trak, b"tkhd")?;
        let track_id = be32(tkhd, if *tkhd.first()? == 1 { 20 } else { 12 })?;
        let mdia = child(trak, b"mdia")?;
        let mdhd = child(mdia, b"mdhd")?;
        let timescale = be32(mdhd, if *mdhd.first()? == 1 { 20 } else { 12 })?;
        let stbl = child(child(mdia, b"minf")?, b"stbl")?;
        let stsz = child(stbl, b"stsz")?;
        let fixed = be32(stsz, 4)?;
        let n = be32(stsz, 8)? as usize;
        if n > MAX_SAMPLES {
            return None;
        }
        let size = |i: usize| {
            if fixed != 0 {
                Some(fixed)
            } else {
                be32(stsz, 12 + 4 * i)
            }
        };
        let mut durations = Runs::new(child(stbl, b"stts")?)?;
        let ctts = child(stbl, b"ctts");
        let signed = ctts.and_then(|c| c.first()).is_some_and(|&v| v == 1);
        let mut offsets = match ctts {
            Some(c) => Some(Runs::new(c)?),
            None => None,
        };
        // Keyframes: numbered from 1, ascending (no stss: all are).
        let stss = child(stbl, b"stss");
        let mut next_key = 0usize;
        let (chunk_at, chunks): (Box<dyn Fn(usize) -> Option<u64>>, usize) =
            if let Some(stco) = child(stbl, b"stco") {
                (
                    Box::new(move |c| be32(stco, 8 + 4 * c).map(u64::from)),
                    be32(stco, 4)? as usize,
                )
            } else {
                let co64 = child(stbl, b"co64")?;
                (
                    Box::new(move |c| be64(co64, 8 + 8 * c)),
                    be32(co64, 4)? as usize,
                )
            };
        let stsc = child(stbl, b"stsc")?;
        let runs = be32(stsc, 4)? as usize;
        let mut run = 0usize;
        let mut samples = Vec::new();
        let mut min_offset = 0i64;
        let (mut dts, mut s) = (0u64, 0usize);
        'chunks: for c in 0..chunks {
            let chunk_no = c as u32 + 1;
            while run + 1 < runs && be32(stsc, 8 + 12 * (run + 1))? <= chunk_no {
                run += 1;
            }
            let per_chunk = be32(stsc, 12 + 12 * run)?;
            let mut offset = chunk_at(c)?;
            for _ in 0..per_chunk {
                if s == n {
                    break 'chunks;
                }
                let sz = size(s)?;
                if offset
                    .checked_add(sz as u64)
                    .is_none_or(|end| end > file_len)
                {
                    break 'chunks;
                }
                let duration = durations.next()?;
                let cts_offset = match offsets.as_mut() {
                    Some(o) => {
                        let raw = o.next()?;
                        if signed {
                            raw as i32 as i64
                        } else {
                            raw as i64
                        }
                    }
                    None => 0,
                };
                min_offset = min_offset.min(cts_offset);
                let keyframe = match stss {
                    None => true,
                    Some(t) => {
                        let count = be32(t, 4)? as usize;
                        while next_key < count && (be32(t, 8 + 4 * next_key)? as usize) < s + 1 {
                            next_key += 1;
                        }
                        next_key < count && be32(t, 8 + 4 * next_key)? as usize == s + 1
                    }
                };
                if dts >= from {
                    samples.push(Sample {
                        offset,
                        size: sz,
                        dts,
                        cts_offset,
                        duration,
                        keyframe,
                    });
                }
                offset += sz as u64;
                dts += duration as u64;
                s += 1;
            }
        }
        Some(Track {
            track_id,
            timescale,
            samples,
            cts_shift: -min_offset,
        })
    }

    /// The track's id and timescale, without its samples.
    fn parse_header(trak: &[u8]) -> Option<Track> {
        let tkhd = child(trak, b"tkhd")?;
        let mdhd = child(child(trak, b"mdia")?, b"mdhd")?;
        Some(Track {
            track_id: be32(tkhd, if *tkhd.first()? == 1 { 20 } else { 12 })?,
            timescale: be32(mdhd, if *mdhd.first()? == 1 { 20 } else { 12 })?,
            samples: Vec::new(),
            cts_shift: 0,
        })
    }

    /// A time in the track's units as GStreamer time, the way qtdemux
    /// converts it (rounding down).
    pub fn to_ns(&self, t: u64) -> u64 {
        (t as u128 * 1_000_000_000 / self.timescale.max(1) as u128) as u64
    }

    /// A sample's decode time, presentation time and duration as qtdemux
    /// would stamp them, in nanoseconds.
    pub fn times_ns(&self, s: &Sample) -> (u64, u64, u64) {
        let dts = self.to_ns(s.dts);
        let pts = self.to_ns((s.dts as i64 + s.cts_offset + self.cts_shift).max(0) as u64);
        let end = self.to_ns(s.dts + s.duration as u64);
        (dts, pts, end - dts)
    }
}

/// Track `track_id` of an MP4-family file, with its samples from decode
/// time `from_ns` on (nanoseconds), if the file has an index and the track.
pub fn track(path: &Path, track_id: u32, from_ns: u64) -> std::io::Result<Option<Track>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let Some(moov) = read_moov(&mut f, len)? else {
        return Ok(None);
    };
    Ok(track_in_moov(&moov, len, track_id, from_ns))
}

/// The ids of the tracks a `moov` body declares, in order.
pub fn track_ids(moov: &[u8]) -> Vec<u32> {
    children(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, t)| Track::parse_header(t).map(|t| t.track_id))
        .collect()
}

/// [`track`] over a `moov` body already read, of a file of `file_len`
/// bytes (samples past the file's end are not in it).
pub fn track_in_moov(moov: &[u8], file_len: u64, track_id: u32, from_ns: u64) -> Option<Track> {
    children(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, t)| {
            let mut probe = Track::parse_header(t)?;
            if probe.track_id != track_id {
                return None;
            }
            // One tick early: qtdemux's nanoseconds round down.
            let from = (from_ns as u128 * probe.timescale as u128 / 1_000_000_000) as u64;
            probe = Track::parse(t, from.saturating_sub(1), file_len)?;
            Some(probe)
        })
        .next()
}

/// The samples qtdemux left out at the end of a track: those after the
/// one it pushed last (at decode time `last_dts`, nanoseconds) that still
/// start before the end of the track's edit (`stop`, nanoseconds of media
/// time), with their bytes read from the file.
pub struct TailSamples;

impl TailSamples {
    pub fn find(track: &Track, last_dts: u64, stop: Option<u64>) -> Vec<Sample> {
        let Some(last) = track
            .samples
            .iter()
            .rposition(|s| track.to_ns(s.dts) == last_dts)
        else {
            return Vec::new();
        };
        track.samples[last + 1..]
            .iter()
            .take_while(|s| stop.is_none_or(|stop| track.to_ns(s.dts) < stop))
            .copied()
            .collect()
    }

    /// A sample as qtdemux would have pushed it.
    pub fn buffer(path: &Path, track: &Track, s: &Sample) -> std::io::Result<gst::Buffer> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(s.offset))?;
        let mut data = vec![0u8; s.size as usize];
        f.read_exact(&mut data)?;
        let mut b = gst::Buffer::from_mut_slice(data);
        {
            let b = b.get_mut().expect("new buffer");
            let (dts, pts, duration) = track.times_ns(s);
            b.set_dts(gst::ClockTime::from_nseconds(dts));
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_duration(gst::ClockTime::from_nseconds(duration));
            if !s.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn words(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// An audio track of 5 samples (sizes 10..14) in two chunks, at 48 kHz,
    /// 1024 per sample but the last (256).
    fn trak() -> Vec<u8> {
        let tkhd = bx(b"tkhd", &words(&[0, 0, 0, 7]));
        let mdhd = bx(b"mdhd", &words(&[0, 0, 0, 48_000]));
        let stbl = [
            bx(b"stsz", &words(&[0, 0, 5, 10, 11, 12, 13, 14])),
            bx(b"stts", &words(&[0, 2, 4, 1024, 1, 256])),
            bx(b"stsc", &words(&[0, 2, 1, 3, 1, 2, 2, 1])),
            bx(b"stco", &words(&[0, 2, 1000, 5000])),
        ]
        .concat();
        let minf = bx(b"minf", &bx(b"stbl", &stbl));
        bx(
            b"trak",
            &[tkhd, bx(b"mdia", &[mdhd, minf].concat())].concat(),
        )
    }

    #[test]
    fn sample_tables_give_offsets_and_times() {
        let t = Track::parse(&trak()[8..], 0, 1 << 20).unwrap();
        assert_eq!((t.track_id, t.timescale), (7, 48_000));
        let s: Vec<(u64, u32, u64, u32)> = t
            .samples
            .iter()
            .map(|s| (s.offset, s.size, s.dts, s.duration))
            .collect();
        assert_eq!(
            s,
            [
                (1000, 10, 0, 1024),
                (1010, 11, 1024, 1024),
                (1021, 12, 2048, 1024),
                (5000, 13, 3072, 1024),
                (5013, 14, 4096, 256)
            ]
        );
        assert!(t.samples.iter().all(|s| s.keyframe));
    }

    #[test]
    fn tail_after_the_last_pushed_sample_within_the_edit() {
        let t = Track::parse(&trak()[8..], 0, 1 << 20).unwrap();
        let last = t.to_ns(2048);
        let tail = TailSamples::find(&t, last, Some(t.to_ns(5000)));
        assert_eq!(tail.iter().map(|s| s.dts).collect::<Vec<_>>(), [3072, 4096]);
        // The edit ends before the last sample: it stays out.
        let tail = TailSamples::find(&t, last, Some(t.to_ns(4096)));
        assert_eq!(tail.len(), 1);
        // A time that is no sample's: nothing is guessed.
        assert!(TailSamples::find(&t, last + 1, None).is_empty());
    }

    #[test]
    fn a_file_without_moov_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.mp4");
        let mut data = bx(b"ftyp", b"isom\0\0\x02\0isomiso2");
        let mut mdat = bx(b"mdat", &[7; 100]);
        mdat.truncate(60);
        data.extend_from_slice(&mdat);
        std::fs::write(&p, &data).unwrap();
        let why = missing_index(&p).unwrap().unwrap();
        assert!(why.contains("truncated") && why.contains("moov"), "{why}");
        assert!(
            why.contains("mdat) declares 108 bytes but only 60"),
            "{why}"
        );
        assert!(why.contains("original is kept"), "{why}");
        data.extend_from_slice(&bx(b"moov", &trak()));
        std::fs::write(&p, &data).unwrap();
        // The mdat claims the moov's bytes: still no index found.
        assert!(missing_index(&p).unwrap().is_some());
        // The samples' bytes (at 1000..5027) lie in the mdat.
        let whole = [
            bx(b"ftyp", b"isom"),
            bx(b"mdat", &[1; 5100]),
            bx(b"moov", &trak()),
        ]
        .concat();
        std::fs::write(&p, whole).unwrap();
        assert_eq!(missing_index(&p).unwrap(), None);
        assert_eq!(track(&p, 7, 0).unwrap().unwrap().samples.len(), 5);
        let tail = track(&p, 7, 1024 * 1_000_000_000 / 48_000 + 1)
            .unwrap()
            .unwrap();
        assert_eq!(tail.samples.len(), 4, "from the sample at 1024 on");
        assert!(track(&p, 8, 0).unwrap().is_none());
    }

    /// A few bytes of sample tables may declare millions of samples of a
    /// fixed size; only those whose bytes lie in the file are walked.
    #[test]
    fn samples_past_the_end_of_the_file_are_not_walked() {
        let tkhd = bx(b"tkhd", &words(&[0, 0, 0, 1]));
        let mdhd = bx(b"mdhd", &words(&[0, 0, 0, 90_000]));
        let stbl = [
            // 50 million samples of 1 byte, all in one chunk at offset 0.
            bx(b"stsz", &words(&[0, 1, MAX_SAMPLES as u32])),
            bx(b"stts", &words(&[0, 1, MAX_SAMPLES as u32, 3000])),
            bx(b"stsc", &words(&[0, 1, 1, MAX_SAMPLES as u32, 1])),
            bx(b"stco", &words(&[0, 1, 0])),
        ]
        .concat();
        let minf = bx(b"minf", &bx(b"stbl", &stbl));
        let trak = bx(
            b"trak",
            &[tkhd, bx(b"mdia", &[mdhd, minf].concat())].concat(),
        );
        let t = Track::parse(&trak[8..], 0, 4096).unwrap();
        assert_eq!(t.samples.len(), 4096, "one sample per byte of the file");
        let moov = bx(b"moov", &trak);
        assert_eq!(track_ids(&moov[8..]), [1]);
        let t = track_in_moov(&moov[8..], 10, 1, 0).unwrap();
        assert_eq!(t.samples.len(), 10);
    }

    /// Why `data`, read as a whole file, has no usable index.
    fn index_problem(data: Vec<u8>) -> String {
        let len = data.len() as u64;
        missing_index_in(&mut std::io::Cursor::new(data), len)
            .unwrap()
            .expect("a problem found")
    }

    /// A box whose 64-bit size runs past the end of u64 is a cut file, not
    /// an overflow.
    #[test]
    fn a_last_box_of_impossible_size_is_reported() {
        let mut data = bx(b"ftyp", b"isom");
        data.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(&u64::MAX.to_be_bytes());
        let why = index_problem(data);
        assert!(why.contains("declares 18446744073709551615 bytes"), "{why}");
        // A box smaller than its header hides everything after it.
        let mut data = bx(b"ftyp", b"isom");
        data.extend_from_slice(&[0, 0, 0, 3]);
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(&bx(b"moov", &[]));
        let why = index_problem(data);
        assert!(
            why.contains("damaged: the box at offset 12 (mdat) declares 3 bytes, fewer than its own 8-byte header"),
            "{why}"
        );
    }

    /// A first box whose 64-bit size is u64::MAX ends exactly at the last
    /// offset u64 can hold: the walk stops there instead of overflowing
    /// (found by the fuzz target `mp4`).
    #[test]
    fn a_box_ending_at_u64_max_stops_the_walk() {
        let mut data = 1u32.to_be_bytes().to_vec();
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(&u64::MAX.to_be_bytes());
        let why = index_problem(data);
        assert!(
            why.contains("(mdat) declares 18446744073709551615 bytes"),
            "{why}"
        );
    }
}
