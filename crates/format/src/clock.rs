//! The one clock the gateway and the command line read for what they
//! record: receipt times, `finalized_at`, storage deadlines, retention
//! expiry, request ids, audit days, checkpoints, annotations, usage entries.
//!
//! For tests only, `CUSTODY_TEST_NOW=<RFC 3339>` starts this clock at that
//! instant (when the process first reads it); it then advances in real
//! time. A test can so run on a date of its choosing and give the same
//! result in any year. The real clock stays in charge where others compare
//! with it: certificate validity (rustls reads the system clock) and S3
//! Object Lock dates (storage compares them with its own clock).

use std::sync::LazyLock;

use time::{Duration, OffsetDateTime};

/// The environment variable that sets the clock for tests.
pub const TEST_NOW_VAR: &str = "CUSTODY_TEST_NOW";

/// The years a test clock may start in: far enough from the ends of
/// RFC 3339's range (0000–9999) that no date arithmetic leaves it.
const TEST_YEARS: std::ops::RangeInclusive<i32> = 1970..=9000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{TEST_NOW_VAR}={value:?} is not an RFC 3339 time in the years 1970 to 9000")]
pub struct ClockError {
    value: String,
}

/// How far this process's clock is set from the real one: zero unless
/// `CUSTODY_TEST_NOW` is set. Fixed at the first read.
static SHIFT: LazyLock<Duration> = LazyLock::new(|| match test_start() {
    Ok(Some(start)) => start - OffsetDateTime::now_utc(),
    Ok(None) => Duration::ZERO,
    // `init` refuses a bad value at start; a library user who skipped it
    // must not get records with an unintended time.
    Err(e) => panic!("{e}"),
});

/// Now, on the clock records are made with.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + *SHIFT
}

/// The instant `CUSTODY_TEST_NOW` asks the clock to start at, if set.
pub fn test_start() -> Result<Option<OffsetDateTime>, ClockError> {
    match std::env::var(TEST_NOW_VAR) {
        Ok(v) => parse_test_start(&v).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(ClockError {
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

fn parse_test_start(v: &str) -> Result<OffsetDateTime, ClockError> {
    // Parsed here, not by `time_fmt` (which reads this clock): the years
    // allowed are all ones RFC 3339 can write back.
    OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .ok()
        .filter(|t| TEST_YEARS.contains(&t.year()))
        .ok_or_else(|| ClockError {
            value: v.to_string(),
        })
}

/// Checks `CUSTODY_TEST_NOW` and starts the clock; called once at the
/// start of every command. Returns the test start when one is set, so the
/// caller can say so loudly.
pub fn init() -> Result<Option<OffsetDateTime>, ClockError> {
    let start = test_start()?;
    LazyLock::force(&SHIFT);
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_starts_are_checked() {
        assert_eq!(
            parse_test_start("2026-12-02T10:00:00Z").unwrap(),
            crate::time_fmt::parse("2026-12-02T10:00:00Z").unwrap()
        );
        assert_eq!(
            parse_test_start("2031-01-01T08:00:00+08:00")
                .unwrap()
                .unix_timestamp(),
            1_924_992_000
        );
        for bad in [
            "",
            "2026-12-02",
            "yesterday",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let e = parse_test_start(bad).unwrap_err();
            assert!(e.to_string().starts_with("CUSTODY_TEST_NOW="), "{e}");
        }
    }
}
