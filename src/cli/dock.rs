//! `custody dock DIR…` — the docking-rack client.
//!
//! Hashes every file, then uploads several at once over one connection,
//! each on its own stream. Any interruption (gateway restart, lost link,
//! this process killed and started again) resumes from what the gateway
//! acknowledged as durable, never from zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};

use custody::client::dock::{Progress, UploadJob, UploadOutcome, upload};
use custody::client::{Client, ClientError, sidecar};
use custody::metadata::{FullProcess, FullProcessReason, Occasion, RecordingMeta, RecordingMode};
use custody::protocol::RecordingState;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub device: super::DeviceArgs,
    /// Files uploaded at once (one QUIC stream each).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Keep retrying a file for this long after failures that may pass
    /// (lost link, gateway restart).
    #[arg(long, default_value_t = 600)]
    pub retry_for_secs: u64,
    /// Defaults for files whose sidecar lacks them.
    #[arg(long)]
    pub recorder: Option<String>,
    #[arg(long)]
    pub officer: Option<String>,
    #[arg(long, value_parser = parse_occasion)]
    pub occasion: Option<Occasion>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long = "case")]
    pub case_id: Option<String>,
    #[arg(long = "proof")]
    pub proof_object: Option<String>,
    /// Mark recordings as mandatory full-process, with this reason.
    #[arg(long, value_parser = parse_reason)]
    pub mandatory: Option<FullProcessReason>,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not report the recorder's inventory (the files found) first.
    #[arg(long, conflicts_with = "inventory_only")]
    pub no_inventory: bool,
    /// Only report the inventory; upload nothing (the compliance report
    /// then lists the recordings as not yet uploaded).
    #[arg(long)]
    pub inventory_only: bool,
    /// Seconds of silence after which the link counts as lost (then the
    /// dock reconnects and resumes from what the gateway holds).
    #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
    pub link_timeout: f64,
    /// Folders (or files) to upload.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

/// A positive, finite number of seconds (at most a day).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err("a number of seconds greater than 0 (at most 86400)".into()),
    }
}

pub fn parse_occasion(s: &str) -> Result<Occasion, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        "one of on-site-inspection, random-spot-check, investigation-evidence, \
         evidence-preservation, hearing, administrative-coercion, document-service"
            .to_string()
    })
}

pub fn parse_reason(s: &str) -> Result<FullProcessReason, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| "one of personal-liberty, life-health, major-property".to_string())
}

/// One line of the final report: a file uploaded (or that failed).
#[derive(Debug, Serialize)]
struct FileResult {
    path: String,
    recording: String,
    size: u64,
    sha256: String,
    /// "archived", "spooled", "mismatch" or "error".
    result: String,
    manifest_key: Option<String>,
    resumed_from: u64,
    /// Bytes of the file written into upload streams, over every attempt:
    /// more than `size - resumed_from` of the first attempt when an
    /// attempt failed and bytes past the gateway's durable offset had to
    /// be sent again (it counts bytes handed to QUIC, some of which may
    /// not have left this machine before the failure).
    bytes_sent: u64,
    /// Attempts made (1 when nothing failed).
    attempts: u32,
    /// The gateway held the whole recording before this run sent anything
    /// for it: nothing was sent, and the gateway records this file's name
    /// with the recording if it is a new one.
    already_stored: bool,
    /// An earlier file of this run with the very same bytes (the same
    /// recording).
    #[serde(skip_serializing_if = "Option::is_none")]
    same_bytes_as: Option<String>,
    /// The sidecar whose metadata went with the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    sidecar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    derivation: Option<custody::protocol::DerivationNote>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One line of the final report: an entry found but not uploaded —
/// `skipped` (nothing to upload, with the reason) or `error` (it could not
/// be read).
#[derive(Debug, Serialize)]
struct NotUploaded {
    path: String,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl NotUploaded {
    fn skipped(path: &Path, reason: impl Into<String>) -> NotUploaded {
        NotUploaded {
            path: path.display().to_string(),
            result: "skipped",
            reason: Some(reason.into()),
            error: None,
        }
    }

    fn unreadable(path: &Path, error: impl std::fmt::Display) -> NotUploaded {
        NotUploaded {
            path: path.display().to_string(),
            result: "error",
            reason: None,
            error: Some(error.to_string()),
        }
    }
}

/// What the folders hold: the files to upload, the sidecars beside them
/// (`x.json` beside `x`: metadata, not a recording), and every entry that
/// is not uploaded, with why. Hidden files are files like any other.
#[derive(Debug, Default)]
struct Found {
    files: Vec<PathBuf>,
    sidecars: std::collections::HashSet<PathBuf>,
    not_uploaded: Vec<NotUploaded>,
}

/// What kind of non-regular entry this is, in words.
fn entry_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device node"
    } else {
        "not a regular file"
    }
}

