//! Retention (R5): every recording is kept at least `standard_years`
//! (2 by the regulation, configurable longer) from the end of recording,
//! or permanently for one of the regulation's four reasons. A class can be
//! raised (a signed annotation), never lowered. Where storage enforces S3
//! Object Lock, objects are written with a COMPLIANCE retain-until date and
//! permanent recordings get a legal hold; where it does not, the gateway
//! itself refuses deletion before expiry — and says so.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The regulation's reasons for keeping a recording permanently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermanentReason {
    /// Evidence in a major administrative or criminal case.
    MajorCase,
    /// Obstruction of enforcement.
    Obstruction,
    /// A major emergency or mass incident.
    MajorEmergency,
    /// Other major, difficult or complex enforcement.
    MajorComplex,
}

impl PermanentReason {
    pub fn describe(self) -> &'static str {
        match self {
            PermanentReason::MajorCase => "evidence in a major administrative or criminal case",
            PermanentReason::Obstruction => "obstruction of enforcement",
            PermanentReason::MajorEmergency => "a major emergency or mass incident",
            PermanentReason::MajorComplex => "other major, difficult or complex enforcement",
        }
    }
}

/// A recording's retention class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Retention {
    /// Kept `years` from the end of recording.
    Standard { years: u32 },
    /// Kept for ever.
    Permanent { reason: PermanentReason },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetentionError {
    #[error("retention is raised, never lowered: {from} cannot become {to}")]
    Lowered { from: String, to: String },
    #[error("standard retention is at least {min} years, not {years}")]
    TooShort { years: u32, min: u32 },
    #[error(
        "standard retention is at most {max} years, not {years}: a recording kept longer is kept permanently (class permanent)"
    )]
    TooLong { years: u32, max: u32 },
    /// The period would end after the last instant a document can carry.
    #[error(
        "{from} plus {years} years is after 9999-12-31T23:59:59Z, the last time RFC 3339 can write"
    )]
    OutOfRange { from: String, years: u32 },
    /// A raise whose period would not end later than the current one: the
    /// stored state or the arithmetic is wrong, and nothing is written.
    #[error(
        "a raise must end later: {to} would end at {new_until}, the current period at {old_until}"
    )]
    NotLater {
        to: String,
        new_until: String,
        old_until: String,
    },
    /// The manifest's retention record does not parse.
    #[error("the retention record is damaged: {0}")]
    Damaged(String),
}

/// The regulation's minimum.
pub const MIN_YEARS: u32 = 2;

/// The longest standard period. Chinese archives are kept for 10 or 30
/// years or permanently (档案保管期限), so 200 years is far beyond any
/// real standard period; anything longer is what the permanent class is
/// for. The bound also keeps `until` within the years RFC 3339 can write
/// for every recording that ends before the year 9800, and turns a typo
/// (`10000`, `4294967295`) into a clear refusal instead of arithmetic on
/// absurd numbers.
pub const MAX_YEARS: u32 = 200;

/// Where the gateway keeps what its start-up probe found.
pub const PROBE_RESULT: &str = "policy/retention-enforcement.json";

impl Retention {
    pub fn describe(&self) -> String {
        match self {
            Retention::Standard { years } => format!("standard ({years} years)"),
            Retention::Permanent { reason } => format!("permanent ({})", reason.describe()),
        }
    }

