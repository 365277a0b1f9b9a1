//! The link between a live recording and its docked copy (`<id>.docked`):
//! the names, the relations written in both manifests, and which live gaps
//! a copy covers.

use crate::manifest::{Gap, Manifest, Role};

/// Appended to a live recording's id to name its docked copy.
pub const DOCKED_SUFFIX: &str = ".docked";

/// How far past the copy's end a gap may reach and still count as covered
/// (the two copies' clocks and cut points differ by a frame or two).
const TOLERANCE_SECONDS: f64 = 1.0;

pub fn docked_id(live_id: &str) -> String {
    format!("{live_id}{DOCKED_SUFFIX}")
}

/// The gaps (their indexes) of a live recording that a docked copy of
/// `copy_duration` seconds covers. The copy is the same recording made on
/// the device, so its media time runs from the same start as the live
/// recording's: a gap is covered when it ends within the copy.
pub fn covered_gaps(gaps: &[Gap], copy_duration: f64) -> Vec<usize> {
    gaps.iter()
        .enumerate()
        .filter(|(_, g)| gap_end(g).is_some_and(|end| end <= copy_duration + TOLERANCE_SECONDS))
        .map(|(i, _)| i)
        .collect()
}

/// Where media resumes after a gap (for a tail gap: where the recorder
/// stopped plus the silence until the close), in recording media time.
fn gap_end(g: &Gap) -> Option<f64> {
    if let Some(to) = g.media_to {
        return Some(to);
    }
    let from = crate::time_fmt::parse(&g.wall_from)?;
    let to = crate::time_fmt::parse(&g.wall_to)?;
    Some(g.media_from + (to - from).as_seconds_f64().max(0.0))
}

/// Seconds of media in a stored recording's derivative, if it has one.
pub fn media_duration(m: &Manifest) -> Option<f64> {
    m.objects
        .iter()
        .filter(|o| o.role == Role::Segment)
        .filter_map(|o| o.media.as_ref().map(|r| r.end))
        .fold(None, |acc: Option<f64>, e| {
            Some(acc.map_or(e, |a| a.max(e)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(kind: &str, media_from: f64, media_to: Option<f64>, wall: (&str, &str)) -> Gap {
        Gap {
            kind: kind.into(),
            wall_from: wall.0.into(),
            wall_to: wall.1.into(),
            media_from,
            media_to,
            bytes: None,
            reason: String::new(),
        }
    }

    #[test]
    fn a_copy_covers_the_gaps_that_end_within_it() {
        let gaps = [
            gap("lost-bytes", 10.0, Some(14.0), ("", "")),
            gap("source-restart", 30.0, Some(31.0), ("", "")),
            // A tail gap: 20 s of silence after media 50 s.
            gap(
                "tail",
                50.0,
                None,
                ("2026-11-30T10:00:50Z", "2026-11-30T10:01:10Z"),
            ),
        ];
        // (copy duration, gaps covered)
        let table: &[(f64, &[usize])] = &[
            (5.0, &[]),
            (13.5, &[0]),
            (40.0, &[0, 1]),
            (69.2, &[0, 1, 2]),
            (200.0, &[0, 1, 2]),
        ];
        for (d, want) in table {
            assert_eq!(covered_gaps(&gaps, *d), want.to_vec(), "copy of {d} s");
        }
    }

    #[test]
    fn docked_ids_are_distinct_from_live_ones() {
        assert_eq!(docked_id("bwc-1-0900"), "bwc-1-0900.docked");
        assert!(crate::metadata::valid_id(&docked_id("bwc-1-0900")));
    }
}
