//! Provisional storage deadlines assessed again when the holiday schedule
//! they lacked arrives. At gateway start, and whenever the files in
//! `[policy] calendar_dir` change while it runs (checked every
//! [`POLL`]), every stored recording whose deadline is `provisional` is
//! assessed again with the calendar now in force; where the answer no
//! longer lacks the same years, the new deadline is appended to the
//! recording as a signed `deadline` annotation (`crate::annotate`), which
//! also rewrites its manifest (with a new final checkpoint) and its
//! catalog line, where `custody list` and the compliance report read it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Policy;
use super::calendar::Calendar;
use crate::annotate::{self, AnnotateError};
use crate::signing::SigningKey;
use custody_format::annotation::Fact;
use custody_format::deadline::DeadlineStatus;
use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::Manifest;
use custody_store::{Store, StoreError};

/// How often `calendar_dir` is read again.
pub const POLL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("manifest is not valid: {0}")]
    Manifest(String),
    #[error("annotation: {0}")]
    Annotate(#[from] AnnotateError),
}

/// Keeps deadlines in step with the calendar.
pub struct Recompute {
    policy: Policy,
    dir: Option<PathBuf>,
    store: Store,
    index: crate::catalog::Index,
    signer: Arc<SigningKey>,
    /// `gateway <id>`: who the annotations are by.
    by: String,
}

impl Recompute {
    pub fn new(
        policy: Policy,
        dir: Option<PathBuf>,
        store: Store,
        index: crate::catalog::Index,
        signer: Arc<SigningKey>,
        gateway: &str,
    ) -> Arc<Recompute> {
        Arc::new(Recompute {
            policy,
            dir,
            store,
            index,
            signer,
            by: format!("gateway {gateway}"),
        })
    }

    /// Reassesses at start, then watches `calendar_dir` (if configured).
    /// After a change it reassesses twice: at once, and one poll later for
    /// recordings whose manifest was being built with the old calendar.
    pub async fn run(self: Arc<Self>) {
        self.recompute_all().await;
        let Some(dir) = self.dir.clone() else { return };
        let mut last_error = None;
        let mut again = false;
        loop {
            tokio::time::sleep(POLL).await;
            if self.reload(&dir, &mut last_error).await {
                self.recompute_all().await;
                again = true;
            } else if std::mem::take(&mut again) {
                self.recompute_all().await;
            }
        }
    }

    /// Reads `calendar_dir` again; puts a changed, valid calendar in force.
    /// An invalid one is logged (once per distinct error) and the calendar
    /// in force is kept.
    async fn reload(&self, dir: &Path, last_error: &mut Option<String>) -> bool {
        let d = dir.to_path_buf();
        let loaded = match tokio::task::spawn_blocking(move || Calendar::with_dir(&d)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("reading the holiday calendar: {e}");
                return false;
            }
        };
        let current = self.policy.calendar();
        match loaded {
            Ok(c) if c.version() == current.version() => {
                *last_error = None;
                false
            }
            Ok(c) => {
                tracing::info!(
                    from = current.version(),
                    to = c.version(),
                    "holiday calendar changed: deadlines use it from now on"
                );
                self.policy.set_calendar(c);
                *last_error = None;
                true
            }
            Err(e) => {
                let m = e.to_string();
                if last_error.as_deref() != Some(m.as_str()) {
                    tracing::error!("policy: {m}; deadlines keep calendar {}", current.version());
                    *last_error = Some(m);
                }
                false
            }
        }
    }

    /// Assesses every stored recording whose deadline is provisional again
    /// (found through the catalog); returns how many got a new deadline.
    pub async fn recompute_all(&self) -> usize {
        let entries = match self
            .index
            .with_deadline_status(DeadlineStatus::Provisional)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("provisional deadlines not assessed again: catalog: {e}");
                return 0;
            }
        };
        let mut n = 0;
        for e in &entries {
            match self.recompute_one(&e.manifest_key).await {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(err) => tracing::warn!(
                    manifest_key = %e.manifest_key,
                    "provisional deadline not assessed again: {err}"
                ),
            }
        }
        if n > 0 {
            tracing::info!(
                recordings = n,
                calendar = self.policy.calendar().version(),
                "provisional deadlines assessed again"
            );
        }
        n
    }

    /// One recording: a signed `deadline` annotation when the calendar now
    /// has (some of) the years its provisional deadline lacked.
    async fn recompute_one(&self, manifest_key: &str) -> Result<bool, RecomputeError> {
        let m: Manifest =
            serde_json::from_slice(&self.store.get_bytes(manifest_key, MAX_DOC_BYTES).await?)
                .map_err(|e| RecomputeError::Manifest(e.to_string()))?;
        let Some(old) = m
            .deadline
            .filter(|d| d.status == DeadlineStatus::Provisional)
        else {
            return Ok(false);
        };
        let Some(new) = super::deadline::reassess(&self.policy, &old) else {
            return Ok(false);
        };
        if new.provisional_years() == old.provisional_years() {
            return Ok(false);
        }
        let years: Vec<String> = old
            .provisional_years()
            .iter()
            .filter(|y| !new.provisional_years().contains(y))
            .map(i32::to_string)
            .collect();
        let reason = format!(
            "assessed again: the official holiday schedule for {} is now in calendar {}; the deadline was provisional (due {})",
            years.join(", "),
            self.policy.calendar().version(),
            old.deadline.as_ref().map_or("-", |d| d.due.as_str()),
        );
        annotate::annotate(
            &self.store,
            &self.index,
            &self.signer,
            manifest_key,
            Fact::Deadline(new),
            &self.by,
            Some(reason),
        )
        .await?;
        Ok(true)
    }
}
