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

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let t = super::parse("2026-11-30T08:00:00.5+08:00").unwrap();
        assert_eq!(super::rfc3339(t), "2026-11-30T00:00:00.5Z");
    }
}
