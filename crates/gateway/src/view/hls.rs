//! HLS playlists: Low-Latency HLS for live recordings (parts, blocking
//! playlist reload, preload hints) and VOD playlists over stored segments.

use std::fmt::Write;

use crate::live::feed::LiveView;
use custody_format::manifest::{Manifest, Role};

pub use custody_media::codecs::codecs;

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
    let dur = |o: &custody_format::manifest::ObjectEntry| {
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
