//! The self-check: a derivative is recorded as `derived` only if, track by
//! track, it plays what the original holds. For each included track the
//! gateway counts the original's samples as the codec's parser frames them
//! (the demuxer's timestamps, before any timestamp is restored) and reads
//! the derivative's samples back from the fMP4 bytes the muxer made
//! (`super::fmp4`). Both are counted as the data flows: no second pass.
//!
//! Per track: the sample counts are equal; the first and last presentation
//! times (relative to the earliest track) and the total duration agree
//! within one frame (plus two ticks of the derivative's timescale, its unit
//! of rounding); decode times strictly increase. Anything else is reported
//! as the reason the derivation failed (`docs/manifest.md` §9.4).

use super::fmp4::{Timeline, TrackTimeline};

/// One track of the original as it flows out of its parser.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub samples: u64,
    /// Samples that carried neither a presentation nor a decode time.
    untimed: u64,
    /// Earliest time, nanoseconds of running time.
    first: Option<i64>,
    /// Latest time, and latest time + duration of samples that have one.
    last: Option<i64>,
    end: Option<i64>,
    /// Latest time of a sample without a duration.
    last_undurated: Option<i64>,
}

impl Observed {
    /// A sample at `time` (its presentation time, or its decode time when
    /// the demuxer gives only that), lasting `duration`.
    pub fn add(&mut self, time: Option<i64>, duration: Option<u64>) {
        self.samples += 1;
        let Some(t) = time else {
            self.untimed += 1;
            return;
        };
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        match duration {
            Some(d) => {
                let e = t.saturating_add(d as i64);
                self.end = Some(self.end.map_or(e, |x| x.max(e)));
            }
            None => self.last_undurated = Some(self.last_undurated.map_or(t, |l| l.max(t))),
        }
    }

    /// (first, end) in nanoseconds, if the track carried times. A sample
    /// without a duration is taken to last the average frame.
    fn span(&self) -> Option<(i64, i64)> {
        let (first, last) = (self.first?, self.last?);
        let timed = self.samples - self.untimed;
        let avg = if timed > 1 {
            (last - first) / (timed as i64 - 1)
        } else {
            0
        };
        let mut end = self.end.unwrap_or(last);
        if let Some(u) = self.last_undurated {
            end = end.max(u + avg);
        }
        Some((first, end.max(first)))
    }
}

/// An included track of the original, as the gateway linked it.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The track's caps, shortened (for reasons).
    pub caps: String,
    pub video: bool,
    /// The muxer pad it feeds: the muxer numbers its tracks video first,
    /// then audio, each by pad name.
    pub mux_pad: String,
    pub observed: Observed,
}

