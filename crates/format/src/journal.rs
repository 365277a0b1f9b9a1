//! A live recording's journal chunks (`<prefix>/journal/NNNNNN.json`): the
//! chain entries made as segments close, one chunk per cut, each carrying
//! the recording's progress after it (`docs/manifest.md` §5).

use serde::{Deserialize, Serialize};

use crate::manifest::{Gap, ObjectEntry};

pub const JOURNAL_FORMAT: &str = "custody-journal/1";

/// Where a live recording stands after a journal chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Index the next object will get.
    pub next_index: u64,
    /// Chain value of the last object, hex.
    pub chain_head: String,
    /// Stream offset up to which raw chunks have been cut.
    pub cut: u64,
    /// Media segments so far, and where the media timeline has reached.
    pub segments: u64,
    pub media_end: f64,
    /// Index of the most recent initialisation segment, if any.
    pub last_init: Option<u64>,
    /// The most recent raw chunk, which the next derived objects name.
    pub last_raw: Option<crate::manifest::DerivedFrom>,
    /// The remux run that made the latest segments. A gateway restarted
    /// after a crash runs it again from its start, so that what the killed
    /// pipeline held unfinished is derived after all (absent after a gap,
    /// and in journals written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStart>,
}

/// Where a remux run began: re-run from here, the same pipeline makes the
/// same segments at the same media times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// Spool offset of the run's first input byte (a `cut`).
    pub input: u64,
    /// Media time of the run's zero, seconds.
    pub media_base: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalChunk {
    pub format: String,
    pub recorder: String,
    pub recording_id: String,
    /// 0, 1, 2, … without holes.
    pub seq: u64,
    /// Gateway clock when the chunk was written.
    pub at: String,
    pub entries: Vec<ObjectEntry>,
    /// Gaps recorded since the previous chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    pub progress: Progress,
    /// Set on the last chunk, written when the recording closes.
    #[serde(default)]
    pub last: bool,
    /// Whether raw chunks (the originals) are stored for this recording.
    #[serde(default = "yes")]
    pub raw_chunks: bool,
}

fn yes() -> bool {
    true
}

impl JournalChunk {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("journal serialises");
        v.push(b'\n');
        v
    }
}
