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
}

/// The regulation's minimum.
pub const MIN_YEARS: u32 = 2;

/// Where the gateway keeps what its start-up probe found.
pub const PROBE_RESULT: &str = "policy/retention-enforcement.json";

impl Retention {
    pub fn describe(&self) -> String {
        match self {
            Retention::Standard { years } => format!("standard ({years} years)"),
            Retention::Permanent { reason } => format!("permanent ({})", reason.describe()),
        }
    }

    /// Whether `to` keeps at least as long as `self`.
    pub fn raise_to(&self, to: Retention) -> Result<Retention, RetentionError> {
        if let Retention::Standard { years } = to
            && years < MIN_YEARS
        {
            return Err(RetentionError::TooShort {
                years,
                min: MIN_YEARS,
            });
        }
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

    /// Until when a recording that ended at `end` is kept (`None`: for ever).
    pub fn until(&self, end: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Retention::Standard { years } => Some(add_years(end, *years)),
            Retention::Permanent { .. } => None,
        }
    }
}

/// `t` plus whole calendar years (29 February falls back to 28).
pub fn add_years(t: OffsetDateTime, years: u32) -> OffsetDateTime {
    let y = t.year() + years as i32;
    let d = t.date();
    let date = time::Date::from_calendar_date(y, d.month(), d.day())
        .or_else(|_| time::Date::from_calendar_date(y, d.month(), d.day() - 1))
        .unwrap_or(d);
    t.replace_date(date)
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
    pub fn new(retention: Retention, end: OffsetDateTime) -> RetentionState {
        RetentionState {
            retention,
            from: crate::time_fmt::rfc3339(end),
            until: retention.until(end).map(crate::time_fmt::rfc3339),
        }
    }

    /// Whether the period is over at `now` (never for permanent ones).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.until
            .as_deref()
            .and_then(crate::time_fmt::parse)
            .is_some_and(|u| u <= now)
    }
}

/// The end of recording retention runs from: the live close, else the
/// device's declared end, else its declared start, else receipt.
pub fn end_of_recording(
    header: &crate::manifest::HeaderDoc,
    live_end: Option<OffsetDateTime>,
) -> OffsetDateTime {
    let parse = |s: &Option<String>| s.as_deref().and_then(crate::time_fmt::parse);
    live_end
        .or_else(|| parse(&header.meta.ended_at))
        .or_else(|| parse(&header.meta.started_at))
        .or_else(|| crate::time_fmt::parse(&header.received_at))
        .unwrap_or_else(crate::clock::now)
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

/// Makes storage hold a recording as its retention now says: a legal
/// hold on every object of a permanent recording, or every object's
/// retain-until extended to the (raised) standard period. Only where
/// storage enforces Object Lock; returns how many objects it touched.
pub async fn lock_recording(
    store: &crate::store::Store,
    prefix: &str,
    state: &RetentionState,
) -> Result<usize, crate::store::StoreError> {
    let objects = store.list(&format!("{prefix}/")).await?;
    let until = state.until.as_deref().and_then(crate::time_fmt::parse);
    for o in &objects {
        // Storage compares retain-until dates with its own clock, so the
        // real clock decides here, never a test clock (`crate::clock`).
        match (state.retention, until) {
            (Retention::Permanent { .. }, _) => store.legal_hold(&o.key).await?,
            (Retention::Standard { .. }, Some(u)) if u > OffsetDateTime::now_utc() => {
                store.extend_retention(&o.key, u).await?
            }
            _ => {}
        }
    }
    Ok(objects.len())
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
        );
        assert_eq!(s.until.as_deref(), Some("2026-02-28T02:00:00Z"));
        assert!(s.expired(t("2026-11-30T00:00:00Z")));
        assert!(!s.expired(t("2026-02-27T00:00:00Z")));
        let p = RetentionState::new(
            Retention::Permanent {
                reason: PermanentReason::MajorEmergency,
            },
            t("2020-01-01T00:00:00Z"),
        );
        assert_eq!(p.until, None);
        assert!(!p.expired(t("2999-01-01T00:00:00Z")));
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["class"], "permanent");
        assert_eq!(j["reason"], "major-emergency");
    }
}
