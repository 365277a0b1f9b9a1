//! Reading the fragmented MP4 the muxer makes, as a player would: each
//! track's samples and their decode and presentation times, from the init
//! segment (`moov`) and the fragments (`moof`). The self-check
//! (`super::selfcheck`) compares this with the original's tracks; nothing
//! here trusts the muxer's own idea of what it wrote.
//!
//! Also makes the init segment reproducible: the muxer stamps the wall-clock
//! time into `mvhd`, `tkhd` and `mdhd`, which [`clear_creation_times`]
//! replaces with zero (ISO/IEC 14496-12: "unknown").

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the derivative's fMP4 structure: {0}")]
pub struct Fmp4Error(String);

fn err(s: impl Into<String>) -> Fmp4Error {
    Fmp4Error(s.into())
}

/// The boxes directly inside `data`: (type, body).
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), Fmp4Error>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= data.len() {
            return None;
        }
        let r = (|| {
            let h = data
                .get(at..at + 8)
                .ok_or_else(|| err("a box header is cut short"))?;
            let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
            let kind = [h[4], h[5], h[6], h[7]];
            let (header, size) = match size32 {
                1 => {
                    let l = data
                        .get(at + 8..at + 16)
                        .ok_or_else(|| err("a large box header is cut short"))?;
                    (16u64, u64::from_be_bytes(l.try_into().expect("8 bytes")))
                }
                0 => (8, (data.len() - at) as u64),
                s => (8, s),
            };
            let end = (at as u64)
                .checked_add(size)
                .filter(|&e| size >= header && e <= data.len() as u64)
                .ok_or_else(|| {
                    err(format!(
                        "box {} has an impossible size {size}",
                        String::from_utf8_lossy(&kind)
                    ))
                })? as usize;
            let body = &data[at + header as usize..end];
            at = end;
            Ok((kind, body))
        })();
        if r.is_err() {
            at = data.len();
        }
        Some(r)
    })
}

