//! The storage deadline of a recording (R4): stored within N working days
//! of its end, N = 2 by the regulation. Computed when the recording is
//! stored whole and kept in its manifest with the calendar version used,
//! so a report made years later says what was known then. A deadline that
//! needs a year whose official schedule is not loaded yet is computed from
//! that year's weekends alone and marked `provisional`; it is assessed
//! again when the schedule arrives ([`reassess`], `super::recompute`).

use time::OffsetDateTime;

use super::Policy;
use custody_format::manifest::HeaderDoc;

pub use custody_format::deadline::{DeadlineRecord, DeadlineStatus};

/// The deadline of a recording stored whole at `stored`. `live_end` is the
/// close of a live recording (the gateway saw it end).
pub fn assess(
    policy: &Policy,
    header: &HeaderDoc,
    live_end: Option<OffsetDateTime>,
    stored: OffsetDateTime,
) -> DeadlineRecord {
    let parse = |s: &Option<String>| s.as_deref().and_then(custody_format::time_fmt::parse);
    let (ended, basis) = match (
        live_end,
        parse(&header.meta.ended_at),
        parse(&header.meta.started_at),
    ) {
        (Some(t), _, _) => (Some(t), "gateway"),
        (None, Some(t), _) => (Some(t), "device"),
        (None, None, Some(t)) => (Some(t), "device-start"),
        (None, None, None) => (None, ""),
    };
    let stored_at = custody_format::time_fmt::rfc3339(stored);
    let Some(ended) = ended else {
        return DeadlineRecord {
            ended_at: None,
            basis: None,
            deadline: None,
            stored_at,
            status: DeadlineStatus::Unknown,
            reason: Some("the device declared no recording time".into()),
        };
    };
    assess_end(policy, ended, basis, stored)
}

/// The deadline of a recording that ended at `ended` (`basis` says where
/// that came from) and was stored whole at `stored`.
fn assess_end(
    policy: &Policy,
    ended: OffsetDateTime,
    basis: &str,
    stored: OffsetDateTime,
) -> DeadlineRecord {
    let calendar = policy.calendar();
    let mut r = DeadlineRecord {
        ended_at: Some(custody_format::time_fmt::rfc3339(ended)),
        basis: Some(basis.into()),
        deadline: None,
        stored_at: custody_format::time_fmt::rfc3339(stored),
        status: DeadlineStatus::Unknown,
        reason: None,
    };
    match calendar.provisional_deadline(ended, policy.offset, policy.working_days) {
        Ok(d) if !d.provisional_years.is_empty() => {
            r.status = DeadlineStatus::Provisional;
            r.reason = Some(provisional_reason(&d.provisional_years, calendar.version()));
            r.deadline = Some(d);
        }
        Ok(d) => {
            r.status = if d.met_by(stored) {
                DeadlineStatus::Met
            } else {
                DeadlineStatus::Late
            };
            r.deadline = Some(d);
        }
        Err(e) => r.reason = Some(e.to_string()),
    }
    r
}

/// Why a deadline is provisional, naming the missing years.
fn provisional_reason(years: &[i32], calendar: &str) -> String {
    let years: Vec<String> = years.iter().map(i32::to_string).collect();
    let years = years.join(", ");
    format!(
        "provisional: no official holiday schedule for {years} in calendar {calendar}; \
         due counted with Saturdays and Sundays as the only rest days of {years}, \
         to be assessed again when the schedule is added"
    )
}

/// A recorded deadline assessed again with the policy's calendar now, from
/// the same end and storing time. `None` when it cannot be (a record
/// without an end, or with times that do not parse).
pub fn reassess(policy: &Policy, old: &DeadlineRecord) -> Option<DeadlineRecord> {
    let ended = custody_format::time_fmt::parse(old.ended_at.as_deref()?)?;
    let stored = custody_format::time_fmt::parse(&old.stored_at)?;
    let mut new = assess_end(policy, ended, old.basis.as_deref().unwrap_or(""), stored);
    // The record keeps the strings it was made with.
    new.ended_at.clone_from(&old.ended_at);
    new.basis.clone_from(&old.basis);
    new.stored_at.clone_from(&old.stored_at);
    Some(new)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, RwLock};

    use super::*;
    use crate::policy::calendar::Calendar;

    fn policy(c: Calendar) -> Policy {
        Policy {
            calendar: Arc::new(RwLock::new(Arc::new(c))),
            offset: time::macros::offset!(+8),
            working_days: 2,
        }
    }

    fn t(s: &str) -> OffsetDateTime {
        custody_format::time_fmt::parse(s).unwrap()
    }

    #[test]
    fn provisional_until_the_schedule_arrives() {
        let p = policy(Calendar::builtin());
        // Ended Wednesday 30 December 2026, 10:00 in Beijing; stored
        // Monday 4 January 2027, 11:00.
        let ended = t("2026-12-30T02:00:00Z");
        let stored = t("2027-01-04T03:00:00Z");
        let r = assess_end(&p, ended, "device", stored);
        assert_eq!(r.status, DeadlineStatus::Provisional);
        assert_eq!(r.provisional_years(), [2027]);
        assert_eq!(
            r.deadline.as_ref().unwrap().due,
            "2027-01-02T00:00:00+08:00"
        );
        let reason = r.reason.clone().unwrap();
        assert!(
            reason.starts_with(&format!(
                "provisional: no official holiday schedule for 2027 in calendar {}",
                Calendar::builtin().version()
            )) && reason.ends_with("to be assessed again when the schedule is added"),
            "{reason}"
        );
        // Nothing new in the calendar: the same answer.
        assert_eq!(reassess(&p, &r).unwrap(), r);

        // A 2027 schedule arrives (a test fixture: 1 January a holiday), and
        // the deadline moves to the end of Monday 4th: met.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("2027.json"),
            r#"{"year":2027,"papers":["https://www.gov.cn/test-fixture"],"days":[{"name":"test","date":"2027-01-01","isOffDay":true}]}"#,
        )
        .unwrap();
        p.set_calendar(Calendar::with_dir(dir.path()).unwrap());
        let again = reassess(&p, &r).unwrap();
        assert_eq!(again.status, DeadlineStatus::Met);
        assert_eq!(again.reason, None);
        assert!(again.provisional_years().is_empty());
        let d = again.deadline.as_ref().unwrap();
        assert_eq!(d.due, "2027-01-05T00:00:00+08:00");
        assert_eq!(d.calendar, p.calendar().version());
        assert_eq!(
            d.sources.iter().map(|s| s.year).collect::<Vec<_>>(),
            [2026, 2027]
        );
        assert_eq!(
            (&again.ended_at, &again.basis, &again.stored_at),
            (&r.ended_at, &r.basis, &r.stored_at)
        );
        // A record without an end has nothing to assess again.
        let none = DeadlineRecord {
            ended_at: None,
            ..r
        };
        assert_eq!(reassess(&p, &none), None);
    }
}
