//! One recording, two copies. A recorder streams live and keeps a
//! full-quality local file that is docked later under the same recording
//! id. The docked copy is stored as a recording of its own,
//! `<id>.docked`, whose (chained) header names the live recording; once
//! both are stored, the live recording gets a signed annotation naming the
//! copy and the live gaps it covers. Both manifests list the link.
//!
//! The link is made by a background task from a pending record in the
//! spool, so a gateway restart between storing the copy and annotating the
//! live recording (or a live recording still open when the copy arrives)
//! only delays it.
//!
//! The same task records the other names a recording's bytes were docked
//! under: a recording named by its content (`f-<hex>`) holds every file
//! with those bytes, and its header names only the first file, so each
//! further file name becomes a signed `docked-as` annotation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::annotate::{self, AnnotateError};
use crate::signing::SigningKey;
use custody_format::annotation::Fact;
use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::{Manifest, Role};
use custody_store::{Store, StoreError};
use custody_verify::locate::{Found, LocateError};

use custody_format::link::{covered_gaps, media_duration};
use custody_format::manifest::Relation;

/// A link still to be made, kept in the spool until it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLink {
    pub recorder: String,
    pub live_id: String,
    pub docked_id: String,
    pub docked_manifest_key: String,
    pub original_sha256: String,
}

/// A file name to record on a stored recording, kept in the spool until it
/// is: the same bytes docked again under a name the recording does not
/// hold yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingName {
    pub recorder: String,
    pub recording_id: String,
    pub file_name: String,
    /// The device that docked the file under this name.
    pub uploader: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Annotate(#[from] AnnotateError),
    #[error("{0}")]
    Damaged(String),
}

/// What happened to a pending link.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The live recording is annotated (now or before).
    Linked { gaps_covered: Vec<usize> },
    /// The live recording is not closed and stored yet.
    Waiting,
}

/// Makes pending links, now and whenever woken.
pub struct Linker {
    dir: PathBuf,
    names_dir: PathBuf,
    store: Store,
    index: crate::catalog::Index,
    signer: Arc<SigningKey>,
    by: String,
    wake: tokio::sync::Notify,
    /// Last error per pending link, so a persistent one is logged once.
    errors: Mutex<HashMap<String, String>>,
}

