//! The catalog: one line per stored recording — who, what, when, which
//! case, how it stands — in day shards in storage,
//! `index/catalog/<yyyy>/<mm>/<dd>.jsonl` (the day of the recording's
//! storage prefix). `custody list`, the wall's search and the compliance
//! report read it instead of opening every manifest.
//!
//! It is derived data: every line comes from a manifest, and
//! [`rebuild`] makes the whole catalog again from the locators and
//! manifests in storage. Updates are read-modify-write of one shard; a
//! failed update is remembered in the spool and retried, so a recording is
//! never left out for long. One gateway writes a bucket's catalog at a time
//! (S3 offers no conditional writes here); `custody index rebuild` repairs
//! anything else.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use custody_format::locator::{Locator, MAX_DOC_BYTES};
use custody_format::manifest::{Manifest, Role};
use custody_store::{Store, StoreError, layout};

pub const CATALOG_PREFIX: &str = "index/catalog/";
/// Reads in flight when loading or rebuilding.
const PARALLEL: usize = 16;

/// One recording as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub recorder: String,
    pub recording_id: String,
    pub manifest_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_name: Option<String>,
    /// The recorder's unit in the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<String>,
    pub mandatory_full_process: bool,
    /// `live` or `docked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Device clock, as declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Live recordings: when the gateway closed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Gateway clock: first byte received.
    pub received_at: String,
    /// Gateway clock: the manifest (the recording is stored whole).
    pub stored_at: String,
    /// Seconds of media derived, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Bytes of the original (docked file, or live raw chunks).
    pub size: u64,
    /// Live gaps, and how many a docked copy fills.
    pub gaps: usize,
    pub gaps_filled: usize,
    /// Required metadata the recording lacks (R4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Other recordings of the same event (`relation recorder/id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Playable CMAF derivative, with its codecs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<String>,
    pub playable: bool,
    pub chain_head: String,
    /// The storage deadline (R4): due instant, and `met`, `late` or
    /// `unknown` (with why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_due: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_reason: Option<String>,
    /// Retention (R5): `standard` or `permanent`, and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<String>,
    /// Confidentiality marks (R6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confidentiality: Vec<custody_format::confidentiality::Mark>,
    /// How far the uploading device's clock was from the gateway's, in
    /// seconds (`summary.clock_skew_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<i64>,
}

impl Entry {
    /// A mandatory full-process recording with live gaps no copy fills.
    pub fn full_process_violation(&self) -> bool {
        self.mandatory_full_process && self.gaps > self.gaps_filled
    }

    /// Its day shard.
    pub fn shard(&self) -> Option<String> {
        shard_key(&self.manifest_key)
    }
}

