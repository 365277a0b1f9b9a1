//! Facts learned after a recording closed — what it proves, the case it
//! belongs to, content markers, a docked copy — are appended as annotation
//! objects to its chain and signed with a new checkpoint. No earlier object
//! is ever rewritten: the manifest (a summary, not a chained object) is
//! replaced by one that lists one more object.

use bytes::Bytes;

use crate::checkpoint::{self, Checkpoint, JournalHead};
use crate::finish::put_index;
use crate::signing::SigningKey;
use custody_format::chain;
use custody_format::journal::JournalChunk;
use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_format::manifest::{Manifest, ObjectEntry, Role};
use custody_store::{Store, StoreError, layout};

pub use custody_format::annotation::{ANNOTATION_FORMAT, Annotation, Fact};

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
    let dir = layout::checkpoints_dir(prefix);
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
    let key = layout::locator_key(&m.recorder, &m.recording_id);
    let old: Option<Locator> = match store.get_json(&key, "locator").await {
        Ok(l) => Some(l),
        Err(StoreError::NotDocument { .. }) => None,
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

/// Reads a manifest: its exact bytes and contents; `Refused` when there is
/// none (an open live recording is annotated once it closes) or it does not
/// parse.
async fn read_manifest(
    store: &Store,
    manifest_key: &str,
) -> Result<(Vec<u8>, Manifest), AnnotateError> {
    match store.get_bytes(manifest_key, MAX_DOC_BYTES).await {
        Ok(b) => {
            let m = serde_json::from_slice(&b).map_err(|e| {
                AnnotateError::Refused(format!("{manifest_key}: manifest is not valid: {e}"))
            })?;
            Ok((b.to_vec(), m))
        }
        Err(e) if e.is_not_found() => Err(AnnotateError::Refused(format!(
            "{manifest_key}: no manifest (an open live recording is annotated once it closes)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The chain entry of annotation object `body` appended to `m`.
fn entry_for(m: &Manifest, body: &[u8], at: &str) -> ObjectEntry {
    let h = chain::sha256(body);
    let index = m.object_count;
    let c = chain::link(chain::parse_hex(&m.chain_head).as_ref(), &h);
    ObjectEntry {
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
        at: Some(at.to_string()),
    }
}

/// The manifest's retention raised to `to` (checked: a valid class, never
/// shorter, a later end, never from before the gateway received the
/// recording). A manifest without retention (a header made before
/// retention existed) counts as the minimum standard class from its
/// `finalized_at`.
fn raised_retention(
    m: &Manifest,
    to: custody_format::retention::Retention,
) -> Result<custody_format::retention::RetentionState, custody_format::retention::RetentionError> {
    use custody_format::retention::{MIN_YEARS, Retention, RetentionState};
    let current = match &m.retention {
        Some(r) => r.clone(),
        None => RetentionState::new(
            Retention::Standard { years: MIN_YEARS },
            custody_format::time_fmt::parse(&m.finalized_at)
                .unwrap_or_else(custody_format::clock::now),
        )?,
    };
    current.raise(to, custody_format::time_fmt::parse(&m.summary.received_at))
}

/// The manifest after annotation `entry` saying `fact` is appended to `m`:
/// one more object, the new chain head, and the summary, link, retention
/// or mark the fact changes. A function of its inputs alone, so that an
/// annotation interrupted after its checkpoint can be completed exactly
/// (`repair`). Refuses a retention that would be lowered.
fn appended(m: &Manifest, entry: &ObjectEntry, fact: &Fact) -> Result<Manifest, AnnotateError> {
    let mut m = m.clone();
    m.objects.push(entry.clone());
    m.object_count += 1;
    m.chain_head = entry.chain.clone();
    if let Some(l) = m.live.as_mut() {
        l.journal_chunks += 1;
    }
    match fact {
        Fact::ProofObject(p) => {
            m.summary.proof_object = Some(p.clone());
            m.missing.retain(|f| f != "proof_object");
            m.metadata_complete = m.missing.is_empty();
        }
        Fact::Case(case) => m.summary.case_id = Some(case.clone()),
        Fact::Retention(to) => {
            // Retention is raised, never lowered.
            let raised =
                raised_retention(&m, *to).map_err(|e| AnnotateError::Refused(e.to_string()))?;
            m.retention = Some(raised);
        }
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
        } => m.links.push(custody_format::manifest::Link {
            relation: custody_format::manifest::Relation::HasCopy,
            recorder: m.recorder.clone(),
            recording_id: recording_id.clone(),
            manifest_key: Some(manifest_key.clone()),
            gaps_filled: gaps_covered.clone(),
        }),
        _ => {}
    }
    Ok(m)
}

/// The journal of a live recording after one more chunk `chunk`: extended
/// from what checkpoint `cp` signed when it covers every chunk before,
/// else hashed from the chunks in storage (a recording signed by an
/// earlier version, whose checkpoints do not sign the journal).
async fn journal_after(
    store: &Store,
    prefix: &str,
    cp: &Checkpoint,
    chunks_before: u64,
    chunk: &[u8],
) -> Result<JournalHead, StoreError> {
    let mut j = match &cp.journal {
        Some(j) if j.chunks == chunks_before => j.clone(),
        _ => {
            let mut j = JournalHead::default();
            for seq in 0..chunks_before {
                j.extend(
                    &store
                        .get_bytes(&layout::journal_key(prefix, seq), MAX_DOC_BYTES)
                        .await?,
                );
            }
            j
        }
    };
    j.extend(chunk);
    Ok(j)
}

/// The prefix a manifest key names.
fn prefix_of(manifest_key: &str) -> &str {
    manifest_key
        .strip_suffix("/manifest.json")
        .unwrap_or(manifest_key)
}

/// Finishes an annotation that stopped after its final checkpoint was
/// stored but before the manifest was replaced: the newest checkpoint
/// signs a manifest that is not the stored one. The manifest it signs is
/// made again from the stored manifest and the annotation object the
/// checkpoint covers, and written only if its SHA-256 is the one signed —
/// nothing is signed here, so whatever storage holds can never get a
/// signature this way. Returns whether it completed one.
pub async fn repair(
    store: &Store,
    index: &crate::catalog::Index,
    signer: &SigningKey,
    manifest_key: &str,
) -> Result<bool, AnnotateError> {
    let (mb, m) = read_manifest(store, manifest_key).await?;
    let Some((_, cp)) = last_checkpoint(store, &m.prefix).await? else {
        return Ok(false);
    };
    let signed_manifest = cp.manifest_sha256.as_deref();
    if !cp.is_final
        || cp.public_key != signer.public().to_hex()
        || signed_manifest.is_none_or(|h| h == hex::encode(chain::sha256(&mb)))
        || cp.object_count != m.object_count + 1
    {
        return Ok(false);
    }
    let key = layout::object_key(&m.prefix, m.object_count, Role::Annotation, "json");
    let body = match store.get_bytes(&key, MAX_DOC_BYTES).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let Ok(a) = serde_json::from_slice::<Annotation>(&body) else {
        return Ok(false);
    };
    let entry = entry_for(&m, &body, &a.at);
    if entry.chain != cp.chain_head {
        return Ok(false);
    }
    let Ok(next) = appended(&m, &entry, &a.fact) else {
        return Ok(false);
    };
    let nb = next.to_bytes();
    let nh = chain::sha256(&nb);
    if signed_manifest != Some(hex::encode(nh).as_str()) {
        return Ok(false);
    }
    // The one manifest write outside `checkpoint::seal`: this manifest is
    // already signed, by the checkpoint that `seal` stored before it.
    store.put_bytes(manifest_key, Bytes::from(nb), &nh).await?;
    after_seal(store, index, manifest_key, &next, &entry, cp.seq).await;
    tracing::info!(prefix = %m.prefix, "an interrupted annotation's manifest was written");
    Ok(true)
}

/// Appends `fact` to the closed recording at `manifest_key`.
pub async fn annotate(
    store: &Store,
    index: &crate::catalog::Index,
    signer: &SigningKey,
    manifest_key: &str,
    fact: Fact,
    by: &str,
    reason: Option<String>,
) -> Result<ObjectEntry, AnnotateError> {
    // An earlier annotation interrupted after its checkpoint is completed
    // first (everything but its manifest is in storage, and signed).
    repair(store, index, signer, manifest_key).await?;
    let (mb, m) = read_manifest(store, manifest_key).await?;
    if m.prefix != prefix_of(manifest_key) {
        return Err(AnnotateError::Refused(format!(
            "{manifest_key}: the manifest names prefix {}; run custody verify",
            m.prefix
        )));
    }
    // Only a recording whose signed end matches its manifest is extended.
    let (cp_bytes, cp) = last_checkpoint(store, &m.prefix)
        .await?
        .ok_or_else(|| AnnotateError::Refused("the recording has no signed checkpoint".into()))?;
    if !cp.is_final
        || cp.object_count != m.object_count
        || cp.chain_head != m.chain_head
        || cp.prefix.as_ref().is_some_and(|p| *p != m.prefix)
        || cp
            .manifest_sha256
            .as_ref()
            .is_some_and(|h| *h != hex::encode(chain::sha256(&mb)))
    {
        return Err(AnnotateError::Refused(
            "the manifest does not match the recording's last signed checkpoint; run custody verify".into(),
        ));
    }
    if cp.public_key != signer.public().to_hex() {
        return Err(AnnotateError::Refused(
            "the recording was signed with another key than this gateway's".into(),
        ));
    }
    let a = Annotation {
        format: ANNOTATION_FORMAT.into(),
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        fact: fact.clone(),
        by: by.to_string(),
        reason,
        at: custody_format::time_fmt::now(),
    };
    let mut body = serde_json::to_vec_pretty(&a).expect("annotation serialises");
    body.push(b'\n');
    let entry = entry_for(&m, &body, &a.at);
    // Refusals (a lowered retention) come before anything is written.
    let next = appended(&m, &entry, &fact)?;
    let h = chain::sha256(&body);
    store.put_bytes(&entry.key, Bytes::from(body), &h).await?;

    // A live recording's journal must keep matching its manifest.
    let journal = match &m.live {
        Some(l) => {
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
            progress.next_index = entry.index + 1;
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
            Some(journal_after(store, &m.prefix, &cp, l.journal_chunks, &b).await?)
        }
        None => None,
    };
    if let Fact::Case(case) = &fact {
        let loc = updated_locator(store, &next, manifest_key).await?;
        put_index(
            store,
            &layout::case_key(case, &m.recorder, &m.recording_id),
            &loc,
        )
        .await?;
    }
    // The final checkpoint over the new chain and manifest, then the
    // manifest.
    let place = checkpoint::Place {
        seq: cp.seq + 1,
        previous: Some(hex::encode(chain::sha256(&cp_bytes))),
        journal,
    };
    checkpoint::seal(store, signer, &next, &next.to_bytes(), place).await?;
    after_seal(store, index, manifest_key, &next, &entry, cp.seq + 1).await;
    Ok(entry)
}

/// What follows an annotation's manifest: the locator with the new chain
/// head, the legal hold on what was added to a permanent recording, and
/// the catalog line. Failures are logged: the annotation is stored and
/// signed by now (a retry would append it twice).
async fn after_seal(
    store: &Store,
    index: &crate::catalog::Index,
    manifest_key: &str,
    m: &Manifest,
    entry: &ObjectEntry,
    seq: u64,
) {
    // The locator follows the chain head (its prefix never changes).
    let loc = updated_locator(store, m, manifest_key).await;
    if let Err(e) = match loc {
        Ok(loc) => {
            put_index(
                store,
                &layout::locator_key(&m.recorder, &m.recording_id),
                &loc,
            )
            .await
        }
        Err(e) => Err(e),
    } {
        tracing::warn!(
            manifest_key,
            "locator not updated after the annotation: {e}"
        );
    }
    // A permanent recording is under legal hold: so is what is added to it.
    if store.locking()
        && m.retention.as_ref().is_some_and(|r| {
            matches!(
                r.retention,
                custody_format::retention::Retention::Permanent { .. }
            )
        })
    {
        let mut keys = vec![
            entry.key.clone(),
            manifest_key.to_string(),
            checkpoint::checkpoint_key(&m.prefix, seq),
            checkpoint::signature_key(&m.prefix, seq),
        ];
        if let Some(l) = &m.live {
            keys.push(layout::journal_key(&m.prefix, l.journal_chunks - 1));
        }
        for k in keys {
            if let Err(e) = store.legal_hold(&k).await {
                tracing::error!(key = %k, "legal hold not set on a permanent recording's new object: {e}");
            }
        }
    }
    // The catalog is derived data: a failure here is repaired by the next
    // update or by `custody index rebuild`, never by failing the annotation.
    if let Err(e) = index.update(manifest_key).await {
        tracing::warn!(
            manifest_key,
            "catalog not updated after the annotation: {e}"
        );
    }
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
