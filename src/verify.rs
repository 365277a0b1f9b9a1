//! Independent verification of a recording from storage alone
//! (`custody verify`): the manifest, every object's size and SHA-256, the
//! hash chain, the header's binding to recorder and recording, and that no
//! object sits under the recording's prefix without being listed.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::archive::{Locator, MAX_DOC_BYTES};
use crate::chain;
use crate::manifest::{HEADER_FORMAT, HeaderDoc, MANIFEST_FORMAT, Manifest, Role, check_chain};
use crate::store::{Store, StoreError, layout};

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
    pub objects: u64,
    pub bytes: u64,
    pub chain_head: Option<String>,
    pub ok: bool,
    pub failures: Vec<Finding>,
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

/// Resolves what the user typed to a manifest key.
pub async fn resolve(store: &Store, target: &str) -> Result<String, VerifyError> {
    let t = target.trim_end_matches('/');
    if t.ends_with("/manifest.json") {
        return Ok(t.to_string());
    }
    if t.starts_with("records/") {
        return Ok(layout::manifest_key(t));
    }
    if let Some((rec, id)) = t.split_once('/')
        && !id.contains('/')
    {
        match store
            .get_bytes(&layout::locator_key(rec, id), MAX_DOC_BYTES)
            .await
        {
            Ok(b) => {
                let loc: Locator = serde_json::from_slice(&b)
                    .map_err(|_| VerifyError::NotFound(target.to_string()))?;
                return Ok(loc.manifest_key);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(VerifyError::NotFound(target.to_string()))
}

/// Verifies the recording whose manifest is at `manifest_key`.
pub async fn verify(store: &Store, manifest_key: &str) -> Result<Report, VerifyError> {
    let mut report = Report {
        manifest_key: manifest_key.to_string(),
        recorder: None,
        recording_id: None,
        objects: 0,
        bytes: 0,
        chain_head: None,
        ok: false,
        failures: Vec::new(),
    };
    let fail = |report: &mut Report, index: Option<u64>, key: &str, reason: String| {
        report.failures.push(Finding {
            index,
            key: key.to_string(),
            reason,
        })
    };
    let bytes = match store.get_bytes(manifest_key, MAX_DOC_BYTES).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            fail(
                &mut report,
                None,
                manifest_key,
                "manifest is missing".into(),
            );
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    let m: Manifest = match serde_json::from_slice(&bytes) {
        Ok(m) => m,
        Err(e) => {
            fail(
                &mut report,
                None,
                manifest_key,
                format!("manifest is not valid: {e}"),
            );
            return Ok(report);
        }
    };
    report.recorder = Some(m.recorder.clone());
    report.recording_id = Some(m.recording_id.clone());
    report.objects = m.objects.len() as u64;
    if m.format != MANIFEST_FORMAT {
        fail(
            &mut report,
            None,
            manifest_key,
            format!("unknown manifest format {:?}", m.format),
        );
    }
    if layout::manifest_key(&m.prefix) != manifest_key {
        fail(
            &mut report,
            None,
            manifest_key,
            format!("manifest names prefix {} but is stored elsewhere", m.prefix),
        );
    }

    // The chain over the listed hashes.
    match check_chain(&m.objects) {
        Ok(head) => {
            let head = hex::encode(head);
            if head != m.chain_head {
                fail(
                    &mut report,
                    None,
                    manifest_key,
                    format!(
                        "chain_head is {} but the chain ends at {head}",
                        m.chain_head
                    ),
                );
            }
            report.chain_head = Some(head);
        }
        Err((index, reason)) => {
            let key = m
                .objects
                .get(index as usize)
                .map(|o| o.key.clone())
                .unwrap_or_default();
            fail(
                &mut report,
                Some(index),
                &key,
                format!("chain broken: {reason}"),
            );
        }
    }
    if m.object_count != m.objects.len() as u64 {
        fail(
            &mut report,
            None,
            manifest_key,
            format!(
                "object_count is {} but {} objects are listed",
                m.object_count,
                m.objects.len()
            ),
        );
    }

    // Every object's bytes, a few at a time.
    let mut set = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    for o in m.objects.iter().cloned() {
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
        if !o.key.starts_with(&format!("{}/", m.prefix)) {
            fail(
                &mut report,
                Some(o.index),
                &o.key,
                "object is outside the recording's prefix".into(),
            );
        }
        match r {
            Ok((size, h)) => {
                report.bytes += size;
                if size != o.size {
                    fail(
                        &mut report,
                        Some(o.index),
                        &o.key,
                        format!("size is {size}, manifest says {}", o.size),
                    );
                } else if hex::encode(h) != o.sha256 {
                    fail(
                        &mut report,
                        Some(o.index),
                        &o.key,
                        format!("SHA-256 is {}, manifest says {}", hex::encode(h), o.sha256),
                    );
                }
            }
            Err(e) if e.is_not_found() => fail(
                &mut report,
                Some(o.index),
                &o.key,
                "object is missing from storage".into(),
            ),
            Err(e) => return Err(e.into()),
        }
    }

    // The header binds the chain to this recorder and recording.
    match m.objects.first() {
        Some(h0) if h0.role == Role::Header => {
            match store.get_bytes(&h0.key, MAX_DOC_BYTES).await {
                Ok(b) if hex::encode(chain::sha256(&b)) == h0.sha256 => {
                    match serde_json::from_slice::<HeaderDoc>(&b) {
                        Ok(h) => {
                            if h.format != HEADER_FORMAT {
                                fail(
                                    &mut report,
                                    Some(0),
                                    &h0.key,
                                    format!("unknown header format {:?}", h.format),
                                );
                            }
                            if h.recorder != m.recorder || h.recording_id != m.recording_id {
                                fail(
                                    &mut report,
                                    Some(0),
                                    &h0.key,
                                    format!(
                                        "header is for {}/{}, manifest for {}/{}",
                                        h.recorder, h.recording_id, m.recorder, m.recording_id
                                    ),
                                );
                            }
                        }
                        Err(e) => fail(
                            &mut report,
                            Some(0),
                            &h0.key,
                            format!("header is not valid: {e}"),
                        ),
                    }
                }
                // A hash mismatch or absence was reported above.
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => fail(
                    &mut report,
                    Some(0),
                    &h0.key,
                    format!("header cannot be read: {e}"),
                ),
            }
        }
        Some(o) => fail(
            &mut report,
            Some(o.index),
            &o.key,
            "object 0 is not the header".into(),
        ),
        None => {}
    }
    if !m.objects.iter().any(|o| o.role == Role::Original) {
        fail(
            &mut report,
            None,
            manifest_key,
            "manifest lists no original".into(),
        );
    }

    // Every derivative names an original of this recording listed before it.
    for o in &m.objects {
        if !matches!(o.role, Role::Init | Role::Segment) {
            continue;
        }
        let ok = o.derived_from.as_ref().is_some_and(|d| {
            d.index < o.index
                && m.objects.get(d.index as usize).is_some_and(|orig| {
                    orig.role == Role::Original && orig.key == d.key && orig.sha256 == d.sha256
                })
        });
        if !ok {
            fail(
                &mut report,
                Some(o.index),
                &o.key,
                "derived object does not name an original of this recording listed before it"
                    .into(),
            );
        }
    }
    if let Some(d) = &m.derivation {
        let segments = m.objects.iter().filter(|o| o.role == Role::Segment).count();
        let inits = m.objects.iter().filter(|o| o.role == Role::Init).count();
        if d.status == "derived" && (inits == 0 || segments == 0) {
            fail(
                &mut report,
                None,
                manifest_key,
                format!(
                    "derivation says derived but {inits} init and {segments} media segments are listed"
                ),
            );
        }
        if d.status != "derived" && inits + segments > 0 {
            fail(
                &mut report,
                None,
                manifest_key,
                format!(
                    "derivation says {} but derived objects are listed",
                    d.status
                ),
            );
        }
    }

    // Nothing else may sit under the prefix.
    let listed: BTreeSet<&str> = m
        .objects
        .iter()
        .map(|o| o.key.as_str())
        .chain([manifest_key])
        .collect();
    for obj in store.list(&format!("{}/", m.prefix)).await? {
        if !listed.contains(obj.key.as_str()) {
            fail(
                &mut report,
                None,
                &obj.key,
                "object in the recording's prefix is not in its manifest".into(),
            );
        }
    }

    report
        .failures
        .sort_by_key(|f| (f.index.is_none(), f.index));
    report.ok = report.failures.is_empty();
    Ok(report)
}
