//! One live recording at the gateway: its bytes in the spool, the remux
//! pipeline following them, the chain entries cut as segments close, the
//! gaps, and how it closes. It outlives the device's connections: a
//! recorder that loses its link reconnects to the same recording.
//!
//! Spool files, beside the docked ones (`spool/mod.rs`):
//! ```text
//! live.json            LiveState: gaps, uploads done, close
//! journal/NNNNNN.json  chain entries as they are cut (see `journal`)
//! objects/             init and media segments until storage has them
//! manifest.json        written at close
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::journal::{JOURNAL_FORMAT, Journal, JournalChunk, Progress, RunStart};
use crate::checkpoint::{self, JournalHead};
use crate::spool::{EntryDir, write_atomic};
use custody_format::chain;
use custody_format::closing::Closing;
use custody_format::layout;
use custody_format::manifest::{
    ByteRange, ClosedBy, DerivationStatus, DerivationSummary, DerivativeHole, DerivedFrom, Gap,
    HeaderDoc, LiveSummary, Manifest, MediaRange, ObjectEntry, Role,
};
use custody_format::time_fmt;
use custody_media::derive::Media;
use custody_media::remux::{self, Fragment, Growth, Input, RemuxError};

/// Persisted beside the journal: what the journal does not carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub started_at: String,
    /// Gateway clock of the last byte received.
    pub last_byte_at: String,
    /// Every gap so far.
    pub gaps: Vec<Gap>,
    /// Gaps not yet written to a journal chunk.
    pub pending_gaps: Vec<Gap>,
    /// Journal chunks storage has (the next one to upload).
    pub uploaded: u64,
    /// Bytes the device declared lost: stream offset = file offset + skipped.
    pub skipped: u64,
    /// Extension of raw chunk objects (from the stream's kind).
    pub raw_ext: String,
    /// Store raw chunks (the originals); a policy may turn them off.
    pub raw_chunks: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
    /// The manifest is in storage and the spool released.
    #[serde(default)]
    pub archived: bool,
    /// Signed checkpoints in storage, the last one's hash and coverage.
    #[serde(default)]
    pub checkpoints: u64,
    #[serde(default)]
    pub last_checkpoint: Option<String>,
    #[serde(default)]
    pub checkpoint_count: u64,
    /// A log written by the gateway itself (the audit trail): never
    /// remuxed, never closed by timeout, cut into chunks every few seconds.
    #[serde(default)]
    pub log: bool,
    /// Stream offset at which the last gap ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_gap_at: Option<u64>,
    /// Media the derivative lacks (a restart it could not resume from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derivative_holes: Vec<DerivativeHole>,
    /// Stream offset up to which the journal chunks in storage hold the
    /// recording: in cluster mode nothing beyond it is acknowledged.
    #[serde(default)]
    pub stored_stream: u64,
    /// Bytes declared lost by the gaps of the journal chunks in storage.
    #[serde(default)]
    pub stored_skipped: u64,
    /// Data file offset from which the spool holds the recording's bytes:
    /// a recording continued from another gateway's journal in storage
    /// holds none before it (the file is sparse there).
    #[serde(default)]
    pub spool_from: u64,
    /// Cluster mode: the lease token of the gateway that created this
    /// spool copy or continued it from storage (`live_recordings.epoch`).
    /// A copy of an older epoch lost the recording to another gateway.
    #[serde(default)]
    pub epoch: i64,
}

/// How long a log's bytes wait before they are cut into a chunk.
const LOG_CUT_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub by: ClosedBy,
    pub at: String,
}

/// The live options of the gateway.
#[derive(Clone)]
pub struct LiveOptions {
    pub media: Option<Media>,
    /// Segment close → storage latencies of every live recording, for
    /// operators and the load benchmark (bounded).
    pub latencies: Arc<Mutex<Vec<Duration>>>,
    /// Ingest → playable latencies of live parts (bounded).
    pub view_latencies: Arc<Mutex<Vec<Duration>>>,
    pub signer: Arc<crate::signing::SigningKey>,
    pub part: Duration,
    pub close_after: Duration,
    pub raw_chunks: bool,
    /// The storage deadline's calendar (none: not assessed).
    pub policy: Option<crate::policy::Policy>,
    /// Counts segment close → stored latencies and upload retries.
    pub metrics: Arc<crate::metrics::Metrics>,
}

struct Run {
    growth: Arc<Growth>,
    handle: std::thread::JoinHandle<Result<remux::RemuxReport, RemuxError>>,
}

struct Inner {
    progress: Progress,
    state: LiveState,
    next_seq: u64,
    /// Durable bytes in the data file.
    durable: u64,
    run: Option<Run>,
    /// A pipeline is being stopped (its last fragments drain while the
    /// lock is free): no new one may start until the stopper is done — a
    /// run started meanwhile would begin at a stale cut and media time, and
    /// its init could be taken by the old run's last fragment.
    stopping: bool,
    /// Media time where the current pipeline's zero sits.
    media_base: f64,
    /// The current pipeline's init segment, waiting for its first fragment.
    pending_init: Option<Vec<u8>>,
    /// The run the journal names, to run again (once, after a restart).
    resume: Option<RunStart>,
    /// The newest stored segment, when the journal names a run to resume.
    last_segment: Option<StoredSegment>,
    /// The current pipeline runs again over what stored segments hold.
    rederiving: Option<Rederiving>,
    /// The fragment whose parts are coming is one already stored.
    parts_rederived: bool,
    attached: usize,
    last_byte: Instant,
    derivation: Option<DerivationSummary>,
    /// Why deriving stopped, if it did; bytes are still stored.
    derive_failed: Option<String>,
    last_cut: Instant,
    /// Closing has begun: no stream may attach any more.
    closing: bool,
}

/// Stream bytes after which a pipeline that produced no segment is stopped.
const NO_SEGMENT_LIMIT: u64 = 16 << 20;
/// Raw chunk size when there are no segments to cut at.
const RAW_CUT_BYTES: u64 = 1 << 20;
/// Media times closer than this are the same instant (a frame lasts 10 ms
/// or more; times go through f64 seconds).
const SAME_INSTANT: f64 = 0.000_5;

