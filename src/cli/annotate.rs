//! `custody annotate` — add what was learned after a recording closed (what
//! it proves, its case, content markers, a note) as a signed annotation.
//! Runs where the gateway's signing key and storage credentials are.

use std::process::ExitCode;

use anyhow::Context;
use custody::annotate::{Fact, annotate};
use custody::metadata::{Marker, MarkerKind};
use custody::signing::SigningKey;
use custody::verify;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Who is annotating (records-office user or officer id).
    #[arg(long)]
    pub by: String,
    /// Why (kept in the annotation).
    #[arg(long)]
    pub reason: Option<String>,
    /// What the recording proves (证明对象).
    #[arg(long = "proof", group = "fact")]
    pub proof_object: Option<String>,
    /// Assign the recording to a case (分案).
    #[arg(long = "case", group = "fact")]
    pub case_id: Option<String>,
    /// A content marker: KIND[@SECONDS][:NOTE], KIND one of scene, persons,
    /// evidence, measures, documents-served, important. Repeatable.
    #[arg(long = "marker", group = "fact")]
    pub markers: Vec<String>,
    /// A free-text note.
    #[arg(long, group = "fact")]
    pub note: Option<String>,
    /// Manifest key, records/… prefix, or RECORDER/RECORDING-ID.
    pub recording: String,
}

pub fn parse_marker(s: &str) -> anyhow::Result<Marker> {
    let (head, note) = match s.split_once(':') {
        Some((h, n)) => (h, Some(n.to_string())),
        None => (s, None),
    };
    let (kind, time) = match head.split_once('@') {
        Some((k, t)) => (
            k,
            Some(t.parse::<f64>().context("marker time must be seconds")?),
        ),
        None => (head, None),
    };
    let kind: MarkerKind = serde_json::from_value(serde_json::Value::String(kind.to_string()))
        .with_context(|| format!("unknown marker kind {kind:?}"))?;
    let m = Marker {
        kind,
        media_time: time,
        device_time: None,
        note,
    };
    m.validate()?;
    Ok(m)
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.store.load()?;
    let key_pem = std::fs::read_to_string(&cfg.tls.signing_key)
        .with_context(|| format!("signing key {}", cfg.tls.signing_key.display()))?;
    let signer = SigningKey::from_pem(&key_pem)?;
    // Stored text follows the protocol's text rule (no terminal controls).
    custody::metadata::check_text("--by", &a.by)?;
    for (field, v) in [
        ("--reason", &a.reason),
        ("--proof", &a.proof_object),
        ("--note", &a.note),
    ] {
        if let Some(v) = v {
            custody::metadata::check_text(field, v)?;
        }
    }
    let fact = if let Some(p) = a.proof_object {
        Fact::ProofObject(p)
    } else if let Some(c) = a.case_id {
        anyhow::ensure!(
            custody::metadata::valid_id(&c),
            "case id {c:?} is not a valid id"
        );
        Fact::Case(c)
    } else if !a.markers.is_empty() {
        Fact::Markers(
            a.markers
                .iter()
                .map(|m| parse_marker(m))
                .collect::<anyhow::Result<_>>()?,
        )
    } else if let Some(n) = a.note {
        Fact::Note(n)
    } else {
        anyhow::bail!("say what to add: --proof, --case, --marker or --note");
    };
    let index = custody::catalog::Index::open(&cfg).await?;
    let store = index.store().clone();
    let target = verify::resolve(&store, &a.recording).await?;
    // A recording named by recorder and id must be the one its locator
    // leads to, never another one.
    if let Some(a) = target.asked.as_ref().filter(|a| a.locator.is_some()) {
        custody::locate::stored(&store, &a.recorder, &a.recording_id).await?;
    }
    let key = target.manifest_key;
    let entry = annotate(&store, &index, &signer, &key, fact, &a.by, a.reason).await?;
    println_escaped!(
        "annotation stored as object {} ({}), chain head {}, signed",
        entry.index,
        entry.key,
        entry.chain
    );
    Ok(ExitCode::SUCCESS)
}
