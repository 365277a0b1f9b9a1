//! The catalog line: one stored recording as `custody list`, the wall's
//! search and the compliance report see it — who, what, when, which case,
//! how it stands — made from its manifest alone ([`entry_from`]), and the
//! search filter over such lines. Where the lines are kept (day shards in
//! storage, or PostgreSQL in cluster mode) is the gateway's business.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::manifest::{Manifest, Role};

/// One recording as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub recorder: String,
    pub recording_id: String,
    pub manifest_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_name: Option<String>,
    /// The recorder's unit in the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<String>,
    pub mandatory_full_process: bool,
    /// `live` or `docked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Device clock, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Live recordings: when the gateway closed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Gateway clock: first byte received.
    pub received_at: String,
    /// Gateway clock: the manifest (the recording is stored whole).
    pub stored_at: String,
    /// Seconds of media derived, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Bytes of the original (docked file, or live raw chunks).
    pub size: u64,
    /// Live gaps, and how many a docked copy fills.
    pub gaps: usize,
    pub gaps_filled: usize,
    /// Required metadata the recording lacks (R4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Other recordings of the same event (`relation recorder/id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Playable CMAF derivative, with its codecs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<String>,
    pub playable: bool,
    pub chain_head: String,
    /// The storage deadline (R4): due instant, and `met`, `late` or
    /// `unknown` (with why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_due: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_reason: Option<String>,
    /// Retention (R5): `standard` or `permanent`, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
    /// Confidentiality marks (R6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confidentiality: Vec<crate::confidentiality::Mark>,
    /// How far the uploading device's clock was from the gateway's, in
    /// seconds (`summary.clock_skew_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<i64>,
}

impl Entry {
    /// A mandatory full-process recording with live gaps no copy fills.
    pub fn full_process_violation(&self) -> bool {
        self.mandatory_full_process && self.gaps > self.gaps_filled
    }
}

fn name<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The catalog line of a manifest. `codecs` come from its initialisation
/// segment, when the caller has read it.
pub fn entry_from(m: &Manifest, codecs: Option<(String, bool)>) -> Entry {
    let segments = m.objects.iter().filter(|o| o.role == Role::Segment);
    let duration = m.live.as_ref().map(|l| l.media_duration).or_else(|| {
        segments
            .clone()
            .filter_map(|o| o.media.as_ref().map(|r| r.end))
            .reduce(f64::max)
    });
    let playable_media = segments.count() > 0;
    let gaps = m.live.as_ref().map_or(0, |l| l.gaps.len());
    let mut filled: Vec<usize> = m
        .links
        .iter()
        .flat_map(|l| l.gaps_filled.iter().copied())
        .collect();
    filled.sort_unstable();
    filled.dedup();
    Entry {
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        manifest_key: layout::manifest_key(&m.prefix),
        officer: m.summary.officer.clone(),
        officer_name: m.summary.officer_name.clone(),
        unit: m.summary.unit.clone(),
        category: m.summary.category.clone(),
        case_id: m.summary.case_id.clone(),
        occasion: m.summary.occasion.and_then(|o| name(&o)),
        mandatory_full_process: m.summary.mandatory_full_process,
        mode: m.summary.method.mode.and_then(|x| name(&x)),
        started_at: m.summary.started_at.clone(),
        ended_at: m.live.as_ref().map(|l| l.ended_at.clone()),
        received_at: m.summary.received_at.clone(),
        stored_at: m.finalized_at.clone(),
        duration,
        size: m
            .objects
            .iter()
            .filter(|o| matches!(o.role, Role::Original | Role::RawChunk))
            .map(|o| o.size)
            .sum(),
        gaps,
        gaps_filled: filled.iter().filter(|i| **i < gaps).count(),
        missing: m.missing.clone(),
        links: m
            .links
            .iter()
            .map(|l| format!("{} {}/{}", l.relation, l.recorder, l.recording_id))
            .collect(),
        playable: playable_media && codecs.as_ref().is_some_and(|c| c.1),
        codecs: codecs.map(|c| c.0),
        chain_head: m.chain_head.clone(),
        deadline_due: m
            .deadline
            .as_ref()
            .and_then(|d| d.deadline.as_ref().map(|x| x.due.clone())),
        deadline_status: m.deadline.as_ref().map(|d| d.status.as_str().to_string()),
        deadline_reason: m.deadline.as_ref().and_then(|d| d.reason.clone()),
        retention: m.retention.as_ref().map(|r| r.retention.describe()),
        retain_until: m.retention.as_ref().and_then(|r| {
            r.deletable_from(crate::time_fmt::parse(&m.summary.received_at))
                .map(crate::time_fmt::rfc3339)
        }),
        confidentiality: m.confidentiality.clone(),
        clock_skew_seconds: m.summary.clock_skew_seconds,
    }
}

