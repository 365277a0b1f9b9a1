//! Timestamps as they appear in documents: RFC 3339, UTC, nanoseconds kept.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("RFC 3339 formats every UTC time")
}

/// Now on the recording clock ([`crate::clock`]), as written in documents.
pub fn now() -> String {
    rfc3339(crate::clock::now())
}

/// Parses RFC 3339, refusing a time that [`rfc3339`] could not write back
/// (one whose UTC date falls outside the years 0000–9999, such as
/// `9999-12-31T23:00:00-05:00`): every time read from a device or a document
/// can be written again without a panic.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .filter(|t| writable(*t))
}

/// Whether RFC 3339 can write `t` in UTC: its UTC date lies in the years
/// 0000–9999.
pub fn writable(t: OffsetDateTime) -> bool {
    t.checked_to_offset(time::UtcOffset::UTC)
        .is_some_and(|u| (0..=9999).contains(&u.year()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let t = super::parse("2026-11-30T08:00:00.5+08:00").unwrap();
        assert_eq!(super::rfc3339(t), "2026-11-30T00:00:00.5Z");
    }

    #[test]
    fn times_that_cannot_be_written_in_utc_are_refused() {
        for (s, ok) in [
            ("9999-12-31T23:00:00-05:00", false),
            ("0000-01-01T01:00:00+05:00", false),
            ("9999-12-31T23:59:59.999999999Z", true),
            ("0000-01-01T00:00:00Z", true),
            ("0001-01-01T01:00:00+01:00", true),
        ] {
            let t = super::parse(s);
            assert_eq!(t.is_some(), ok, "{s}");
            if let Some(t) = t {
                super::rfc3339(t);
            }
        }
    }
}
