//! Annotations: facts learned after a recording closed (what it proves, its
//! case, markers, a docked copy, retention raised, confidentiality, a
//! deadline assessed again), each stored as one more object of the
//! recording's chain (`docs/manifest.md` §6).

use serde::{Deserialize, Serialize};

pub const ANNOTATION_FORMAT: &str = "custody-annotation/1";

/// What an annotation says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Fact {
    /// What the recording proves (证明对象), when it was pending or is refined.
    ProofObject(String),
    /// The case (分案) the recording belongs to.
    Case(String),
    /// Content markers and important moments (R3).
    Markers(Vec<crate::metadata::Marker>),
    /// A full-quality copy docked later, and which live gaps it covers.
    DockedCopy {
        manifest_key: String,
        recording_id: String,
        original_sha256: String,
        gaps_covered: Vec<usize>,
    },
    /// The recording's bytes docked again under another file name (a
    /// recording named by its content holds every file with those bytes;
    /// its header names the first).
    DockedAs { file_name: String, uploader: String },
    /// Free text from the records office.
    Note(String),
    /// The retention class raised (R5): more years, or permanent.
    Retention(crate::retention::Retention),
    /// A confidentiality mark (R6).
    Confidentiality(crate::confidentiality::Mark),
    /// The storage deadline (R4) assessed again: a provisional one, once
    /// the holiday schedule it lacked is in the calendar.
    Deadline(crate::deadline::DeadlineRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub format: String,
    pub recorder: String,
    pub recording_id: String,
    #[serde(flatten)]
    pub fact: Fact,
    /// Who made the annotation.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: String,
}
