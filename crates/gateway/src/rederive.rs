//! Re-deriving a docked recording (`custody verify --rederive`): the
//! derived objects are made again from the stored original, with the
//! pipeline description and segment duration the manifest's
//! `derivation.recipe` records, and each is compared by SHA-256 with the
//! object stored. An examiner can so confirm that the CMAF segments show
//! what the original holds, without trusting the gateway that made them.
//!
//! Live recordings are not re-derivable exactly: their segments depend on
//! where the stream was cut into raw chunks and on where remux pipelines
//! restarted (after gaps and gateway restarts), which the chain records
//! only in part. They are reported as such (`docs/manifest.md` §9.6).

use std::path::{Path, PathBuf};

use serde::Serialize;

use custody_format::manifest::{DerivationStatus, Manifest, Role};
use custody_media::derive::{self, Derivation, Recipe};
use custody_media::remux::RemuxOptions;
use custody_media::{PipelineSpec, Registry};
use custody_store::{Store, StoreError};

/// The largest manifest read.
const MAX_MANIFEST: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RederiveError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("re-deriving: {0}")]
    Io(#[from] std::io::Error),
    #[error("the manifest {0} is not valid: {1}")]
    Manifest(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every derived object was made again, byte for byte.
    Match,
    /// At least one derived object came out different (or is missing, or
    /// is extra).
    Mismatch,
    /// Nothing was derived from this recording (status `none`/`failed`).
    NothingDerived,
    /// This recording cannot be re-derived exactly; `reason` says why.
    NotRederivable,
}

/// One derived object, as stored and as made again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectCheck {
    /// Chain index, absent for an object the re-derivation made beyond
    /// those stored.
    pub index: Option<u64>,
    pub key: Option<String>,
    pub stored_sha256: Option<String>,
    pub rederived_sha256: Option<String>,
}