fn secs(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn to_ns(t: &TrackTimeline, v: i64) -> i64 {
    (v as i128 * 1_000_000_000 / t.timescale.max(1) as i128) as i64
}

/// Compares the original's tracks with the derivative's. `Err` says, for
/// every track that differs, how.
pub fn compare(expected: &[Expected], derived: &Timeline) -> Result<(), String> {
    let mut order: Vec<&Expected> = expected.iter().collect();
    order.sort_by(|a, b| (!a.video, &a.mux_pad).cmp(&(!b.video, &b.mux_pad)));
    let tracks: Vec<&TrackTimeline> = derived.tracks().collect();
    if order.len() != tracks.len() {
        return Err(format!(
            "the original has {} included tracks, the derivative {}",
            order.len(),
            tracks.len()
        ));
    }
    let spans: Vec<Option<(i64, i64)>> = order.iter().map(|e| e.observed.span()).collect();
    let ref_origin = spans.iter().flatten().map(|s| s.0).min();
    let der_origin = tracks
        .iter()
        .filter_map(|t| t.first.map(|f| to_ns(t, f)))
        .min();
    let mut problems = Vec::new();
    for ((e, t), span) in order.iter().zip(&tracks).zip(&spans) {
        let mut p = Vec::new();
        let kind = if e.video { "vide" } else { "soun" };
        if t.handler != kind {
            p.push(format!(
                "is paired with derivative track {} of kind {:?}",
                t.track_id, t.handler
            ));
        }
        if e.observed.samples != t.samples {
            p.push(format!(
                "has {} samples in the original and {} in the derivative",
                e.observed.samples, t.samples
            ));
        }
        if let Some(f) = &t.fault {
            p.push(format!("in the derivative, {f}"));
        }
        if let (Some((rf, re)), Some(ro), Some(df), Some(de), Some(dro)) = (
            *span,
            ref_origin,
            t.first.map(|v| to_ns(t, v)),
            t.end.map(|v| to_ns(t, v)),
            der_origin,
        ) {
            let frame = if e.observed.samples > 0 {
                (re - rf) / e.observed.samples as i64
            } else {
                0
            };
            let tolerance = frame + 2 * to_ns(t, 1);
            if ((de - df) - (re - rf)).abs() > tolerance {
                p.push(format!(
                    "lasts {} in the derivative and {} in the original",
                    secs(de - df),
                    secs(re - rf)
                ));
            }
            if ((df - dro) - (rf - ro)).abs() > tolerance {
                p.push(format!(
                    "starts at {} in the derivative and at {} in the original",
                    secs(df - dro),
                    secs(rf - ro)
                ));
            }
            if ((de - dro) - (re - ro)).abs() > tolerance {
                p.push(format!(
                    "ends at {} in the derivative and at {} in the original",
                    secs(de - dro),
                    secs(re - ro)
                ));
            }
        }
        if !p.is_empty() {
            problems.push(format!(
                "track {} ({}) {}",
                t.track_id,
                short_caps(&e.caps),
                p.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The caps' media type only: reasons stay readable.
fn short_caps(caps: &str) -> &str {
    caps.split([',', ';']).next().unwrap_or(caps).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(n: u64, start_ns: i64, frame_ns: i64) -> Observed {
        let mut o = Observed::default();
        for i in 0..n as i64 {
            o.add(Some(start_ns + i * frame_ns), Some(frame_ns as u64));
        }
        o
    }

    fn expected(video: bool, pad: &str, o: Observed) -> Expected {
        Expected {
            caps: if video {
                "video/x-h264, width=(int)320".into()
            } else {
                "audio/mpeg, mpegversion=(int)4".into()
            },
            video,
            mux_pad: pad.into(),
            observed: o,
        }
    }

    /// The fMP4 the muxer would make: video (25 fps, timescale 2500) with
    /// `video` sample durations, audio 1024-sample AAC frames at 48 kHz.
    fn derived(video: &[u32], audio: usize) -> Timeline {
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
        let trak = |id: u32, ts: u32, h: &[u8; 4]| {
            let mut tk = vec![0; 8];
            tk.extend_from_slice(&id.to_be_bytes());
            let mut md = vec![0; 8];
            md.extend_from_slice(&ts.to_be_bytes());
            let mut hd = vec![0; 4];
            hd.extend_from_slice(h);
            let mdia = bx(
                b"mdia",
                &[full(b"mdhd", 0, 0, &md), full(b"hdlr", 0, 0, &hd)].concat(),
            );
            bx(b"trak", &[full(b"tkhd", 0, 0, &tk), mdia].concat())
        };
        let mut mv = vec![0; 8];
        mv.extend_from_slice(&1000u32.to_be_bytes());
        let moov = bx(
            b"moov",
            &[
                full(b"mvhd", 0, 0, &mv),
                trak(1, 2500, b"vide"),
                trak(2, 48_000, b"soun"),
            ]
            .concat(),
        );
        let mut tl = Timeline::from_init(&moov).unwrap();
        let frag = |id: u32, durs: &[u32]| {
            let mut t = (durs.len() as u32).to_be_bytes().to_vec();
            for d in durs {
                t.extend_from_slice(&d.to_be_bytes());
            }
            bx(
                b"moof",
                &bx(
                    b"traf",
                    &[
                        full(b"tfhd", 0, 0, &id.to_be_bytes()),
                        full(b"tfdt", 0, 0, &0u32.to_be_bytes()),
                        full(b"trun", 0, 0x100, &t),
                    ]
                    .concat(),
                ),
            )
        };
        tl.fragment(&frag(1, video)).unwrap();
        tl.fragment(&frag(2, &vec![1024; audio])).unwrap();
        tl
    }

    #[test]
    fn a_faithful_derivative_passes() {
        let exp = [
            // Pads in link order: audio linked first.
            expected(false, "sink_0", observed(250, 0, 21_333_333)),
            expected(true, "sink_1", observed(125, 0, 40_000_000)),
        ];
        compare(&exp, &derived(&[100; 125], 250)).unwrap();
    }

    #[test]
    fn a_collapsed_timeline_fails_with_what_differs() {
        // What GStreamer 1.22's avidemux + h264timestamper made of a 5 s
        // AVI: every sample but the last lasting nothing.
        let mut durs = vec![0; 125];
        durs[124] = 100;
        let exp = [
            expected(true, "sink_0", observed(125, 0, 40_000_000)),
            expected(false, "sink_1", observed(250, 0, 21_333_333)),
        ];
        let e = compare(&exp, &derived(&durs, 250)).unwrap_err();
        assert!(e.contains("track 1 (video/x-h264)"), "{e}");
        assert!(e.contains("sample 0 has no duration"), "{e}");
        assert!(
            e.contains("lasts 0.040 s in the derivative and 5.000 s"),
            "{e}"
        );
        assert!(!e.contains("track 2"), "audio is fine: {e}");
    }

    #[test]
    fn a_missing_sample_or_a_shifted_track_fails() {
        // One audio frame short (the last AAC frame qtdemux 1.22 dropped).
        let exp = [
            expected(true, "sink_0", observed(125, 0, 40_000_000)),
            expected(false, "sink_1", observed(251, 0, 21_333_333)),
        ];
        let e = compare(&exp, &derived(&[100; 125], 250)).unwrap_err();
        assert!(e.contains("has 251 samples in the original and 250"), "{e}");
        // Audio 100 ms late in the original but not in the derivative.
        let exp = [
            expected(true, "sink_0", observed(125, 0, 40_000_000)),
            expected(false, "sink_1", observed(250, 100_000_000, 21_333_333)),
        ];
        let e = compare(&exp, &derived(&[100; 125], 250)).unwrap_err();
        assert!(
            e.contains("starts at 0.000 s in the derivative and at 0.100 s in the original"),
            "{e}"
        );
    }

    #[test]
    fn within_one_frame_is_the_same() {
        // Durations missing on the last samples, and a frame's difference.
        let mut o = observed(124, 0, 40_000_000);
        o.add(Some(124 * 40_000_000), None);
        let exp = [
            expected(true, "sink_0", o),
            expected(false, "sink_1", observed(250, 0, 21_333_333)),
        ];
        let mut durs = vec![100; 125];
        durs[124] = 200;
        compare(&exp, &derived(&durs, 250)).unwrap();
    }
}
