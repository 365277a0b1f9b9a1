//! The catalog: one line per stored recording — who, what, when, which
//! case, how it stands ([`Entry`]) — that `custody list`, the wall's search
//! and the compliance report read instead of opening every manifest.
//!
//! Where the lines are kept is the [`Index`]: a gateway alone keeps them in
//! day shards in storage, `index/catalog/<yyyy>/<mm>/<dd>.jsonl` (the day
//! of the recording's storage prefix), updated by read-modify-write of one
//! shard — so one gateway writes a bucket's catalog at a time (S3 offers no
//! conditional writes here). In cluster mode the lines are rows of the
//! shared PostgreSQL database, which any number of gateways update.
//!
//! Either way it is derived data: every line comes from a manifest, and
//! [`Index::rebuild`] makes the whole catalog again from the locators and
//! manifests in storage. A failed update is remembered in the spool and
//! retried ([`Catalog`]), so a recording is never left out for long.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};

use custody_db::{Db, DbError};
pub use custody_format::catalog::{Entry, Filter, entry_from};
use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_format::manifest::{Manifest, Role};
use custody_store::{Store, StoreError};

/// Why the catalog could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Where the catalog's lines are kept: day shards in the store, or the
/// cluster's database. Manifests are read from the store either way.
#[derive(Debug, Clone)]
pub struct Index {
    store: Store,
    db: Option<Db>,
}

impl Index {
    pub fn new(store: Store, db: Option<Db>) -> Index {
        Index { store, db }
    }