pub struct LiveRecording {
    pub recorder: String,
    pub id: String,
    pub entry: EntryDir,
    pub prefix: String,
    pub header: HeaderDoc,
    journal: Journal,
    opts: LiveOptions,
    inner: Mutex<Inner>,
    /// Wakes the uploader.
    pub changed: Notify,
    /// Recent parts for live players.
    pub view: Mutex<super::feed::LiveView>,
    /// Arrival times of recent bytes (ingest → playable latency).
    clock: Mutex<super::feed::IngestClock>,
    /// Marks already chained (a recorder sends a mark again after a lost
    /// link, not knowing whether it arrived).
    marks_seen: Mutex<std::collections::HashSet<chain::Hash>>,
    /// The journal hashed so far, for checkpoints.
    journal_head: Mutex<JournalHead>,
    /// Stream offset the journal in storage reaches (`LiveState::stored_stream`).
    stored: tokio::sync::watch::Sender<u64>,
    /// This gateway may take bytes for it (in cluster mode: it holds the
    /// recording's lease).
    held: std::sync::atomic::AtomicBool,
}

fn spool_error(op: &'static str, e: std::io::Error) -> custody_store::StoreError {
    custody_store::StoreError::Backend {
        op,
        key: String::new(),
        message: e.to_string(),
    }
}

fn now() -> String {
    time_fmt::now()
}

