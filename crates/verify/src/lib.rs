//! Independent verification of a recording from storage alone
//! (`custody verify`): the manifest (or, for a live recording still open,
//! its journal), every object's size and SHA-256, the hash chain, the
//! header's binding to recorder and recording, that derivatives name
//! originals listed before them, that raw chunks are contiguous except
//! across recorded gaps, and that nothing unlisted sits under the prefix.

pub mod locate;
pub mod offline;
pub mod signature;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::Serialize;

use custody_format::chain;
use custody_format::checkpoint::{self, Checkpoint};
use custody_format::journal::JournalChunk;
use custody_format::layout;
use custody_format::layout::{checkpoint_key, signature_key};
use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_format::manifest::Relation;
use custody_format::manifest::{
    DerivationStatus, Gap, HEADER_FORMAT, HeaderDoc, MANIFEST_FORMAT, Manifest, ObjectEntry, Role,
    check_chain,
};
use custody_store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub manifest_key: String,
    pub recorder: Option<String>,
    pub recording_id: Option<String>,
    /// `closed` (a manifest exists) or `open` (a live recording still
    /// growing: its journal is verified as a prefix).
    pub state: String,
    pub objects: u64,
    pub bytes: u64,
    pub chain_head: Option<String>,
    /// Gaps the recording declares (live recordings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// Media a live recording's derivative lacks (its manifest's
    /// `derivation.holes`; the originals are whole there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub derivative_holes: Vec<custody_format::manifest::DerivativeHole>,
    /// Objects covered by a valid signed checkpoint.
    pub signed_objects: u64,
    /// The format of the last checkpoint, which says what its signature
    /// covers (`custody-checkpoint/2`, or `/1` for recordings signed by an
    /// earlier version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_format: Option<String>,
    /// What the last checkpoint's format leaves unsigned (empty for `/2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_signed: Option<String>,
    /// The key the checkpoints were checked with, hex.
    pub public_key: Option<String>,
    /// Whether that key was given by the verifier (`--public-key`) rather
    /// than read from the recording itself.
    pub key_pinned: bool,
    /// Other recordings of the same event the manifest names, each checked
    /// against the chain (the header, or a signed annotation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<custody_format::manifest::Link>,
    /// Who made the recording, from its (chained, signed) header.
    pub officer: Option<String>,
    pub uploader: Option<String>,
    /// A live recording that holds no media: opened and ended (or, while
    /// open, so far) without a byte of stream. It verifies as what it is.
    pub empty: bool,
    pub ok: bool,
    pub failures: Vec<Finding>,
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The gateway public key to trust. Without it, the key named in the
    /// recording's header is used, which proves consistency but not origin.
    pub trusted_key: Option<signature::PublicKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "cannot find recording {0:?}: give a manifest key, a records/… prefix, or RECORDER/RECORDING-ID"
    )]
    NotFound(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// What the user asked to verify, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the manifest is (or will be: an open live recording has only
    /// its journal).
    pub manifest_key: String,
    /// For `RECORDER/RECORDING-ID`: the recording asked for.
    pub asked: Option<Asked>,
}

/// A recording asked for by recorder and recording id.
#[derive(Debug, Clone)]
pub struct Asked {
    pub recorder: String,
    pub recording_id: String,
    /// The locator it was found through (`None` for an open live recording,
    /// found by its journal).
    pub locator: Option<Locator>,
}

