//! HLS playlists: Low-Latency HLS for live recordings (parts, blocking
//! playlist reload, preload hints) and VOD playlists over stored segments.

use std::fmt::Write;

use crate::live::view::LiveView;
use crate::manifest::{Manifest, Role};

/// Codecs of an fMP4 initialisation segment, as HLS `CODECS` wants them
/// (RFC 6381 strings), and whether browsers can play them (H.265 mostly
/// cannot).
pub fn codecs(init: &[u8]) -> (String, bool) {
    let find = |tag: &[u8]| init.windows(4).position(|w| w == tag);
    let mut out = Vec::new();
    let mut playable = true;
    if let Some(i) = find(b"avcC") {
        if let Some(b) = init.get(i + 5..i + 8) {
            let entry = if find(b"avc3").is_some() {
                "avc3"
            } else {
                "avc1"
            };
            out.push(format!("{entry}.{:02x}{:02x}{:02x}", b[0], b[1], b[2]));
        }
    } else if let Some(i) = find(b"hvcC") {
        let entry = if find(b"hev1").is_some() {
            "hev1"
        } else {
            "hvc1"
        };
        out.push(hevc_codec(entry, init.get(i + 4..).unwrap_or(&[])));
        playable = false;
    }
    if let Some(i) = find(b"esds") {
        out.push(aac_codec(init.get(i + 8..).unwrap_or(&[])));
    } else if find(b"mp4a").is_some() {
        out.push("mp4a.40.2".to_string());
    } else if find(b"Opus").is_some() {
        out.push("opus".to_string());
    }
    (out.join(","), playable)
}

/// `hvc1.<space><profile>.<compat>.<tier><level>.<constraints>` from an
/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, annex E).
fn hevc_codec(entry: &str, rec: &[u8]) -> String {
    if rec.len() < 13 {
        return format!("{entry}.1.6.L93.B0");
    }
    let space = ["", "A", "B", "C"][(rec[1] >> 6) as usize];
    let tier = if rec[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = rec[1] & 0x1f;
    let compat = u32::from_be_bytes([rec[2], rec[3], rec[4], rec[5]]).reverse_bits();
    let mut constraints: Vec<u8> = rec[6..12].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut s = format!("{entry}.{space}{profile}.{compat:x}.{tier}{}", rec[12]);
    for c in constraints {
        s.push_str(&format!(".{c:02X}"));
    }
    s
}

/// `mp4a.<object type>[.<audio object type>]` from the descriptors of an
/// `esds` box (after its version and flags).
fn aac_codec(d: &[u8]) -> String {
    // (tag, payload) of the descriptor at `at`.
    fn descriptor(d: &[u8], at: usize) -> Option<(u8, usize, usize)> {
        let tag = *d.get(at)?;
        let (mut len, mut i) = (0usize, at + 1);
        for _ in 0..4 {
            let b = *d.get(i)?;
            i += 1;
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        Some((tag, i, len))
    }
    let parse = || -> Option<String> {
        let (tag, mut i, _) = descriptor(d, 0)?;
        if tag != 0x03 {
            return None;
        }
        let flags = *d.get(i + 2)?;
        i += 3;
        if flags & 0x80 != 0 {
            i += 2;
        }
        if flags & 0x40 != 0 {
            i += 1 + *d.get(i)? as usize;
        }
        if flags & 0x20 != 0 {
            i += 2;
        }
        let (tag, j, _) = descriptor(d, i)?;
        if tag != 0x04 {
            return None;
        }
        let oti = *d.get(j)?;
        if oti != 0x40 {
            return Some(format!("mp4a.{oti:02x}"));
        }
        let (tag, k, _) = descriptor(d, j + 13)?;
        let aot = if tag == 0x05 { d.get(k)? >> 3 } else { 2 };
        Some(format!("mp4a.40.{aot}"))
    };
    parse().unwrap_or_else(|| "mp4a.40.2".to_string())
}

pub fn master(codecs: &str, bandwidth: u64, media: &str, version: u8) -> String {
    let mut s = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(s, "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}");
    if !codecs.is_empty() {
        let _ = write!(s, ",CODECS=\"{codecs}\"");
    }
    let _ = writeln!(s, "\n{media}");
    s
}

/// The LL-HLS media playlist of a live view. `segment_target` is the
/// configured segment duration: with the longest segment seen so far it
/// makes a target duration that never shrinks while the recording plays.
pub fn live(v: &LiveView, part_target: f64, segment_target: f64) -> String {
    let max = v
        .segments
        .iter()
        .map(|s| s.duration())
        .fold(v.max_duration.max(segment_target), f64::max);
    let mut s = String::new();
    let _ = writeln!(s, "#EXTM3U\n#EXT-X-VERSION:9");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", max.ceil() as u64);
    let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
    let _ = writeln!(
        s,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
        part_target * 3.0
    );
    let first = v.segments.front().map(|x| x.msn).unwrap_or(0);
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first}");
    if v.discontinuity_sequence > 0 {
        let _ = writeln!(
            s,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            v.discontinuity_sequence
        );
    }
    let mut generation = None;
    let n = v.segments.len();
    for (i, seg) in v.segments.iter().enumerate() {
        if generation != Some(seg.generation) {
            if generation.is_some() {
                let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
            }
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"init-{}.mp4\"", seg.generation);
            generation = Some(seg.generation);
        }
        // Parts of the newest segments, for players at the live edge.
        if i + 3 >= n {
            for (k, p) in seg.parts.iter().enumerate() {
                let _ = write!(
                    s,
                    "#EXT-X-PART:DURATION={:.3},URI=\"part-{}.{k}.m4s\"",
                    p.duration, seg.msn
                );
                if p.independent {
                    s.push_str(",INDEPENDENT=YES");
                }
                s.push('\n');
            }
        }
        if seg.complete {
            let _ = writeln!(s, "#EXTINF:{:.3},\nseg-{}.m4s", seg.duration(), seg.msn);
        }
    }
    if v.ended {
        s.push_str("#EXT-X-ENDLIST\n");
    } else if let Some(seg) = v.segments.back() {
        let next = if seg.complete {
            format!("part-{}.0.m4s", seg.msn + 1)
        } else {
            format!("part-{}.{}.m4s", seg.msn, seg.parts.len())
        };
        let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{next}\"");
    }
    s
}

