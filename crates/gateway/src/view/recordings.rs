//! Stored recordings as the wall lists them: lines of the catalog
//! ([`crate::catalog`]) without storage keys, with the routes that play
//! and download them.

use serde::Serialize;

use crate::catalog::{Entry, Filter};

/// One stored recording as the wall lists it (no storage keys).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub recorder: String,
    pub recording_id: String,
    pub officer: Option<String>,
    pub case_id: Option<String>,
    pub category: Option<String>,
    pub occasion: Option<String>,
    pub started_at: Option<String>,
    pub received_at: String,
    pub mode: Option<String>,
    pub duration: Option<f64>,
    pub status: String,
    pub master: Option<String>,
    pub playable: bool,
    pub codecs: Option<String>,
    pub download: String,
}

fn item(e: Entry) -> Item {
    let base = format!("/rec/{}/{}", e.recorder, e.recording_id);
    let status = if e.gaps > e.gaps_filled {
        format!("{} gaps", e.gaps - e.gaps_filled)
    } else if e.gaps > 0 {
        "gaps filled by a docked copy".to_string()
    } else {
        "complete".to_string()
    };
    Item {
        master: e.codecs.is_some().then(|| format!("{base}/master.m3u8")),
        download: format!("{base}/original"),
        recorder: e.recorder,
        recording_id: e.recording_id,
        officer: e.officer,
        case_id: e.case_id,
        category: e.category,
        occasion: e.occasion,
        started_at: e.started_at,
        received_at: e.received_at,
        mode: e.mode,
        duration: e.duration,
        status,
        playable: e.playable,
        codecs: e.codecs,
    }
}

/// The recordings matching `f` that a viewer cleared for `clearances` may
/// see (R6), newest first.
pub async fn search(
    index: &crate::catalog::Index,
    f: &Filter,
    clearances: &[custody_format::confidentiality::Mark],
) -> Result<Vec<Item>, crate::catalog::IndexError> {
    Ok(index
        .search(f)
        .await?
        .into_iter()
        .filter(|e| custody_format::confidentiality::cleared(clearances, &e.confidentiality))
        .map(item)
        .collect())
}
