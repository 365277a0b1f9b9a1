//! Finding a stored recording from its recorder and recording id, through
//! its locator (`index/recordings/<recorder>/<recording-id>.json`), and
//! making sure that what is found is the recording asked for. Locators are
//! unsigned index objects: one rewritten or swapped with another must lead
//! to a refusal, never to another recording's bytes under this one's name.

use custody_format::chain;
use custody_format::layout;
use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_format::manifest::{HeaderDoc, Manifest, Role};
use custody_store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The locator, the manifest or the header names another recording.
    #[error("{0}")]
    Mismatch(String),
}

/// A stored recording found through its locator, checked.
#[derive(Debug, Clone)]
pub struct Found {
    pub locator: Locator,
    pub manifest: Manifest,
}

pub use custody_format::locator::{check_locator, check_manifest};

/// Whether the header (object 0) the manifest lists is stored as listed
/// and names the recording.
async fn check_header(store: &Store, m: &Manifest) -> Result<(), LocateError> {
    let Some(h0) = m.objects.first().filter(|o| o.role == Role::Header) else {
        return Err(LocateError::Mismatch(format!(
            "the manifest of {}/{} lists no header",
            m.recorder, m.recording_id
        )));
    };
    let bytes = match store.get_bytes(&h0.key, MAX_DOC_BYTES).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(LocateError::Mismatch(format!(
                "the header of {}/{} is missing",
                m.recorder, m.recording_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let named = serde_json::from_slice::<HeaderDoc>(&bytes)
        .ok()
        .filter(|_| hex::encode(chain::sha256(&bytes)) == h0.sha256)
        .map(|h| (h.recorder, h.recording_id));
    match named {
        Some((r, i)) if r == m.recorder && i == m.recording_id => Ok(()),
        Some((r, i)) => Err(LocateError::Mismatch(format!(
            "the header under {} is for {r}/{i}, not {}/{}",
            m.prefix, m.recorder, m.recording_id
        ))),
        None => Err(LocateError::Mismatch(format!(
            "the header of {}/{} is not the one its manifest lists",
            m.recorder, m.recording_id
        ))),
    }
}

/// Finds the stored recording `recorder/id` through its locator, and
/// checks that the locator, its manifest and the header all name it, under
/// the locator's prefix. `Ok(None)` when there is no such recording (no
/// locator, or no manifest: never archived, still open, or deleted) or
/// either does not parse.
pub async fn stored(store: &Store, recorder: &str, id: &str) -> Result<Option<Found>, LocateError> {
    let doc = |r: Result<bytes::Bytes, StoreError>| match r {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    };
    let Some(lb) = doc(store
        .get_bytes(&layout::locator_key(recorder, id), MAX_DOC_BYTES)
        .await)?
    else {
        return Ok(None);
    };
    let Ok(locator) = serde_json::from_slice::<Locator>(&lb) else {
        return Ok(None);
    };
    check_locator(&locator, recorder, id).map_err(LocateError::Mismatch)?;
    let Some(mb) = doc(store.get_bytes(&locator.manifest_key, MAX_DOC_BYTES).await)? else {
        return Ok(None);
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&mb) else {
        return Ok(None);
    };
    check_manifest(&manifest, &locator).map_err(LocateError::Mismatch)?;
    check_header(store, &manifest).await?;
    Ok(Some(Found { locator, manifest }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(recorder: &str, id: &str, prefix: &str) -> Locator {
        Locator {
            recorder: recorder.into(),
            recording_id: id.into(),
            prefix: prefix.into(),
            manifest_key: layout::manifest_key(prefix),
            size: 0,
            sha256: String::new(),
            chain_head: String::new(),
        }
    }

    #[test]
    fn a_locator_must_lead_to_the_recording_it_is_filed_under() {
        let a = "records/market/2026/11/30/bwc-1/rec-a";
        let b = "records/market/2026/11/30/bwc-1/rec-b";
        assert!(check_locator(&locator("bwc-1", "rec-a", a), "bwc-1", "rec-a").is_ok());
        // rec-b's locator copied under rec-a's key.
        let e = check_locator(&locator("bwc-1", "rec-b", b), "bwc-1", "rec-a").unwrap_err();
        assert!(e.contains("names bwc-1/rec-b"), "{e}");
        // Rewritten to name rec-a, but still leading to rec-b's prefix.
        let e = check_locator(&locator("bwc-1", "rec-a", b), "bwc-1", "rec-a").unwrap_err();
        assert!(e.contains("not a prefix of bwc-1/rec-a"), "{e}");
        // A prefix that only ends like the recording's id.
        let e = check_locator(
            &locator("bwc-1", "rec-a", "records/x/2026/11/30/xbwc-1/rec-a"),
            "bwc-1",
            "rec-a",
        )
        .unwrap_err();
        assert!(e.contains("not a prefix"), "{e}");
        let mut l = locator("bwc-1", "rec-a", a);
        l.manifest_key = layout::manifest_key(b);
        assert!(check_locator(&l, "bwc-1", "rec-a").is_err());
    }
}
