//! Live recordings: recorders streaming over QUIC, remuxed into CMAF parts
//! and segments as they arrive, chained segment by segment into an
//! incremental journal in storage, closed by the recorder or by timeout.

pub mod feed;
pub mod from_storage;
pub mod journal;
pub mod recording;
mod to_storage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use recording::{LiveOptions, LiveRecording};

use crate::spool::Spool;
use crate::usage::UsageLog;
use custody_format::manifest::HeaderDoc;
use custody_proto::RecordingState;
use custody_store::Store;

type Key = (String, String);

/// Every live recording the gateway holds open (or is still uploading).
pub struct Live {
    recordings: Mutex<HashMap<Key, Arc<LiveRecording>>>,
    streams: Mutex<HashMap<String, usize>>,
    spool: Spool,
    store: Store,
    usage: UsageLog,
    catalog: Arc<crate::catalog::Catalog>,
    pub opts: LiveOptions,
    /// Runs each recording's upload and the watchdog.
    tasks: Arc<crate::tasks::Tasks>,
    /// Cluster mode: a recording is written to storage only under its
    /// lease.
    pub leases: Option<Arc<crate::lease::Leases>>,
}

/// Counts a device's live stream while it lasts.
pub struct StreamSlot {
    live: Arc<Live>,
    device: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = self.live.streams.lock().expect("streams");
        if let Some(n) = s.get_mut(&self.device) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Live {
    /// Starts the registry: reopens live recordings left in the spool by a
    /// previous run (their uploads resume; open ones wait for their
    /// recorder until the close timeout), and the close watchdog.
    pub fn start(
        spool: Spool,
        store: Store,
        usage: UsageLog,
        catalog: Arc<crate::catalog::Catalog>,
        opts: LiveOptions,
        tasks: Arc<crate::tasks::Tasks>,
        leases: Option<Arc<crate::lease::Leases>>,
    ) -> std::io::Result<Arc<Live>> {
        let live = Arc::new(Live {
            recordings: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            spool: spool.clone(),
            store,
            usage,
            catalog,
            opts,
            tasks,
            leases,
        });
        for (recorder, id, st) in spool.scan()? {
            let entry = spool.entry(&recorder, &id);
            let Some(ls) = LiveRecording::load_state(&entry)? else {
                continue;
            };
            if ls.archived || st.status == RecordingState::Archived {
                continue;
            }
            let header: HeaderDoc = match entry.read_header().and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(recorder, id, "live recording header unreadable: {e}");
                    continue;
                }
            };
            let rec = LiveRecording::open(
                &recorder,
                &id,
                entry,
                st.prefix.clone(),
                header,
                live.opts.clone(),
            )?;
            rec.set_idle_since(recording::age(&ls.last_byte_at));
            tracing::info!(
                recorder,
                id,
                closed = ls.closed.is_some(),
                "live recording resumed from the spool"
            );
            live.adopt(rec.clone(), None);
            if ls.closed.is_none() {
                rec.ensure_running();
            }
        }
        let l2 = live.clone();
        live.tasks
            .spawn("live watchdog", async move { l2.watchdog().await });
        Ok(live)
    }

    /// Every recording the gateway holds (open, or closed and uploading).
    pub fn all(&self) -> Vec<Arc<LiveRecording>> {
        self.recordings
            .lock()
            .expect("recordings")
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, recorder: &str, id: &str) -> Option<Arc<LiveRecording>> {
        self.recordings
            .lock()
            .expect("recordings")
            .get(&(recorder.to_string(), id.to_string()))
            .cloned()
    }

    /// Registers a recording and starts its uploader. In cluster mode the
    /// uploader runs under the recording's `lease` (taken first if not
    /// given), and stops if the lease is lost; the spool keeps what it had
    /// not written.
    pub fn adopt(self: &Arc<Self>, rec: Arc<LiveRecording>, lease: Option<crate::lease::Lease>) {
        self.recordings
            .lock()
            .expect("recordings")
            .insert((rec.recorder.clone(), rec.id.clone()), rec.clone());
        if lease.is_some() || self.leases.is_none() {
            rec.set_held(true);
        }
        let live = self.clone();
        self.tasks.spawn("live upload", async move {
            let mut given = lease;
            loop {
                let lease = match (given.take(), &live.leases) {
                    (Some(l), _) => Some(l),
                    (None, Some(leases)) => match live.lease_for(leases, &rec).await {
                        Some(l) => {
                            rec.set_held(true);
                            Some(l)
                        }
                        None => {
                            live.discard(&rec).await;
                            return;
                        }
                    },
                    (None, None) => None,
                };
                let upload = to_storage::run(
                    live.store.clone(),
                    rec.clone(),
                    live.usage.clone(),
                    live.catalog.clone(),
                );
                if let Some(l) = &lease {
                    let lost = l.lost();
                    tokio::select! {
                        _ = upload => {}
                        _ = lost.cancelled() => {
                            // Taken over by another gateway, or expired while
                            // the database was out of reach: asked for again
                            // (and this copy discarded if another gateway
                            // continued the recording meanwhile).
                            rec.set_held(false);
                            tracing::error!(recorder = %rec.recorder, id = %rec.id, "live upload stopped: the recording's lease was lost; the spool keeps it");
                            continue;
                        }
                    }
                } else {
                    upload.await;
                }
                // Stored whole: the cluster forgets where it was being written.
                if let Some(leases) = &live.leases
                    && let Err(e) = leases
                        .db()
                        .live_remove(&rec.recorder, &rec.id, rec.epoch())
                        .await
                {
                    tracing::warn!(recorder = %rec.recorder, id = %rec.id, "live recording stored, its cluster row not removed: {e}");
                }
                drop(lease);
                live.recordings
                    .lock()
                    .expect("recordings")
                    .remove(&(rec.recorder.clone(), rec.id.clone()));
                return;
            }
        });
    }

    /// Waits for the lease of a recording this gateway reopened from its
    /// spool (held by another gateway: asked again every lease period).
    /// `None`: this spool's copy is no longer the recording's — another
    /// gateway continued it from storage meanwhile (its epoch is not the
    /// cluster's).
    async fn lease_for(
        &self,
        leases: &Arc<crate::lease::Leases>,
        rec: &LiveRecording,
    ) -> Option<crate::lease::Lease> {
        let name = crate::lease::Leases::live_name(&rec.recorder, &rec.id);
        let mut said = String::new();
        loop {
            // Taken over if it expired: a copy another gateway continued is
            // then found out and discarded rather than waited on for ever.
            let taken = match leases.take_live(&name).await {
                Ok(l) => leases
                    .db()
                    .live_get(&rec.recorder, &rec.id)
                    .await
                    .map(|row| (l, row))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match taken {
                Ok((l, row)) => {
                    let epoch = rec.epoch();
                    let current = match &row {
                        Some(row) => row.epoch == epoch,
                        // Stored whole by another gateway, or a spool from
                        // before epochs.
                        None => epoch == 0,
                    };
                    if current {
                        return Some(l);
                    }
                    tracing::warn!(recorder = %rec.recorder, id = %rec.id, epoch, cluster = ?row.map(|r| r.epoch), "live recording in the spool was continued by another gateway: this copy is discarded (nothing of it beyond storage was acknowledged)");
                    return None;
                }
                Err(msg) => {
                    if msg != said {
                        tracing::error!(lease = %name, "live recording in the spool not uploaded yet: its lease is {msg}");
                        said = msg;
                    }
                }
            }
            tokio::time::sleep(leases.ttl()).await;
        }
    }

    /// Drops a spool copy another gateway continued: its pipeline stops,
    /// no stream may attach, and its spool entry goes.
    async fn discard(&self, rec: &Arc<LiveRecording>) {
        self.recordings
            .lock()
            .expect("recordings")
            .remove(&(rec.recorder.clone(), rec.id.clone()));
        let r2 = rec.clone();
        let _ = tokio::task::spawn_blocking(move || {
            r2.discard();
            std::fs::remove_dir_all(&r2.entry.dir)
        })
        .await;
    }

    /// Takes one of a device's live stream slots, or `None` at the limit.
    pub fn stream_slot(self: &Arc<Self>, device: &str, max: usize) -> Option<StreamSlot> {
        let mut s = self.streams.lock().expect("streams");
        let n = s.entry(device.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            live: self.clone(),
            device: device.to_string(),
        })
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Closes recordings whose recorder has been silent, with no stream,
    /// for longer than the close timeout.
    async fn watchdog(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for r in self.all() {
                r.tick();
            }
            let due: Vec<Arc<LiveRecording>> = self
                .recordings
                .lock()
                .expect("recordings")
                .values()
                .filter(|r| r.idle_for().is_some_and(|d| d >= self.opts.close_after))
                .cloned()
                .collect();
            for r in due {
                let r2 = r.clone();
                match tokio::task::spawn_blocking(move || {
                    r2.close(custody_format::manifest::ClosedBy::Timeout)
                })
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(id = %r.id, "closing by timeout failed: {e}"),
                    Err(e) => tracing::error!(id = %r.id, "closing by timeout panicked: {e}"),
                }
            }
        }
    }

    /// Close-to-storage latencies of every live recording so far, for the
    /// load benchmark: (count, p50, p99).
    pub fn latency_summary(&self) -> Option<(usize, Duration, Duration)> {
        summary(&self.opts.latencies)
    }

    /// Ingest → playable latencies of live parts so far: (count, p50, p99).
    pub fn view_latency_summary(&self) -> Option<(usize, Duration, Duration)> {
        summary(&self.opts.view_latencies)
    }
}

/// (count, p50, p99) of a list of latencies.
fn summary(l: &Mutex<Vec<Duration>>) -> Option<(usize, Duration, Duration)> {
    let mut all: Vec<Duration> = l.lock().expect("latencies").clone();
    if all.is_empty() {
        return None;
    }
    all.sort();
    let p = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    Some((all.len(), p(0.5), p(0.99)))
}