impl LiveRecording {
    /// The gateway's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.opts.metrics
    }

    pub fn objects_dir(entry: &EntryDir) -> PathBuf {
        entry.dir.join("objects")
    }

    fn state_path(entry: &EntryDir) -> PathBuf {
        entry.dir.join("live.json")
    }

    pub fn load_state(entry: &EntryDir) -> std::io::Result<Option<LiveState>> {
        match std::fs::read(Self::state_path(entry)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens (or reopens after a restart) a live recording whose spool
    /// entry and header exist.
    pub fn open(
        recorder: &str,
        id: &str,
        entry: EntryDir,
        prefix: String,
        header: HeaderDoc,
        opts: LiveOptions,
    ) -> std::io::Result<Arc<LiveRecording>> {
        let journal = Journal::new(entry.dir.join("journal"));
        let state = match Self::load_state(&entry)? {
            Some(s) => s,
            None => {
                let s = LiveState {
                    started_at: now(),
                    last_byte_at: now(),
                    raw_ext: "ts".into(),
                    raw_chunks: opts.raw_chunks,
                    ..Default::default()
                };
                write_atomic(
                    &Self::state_path(&entry),
                    &serde_json::to_vec_pretty(&s).expect("state serialises"),
                )?;
                s
            }
        };
        let (progress, next_seq) = match journal.last()? {
            Some(c) => (c.progress, c.seq + 1),
            None => (Progress::default(), 0),
        };
        // A run that began before the spool's first byte (a recording
        // continued from storage) cannot be run again here.
        let resume = progress.run.filter(|r| r.input >= state.spool_from);
        let last_segment = match resume {
            Some(_) => last_segment(&journal)?,
            None => None,
        };
        let durable = entry.durable()?;
        std::fs::create_dir_all(Self::objects_dir(&entry))?;
        let media_base = progress.media_end;
        let stored = tokio::sync::watch::Sender::new(state.stored_stream);
        Ok(Arc::new(LiveRecording {
            recorder: recorder.to_string(),
            id: id.to_string(),
            entry,
            prefix,
            header,
            journal,
            opts,
            inner: Mutex::new(Inner {
                progress,
                state,
                next_seq,
                durable,
                run: None,
                stopping: false,
                media_base,
                pending_init: None,
                resume,
                last_segment,
                rederiving: None,
                parts_rederived: false,
                attached: 0,
                last_byte: Instant::now(),
                derivation: None,
                derive_failed: None,
                last_cut: Instant::now(),
                closing: false,
            }),
            changed: Notify::new(),
            view: Mutex::new(Default::default()),
            clock: Mutex::new(Default::default()),
            marks_seen: Mutex::new(Default::default()),
            journal_head: Mutex::new(Default::default()),
            stored,
            held: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Watches the stream offset the journal in storage reaches.
    pub fn stored_stream(&self) -> tokio::sync::watch::Receiver<u64> {
        self.stored.subscribe()
    }

    /// Whether this gateway may take bytes for the recording.
    pub fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_held(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::Release);
    }

    /// The epoch of this spool copy (cluster mode).
    pub fn epoch(&self) -> i64 {
        self.lock().state.epoch
    }

    /// Records the epoch of this spool copy (a new recording's lease token).
    pub fn set_epoch(&self, epoch: i64) -> std::io::Result<()> {
        let mut g = self.lock();
        g.state.epoch = epoch;
        self.save_state(&g)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("live lock")
    }

    fn save_state(&self, g: &Inner) -> std::io::Result<()> {
        Self::save_state_of(&self.entry, &g.state)
    }

    /// Writes the live state of the recording in `entry`.
    pub fn save_state_of(entry: &EntryDir, state: &LiveState) -> std::io::Result<()> {
        write_atomic(
            &Self::state_path(entry),
            &serde_json::to_vec_pretty(state).expect("state serialises"),
        )
    }

    /// A recording continued from storage that was closed there but not
    /// sealed: its manifest, made again from the journal, for the uploader.
    pub fn write_manifest_if_closed(&self) -> std::io::Result<()> {
        let g = self.lock();
        if g.state.closed.is_some() && !self.entry.manifest().exists() {
            let manifest = self.build_manifest(&g)?;
            write_atomic(&self.entry.manifest(), &manifest.to_bytes())?;
        }
        Ok(())
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn is_closed(&self) -> bool {
        self.lock().state.closed.is_some()
    }

    /// Who closed it, once it is closed.
    pub fn closed_by(&self) -> Option<ClosedBy> {
        self.lock().state.closed.as_ref().map(|c| c.by)
    }

    pub fn is_archived(&self) -> bool {
        self.lock().state.archived
    }

    /// The device's stream offset the gateway holds durably.
    pub fn stream_durable(&self) -> u64 {
        let g = self.lock();
        g.durable + g.state.skipped
    }

    pub fn skipped(&self) -> u64 {
        self.lock().state.skipped
    }

    pub fn uploaded(&self) -> u64 {
        self.lock().state.uploaded
    }

    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// A stream starts feeding the recording; `false` if it is closing.
    pub fn attach(&self) -> bool {
        let mut g = self.lock();
        if g.closing || g.state.closed.is_some() {
            return false;
        }
        g.attached += 1;
        g.last_byte = Instant::now();
        true
    }

    /// After a restart: the recorder was last heard `ago`.
    pub fn set_idle_since(&self, ago: Duration) {
        let mut g = self.lock();
        g.last_byte = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
    }

    pub fn detach(&self) {
        let mut g = self.lock();
        g.attached = g.attached.saturating_sub(1);
    }

    /// How long the recording has had no stream and no bytes (never for a
    /// log, which only its writer closes).
    pub fn idle_for(&self) -> Option<Duration> {
        let g = self.lock();
        (g.attached == 0 && g.state.closed.is_none() && !g.state.log && self.held())
            .then(|| g.last_byte.elapsed())
    }

    /// Marks this recording as a gateway log of JSON lines. Its raw chunks
    /// are its only content, so they are kept whatever the policy for
    /// recorders' streams says.
    pub fn make_log(&self) -> std::io::Result<()> {
        let mut g = self.lock();
        if !g.state.log {
            g.state.log = true;
            g.state.raw_chunks = true;
            if g.progress.last_raw.is_none() {
                g.state.raw_ext = "jsonl".into();
            }
            self.save_state(&g)?;
        }
        Ok(())
    }

    /// Called every half second: a log's bytes do not wait long for storage.
    pub fn tick(&self) {
        let mut g = self.lock();
        if g.state.log
            && g.state.closed.is_none()
            && g.durable > g.progress.cut
            && g.last_cut.elapsed() >= LOG_CUT_AFTER
        {
            if let Err(e) = self.cut_tail(&mut g) {
                tracing::error!(id = %self.id, "cutting a log chunk: {e}");
            }
            g.last_cut = Instant::now();
            drop(g);
            self.changed.notify_one();
        }
    }

    /// Bytes up to `file_end` (a data file offset) arrived from the
    /// recorder just now.
    pub fn on_arrival(&self, file_end: u64) {
        self.clock.lock().expect("clock").arrived(file_end);
    }

    /// New durable bytes: the pipeline may read them.
    pub fn on_durable(self: &Arc<Self>, durable: u64) {
        let mut g = self.lock();
        if durable > g.durable {
            g.durable = durable;
            g.last_byte = Instant::now();
            g.state.last_byte_at = now();
        }
        if g.run.as_ref().is_some_and(|r| r.handle.is_finished()) {
            // The pipeline gave up on its own (not media, a codec it cannot
            // carry, …): record why and keep storing the bytes.
            let r = g.run.take().expect("checked");
            let reason = match r.handle.join() {
                Ok(Ok(_)) => "the remux pipeline ended early".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "the remux pipeline panicked".to_string(),
            };
            tracing::warn!(id = %self.id, "live derivation stopped: {reason}");
            g.derive_failed.get_or_insert(reason);
        }
        if let Some(r) = &g.run {
            if g.durable - g.progress.cut > NO_SEGMENT_LIMIT {
                // A stream with no keyframe (or nothing the muxer can cut)
                // would make the muxer hold ever more: stop deriving.
                r.growth.abandon();
                g.derive_failed = Some(format!(
                    "no media segment came out of {} MiB of stream (no keyframe, or nothing the muxer can segment)",
                    NO_SEGMENT_LIMIT >> 20
                ));
            } else {
                r.growth.advance(durable);
            }
        } else if g.derive_failed.is_none() && self.opts.media.is_some() && !g.state.log {
            self.start_run(&mut g);
        } else if g.durable - g.progress.cut >= RAW_CUT_BYTES {
            g.last_cut = Instant::now();
            // Without segments, originals are still cut and stored as they come.
            if let Err(e) = self.cut_tail(&mut g) {
                tracing::error!(id = %self.id, "cutting a raw chunk: {e}");
            }
            drop(g);
            self.changed.notify_one();
        }
    }

    /// Starts a remux pipeline, if there are bytes to remux and derivation
    /// is on: at the current cut point, or — the first time after a restart
    /// — where the run the journal names began (`resume_point`).
    pub fn ensure_running(self: &Arc<Self>) {
        let mut g = self.lock();
        if g.run.is_none() && g.state.closed.is_none() && g.derive_failed.is_none() && !g.state.log
        {
            self.start_run(&mut g);
        }
    }

    fn start_run(self: &Arc<Self>, g: &mut Inner) {
        if g.stopping {
            return;
        }
        let Some(media) = self.opts.media.clone() else {
            return;
        };
        let run = self.resume_point(g);
        // Typefinding needs the first bytes of this run.
        if g.durable < run.input + custody_media::typefind::PROBE_BYTES as u64 / 16 {
            return;
        }
        if g.resume.take().is_some()
            && run.input < g.progress.cut
            && let Some(last) = g.last_segment.take()
        {
            // What the stored segments hold is derived again and dropped.
            g.rederiving = Some(Rederiving { last, again: None });
            tracing::info!(
                id = %self.id,
                from = run.input,
                to = g.progress.cut,
                "live derivation resumes: re-running the remux run from its start"
            );
        }
        g.progress.run = Some(run);
        let mut opts = media.options.clone();
        opts.chunk_duration = Some(self.opts.part);
        // Waiting for a recorder is normal: never time out on silence.
        opts.stall_timeout = Duration::from_secs(u64::MAX / 4);
        let growth = Growth::new(g.durable);
        let input = Input::Growing {
            path: self.entry.data(),
            growth: growth.clone(),
            start: run.input,
        };
        g.media_base = run.media_base;
        g.pending_init = None;
        self.clock.lock().expect("clock").restart();
        let out = LiveOutput {
            rec: Arc::downgrade(self),
        };
        let registry = media.registry.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("live-{}", self.id))
            .spawn(move || remux::remux(&registry, input, &opts, Box::new(out)));
        match spawned {
            Ok(handle) => g.run = Some(Run { growth, handle }),
            Err(e) => tracing::error!(id = %self.id, "cannot start live pipeline: {e}"),
        }
    }

    /// Where the next pipeline starts: a new run at the cut, with media time
    /// going on from where the segments reached — or, after a restart, the
    /// run the killed gateway was making, from its start. Its fragments
    /// before the cut are those already stored (the same pipeline over the
    /// same bytes makes the same fragments), the ones after them what the
    /// killed pipeline held unfinished.
    fn resume_point(&self, g: &Inner) -> RunStart {
        match g.resume {
            Some(r) if r.input <= g.progress.cut && g.last_segment.is_some() => r,
            _ => RunStart {
                input: g.progress.cut,
                media_base: g.progress.media_end,
            },
        }
    }

    /// Ends the current pipeline at the current durable offset and waits for
    /// its last fragments (blocking). No new pipeline starts until the
    /// caller clears `stopping` (a closed recording never clears it).
    fn stop_run(self: &Arc<Self>) {
        let run = {
            let mut g = self.lock();
            g.stopping = true;
            let d = g.durable;
            g.run.take().inspect(|r| r.growth.finish(d))
        };
        if let Some(r) = run {
            match r.handle.join() {
                Ok(Ok(report)) => {
                    let mut g = self.lock();
                    g.derivation = Some(DerivationSummary {
                        status: DerivationStatus::Derived,
                        input: Some(report.input),
                        pipeline: Some(report.pipeline),
                        reason: custody_media::remux::left_out_reason(&report.tracks),
                        tracks: report.tracks,
                        // Not re-derivable exactly: where raw chunks were
                        // cut and where pipelines restarted shape it.
                        recipe: None,
                        holes: Vec::new(),
                    });
                }
                Ok(Err(e)) => {
                    tracing::warn!(id = %self.id, "live pipeline ended: {e}");
                    self.lock().derive_failed.get_or_insert(e.to_string());
                }
                Err(_) => tracing::error!(id = %self.id, "live pipeline thread panicked"),
            }
        }
    }

    /// The device reports a gap in its stream: bytes up to stream offset
    /// `to` will never come (`to` equal to the current offset means none
    /// were lost, e.g. the recorder restarted). Blocking.
    pub fn gap(
        self: &Arc<Self>,
        to: u64,
        kind: &str,
        reason: &str,
        since: Option<String>,
    ) -> std::io::Result<()> {
        let g = self.lock();
        let at = g.durable + g.state.skipped;
        let lost = to.saturating_sub(at);
        // A recorder sends its restart gap again on a new stream when it
        // cannot tell whether the last one arrived: the same gap, with no
        // byte since, is recorded once.
        if lost == 0
            && since.is_some()
            && g.state.last_gap_at == Some(at)
            && g.state.gaps.last().is_some_and(|last| {
                last.kind == kind && last.bytes.is_none() && Some(&last.wall_from) == since.as_ref()
            })
        {
            return Ok(());
        }
        drop(g);
        // Finish what arrived before the gap, so every segment stays on one
        // side of it, then restart the pipeline after it.
        self.stop_run();
        let recorded = self.record_gap(to, kind, reason, since);
        self.lock().stopping = false;
        recorded?;
        self.changed.notify_one();
        self.ensure_running();
        Ok(())
    }

    /// The bookkeeping of [`Self::gap`], its pipeline stopped: the tail cut,
    /// the gap in the state and the journal, the next run set to start
    /// after it.
    fn record_gap(
        self: &Arc<Self>,
        to: u64,
        kind: &str,
        reason: &str,
        since: Option<String>,
    ) -> std::io::Result<()> {
        let mut g = self.lock();
        let at = g.durable + g.state.skipped;
        let lost = to.saturating_sub(at);
        self.cut_tail(&mut g)?;
        let wall_from = since.unwrap_or_else(|| g.state.last_byte_at.clone());
        let wall_to = now();
        let secs = match (time_fmt::parse(&wall_from), time_fmt::parse(&wall_to)) {
            (Some(a), Some(b)) => (b - a).as_seconds_f64().max(0.0),
            _ => 0.0,
        };
        let gap = Gap {
            kind: kind.to_string(),
            wall_from,
            wall_to,
            media_from: g.progress.media_end,
            media_to: Some(g.progress.media_end + secs),
            bytes: (lost > 0).then_some(ByteRange {
                offset: at,
                length: lost,
            }),
            reason: reason.to_string(),
        };
        tracing::warn!(id = %self.id, kind, lost, "gap recorded: {}", custody_format::text::escape(reason));
        // The next run starts after the gap: the one before it is complete.
        g.progress.run = None;
        g.resume = None;
        g.rederiving = None;
        g.state.skipped += lost;
        g.derive_failed = None;
        g.progress.media_end += secs;
        g.state.gaps.push(gap.clone());
        g.state.pending_gaps.push(gap);
        g.state.last_gap_at = Some(to);
        self.save_state(&g)?;
        self.write_chunk(&mut g, Vec::new(), false)
    }

    /// Cuts the bytes after the last cut into a raw chunk (for a gap or the
    /// close), without a segment.
    fn cut_tail(&self, g: &mut Inner) -> std::io::Result<()> {
        let mut entries = Vec::new();
        self.cut_raw(g, g.durable, &mut entries)?;
        if !entries.is_empty() {
            self.write_chunk(g, entries, false)?;
        }
        Ok(())
    }

    /// Adds a raw chunk entry for file bytes [cut, to).
    fn cut_raw(
        &self,
        g: &mut Inner,
        to: u64,
        entries: &mut Vec<ObjectEntry>,
    ) -> std::io::Result<()> {
        let from = g.progress.cut;
        if to <= from {
            return Ok(());
        }
        if !g.state.raw_chunks {
            g.progress.cut = to;
            return Ok(());
        }
        let mut f = std::fs::File::open(self.entry.data())?;
        f.seek(SeekFrom::Start(from))?;
        let (n, h) = custody_store::hash_reader(&mut (&mut f).take(to - from))?;
        if n != to - from {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "spool data shorter than acknowledged",
            ));
        }
        let index = g.progress.next_index;
        let entry = self.entry_for(g, index, Role::RawChunk, &g.state.raw_ext.clone(), n, &h);
        let mut entry = entry;
        entry.range = Some(ByteRange {
            offset: from + g.state.skipped,
            length: n,
        });
        entry.content_type = Some(
            if g.state.log {
                "application/x-ndjson"
            } else {
                "video/mp2t"
            }
            .into(),
        );
        g.progress.last_raw = Some(DerivedFrom {
            index,
            key: entry.key.clone(),
            sha256: entry.sha256.clone(),
        });
        g.progress.cut = to;
        entries.push(entry);
        Ok(())
    }

    /// A chain entry for the next object; advances index and chain head.
    fn entry_for(
        &self,
        g: &mut Inner,
        index: u64,
        role: Role,
        ext: &str,
        size: u64,
        h: &chain::Hash,
    ) -> ObjectEntry {
        debug_assert_eq!(index, g.progress.next_index);
        chain_next(&mut g.progress, &self.prefix, role, ext, size, h, now())
    }

    fn write_chunk(
        &self,
        g: &mut Inner,
        entries: Vec<ObjectEntry>,
        last: bool,
    ) -> std::io::Result<()> {
        let chunk = JournalChunk {
            format: JOURNAL_FORMAT.into(),
            recorder: self.recorder.clone(),
            recording_id: self.id.clone(),
            seq: g.next_seq,
            at: now(),
            entries,
            gaps: std::mem::take(&mut g.state.pending_gaps),
            progress: g.progress.clone(),
            last,
            raw_chunks: g.state.raw_chunks,
        };
        self.journal.write(&chunk)?;
        g.next_seq += 1;
        if !chunk.gaps.is_empty() {
            self.save_state(g)?;
        }
        Ok(())
    }

    fn on_init(&self, data: &[u8]) {
        self.lock().pending_init = Some(data.to_vec());
        self.view.lock().expect("view").init(data);
    }

    fn on_part(&self, p: remux::Part<'_>) {
        {
            let mut g = self.lock();
            if p.independent {
                let start = g.media_base + p.start;
                g.parts_rederived = g.rederiving.as_ref().is_some_and(|r| r.stored(start));
            }
            if g.parts_rederived {
                // Players had these parts before the restart.
                return;
            }
        }
        let waited = self.clock.lock().expect("clock").part(p.input_end);
        if let Some(d) = waited {
            let mut l = self.opts.view_latencies.lock().expect("latencies");
            if l.len() < 1_000_000 {
                l.push(d);
            }
        }
        self.view
            .lock()
            .expect("view")
            .part(p.data, p.duration, p.independent);
    }

    fn on_fragment(&self, f: Fragment) -> std::io::Result<()> {
        let mut g = self.lock();
        if self.drop_rederived(&mut g, &f) {
            return Ok(());
        }
        let mut entries = Vec::new();
        let to = f.input_end.min(g.durable);
        self.cut_raw(&mut g, to, &mut entries)?;
        let from = g.progress.last_raw.clone();
        if let Some(init) = g.pending_init.take() {
            let index = g.progress.next_index;
            let h = write_object(&self.entry, index, "init.mp4", &init)?;
            let mut e = self.entry_for(
                &mut g,
                index,
                Role::Init,
                layout::media_ext(Role::Init),
                init.len() as u64,
                &h,
            );
            e.content_type = Some("video/mp4".into());
            e.derived_from = from.clone();
            g.progress.last_init = Some(index);
            entries.push(e);
        }
        let index = g.progress.next_index;
        let h = write_object(&self.entry, index, "segment.m4s", &f.data)?;
        let mut e = self.entry_for(
            &mut g,
            index,
            Role::Segment,
            layout::media_ext(Role::Segment),
            f.data.len() as u64,
            &h,
        );
        e.content_type = Some("video/mp4".into());
        e.derived_from = from;
        let start = g.media_base + f.start;
        e.media = Some(MediaRange {
            start,
            end: start + f.duration,
        });
        g.progress.segments += 1;
        g.progress.media_end = g.progress.media_end.max(start + f.duration);
        entries.push(e);
        self.write_chunk(&mut g, entries, false)?;
        drop(g);
        self.changed.notify_one();
        Ok(())
    }

    /// Whether `f` is a fragment a re-run derived again that a stored segment
    /// already holds (dropped). The first one past them continues the stored
    /// segments if the run made the newest of them again, byte for byte;
    /// otherwise the derivative may lack media there, and says so.
    fn drop_rederived(&self, g: &mut Inner, f: &Fragment) -> bool {
        let start = g.media_base + f.start;
        let media_end = g.progress.media_end;
        let Some(r) = g.rederiving.as_mut() else {
            return false;
        };
        match r.fragment(start, &f.data, media_end) {
            Rederived::Stored => return true,
            Rederived::Continues => tracing::info!(
                id = %self.id,
                start,
                "live derivation resumed: the re-run made the stored segments again, byte for byte; continuing after them"
            ),
            Rederived::Misses(hole) => {
                tracing::warn!(id = %self.id, start, "live derivation resumed with a hole: {}", hole.reason);
                g.state.derivative_holes.push(hole);
                if let Err(e) = self.save_state(g) {
                    tracing::error!(id = %self.id, "saving a derivative hole: {e}");
                }
            }
        }
        g.rederiving = None;
        false
    }

    /// Stops taking bytes for good, without closing: this spool copy is
    /// not the recording's any more (another gateway continued it).
    pub fn discard(self: &Arc<Self>) {
        self.set_held(false);
        self.lock().closing = true;
        self.stop_run();
    }

    /// Closes the recording: the pipeline drains, the tail is cut, a tail
    /// gap is recorded if the recorder went silent, and the manifest is
    /// written to the spool for the uploader. Blocking.
    pub fn close(self: &Arc<Self>, by: ClosedBy) -> std::io::Result<()> {
        {
            let mut g = self.lock();
            if g.state.closed.is_some() || g.closing {
                return Ok(());
            }
            // A stream may have attached since the watchdog looked.
            if by == ClosedBy::Timeout && g.attached > 0 {
                return Ok(());
            }
            g.closing = true;
        }
        self.stop_run();
        let mut g = self.lock();
        if g.state.closed.is_some() {
            return Ok(());
        }
        let mut entries = Vec::new();
        let d = g.durable;
        self.cut_raw(&mut g, d, &mut entries)?;
        let at = now();
        if by == ClosedBy::Timeout {
            let gap = Gap {
                kind: "tail".into(),
                wall_from: g.state.last_byte_at.clone(),
                wall_to: at.clone(),
                media_from: g.progress.media_end,
                media_to: None,
                bytes: None,
                reason: format!(
                    "the recorder sent nothing for {} s; closed by timeout",
                    self.opts.close_after.as_secs()
                ),
            };
            g.state.gaps.push(gap.clone());
            g.state.pending_gaps.push(gap);
        }
        self.write_chunk(&mut g, entries, true)?;
        g.state.closed = Some(Closed { by, at });
        let manifest = self.build_manifest(&g)?;
        write_atomic(&self.entry.manifest(), &manifest.to_bytes())?;
        self.save_state(&g)?;
        drop(g);
        self.view.lock().expect("view").end();
        tracing::info!(recorder = %self.recorder, id = %self.id, by = by.as_str(), "live recording closed");
        self.changed.notify_one();
        Ok(())
    }

    /// The full manifest from the local journal (at close).
    fn build_manifest(&self, g: &Inner) -> std::io::Result<Manifest> {
        let mut objects = Vec::new();
        let mut chunks = 0;
        for seq in self.journal.seqs()? {
            objects.extend(self.journal.read(seq)?.entries);
            chunks += 1;
        }
        let closed = g.state.closed.as_ref().expect("closing");
        Ok(live_manifest(LiveClose {
            header: &self.header,
            prefix: &self.prefix,
            objects,
            journal_chunks: chunks,
            state: &g.state,
            progress: &g.progress,
            stream_bytes: g.durable + g.state.skipped,
            derivation: self.derivation_summary(g),
            deadline: live_deadline(
                self.opts.policy.as_ref(),
                &self.header,
                &closed.at,
                g.state.log,
            ),
        }))
    }

    fn derivation_summary(&self, g: &Inner) -> DerivationSummary {
        live_derivation(
            g.derivation.clone(),
            &DerivationFacts {
                holes: g.state.derivative_holes.clone(),
                log: g.state.log,
                media_on: self.opts.media.is_some(),
                stream_bytes: g.durable + g.state.skipped,
                segments: g.progress.segments,
                derive_failed: g.derive_failed.clone(),
            },
        )
    }

    /// What the device is told about derivation when the recording closes.
    pub fn derivation_note(&self) -> custody_proto::DerivationNote {
        let g = self.lock();
        let d = self.derivation_summary(&g);
        custody_proto::DerivationNote {
            status: d.status.to_string(),
            segments: g.progress.segments,
            reason: d.reason,
        }
    }

    /// Whether this mark (its exact JSON) was chained already; notes it.
    pub fn mark_seen(&self, marker: &custody_format::metadata::Marker) -> bool {
        let h = chain::sha256(&serde_json::to_vec(marker).expect("marker serialises"));
        !self.marks_seen.lock().expect("marks").insert(h)
    }

    /// Chains an annotation made while recording (a marker the officer
    /// set, R3): durable in the spool when this returns, stored with the
    /// next upload, signed by the next checkpoint.
    pub fn annotate_live(&self, body: &[u8]) -> std::io::Result<ObjectEntry> {
        let mut g = self.lock();
        if g.state.closed.is_some() {
            return Err(std::io::Error::other("the recording is closed"));
        }
        let index = g.progress.next_index;
        let h = write_object(&self.entry, index, "annotation.json", body)?;
        let mut e = self.entry_for(
            &mut g,
            index,
            Role::Annotation,
            "json",
            body.len() as u64,
            &h,
        );
        e.content_type = Some("application/json".into());
        self.write_chunk(&mut g, vec![e.clone()], false)?;
        drop(g);
        self.changed.notify_one();
        Ok(e)
    }

    /// Writes the header as object 0 in the first journal chunk (a new
    /// recording).
    pub fn start_chain(&self, header_bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.lock();
        if g.next_seq > 0 {
            return Ok(());
        }
        let h = chain::sha256(header_bytes);
        let mut e = self.entry_for(
            &mut g,
            0,
            Role::Header,
            "json",
            header_bytes.len() as u64,
            &h,
        );
        e.content_type = Some("application/json".into());
        self.write_chunk(&mut g, vec![e], false)?;
        Ok(())
    }

    /// Marks a journal chunk as stored and forgets its derived files.
    pub fn mark_uploaded(&self, chunk: &JournalChunk, latency: Duration) -> std::io::Result<()> {
        let (seq, entries) = (chunk.seq, &chunk.entries);
        let mut g = self.lock();
        g.state.uploaded = seq + 1;
        g.state.stored_skipped += chunk
            .gaps
            .iter()
            .filter_map(|gap| gap.bytes.map(|b| b.length))
            .sum::<u64>();
        let stored = chunk.progress.cut + g.state.stored_skipped;
        g.state.stored_stream = g.state.stored_stream.max(stored);
        self.save_state(&g)?;
        let stored = g.state.stored_stream;
        let log = g.state.log;
        drop(g);
        // Outside the lock: a stream reading the watch may be waiting for it.
        self.stored.send_replace(stored);
        // Chunks that close a segment (or cut raw media), not a log's, a
        // header's or an annotation's.
        if !log
            && entries
                .iter()
                .any(|e| matches!(e.role, Role::Segment | Role::RawChunk))
        {
            self.opts.metrics.live_segment_stored(latency);
        }
        for e in entries {
            if matches!(e.role, Role::Init | Role::Segment | Role::Annotation) {
                let _ = std::fs::remove_file(object_path(&self.entry, e.index, e.role));
            }
        }
        let mut l = self.opts.latencies.lock().expect("latencies");
        if l.len() < 1_000_000 {
            l.push(latency);
        }
        Ok(())
    }

    /// The journal as storage holds it: the hash chain over the exact
    /// bytes of the first `chunks` chunks (each copied to storage byte for
    /// byte from the spool). Extended from where it last stood, so each
    /// chunk is read once per process.
    async fn journal_head(&self, chunks: u64) -> std::io::Result<JournalHead> {
        let mut j = self.journal_head.lock().expect("journal head").clone();
        if j.chunks > chunks {
            j = JournalHead::default();
        }
        while j.chunks < chunks {
            j.extend(&tokio::fs::read(self.journal.path(j.chunks)).await?);
        }
        *self.journal_head.lock().expect("journal head") = j.clone();
        Ok(j)
    }

    /// Where the next checkpoint goes: its number, the hash of the one
    /// before, and the journal chunks stored so far.
    async fn next_place(&self) -> Result<checkpoint::Place, custody_store::StoreError> {
        let (seq, previous, uploaded) = {
            let g = self.lock();
            (
                g.state.checkpoints,
                g.state.last_checkpoint.clone(),
                g.state.uploaded,
            )
        };
        let journal = self
            .journal_head(uploaded)
            .await
            .map_err(|e| spool_error("read the journal", e))?;
        Ok(checkpoint::Place {
            seq,
            previous,
            journal: Some(journal),
        })
    }

    /// Notes a checkpoint stored: the next one links to it.
    fn stored_checkpoint(
        &self,
        signed: &checkpoint::Signed,
    ) -> Result<(), custody_store::StoreError> {
        let mut g = self.lock();
        g.state.checkpoints = signed.checkpoint.seq + 1;
        g.state.last_checkpoint = Some(signed.sha256_hex());
        g.state.checkpoint_count = signed.checkpoint.object_count;
        self.save_state(&g)
            .map_err(|e| spool_error("save live state", e))
    }

    /// Signs and stores a non-final checkpoint over the first `count`
    /// objects and the journal chunks stored so far (all in storage),
    /// unless the last one already covers them.
    pub async fn checkpoint(
        &self,
        store: &custody_store::Store,
        count: u64,
        head: &str,
    ) -> Result<(), custody_store::StoreError> {
        if count <= self.lock().state.checkpoint_count {
            return Ok(());
        }
        let place = self.next_place().await?;
        let signed = checkpoint::sign(
            &self.opts.signer,
            checkpoint::Statement {
                recorder: self.recorder.clone(),
                recording_id: self.id.clone(),
                prefix: self.prefix.clone(),
                seq: place.seq,
                object_count: count,
                chain_head: head.to_string(),
                journal: place.journal,
                manifest_sha256: None,
                previous: place.previous,
                is_final: false,
            },
        );
        checkpoint::store(store, &self.prefix, &signed).await?;
        self.stored_checkpoint(&signed)
    }

    /// After the close, once every journal chunk is stored: the final
    /// checkpoint over the manifest, then the manifest (`checkpoint::seal`).
    pub async fn seal(
        &self,
        store: &custody_store::Store,
        manifest: &Manifest,
        manifest_bytes: &[u8],
    ) -> Result<(), custody_store::StoreError> {
        let place = self.next_place().await?;
        let signed =
            checkpoint::seal(store, &self.opts.signer, manifest, manifest_bytes, place).await?;
        self.stored_checkpoint(&signed)
    }

    pub fn mark_archived(&self) -> std::io::Result<()> {
        let mut g = self.lock();
        g.state.archived = true;
        self.save_state(&g)
    }

    /// What the device is told when the recording closes.
    pub fn gaps(&self) -> Vec<Gap> {
        self.lock().state.gaps.clone()
    }

    /// How the feed looks to a command center.
    pub fn status(&self) -> LiveStatus {
        let g = self.lock();
        LiveStatus {
            state: if g.state.closed.is_some() || g.closing {
                "ended"
            } else if g.attached == 0 {
                "reconnecting"
            } else if !g.state.gaps.is_empty() {
                "gap"
            } else {
                "live"
            },
            started_at: g.state.started_at.clone(),
            last_byte_at: g.state.last_byte_at.clone(),
            gaps: g.state.gaps.len(),
            segments: g.progress.segments,
        }
    }
}

/// A live recording's state for the wall.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// `live`, `reconnecting` (no stream attached), `gap` (streaming, with
    /// gaps recorded), `ended`.
    pub state: &'static str,
    pub started_at: String,
    pub last_byte_at: String,
    pub gaps: usize,
    pub segments: u64,
}

/// The spool file of a derived object.
pub fn object_path(entry: &EntryDir, index: u64, role: Role) -> PathBuf {
    let name = match role {
        Role::Init => "init.mp4",
        Role::Annotation => "annotation.json",
        _ => "segment.m4s",
    };
    LiveRecording::objects_dir(entry).join(format!("{index:06}-{name}"))
}

fn write_object(
    entry: &EntryDir,
    index: u64,
    name: &str,
    data: &[u8],
) -> std::io::Result<chain::Hash> {
    let p = LiveRecording::objects_dir(entry).join(format!("{index:06}-{name}"));
    let mut f = std::fs::File::create(&p)?;
    f.write_all(data)?;
    // The journal will name this object: it must survive a crash first.
    f.sync_data()?;
    Ok(chain::sha256(data))
}

/// A segment in the chain: where it starts in media time, and its SHA-256.
#[derive(Debug, Clone)]
struct StoredSegment {
    start: f64,
    sha256: String,
}

/// A pipeline running again, after a restart, over stored segments.
#[derive(Debug)]
struct Rederiving {
    /// The newest stored segment: fragments up to it are dropped.
    last: StoredSegment,
    /// Whether the run made it again byte for byte (`None`: not yet).
    again: Option<bool>,
}

/// What a re-run's fragment is to the stored segments.
#[derive(Debug, PartialEq)]
enum Rederived {
    /// One of them: dropped.
    Stored,
    /// The first after them, the newest made again byte for byte.
    Continues,
    /// The first after them, but the re-run did not make the newest again:
    /// what lies between cannot be told, and is recorded as missing.
    Misses(DerivativeHole),
}

impl Rederiving {
    /// Whether a fragment starting at `start` is one already stored. A run's
    /// fragments start in order, so those up to the newest stored one are.
    fn stored(&self, start: f64) -> bool {
        start < self.last.start + SAME_INSTANT
    }

    /// The re-run's next fragment, `data` starting at media time `start`;
    /// the stored segments reach `media_end`.
    fn fragment(&mut self, start: f64, data: &[u8], media_end: f64) -> Rederived {
        if self.stored(start) {
            if (start - self.last.start).abs() < SAME_INSTANT {
                self.again = Some(hex::encode(chain::sha256(data)) == self.last.sha256);
            }
            return Rederived::Stored;
        }
        let why = match self.again {
            Some(true) => return Rederived::Continues,
            Some(false) => {
                "it made the newest stored segment differently (another GStreamer or pipeline?)"
            }
            None => "none of its segments starts where the newest stored one does",
        };
        Rederived::Misses(DerivativeHole {
            media_from: media_end,
            media_to: start.max(media_end),
            reason: format!(
                "gateway restarted: the remux run was run again, but {why}; media from the end of the stored segments to the next one may be missing from the derivative (the raw chunks hold every byte)"
            ),
        })
    }
}

/// The newest segment in the journal.
fn last_segment(journal: &Journal) -> std::io::Result<Option<StoredSegment>> {
    for seq in journal.seqs()?.into_iter().rev() {
        let chunk = journal.read(seq)?;
        if let Some(e) = chunk.entries.iter().rev().find(|e| e.role == Role::Segment) {
            return Ok(e.media.as_ref().map(|m| StoredSegment {
                start: m.start,
                sha256: e.sha256.clone(),
            }));
        }
    }
    Ok(None)
}

/// Hands the live pipeline's output to its recording.
struct LiveOutput {
    rec: std::sync::Weak<LiveRecording>,
}

impl remux::Output for LiveOutput {
    fn init(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(r) = self.rec.upgrade() {
            r.on_init(data);
        }
        Ok(())
    }

    fn part(&mut self, p: remux::Part<'_>) -> std::io::Result<()> {
        if let Some(r) = self.rec.upgrade() {
            r.on_part(p);
        }
        Ok(())
    }

    fn fragment(&mut self, f: Fragment) -> std::io::Result<()> {
        match self.rec.upgrade() {
            Some(r) => r.on_fragment(f),
            None => Ok(()),
        }
    }
}

/// The chain entry of the object after `progress` (its next index, chained
/// to its head), cut at `at`; advances `progress` past it.
pub(crate) fn chain_next(
    progress: &mut Progress,
    prefix: &str,
    role: Role,
    ext: &str,
    size: u64,
    h: &chain::Hash,
    at: String,
) -> ObjectEntry {
    let index = progress.next_index;
    let prev = chain::parse_hex(&progress.chain_head);
    let c = chain::link(prev.as_ref(), h);
    progress.next_index = index + 1;
    progress.chain_head = hex::encode(c);
    ObjectEntry {
        index,
        key: layout::object_key(prefix, index, role, ext),
        role,
        size,
        sha256: hex::encode(h),
        chain: hex::encode(c),
        content_type: None,
        derived_from: None,
        media: None,
        range: None,
        at: Some(at),
    }
}

/// What a closed live recording's manifest is made of.
pub(crate) struct LiveClose<'a> {
    pub header: &'a HeaderDoc,
    pub prefix: &'a str,
    /// Every object, in chain order (object 0 is the header, see
    /// `start_chain`).
    pub objects: Vec<ObjectEntry>,
    pub journal_chunks: u64,
    /// Its state, closed.
    pub state: &'a LiveState,
    pub progress: &'a Progress,
    /// Bytes of the device's stream received (lost ones included).
    pub stream_bytes: u64,
    pub derivation: DerivationSummary,
    pub deadline: Option<custody_format::deadline::DeadlineRecord>,
}