/// Every entry under `paths`. A path given on the command line must exist;
/// below it, nothing is passed over without a line in the report.
fn discover(paths: &[PathBuf]) -> anyhow::Result<Found> {
    for p in paths {
        std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    }
    let mut found = Found::default();
    let mut regular = Vec::new();
    // Folders by their real path: a symbolic link back up the tree (or a
    // second link to a folder) is read once.
    let mut folders: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let md = match std::fs::metadata(&p) {
            Ok(md) => md,
            Err(e)
                if std::fs::symlink_metadata(&p).is_ok()
                    && e.kind() == std::io::ErrorKind::NotFound =>
            {
                found.not_uploaded.push(NotUploaded::skipped(
                    &p,
                    "a symbolic link to nothing (its target is missing)",
                ));
                continue;
            }
            Err(e) => {
                found.not_uploaded.push(NotUploaded::unreadable(&p, e));
                continue;
            }
        };
        if md.is_dir() {
            let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if let Some(first) = folders.get(&real) {
                found.not_uploaded.push(NotUploaded::skipped(
                    &p,
                    format!(
                        "the folder {} again (a symbolic link); its files are counted there",
                        first.display()
                    ),
                ));
                continue;
            }
            folders.insert(real, p.clone());
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    for e in rd {
                        match e {
                            Ok(e) => stack.push(e.path()),
                            Err(e) => found.not_uploaded.push(NotUploaded::unreadable(&p, e)),
                        }
                    }
                }
                Err(e) => found.not_uploaded.push(NotUploaded::unreadable(&p, e)),
            }
        } else if md.is_file() {
            regular.push(p);
        } else {
            let kind = entry_kind(md.file_type());
            found.not_uploaded.push(NotUploaded::skipped(
                &p,
                format!("{kind}: nothing to upload"),
            ));
        }
    }
    regular.sort();
    regular.dedup();
    // `x.json` is the sidecar of `x` when `x` is uploaded; shorter paths
    // first, so in `a`, `a.json`, `a.json.json` the last is a file again.
    regular.sort_by_key(|p| p.as_os_str().len());
    let mut files = std::collections::BTreeSet::new();
    for p in regular {
        if p.extension().is_some_and(|e| e == "json") && files.contains(&p.with_extension("")) {
            found.sidecars.insert(p);
        } else {
            files.insert(p);
        }
    }
    found.files = files.into_iter().collect();
    found.not_uploaded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn sidecar_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// What became of a file's sidecar.
#[derive(Debug, Clone, PartialEq)]
enum Sidecar {
    None,
    /// Its metadata went with the file.
    Used(PathBuf),
    /// It could not be used (not a JSON object, unreadable): its bytes
    /// are uploaded as a file of their own, so nothing is left behind.
    Unusable(PathBuf),
}

fn unusable_sidecar(sc: &Path, why: impl std::fmt::Display, warnings: &mut Vec<String>) -> Sidecar {
    warnings.push(format!(
        "{}: {why}; its metadata is ignored and it is uploaded as a file of its own",
        sc.display()
    ));
    Sidecar::Unusable(sc.to_path_buf())
}

/// A file hashed and ready to upload.
struct Prepared {
    job: UploadJob,
    warnings: Vec<String>,
    sidecar: Sidecar,
}