    /// The store of `cfg`, and its cluster database when one is set.
    pub async fn open(cfg: &crate::config::Config) -> Result<Index, IndexError> {
        let store = Store::open(&cfg.store).await?;
        let db = match &cfg.cluster.database {
            Some(url) => Some(Db::connect(url).await?),
            None => None,
        };
        Ok(Index { store, db })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cluster's database, in cluster mode.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// Writes the line of the recording at `manifest_key`, now (or removes
    /// it: no manifest any more means the recording was deleted).
    pub async fn update(&self, manifest_key: &str) -> Result<(), IndexError> {
        match &self.db {
            None => Ok(update_shard(&self.store, manifest_key).await?),
            Some(db) => match entry_in_storage(&self.store, manifest_key).await? {
                Some(e) => Ok(db.catalog_put(&e).await?),
                None => Ok(db.catalog_remove(manifest_key).await?),
            },
        }
    }

    /// Entries matching `f`, newest first.
    pub async fn search(&self, f: &Filter) -> Result<Vec<Entry>, IndexError> {
        match &self.db {
            None => Ok(search(&self.store, f).await?),
            Some(db) => Ok(db.catalog_search(f).await?),
        }
    }

    /// Every line.
    pub async fn all(&self) -> Result<Vec<Entry>, IndexError> {
        match &self.db {
            None => Ok(load(&self.store, None, None).await?),
            Some(db) => Ok(db.catalog_search(&Filter::default()).await?),
        }
    }

    /// The lines whose deadline has `status`.
    pub async fn with_deadline_status(
        &self,
        status: custody_format::deadline::DeadlineStatus,
    ) -> Result<Vec<Entry>, IndexError> {
        match &self.db {
            None => Ok(with_deadline_status(&self.store, status).await?),
            Some(db) => Ok(db.catalog_with_deadline_status(status.as_str()).await?),
        }
    }

    /// Makes the whole catalog again from the locators and manifests in
    /// storage; returns how many recordings it lists.
    pub async fn rebuild(&self) -> Result<usize, IndexError> {
        let entries = entries_in_storage(&self.store).await?;
        let n = entries.len();
        match &self.db {
            None => write_shards(&self.store, entries).await?,
            Some(db) => db.catalog_replace(&entries).await?,
        }
        Ok(n)
    }
}

pub const CATALOG_PREFIX: &str = "index/catalog/";
/// Reads in flight when loading or rebuilding.
const PARALLEL: usize = 16;

/// The shard of a recording: the day in its storage prefix
/// (`records/<category>/<yyyy>/<mm>/<dd>/…`).
pub fn shard_key(manifest_key: &str) -> Option<String> {
    let parts: Vec<&str> = manifest_key.split('/').collect();
    let (y, m, d) = (parts.get(2)?, parts.get(3)?, parts.get(4)?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (parts.first() == Some(&"records") && digits(y, 4) && digits(m, 2) && digits(d, 2))
        .then(|| format!("{CATALOG_PREFIX}{y}/{m}/{d}.jsonl"))
}

/// The day (`yyyymmdd`) a shard covers.
fn shard_day(key: &str) -> Option<String> {
    let rest = key.strip_prefix(CATALOG_PREFIX)?.strip_suffix(".jsonl")?;
    let d: String = rest.chars().filter(|c| *c != '/').collect();
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

fn parse_shard(b: &[u8]) -> Vec<Entry> {
    b.split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

fn shard_bytes(entries: &[Entry]) -> Bytes {
    let mut out = Vec::with_capacity(entries.len() * 512);
    for e in entries {
        serde_json::to_writer(&mut out, e).expect("entry serialises");
        out.push(b'\n');
    }
    out.into()
}

async fn put_shard(store: &Store, key: &str, entries: &[Entry]) -> Result<(), StoreError> {
    let b = shard_bytes(entries);
    let h = custody_format::chain::sha256(&b);
    store.put_bytes(key, b, &h).await
}

/// Reads the catalog's shards for the days `from..=to` (`yyyymmdd`, either
/// open), many at a time.
async fn load(
    store: &Store,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Vec<Entry>, StoreError> {
    load_lines(store, from, to, None).await
}

/// [`load`], parsing only the lines that contain `needle` (a quick
/// byte search before the JSON parse, which is most of the cost).
async fn load_lines(
    store: &Store,
    from: Option<&str>,
    to: Option<&str>,
    needle: Option<&[u8]>,
) -> Result<Vec<Entry>, StoreError> {
    let keys: Vec<String> = store
        .list(CATALOG_PREFIX)
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| {
            shard_day(k).is_some_and(|d| {
                from.is_none_or(|f| d.as_str() >= f) && to.is_none_or(|t| d.as_str() <= t)
            })
        })
        .collect();
    let shards: Vec<Vec<Entry>> = futures_util::stream::iter(keys)
        .map(|k| async move {
            match store.get_bytes(&k, u64::MAX).await {
                Ok(b) => Ok(match needle {
                    Some(n) => b
                        .split(|c| *c == b'\n')
                        .filter(|l| l.windows(n.len()).any(|w| w == n))
                        .filter_map(|l| serde_json::from_slice(l).ok())
                        .collect(),
                    None => parse_shard(&b),
                }),
                // Removed since the listing (a rebuild): nothing to read.
                Err(e) if e.is_not_found() => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    Ok(shards.into_iter().flatten().collect())
}

/// The catalog lines whose deadline has `status`, over every shard.
async fn with_deadline_status(
    store: &Store,
    status: custody_format::deadline::DeadlineStatus,
) -> Result<Vec<Entry>, StoreError> {
    let status = status.as_str();
    let needle = format!(r#""deadline_status":{}"#, serde_json::json!(status));
    Ok(load_lines(store, None, None, Some(needle.as_bytes()))
        .await?
        .into_iter()
        .filter(|e| e.deadline_status.as_deref() == Some(status))
        .collect())
}

/// Shard entries matching `f`, newest first.
async fn search(store: &Store, f: &Filter) -> Result<Vec<Entry>, StoreError> {
    let (from, to) = f.days();
    // Any exact-match field narrows the lines worth parsing: its value, as
    // JSON writes it, must be in the line.
    let needle = [
        &f.case,
        &f.officer,
        &f.device,
        &f.category,
        &f.occasion,
        &f.unit,
    ]
    .into_iter()
    .flatten()
    .find(|v| !v.is_empty())
    .map(|v| serde_json::to_vec(v).expect("a string serialises"));
    let mut out: Vec<Entry> = load_lines(store, from.as_deref(), to.as_deref(), needle.as_deref())
        .await?
        .into_iter()
        .filter(|e| f.matches(e))
        .collect();
    // By instant, not by text: offsets differ between devices.
    let t = |e: &Entry| {
        e.started_at
            .as_deref()
            .and_then(custody_format::time_fmt::parse)
            .or_else(|| custody_format::time_fmt::parse(&e.received_at))
    };
    out.sort_by_cached_key(|e| std::cmp::Reverse(t(e)));
    Ok(out)
}

/// The catalog line of the recording at `manifest_key`, made from storage.
pub async fn entry_in_storage(
    store: &Store,
    manifest_key: &str,
) -> Result<Option<Entry>, StoreError> {
    let m: Manifest = match store.get_bytes(manifest_key, MAX_DOC_BYTES).await {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        },
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    // The gateway's own logs (the audit trail) are not recordings.
    if m.recorder.starts_with('_') {
        return Ok(None);
    }
    let codecs = match m.objects.iter().find(|o| o.role == Role::Init) {
        Some(init) => match store.get_bytes(&init.key, 1 << 20).await {
            Ok(b) => Some(custody_media::codecs::codecs(&b)),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(Some(entry_from(&m, codecs)))
}

/// The catalog line of every recording a locator in storage leads to.
async fn entries_in_storage(store: &Store) -> Result<Vec<Entry>, StoreError> {
    let locators: Vec<String> = store
        .list("index/recordings/")
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let entries: Vec<Option<Entry>> = futures_util::stream::iter(locators)
        .map(|k| async move {
            let loc: Locator = match store.get_bytes(&k, MAX_DOC_BYTES).await {
                Ok(b) => match serde_json::from_slice(&b) {
                    Ok(l) => l,
                    Err(_) => return Ok(None),
                },
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            // A locator is listed only if it leads to the recording it is
            // filed under (a swapped or rewritten one would list another
            // recording twice and this one not at all).
            let filed = k
                .strip_prefix("index/recordings/")
                .and_then(|r| r.strip_suffix(".json"))
                .and_then(|r| r.split_once('/'))
                .unwrap_or_default();
            if let Err(why) = custody_verify::locate::check_locator(&loc, filed.0, filed.1) {
                tracing::warn!(key = %k, "catalog: locator left out: {why}");
                return Ok(None);
            }
            let e = entry_in_storage(store, &loc.manifest_key).await?;
            Ok(e.filter(|e| {
                let same = (e.recorder.as_str(), e.recording_id.as_str(), &e.manifest_key)
                    == (filed.0, filed.1, &loc.manifest_key);
                if !same {
                    tracing::warn!(key = %k, manifest = %loc.manifest_key, "catalog: locator left out: its manifest is another recording's");
                }
                same
            }))
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    // Only recordings filed under a day are catalogued.
    Ok(entries
        .into_iter()
        .flatten()
        .filter(|e| shard_key(&e.manifest_key).is_some())
        .collect())
}

/// Writes `entries` as the whole shard catalog; shards no recording
/// belongs to any more are removed.
async fn write_shards(store: &Store, entries: Vec<Entry>) -> Result<(), StoreError> {
    let mut shards: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        if let Some(k) = shard_key(&e.manifest_key) {
            shards.entry(k).or_default().push(e);
        }
    }
    for (k, es) in &mut shards {
        es.sort_by(|a, b| (&a.recorder, &a.recording_id).cmp(&(&b.recorder, &b.recording_id)));
        put_shard(store, k, es).await?;
    }
    for o in store.list(CATALOG_PREFIX).await? {
        if !shards.contains_key(&o.key) {
            store.delete(&o.key).await?;
        }
    }
    Ok(())
}

/// Writes the line of the recording at `manifest_key` into its shard, now.
/// Shard rewrites in this process are serialised.
async fn update_shard(store: &Store, manifest_key: &str) -> Result<(), StoreError> {
    static WRITE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let Some(shard) = shard_key(manifest_key) else {
        return Ok(());
    };
    // No manifest (any more): the recording was deleted; its line goes.
    let entry = entry_in_storage(store, manifest_key).await?;
    let _w = WRITE.lock().await;
    let mut entries = match store.get_bytes(&shard, u64::MAX).await {
        Ok(b) => parse_shard(&b),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e),
    };
    let at = entries.iter().position(|e| e.manifest_key == manifest_key);
    match (at, entry) {
        (Some(i), Some(new)) if entries[i] == new => return Ok(()),
        (Some(i), Some(new)) => entries[i] = new,
        (None, Some(new)) => entries.push(new),
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, None) => return Ok(()),
    }
    put_shard(store, &shard, &entries).await
}

/// Keeps the catalog current as recordings are stored and annotated.
pub struct Catalog {
    index: Index,
    /// Recordings whose line is still to be written, kept in the spool.
    pending: PathBuf,
    wake: tokio::sync::Notify,
}

impl Catalog {
    pub fn new(spool_root: &std::path::Path, index: Index) -> Arc<Catalog> {
        Arc::new(Catalog {
            index,
            pending: spool_root.join("catalog"),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn marker(&self, manifest_key: &str) -> PathBuf {
        self.pending.join(hex::encode(custody_format::chain::sha256(
            manifest_key.as_bytes(),
        )))
    }

    /// The recording at `manifest_key` was stored or changed: its line is
    /// written now, or (if storage fails) later.
    pub async fn changed(&self, manifest_key: &str) {
        let marker = self.marker(manifest_key);
        let (dir, k) = (self.pending.clone(), manifest_key.to_string());
        let noted = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            crate::spool::write_atomic(&marker, k.as_bytes())
        })
        .await;
        if !matches!(noted, Ok(Ok(()))) {
            tracing::warn!(manifest_key, "catalog: could not note a pending update");
        }
        if let Err(e) = self.update(manifest_key).await {
            tracing::warn!(manifest_key, "catalog update failed, retrying later: {e}");
            self.wake.notify_one();
        }
    }

    /// Where the lines are kept.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Writes one recording's line.
    pub async fn update(&self, manifest_key: &str) -> Result<(), IndexError> {
        self.index.update(manifest_key).await?;
        let _ = std::fs::remove_file(self.marker(manifest_key));
        Ok(())
    }

    /// Retries pending updates every 30 s (and when an update fails).
    pub async fn run(self: Arc<Self>) {
        let mut last_errors: HashMap<String, String> = HashMap::new();
        loop {
            let pending: Vec<String> = std::fs::read_dir(&self.pending)
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                        .collect()
                })
                .unwrap_or_default();
            for k in pending {
                match self.update(&k).await {
                    Ok(()) => {
                        last_errors.remove(&k);
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if last_errors.get(&k) != Some(&msg) {
                            tracing::warn!(manifest_key = %k, "catalog update still failing: {msg}");
                            last_errors.insert(k, msg);
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), self.wake.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_the_days_of_storage_prefixes() {
        let table = [
            (
                "records/market/2026/11/30/bwc-1/r1/manifest.json",
                Some("index/catalog/2026/11/30.jsonl"),
            ),
            (
                "records/_audit/2026/01/02/_audit/a/manifest.json",
                Some("index/catalog/2026/01/02.jsonl"),
            ),
            ("records/market/26/11/30/bwc-1/r1/manifest.json", None),
            ("index/recordings/bwc-1/r1.json", None),
        ];
        for (k, want) in table {
            assert_eq!(shard_key(k).as_deref(), want, "{k}");
        }
        assert_eq!(
            shard_day("index/catalog/2026/11/30.jsonl").as_deref(),
            Some("20261130")
        );
    }

    fn entry(id: &str, officer: &str, case: Option<&str>, started: &str) -> Entry {
        Entry {
            recorder: "bwc-1".into(),
            recording_id: id.into(),
            manifest_key: format!("records/x/2026/11/30/bwc-1/{id}/manifest.json"),
            officer: Some(officer.into()),
            officer_name: None,
            unit: Some("market".into()),
            category: Some("market".into()),
            case_id: case.map(str::to_string),
            occasion: Some("on-site-inspection".into()),
            mandatory_full_process: true,
            mode: Some("live".into()),
            started_at: Some(started.into()),
            ended_at: None,
            received_at: "2026-11-30T10:00:00Z".into(),
            stored_at: "2026-11-30T10:10:00Z".into(),
            duration: Some(60.0),
            size: 1,
            gaps: 2,
            gaps_filled: 1,
            missing: Vec::new(),
            links: Vec::new(),
            codecs: None,
            playable: false,
            chain_head: String::new(),
            deadline_due: None,
            deadline_status: None,
            deadline_reason: None,
            retention: None,
            retain_until: None,
            confidentiality: Vec::new(),
            clock_skew_seconds: None,
        }
    }

    #[test]
    fn shard_lines_round_trip() {
        let es = vec![
            entry("r1", "o-1", None, "2026-11-30T09:00:00+08:00"),
            entry("r2", "o-2", Some("C"), "2026-11-30T09:00:00+08:00"),
        ];
        let mut b = shard_bytes(&es).to_vec();
        b.extend_from_slice(b"not json\n");
        assert_eq!(parse_shard(&b), es, "bad lines are skipped");
    }
}
