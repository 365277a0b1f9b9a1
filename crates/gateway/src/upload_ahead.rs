//! Docked originals sent to storage while they arrive (S3 storage, single
//! mode): each part of the store's part size goes as soon as the spool
//! writer has made it durable, so that when the device's `finish` matches,
//! the archiver only sends the last part and completes the upload — the
//! dock then takes about as long as the slower of the QUIC transfer and
//! the S3 upload, not their sum.
//!
//! Nothing here acknowledges anything: the device is told "stored" for
//! bytes durable in the spool, as before. The object exists only once the
//! archiver completes the upload, after checking that every byte sent
//! hashes to the recording's SHA-256 (`custody_store::s3::PartUpload`).
//! The open upload is named in the spool entry's multipart journal, so an
//! upload orphaned by a crash is aborted by the next attempt; in memory it
//! survives a device's reconnection to the same gateway process. When
//! sending ahead fails (storage down), the upload is given up and the
//! archiver sends the whole file afterwards, as it did before.
//!
//! Cluster mode does not use this: there, parts are staged under the
//! upload's lease (`crate::staging`) so another gateway can take over.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use custody_store::Store;
use custody_store::s3::PartUpload;

type Key = (String, String);
type Slot = Arc<tokio::sync::Mutex<Ahead>>;

/// One recording's upload sent ahead; its lock is held by the stream
/// sending its parts, and by the archiver taking it.
#[derive(Default)]
struct Ahead {
    upload: Option<PartUpload>,
    /// The archiver took it (or it was discarded): a sender that got the
    /// lock after that has nothing to do.
    taken: bool,
}

/// The uploads sent ahead, one per docked recording being received.
pub struct UploadsAhead {
    store: Store,
    open: Mutex<HashMap<Key, Slot>>,
}

/// What to send ahead: a spool entry's original.
pub struct Original {
    pub recorder: String,
    pub id: String,
    /// Its key in storage (the manifest's object 1).
    pub key: String,
    /// The spool entry's multipart journal.
    pub journal: PathBuf,
    /// The spool entry's data file.
    pub data: PathBuf,
}

impl UploadsAhead {
    pub fn new(store: Store) -> Arc<UploadsAhead> {
        Arc::new(UploadsAhead {
            store,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn slot(&self, recorder: &str, id: &str) -> Slot {
        self.open
            .lock()
            .expect("uploads ahead")
            .entry((recorder.to_string(), id.to_string()))
            .or_default()
            .clone()
    }

    /// Sends `o`'s parts as `durable` passes their ends, continuing an
    /// upload an earlier stream of the same recording left open. Ends after
    /// the writer does (its watch closes), with every whole part it made
    /// durable sent. An earlier stream's sender (it ends with its writer)
    /// finishes first; this one goes on from where it left off.
    pub fn follow(self: &Arc<Self>, o: Original, durable: watch::Receiver<u64>) {
        let slot = self.slot(&o.recorder, &o.id);
        let me = self.clone();
        tokio::spawn(async move {
            let mut guard = slot.lock_owned().await;
            if !guard.taken {
                me.send_ahead(&mut guard.upload, o, durable).await
            }
        });
    }

    async fn send_ahead(
        &self,
        guard: &mut Option<PartUpload>,
        o: Original,
        mut durable: watch::Receiver<u64>,
    ) {
        let Some(part) = self.store.upload_part_size() else {
            return;
        };
        if guard.as_ref().is_some_and(|u| u.key() != o.key) {
            // Another original under this id (a new attempt after a
            // quarantine): the old upload is of no use.
            if let Some(u) = guard.take() {
                u.abort().await;
            }
        }
        loop {
            let d = *durable.borrow_and_update();
            let start = guard.as_ref().map_or(0, PartUpload::sent);
            if d >= start + part {
                // Opened only once a whole part is durable: a file of one
                // part is put in one request at archive, as before.
                if guard.is_none() {
                    match self.store.begin_upload(&o.key, &o.journal).await {
                        Ok(Some(u)) => {
                            tracing::info!(recorder = %o.recorder, id = %o.id, key = %o.key, "sending the original to storage while it arrives");
                            *guard = Some(u)
                        }
                        Ok(None) => return,
                        Err(e) => return abandon(guard, &o, &e).await,
                    }
                }
                let u = guard.as_mut().expect("an open upload");
                let data = o.data.clone();
                let read = tokio::task::spawn_blocking(move || {
                    crate::spool::read_range(&data, start, part)
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
                let sent = match read {
                    Ok(body) => u.send(body).await,
                    Err(e) => Err(custody_store::StoreError::Backend {
                        op: "read spool",
                        key: o.key.clone(),
                        message: e.to_string(),
                    }),
                };
                if let Err(e) = sent {
                    return abandon(guard, &o, &e).await;
                }
                continue;
            }
            if durable.changed().await.is_err() {
                // The writer ended; the last whole part it made durable may
                // have come with its final value.
                if *durable.borrow() >= guard.as_ref().map_or(0, PartUpload::sent) + part {
                    continue;
                }
                // Every whole part is on its way; wait for them here so a
                // failure gives the upload up now rather than at archive.
                if let Some(u) = guard.as_mut()
                    && let Err(e) = u.flush().await
                {
                    abandon(guard, &o, &e).await;
                }
                return;
            }
        }
    }

    /// The upload sent ahead for `recorder/id`'s original at `key`, once
    /// its sender has finished; `None` if there is none (the archiver
    /// then sends the whole file).
    pub async fn take(&self, recorder: &str, id: &str, key: &str) -> Option<PartUpload> {
        let slot = {
            let mut open = self.open.lock().expect("uploads ahead");
            open.remove(&(recorder.to_string(), id.to_string()))?
        };
        let u = {
            let mut a = slot.lock().await;
            a.taken = true;
            a.upload.take()?
        };
        if u.key() == key {
            Some(u)
        } else {
            u.abort().await;
            None
        }
    }

    /// Gives up the upload sent ahead for `recorder/id` (its bytes were
    /// quarantined): nothing of it is stored.
    pub async fn discard(&self, recorder: &str, id: &str) {
        let slot = {
            let mut open = self.open.lock().expect("uploads ahead");
            open.remove(&(recorder.to_string(), id.to_string()))
        };
        if let Some(slot) = slot {
            let u = {
                let mut a = slot.lock().await;
                a.taken = true;
                a.upload.take()
            };
            if let Some(u) = u {
                u.abort().await;
            }
        }
    }
}

/// Sending ahead failed: the upload (if one is open) is aborted, and the
/// archiver sends the whole file once it is complete.
async fn abandon(guard: &mut Option<PartUpload>, o: &Original, e: &(dyn std::fmt::Display + Sync)) {
    tracing::warn!(recorder = %o.recorder, id = %o.id, "sending the original ahead stopped; it is sent whole once complete: {e}");
    if let Some(u) = guard.take() {
        u.abort().await;
    }
}