/// Resolves what the user typed to a manifest key.
pub async fn resolve(store: &Store, target: &str) -> Result<Target, VerifyError> {
    let t = target.trim_end_matches('/');
    let at = |manifest_key: String| Target {
        manifest_key,
        asked: None,
    };
    if t.ends_with("/manifest.json") {
        return Ok(at(t.to_string()));
    }
    if t.starts_with("records/") {
        return Ok(at(layout::manifest_key(t)));
    }
    if let Some((rec, id)) = t.split_once('/')
        && !id.contains('/')
    {
        let asked = |manifest_key: String, locator: Option<Locator>| Target {
            manifest_key,
            asked: Some(Asked {
                recorder: rec.to_string(),
                recording_id: id.to_string(),
                locator,
            }),
        };
        match store
            .get_bytes(&layout::locator_key(rec, id), MAX_DOC_BYTES)
            .await
        {
            Ok(b) => {
                let loc: Locator = serde_json::from_slice(&b)
                    .map_err(|_| VerifyError::NotFound(target.to_string()))?;
                return Ok(asked(loc.manifest_key.clone(), Some(loc)));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        // An open live recording has no locator yet: find its journal.
        let tail = format!("/{rec}/{id}");
        for o in store.list(layout::RECORDS_ROOT).await? {
            if let Some(prefix) = layout::prefix_of_journal_key(&o.key)
                && prefix.ends_with(&tail)
            {
                return Ok(asked(layout::manifest_key(prefix), None));
            }
        }
    }
    Err(VerifyError::NotFound(target.to_string()))
}

/// Verifies what `target` resolved to, and — when a recording was asked
/// for by recorder and id — that the recording found is that one: its
/// locator must name it and lead to its prefix, and the manifest and header
/// verified must be its own.
pub async fn verify_target(
    store: &Store,
    target: &Target,
    opts: &VerifyOptions,
) -> Result<Report, VerifyError> {
    let mut report = verify_with(store, &target.manifest_key, opts).await?;
    if let Some(Asked {
        recorder: rec,
        recording_id: id,
        locator,
    }) = &target.asked
    {
        let mut wrong = Vec::new();
        if let Some(loc) = locator
            && let Err(why) = custody_format::locator::check_locator(loc, rec, id)
        {
            wrong.push(why);
        }
        let found = (report.recorder.as_deref(), report.recording_id.as_deref());
        if found != (Some(rec.as_str()), Some(id.as_str())) {
            wrong.push(format!(
                "{rec}/{id} was asked for, but {} holds {}/{}",
                target.manifest_key,
                found.0.unwrap_or("?"),
                found.1.unwrap_or("?")
            ));
        }
        let mut c = Checker { report };
        for why in wrong {
            c.fail(None, &layout::locator_key(rec, id), why);
        }
        report = finish(c);
    }
    Ok(report)
}

/// The locator of `recorder/id`, if one is stored and readable.
async fn locator(store: &Store, recorder: &str, id: &str) -> Result<Option<Locator>, VerifyError> {
    match store
        .get_bytes(&layout::locator_key(recorder, id), MAX_DOC_BYTES)
        .await
    {
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The findings of one verification, as they are made.
pub(crate) struct Checker {
    pub(crate) report: Report,
}

impl Checker {
    /// A verification of the recording whose manifest is (or will be) at
    /// `manifest_key`, with nothing found yet.
    pub(crate) fn new(manifest_key: &str, key_pinned: bool) -> Checker {
        Checker {
            report: Report {
                manifest_key: manifest_key.to_string(),
                recorder: None,
                recording_id: None,
                state: "closed".into(),
                objects: 0,
                bytes: 0,
                chain_head: None,
                gaps: Vec::new(),
                derivative_holes: Vec::new(),
                signed_objects: 0,
                checkpoint_format: None,
                not_signed: None,
                public_key: None,
                key_pinned,
                links: Vec::new(),
                officer: None,
                uploader: None,
                empty: false,
                ok: false,
                failures: Vec::new(),
            },
        }
    }

    fn fail(&mut self, index: Option<u64>, key: &str, reason: impl Into<String>) {
        self.report.failures.push(Finding {
            index,
            key: key.to_string(),
            reason: reason.into(),
        });
    }
}

/// The manifest's links must be backed by the chain: `docked-copy-of` by
/// the header, `docked-copy` by a signed annotation naming the copy and
/// the gaps it fills.
async fn check_links(
    store: &Store,
    m: &Manifest,
    header: Option<&custody_format::manifest::HeaderDoc>,
    entries: &[ObjectEntry],
    c: &mut Checker,
) -> Result<(), VerifyError> {
    let mut facts = Vec::new();
    if m.links.iter().any(|l| l.relation == Relation::HasCopy) {
        for e in entries.iter().filter(|e| e.role == Role::Annotation) {
            if let Ok(b) = store.get_bytes(&e.key, MAX_DOC_BYTES).await
                && let Ok(a) = serde_json::from_slice::<custody_format::annotation::Annotation>(&b)
            {
                facts.push(a.fact);
            }
        }
    }
    for l in &m.links {
        let backed = match l.relation {
            Relation::CopyOf => header
                .and_then(|h| h.copy_of.as_ref())
                .is_some_and(|c| c.recorder == l.recorder && c.recording_id == l.recording_id),
            Relation::HasCopy => facts.iter().any(|f| {
                matches!(f, custody_format::annotation::Fact::DockedCopy { recording_id, gaps_covered, .. }
                    if *recording_id == l.recording_id && *gaps_covered == l.gaps_filled)
            }),
        };
        if !backed {
            c.fail(
                None,
                &m.prefix,
                format!(
                    "the manifest links {} {}/{} but nothing in the chain says so",
                    l.relation, l.recorder, l.recording_id
                ),
            );
        }
    }
    c.report.links = m.links.clone();
    Ok(())
}

/// A live recording's journal as stored: the chunks that parse, in order,
/// and the SHA-256 of every chunk's exact bytes, in the order of their
/// numbers (what a checkpoint's journal head chains).
struct Journal {
    chunks: Vec<JournalChunk>,
    hashes: Vec<chain::Hash>,
}

/// Reads every journal chunk under `prefix`, in order.
async fn journal(store: &Store, prefix: &str, c: &mut Checker) -> Result<Journal, VerifyError> {
    let mut chunks = Vec::new();
    let mut hashes = Vec::new();
    let mut keys = store.list(&layout::journal_dir(prefix)).await?;
    // Numbered, not named: sort by number (seven digits sort after six).
    keys.sort_by_key(|o| {
        o.key
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    for o in keys {
        match store.get_bytes(&o.key, MAX_DOC_BYTES).await {
            Ok(b) => match serde_json::from_slice::<JournalChunk>(&hash_into(&mut hashes, b)) {
                Ok(j) => chunks.push((o.key, j)),
                Err(e) => c.fail(None, &o.key, format!("journal chunk is not valid: {e}")),
            },
            Err(e) => return Err(e.into()),
        }
    }
    check_chunks(prefix, &chunks, c);
    Ok(Journal {
        chunks: chunks.into_iter().map(|(_, j)| j).collect(),
        hashes,
    })
}

/// The journal chunks that parsed, with their keys, in order: numbered 0,
/// 1, 2, … under their own numbers, each one's progress agreeing with its
/// entries.
pub(crate) fn check_chunks(prefix: &str, chunks: &[(String, JournalChunk)], c: &mut Checker) {
    for (i, (key, j)) in chunks.iter().enumerate() {
        if j.seq != i as u64 {
            c.fail(
                None,
                key,
                format!(
                    "journal chunk {i} is numbered {}: a chunk is missing or moved",
                    j.seq
                ),
            );
            break;
        }
        if key != &layout::journal_key(prefix, j.seq) {
            c.fail(None, key, "journal chunk is stored under another number");
        }
        // (An index read from storage may be u64::MAX: no next one.)
        if let Some(last) = j.entries.last()
            && (last.chain != j.progress.chain_head
                || last.index.checked_add(1) != Some(j.progress.next_index))
        {
            c.fail(
                Some(last.index),
                key,
                "journal chunk's progress disagrees with its entries",
            );
        }
    }
}

/// Keeps the SHA-256 of `b` and hands `b` on.
fn hash_one(h: &mut Option<chain::Hash>, b: bytes::Bytes) -> bytes::Bytes {
    *h = Some(chain::sha256(&b));
    b
}

/// Notes the SHA-256 of `b` and hands `b` on.
fn hash_into(hashes: &mut Vec<chain::Hash>, b: bytes::Bytes) -> bytes::Bytes {
    hashes.push(chain::sha256(&b));
    b
}

/// Verifies the recording whose manifest is (or will be) at `manifest_key`,
/// trusting the key its header names.
pub async fn verify(store: &Store, manifest_key: &str) -> Result<Report, VerifyError> {
    verify_with(store, manifest_key, &VerifyOptions::default()).await
}

/// Verifies the recording whose manifest is (or will be) at `manifest_key`.
pub async fn verify_with(
    store: &Store,
    manifest_key: &str,
    opts: &VerifyOptions,
) -> Result<Report, VerifyError> {
    let mut c = Checker::new(manifest_key, opts.trusted_key.is_some());
    let prefix = manifest_key
        .strip_suffix("/manifest.json")
        .unwrap_or(manifest_key)
        .to_string();
    let mut manifest_sha256 = None;
    let manifest = match store.get_bytes(manifest_key, MAX_DOC_BYTES).await {
        Ok(b) => match serde_json::from_slice::<Manifest>(&hash_one(&mut manifest_sha256, b)) {
            Ok(m) => Some(m),
            Err(e) => {
                c.fail(None, manifest_key, format!("manifest is not valid: {e}"));
                return Ok(finish(c));
            }
        },
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let Journal {
        chunks,
        hashes: chunk_hashes,
    } = journal(store, &prefix, &mut c).await?;
    let journal_entries: Vec<ObjectEntry> = chunks.iter().flat_map(|j| j.entries.clone()).collect();

    let (entries, recorder, recording_id) = match &manifest {
        Some(m) => {
            if m.format != MANIFEST_FORMAT {
                c.fail(
                    None,
                    manifest_key,
                    format!("unknown manifest format {:?}", m.format),
                );
            }
            if m.prefix != prefix {
                c.fail(
                    None,
                    manifest_key,
                    format!("manifest names prefix {} but is stored elsewhere", m.prefix),
                );
            }
            if m.object_count != m.objects.len() as u64 {
                c.fail(
                    None,
                    manifest_key,
                    format!(
                        "object_count is {} but {} objects are listed",
                        m.object_count,
                        m.objects.len()
                    ),
                );
            }
            if let Some(d) = &m.derivation {
                c.report.derivative_holes = d.holes.clone();
            }
            if let Some(l) = &m.live {
                c.report.gaps = l.gaps.clone();
                // The journal in storage must be exactly what the manifest sums up.
                if chunks.len() as u64 != l.journal_chunks || journal_entries != m.objects {
                    let at = journal_entries
                        .iter()
                        .zip(&m.objects)
                        .position(|(a, b)| a != b)
                        .unwrap_or(journal_entries.len().min(m.objects.len()));
                    c.fail(
                        Some(at as u64),
                        manifest_key,
                        format!(
                            "journal ({} chunks, {} entries) and manifest ({} chunks, {} objects) disagree from entry {at}",
                            chunks.len(),
                            journal_entries.len(),
                            l.journal_chunks,
                            m.objects.len()
                        ),
                    );
                }
                if !chunks.last().is_some_and(|j| j.last) {
                    c.fail(
                        None,
                        manifest_key,
                        "the last journal chunk of a closed recording is not marked last",
                    );
                }
            }
            (
                m.objects.clone(),
                m.recorder.clone(),
                m.recording_id.clone(),
            )
        }
        None if !chunks.is_empty() => {
            c.report.state = "open".into();
            c.report.gaps = chunks.iter().flat_map(|j| j.gaps.clone()).collect();
            let j0 = &chunks[0];
            // The locator is written only after a recording's manifest and
            // final checkpoint: if it names this recording, the recording
            // was closed, and a missing manifest means its end was removed.
            if let Some(l) = locator(store, &j0.recorder, &j0.recording_id).await?
                && l.prefix == prefix
            {
                // The recording may have closed while this ran (manifest,
                // final checkpoint, then locator): look again.
                match store.exists(manifest_key).await {
                    Ok(true) => return Box::pin(verify_with(store, manifest_key, opts)).await,
                    Ok(false) => {}
                    Err(e) => return Err(e.into()),
                }
                c.fail(
                    None,
                    manifest_key,
                    format!(
                        "the recording was closed (its locator names chain head {} after it was archived) but its manifest is missing: the end of the recording has been removed",
                        l.chain_head
                    ),
                );
            }
            (
                journal_entries.clone(),
                j0.recorder.clone(),
                j0.recording_id.clone(),
            )
        }
        None => {
            c.fail(
                None,
                manifest_key,
                "manifest is missing (and no journal of an open live recording)",
            );
            return Ok(finish(c));
        }
    };
    c.report.recorder = Some(recorder.clone());
    c.report.recording_id = Some(recording_id.clone());
    c.report.objects = entries.len() as u64;

    // The chain over the listed hashes.
    match check_chain(&entries) {
        Ok(head) => {
            let head = hex::encode(head);
            if let Some(m) = &manifest
                && head != m.chain_head
            {
                c.fail(
                    None,
                    manifest_key,
                    format!(
                        "chain_head is {} but the chain ends at {head}",
                        m.chain_head
                    ),
                );
            }
            c.report.chain_head = Some(head);
        }
        Err((index, reason)) => {
            let key = entries
                .get(index as usize)
                .map(|o| o.key.clone())
                .unwrap_or_default();
            c.fail(Some(index), &key, format!("chain broken: {reason}"));
        }
    }

    check_objects(store, &entries, &prefix, &mut c).await?;
    let header = check_header(store, &entries, &recorder, &recording_id, &mut c).await?;
    if let Some(h) = &header {
        check_prefix(&prefix, h, &mut c);
    }
    if let Some(m) = &manifest {
        check_live_summary(m, &chunks, header.as_ref(), &mut c);
    }
    let key = match (opts.trusted_key, &header) {
        (Some(k), Some(h)) => {
            if h.signing_key != k.to_hex() {
                c.fail(
                    Some(0),
                    "",
                    format!(
                        "the header names signing key {} but the trusted key is {}",
                        h.signing_key,
                        k.to_hex()
                    ),
                );
            }
            Some(k)
        }
        (Some(k), None) => Some(k),
        (None, Some(h)) => signature::PublicKey::from_hex(&h.signing_key),
        (None, None) => None,
    };
    let is_live = manifest
        .as_ref()
        .map_or(!chunks.is_empty(), |m| m.live.is_some());
    let stored = Stored {
        prefix: &prefix,
        entries: &entries,
        recorder: &recorder,
        recording_id: &recording_id,
        manifest_sha256,
        journal: is_live.then_some(chunk_hashes.as_slice()),
    };
    check_checkpoints(store, &stored, key, &mut c).await?;
    let raw_chunks = match &manifest {
        Some(m) => m.live.as_ref().is_none_or(|l| l.raw_chunks),
        None => chunks.last().is_none_or(|j| j.raw_chunks),
    };
    c.report.empty = holds_no_media(manifest.as_ref(), &chunks);
    check_derivation(
        &entries,
        manifest.as_ref(),
        raw_chunks,
        &mut c,
        manifest_key,
    );
    check_raw_contiguity(&entries, &c.report.gaps.clone(), &mut c);
    if let Some(m) = &manifest {
        check_links(store, m, header.as_ref(), &entries, &mut c).await?;
    }

    // Nothing else may sit under the prefix. An open recording may have
    // objects in storage whose journal chunk is still on its way.
    let open = c.report.state == "open";
    let is_live = open || manifest.as_ref().is_some_and(|m| m.live.is_some());
    let journal_keys: BTreeSet<String> = if is_live {
        (0..chunks.len() as u64)
            .map(|s| layout::journal_key(&prefix, s))
            .collect()
    } else {
        BTreeSet::new()
    };
    let listed: BTreeSet<&str> = entries
        .iter()
        .map(|o| o.key.as_str())
        .chain([manifest_key])
        .chain(journal_keys.iter().map(String::as_str))
        .collect();
    let pending = |key: &str| -> bool {
        open && key
            .rsplit('/')
            .next()
            .and_then(|n| n.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|i| i >= entries.len() as u64)
    };
    let cp_dir = layout::checkpoints_dir(&prefix);
    let is_checkpoint = |key: &str| -> bool {
        key.strip_prefix(&cp_dir).is_some_and(|n| {
            let (num, ext) = n.split_once('.').unwrap_or(("", ""));
            num.len() >= 6
                && num.bytes().all(|b| b.is_ascii_digit())
                && (ext == "json" || ext == "sig")
        })
    };
    for obj in store.list(&format!("{prefix}/")).await? {
        if !listed.contains(obj.key.as_str()) && !pending(&obj.key) && !is_checkpoint(&obj.key) {
            c.fail(
                None,
                &obj.key,
                "object in the recording's prefix is not in its manifest",
            );
        }
    }
    Ok(finish(c))
}

fn finish(mut c: Checker) -> Report {
    c.report
        .failures
        .sort_by_key(|f| (f.index.is_none(), f.index));
    c.report.ok = c.report.failures.is_empty();
    c.report
}

/// Every object's bytes, a few at a time.
async fn check_objects(
    store: &Store,
    entries: &[ObjectEntry],
    prefix: &str,
    c: &mut Checker,
) -> Result<(), VerifyError> {
    let mut set = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    for o in entries.iter().cloned() {
        if set.len() >= 4
            && let Some(r) = set.join_next().await
        {
            results.push(r.expect("hash task"));
        }
        let store = store.clone();
        set.spawn(async move {
            let r = store.read_hash(&o.key).await;
            (o, r)
        });
    }
    while let Some(r) = set.join_next().await {
        results.push(r.expect("hash task"));
    }
    results.sort_by_key(|(o, _)| o.index);
    for (o, r) in results {
        if !o.key.starts_with(&format!("{prefix}/")) {
            c.fail(
                Some(o.index),
                &o.key,
                "object is outside the recording's prefix",
            );
        }
        match r {
            Ok((size, h)) => {
                c.report.bytes += size;
                if size != o.size || hex::encode(h) != o.sha256 {
                    let size_note = if size != o.size {
                        format!("size is {size}, manifest says {}; ", o.size)
                    } else {
                        String::new()
                    };
                    c.fail(
                        Some(o.index),
                        &o.key,
                        format!(
                            "{size_note}SHA-256 is {}, manifest says {}",
                            hex::encode(h),
                            o.sha256
                        ),
                    );
                }
            }
            Err(e) if e.is_not_found() => {
                c.fail(Some(o.index), &o.key, "object is missing from storage")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The header binds the chain to this recorder and recording.
async fn check_header(
    store: &Store,
    entries: &[ObjectEntry],
    recorder: &str,
    recording_id: &str,
    c: &mut Checker,
) -> Result<Option<HeaderDoc>, VerifyError> {
    let mut found = None;
    match entries.first() {
        Some(h0) if h0.role == Role::Header => {
            match store.get_bytes(&h0.key, MAX_DOC_BYTES).await {
                Ok(b) if hex::encode(chain::sha256(&b)) == h0.sha256 => {
                    match serde_json::from_slice::<HeaderDoc>(&b) {
                        Ok(h) => {
                            if h.format != HEADER_FORMAT {
                                c.fail(
                                    Some(0),
                                    &h0.key,
                                    format!("unknown header format {:?}", h.format),
                                );
                            }
                            if h.recorder != recorder || h.recording_id != recording_id {
                                c.fail(
                            Some(0),
                            &h0.key,
                            format!(
                                "header is for {}/{}, manifest for {recorder}/{recording_id}",
                                h.recorder, h.recording_id
                            ),
                        );
                            }
                            c.report.officer =
                                h.meta.officer.clone().or_else(|| h.ledger.officer.clone());
                            c.report.uploader = Some(h.uploader.device.clone());
                            found = Some(h);
                        }
                        Err(e) => c.fail(Some(0), &h0.key, format!("header is not valid: {e}")),
                    }
                }
                // A hash mismatch or absence was reported with the objects.
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => c.fail(Some(0), &h0.key, format!("header cannot be read: {e}")),
            }
        }
        Some(o) => c.fail(Some(o.index), &o.key, "object 0 is not the header"),
        None => c.fail(None, "", "no objects are listed"),
    }
    Ok(found)
}

/// The prefix is where the header (chained and signed) says the recording
/// belongs: `records/<category>/<yyyy>/<mm>/<dd>/<recorder>/<recording-id>`
/// with the header's category (`_uncategorized` when it declares none,
/// `_audit` for the audit trail), recorder and recording id. (The date
/// depends on the gateway's UTC offset, which storage does not record; a
/// `custody-checkpoint/2` signs the whole prefix.)
pub(crate) fn check_prefix(prefix: &str, h: &HeaderDoc, c: &mut Checker) {
    let segments: Vec<&str> = prefix.split('/').collect();
    let category = h
        .meta
        .category
        .as_deref()
        .unwrap_or(if h.recorder == layout::AUDIT_RECORDER {
            layout::AUDIT_CATEGORY
        } else {
            layout::UNCATEGORIZED
        });
    let ok = segments.len() == 7
        && segments[0] == "records"
        && segments[5] == h.recorder
        && segments[6] == h.recording_id;
    if !ok {
        c.fail(
            Some(0),
            prefix,
            format!(
                "the recording is stored under {prefix}, not under a prefix of {}/{}: it was moved or copied",
                h.recorder, h.recording_id
            ),
        );
    } else if segments[1] != category {
        c.fail(
            Some(0),
            prefix,
            format!(
                "the recording is stored under category {} but its header says {category}: it was moved or copied",
                segments[1]
            ),
        );
    }
}

/// A live manifest's summary agrees with its journal and header: the gaps
/// are the journal's, `complete` means no gap, and a mandatory
/// full-process recording with gaps is flagged.
pub(crate) fn check_live_summary(
    m: &Manifest,
    chunks: &[JournalChunk],
    header: Option<&HeaderDoc>,
    c: &mut Checker,
) {
    let Some(l) = &m.live else { return };
    let key = layout::manifest_key(&m.prefix);
    let journal_gaps: Vec<&Gap> = chunks.iter().flat_map(|j| &j.gaps).collect();
    if l.gaps.iter().collect::<Vec<_>>() != journal_gaps {
        c.fail(
            None,
            &key,
            format!(
                "the manifest lists {} gaps but the journal records {}",
                l.gaps.len(),
                journal_gaps.len()
            ),
        );
    }
    if l.complete != l.gaps.is_empty() {
        c.fail(
            None,
            &key,
            format!(
                "the manifest says complete = {} with {} gaps",
                l.complete,
                l.gaps.len()
            ),
        );
    }
    let mandatory = header.map_or(m.summary.mandatory_full_process, |h| {
        h.meta.full_process.as_ref().is_some_and(|f| f.mandatory)
    });
    if l.full_process_violation != (mandatory && !l.gaps.is_empty()) {
        c.fail(
            None,
            &key,
            format!(
                "the manifest says full_process_violation = {} for a {}mandatory recording with {} gaps",
                l.full_process_violation,
                if mandatory { "" } else { "non-" },
                l.gaps.len()
            ),
        );
    }
}

/// What storage holds of the recording, as the checkpoints are checked
/// against it.
pub(crate) struct Stored<'a> {
    /// Where the recording was found.
    pub prefix: &'a str,
    /// The objects listed (manifest, or the journal of an open recording).
    pub entries: &'a [ObjectEntry],
    pub recorder: &'a str,
    pub recording_id: &'a str,
    /// SHA-256 of the stored manifest's exact bytes; `None` when there is
    /// none (an open live recording).
    pub manifest_sha256: Option<chain::Hash>,
    /// A live recording's journal: the SHA-256 of each stored chunk, in
    /// order. `None` for a docked recording.
    pub journal: Option<&'a [chain::Hash]>,
}

/// What a `custody-checkpoint/1` signature leaves out.
pub const NOT_SIGNED_BY_V1: &str = "custody-checkpoint/1 signs the objects and their order only: \
     the manifest (completeness, derivation status, summary, links, retention), the journal \
     (gaps, raw-chunk ranges) and the storage prefix are not signed";

/// The `/2` statements of one checkpoint beyond its chain: the prefix, the
/// journal and (final) that it names a manifest. Failures are reported
/// under the checkpoint's key.
pub(crate) fn check_statements(cp: &Checkpoint, st: &Stored, c: &mut Checker, ck: &str) {
    if cp.format == checkpoint::CHECKPOINT_FORMAT_1 {
        return;
    }
    match &cp.prefix {
        Some(p) if p == st.prefix => {}
        Some(p) => c.fail(
            None,
            ck,
            format!(
                "checkpoint signs prefix {p} but the recording is stored under {}: it was moved or copied",
                st.prefix
            ),
        ),
        None => c.fail(None, ck, "checkpoint does not sign the recording's prefix"),
    }
    match (&cp.journal, st.journal) {
        (None, None) => {}
        (None, Some(_)) => c.fail(
            None,
            ck,
            "checkpoint does not sign the live recording's journal",
        ),
        (Some(j), stored) => {
            let stored = stored.unwrap_or(&[]);
            if j.chunks > stored.len() as u64 {
                c.fail(
                    None,
                    ck,
                    format!(
                        "checkpoint signs {} journal chunks but only {} are stored: journal chunks were removed",
                        j.chunks,
                        stored.len()
                    ),
                );
            } else {
                let mut again = checkpoint::JournalHead::default();
                for h in &stored[..j.chunks as usize] {
                    let prev = chain::parse_hex(&again.head);
                    again.head = hex::encode(chain::link(prev.as_ref(), h));
                    again.chunks += 1;
                }
                if again.head != j.head {
                    c.fail(
                        None,
                        ck,
                        format!(
                            "checkpoint signs journal head {} over {} chunks, but the stored journal gives {}: journal chunks were rewritten",
                            j.head, j.chunks, again.head
                        ),
                    );
                }
            }
        }
    }
    if cp.is_final && cp.manifest_sha256.is_none() {
        c.fail(None, ck, "final checkpoint does not sign a manifest");
    }
}

/// Signed checkpoints: each verifies with the key, links to the one before,
/// and signs the chain exactly as listed — and, in `custody-checkpoint/2`,
/// the prefix, the journal and the manifest as stored; a closed recording
/// ends with a final checkpoint over every object and its manifest.
async fn check_checkpoints(
    store: &Store,
    st: &Stored<'_>,
    key: Option<signature::PublicKey>,
    c: &mut Checker,
) -> Result<(), VerifyError> {
    let (prefix, entries) = (st.prefix, st.entries);
    let dir = format!("{prefix}/checkpoints/");
    let objs = store.list(&dir).await?;
    let seqs: BTreeSet<u64> = objs
        .iter()
        .filter_map(|o| {
            o.key
                .strip_prefix(&dir)?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    let Some(key) = key else {
        c.fail(
            None,
            &dir,
            "no public key to check checkpoints with (the header names none)",
        );
        return Ok(());
    };
    c.report.public_key = Some(key.to_hex());
    if seqs.is_empty() {
        c.fail(
            None,
            &dir,
            "no signed checkpoint: nothing proves the gateway wrote this chain",
        );
        return Ok(());
    }
    let mut previous: Option<String> = None;
    let mut last: Option<Checkpoint> = None;
    let mut prev_count = 0u64;
    for (i, seq) in seqs.iter().enumerate() {
        let ck = checkpoint_key(prefix, *seq);
        if *seq != i as u64 {
            c.fail(
                None,
                &ck,
                format!("checkpoint {i} is missing (found {seq} instead)"),
            );
            return Ok(());
        }
        let bytes = store.get_bytes(&ck, MAX_DOC_BYTES).await?;
        let sig = match store.get_bytes(&signature_key(prefix, *seq), 1024).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                c.fail(None, &ck, "checkpoint has no signature");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let cp = match signature::open_checkpoint(&bytes, &sig, &key) {
            Ok(cp) => cp,
            Err(e) => {
                c.fail(None, &ck, e);
                return Ok(());
            }
        };
        if cp.format != checkpoint::CHECKPOINT_FORMAT
            && cp.format != checkpoint::CHECKPOINT_FORMAT_1
        {
            c.fail(
                None,
                &ck,
                format!("unknown checkpoint format {:?}", cp.format),
            );
            return Ok(());
        }
        let mut bad = |reason: String| c.fail(None, &ck, reason);
        if cp.seq != *seq || cp.recorder != st.recorder || cp.recording_id != st.recording_id {
            bad(format!(
                "checkpoint is for {}/{} number {}, not this recording's number {seq}",
                cp.recorder, cp.recording_id, cp.seq
            ));
        }
        if cp.public_key != key.to_hex() {
            bad("checkpoint names another public key".into());
        }
        if cp.previous != previous {
            bad("checkpoint does not link to the one before it".into());
        }
        if cp.object_count < prev_count {
            bad(format!(
                "checkpoint covers {} objects, fewer than the one before",
                cp.object_count
            ));
        }
        if cp.object_count > entries.len() as u64 {
            bad(format!(
                "checkpoint signs {} objects but only {} are listed: objects were removed",
                cp.object_count,
                entries.len()
            ));
        } else if cp.object_count > 0 {
            let at = &entries[cp.object_count as usize - 1];
            if at.chain != cp.chain_head {
                bad(format!(
                    "checkpoint signs chain head {} after {} objects, but the listed chain has {} there",
                    cp.chain_head, cp.object_count, at.chain
                ));
            }
        }
        check_statements(&cp, st, c, &ck);
        previous = Some(hex::encode(chain::sha256(&bytes)));
        prev_count = cp.object_count;
        last = Some(cp);
    }
    let last = last.expect("at least one checkpoint");
    let last_key = checkpoint_key(prefix, last.seq);
    c.report.signed_objects = last.object_count.min(entries.len() as u64);
    c.report.checkpoint_format = Some(last.format.clone());
    if last.format == checkpoint::CHECKPOINT_FORMAT_1 {
        c.report.not_signed = Some(NOT_SIGNED_BY_V1.into());
    }
    match st.manifest_sha256 {
        Some(mh) => {
            if !last.is_final || last.object_count != entries.len() as u64 {
                c.fail(
                    None,
                    &last_key,
                    format!(
                        "the recording's end is not signed: the last checkpoint covers {} of {} objects{} (objects removed from, or added to, its end)",
                        last.object_count,
                        entries.len(),
                        if last.is_final { "" } else { " and is not final" }
                    ),
                );
            }
            if let Some(signed) = &last.manifest_sha256
                && *signed != hex::encode(mh)
            {
                c.fail(
                    None,
                    &last_key,
                    format!(
                        "the manifest is not the one the gateway signed: its SHA-256 is {}, the last checkpoint signs {signed}",
                        hex::encode(mh)
                    ),
                );
            }
            if let (Some(j), Some(stored)) = (&last.journal, st.journal)
                && j.chunks != stored.len() as u64
            {
                c.fail(
                    None,
                    &last_key,
                    format!(
                        "the last checkpoint signs {} journal chunks but {} are stored: journal chunks were added after the close",
                        j.chunks,
                        stored.len()
                    ),
                );
            }
        }
        None if last.is_final => c.fail(
            None,
            &last_key,
            "a final checkpoint exists but the manifest is missing",
        ),
        None => {}
    }
    Ok(())
}

/// Whether a live recording says it holds no media: closed with no stream
/// bytes received, or open with nothing cut from its stream yet.
pub(crate) fn holds_no_media(manifest: Option<&Manifest>, chunks: &[JournalChunk]) -> bool {
    match manifest {
        Some(m) => m.live.as_ref().is_some_and(|l| l.stream_bytes == 0),
        None => chunks.last().is_some_and(|j| j.progress.cut == 0),
    }
}

/// Derivatives name an original (or raw chunk) of this recording listed
/// before them, and the derivation summary matches what is listed.
pub(crate) fn check_derivation(
    entries: &[ObjectEntry],
    manifest: Option<&Manifest>,
    raw_chunks: bool,
    c: &mut Checker,
    manifest_key: &str,
) {
    let raw_off = !raw_chunks;
    let has_original = entries
        .iter()
        .any(|o| matches!(o.role, Role::Original | Role::RawChunk));
    let empty = c.report.empty;
    if empty && has_original {
        c.fail(
            None,
            manifest_key,
            "the recording says it holds no media (no stream bytes) but raw chunks are listed",
        );
    }
    if !has_original && !raw_off && !empty && (manifest.is_some() || entries.len() > 1) {
        c.fail(None, manifest_key, "no original (or raw chunk) is listed");
    }
    for o in entries {
        if !matches!(o.role, Role::Init | Role::Segment) {
            continue;
        }
        let ok = match &o.derived_from {
            None => raw_off,
            Some(d) => {
                d.index < o.index
                    && entries.get(d.index as usize).is_some_and(|orig| {
                        matches!(orig.role, Role::Original | Role::RawChunk)
                            && orig.key == d.key
                            && orig.sha256 == d.sha256
                    })
            }
        };
        if !ok {
            c.fail(
                Some(o.index),
                &o.key,
                "derived object does not name an original of this recording listed before it",
            );
        }
    }
    if let Some(d) = manifest.and_then(|m| m.derivation.as_ref()) {
        let segments = entries.iter().filter(|o| o.role == Role::Segment).count();
        let inits = entries.iter().filter(|o| o.role == Role::Init).count();
        if d.status == DerivationStatus::Derived && (inits == 0 || segments == 0) {
            c.fail(
                None,
                manifest_key,
                format!("derivation says derived but {inits} init and {segments} media segments are listed"),
            );
        }
        if d.status != DerivationStatus::Derived && inits + segments > 0 {
            c.fail(
                None,
                manifest_key,
                format!(
                    "derivation says {} but derived objects are listed",
                    d.status
                ),
            );
        }
    }
}

/// Raw chunks of a live recording follow each other byte for byte, except
/// where a recorded gap says bytes were lost.
pub(crate) fn check_raw_contiguity(entries: &[ObjectEntry], gaps: &[Gap], c: &mut Checker) {
    let mut next = 0u64;
    for o in entries.iter().filter(|o| o.role == Role::RawChunk) {
        let Some(r) = o.range else {
            c.fail(Some(o.index), &o.key, "raw chunk has no stream range");
            continue;
        };
        if r.length != o.size {
            c.fail(Some(o.index), &o.key, "raw chunk's range and size differ");
        }
        if r.offset != next {
            // Recorded lost-byte ranges must cover the hole exactly, one
            // after another.
            let mut at = next;
            let mut lost: Vec<_> = gaps.iter().filter_map(|g| g.bytes).collect();
            lost.sort_by_key(|b| b.offset);
            // Ranges come from storage: one may claim to end past u64::MAX.
            for b in lost {
                if b.offset == at {
                    at = at.saturating_add(b.length);
                }
            }
            let explained = at == r.offset;
            if !explained {
                c.fail(
                    Some(o.index),
                    &o.key,
                    format!(
                        "raw chunk starts at stream offset {} but the previous one ended at {next}, and no gap is recorded there",
                        r.offset
                    ),
                );
            }
        }
        next = r.offset.saturating_add(r.length);
    }
}