/// The manifest of a closed live recording. Pure: its times are those of
/// its state.
pub(crate) fn live_manifest(c: LiveClose<'_>) -> Manifest {
    let LiveClose {
        header: h,
        prefix,
        objects,
        journal_chunks: chunks,
        state,
        progress,
        stream_bytes,
        derivation,
        deadline,
    } = c;
    let gaps = state.gaps.clone();
    let mandatory = h.meta.full_process.as_ref().is_some_and(|f| f.mandatory);
    let closed = state.closed.clone().expect("closing");
    Manifest::build(Closing {
        header: h,
        prefix,
        objects,
        chain_head: progress.chain_head.clone(),
        finalized_at: closed.at.clone(),
        gateway: &h.gateway,
        declared_sha256: None,
        derivation,
        live_end: custody_format::time_fmt::parse(&closed.at),
        live: Some(LiveSummary {
            closed_by: closed.by,
            started_at: state.started_at.clone(),
            ended_at: closed.at,
            media_duration: progress.media_end,
            stream_bytes,
            complete: gaps.is_empty(),
            full_process_violation: mandatory && !gaps.is_empty(),
            gaps,
            journal_chunks: chunks,
            raw_chunks: state.raw_chunks,
        }),
        deadline,
    })
}

/// The storage deadline of a live recording closed at `closed_at`: none
/// for a gateway log, or without a calendar.
pub(crate) fn live_deadline(
    policy: Option<&crate::policy::Policy>,
    header: &HeaderDoc,
    closed_at: &str,
    log: bool,
) -> Option<custody_format::deadline::DeadlineRecord> {
    match (policy, custody_format::time_fmt::parse(closed_at)) {
        (Some(p), Some(at)) if !log => {
            Some(crate::policy::deadline::assess(p, header, Some(at), at))
        }
        _ => None,
    }
}