impl Linker {
    pub fn new(
        spool_root: &std::path::Path,
        index: crate::catalog::Index,
        signer: Arc<SigningKey>,
        gateway: &str,
    ) -> Arc<Linker> {
        Arc::new(Linker {
            dir: spool_root.join("links"),
            names_dir: spool_root.join("names"),
            store: index.store().clone(),
            index,
            signer,
            by: format!("gateway {gateway}"),
            wake: tokio::sync::Notify::new(),
            errors: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, recorder: &str, docked_id: &str) -> PathBuf {
        // Ids are validated (no separators), so this name is unambiguous.
        self.dir.join(format!("{recorder}@{docked_id}.json"))
    }

    /// Records a link to make, durably, and wakes the task.
    pub fn queue(&self, p: &PendingLink) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let b = serde_json::to_vec_pretty(p).expect("pending link serialises");
        crate::spool::write_atomic(&self.path(&p.recorder, &p.docked_id), &b)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Records a file name to add to a recording, durably, and wakes the
    /// task. The same name queued again replaces the first request.
    pub fn queue_name(&self, p: &PendingName) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.names_dir)?;
        let b = serde_json::to_vec_pretty(p).expect("pending name serialises");
        // The name is device text: the file is named by its hash.
        let name_hash = hex::encode(custody_format::chain::sha256(p.file_name.as_bytes()));
        let file = format!(
            "{}@{}@{}.json",
            p.recorder,
            p.recording_id,
            &name_hash[..16]
        );
        crate::spool::write_atomic(&self.names_dir.join(file), &b)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Wakes the task (a live recording was closed and stored).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn pending<T: serde::de::DeserializeOwned>(dir: &std::path::Path) -> Vec<(PathBuf, T)> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let b = std::fs::read(&p).ok()?;
                Some((p, serde_json::from_slice(&b).ok()?))
            })
            .collect()
    }

    /// Runs until the process ends: every pending link is tried when woken
    /// and every 10 s.
    pub async fn run(self: Arc<Self>) {
        loop {
            for (path, p) in Self::pending::<PendingLink>(&self.dir) {
                let name = format!("{}/{}", p.recorder, p.docked_id);
                match self.make(&p).await {
                    Ok(Outcome::Linked { gaps_covered }) => {
                        tracing::info!(
                            recorder = %p.recorder,
                            live = %p.live_id,
                            docked = %p.docked_id,
                            ?gaps_covered,
                            "docked copy linked to its live recording"
                        );
                        let _ = std::fs::remove_file(&path);
                        self.errors.lock().expect("errors").remove(&name);
                    }
                    Ok(Outcome::Waiting) => {}
                    Err(e) => self.note_error(name, "docked copy not linked yet", e),
                }
            }
            for (path, p) in Self::pending::<PendingName>(&self.names_dir) {
                let name = format!("{}/{} as {:?}", p.recorder, p.recording_id, p.file_name);
                match self.record_name(&p).await {
                    Ok(true) => {
                        let _ = std::fs::remove_file(&path);
                        self.errors.lock().expect("errors").remove(&name);
                    }
                    Ok(false) => {}
                    Err(e) => self.note_error(name, "file name not recorded yet", e),
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wake.notified()).await;
        }
    }

    /// Logs a pending item's error once (until it changes).
    fn note_error(&self, name: String, what: &str, e: LinkError) {
        let msg = e.to_string();
        let mut errs = self.errors.lock().expect("errors");
        if errs.get(&name) != Some(&msg) {
            tracing::warn!(item = %name, "{what}: {msg}");
            errs.insert(name, msg);
        }
    }

    /// The stored recording `recorder/id`, checked against its locator
    /// (`None` while it is not stored: still open, or not yet archived).
    async fn locate(&self, recorder: &str, id: &str) -> Result<Option<Found>, LinkError> {
        match custody_verify::locate::stored(&self.store, recorder, id).await {
            Ok(f) => Ok(f),
            Err(LocateError::Store(e)) => Err(e.into()),
            Err(LocateError::Mismatch(why)) => Err(LinkError::Damaged(why)),
        }
    }

    /// [`Self::locate`], after completing an annotation interrupted after
    /// its checkpoint (perhaps this task's own), so that the manifest says
    /// what the recording holds.
    async fn stored(&self, recorder: &str, id: &str) -> Result<Option<Found>, LinkError> {
        let Some(found) = self.locate(recorder, id).await? else {
            return Ok(None);
        };
        if annotate::repair(
            &self.store,
            &self.index,
            &self.signer,
            &found.locator.manifest_key,
        )
        .await?
        {
            return self.locate(recorder, id).await;
        }
        Ok(Some(found))
    }

    /// Annotates the live recording with its docked copy, unless it already
    /// names it.
    pub async fn make(&self, p: &PendingLink) -> Result<Outcome, LinkError> {
        // Still open (a live recording's locator is written at its close).
        let Some(Found {
            locator,
            manifest: live,
        }) = self.stored(&p.recorder, &p.live_id).await?
        else {
            return Ok(Outcome::Waiting);
        };
        if let Some(l) = live
            .links
            .iter()
            .find(|l| l.relation == Relation::HasCopy && l.recording_id == p.docked_id)
        {
            return Ok(Outcome::Linked {
                gaps_covered: l.gaps_filled.clone(),
            });
        }
        let docked: Manifest = serde_json::from_slice(
            &self
                .store
                .get_bytes(&p.docked_manifest_key, MAX_DOC_BYTES)
                .await?,
        )
        .map_err(|e| LinkError::Damaged(format!("docked copy's manifest: {e}")))?;
        let gaps = live.live.as_ref().map(|l| l.gaps.as_slice()).unwrap_or(&[]);
        let gaps_covered = media_duration(&docked)
            .map(|d| covered_gaps(gaps, d))
            .unwrap_or_default();
        annotate::annotate(
            &self.store,
            &self.index,
            &self.signer,
            &locator.manifest_key,
            Fact::DockedCopy {
                manifest_key: p.docked_manifest_key.clone(),
                recording_id: p.docked_id.clone(),
                original_sha256: p.original_sha256.clone(),
                gaps_covered: gaps_covered.clone(),
            },
            &self.by,
            Some("the recorder's full-quality copy of this recording was docked".into()),
        )
        .await?;
        Ok(Outcome::Linked { gaps_covered })
    }

    /// Every file name a stored recording holds: its header's, then those
    /// of its `docked-as` annotations.
    async fn file_names(&self, m: &Manifest) -> Result<Vec<String>, LinkError> {
        let mut names = Vec::new();
        for o in &m.objects {
            let name = match o.role {
                Role::Header => {
                    let b = self.store.get_bytes(&o.key, MAX_DOC_BYTES).await?;
                    serde_json::from_slice::<custody_format::manifest::HeaderDoc>(&b)
                        .map_err(|e| LinkError::Damaged(format!("{}: {e}", o.key)))?
                        .meta
                        .file_name
                }
                Role::Annotation => {
                    let b = self.store.get_bytes(&o.key, MAX_DOC_BYTES).await?;
                    match serde_json::from_slice::<annotate::Annotation>(&b) {
                        Ok(annotate::Annotation {
                            fact: Fact::DockedAs { file_name, .. },
                            ..
                        }) => Some(file_name),
                        _ => None,
                    }
                }
                _ => None,
            };
            names.extend(name);
        }
        Ok(names)
    }

    /// Appends the file name to the stored recording as a `docked-as`
    /// annotation, unless the recording already holds that name. `false`
    /// while the recording is not stored yet.
    pub async fn record_name(&self, p: &PendingName) -> Result<bool, LinkError> {
        let Some(Found {
            locator,
            manifest: m,
        }) = self.stored(&p.recorder, &p.recording_id).await?
        else {
            return Ok(false);
        };
        if !self.file_names(&m).await?.contains(&p.file_name) {
            annotate::annotate(
                &self.store,
                &self.index,
                &self.signer,
                &locator.manifest_key,
                Fact::DockedAs {
                    file_name: p.file_name.clone(),
                    uploader: p.uploader.clone(),
                },
                &self.by,
                Some("the same bytes were docked again under another file name".into()),
            )
            .await?;
            tracing::info!(
                recorder = %p.recorder,
                id = %p.recording_id,
                file_name = %p.file_name,
                "another file name recorded for a docked recording"
            );
        }
        Ok(true)
    }
}