/// What `custody list` and the wall ask for.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    pub officer: Option<String>,
    /// The recorder.
    pub device: Option<String>,
    pub case: Option<String>,
    pub category: Option<String>,
    pub occasion: Option<String>,
    /// The recorder's unit.
    pub unit: Option<String>,
    /// RFC 3339: recordings that started (or, without a device time, were
    /// received) at or after / at or before.
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Filter {
    /// The time bounds, when given, are RFC 3339 times: an error says which
    /// is not (the wall answers it with 400).
    pub fn check_times(&self) -> Result<(), String> {
        for (name, v) in [("from", &self.from), ("to", &self.to)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty())
                && crate::time_fmt::parse(v).is_none()
            {
                return Err(format!(
                    "{name} must be an RFC 3339 time, e.g. 2026-11-30T08:00:00+08:00"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, e: &Entry) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .filter(|w| !w.is_empty())
                .is_none_or(|w| have == Some(w))
        };
        let t = e
            .started_at
            .as_deref()
            .and_then(crate::time_fmt::parse)
            .or_else(|| crate::time_fmt::parse(&e.received_at));
        let bound = |b: &Option<String>| {
            b.as_deref()
                .filter(|s| !s.is_empty())
                .and_then(crate::time_fmt::parse)
        };
        let in_range = match (bound(&self.from), bound(&self.to), t) {
            (None, None, _) => true,
            (_, _, None) => false,
            (f, x, Some(t)) => f.is_none_or(|f| t >= f) && x.is_none_or(|x| t <= x),
        };
        eq(&self.officer, e.officer.as_deref())
            && eq(&self.device, Some(&e.recorder))
            && eq(&self.case, e.case_id.as_deref())
            && eq(&self.category, e.category.as_deref())
            && eq(&self.occasion, e.occasion.as_deref())
            && eq(&self.unit, e.unit.as_deref())
            && in_range
    }

    /// The storage days worth reading: recordings are filed by the day
    /// they were received, which is never before they started; a week's
    /// margin covers time zones and device clocks that run ahead.
    pub fn days(&self) -> (Option<String>, Option<String>) {
        let day = |s: &Option<String>, shift: i64| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .and_then(crate::time_fmt::parse)
                .map(|t| {
                    let d = t.date() + time::Duration::days(shift);
                    format!("{:04}{:02}{:02}", d.year(), d.month() as u8, d.day())
                })
        };
        // Received on or after the start; a recording may be docked long
        // after it was made, so no upper bound from `to`.
        (day(&self.from, -7), None)
    }
}

impl Entry {
    /// The instant the catalog sorts and filters by: when the recording
    /// started by its device, else when the gateway received it.
    pub fn sort_time(&self) -> Option<time::OffsetDateTime> {
        self.started_at
            .as_deref()
            .and_then(crate::time_fmt::parse)
            .or_else(|| crate::time_fmt::parse(&self.received_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, officer: &str, case: Option<&str>, started: &str) -> Entry {
        Entry {
            recorder: "bwc-1".into(),
            recording_id: id.into(),
            manifest_key: format!("records/x/2026/11/30/bwc-1/{id}/manifest.json"),
            officer: Some(officer.into()),
            officer_name: None,
            unit: Some("market".into()),
            category: Some("market".into()),
            case_id: case.map(str::to_string),
            occasion: Some("on-site-inspection".into()),
            mandatory_full_process: true,
            mode: Some("live".into()),
            started_at: Some(started.into()),
            ended_at: None,
            received_at: "2026-11-30T10:00:00Z".into(),
            stored_at: "2026-11-30T10:10:00Z".into(),
            duration: Some(60.0),
            size: 1,
            gaps: 2,
            gaps_filled: 1,
            missing: Vec::new(),
            links: Vec::new(),
            codecs: None,
            playable: false,
            chain_head: String::new(),
            deadline_due: None,
            deadline_status: None,
            deadline_reason: None,
            retention: None,
            retain_until: None,
            confidentiality: Vec::new(),
            clock_skew_seconds: None,
        }
    }

    #[test]
    fn filters_table() {
        let e = entry("r1", "o-1", Some("C-1"), "2026-11-30T09:00:00+08:00");
        assert!(e.full_process_violation(), "one of two gaps unfilled");
        let f = |s: &str| -> Filter { serde_json::from_str(s).unwrap() };
        let table = [
            ("{}", true),
            (r#"{"officer":"o-1"}"#, true),
            (r#"{"officer":"o-2"}"#, false),
            (r#"{"case":"C-1","device":"bwc-1"}"#, true),
            (r#"{"case":"C-2"}"#, false),
            (
                r#"{"category":"market","occasion":"on-site-inspection"}"#,
                true,
            ),
            (r#"{"from":"2026-11-30T00:00:00Z"}"#, true),
            (r#"{"from":"2026-11-30T02:00:00Z"}"#, false),
            (r#"{"to":"2026-11-30T01:00:00Z"}"#, true),
            (r#"{"officer":""}"#, true),
        ];
        for (q, want) in table {
            assert_eq!(f(q).matches(&e), want, "{q}");
        }
    }
}
