//! The compliance report a records officer hands in: recordings stored
//! after their deadline (R4), with required metadata missing (R4),
//! mandatory full-process recordings with gaps (R2), recordings a
//! docking rack reported on a device but never uploaded (R4), and
//! recordings uploaded by a device whose clock was far off.

use serde::Serialize;

use crate::catalog::Entry;

/// One recording a section lists.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub recording: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub detail: String,
}

/// A recording a device holds that storage does not.
#[derive(Debug, Clone, Serialize)]
pub struct NotUploaded {
    pub recorder: String,
    pub recording_id: String,
    /// Which docking rack reported it, and when.
    pub reported_by: String,
    pub reported_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub title: String,
    pub generated_at: String,
    pub calendar: String,
    pub working_days: u32,
    pub recordings: usize,
    pub live: usize,
    pub docked: usize,
    pub late: Vec<Line>,
    pub deadline_unknown: Vec<Line>,
    pub metadata_missing: Vec<Line>,
    pub full_process_gaps: Vec<Line>,
    pub not_uploaded: Vec<NotUploaded>,
    /// Recordings whose uploading device's clock was off by more than
    /// [`LARGE_CLOCK_SKEW_SECS`].
    pub clock_skew: Vec<Line>,
    /// Deadlines computed without the official schedule of a year (its
    /// weekends as the only rest days), until the schedule is added.
    pub deadline_provisional: Vec<Line>,
}

/// A device clock further than this from the gateway's (5 minutes) is
/// listed. A recorder kept in time by its dock or the network stays within
/// seconds; 5 minutes is beyond any drift between two synchronisations,
/// and enough to misdate what the device declares (start, end, marks) —
/// near midnight, onto another working day.
pub const LARGE_CLOCK_SKEW_SECS: i64 = 300;

/// A clock difference in words: `817869605 s (9466 d 11 h) behind`.
pub fn describe_skew(secs: i64) -> String {
    let a = secs.unsigned_abs();
    let side = if secs < 0 { "behind" } else { "ahead of" };
    format!(
        "{a} s ({} d {} h {} min) {side}",
        a / 86_400,
        a % 86_400 / 3600,
        a % 3600 / 60
    )
}

fn line(e: &Entry, detail: String) -> Line {
    Line {
        recording: format!("{}/{}", e.recorder, e.recording_id),
        officer: e.officer.clone(),
        unit: e.unit.clone(),
        detail,
    }
}

/// How late, in days and hours, from the due instant to the storing.
fn lateness(due: &str, stored: &str) -> String {
    match (
        custody_format::time_fmt::parse(due),
        custody_format::time_fmt::parse(stored),
    ) {
        (Some(d), Some(s)) if s > d => {
            let h = (s - d).whole_hours();
            format!("{} d {} h late", h / 24, h % 24)
        }
        _ => "late".into(),
    }
}

/// Builds the report over catalog entries (already filtered to the period
/// and unit) and the docked inventories' missing recordings.
pub fn build(
    title: String,
    calendar: String,
    working_days: u32,
    entries: &[Entry],
    not_uploaded: Vec<NotUploaded>,
) -> Report {
    let mut r = Report {
        title,
        generated_at: custody_format::time_fmt::now(),
        calendar,
        working_days,
        recordings: entries.len(),
        live: entries
            .iter()
            .filter(|e| e.mode.as_deref() == Some("live"))
            .count(),
        docked: entries
            .iter()
            .filter(|e| e.mode.as_deref() != Some("live"))
            .count(),
        late: Vec::new(),
        deadline_unknown: Vec::new(),
        metadata_missing: Vec::new(),
        full_process_gaps: Vec::new(),
        not_uploaded,
        clock_skew: Vec::new(),
        deadline_provisional: Vec::new(),
    };
    for e in entries {
        match e.deadline_status.as_deref() {
            Some("late") => {
                let due = e.deadline_due.clone().unwrap_or_default();
                let detail = format!(
                    "due {due}, stored {} ({})",
                    e.stored_at,
                    lateness(&due, &e.stored_at)
                );
                r.late.push(line(e, detail));
            }
            Some("met") => {}
            Some("provisional") => {
                let due = e.deadline_due.clone().unwrap_or_default();
                let by_weekends = if custody_format::time_fmt::parse(&due)
                    .zip(custody_format::time_fmt::parse(&e.stored_at))
                    .is_some_and(|(d, s)| s < d)
                {
                    "met"
                } else {
                    "late"
                };
                let detail = format!(
                    "due {due} provisionally, stored {}: {by_weekends} by that count; {}",
                    e.stored_at,
                    e.deadline_reason.as_deref().unwrap_or("provisional")
                );
                r.deadline_provisional.push(line(e, detail));
            }
            _ => r.deadline_unknown.push(line(
                e,
                e.deadline_reason
                    .clone()
                    .unwrap_or_else(|| "stored before deadlines were recorded".into()),
            )),
        }
        if !e.missing.is_empty() {
            r.metadata_missing
                .push(line(e, format!("missing {}", e.missing.join(", "))));
        }
        if let Some(skew) = e
            .clock_skew_seconds
            .filter(|s| s.unsigned_abs() > LARGE_CLOCK_SKEW_SECS as u64)
        {
            r.clock_skew.push(line(
                e,
                format!(
                    "the uploading device's clock was {} the gateway's at receipt ({}); the times it declared are off by as much",
                    describe_skew(skew),
                    e.received_at
                ),
            ));
        }
        if e.full_process_violation() {
            r.full_process_gaps.push(line(
                e,
                format!(
                    "{} of {} gaps not filled by a docked copy; occasion {}",
                    e.gaps - e.gaps_filled,
                    e.gaps,
                    e.occasion.as_deref().unwrap_or("not declared")
                ),
            ));
        }
    }
    r
}

