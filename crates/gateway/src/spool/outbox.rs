//! Small objects (usage records, index entries) waiting for storage. Each is
//! one file `<time>-<seq>.item` holding `key \n body`, created atomically;
//! a drain task writes them to the store in order and deletes each only
//! after the store has it. S3 outages therefore delay, never lose, them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::write_atomic;
use custody_store::Store;

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    seq: Arc<AtomicU64>,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Outbox {
            dir,
            seq: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Durably queues `body` for `key`. Blocking (fsync); call from a
    /// blocking context or accept the short stall.
    pub fn put(&self, key: &str, body: &[u8]) -> std::io::Result<()> {
        custody_store::check_key(key)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{now:020}-{seq:08}.item");
        let mut content = Vec::with_capacity(key.len() + 1 + body.len());
        content.extend_from_slice(key.as_bytes());
        content.push(b'\n');
        content.extend_from_slice(body);
        write_atomic(&self.dir.join(name), &content)?;
        self.wake.notify_one();
        Ok(())
    }

    fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "item"))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Number of items not yet in storage.
    pub fn len(&self) -> usize {
        self.pending().map(|v| v.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes queued items to `store` forever, retrying with backoff.
    pub async fn drain(self, store: Store) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let items = match self.pending() {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!("outbox unreadable: {e}");
                    Vec::new()
                }
            };
            let mut failed = false;
            for path in &items {
                let content = match std::fs::read(path) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(path = %path.display(), "outbox item unreadable: {e}");
                        continue;
                    }
                };
                let Some(nl) = content.iter().position(|&b| b == b'\n') else {
                    tracing::error!(path = %path.display(), "outbox item has no key; left in place");
                    continue;
                };
                let key = String::from_utf8_lossy(&content[..nl]).into_owned();
                let body = Bytes::copy_from_slice(&content[nl + 1..]);
                let h = custody_format::chain::sha256(&body);
                match store.put_bytes(&key, body, &h).await {
                    Ok(()) => {
                        let _ = std::fs::remove_file(path);
                        backoff = Duration::from_millis(200);
                    }
                    Err(e) => {
                        tracing::warn!(key, "outbox: store unavailable, will retry: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            } else if items.is_empty() {
                let _ = tokio::time::timeout(Duration::from_secs(5), self.wake.notified()).await;
            }
        }
    }
}
