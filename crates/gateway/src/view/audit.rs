//! The audit trail of the command center: every login, view, playlist
//! fetch, download and refusal, kept as a recording of its own — one a day —
//! so it is stored, hash-chained and signed by exactly the same mechanism
//! as a live recording (journal, raw chunks, checkpoints), and checked by
//! `custody verify` like any other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::live::LiveRecording;
use crate::shared::Gateway;
use crate::spool::EntryState;
use crate::spool::writer::OriginalWriter;
use custody_format::journal::JournalChunk;
use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::Role;
use custody_format::manifest::{DeviceStatus, LedgerView};
use custody_format::manifest::{HEADER_FORMAT, HeaderDoc, Method, Uploader};
use custody_format::metadata::{DeviceKind, RecordingMeta, RecordingMode};
use custody_proto::RecordingState;
use custody_store::{Store, StoreError, layout};

pub use custody_format::layout::{AUDIT_CATEGORY, AUDIT_RECORDER};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    /// The viewer, or `-` when nobody was logged in.
    pub viewer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `login`, `login-refused`, `logout`, `list-live`, `search`, `watch-live`,
    /// `open-stored`, `download`, `refused`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    pub path: String,
    pub status: u16,
    pub peer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What the writer thread is asked to do.
enum Msg {
    /// Append an entry; answer once it is durable in the spool.
    Entry(Box<AuditEntry>, tokio::sync::oneshot::Sender<()>),
    /// The clock moved on: a new day closes yesterday's log.
    Tick,
}

/// Hands entries to the audit writer.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl AuditLog {
    pub fn start(gw: Arc<Gateway>) -> AuditLog {
        let (tx, rx) = mpsc::channel(4096);
        let ticks = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if ticks.send(Msg::Tick).await.is_err() {
                    return;
                }
            }
        });
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                let _rt = handle.enter();
                run(gw, rx)
            })
            .expect("audit thread starts");
        AuditLog { tx }
    }

    /// Appends an entry and waits until it is durable: `false` if it could
    /// not be written (the caller then refuses what it was about to allow).
    pub async fn record(&self, e: AuditEntry) -> bool {
        // The path and the recording come from the URL, as anyone sent it:
        // escaped, they cannot forge a line of the gateway's log.
        let esc = custody_format::text::escape;
        tracing::info!(
            viewer = %esc(&e.viewer),
            action = %e.action,
            recording = %esc(e.recording.as_deref().unwrap_or("-")),
            status = e.status,
            "audit {}",
            esc(&e.path)
        );
        let (done, durable) = tokio::sync::oneshot::channel();
        if self.tx.send(Msg::Entry(Box::new(e), done)).await.is_err() {
            tracing::error!("audit log writer stopped");
            return false;
        }
        durable.await.is_ok()
    }
}

fn day_id(gw: &Gateway, t: OffsetDateTime) -> String {
    let l = t.to_offset(gw.offset);
    format!(
        "audit-{}-{:04}{:02}{:02}",
        gw.cfg
            .gateway
            .id
            .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
        l.year(),
        l.month() as u8,
        l.day()
    )
}