/// What decides a live recording's derivation status at its close.
pub(crate) struct DerivationFacts {
    /// Media the derivative lacks (restarts it could not resume from).
    pub holes: Vec<DerivativeHole>,
    /// A gateway log, not media.
    pub log: bool,
    /// Derivation is on at this gateway.
    pub media_on: bool,
    pub stream_bytes: u64,
    pub segments: u64,
    /// Why deriving stopped, if it did.
    pub derive_failed: Option<String>,
}

/// The derivation of a live recording: `base` is what its last remux run
/// that ended well reported.
pub(crate) fn live_derivation(
    base: Option<DerivationSummary>,
    f: &DerivationFacts,
) -> DerivationSummary {
    let mut d = base.unwrap_or(DerivationSummary {
        status: DerivationStatus::None,
        input: None,
        pipeline: None,
        tracks: Vec::new(),
        reason: None,
        recipe: None,
        holes: Vec::new(),
    });
    d.holes = f.holes.clone();
    if f.log {
        d.status = DerivationStatus::None;
        d.reason = Some("a log kept by the gateway, not media".into());
    } else if !f.media_on {
        d.status = DerivationStatus::None;
        d.reason = Some("derivation is turned off on this gateway".into());
    } else if f.stream_bytes == 0 {
        // Opened and ended without a byte: nothing to derive from.
        d.status = DerivationStatus::None;
        d.reason = Some("the recording holds no media: the recorder sent no bytes".into());
    } else if f.segments > 0 {
        d.status = DerivationStatus::Derived;
        if let Some(r) = &f.derive_failed {
            d.reason = Some(format!("derivation stopped part way: {r}"));
        }
    } else {
        d.status = DerivationStatus::Failed;
        d.reason = Some(
            f.derive_failed
                .clone()
                .unwrap_or_else(|| "no media segment was produced".into()),
        );
    }
    d
}

