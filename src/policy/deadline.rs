//! The storage deadline of a recording (R4): stored within N working days
//! of its end, N = 2 by the regulation. Computed when the recording is
//! stored whole and kept in its manifest with the calendar version used,
//! so a report made years later says what was known then.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Policy;
use crate::manifest::HeaderDoc;

/// What the manifest records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineRecord {
    /// The instant the recording ended, as used (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Where `ended_at` comes from: `device` (declared end), `device-start`
    /// (declared start; no end declared), `gateway` (live: the close).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<super::calendar::Deadline>,
    /// When the recording was stored whole (the manifest).
    pub stored_at: String,
    /// `met`, `late`, or `unknown` (see `reason`).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The deadline of a recording stored whole at `stored`. `live_end` is the
/// close of a live recording (the gateway saw it end).
pub fn assess(
    policy: &Policy,
    header: &HeaderDoc,
    live_end: Option<OffsetDateTime>,
    stored: OffsetDateTime,
) -> DeadlineRecord {
    let parse = |s: &Option<String>| s.as_deref().and_then(crate::time_fmt::parse);
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
    let stored_at = crate::time_fmt::rfc3339(stored);
    let Some(ended) = ended else {
        return DeadlineRecord {
            ended_at: None,
            basis: None,
            deadline: None,
            stored_at,
            status: "unknown".into(),
            reason: Some("the device declared no recording time".into()),
        };
    };
    match policy
        .calendar
        .deadline(ended, policy.offset, policy.working_days)
    {
        Ok(d) => DeadlineRecord {
            ended_at: Some(crate::time_fmt::rfc3339(ended)),
            basis: Some(basis.into()),
            status: if d.met_by(stored) { "met" } else { "late" }.into(),
            deadline: Some(d),
            stored_at,
            reason: None,
        },
        Err(e) => DeadlineRecord {
            ended_at: Some(crate::time_fmt::rfc3339(ended)),
            basis: Some(basis.into()),
            deadline: None,
            stored_at,
            status: "unknown".into(),
            reason: Some(e.to_string()),
        },
    }
}
