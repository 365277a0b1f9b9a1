//! Facts learned after a recording closed — what it proves, the case it
//! belongs to, content markers, a docked copy — are appended as annotation
//! objects to its chain and signed with a new checkpoint. No earlier object
//! is ever rewritten: the manifest (a summary, not a chained object) is
//! replaced by one that lists one more object.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::archive::{Locator, MAX_DOC_BYTES};
use crate::chain;
use crate::checkpoint::{self, Checkpoint};
use crate::live::journal::JournalChunk;
use crate::manifest::{Manifest, ObjectEntry, Role};
use crate::signing::SigningKey;
use crate::store::{Store, StoreError, layout};

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
    Retention(crate::policy::retention::Retention),
    /// A confidentiality mark (R6).
    Confidentiality(crate::policy::confidentiality::Mark),
    /// The storage deadline (R4) assessed again: a provisional one, once
    /// the holiday schedule it lacked is in the calendar.
    Deadline(crate::policy::deadline::DeadlineRecord),
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

#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// Reads the newest checkpoint of a recording: its bytes and contents.
pub async fn last_checkpoint(
    store: &Store,
    prefix: &str,
) -> Result<Option<(Vec<u8>, Checkpoint)>, StoreError> {
    let dir = format!("{prefix}/checkpoints/");
    let last = store
        .list(&dir)
        .await?
        .iter()
        .filter_map(|o| {
            o.key
                .strip_prefix(&dir)?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max();
    let Some(seq) = last else { return Ok(None) };
    let bytes = store
        .get_bytes(&checkpoint::checkpoint_key(prefix, seq), MAX_DOC_BYTES)
        .await?;
    Ok(serde_json::from_slice(&bytes)
        .ok()
        .map(|c| (bytes.to_vec(), c)))
}

/// The recording's locator with the manifest's chain head: size and hash
/// of the original from the existing locator.
async fn updated_locator(
    store: &Store,
    m: &Manifest,
    manifest_key: &str,
) -> Result<Locator, StoreError> {
    let old: Option<Locator> = match store
        .get_bytes(
            &layout::locator_key(&m.recorder, &m.recording_id),
            MAX_DOC_BYTES,
        )
        .await
    {
        Ok(b) => serde_json::from_slice(&b).ok(),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let (size, sha256) = old
        .filter(|l| l.prefix == m.prefix)
        .map(|l| (l.size, l.sha256))
        .unwrap_or_default();
    Ok(Locator {
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        prefix: m.prefix.clone(),
        manifest_key: manifest_key.to_string(),
        size,
        sha256,
        chain_head: m.chain_head.clone(),
    })
}

/// Writes an index entry unless one exists for another recording under
/// the same id (index entries are never repointed).
async fn put_index(store: &Store, key: &str, loc: &Locator) -> Result<(), StoreError> {
    match store.get_bytes(key, MAX_DOC_BYTES).await {
        Ok(b) => {
            if serde_json::from_slice::<Locator>(&b).is_ok_and(|l| l.prefix != loc.prefix) {
                tracing::warn!(key, "index entry names another recording; left as it is");
                return Ok(());
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    let b = Bytes::from(serde_json::to_vec_pretty(loc).expect("locator serialises"));
    let h = chain::sha256(&b);
    store.put_bytes(key, b, &h).await
}

/// Signs the final checkpoint that follows `cp` (whose exact bytes are
/// `cp_bytes`) over `m` as it now stands: all its objects, its chain head.
async fn sign_end(
    store: &Store,
    signer: &SigningKey,
    m: &Manifest,
    cp: &checkpoint::Checkpoint,
    cp_bytes: &[u8],
) -> Result<(), AnnotateError> {
    let signed = checkpoint::sign(
        signer,
        &m.recorder,
        &m.recording_id,
        cp.seq + 1,
        m.object_count,
        &m.chain_head,
        Some(hex::encode(chain::sha256(cp_bytes))),
        true,
    );
    checkpoint::store(store, &m.prefix, &signed).await?;
    Ok(())
}

/// Finishes an annotation that stopped after the manifest was rewritten
/// but before its checkpoint was signed: when every object past the last
/// final checkpoint is an annotation that is in storage with its recorded
/// hash, they are signed now. Returns whether it signed.
pub async fn repair(
    store: &Store,
    signer: &SigningKey,
    m: &Manifest,
) -> Result<bool, AnnotateError> {
    let Some((cp_bytes, cp)) = last_checkpoint(store, &m.prefix).await? else {
        return Ok(false);
    };
    if !cp.is_final
        || cp.object_count >= m.object_count
        || cp.public_key != hex::encode(signer.public_raw())
    {
        return Ok(false);
    }
    // The signed prefix must be this manifest's prefix.
    let signed_head = m
        .objects
        .get(cp.object_count as usize - 1)
        .map(|o| o.chain.as_str());
    if cp.object_count == 0 || signed_head != Some(cp.chain_head.as_str()) {
        return Ok(false);
    }
    for o in &m.objects[cp.object_count as usize..] {
        if o.role != Role::Annotation {
            return Ok(false);
        }
        let (size, h) = store.read_hash(&o.key).await?;
        if size != o.size || hex::encode(h) != o.sha256 {
            return Ok(false);
        }
    }
    sign_end(store, signer, m, &cp, &cp_bytes).await?;
    tracing::info!(prefix = %m.prefix, "an interrupted annotation's checkpoint was signed");
    Ok(true)
}

/// The manifest's retention raised to `to` (checked: a valid class, never
/// shorter, a later end, never from before the gateway received the
/// recording). A manifest without retention (a header made before
/// retention existed) counts as the minimum standard class from its
/// `finalized_at`.
fn raised_retention(
    m: &Manifest,
    to: crate::policy::retention::Retention,
) -> Result<crate::policy::retention::RetentionState, crate::policy::retention::RetentionError> {
    use crate::policy::retention::{MIN_YEARS, Retention, RetentionState};
    let current = match &m.retention {
        Some(r) => r.clone(),
        None => RetentionState::new(
            Retention::Standard { years: MIN_YEARS },
            crate::time_fmt::parse(&m.finalized_at).unwrap_or_else(crate::clock::now),
        )?,
    };
    current.raise(to, crate::time_fmt::parse(&m.summary.received_at))
}

/// Appends `fact` to the closed recording at `manifest_key`.
pub async fn annotate(
    store: &Store,
    signer: &SigningKey,
    manifest_key: &str,
    fact: Fact,
    by: &str,
    reason: Option<String>,
) -> Result<ObjectEntry, AnnotateError> {
    let mut m: Manifest = match store.get_bytes(manifest_key, MAX_DOC_BYTES).await {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            AnnotateError::Refused(format!("{manifest_key}: manifest is not valid: {e}"))
        })?,
        Err(e) if e.is_not_found() => {
            return Err(AnnotateError::Refused(format!(
                "{manifest_key}: no manifest (an open live recording is annotated once it closes)"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    // An earlier annotation interrupted before its checkpoint is finished
    // first (its objects are in storage; only the signature is missing).
    repair(store, signer, &m).await?;
    // Only a recording whose signed end matches its manifest is extended.
    let (cp_bytes, cp) = last_checkpoint(store, &m.prefix)
        .await?
        .ok_or_else(|| AnnotateError::Refused("the recording has no signed checkpoint".into()))?;
    if !cp.is_final || cp.object_count != m.object_count || cp.chain_head != m.chain_head {
        return Err(AnnotateError::Refused(
            "the manifest does not match the recording's last signed checkpoint; run custody verify".into(),
        ));
    }
    if cp.public_key != hex::encode(signer.public_raw()) {
        return Err(AnnotateError::Refused(
            "the recording was signed with another key than this gateway's".into(),
        ));
    }
    // Retention is raised, never lowered.
    let raised = match &fact {
        Fact::Retention(to) => {
            Some(raised_retention(&m, *to).map_err(|e| AnnotateError::Refused(e.to_string()))?)
        }
        _ => None,
    };
    let a = Annotation {
        format: ANNOTATION_FORMAT.into(),
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        fact: fact.clone(),
        by: by.to_string(),
        reason,
        at: crate::time_fmt::now(),
    };
    let mut body = serde_json::to_vec_pretty(&a).expect("annotation serialises");
    body.push(b'\n');
    let h = chain::sha256(&body);
    let index = m.object_count;
    let c = chain::link(chain::parse_hex(&m.chain_head).as_ref(), &h);
    let entry = ObjectEntry {
        index,
        key: layout::object_key(&m.prefix, index, Role::Annotation, "json"),
        role: Role::Annotation,
        size: body.len() as u64,
        sha256: hex::encode(h),
        chain: hex::encode(c),
        content_type: Some("application/json".into()),
        derived_from: None,
        media: None,
        range: None,
        at: Some(a.at.clone()),
    };
    store.put_bytes(&entry.key, Bytes::from(body), &h).await?;

    // A live recording's journal must keep matching its manifest.
    if let Some(l) = m.live.as_mut() {
        let prev: JournalChunk = serde_json::from_slice(
            &store
                .get_bytes(
                    &layout::journal_key(&m.prefix, l.journal_chunks - 1),
                    MAX_DOC_BYTES,
                )
                .await?,
        )
        .map_err(|e| AnnotateError::Refused(format!("journal is not valid: {e}")))?;
        let mut progress = prev.progress.clone();
        progress.next_index = index + 1;
        progress.chain_head = entry.chain.clone();
        let chunk = JournalChunk {
            seq: l.journal_chunks,
            at: a.at.clone(),
            entries: vec![entry.clone()],
            gaps: Vec::new(),
            progress,
            last: true,
            ..prev
        };
        let b = Bytes::from(chunk.to_bytes());
        store
            .put_bytes(
                &layout::journal_key(&m.prefix, chunk.seq),
                b.clone(),
                &chain::sha256(&b),
            )
            .await?;
        l.journal_chunks += 1;
    }

    m.objects.push(entry.clone());
    m.object_count += 1;
    m.chain_head = entry.chain.clone();
    match &fact {
        Fact::ProofObject(p) => {
            m.summary.proof_object = Some(p.clone());
            m.missing.retain(|f| f != "proof_object");
            m.metadata_complete = m.missing.is_empty();
        }
        Fact::Case(case) => {
            m.summary.case_id = Some(case.clone());
            let loc = updated_locator(store, &m, manifest_key).await?;
            put_index(
                store,
                &layout::case_key(case, &m.recorder, &m.recording_id),
                &loc,
            )
            .await?;
        }
        Fact::Retention(_) => m.retention = raised,
        Fact::Deadline(d) => m.deadline = Some(d.clone()),
        Fact::Confidentiality(mark) if !m.confidentiality.contains(mark) => {
            m.confidentiality.push(*mark);
            m.confidentiality.sort();
        }
        Fact::DockedCopy {
            manifest_key,
            recording_id,
            gaps_covered,
            ..
        } => m.links.push(crate::manifest::Link {
            relation: crate::link::HAS_COPY.into(),
            recorder: m.recorder.clone(),
            recording_id: recording_id.clone(),
            manifest_key: Some(manifest_key.clone()),
            gaps_filled: gaps_covered.clone(),
        }),
        _ => {}
    }
    let mb = Bytes::from(m.to_bytes());
    store
        .put_bytes(manifest_key, mb.clone(), &chain::sha256(&mb))
        .await?;
    // The locator follows the chain head (its prefix never changes).
    let loc = updated_locator(store, &m, manifest_key).await?;
    put_index(
        store,
        &layout::locator_key(&m.recorder, &m.recording_id),
        &loc,
    )
    .await?;
    sign_end(store, signer, &m, &cp, &cp_bytes).await?;
    // A permanent recording is under legal hold: so is what is added to it.
    if store.locking()
        && m.retention.as_ref().is_some_and(|r| {
            matches!(
                r.retention,
                crate::policy::retention::Retention::Permanent { .. }
            )
        })
    {
        let mut keys = vec![
            entry.key.clone(),
            manifest_key.to_string(),
            checkpoint::checkpoint_key(&m.prefix, cp.seq + 1),
            checkpoint::signature_key(&m.prefix, cp.seq + 1),
        ];
        if let Some(l) = &m.live {
            keys.push(layout::journal_key(&m.prefix, l.journal_chunks - 1));
        }
        // The annotation is stored and signed by now: a failed hold is
        // reported, not turned into a failed annotation (a retry would
        // append it twice).
        for k in keys {
            if let Err(e) = store.legal_hold(&k).await {
                tracing::error!(key = %k, "legal hold not set on a permanent recording's new object: {e}");
            }
        }
    }
    // The catalog is derived data: a failure here is repaired by the next
    // update or by `custody index rebuild`, never by failing the annotation.
    if let Err(e) = crate::catalog::update(store, manifest_key).await {
        tracing::warn!(
            manifest_key,
            "catalog not updated after the annotation: {e}"
        );
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_have_stable_spellings() {
        let a = Annotation {
            format: ANNOTATION_FORMAT.into(),
            recorder: "bwc-1".into(),
            recording_id: "r".into(),
            fact: Fact::Case("SC-1".into()),
            by: "records-office".into(),
            reason: None,
            at: "t".into(),
        };
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(j["kind"], "case");
        assert_eq!(j["value"], "SC-1");
        let back: Annotation = serde_json::from_value(j).unwrap();
        assert_eq!(back, a);
    }
}