impl ObjectCheck {
    pub fn matches(&self) -> bool {
        self.stored_sha256.is_some() && self.stored_sha256 == self.rederived_sha256
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rederivation {
    pub manifest_key: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Differences of tools between then and now, worth knowing when
    /// objects differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectCheck>,
}

impl Rederivation {
    /// Re-deriving raised no doubt about the stored derivatives.
    pub fn ok(&self) -> bool {
        self.outcome != Outcome::Mismatch
    }
}

/// A directory removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p =
            std::env::temp_dir().join(format!("custody-rederive-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Re-derives the recording whose manifest is at `manifest_key`.
pub async fn rederive(store: &Store, manifest_key: &str) -> Result<Rederivation, RederiveError> {
    let bytes = store.get_bytes(manifest_key, MAX_MANIFEST).await?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| RederiveError::Manifest(manifest_key.to_string(), e.to_string()))?;
    let report = |outcome, reason: String| Rederivation {
        manifest_key: manifest_key.to_string(),
        outcome,
        reason: Some(reason),
        notes: Vec::new(),
        objects: Vec::new(),
    };
    if m.live.is_some() {
        return Ok(report(
            Outcome::NotRederivable,
            "a live recording: its segments depend on where the stream was cut into raw chunks and where remux pipelines restarted, so they cannot be made again byte for byte; its raw chunks are the record".into(),
        ));
    }
    let Some(d) = &m.derivation else {
        return Ok(report(
            Outcome::NotRederivable,
            "the manifest records no derivation".into(),
        ));
    };
    if d.status != DerivationStatus::Derived {
        return Ok(report(
            Outcome::NothingDerived,
            format!(
                "nothing was derived (status {}{})",
                d.status,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let Some(recipe) = &d.recipe else {
        return Ok(report(
            Outcome::NotRederivable,
            "derived before this gateway recorded how (no derivation.recipe; its init segment also carries the time it was made)".into(),
        ));
    };
    let Some(original) = m.objects.iter().find(|o| o.role == Role::Original) else {
        return Ok(report(
            Outcome::NotRederivable,
            "the manifest lists no original".into(),
        ));
    };

    let scratch = Scratch::new()?;
    let local = scratch.0.join("original");
    store.download(&original.key, &local).await?;
    let (size, sha) = {
        let l = local.clone();
        tokio::task::spawn_blocking(move || custody_store::hash_file(&l))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    if size != original.size || hex::encode(sha) != original.sha256 {
        return Ok(report(
            Outcome::NotRederivable,
            format!(
                "the stored original ({}) is not the one the manifest lists: run `custody verify` without --rederive",
                original.key
            ),
        ));
    }
    let (recipe2, out) = (recipe.clone(), scratch.0.join("derived"));
    let made = tokio::task::spawn_blocking(move || derive_again(&recipe2, &local, &out))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;

    let mut notes = version_notes(recipe);
    let stored: Vec<_> = m
        .objects
        .iter()
        .filter(|o| matches!(o.role, Role::Init | Role::Segment))
        .collect();
    let rederived: Vec<String> = match made {
        Derivation::Derived { init, segments, .. } => std::iter::once(init)
            .chain(segments)
            .map(|f| hex::encode(f.sha256))
            .collect(),
        other => {
            notes.push(format!(
                "the re-derivation did not derive: {}",
                match other {
                    Derivation::Failed { reason, .. } | Derivation::None { reason, .. } => reason,
                    Derivation::Derived { .. } => unreachable!("matched above"),
                }
            ));
            Vec::new()
        }
    };
    let objects = compare(&stored, &rederived);
    let all = !objects.is_empty() && objects.iter().all(ObjectCheck::matches);
    Ok(Rederivation {
        manifest_key: manifest_key.to_string(),
        outcome: if all {
            Outcome::Match
        } else {
            Outcome::Mismatch
        },
        reason: None,
        notes,
        objects,
    })
}

/// Runs the recorded derivation on a local copy of the original.
fn derive_again(recipe: &Recipe, original: &Path, out: &Path) -> std::io::Result<Derivation> {
    let to_io = |e: custody_media::PipelineError| std::io::Error::other(e.to_string());
    custody_media::init().map_err(to_io)?;
    let spec = PipelineSpec::parse(Path::new("recorded.pipeline"), &recipe.pipeline_description)
        .map_err(to_io)?;
    let opts = RemuxOptions {
        fragment_duration: std::time::Duration::from_secs_f64(recipe.segment_seconds.max(0.0)),
        ..RemuxOptions::default()
    };
    derive::derive(&Registry::single(spec), original, None, out, &opts)
}

/// Pairs stored derived objects with re-derived ones, in chain order.
fn compare(
    stored: &[&custody_format::manifest::ObjectEntry],
    rederived: &[String],
) -> Vec<ObjectCheck> {
    (0..stored.len().max(rederived.len()))
        .map(|i| ObjectCheck {
            index: stored.get(i).map(|o| o.index),
            key: stored.get(i).map(|o| o.key.clone()),
            stored_sha256: stored.get(i).map(|o| o.sha256.clone()),
            rederived_sha256: rederived.get(i).cloned(),
        })
        .collect()
}

/// Tool versions that differ from those recorded.
fn version_notes(recipe: &Recipe) -> Vec<String> {
    let now = derive::current_recipe(String::new(), recipe.segment_seconds);
    let mut notes = Vec::new();
    if now.gstreamer != recipe.gstreamer {
        notes.push(format!(
            "made with GStreamer {}, re-derived with {}",
            recipe.gstreamer, now.gstreamer
        ));
    }
    if now.fmp4mux != recipe.fmp4mux {
        notes.push(format!(
            "made with gst-plugin-fmp4 {}, re-derived with {}",
            recipe.fmp4mux, now.fmp4mux
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_format::manifest::ObjectEntry;

    fn entry(index: u64, sha: &str) -> ObjectEntry {
        ObjectEntry {
            index,
            key: format!("k/{index}"),
            role: Role::Segment,
            size: 1,
            sha256: sha.into(),
            chain: String::new(),
            content_type: None,
            derived_from: None,
            media: None,
            range: None,
            at: None,
        }
    }

    #[test]
    fn objects_pair_in_order_and_extra_or_missing_ones_mismatch() {
        let (a, b) = (entry(2, "aa"), entry(3, "bb"));
        let same = compare(&[&a, &b], &["aa".into(), "bb".into()]);
        assert!(same.iter().all(ObjectCheck::matches));
        let differ = compare(&[&a, &b], &["aa".into(), "cc".into()]);
        assert_eq!(
            differ.iter().map(ObjectCheck::matches).collect::<Vec<_>>(),
            [true, false]
        );
        let extra = compare(&[&a], &["aa".into(), "bb".into()]);
        assert_eq!(extra.len(), 2);
        assert!(!extra[1].matches() && extra[1].index.is_none());
        let missing = compare(&[&a, &b], &["aa".into()]);
        assert!(!missing[1].matches());
    }
}
