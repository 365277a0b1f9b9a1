//! What every part of a running gateway shares: configuration, ledger,
//! spool, store, the archiver and live recordings, the signing key — and
//! which stream owns each recording being received. Built once by
//! [`crate::gateway::start`]; sessions and the command center hold it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::UtcOffset;
use tokio_util::sync::CancellationToken;

use crate::archive::Archiver;
use crate::config::Config;
use crate::ledger::LedgerFile;
use crate::spool::Spool;
use crate::usage::UsageLog;
use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_store::{Store, layout};

pub struct Gateway {
    pub cfg: Config,
    pub ledger: LedgerFile,
    pub spool: Spool,
    /// Room left on the spool's filesystem: no new bytes below the reserve.
    pub space: Arc<crate::spool::space::SpoolSpace>,
    /// What `/metrics` shows.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub store: Store,
    pub usage: UsageLog,
    pub archiver: Archiver,
    /// Appends what is learned about stored recordings later: docked-copy
    /// links and further file names.
    pub linker: Arc<crate::link::Linker>,
    /// Keeps the catalog's lines current (in storage, or the cluster's
    /// database).
    pub catalog: Arc<crate::catalog::Catalog>,
    /// The cluster's database (`[cluster] database`), if any.
    pub db: Option<custody_db::Db>,
    /// Cluster mode: docked uploads staged in storage before they are
    /// acknowledged.
    pub staging: Option<Arc<crate::staging::Staging>>,
    /// Single mode: docked originals sent to storage while they arrive.
    pub ahead: Option<Arc<crate::upload_ahead::UploadsAhead>>,
    /// Pipelines and options for deriving CMAF; `None` when turned off.
    pub media: Option<custody_media::derive::Media>,
    pub live: Arc<crate::live::Live>,
    /// Signs checkpoints; its public key goes into every header.
    pub signer: Arc<crate::signing::SigningKey>,
    /// Whether storage enforces retention (probed at start).
    pub retention: custody_format::retention::Enforcement,
    pub offset: UtcOffset,
    pub(crate) busy: Mutex<HashMap<(String, String), Owner>>,
    /// This process's exclusive hold on the spool, for its whole life.
    pub(crate) spool_lock: crate::spool::lock::SpoolLock,
}

/// The stream currently receiving a recording.
pub(crate) struct Owner {
    device: String,
    superseded: CancellationToken,
    serial: u64,
}

/// Held while a stream owns a recording; released on drop.
pub struct RecordingLock {
    gw: Arc<Gateway>,
    key: (String, String),
    serial: u64,
    /// Cancelled when a newer stream from the same device claims the
    /// recording (the device reconnected; this stream's link is dead).
    pub superseded: CancellationToken,
}

impl Drop for RecordingLock {
    fn drop(&mut self) {
        let mut busy = self.gw.busy.lock().expect("busy lock");
        if busy.get(&self.key).is_some_and(|o| o.serial == self.serial) {
            busy.remove(&self.key);
        }
    }
}

impl Gateway {
    /// Claims a recording for one stream. If a stream of the same device
    /// holds it — typically one whose link died without the gateway
    /// noticing yet — that stream is told to stop, and the claim waits for
    /// it to make its bytes durable and let go. A stream of another device
    /// is never displaced: `None`.
    pub async fn claim_recording(
        self: &Arc<Self>,
        recorder: &str,
        id: &str,
        device: &str,
    ) -> Option<RecordingLock> {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let key = (recorder.to_string(), id.to_string());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            {
                let mut busy = self.busy.lock().expect("busy lock");
                match busy.get(&key) {
                    None => {
                        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let superseded = CancellationToken::new();
                        busy.insert(
                            key.clone(),
                            Owner {
                                device: device.to_string(),
                                superseded: superseded.clone(),
                                serial,
                            },
                        );
                        return Some(RecordingLock {
                            gw: self.clone(),
                            key,
                            serial,
                            superseded,
                        });
                    }
                    Some(o) if o.device == device => o.superseded.cancel(),
                    Some(_) => return None,
                }
            }
            if tokio::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the gateway can take bytes now (`/readyz`): the spool above
    /// its reserve and still locked by this process. `Err` is a one-line
    /// reason.
    pub fn readiness(&self) -> Result<(), String> {
        self.space
            .check()
            .map_err(|e| format!("spool {}: {e}", self.spool.root().display()))?;
        self.spool_lock.check_held()
    }

    /// Looks a recording up in storage by its locator (used when the spool
    /// no longer has it). Storage errors count as "not found here".
    pub async fn find_archived(&self, recorder: &str, id: &str) -> Option<Locator> {
        let key = layout::locator_key(recorder, id);
        match self.store.get_bytes(&key, MAX_DOC_BYTES).await {
            // A locator that leads elsewhere is not this recording's.
            Ok(b) => serde_json::from_slice::<Locator>(&b).ok().filter(|l| {
                custody_verify::locate::check_locator(l, recorder, id)
                    .inspect_err(|why| tracing::warn!(key, "{why}"))
                    .is_ok()
            }),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(key, "locator lookup failed: {e}");
                None
            }
        }
    }
}
