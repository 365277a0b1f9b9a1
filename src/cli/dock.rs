//! `custody dock DIR…` — the docking-rack client.
//!
//! Hashes every file, then uploads several at once over one connection,
//! each on its own stream. Any interruption (gateway restart, lost link,
//! this process killed and started again) resumes from what the gateway
//! acknowledged as durable, never from zero.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};

use custody::client::upload::{Progress, UploadJob, UploadOutcome, upload};
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

/// One line of the final report.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    derivation: Option<custody::protocol::DerivationNote>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Every regular file under `paths`, except sidecars and hidden files.
fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let md = std::fs::metadata(&p).with_context(|| format!("{}", p.display()))?;
        if md.is_dir() {
            for e in std::fs::read_dir(&p).with_context(|| format!("{}", p.display()))? {
                let e = e?;
                if !e.file_name().to_string_lossy().starts_with('.') {
                    stack.push(e.path());
                }
            }
        } else if md.is_file() {
            out.push(p);
        }
    }
    // A file `x.json` is a sidecar when `x` is also being uploaded.
    let all: std::collections::HashSet<PathBuf> = out.iter().cloned().collect();
    out.retain(|p| {
        !(p.extension().is_some_and(|e| e == "json") && all.contains(&p.with_extension("")))
    });
    out.sort();
    Ok(out)
}

fn sidecar_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

fn hash_file(p: &Path) -> std::io::Result<(u64, [u8; 32])> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok((n, h.finalize().into()));
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
}

fn build_job(a: &Args, path: &Path) -> anyhow::Result<(UploadJob, Vec<String>)> {
    let (size, sha) = hash_file(path).with_context(|| format!("reading {}", path.display()))?;
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
    match std::fs::read(&sc) {
        Ok(b) => match serde_json::from_slice::<serde_json::Value>(&b) {
            Ok(serde_json::Value::Object(m)) => warnings.extend(sidecar::apply(&mut meta, &m)),
            Ok(_) => warnings.push(format!("{}: not a JSON object; ignored", sc.display())),
            Err(e) => warnings.push(format!("{}: {e}; ignored", sc.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warnings.push(format!("{}: {e}; ignored", sc.display())),
    }
    warnings.extend(sidecar::sanitize(&mut meta, &fallback_id));
    Ok((
        UploadJob {
            path: path.to_path_buf(),
            meta,
            size,
            sha256: sha,
        },
        warnings,
    ))
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

async fn upload_with_retry(
    link: &Link,
    job: &UploadJob,
    bar: &ProgressBar,
    total: &ProgressBar,
    retry_for: Duration,
) -> Result<UploadOutcome, ClientError> {
    let start = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    loop {
        let attempt = async {
            let conn = link.get().await?;
            let (bar2, total2, counted2) = (bar.clone(), total.clone(), counted.clone());
            let progress: custody::client::upload::ProgressFn = Arc::new(move |p| match p {
                Progress::Accepted { offset, .. } | Progress::Durable(offset) => {
                    bar2.set_position(offset);
                    let prev = counted2.fetch_max(offset, std::sync::atomic::Ordering::Relaxed);
                    if offset > prev {
                        total2.inc(offset - prev);
                    }
                }
                Progress::Sent(_) => {}
            });
            upload(&conn, job, progress).await
        };
        match attempt.await {
            // `resumed_from` is where the gateway let the successful attempt
            // start: what it held durably then (at least what had been
            // acknowledged before the link failed).
            Ok(o) => return Ok(o),
            Err(e) if e.is_retryable() && start.elapsed() < retry_for => {
                bar.set_message(format!("retrying: {e}"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tells the gateway which recordings each recorder holds, as found in the
/// folders. A failure is reported and the uploads go ahead regardless.
async fn report_inventory(link: &Link, jobs: &[(UploadJob, Vec<String>)]) {
    let mut by_recorder: std::collections::BTreeMap<
        Option<String>,
        Vec<custody::protocol::InventoryItem>,
    > = Default::default();
    for (j, _) in jobs {
        by_recorder
            .entry(j.meta.recorder.clone())
            .or_default()
            .push(custody::protocol::InventoryItem {
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
            custody::client::upload::inventory(&conn, recorder.as_deref(), &taken_at, &items).await
        }
        .await;
        match r {
            Ok(n) => eprintln!("inventory of {who}: {n} recordings reported"),
            Err(e) => eprintln!("warning: inventory of {who} not reported: {e}"),
        }
    }
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.device.load()?;
    let files = discover(&a.paths)?;
    if files.is_empty() {
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
    let mut jobs = Vec::new();
    for f in &files {
        let (job, warnings) = {
            let (a2, f2) = (&a, f.clone());
            tokio::task::block_in_place(|| build_job(a2, &f2))?
        };
        jobs.push((job, warnings));
    }
    let total_bytes: u64 = jobs.iter().map(|(j, _)| j.size).sum();
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
    if !a.no_inventory {
        report_inventory(&link, &jobs).await;
    }
    if a.inventory_only {
        return Ok(ExitCode::SUCCESS);
    }
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let retry_for = Duration::from_secs(a.retry_for_secs);
    let mut tasks = Vec::new();
    for (job, warnings) in jobs {
        let bar = multi.insert_before(&total, ProgressBar::new(job.size));
        bar.set_style(style.clone());
        let name = job
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_prefix(name);
        let (link, sem, total) = (link.clone(), sem.clone(), total.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let r = upload_with_retry(&link, &job, &bar, &total, retry_for).await;
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
                derivation: None,
                warnings,
                error: None,
            };
            let res = match r {
                Ok(o) => FileResult {
                    recording: format!("{}/{}", o.recorder, o.recording_id),
                    result: match (o.sha256_matched, o.state) {
                        (false, _) => "mismatch",
                        (true, RecordingState::Archived) => "archived",
                        (true, _) => "spooled",
                    }
                    .into(),
                    manifest_key: Some(o.manifest_key),
                    resumed_from: o.resumed_from,
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
            bar.finish_with_message(res.result.clone());
            res
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    total.finish();
    link.client.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), link.client.wait_idle()).await;

    let mut failed = 0;
    for r in &results {
        if r.result != "archived" && r.result != "spooled" {
            failed += 1;
        }
        if a.json {
            println!("{}", serde_json::to_string(r)?);
            continue;
        }
        let verdict = match r.result.as_str() {
            "archived" => "OK       sha256 match, stored".to_string(),
            "spooled" => {
                "SPOOLED  sha256 match, durable at the gateway, storage pending".to_string()
            }
            "mismatch" => "FAILED   sha256 MISMATCH, quarantined at the gateway".to_string(),
            _ => format!("FAILED   {}", r.error.as_deref().unwrap_or("unknown error")),
        };
        println!("{verdict}  {}", r.path);
        println!("         recording {}  sha256 {}", r.recording, r.sha256);
        if let Some(k) = &r.manifest_key {
            println!("         manifest  {k}");
        }
        if let Some(d) = &r.derivation {
            match d.status.as_str() {
                "derived" => println!("         derived   {} CMAF segments", d.segments),
                s => println!("         derived   nothing ({s})"),
            }
            if let Some(reason) = &d.reason {
                println!("                   {reason}");
            }
        }
        if r.resumed_from > 0 {
            println!("         resumed from byte {}", r.resumed_from);
        }
        if let (Some(e), "mismatch") = (&r.error, r.result.as_str()) {
            println!("         {e}");
        }
        for w in &r.warnings {
            println!("         warning: {w}");
        }
    }
    if !a.json {
        println!("{} files, {} failed", results.len(), failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
