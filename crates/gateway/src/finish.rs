//! What ends every recording, docked or live, once its objects, checkpoint
//! and manifest are in storage: the index entries that lead from its id
//! (and its case) to the manifest, then the catalog line. One path for both
//! kinds, so the index is written the same way whatever made the recording.

use crate::catalog::Catalog;
use custody_format::chain::Hash;
use custody_format::locator::Locator;
use custody_format::manifest::Manifest;
use custody_store::{Store, StoreError, layout};

/// A recording sealed in storage, to be indexed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed<'a> {
    pub manifest: &'a Manifest,
    pub manifest_key: &'a str,
    /// The original's size: the docked file, or the live stream's bytes.
    pub size: u64,
    /// The docked original's SHA-256 (a live stream has none: its raw
    /// chunks are hashed one by one).
    pub sha256: Option<&'a Hash>,
}

impl Sealed<'_> {
    /// The locator of the recording.
    pub fn locator(&self) -> Locator {
        let m = self.manifest;
        Locator {
            recorder: m.recorder.clone(),
            recording_id: m.recording_id.clone(),
            prefix: m.prefix.clone(),
            manifest_key: self.manifest_key.to_string(),
            size: self.size,
            sha256: self.sha256.map(hex::encode).unwrap_or_default(),
            chain_head: m.chain_head.clone(),
        }
    }
}

/// Writes the recording's locator and its case index entry, then lists it
/// in the catalog. Repeating it after a crash writes the same bytes.
pub(crate) async fn finish_recording(
    store: &Store,
    catalog: &Catalog,
    sealed: Sealed<'_>,
) -> Result<(), StoreError> {
    let m = sealed.manifest;
    let loc = sealed.locator();
    put_index(
        store,
        &layout::locator_key(&m.recorder, &m.recording_id),
        &loc,
    )
    .await?;
    if let Some(case) = &m.summary.case_id {
        put_index(
            store,
            &layout::case_key(case, &m.recorder, &m.recording_id),
            &loc,
        )
        .await?;
    }
    catalog.changed(sealed.manifest_key).await;
    Ok(())
}

/// Writes an index entry unless one exists for another recording under the
/// same id: a locator naming another prefix means this recording id was
/// stored before (and the spool forgot it), so both recordings are kept
/// and the entry is never repointed at the second.
pub(crate) async fn put_index(store: &Store, key: &str, loc: &Locator) -> Result<(), StoreError> {
    match store.get_json::<Locator>(key, "locator").await {
        Ok(first) if first.prefix != loc.prefix => {
            tracing::warn!(
                key,
                first = %first.prefix,
                second = %loc.prefix,
                "recording id archived twice; the index keeps the first"
            );
            return Ok(());
        }
        // The same recording's entry, or something that is not a locator
        // at all (rewritten): the entry is written.
        Ok(_) | Err(StoreError::NotDocument { .. }) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    store.put_json(key, loc).await.map(|_| ())
}