/// How long ago an RFC 3339 time was, for closing by timeout after a restart.
pub fn age(t: &str) -> Duration {
    time_fmt::parse(t)
        .map(|t| (custody_format::clock::now() - t).unsigned_abs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rederiving(stored: &[u8]) -> Rederiving {
        Rederiving {
            last: StoredSegment {
                start: 4.0,
                sha256: hex::encode(chain::sha256(stored)),
            },
            again: None,
        }
    }

    #[test]
    fn a_rerun_drops_what_is_stored_and_continues_after_it() {
        let mut r = rederiving(b"segment 2");
        assert_eq!(r.fragment(0.0, b"segment 0", 6.0), Rederived::Stored);
        assert_eq!(r.fragment(2.0, b"segment 1", 6.0), Rederived::Stored);
        assert_eq!(r.fragment(4.0, b"segment 2", 6.0), Rederived::Stored);
        assert_eq!(r.fragment(5.99, b"segment 3", 6.0), Rederived::Continues);
    }

    #[test]
    fn a_rerun_that_does_not_make_the_stored_segment_again_records_a_hole() {
        // Made differently.
        let mut r = rederiving(b"segment 2");
        assert_eq!(r.fragment(4.0, b"segment 2'", 6.0), Rederived::Stored);
        let Rederived::Misses(hole) = r.fragment(6.0, b"segment 3", 6.0) else {
            panic!("no hole");
        };
        assert_eq!((hole.media_from, hole.media_to), (6.0, 6.0));
        assert!(hole.reason.contains("differently"), "{}", hole.reason);
        // Segments cut elsewhere: none starts where the stored one does.
        let mut r = rederiving(b"segment 2");
        assert_eq!(r.fragment(3.0, b"other", 6.0), Rederived::Stored);
        let Rederived::Misses(hole) = r.fragment(7.0, b"other", 6.0) else {
            panic!("no hole");
        };
        assert_eq!((hole.media_from, hole.media_to), (6.0, 7.0));
        assert!(
            hole.reason.starts_with("gateway restarted"),
            "{}",
            hole.reason
        );
    }
}
