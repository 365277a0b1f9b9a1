//! The storage deadline (R4) as recorded in a manifest: when the recording
//! ended, when it was stored, the deadline worked out from the working-day
//! calendar and whether it was met. Computing it is the gateway's policy
//! (`custody_gateway::policy::deadline`); this is what it writes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// When a recording must be stored by, and how that was worked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// RFC 3339 of the deadline instant (local offset kept).
    pub due: String,
    pub working_days: u32,
    /// Calendar::version() used.
    pub calendar: String,
    /// The official schedules the count used, with file, hash and papers
    /// (absent in deadlines recorded before they were).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<ScheduleSource>,
    /// Years the count needed but the calendar has no schedule for: their
    /// weekends were taken as their only rest days, so `due` is
    /// provisional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisional_years: Vec<i32>,
}

impl Deadline {
    /// Whether storing at `stored` met the deadline: strictly before the
    /// first instant of the following day. A `due` that does not parse (a
    /// damaged record) is never met, so the damage shows up as a missed
    /// deadline instead of passing silently.
    pub fn met_by(&self, stored: OffsetDateTime) -> bool {
        OffsetDateTime::parse(&self.due, &Rfc3339).is_ok_and(|due| stored < due)
    }
}

/// Where one year's schedule came from, as recorded with each deadline
/// that used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSource {
    pub year: i32,
    /// `built-in cn/<year>.json`, or the file's path in `calendar_dir`.
    pub file: String,
    /// SHA-256 of the year file's bytes, hex.
    pub sha256: String,
    /// The official papers (State Council notices) the file cites.
    pub papers: Vec<String>,
}

/// Whether a recording was stored by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadlineStatus {
    /// Stored whole by the deadline.
    Met,
    /// Stored after it.
    Late,
    /// Computed without the official schedule of some year (see `reason`
    /// and `deadline.provisional_years`); assessed again when it arrives.
    Provisional,
    /// No deadline could be computed (see `reason`).
    Unknown,
}

impl DeadlineStatus {
    /// The word stored in manifests and listed in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineStatus::Met => "met",
            DeadlineStatus::Late => "late",
            DeadlineStatus::Provisional => "provisional",
            DeadlineStatus::Unknown => "unknown",
        }
    }
}

impl DeadlineRecord {
    /// The years whose missing schedule makes this deadline provisional.
    pub fn provisional_years(&self) -> &[i32] {
        self.deadline
            .as_ref()
            .map_or(&[], |d| d.provisional_years.as_slice())
    }
}

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
    pub deadline: Option<Deadline>,
    /// When the recording was stored whole (the manifest).
    pub stored_at: String,
    pub status: DeadlineStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