    /// A standard class must keep `MIN_YEARS..=MAX_YEARS` years; checked
    /// wherever a class enters (configuration, API, command line) and again
    /// where it is stored.
    pub fn check(&self) -> Result<(), RetentionError> {
        match *self {
            Retention::Standard { years } if years < MIN_YEARS => Err(RetentionError::TooShort {
                years,
                min: MIN_YEARS,
            }),
            Retention::Standard { years } if years > MAX_YEARS => Err(RetentionError::TooLong {
                years,
                max: MAX_YEARS,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `to` is a valid class that keeps at least as long as `self`.
    pub fn raise_to(&self, to: Retention) -> Result<Retention, RetentionError> {
        to.check()?;
        let ok = match (self, to) {
            (Retention::Permanent { .. }, Retention::Standard { .. }) => false,
            (Retention::Standard { years: a }, Retention::Standard { years: b }) => b >= *a,
            _ => true,
        };
        if ok {
            Ok(to)
        } else {
            Err(RetentionError::Lowered {
                from: self.describe(),
                to: to.describe(),
            })
        }
    }

    /// Until when a recording whose period runs from `from` is kept
    /// (`None`: for ever). A standard period always ends after `from`.
    pub fn until(&self, from: OffsetDateTime) -> Result<Option<OffsetDateTime>, RetentionError> {
        self.check()?;
        match *self {
            Retention::Standard { years } => add_years(from, years)
                .filter(|u| *u > from)
                .map(Some)
                .ok_or_else(|| RetentionError::OutOfRange {
                    from: crate::time_fmt::rfc3339(from),
                    years,
                }),
            Retention::Permanent { .. } => Ok(None),
        }
    }
}

/// `t` plus whole calendar years: the same date and time of day in the
/// same offset, 29 February becoming 28 February in a common year. `None`
/// when the result cannot be written as RFC 3339 in UTC (after the year
/// 9999); never a date other than that.
pub fn add_years(t: OffsetDateTime, years: u32) -> Option<OffsetDateTime> {
    let year = i32::try_from(years)
        .ok()
        .and_then(|y| t.year().checked_add(y))?;
    let d = t.date();
    let day =
        if d.month() == time::Month::February && d.day() == 29 && !time::util::is_leap_year(year) {
            28
        } else {
            d.day()
        };
    let date = time::Date::from_calendar_date(year, d.month(), day).ok()?;
    Some(t.replace_date(date)).filter(|u| crate::time_fmt::writable(*u))
}

/// What a manifest says about its recording's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionState {
    #[serde(flatten)]
    pub retention: Retention,
    /// The end of recording the period runs from.
    pub from: String,
    /// RFC 3339; absent for permanent recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl RetentionState {
    /// The period of `retention` running from `from`.
    pub fn new(
        retention: Retention,
        from: OffsetDateTime,
    ) -> Result<RetentionState, RetentionError> {
        Ok(RetentionState {
            retention,
            from: crate::time_fmt::rfc3339(from),
            until: retention.until(from)?.map(crate::time_fmt::rfc3339),
        })
    }

    /// The state after raising the class to `to`, from the same `from` —
    /// moved up to `received` (the gateway's receipt) if it lies before it,
    /// as in manifests made before retention was floored at receipt.
    /// Enforces where the state is stored what a raise means: a valid class,
    /// never shorter, and a period that ends later than the current one
    /// (or never) — only restating the same class keeps the end (a retried
    /// raise).
    pub fn raise(
        &self,
        to: Retention,
        received: Option<OffsetDateTime>,
    ) -> Result<RetentionState, RetentionError> {
        let to = self.retention.raise_to(to)?;
        let from = crate::time_fmt::parse(&self.from)
            .ok_or_else(|| RetentionError::Damaged(format!("from {:?}", self.from)))?;
        let next = RetentionState::new(to, received.map_or(from, |r| from.max(r)))?;
        let old_until = match &self.until {
            Some(u) => Some(
                crate::time_fmt::parse(u)
                    .ok_or_else(|| RetentionError::Damaged(format!("until {u:?}")))?,
            ),
            None => None,
        };
        let new_until = next.until.as_deref().and_then(crate::time_fmt::parse);
        let later = match (old_until, new_until) {
            (Some(old), Some(new)) if to == self.retention => new >= old,
            (Some(old), Some(new)) => new > old,
            // Permanent from standard; permanent stays permanent.
            (_, None) => true,
            (None, Some(_)) => false,
        };
        if later {
            Ok(next)
        } else {
            Err(RetentionError::NotLater {
                to: to.describe(),
                new_until: next.until.clone().unwrap_or_else(|| "never".into()),
                old_until: self.until.clone().unwrap_or_else(|| "never".into()),
            })
        }
    }

    /// The state a manifest records when it is built: never an error, so
    /// that a recording is always stored. A period that cannot end within
    /// the years RFC 3339 writes (a device clock set millennia ahead) is
    /// recorded without `until`: the gateway keeps what it cannot date.
    pub fn at_build(retention: Retention, from: OffsetDateTime) -> RetentionState {
        RetentionState::new(retention, from).unwrap_or_else(|e| {
            tracing::warn!("retention recorded without an end: {e}");
            RetentionState {
                retention,
                from: crate::time_fmt::rfc3339(from),
                until: None,
            }
        })
    }

    /// The earliest instant the recording may be deleted (`None`: never):
    /// `until`, but never before `received` (the gateway's receipt) plus
    /// the class's years, whatever the device's clock said — manifests
    /// made before the period was floored at receipt ran it from the
    /// device's times. Anything that does not parse or compute keeps the
    /// recording.
    pub fn deletable_from(&self, received: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        let Retention::Standard { years } = self.retention else {
            return None;
        };
        let until = crate::time_fmt::parse(self.until.as_deref()?)?;
        match received {
            Some(r) => Some(until.max(add_years(r, years)?)),
            None => Some(until),
        }
    }

    /// Whether the period is over at `now` (never for permanent ones), with
    /// the floor of [`RetentionState::deletable_from`].
    pub fn expired(&self, now: OffsetDateTime, received: Option<OffsetDateTime>) -> bool {
        self.deletable_from(received).is_some_and(|d| d <= now)
    }
}

/// Whether storage itself enforces retention, as probed at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "enforced_by", rename_all = "kebab-case")]
pub enum Enforcement {
    /// S3 Object Lock in COMPLIANCE mode: storage refuses early deletion.
    ObjectLock,
    /// Storage does not: only the gateway refuses deletion before expiry.
    Gateway { why: String },
}

impl Enforcement {
    pub fn describe(&self) -> String {
        match self {
            Enforcement::ObjectLock => {
                "storage enforces retention (S3 Object Lock, COMPLIANCE mode; permanent recordings under legal hold)".into()
            }
            Enforcement::Gateway { why } => format!(
                "storage does NOT enforce retention ({why}); the gateway refuses deletion before expiry, but anyone with write access to the bucket could delete"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> OffsetDateTime {
        crate::time_fmt::parse(s).unwrap()
    }

    #[test]
    fn raised_never_lowered() {
        let std2 = Retention::Standard { years: 2 };
        let std5 = Retention::Standard { years: 5 };
        let perm = Retention::Permanent {
            reason: PermanentReason::MajorCase,
        };
        // (from, to, allowed)
        let table = [
            (std2, std5, true),
            (std2, std2, true),
            (std5, std2, false),
            (std2, perm, true),
            (perm, std5, false),
            (
                perm,
                Retention::Permanent {
                    reason: PermanentReason::Obstruction,
                },
                true,
            ),
        ];
        for (from, to, ok) in table {
            assert_eq!(from.raise_to(to).is_ok(), ok, "{from:?} → {to:?}");
        }
        assert_eq!(
            std2.raise_to(Retention::Standard { years: 1 }),
            Err(RetentionError::TooShort { years: 1, min: 2 })
        );
    }

    #[test]
    fn periods_run_from_the_end_of_recording() {
        let s = RetentionState::new(
            Retention::Standard { years: 2 },
            t("2024-02-29T10:00:00+08:00"),
        )
        .unwrap();
        assert_eq!(s.until.as_deref(), Some("2026-02-28T02:00:00Z"));
        assert!(s.expired(t("2026-11-30T00:00:00Z"), None));
        assert!(!s.expired(t("2026-02-27T00:00:00Z"), None));
        let p = RetentionState::new(
            Retention::Permanent {
                reason: PermanentReason::MajorEmergency,
            },
            t("2020-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(p.until, None);
        assert!(!p.expired(t("2999-01-01T00:00:00Z"), None));
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["class"], "permanent");
        assert_eq!(j["reason"], "major-emergency");
    }

    /// A small deterministic generator (xorshift64*): the property tests
    /// below give the same cases on every run.
    struct Seeded(u64);

    impl Seeded {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Any u32, with the edges and the bounds' neighbours often.
        fn years(&mut self) -> u32 {
            const EDGES: [u32; 12] = [
                0,
                1,
                2,
                3,
                199,
                200,
                201,
                10_000,
                i32::MAX as u32,
                i32::MAX as u32 + 1,
                u32::MAX - 1,
                u32::MAX,
            ];
            match self.below(4) {
                0 => EDGES[self.below(EDGES.len() as u64) as usize],
                1 => self.below(300) as u32,
                _ => self.next() as u32,
            }
        }

        /// Any instant from 0001-01-01 to 9999-12-31 (local), in an offset
        /// of -12:00 to +14:00, that RFC 3339 can write in UTC.
        fn instant(&mut self) -> OffsetDateTime {
            loop {
                let first = time::Date::from_calendar_date(1, time::Month::January, 1).unwrap();
                let last = time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap();
                let span = (last - first).whole_days() as u64;
                let date = first + time::Duration::days(self.below(span + 1) as i64);
                let time = time::Time::from_hms(
                    self.below(24) as u8,
                    self.below(60) as u8,
                    self.below(60) as u8,
                )
                .unwrap();
                let offset = time::UtcOffset::from_whole_seconds(
                    self.below(26 * 4 + 1) as i32 * 900 - 12 * 3600,
                )
                .unwrap();
                let t = date.with_time(time).assume_offset(offset);
                if crate::time_fmt::writable(t) {
                    return t;
                }
            }
        }
    }

    /// What `add_years` must give: the same month, day (29 February → 28
    /// in a common year), time and offset, `years` later — or `None`
    /// exactly when that is past what RFC 3339 writes.
    fn check_add_years(from: OffsetDateTime, years: u32) {
        let got = add_years(from, years);
        let target = from.year() as i64 + years as i64;
        match got {
            Some(u) => {
                assert_eq!(u.year() as i64, target, "{from} + {years}");
                assert_eq!(u.month(), from.month(), "{from} + {years}");
                let leap_day = from.month() == time::Month::February && from.day() == 29;
                let want_day = if leap_day && !time::util::is_leap_year(u.year()) {
                    28
                } else {
                    from.day()
                };
                assert_eq!(u.day(), want_day, "{from} + {years}");
                assert_eq!(u.time(), from.time(), "{from} + {years}");
                assert_eq!(u.offset(), from.offset(), "{from} + {years}");
                assert!(crate::time_fmt::writable(u), "{from} + {years}");
                if years == 0 {
                    assert_eq!(u, from);
                } else {
                    assert!(u > from, "{from} + {years} = {u} is not later");
                }
            }
            None => {
                // Only a target year beyond 9999 (or 9999 itself, pushed
                // into 10000 by a negative offset) has no answer.
                assert!(target >= 9999, "{from} + {years} gave nothing");
                if target == 9999 {
                    let u = from.replace_date(
                        time::Date::from_calendar_date(9999, from.month(), from.day().min(28))
                            .unwrap(),
                    );
                    assert!(u.offset().is_negative(), "{from} + {years} gave nothing");
                }
            }
        }
    }

    #[test]
    fn adding_years_over_the_whole_input_range() {
        let mut rng = Seeded(0x5eed_2026_1206);
        for _ in 0..200_000 {
            check_add_years(rng.instant(), rng.years());
        }
        // Every leap day from 0004 to 9996, by every year count that lands
        // on a leap year, a common year, and around the end of the range.
        let mut year = 4;
        while year <= 9996 {
            let leap = time::Date::from_calendar_date(year, time::Month::February, 29)
                .unwrap()
                .midnight()
                .assume_utc();
            for years in [
                0,
                1,
                3,
                4,
                100,
                400,
                (9999 - year) as u32,
                (10_000 - year) as u32,
                u32::MAX,
            ] {
                check_add_years(leap, years);
            }
            year += 4;
            while !time::util::is_leap_year(year) && year <= 9996 {
                year += 4;
            }
        }
        // Every year count up to the maximum, from the two ends of the range.
        for years in 0..=MAX_YEARS {
            check_add_years(t("0001-01-01T00:00:00Z"), years);
            check_add_years(t("9999-12-31T23:59:59+14:00"), years);
            check_add_years(t("9850-02-28T23:00:00-12:00"), years);
        }
    }

    #[test]
    fn add_years_overflow_is_none_not_the_start() {
        let from = t("2026-12-02T01:00:00Z");
        // As the issue found them: 10000 gave `from`, u32::MAX a year
        // earlier, i32::MAX a panic.
        for years in [10_000, 7974, u32::MAX, i32::MAX as u32, i32::MAX as u32 + 1] {
            assert_eq!(add_years(from, years), None, "{years}");
        }
        assert_eq!(add_years(from, 7973), Some(t("9999-12-02T01:00:00Z")));
        // 9999-12-31 23:00 at -05:00 is already the year 10000 in UTC.
        assert_eq!(add_years(t("9998-12-31T23:00:00-05:00"), 1), None);
        assert_eq!(
            add_years(t("2024-02-29T10:00:00+08:00"), 4),
            Some(t("2028-02-29T10:00:00+08:00"))
        );
        assert_eq!(
            add_years(t("2024-02-29T10:00:00+08:00"), 1),
            Some(t("2025-02-28T10:00:00+08:00"))
        );
    }

    #[test]
    fn classes_are_bounded_over_every_year_count() {
        let mut rng = Seeded(0xc1a55);
        let check = |years: u32| {
            let got = Retention::Standard { years }.check();
            match years {
                0..=1 => assert_eq!(got, Err(RetentionError::TooShort { years, min: 2 })),
                2..=200 => assert_eq!(got, Ok(())),
                _ => assert_eq!(got, Err(RetentionError::TooLong { years, max: 200 })),
            }
        };
        for years in 0..=1000 {
            check(years);
        }
        for _ in 0..100_000 {
            check(rng.years());
        }
        check(u32::MAX);
        let e = Retention::Standard { years: 10_000 }.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "standard retention is at most 200 years, not 10000: a recording kept longer is kept permanently (class permanent)"
        );
        assert!(
            Retention::Permanent {
                reason: PermanentReason::MajorCase
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn a_period_always_ends_after_it_starts() {
        let mut rng = Seeded(0xfeed);
        for _ in 0..200_000 {
            let (from, years) = (rng.instant(), rng.years());
            match RetentionState::new(Retention::Standard { years }, from) {
                Ok(s) => {
                    let until = t(s.until.as_deref().unwrap());
                    assert!(until > from, "{from} + {years} → {until}");
                    assert!((MIN_YEARS..=MAX_YEARS).contains(&years));
                    assert!(!s.expired(from, None), "{from} + {years} expired at once");
                }
                Err(RetentionError::TooShort { .. }) => assert!(years < MIN_YEARS),
                Err(RetentionError::TooLong { .. }) => assert!(years > MAX_YEARS),
                Err(RetentionError::OutOfRange { .. }) => {
                    assert!(
                        from.year() as i64 + years as i64 >= 9999,
                        "{from} + {years}"
                    )
                }
                Err(e) => panic!("{from} + {years}: {e}"),
            }
        }
    }

    #[test]
    fn a_raise_never_ends_earlier_or_at_the_same_time() {
        let mut rng = Seeded(0x4a15e);
        let perm = Retention::Permanent {
            reason: PermanentReason::MajorCase,
        };
        for _ in 0..100_000 {
            let from = rng.instant();
            let a = 2 + rng.below(199) as u32;
            let Ok(current) = RetentionState::new(Retention::Standard { years: a }, from) else {
                continue;
            };
            let b = rng.years();
            let to = Retention::Standard { years: b };
            match current.raise(to, None) {
                Ok(next) => {
                    assert!((a..=MAX_YEARS).contains(&b), "{a} → {b}");
                    assert_eq!(next.from, current.from);
                    let (old, new) = (
                        t(current.until.as_deref().unwrap()),
                        t(next.until.as_deref().unwrap()),
                    );
                    if b == a {
                        assert_eq!(new, old, "restating {a} years keeps the end");
                    } else {
                        assert!(new > old, "{a} → {b} years: {old} → {new}");
                    }
                }
                Err(RetentionError::Lowered { .. }) => assert!(b < a, "{a} → {b}"),
                Err(RetentionError::TooShort { .. }) => assert!(b < MIN_YEARS),
                Err(RetentionError::TooLong { .. }) => assert!(b > MAX_YEARS),
                Err(RetentionError::OutOfRange { .. }) => {
                    assert!(from.year() as i64 + b as i64 >= 9999, "{from} + {b}")
                }
                Err(e) => panic!("{from}: {a} → {b}: {e}"),
            }
            // Permanent is always a raise from standard, and never lowered.
            let p = current.raise(perm, None).unwrap();
            assert_eq!(p.until, None);
            assert!(matches!(
                p.raise(Retention::Standard { years: 200 }, None),
                Err(RetentionError::Lowered { .. })
            ));
        }
    }

    #[test]
    fn a_damaged_or_shortened_state_is_not_raised() {
        let s = RetentionState::new(Retention::Standard { years: 5 }, t("2026-12-02T01:00:00Z"))
            .unwrap();
        // An `until` that someone moved later than the class says: a raise
        // by one year would end earlier than what is stored, so it is refused.
        let moved = RetentionState {
            until: Some("2040-01-01T00:00:00Z".into()),
            ..s.clone()
        };
        assert!(matches!(
            moved.raise(Retention::Standard { years: 6 }, None),
            Err(RetentionError::NotLater { .. })
        ));
        let damaged = RetentionState {
            from: "last year".into(),
            ..s
        };
        assert!(matches!(
            damaged.raise(Retention::Standard { years: 6 }, None),
            Err(RetentionError::Damaged(_))
        ));
    }

    #[test]
    fn a_period_past_9999_is_kept_without_an_end() {
        let s =
            RetentionState::at_build(Retention::Standard { years: 2 }, t("9998-06-01T00:00:00Z"));
        assert_eq!(s.until, None);
        assert!(!s.expired(t("9999-12-31T23:59:59Z"), None));
        // And cannot be "raised" to a standard period with an end.
        assert!(matches!(
            s.raise(Retention::Standard { years: 3 }, None),
            Err(RetentionError::OutOfRange { .. })
        ));
    }
}