/// Opens (or creates) the audit recording `id`.
fn open(gw: &Arc<Gateway>, id: &str) -> std::io::Result<Arc<LiveRecording>> {
    if let Some(r) = gw.live.get(AUDIT_RECORDER, id) {
        return Ok(r);
    }
    let entry = gw.spool.entry(AUDIT_RECORDER, id);
    if entry.load_state()?.is_none() {
        let now = custody_format::clock::now();
        let header = HeaderDoc {
            format: HEADER_FORMAT.into(),
            recorder: AUDIT_RECORDER.into(),
            recording_id: id.to_string(),
            method: Method {
                device_kind: DeviceKind::StorageDevice,
                mode: Some(RecordingMode::Live),
            },
            received_at: custody_format::time_fmt::rfc3339(now),
            device_clock: None,
            gateway: gw.cfg.gateway.id.clone(),
            uploader: Uploader {
                device: gw.cfg.gateway.id.clone(),
                device_kind: DeviceKind::StorageDevice,
                certificate_sha256: String::new(),
                ingest: None,
            },
            ledger: LedgerView {
                device: AUDIT_RECORDER.into(),
                kind: DeviceKind::StorageDevice,
                status: DeviceStatus::Active,
                custodian: gw.cfg.gateway.id.clone(),
                unit: String::new(),
                officer: None,
                officer_name: None,
                enforcement: None,
            },
            meta: RecordingMeta {
                recording_id: id.to_string(),
                mode: Some(RecordingMode::Live),
                started_at: Some(custody_format::time_fmt::rfc3339(now)),
                proof_object: Some("audit trail of the command center".into()),
                ..Default::default()
            },
            declared_size: None,
            missing: Vec::new(),
            discrepancies: Vec::new(),
            copy_of: None,
            retention: Some(custody_format::retention::Retention::Standard {
                years: gw.cfg.policy.standard_years,
            }),
            signing_key: gw.signer.public().to_hex(),
        };
        let prefix = layout::recording_prefix(
            Some(AUDIT_CATEGORY),
            now.to_offset(gw.offset),
            AUDIT_RECORDER,
            id,
        );
        let st = EntryState {
            status: RecordingState::Receiving,
            manifest_key: layout::manifest_key(&prefix),
            prefix,
            size: None,
            sha256: None,
            declared_sha256: None,
            chain_head: None,
            reason: None,
        };
        let hb = header.to_bytes();
        entry.create(&hb, &st)?;
    }
    let st = entry
        .load_state()?
        .ok_or_else(|| std::io::Error::other("audit entry has no state"))?;
    let header: HeaderDoc = serde_json::from_slice(&entry.read_header()?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut opts = gw.live.opts.clone();
    opts.media = None;
    let rec = LiveRecording::open(AUDIT_RECORDER, id, entry, st.prefix, header, opts)?;
    // Object 0 is the header exactly as stored.
    // A log before its first chunk, so the journal says so from chunk 0.
    rec.make_log()?;
    rec.start_chain(&rec.entry.read_header()?)?;
    gw.live.adopt(rec.clone(), None);
    Ok(rec)
}

/// Closes audit logs of earlier days still open (the gateway was down at
/// midnight), so each is finished and signed.
fn close_stale(gw: &Gateway, today: &str) {
    for r in gw.live.all() {
        if r.recorder == AUDIT_RECORDER
            && r.id != today
            && let Err(e) = r.close(custody_format::manifest::ClosedBy::Device)
        {
            tracing::error!(id = %r.id, "closing an earlier audit log: {e}");
        }
    }
}

/// Makes what was appended durable and answers the requests waiting for it
/// (dropping them unanswered if the sync fails: they are refused).
fn flush(
    rec: &Arc<LiveRecording>,
    w: &mut OriginalWriter,
    waiting: &mut Vec<tokio::sync::oneshot::Sender<()>>,
) {
    match w.sync() {
        Ok(d) => {
            rec.on_durable(d);
            for d in waiting.drain(..) {
                let _ = d.send(());
            }
        }
        Err(err) => {
            tracing::error!("audit log sync: {err}");
            waiting.clear();
        }
    }
}

/// The writer: a thread of its own, since every batch of entries is
/// fsynced before the next request is answered with certainty.
fn run(gw: Arc<Gateway>, mut rx: mpsc::Receiver<Msg>) {
    let mut current: Option<(String, Arc<LiveRecording>, OriginalWriter)> = None;
    let mut last_sync = Instant::now();
    // Requests waiting for their entries to be durable.
    let mut waiting: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    close_stale(&gw, &day_id(&gw, custody_format::clock::now()));
    while let Some(msg) = rx.blocking_recv() {
        let id = day_id(&gw, custody_format::clock::now());
        // A new day: close yesterday's log, start today's.
        if current.as_ref().is_some_and(|(d, _, _)| *d != id) {
            let (_, rec, mut w) = current.take().expect("checked");
            if let Ok(d) = w.sync() {
                rec.on_durable(d);
            }
            if let Err(e) = rec.close(custody_format::manifest::ClosedBy::Device) {
                tracing::error!(id = %rec.id, "closing the audit log: {e}");
            }
        }
        let Msg::Entry(e, done) = msg else {
            // A tick: close any earlier day's log (one reopened after a
            // restart included), and make pending entries durable.
            close_stale(&gw, &id);
            if let Some((_, rec, w)) = current.as_mut()
                && !waiting.is_empty()
            {
                flush(rec, w, &mut waiting);
                last_sync = Instant::now();
            }
            continue;
        };
        if current.is_none() {
            let opened = open(&gw, &id).and_then(|rec| {
                let w = OriginalWriter::open_unhashed(&rec.entry)?;
                Ok((rec, w))
            });
            match opened {
                Ok((rec, w)) => current = Some((id, rec, w)),
                Err(err) => {
                    // Not lost from the process log (`record` traced it);
                    // the next entry tries again.
                    tracing::error!("audit log cannot be opened: {err}");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            }
        }
        let (_, rec, w) = current.as_mut().expect("opened");
        let mut line = serde_json::to_vec(&e).expect("audit entry serialises");
        line.push(b'\n');
        match w.append(&line) {
            Ok(()) => waiting.push(done),
            // `done` is dropped: the request learns the entry was not kept.
            Err(err) => tracing::error!("audit entry not written: {err}"),
        }
        // Entries become durable at once when they trickle in, at least
        // every 200 ms when they pour in; only then are requests answered.
        if rx.is_empty() || last_sync.elapsed() > Duration::from_millis(200) {
            flush(rec, w, &mut waiting);
            last_sync = Instant::now();
        }
    }
    if let Some((_, rec, mut w)) = current
        && let Ok(d) = w.sync()
    {
        rec.on_durable(d);
    }
}

/// One day's audit log in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLog {
    /// `audit-<gateway>-<yyyymmdd>`.
    pub id: String,
    pub prefix: String,
}

impl StoredLog {
    /// The day it covers, `yyyymmdd`.
    pub fn day(&self) -> &str {
        self.id.rsplit('-').next().unwrap_or("")
    }
}

/// Every audit log in storage, oldest day first.
pub async fn stored_logs(store: &Store) -> Result<Vec<StoredLog>, StoreError> {
    let mut out: Vec<StoredLog> = Vec::new();
    let root = layout::category_root(AUDIT_CATEGORY);
    for o in store.list(&root).await? {
        // records/_audit/yyyy/mm/dd/_audit/<id>/journal/NNNNNN.json
        let Some(prefix) = layout::prefix_of_journal_key(&o.key) else {
            continue;
        };
        let Some(id) = prefix.rsplit('/').next() else {
            continue;
        };
        if !out.iter().any(|l| l.prefix == prefix) {
            out.push(StoredLog {
                id: id.to_string(),
                prefix: prefix.to_string(),
            });
        }
    }
    out.sort_by(|a, b| (a.day(), &a.id).cmp(&(b.day(), &b.id)));
    Ok(out)
}

/// The entries of one audit log as far as it is in storage (the gateway
/// stores a log's newest lines within seconds).
pub async fn read_entries(store: &Store, log: &StoredLog) -> Result<Vec<AuditEntry>, StoreError> {
    let mut chunks = Vec::new();
    for o in store.list(&layout::journal_dir(&log.prefix)).await? {
        let b = store.get_bytes(&o.key, MAX_DOC_BYTES).await?;
        if let Ok(c) = serde_json::from_slice::<JournalChunk>(&b) {
            chunks.push(c);
        }
    }
    chunks.sort_by_key(|c| c.seq);
    let mut raw: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.entries.iter())
        .filter(|e| e.role == Role::RawChunk)
        .collect();
    raw.sort_by_key(|e| e.index);
    let mut bytes = Vec::new();
    for e in raw {
        bytes.extend_from_slice(&store.get_bytes(&e.key, 64 << 20).await?);
    }
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}