impl Report {
    /// Plain text, to print or hand in.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.title);
        let _ = writeln!(s, "{}", "=".repeat(self.title.chars().count()));
        let _ = writeln!(
            s,
            "Generated {}. Deadline: stored within {} working days of the recording's end \
             (calendar {}).\n",
            self.generated_at, self.working_days, self.calendar
        );
        let _ = writeln!(
            s,
            "Recordings stored: {} ({} live, {} docked)",
            self.recordings, self.live, self.docked
        );
        let _ = writeln!(s, "Stored late: {}", self.late.len());
        let _ = writeln!(
            s,
            "Deadline not assessable: {}",
            self.deadline_unknown.len()
        );
        let _ = writeln!(
            s,
            "Required metadata missing: {}",
            self.metadata_missing.len()
        );
        let _ = writeln!(
            s,
            "Mandatory full-process recordings with gaps: {}",
            self.full_process_gaps.len()
        );
        let _ = writeln!(s, "On devices, not uploaded: {}", self.not_uploaded.len());
        let _ = writeln!(
            s,
            "Device clock off by more than 5 minutes: {}",
            self.clock_skew.len()
        );
        let _ = writeln!(
            s,
            "Deadline provisional (holiday schedule not yet in the calendar): {}",
            self.deadline_provisional.len()
        );
        let section = |s: &mut String, title: &str, lines: &[Line]| {
            let _ = writeln!(s, "\n{title}\n{}", "-".repeat(title.chars().count()));
            if lines.is_empty() {
                let _ = writeln!(s, "none");
            }
            for l in lines {
                let _ = writeln!(
                    s,
                    "{}  officer {}  unit {}  {}",
                    l.recording,
                    l.officer.as_deref().unwrap_or("-"),
                    l.unit.as_deref().unwrap_or("-"),
                    l.detail
                );
            }
        };
        section(&mut s, "1. Stored after the deadline (R4)", &self.late);
        section(&mut s, "2. Deadline not assessable", &self.deadline_unknown);
        section(
            &mut s,
            "3. Required metadata missing (R4)",
            &self.metadata_missing,
        );
        section(
            &mut s,
            "4. Mandatory full-process recordings with gaps (R2)",
            &self.full_process_gaps,
        );
        let title = "5. Recorded on a device, not uploaded (R4)";
        let _ = writeln!(s, "\n{title}\n{}", "-".repeat(title.chars().count()));
        if self.not_uploaded.is_empty() {
            let _ = writeln!(s, "none");
        }
        for n in &self.not_uploaded {
            let _ = writeln!(
                s,
                "{}/{}  reported by {} at {}",
                n.recorder, n.recording_id, n.reported_by, n.reported_at
            );
        }
        section(
            &mut s,
            "6. Device clock off by more than 5 minutes",
            &self.clock_skew,
        );
        section(
            &mut s,
            "7. Deadline provisional: holiday schedule not yet in the calendar (R4)",
            &self.deadline_provisional,
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skews_in_words() {
        assert_eq!(
            describe_skew(-817_869_605),
            "817869605 s (9466 d 2 h 0 min) behind"
        );
        assert_eq!(describe_skew(301), "301 s (0 d 0 h 5 min) ahead of");
    }

    #[test]
    fn lateness_in_days_and_hours() {
        let table = [
            (
                "2026-12-02T00:00:00+08:00",
                "2026-12-03T03:00:00+08:00",
                "1 d 3 h late",
            ),
            (
                "2026-12-02T00:00:00+08:00",
                "2026-12-01T16:30:00Z",
                "0 d 0 h late",
            ),
            ("x", "y", "late"),
        ];
        for (due, stored, want) in table {
            assert_eq!(lateness(due, stored), want, "{due} {stored}");
        }
    }
}
