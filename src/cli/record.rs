//! `custody record` — a live recorder (and the reference for device makers):
//! streams a test camera, a TS file at real-time pace, or standard input to
//! the gateway, buffering what is not yet acknowledged and reconnecting on
//! its own when the link drops.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use custody::client::Client;
use custody::client::live::{RecordEvent, RecordOptions, record};
use custody::client::source::Source;
use custody::metadata::{FullProcess, FullProcessReason, Occasion, RecordingMeta, RecordingMode};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub device: super::DeviceArgs,
    /// Stream the built-in test camera (H.264 + AAC in MPEG-TS).
    #[arg(long, conflicts_with_all = ["file", "stdin"])]
    pub test_source: bool,
    /// Stream an MPEG-TS file at the pace of its clock.
    #[arg(long, conflicts_with = "stdin")]
    pub file: Option<PathBuf>,
    /// Stream MPEG-TS from standard input as it comes.
    #[arg(long)]
    pub stdin: bool,
    /// Stop after this many seconds (test source and file).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Test source video bitrate.
    #[arg(long, default_value_t = 1500)]
    pub bitrate_kbps: u32,
    /// The recorder's buffer and state: running `record` again with the same
    /// directory continues the same recording.
    #[arg(long, default_value = "record-state")]
    pub state_dir: PathBuf,
    /// Bytes the recorder keeps while the gateway has not acknowledged them.
    #[arg(long, default_value_t = 64)]
    pub buffer_mib: u64,
    /// Recording id (default: recorder id and start time).
    #[arg(long)]
    pub recording_id: Option<String>,
    /// Write every byte produced here too.
    #[arg(long)]
    pub tee: Option<PathBuf>,
    /// Seconds of silence after which the link counts as lost.
    #[arg(long, default_value_t = 5.0, value_parser = super::dock::parse_seconds)]
    pub link_timeout: f64,
    #[arg(long)]
    pub recorder: Option<String>,
    #[arg(long)]
    pub officer: Option<String>,
    #[arg(long, value_parser = super::dock::parse_occasion)]
    pub occasion: Option<Occasion>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long = "case")]
    pub case_id: Option<String>,
    #[arg(long = "proof")]
    pub proof_object: Option<String>,
    /// A mandatory full-process recording, with this reason.
    #[arg(long, value_parser = super::dock::parse_reason)]
    pub mandatory: Option<FullProcessReason>,
    /// Set a mark while recording, as a button on the recorder would:
    /// KIND@SECONDS[:NOTE] (KIND one of scene, persons, evidence, measures,
    /// documents-served, important), sent SECONDS after the start. Repeatable.
    #[arg(long = "mark")]
    pub marks: Vec<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.device.load()?;
    let mut marks = Vec::new();
    for m in &a.marks {
        let marker = super::annotate::parse_marker(m)?;
        let at = marker
            .media_time
            .ok_or_else(|| anyhow::anyhow!("--mark {m:?}: give when, KIND@SECONDS"))?;
        marks.push((Duration::from_secs_f64(at), marker));
    }
    let source = if a.test_source {
        Source::Test {
            bitrate_kbps: a.bitrate_kbps,
            width: 640,
            height: 360,
        }
    } else if let Some(f) = &a.file {
        Source::File {
            path: f.clone(),
            start: 0,
        }
    } else if a.stdin {
        Source::Stdin
    } else {
        anyhow::bail!("choose a source: --test-source, --file PATH or --stdin");
    };
    let now = custody::time_fmt::now();
    // New recording ids start with this device's id, from its certificate.
    let device = custody::quic::load_certs(&cfg.client.cert)
        .ok()
        .and_then(|c| {
            c.first()
                .and_then(|c| custody::identity::device_id_from_cert(c).ok())
        });
    let recording_id = a.recording_id.clone().or_else(|| {
        let t = custody::clock::now();
        device.map(|d| {
            format!(
                "{d}-{:04}{:02}{:02}-{:02}{:02}{:02}",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
    });
    let meta = RecordingMeta {
        recording_id: String::new(),
        recorder: a.recorder.clone(),
        mode: Some(RecordingMode::Live),
        started_at: Some(now),
        officer: a.officer.clone(),
        proof_object: a.proof_object.clone(),
        occasion: a.occasion,
        full_process: Some(FullProcess {
            mandatory: a.mandatory.is_some(),
            reason: a.mandatory,
        }),
        category: a.category.clone(),
        case_id: a.case_id.clone(),
        ..Default::default()
    };
    let client = Client::with_transport(
        &cfg.client,
        Duration::from_secs_f64(a.link_timeout.max(1.0)),
        Duration::from_secs_f64((a.link_timeout / 4.0).max(0.25)),
        a.device.congestion,
    )?;
    let quiet = a.json;
    let events = move |e: RecordEvent| match e {
        RecordEvent::Connected { offset } if !quiet => {
            eprintln!("custody record: connected, the gateway holds {offset} bytes")
        }
        RecordEvent::Disconnected(why) if !quiet => {
            eprintln_escaped!("custody record: link lost ({why}); reconnecting")
        }
        _ => {}
    };
    let out = record(
        &client,
        RecordOptions {
            meta,
            state_dir: a.state_dir.clone(),
            buffer_bytes: a.buffer_mib.max(1) << 20,
            source,
            duration: a.duration.map(Duration::from_secs_f64),
            tee: a.tee.clone(),
            recording_id,
            marks,
        },
        &events,
    )
    .await?;
    client.close();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "recording_id": out.recording_id,
                "manifest_key": out.manifest_key,
                "bytes": out.bytes,
                "complete": out.complete,
                "gaps": out.gaps,
                "reconnects": out.reconnects,
                "derivation": out.derivation,
                "source_error": out.source_error,
            })
        );
    } else {
        println_escaped!(
            "recording {} closed: {} bytes, {} reconnects, {}",
            out.recording_id,
            out.bytes,
            out.reconnects,
            if out.complete {
                "no gaps".to_string()
            } else {
                format!("{} gaps", out.gaps.len())
            }
        );
        println_escaped!("manifest {}", out.manifest_key);
        println_escaped!(
            "derived {} CMAF segments{}",
            out.derivation.segments,
            out.derivation
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        for g in &out.gaps {
            println_escaped!(
                "  gap ({}): {} to {}: {}",
                g.kind,
                g.wall_from,
                g.wall_to,
                g.reason
            );
        }
    }
    // What the source made before it failed is stored; the failure still
    // fails the command.
    if let Some(e) = &out.source_error {
        eprintln_escaped!("custody record: the source failed, so the recording ended there: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