fn name<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The catalog line of a manifest. `codecs` come from its initialisation
/// segment, when the caller has read it.
pub fn entry_from(m: &Manifest, codecs: Option<(String, bool)>) -> Entry {
    let segments = m.objects.iter().filter(|o| o.role == Role::Segment);
    let duration = m.live.as_ref().map(|l| l.media_duration).or_else(|| {
        segments
            .clone()
            .filter_map(|o| o.media.as_ref().map(|r| r.end))
            .reduce(f64::max)
    });
    let playable_media = segments.count() > 0;
    let gaps = m.live.as_ref().map_or(0, |l| l.gaps.len());
    let mut filled: Vec<usize> = m
        .links
        .iter()
        .flat_map(|l| l.gaps_filled.iter().copied())
        .collect();
    filled.sort_unstable();
    filled.dedup();
    Entry {
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        manifest_key: layout::manifest_key(&m.prefix),
        officer: m.summary.officer.clone(),
        officer_name: m.summary.officer_name.clone(),
        unit: m.summary.unit.clone(),
        category: m.summary.category.clone(),
        case_id: m.summary.case_id.clone(),
        occasion: m.summary.occasion.and_then(|o| name(&o)),
        mandatory_full_process: m.summary.mandatory_full_process,
        mode: m.summary.method.mode.and_then(|x| name(&x)),
        started_at: m.summary.started_at.clone(),
        ended_at: m.live.as_ref().map(|l| l.ended_at.clone()),
        received_at: m.summary.received_at.clone(),
        stored_at: m.finalized_at.clone(),
        duration,
        size: m
            .objects
            .iter()
            .filter(|o| matches!(o.role, Role::Original | Role::RawChunk))
            .map(|o| o.size)
            .sum(),
        gaps,
        gaps_filled: filled.iter().filter(|i| **i < gaps).count(),
        missing: m.missing.clone(),
        links: m
            .links
            .iter()
            .map(|l| format!("{} {}/{}", l.relation, l.recorder, l.recording_id))
            .collect(),
        playable: playable_media && codecs.as_ref().is_some_and(|c| c.1),
        codecs: codecs.map(|c| c.0),
        chain_head: m.chain_head.clone(),
        deadline_due: m
            .deadline
            .as_ref()
            .and_then(|d| d.deadline.as_ref().map(|x| x.due.clone())),
        deadline_status: m.deadline.as_ref().map(|d| d.status.as_str().to_string()),
        deadline_reason: m.deadline.as_ref().and_then(|d| d.reason.clone()),
        retention: m.retention.as_ref().map(|r| r.retention.describe()),
        retain_until: m.retention.as_ref().and_then(|r| {
            r.deletable_from(custody_format::time_fmt::parse(&m.summary.received_at))
                .map(custody_format::time_fmt::rfc3339)
        }),
        confidentiality: m.confidentiality.clone(),
        clock_skew_seconds: m.summary.clock_skew_seconds,
    }
}

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
pub async fn load(
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
pub async fn with_deadline_status(
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

/// What `custody list` and the wall ask for.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    pub officer: Option<String>,
    /// The recorder.
    pub device: Option<String>,
    pub case: Option<String>,
    pub category: Option<String>,
    pub occasion: Option<String>,
    /// The recorder's unit.
    pub unit: Option<String>,
    /// RFC 3339: recordings that started (or, without a device time, were
    /// received) at or after / at or before.
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Filter {
    /// The time bounds, when given, are RFC 3339 times: an error says which
    /// is not (the wall answers it with 400).
    pub fn check_times(&self) -> Result<(), String> {
        for (name, v) in [("from", &self.from), ("to", &self.to)] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty())
                && custody_format::time_fmt::parse(v).is_none()
            {
                return Err(format!(
                    "{name} must be an RFC 3339 time, e.g. 2026-11-30T08:00:00+08:00"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, e: &Entry) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref()
                .filter(|w| !w.is_empty())
                .is_none_or(|w| have == Some(w))
        };
        let t = e
            .started_at
            .as_deref()
            .and_then(custody_format::time_fmt::parse)
            .or_else(|| custody_format::time_fmt::parse(&e.received_at));
        let bound = |b: &Option<String>| {
            b.as_deref()
                .filter(|s| !s.is_empty())
                .and_then(custody_format::time_fmt::parse)
        };
        let in_range = match (bound(&self.from), bound(&self.to), t) {
            (None, None, _) => true,
            (_, _, None) => false,
            (f, x, Some(t)) => f.is_none_or(|f| t >= f) && x.is_none_or(|x| t <= x),
        };
        eq(&self.officer, e.officer.as_deref())
            && eq(&self.device, Some(&e.recorder))
            && eq(&self.case, e.case_id.as_deref())
            && eq(&self.category, e.category.as_deref())
            && eq(&self.occasion, e.occasion.as_deref())
            && eq(&self.unit, e.unit.as_deref())
            && in_range
    }

    /// The storage days worth reading: recordings are filed by the day
    /// they were received, which is never before they started; a week's
    /// margin covers time zones and device clocks that run ahead.
    pub fn days(&self) -> (Option<String>, Option<String>) {
        let day = |s: &Option<String>, shift: i64| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .and_then(custody_format::time_fmt::parse)
                .map(|t| {
                    let d = t.date() + time::Duration::days(shift);
                    format!("{:04}{:02}{:02}", d.year(), d.month() as u8, d.day())
                })
        };
        // Received on or after the start; a recording may be docked long
        // after it was made, so no upper bound from `to`.
        (day(&self.from, -7), None)
    }
}

/// Entries matching `f`, newest first.
pub async fn search(store: &Store, f: &Filter) -> Result<Vec<Entry>, StoreError> {
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

/// Makes the whole catalog again from the locators and manifests in
/// storage; returns how many recordings it lists. Shards no recording
/// belongs to any more are removed.
pub async fn rebuild(store: &Store) -> Result<usize, StoreError> {
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
    let mut shards: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut n = 0;
    for e in entries.into_iter().flatten() {
        if let Some(k) = e.shard() {
            shards.entry(k).or_default().push(e);
            n += 1;
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
    Ok(n)
}

/// Writes the line of the recording at `manifest_key` into its shard, now.
/// Shard rewrites in this process are serialised.
pub async fn update(store: &Store, manifest_key: &str) -> Result<(), StoreError> {
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
    store: Store,
    /// Recordings whose line is still to be written, kept in the spool.
    pending: PathBuf,
    wake: tokio::sync::Notify,
}

impl Catalog {
    pub fn new(spool_root: &std::path::Path, store: Store) -> Arc<Catalog> {
        Arc::new(Catalog {
            store,
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

    /// Writes one recording's line into its shard.
    pub async fn update(&self, manifest_key: &str) -> Result<(), StoreError> {
        update(&self.store, manifest_key).await?;
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
    fn filters_table() {
        let e = entry("r1", "o-1", Some("C-1"), "2026-11-30T09:00:00+08:00");
        assert!(e.full_process_violation(), "one of two gaps unfilled");
        let f = |s: &str| -> Filter { serde_json::from_str(s).unwrap() };
        let table = [
            ("{}", true),
            (r#"{"officer":"o-1"}"#, true),
            (r#"{"officer":"o-2"}"#, false),
            (r#"{"case":"C-1","device":"bwc-1"}"#, true),
            (r#"{"case":"C-2"}"#, false),
            (
                r#"{"category":"market","occasion":"on-site-inspection"}"#,
                true,
            ),
            (r#"{"from":"2026-11-30T00:00:00Z"}"#, true),
            (r#"{"from":"2026-11-30T02:00:00Z"}"#, false),
            (r#"{"to":"2026-11-30T01:00:00Z"}"#, true),
            (r#"{"officer":""}"#, true),
        ];
        for (q, want) in table {
            assert_eq!(f(q).matches(&e), want, "{q}");
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
