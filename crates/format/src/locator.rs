//! The locator: the index object `index/recordings/<recorder>/<id>.json`
//! that points from a recording id to where its objects are, and the checks
//! that what it leads to is the recording asked for. Locators are unsigned,
//! so a reader checks each one before trusting it.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::manifest::Manifest;

/// Points from a recording id to where its objects are; written last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locator {
    pub recorder: String,
    pub recording_id: String,
    pub prefix: String,
    pub manifest_key: String,
    pub size: u64,
    pub sha256: String,
    pub chain_head: String,
}

/// The most bytes a reader loads for one JSON document (manifest, locator,
/// annotation, journal chunk, checkpoint): a damaged or hostile object
/// cannot make it allocate more.
pub const MAX_DOC_BYTES: u64 = 64 << 20;

/// Whether the locator stored under `recorder/id`'s key points at that
/// recording: it names it, and its prefix is one of that recording's
/// (`records/…/<recorder>/<id>`, with the manifest under it).
pub fn check_locator(loc: &Locator, recorder: &str, id: &str) -> Result<(), String> {
    let key = layout::locator_key(recorder, id);
    if loc.recorder != recorder || loc.recording_id != id {
        return Err(format!(
            "{key} names {}/{}, not {recorder}/{id}: the index points at another recording",
            loc.recorder, loc.recording_id
        ));
    }
    if !loc.prefix.starts_with("records/") || !loc.prefix.ends_with(&format!("/{recorder}/{id}")) {
        return Err(format!(
            "{key} leads to {}, which is not a prefix of {recorder}/{id}: the index points at another recording",
            loc.prefix
        ));
    }
    if loc.manifest_key != layout::manifest_key(&loc.prefix) {
        return Err(format!(
            "{key} names manifest {} outside its prefix {}",
            loc.manifest_key, loc.prefix
        ));
    }
    Ok(())
}

/// Whether the manifest a checked locator led to is that recording's.
pub fn check_manifest(m: &Manifest, loc: &Locator) -> Result<(), String> {
    if m.recorder != loc.recorder || m.recording_id != loc.recording_id {
        return Err(format!(
            "{} is the manifest of {}/{}, not of {}/{}: the index points at another recording",
            loc.manifest_key, m.recorder, m.recording_id, loc.recorder, loc.recording_id
        ));
    }
    if m.prefix != loc.prefix {
        return Err(format!(
            "{} names prefix {}, but it is stored under {}",
            loc.manifest_key, m.prefix, loc.prefix
        ));
    }
    Ok(())
}