fn build_job(a: &Args, path: &Path) -> anyhow::Result<Prepared> {
    let (size, sha) =
        custody_fs::hash_file(path).with_context(|| format!("reading {}", path.display()))?;
    // Without a sidecar id, the content names the recording: docking the
    // same file again resumes or confirms instead of duplicating.
    let fallback_id = format!("f-{}", &hex::encode(sha)[..40]);
    let mut meta = RecordingMeta {
        recording_id: fallback_id.clone(),
        recorder: a.recorder.clone(),
        mode: Some(RecordingMode::Docked),
        officer: a.officer.clone(),
        occasion: a.occasion,
        category: a.category.clone(),
        case_id: a.case_id.clone(),
        proof_object: a.proof_object.clone(),
        full_process: a.mandatory.map(|r| FullProcess {
            mandatory: true,
            reason: Some(r),
        }),
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let sc = sidecar_path(path);
    let sidecar = match std::fs::read(&sc) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Sidecar::None,
        Err(e) => unusable_sidecar(&sc, e, &mut warnings),
        Ok(b) => match serde_json::from_slice::<serde_json::Value>(&b) {
            Ok(serde_json::Value::Object(m)) => {
                warnings.extend(sidecar::apply(&mut meta, &m));
                Sidecar::Used(sc)
            }
            Ok(_) => unusable_sidecar(&sc, "not a JSON object", &mut warnings),
            Err(e) => unusable_sidecar(&sc, e, &mut warnings),
        },
    };
    warnings.extend(sidecar::sanitize(&mut meta, &fallback_id));
    Ok(Prepared {
        job: UploadJob {
            path: path.to_path_buf(),
            meta,
            size,
            sha256: sha,
        },
        warnings,
        sidecar,
    })
}

/// Hashes every file found (and reads its sidecar). A file that cannot be
/// read is reported, not fatal; an unusable sidecar is uploaded as a file of
/// its own; the sidecar of a file that cannot be read is listed with why.
fn prepare(a: &Args, found: Found) -> (Vec<Prepared>, Vec<NotUploaded>, usize) {
    let Found {
        files,
        mut sidecars,
        mut not_uploaded,
    } = found;
    let mut jobs = Vec::new();
    let mut used_sidecars = 0;
    let mut queue: std::collections::VecDeque<PathBuf> = files.into();
    while let Some(f) = queue.pop_front() {
        match tokio::task::block_in_place(|| build_job(a, &f)) {
            Ok(p) => {
                match &p.sidecar {
                    Sidecar::Used(_) => used_sidecars += 1,
                    Sidecar::Unusable(sc) if sidecars.remove(sc) => queue.push_back(sc.clone()),
                    _ => {}
                }
                jobs.push(p);
            }
            Err(e) => {
                let sc = sidecar_path(&f);
                if sidecars.remove(&sc) {
                    not_uploaded.push(NotUploaded::skipped(
                        &sc,
                        format!("the sidecar of {}, which could not be read", f.display()),
                    ));
                }
                not_uploaded.push(NotUploaded::unreadable(&f, format!("{e:#}")));
            }
        }
    }
    (jobs, not_uploaded, used_sidecars)
}

/// One connection shared by all uploads, re-established when it drops.
struct Link {
    client: Client,
    conn: Mutex<Option<quinn::Connection>>,
}

impl Link {
    async fn get(&self) -> Result<quinn::Connection, ClientError> {
        let mut g = self.conn.lock().await;
        if let Some(c) = &*g
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let c = self.client.connect().await?;
        *g = Some(c.clone());
        Ok(c)
    }
}

/// What the attempts at one file cost: bytes written into streams, and
/// how many attempts there were.
#[derive(Default)]
struct SendCount {
    bytes: std::sync::atomic::AtomicU64,
    /// Where the current attempt has written up to.
    at: std::sync::atomic::AtomicU64,
    attempts: std::sync::atomic::AtomicU32,
    /// The current attempt was accepted (it reached the gateway).
    accepted: std::sync::atomic::AtomicBool,
}