/// The VOD playlist of a stored recording's derived segments; `None` if it
/// has none.
pub fn vod(m: &Manifest) -> Option<String> {
    let segs: Vec<_> = m
        .objects
        .iter()
        .filter(|o| o.role == Role::Segment)
        .collect();
    if segs.is_empty() {
        return None;
    }
    let dur = |o: &crate::manifest::ObjectEntry| {
        o.media
            .as_ref()
            .map(|r| (r.end - r.start).max(0.0))
            .unwrap_or(2.0)
    };
    let max = segs.iter().map(|o| dur(o)).fold(1.0_f64, f64::max);
    let mut s = String::new();
    let _ = writeln!(s, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD");
    let _ = writeln!(
        s,
        "#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0",
        max.ceil() as u64
    );
    let mut had_map = false;
    for o in &m.objects {
        match o.role {
            Role::Init => {
                if had_map {
                    let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
                }
                let _ = writeln!(s, "#EXT-X-MAP:URI=\"obj/{}.mp4\"", o.index);
                had_map = true;
            }
            Role::Segment if had_map => {
                let _ = writeln!(s, "#EXTINF:{:.3},\nobj/{}.m4s", dur(o), o.index);
            }
            _ => {}
        }
    }
    s.push_str("#EXT-X-ENDLIST\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings() {
        let mut init = b"....ftypiso6....moov....avc1....avcC".to_vec();
        init.extend_from_slice(&[1, 0x64, 0x00, 0x1f, 0xff]);
        init.extend_from_slice(b"....mp4a....");
        assert_eq!(codecs(&init), ("avc1.64001f,mp4a.40.2".to_string(), true));
        assert!(!codecs(b"....hvcC....mp4a").1);
    }

    #[test]
    fn hevc_and_aac_strings_from_their_records() {
        // HEVC Main, level 3.1, progressive-source constraint flag.
        let mut init = b"....hvc1....hvcC".to_vec();
        init.extend_from_slice(&[1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93]);
        // AAC (object type 0x40) with an AudioSpecificConfig of HE-AAC (5).
        init.extend_from_slice(b"....esds\0\0\0\0");
        init.extend_from_slice(&[0x03, 0x19, 0, 1, 0]);
        init.extend_from_slice(&[0x04, 0x11, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        init.extend_from_slice(&[0x05, 0x02, 0x2b, 0x10]);
        assert_eq!(
            codecs(&init),
            ("hvc1.1.6.L93.B0,mp4a.40.5".to_string(), false)
        );
        // Descriptor sizes in the four-byte form some muxers write.
        let mut init = b"....avc1....avcC".to_vec();
        init.extend_from_slice(&[1, 0x42, 0xc0, 0x1e, 0xff]);
        init.extend_from_slice(b"....esds\0\0\0\0");
        init.extend_from_slice(&[0x03, 0x80, 0x80, 0x80, 0x22, 0, 1, 0]);
        init.extend_from_slice(&[0x04, 0x80, 0x80, 0x80, 0x14, 0x40, 0x15]);
        init.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        init.extend_from_slice(&[0x05, 0x80, 0x80, 0x80, 0x02, 0x11, 0x90]);
        assert_eq!(codecs(&init).0, "avc1.42c01e,mp4a.40.2");
    }

    #[test]
    fn live_playlist_has_parts_hints_and_discontinuities() {
        let mut v = LiveView::default();
        v.watch();
        v.init(b"i1");
        for i in 0..8 {
            v.part(b"p", 0.5, i % 4 == 0);
        }
        v.init(b"i2");
        v.part(b"p", 0.5, true);
        let p = live(&v, 0.5, 2.0);
        assert!(p.contains("#EXT-X-MAP:URI=\"init-1.mp4\""));
        assert!(p.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-2.mp4\""));
        assert!(p.contains("#EXTINF:2.000,\nseg-0.m4s"));
        assert!(p.contains("part-2.0.m4s\",INDEPENDENT=YES"));
        assert!(p.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.1.m4s\"\n"));
        v.end();
        assert!(live(&v, 0.5, 2.0).ends_with("#EXT-X-ENDLIST\n"));
    }
}
