//! The checks `custody verify` makes on documents alone, without reading
//! the objects they list: what a reader can say about a manifest, a journal,
//! a checkpoint or a header by itself. The fuzz targets drive these with
//! hostile documents; every one returns a report, none panics.

use custody_format::chain::Hash;
use custody_format::checkpoint::Checkpoint;
use custody_format::journal::JournalChunk;
use custody_format::layout;
use custody_format::manifest::{HeaderDoc, Manifest, ObjectEntry};

use crate::{Checker, Report, Stored};

/// A manifest's summary, derivation and raw-chunk contiguity.
pub fn manifest(m: &Manifest) -> Report {
    let key = layout::manifest_key(&m.prefix);
    let mut c = Checker::new(&key, false);
    crate::check_live_summary(m, &[], None, &mut c);
    c.report.empty = crate::holds_no_media(Some(m), &[]);
    let raw_chunks = m.live.as_ref().is_none_or(|l| l.raw_chunks);
    crate::check_derivation(&m.objects, Some(m), raw_chunks, &mut c, &key);
    let gaps = m.live.as_ref().map(|l| l.gaps.clone()).unwrap_or_default();
    crate::check_raw_contiguity(&m.objects, &gaps, &mut c);
    c.report
}

/// An open live recording's journal chunks (key, chunk), in order.
pub fn journal(prefix: &str, chunks: &[(String, JournalChunk)]) -> Report {
    let key = layout::manifest_key(prefix);
    let mut c = Checker::new(&key, false);
    crate::check_chunks(prefix, chunks, &mut c);
    let chunks: Vec<&JournalChunk> = chunks.iter().map(|(_, j)| j).collect();
    let entries: Vec<ObjectEntry> = chunks.iter().flat_map(|j| j.entries.clone()).collect();
    let gaps: Vec<_> = chunks.iter().flat_map(|j| j.gaps.clone()).collect();
    let owned: Vec<JournalChunk> = chunks.iter().map(|j| (*j).clone()).collect();
    c.report.empty = crate::holds_no_media(None, &owned);
    let raw_chunks = chunks.last().is_none_or(|j| j.raw_chunks);
    crate::check_derivation(&entries, None, raw_chunks, &mut c, &key);
    crate::check_raw_contiguity(&entries, &gaps, &mut c);
    c.report
}

/// What a checkpoint states, against the SHA-256 of the journal chunks
/// stored under its prefix.
pub fn checkpoint(cp: &Checkpoint, journal: &[Hash]) -> Report {
    let prefix = cp.prefix.clone().unwrap_or_default();
    let st = Stored {
        prefix: &prefix,
        entries: &[],
        recorder: &cp.recorder,
        recording_id: &cp.recording_id,
        manifest_sha256: None,
        journal: Some(journal),
    };
    let mut c = Checker::new(&layout::manifest_key(&prefix), false);
    crate::check_statements(cp, &st, &mut c, "checkpoint");
    c.report
}

/// Whether a header belongs under `prefix`.
pub fn header(prefix: &str, h: &HeaderDoc) -> Report {
    let mut c = Checker::new("manifest.json", false);
    crate::check_prefix(prefix, h, &mut c);
    c.report
}