impl SendCount {
    fn accepted(&self, offset: u64) {
        self.at.store(offset, Ordering::Relaxed);
        self.accepted.store(true, Ordering::Relaxed);
    }

    fn sent(&self, pos: u64) {
        let before = self.at.swap(pos, Ordering::Relaxed);
        self.bytes
            .fetch_add(pos.saturating_sub(before), Ordering::Relaxed);
    }
}

/// Uploads a file, retrying what may pass. Also says whether the gateway
/// held the whole recording already when this run first asked (then
/// nothing was sent — not even by an attempt that failed).
async fn upload_with_retry(
    link: &Link,
    job: &UploadJob,
    bar: &ProgressBar,
    total: &ProgressBar,
    retry_for: Duration,
    count: &Arc<SendCount>,
) -> Result<(UploadOutcome, bool), ClientError> {
    let start = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let first_state = Arc::new(std::sync::OnceLock::<RecordingState>::new());
    loop {
        count.attempts.fetch_add(1, Ordering::Relaxed);
        count.accepted.store(false, Ordering::Relaxed);
        let attempt = async {
            let conn = link.get().await?;
            let (bar2, total2, counted2) = (bar.clone(), total.clone(), counted.clone());
            let (first2, count2) = (first_state.clone(), count.clone());
            let progress: custody::client::dock::ProgressFn = Arc::new(move |p| {
                let offset = match p {
                    Progress::Accepted { offset, state } => {
                        let _ = first2.set(state);
                        count2.accepted(offset);
                        offset
                    }
                    Progress::Durable(offset) => offset,
                    Progress::Sent(pos) => {
                        count2.sent(pos);
                        return;
                    }
                };
                bar2.set_position(offset);
                let prev = counted2.fetch_max(offset, std::sync::atomic::Ordering::Relaxed);
                if offset > prev {
                    total2.inc(offset - prev);
                }
            });
            upload(&conn, job, progress).await
        };
        match attempt.await {
            // `resumed_from` is where the gateway let the successful attempt
            // start: what it held durably then (at least what had been
            // acknowledged before the link failed).
            Ok(o) => {
                let already = matches!(
                    first_state.get(),
                    Some(RecordingState::Spooled | RecordingState::Archived)
                );
                return Ok((o, already));
            }
            Err(e) if e.is_retryable() && start.elapsed() < retry_for => {
                bar.set_message(custody::text::escape(&format!("retrying: {e}")).into_owned());
                // An attempt the gateway accepted was a working link: start
                // the back-off over, so a gateway that restarts now and then
                // does not leave the rack waiting ever longer.
                if count.accepted.load(Ordering::Relaxed) {
                    backoff = Duration::from_millis(250);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tells the gateway which recordings each recorder holds, as found in the
/// folders. A failure is reported and the uploads go ahead regardless.
async fn report_inventory(link: &Link, jobs: &[Prepared]) {
    let mut by_recorder: std::collections::BTreeMap<
        Option<String>,
        Vec<custody::protocol::InventoryItem>,
    > = Default::default();
    for Prepared { job: j, .. } in jobs {
        let items = by_recorder.entry(j.meta.recorder.clone()).or_default();
        // Files with the same bytes are one recording.
        if items.iter().any(|i| i.recording_id == j.meta.recording_id) {
            continue;
        }
        items.push(custody::protocol::InventoryItem {
            recording_id: j.meta.recording_id.clone(),
            size: j.size,
            started_at: j.meta.started_at.clone(),
        });
    }
    let taken_at = custody::time_fmt::now();
    for (recorder, items) in by_recorder {
        let who = recorder.clone().unwrap_or_else(|| "this device".into());
        let r = async {
            let conn = link.get().await?;
            custody::client::dock::inventory(&conn, recorder.as_deref(), &taken_at, &items).await
        }
        .await;
        match r {
            Ok(n) => eprintln_escaped!("inventory of {who}: {n} recordings reported"),
            Err(e) => eprintln_escaped!("warning: inventory of {who} not reported: {e}"),
        }
    }
}

/// Files that go to the same recording (the same bytes without a sidecar
/// id, or the same sidecar id), in the order found: uploaded one after the
/// other, so the first sends the bytes and the others find them stored.
fn by_recording(jobs: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut groups: Vec<Vec<Prepared>> = Vec::new();
    for p in jobs {
        let same = |g: &&mut Vec<Prepared>| {
            g[0].job.meta.recorder == p.job.meta.recorder
                && g[0].job.meta.recording_id == p.job.meta.recording_id
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    groups
}

/// Uploads one file and says how it went.
async fn dock_file(
    p: Prepared,
    same_bytes_as: Option<String>,
    link: &Link,
    bar: &ProgressBar,
    total: &ProgressBar,
    retry_for: Duration,
) -> FileResult {
    let Prepared {
        job,
        warnings,
        sidecar,
    } = p;
    let count = Arc::new(SendCount::default());
    let r = upload_with_retry(link, &job, bar, total, retry_for, &count).await;
    let res = FileResult {
        path: job.path.display().to_string(),
        recording: format!(
            "{}/{}",
            job.meta.recorder.clone().unwrap_or_else(|| "-".into()),
            job.meta.recording_id
        ),
        size: job.size,
        sha256: hex::encode(job.sha256),
        result: String::new(),
        manifest_key: None,
        resumed_from: 0,
        bytes_sent: count.bytes.load(Ordering::Relaxed),
        attempts: count.attempts.load(Ordering::Relaxed),
        already_stored: false,
        same_bytes_as,
        sidecar: match sidecar {
            Sidecar::Used(p) => Some(p.display().to_string()),
            _ => None,
        },
        derivation: None,
        warnings,
        error: None,
    };
    let res = match r {
        Ok((o, already_stored)) => FileResult {
            recording: format!("{}/{}", o.recorder, o.recording_id),
            result: match (o.sha256_matched, o.state) {
                (false, _) => "mismatch",
                (true, RecordingState::Archived) => "archived",
                (true, _) => "spooled",
            }
            .into(),
            manifest_key: Some(o.manifest_key),
            resumed_from: o.resumed_from,
            already_stored,
            derivation: o.derivation,
            error: o.detail,
            ..res
        },
        Err(e) => FileResult {
            result: "error".into(),
            error: Some(e.to_string()),
            ..res
        },
    };
    bar.finish_with_message(if res.already_stored {
        "already stored".to_string()
    } else {
        res.result.clone()
    });
    res
}

/// The report of one uploaded (or failed) file, as text.
fn print_result(r: &FileResult) {
    let verdict = match r.result.as_str() {
        "archived" => "OK       sha256 match, stored".to_string(),
        "spooled" => "SPOOLED  sha256 match, durable at the gateway, storage pending".to_string(),
        "mismatch" => "FAILED   sha256 MISMATCH, quarantined at the gateway".to_string(),
        _ => format!("FAILED   {}", r.error.as_deref().unwrap_or("unknown error")),
    };
    println_escaped!("{verdict}  {}", r.path);
    println_escaped!("         recording {}  sha256 {}", r.recording, r.sha256);
    if let Some(k) = &r.manifest_key {
        println_escaped!("         manifest  {k}");
    }
    if let Some(sc) = &r.sidecar {
        println_escaped!("         sidecar   {sc}");
    }
    if let Some(d) = &r.derivation {
        match d.status.as_str() {
            "derived" => println_escaped!("         derived   {} CMAF segments", d.segments),
            s => println_escaped!("         derived   nothing ({s})"),
        }
        if let Some(reason) = &d.reason {
            println_escaped!("                   {reason}");
        }
    }
    if r.already_stored {
        let same = r
            .same_bytes_as
            .as_deref()
            .map(|p| format!(" (the same bytes as {p})"))
            .unwrap_or_default();
        println_escaped!(
            "         already stored{same}: nothing sent; this file name is recorded with the recording"
        );
    } else if r.resumed_from > 0 {
        println_escaped!("         resumed from byte {}", r.resumed_from);
    }
    if r.attempts > 1 {
        println!(
            "         {} attempts, {} bytes sent in all",
            r.attempts, r.bytes_sent
        );
    }
    if let (Some(e), "mismatch") = (&r.error, r.result.as_str()) {
        println_escaped!("         {e}");
    }
    for w in &r.warnings {
        println_escaped!("         warning: {w}");
    }
}

/// The report of an entry that was not uploaded, as text.
fn print_not_uploaded(n: &NotUploaded) {
    match (n.result, &n.reason, &n.error) {
        ("skipped", Some(reason), _) => {
            println_escaped!("SKIPPED  {}", n.path);
            println_escaped!("         {reason}");
        }
        (_, _, e) => println_escaped!(
            "FAILED   {}  {}",
            e.as_deref().unwrap_or("unknown error"),
            n.path
        ),
    }
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.device.load()?;
    let found = discover(&a.paths)?;
    if found.files.is_empty() && found.not_uploaded.is_empty() {
        anyhow::bail!("no files to upload");
    }
    let multi = MultiProgress::with_draw_target(if a.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>24.dim} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");

    // Hash first: the SHA-256 is the end-to-end check and names
    // recordings that have no id of their own.
    let (jobs, not_uploaded, sidecars) = prepare(&a, found);
    let total_bytes: u64 = jobs.iter().map(|p| p.job.size).sum();
    let total = multi.add(ProgressBar::new(total_bytes));
    total.set_style(style.clone());
    total.set_prefix(format!("total ({} files)", jobs.len()));

    let link = Arc::new(Link {
        client: Client::with_transport(
            &cfg.client,
            Duration::from_secs_f64(a.link_timeout.max(1.0)),
            Duration::from_secs_f64((a.link_timeout / 4.0).clamp(0.25, 5.0)),
            a.device.congestion,
        )?,
        conn: Mutex::new(None),
    });
    if !a.no_inventory && !jobs.is_empty() {
        report_inventory(&link, &jobs).await;
    }
    if a.inventory_only {
        return Ok(ExitCode::SUCCESS);
    }
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let retry_for = Duration::from_secs(a.retry_for_secs);
    let mut tasks = Vec::new();
    for group in by_recording(jobs) {
        let bars: Vec<ProgressBar> = group
            .iter()
            .map(|p| {
                let bar = multi.insert_before(&total, ProgressBar::new(p.job.size));
                bar.set_style(style.clone());
                let name = p
                    .job
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                bar.set_prefix(custody::text::escape(&name).into_owned());
                bar
            })
            .collect();
        let (link, sem, total) = (link.clone(), sem.clone(), total.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let first = (group[0].job.path.display().to_string(), group[0].job.sha256);
            let mut results = Vec::new();
            for (i, (p, bar)) in group.into_iter().zip(bars).enumerate() {
                let same = (i > 0 && p.job.sha256 == first.1).then(|| first.0.clone());
                results.push(dock_file(p, same, &link, &bar, &total, retry_for).await);
            }
            results
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await?);
    }
    total.finish();
    link.client.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), link.client.wait_idle()).await;

    let stored = results
        .iter()
        .filter(|r| r.result == "archived" || r.result == "spooled")
        .count();
    let failed =
        results.len() - stored + not_uploaded.iter().filter(|n| n.result == "error").count();
    let skipped = not_uploaded
        .iter()
        .filter(|n| n.result == "skipped")
        .count();
    for r in &results {
        if a.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            print_result(r);
        }
    }
    for n in &not_uploaded {
        if a.json {
            println!("{}", serde_json::to_string(n)?);
        } else {
            print_not_uploaded(n);
        }
    }
    if !a.json {
        // Every file found is counted once: uploaded, a sidecar (its
        // metadata went with its file), skipped (with the reason above), or
        // failed.
        let found = stored + sidecars + skipped + failed;
        let plural = if sidecars == 1 { "" } else { "s" };
        println!(
            "{found} found: {stored} uploaded, {sidecars} sidecar{plural}, {skipped} skipped, {failed} failed"
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