/// The first box of type `kind` directly inside `data`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Fmp4Error> {
    for b in boxes(data) {
        let (k, body) = b?;
        if &k == kind {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

/// Big-endian reads within a box body, failing instead of panicking.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, at: 0, what }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Fmp4Error> {
        let b = self
            .data
            .get(self.at..self.at + n)
            .ok_or_else(|| err(format!("{} is cut short", self.what)))?;
        self.at += n;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, Fmp4Error> {
        Ok(self.bytes(1)?[0])
    }
    fn u24(&mut self) -> Result<u32, Fmp4Error> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    fn u32(&mut self) -> Result<u32, Fmp4Error> {
        Ok(u32::from_be_bytes(self.bytes(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, Fmp4Error> {
        Ok(u64::from_be_bytes(self.bytes(8)?.try_into().expect("8")))
    }
    /// Version and flags of a full box.
    fn full(&mut self) -> Result<(u8, u32), Fmp4Error> {
        Ok((self.u8()?, self.u24()?))
    }
}

/// Replaces the creation and modification times in `mvhd` and in every
/// track's `tkhd` and `mdhd` with zero, in place. The muxer writes the
/// current wall-clock time there; with it, deriving the same original twice
/// would give different init segments.
pub fn clear_creation_times(init: &mut [u8]) -> Result<(), Fmp4Error> {
    fn clear(body: &mut [u8], what: &'static str) -> Result<(), Fmp4Error> {
        let width = match body.first() {
            Some(1) => 8,
            Some(0) => 4,
            _ => return Err(err(format!("{what} has an unknown version"))),
        };
        let fields = body
            .get_mut(4..4 + 2 * width)
            .ok_or_else(|| err(format!("{what} is cut short")))?;
        fields.fill(0);
        Ok(())
    }
    /// Byte ranges of the bodies of boxes of type `kind` directly inside
    /// `data[range]`, as absolute offsets into `data`.
    fn find(
        data: &[u8],
        range: std::ops::Range<usize>,
        kind: &[u8; 4],
    ) -> Result<Vec<std::ops::Range<usize>>, Fmp4Error> {
        let base = data.as_ptr() as usize;
        let mut out = Vec::new();
        for b in boxes(&data[range]) {
            let (k, body) = b?;
            if &k == kind {
                let start = body.as_ptr() as usize - base;
                out.push(start..start + body.len());
            }
        }
        Ok(out)
    }
    let all = 0..init.len();
    let moov = find(init, all, b"moov")?
        .into_iter()
        .next()
        .ok_or_else(|| err("the init segment has no moov"))?;
    let mut targets: Vec<(std::ops::Range<usize>, &'static str)> = Vec::new();
    for r in find(init, moov.clone(), b"mvhd")? {
        targets.push((r, "mvhd"));
    }
    for trak in find(init, moov, b"trak")? {
        for r in find(init, trak.clone(), b"tkhd")? {
            targets.push((r, "tkhd"));
        }
        for mdia in find(init, trak, b"mdia")? {
            for r in find(init, mdia, b"mdhd")? {
                targets.push((r, "mdhd"));
            }
        }
    }
    for (r, what) in targets {
        clear(&mut init[r], what)?;
    }
    Ok(())
}

/// One track of the derivative, as its samples play.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackTimeline {
    pub track_id: u32,
    /// `vide`, `soun`, …
    pub handler: String,
    pub timescale: u32,
    pub samples: u64,
    /// Earliest presentation time and the latest presentation end (time +
    /// duration), in `timescale` units, after the edit list.
    pub first: Option<i64>,
    pub end: Option<i64>,
    /// The first thing found wrong with the decode timeline, if any: decode
    /// times must strictly increase (every sample lasts, and a fragment
    /// starts after the previous fragment's last sample).
    pub fault: Option<String>,
    /// Presentation shift from the edit list, in `timescale` units.
    shift: i64,
    default_duration: u32,
    /// Decode time of the latest sample.
    last_decode: Option<i64>,
}

impl TrackTimeline {
    fn fault(&mut self, why: String) {
        self.fault.get_or_insert(why);
    }

    /// Adds `count` samples from decode time `decode` on, each lasting
    /// `duration` with `composition_offset`; returns the decode time after
    /// them. One call covers a run without per-sample fields however many
    /// samples it declares, so a `trun` of 2³² samples in 16 bytes costs
    /// no more than one of a single sample. Times come from the file:
    /// arithmetic saturates instead of overflowing.
    fn add_samples(
        &mut self,
        decode: i64,
        count: u32,
        duration: u32,
        composition_offset: i64,
    ) -> i64 {
        if count == 0 {
            return decode;
        }
        if duration == 0 {
            self.fault(format!(
                "sample {} has no duration (its decode time equals the next one's)",
                self.samples
            ));
        }
        let span = count as i128 * duration as i128;
        let pres = decode as i128 + composition_offset as i128 + self.shift as i128;
        let first = saturate(pres);
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        let end = saturate(pres + span);
        self.end = Some(self.end.map_or(end, |e| e.max(end)));
        self.samples += count as u64;
        self.last_decode = Some(saturate(decode as i128 + span - duration as i128));
        saturate(decode as i128 + span)
    }

    /// Seconds, for reports.
    pub fn seconds(&self, t: i64) -> f64 {
        t as f64 / self.timescale.max(1) as f64
    }
}

/// Per-track timelines of a derivative, fed its init segment and then
/// each fragment as it is made (no second pass over the output).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    tracks: BTreeMap<u32, TrackTimeline>,
}

impl Timeline {
    /// Reads the tracks, their timescales and edit lists from the init
    /// segment (`ftyp` + `moov`).
    pub fn from_init(init: &[u8]) -> Result<Timeline, Fmp4Error> {
        let moov = child(init, b"moov")?.ok_or_else(|| err("the init segment has no moov"))?;
        let mvhd = child(moov, b"mvhd")?.ok_or_else(|| err("moov has no mvhd"))?;
        let movie_timescale = {
            let mut r = Reader::new(mvhd, "mvhd");
            let (v, _) = r.full()?;
            r.bytes(if v == 1 { 16 } else { 8 })?;
            r.u32()?
        };
        let mut trex = BTreeMap::new();
        if let Some(mvex) = child(moov, b"mvex")? {
            for b in boxes(mvex) {
                let (k, body) = b?;
                if &k == b"trex" {
                    let mut r = Reader::new(body, "trex");
                    r.full()?;
                    let id = r.u32()?;
                    r.u32()?; // sample description index
                    trex.insert(id, r.u32()?);
                }
            }
        }
        let mut tracks = BTreeMap::new();
        for b in boxes(moov) {
            let (k, trak) = b?;
            if &k != b"trak" {
                continue;
            }
            let tkhd = child(trak, b"tkhd")?.ok_or_else(|| err("a trak has no tkhd"))?;
            let track_id = {
                let mut r = Reader::new(tkhd, "tkhd");
                let (v, _) = r.full()?;
                r.bytes(if v == 1 { 16 } else { 8 })?;
                r.u32()?
            };
            let mdia = child(trak, b"mdia")?.ok_or_else(|| err("a trak has no mdia"))?;
            let mdhd = child(mdia, b"mdhd")?.ok_or_else(|| err("a trak has no mdhd"))?;
            let timescale = {
                let mut r = Reader::new(mdhd, "mdhd");
                let (v, _) = r.full()?;
                r.bytes(if v == 1 { 16 } else { 8 })?;
                r.u32()?
            };
            if timescale == 0 {
                return Err(err(format!("track {track_id} has timescale 0")));
            }
            let handler = match child(mdia, b"hdlr")? {
                Some(h) => {
                    let mut r = Reader::new(h, "hdlr");
                    r.full()?;
                    r.u32()?; // pre-defined
                    String::from_utf8_lossy(r.bytes(4)?).into_owned()
                }
                None => String::new(),
            };
            let shift = match child(trak, b"edts")? {
                Some(edts) => match child(edts, b"elst")? {
                    Some(elst) => edit_shift(elst, movie_timescale, timescale)?,
                    None => 0,
                },
                None => 0,
            };
            tracks.insert(
                track_id,
                TrackTimeline {
                    track_id,
                    handler,
                    timescale,
                    samples: 0,
                    first: None,
                    end: None,
                    fault: None,
                    shift,
                    default_duration: trex.get(&track_id).copied().unwrap_or(0),
                    last_decode: None,
                },
            );
        }
        if tracks.is_empty() {
            return Err(err("the init segment has no track"));
        }
        Ok(Timeline { tracks })
    }

    /// Adds a fragment (or a CMAF chunk): any number of `moof` + `mdat`,
    /// optionally after a `styp`.
    pub fn fragment(&mut self, data: &[u8]) -> Result<(), Fmp4Error> {
        for b in boxes(data) {
            let (k, moof) = b?;
            if &k != b"moof" {
                continue;
            }
            for b in boxes(moof) {
                let (k, traf) = b?;
                if &k == b"traf" {
                    self.traf(traf)?;
                }
            }
        }
        Ok(())
    }

    fn traf(&mut self, traf: &[u8]) -> Result<(), Fmp4Error> {
        let tfhd = child(traf, b"tfhd")?.ok_or_else(|| err("a traf has no tfhd"))?;
        let mut r = Reader::new(tfhd, "tfhd");
        let (_, flags) = r.full()?;
        let track_id = r.u32()?;
        if flags & 0x1 != 0 {
            r.u64()?; // base data offset
        }
        if flags & 0x2 != 0 {
            r.u32()?; // sample description index
        }
        let track = self.tracks.get_mut(&track_id).ok_or_else(|| {
            err(format!(
                "a fragment names track {track_id}, not in the init"
            ))
        })?;
        let default_duration = if flags & 0x8 != 0 {
            r.u32()?
        } else {
            track.default_duration
        };
        let tfdt = child(traf, b"tfdt")?.ok_or_else(|| err("a traf has no tfdt"))?;
        let mut r = Reader::new(tfdt, "tfdt");
        let (v, _) = r.full()?;
        let start = if v == 1 { r.u64()? } else { r.u32()? as u64 };
        let mut decode = i64::try_from(start).map_err(|_| err("tfdt out of range"))?;
        // (A fragment may start a tick before the previous one's last
        // sample ends: the muxer rounds each to its timescale.)
        if let Some(last) = track.last_decode
            && decode <= last
        {
            track.fault(format!(
                "a fragment starts at decode time {:.3} s, not after the previous sample ({:.3} s): timestamps go backwards",
                track.seconds(decode),
                track.seconds(last)
            ));
        }
        for b in boxes(traf) {
            let (k, trun) = b?;
            if &k != b"trun" {
                continue;
            }
            let mut r = Reader::new(trun, "trun");
            let (version, flags) = r.full()?;
            let count = r.u32()?;
            if flags & 0x1 != 0 {
                r.u32()?; // data offset
            }
            if flags & 0x4 != 0 {
                r.u32()?; // first sample flags
            }
            if flags & 0xf00 == 0 {
                // No per-sample fields: every sample is alike.
                decode = track.add_samples(decode, count, default_duration, 0);
                continue;
            }
            // Each sample reads at least one field: the loop ends with the
            // box's bytes.
            for _ in 0..count {
                let duration = if flags & 0x100 != 0 {
                    r.u32()?
                } else {
                    default_duration
                };
                if flags & 0x200 != 0 {
                    r.u32()?;
                }
                if flags & 0x400 != 0 {
                    r.u32()?;
                }
                let cto = if flags & 0x800 != 0 {
                    let raw = r.u32()?;
                    if version == 0 {
                        raw as i64
                    } else {
                        raw as i32 as i64
                    }
                } else {
                    0
                };
                decode = track.add_samples(decode, 1, duration, cto);
            }
        }
        Ok(())
    }

    pub fn tracks(&self) -> impl Iterator<Item = &TrackTimeline> {
        self.tracks.values()
    }
}

/// How far the edit list moves a track's presentation, in track units:
/// empty edits (media time -1) delay it, the first media edit's start
/// advances it.
fn edit_shift(elst: &[u8], movie_timescale: u32, timescale: u32) -> Result<i64, Fmp4Error> {
    let mut r = Reader::new(elst, "elst");
    let (v, _) = r.full()?;
    let n = r.u32()?;
    let mut shift = 0i64;
    for _ in 0..n {
        let (duration, media_time) = if v == 1 {
            (r.u64()?, r.u64()? as i64)
        } else {
            (r.u32()? as u64, r.u32()? as i32 as i64)
        };
        r.u32()?; // media rate
        if media_time == -1 {
            let d = duration as i128 * timescale as i128 / movie_timescale.max(1) as i128;
            shift = saturate(shift as i128 + d);
        } else {
            return Ok(saturate(shift as i128 - media_time as i128));
        }
    }
    Ok(shift)
}

/// `v` within the range of i64: times read from a file may add up past it.
fn saturate(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
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

    fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = vec![version];
        b.extend_from_slice(&flags.to_be_bytes()[1..]);
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    /// A v1 header box: creation, modification (64-bit), then `rest`.
    fn v1_times(kind: &[u8; 4], t: u64, rest: &[u8]) -> Vec<u8> {
        let mut b = t.to_be_bytes().to_vec();
        b.extend_from_slice(&t.to_be_bytes());
        b.extend_from_slice(rest);
        full(kind, 1, 0, &b)
    }

    /// An init segment with a video track (id 1, 90 kHz) and an audio
    /// track (id 2, 48 kHz, edit list starting 1024 samples in).
    fn init(stamp: u64) -> Vec<u8> {
        let mvhd = v1_times(b"mvhd", stamp, &[0, 0, 3, 232, 0, 0, 0, 0, 0, 0, 0, 0]);
        let trak = |id: u32, ts: u32, handler: &[u8; 4], elst: Option<i64>| {
            let mut tk = id.to_be_bytes().to_vec();
            tk.extend_from_slice(&[0; 8]);
            let tkhd = v1_times(b"tkhd", stamp, &tk);
            let mut md = ts.to_be_bytes().to_vec();
            md.extend_from_slice(&[0; 12]);
            let mdhd = v1_times(b"mdhd", stamp, &md);
            let mut h = vec![0; 4];
            h.extend_from_slice(handler);
            h.extend_from_slice(&[0; 13]);
            let hdlr = full(b"hdlr", 0, 0, &h);
            let mdia = bx(b"mdia", &[mdhd, hdlr].concat());
            let mut parts = vec![tkhd];
            if let Some(m) = elst {
                let mut e = 1u32.to_be_bytes().to_vec();
                e.extend_from_slice(&6000u32.to_be_bytes());
                e.extend_from_slice(&(m as i32).to_be_bytes());
                e.extend_from_slice(&0x0001_0000u32.to_be_bytes());
                parts.push(bx(b"edts", &full(b"elst", 0, 0, &e)));
            }
            parts.push(mdia);
            bx(b"trak", &parts.concat())
        };
        let moov = bx(
            b"moov",
            &[
                mvhd,
                trak(1, 90_000, b"vide", None),
                trak(2, 48_000, b"soun", Some(1024)),
            ]
            .concat(),
        );
        [bx(b"ftyp", b"iso6\0\0\0\0"), moov].concat()
    }

    /// A fragment of `track` starting at `tfdt`, samples (duration, cto).
    fn frag(track: u32, tfdt: u64, samples: &[(u32, i32)]) -> Vec<u8> {
        let tfhd = full(b"tfhd", 0, 0x020000, &track.to_be_bytes());
        let tfdt = full(b"tfdt", 1, 0, &tfdt.to_be_bytes());
        let mut t = (samples.len() as u32).to_be_bytes().to_vec();
        for (d, c) in samples {
            t.extend_from_slice(&d.to_be_bytes());
            t.extend_from_slice(&c.to_be_bytes());
        }
        let trun = full(b"trun", 1, 0x100 | 0x800, &t);
        let moof = bx(b"moof", &bx(b"traf", &[tfhd, tfdt, trun].concat()));
        [moof, bx(b"mdat", &[0; 4])].concat()
    }

    #[test]
    fn reads_samples_times_and_edit_lists() {
        let mut tl = Timeline::from_init(&init(3_879_437_070)).unwrap();
        // I P B B as decoded; B frames present before the P (negative cto).
        tl.fragment(&frag(
            1,
            0,
            &[(3600, 0), (3600, 7200), (3600, -3600), (3600, -3600)],
        ))
        .unwrap();
        tl.fragment(&frag(1, 14_400, &[(3600, 0)])).unwrap();
        tl.fragment(&frag(2, 0, &[(1024, 0), (1024, 0), (1024, 0)]))
            .unwrap();
        let t: Vec<_> = tl.tracks().cloned().collect();
        assert_eq!((t[0].handler.as_str(), t[0].samples), ("vide", 5));
        assert_eq!((t[0].first, t[0].end), (Some(0), Some(18_000)));
        assert_eq!(t[0].fault, None);
        // The edit list starts audio 1024 samples in.
        assert_eq!((t[1].first, t[1].end), (Some(-1024), Some(2048)));
    }

    #[test]
    fn collapsed_or_backwards_timelines_are_faults() {
        let mut tl = Timeline::from_init(&init(0)).unwrap();
        tl.fragment(&frag(1, 0, &[(3600, 0), (0, 0), (3600, 0)]))
            .unwrap();
        let f = tl.tracks().next().unwrap().fault.clone().unwrap();
        assert!(f.contains("sample 1 has no duration"), "{f}");

        let mut tl = Timeline::from_init(&init(0)).unwrap();
        tl.fragment(&frag(1, 0, &[(3600, 0), (3600, 0)])).unwrap();
        // One tick early is rounding, not a step back.
        tl.fragment(&frag(1, 7199, &[(3600, 0)])).unwrap();
        assert_eq!(tl.tracks().next().unwrap().fault, None);
        tl.fragment(&frag(1, 3600, &[(3600, 0)])).unwrap();
        let f = tl.tracks().next().unwrap().fault.clone().unwrap();
        assert!(f.contains("go backwards"), "{f}");
    }

    #[test]
    fn creation_times_are_cleared_in_place() {
        let mut a = init(3_879_437_070);
        let b = init(3_979_437_070);
        assert_ne!(a, b);
        let mut b2 = b.clone();
        clear_creation_times(&mut a).unwrap();
        clear_creation_times(&mut b2).unwrap();
        assert_eq!(a, b2, "made at different times, identical once cleared");
        assert_eq!(a, init(0));
        assert_eq!(a.len(), b.len());
    }

    #[test]
    fn malformed_boxes_are_errors_not_panics() {
        let mut i = init(0);
        // The moov (after a 16-byte ftyp) claiming more bytes than there are.
        i[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Timeline::from_init(&i).is_err());
        assert!(Timeline::from_init(&[0, 0, 0, 4, b'm', b'o', b'o', b'v']).is_err());
        let mut tl = Timeline::from_init(&init(0)).unwrap();
        assert!(
            tl.fragment(&frag(9, 0, &[(1, 0)])).is_err(),
            "unknown track"
        );
        let mut f = frag(1, 0, &[(1, 0)]);
        f.truncate(f.len() - 16);
        assert!(tl.fragment(&f).is_err());
    }

    /// A `trun` without per-sample fields declares its samples in a few
    /// bytes, however many: they are counted, not walked one by one (2³²
    /// of them once took seconds of CPU per fragment).
    #[test]
    fn a_run_of_alike_samples_costs_one_step() {
        let mut tl = Timeline::from_init(&init(0)).unwrap();
        let tfhd = full(b"tfhd", 0, 0x020008, &[0, 0, 0, 1, 0, 0, 0x0e, 0x10]);
        let tfdt = full(b"tfdt", 1, 0, &0u64.to_be_bytes());
        let trun = full(b"trun", 0, 0, &u32::MAX.to_be_bytes());
        let moof = bx(b"moof", &bx(b"traf", &[tfhd, tfdt, trun].concat()));
        tl.fragment(&moof).unwrap();
        let t = tl.tracks().next().unwrap();
        assert_eq!(t.samples, u32::MAX as u64);
        assert_eq!(t.end, Some(u32::MAX as i64 * 3600));
        assert_eq!(t.fault, None);
    }

    /// Decode times, composition offsets and edits near the ends of i64
    /// saturate instead of overflowing.
    #[test]
    fn extreme_times_saturate() {
        let mut tl = Timeline::from_init(&init(0)).unwrap();
        tl.fragment(&frag(1, i64::MAX as u64, &[(u32::MAX, i32::MAX)]))
            .unwrap();
        tl.fragment(&frag(1, i64::MAX as u64, &[(u32::MAX, 0)]))
            .unwrap();
        let t = tl.tracks().next().unwrap();
        assert_eq!(t.end, Some(i64::MAX));
        assert!(t.fault.as_deref().unwrap().contains("go backwards"));
        let mut e = 2u32.to_be_bytes().to_vec();
        for (d, m) in [(u64::MAX, -1i64), (0, i64::MIN)] {
            e.extend_from_slice(&d.to_be_bytes());
            e.extend_from_slice(&m.to_be_bytes());
            e.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let elst = full(b"elst", 1, 0, &e);
        assert_eq!(edit_shift(&elst[8..], 1, u32::MAX).unwrap(), i64::MAX);
    }
}
