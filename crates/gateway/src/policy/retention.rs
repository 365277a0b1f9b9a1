//! Retention (R5): every recording is kept at least `standard_years`
//! (2 by the regulation, configurable longer) from the end of recording,
//! or permanently for one of the regulation's four reasons. A class can be
//! raised (a signed annotation), never lowered. Where storage enforces S3
//! Object Lock, objects are written with a COMPLIANCE retain-until date and
//! permanent recordings get a legal hold; where it does not, the gateway
//! itself refuses deletion before expiry — and says so.

pub use custody_format::retention::*;

use time::OffsetDateTime;

/// Makes storage hold a recording as its retention now says: a legal
/// hold on every object of a permanent recording, or every object's
/// retain-until extended to the (raised) standard period. Only where
/// storage enforces Object Lock; returns how many objects it touched.
pub async fn lock_recording(
    store: &custody_store::Store,
    prefix: &str,
    state: &RetentionState,
) -> Result<usize, custody_store::StoreError> {
    let objects = store
        .list(&custody_format::layout::recording_dir(prefix))
        .await?;
    let until = state
        .until
        .as_deref()
        .and_then(custody_format::time_fmt::parse);
    for o in &objects {
        // Storage compares retain-until dates with its own clock, so the
        // real clock decides here, never a test clock (`crate::clock`).
        match (state.retention, until) {
            (Retention::Permanent { .. }, _) => store.legal_hold(&o.key).await?,
            (Retention::Standard { .. }, Some(u)) if u > OffsetDateTime::now_utc() => {
                store.extend_retention(&o.key, u).await?
            }
            _ => {}
        }
    }
    Ok(objects.len())
}
