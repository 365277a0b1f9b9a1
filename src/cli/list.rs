//! `custody list` finds stored recordings in the catalog; `custody index
//! rebuild` makes the catalog again from storage alone.

use std::process::ExitCode;

use custody::catalog::Filter;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: super::StoreArgs,
    #[arg(long)]
    pub officer: Option<String>,
    /// The recorder.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long = "case")]
    pub case_id: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub occasion: Option<String>,
    /// The recorder's unit (in the ledger when the recording was made).
    #[arg(long)]
    pub unit: Option<String>,
    /// Started at or after (RFC 3339, or YYYY-MM-DD for the start of that day, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Started at or before (RFC 3339, or YYYY-MM-DD for the end of that day, UTC).
    #[arg(long)]
    pub to: Option<String>,
    /// Only mandatory full-process recordings with gaps no copy fills.
    #[arg(long)]
    pub violations: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum IndexCommand {
    /// Make the catalog again from the locators and manifests in storage.
    Rebuild(RebuildArgs),
}

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub store: super::StoreArgs,
}

/// A day alone means its first (or, for `to`, last) instant in UTC.
pub fn bound(s: &Option<String>, end: bool) -> anyhow::Result<Option<String>> {
    let Some(s) = s else { return Ok(None) };
    if custody::time_fmt::parse(s).is_some() {
        return Ok(Some(s.clone()));
    }
    let full = if end {
        format!("{s}T23:59:59.999999999Z")
    } else {
        format!("{s}T00:00:00Z")
    };
    anyhow::ensure!(
        custody::time_fmt::parse(&full).is_some(),
        "{s:?} is neither an RFC 3339 time nor a day (YYYY-MM-DD)"
    );
    Ok(Some(full))
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let index = a.store.index().await?;
    let f = Filter {
        officer: a.officer,
        device: a.device,
        case: a.case_id,
        category: a.category,
        occasion: a.occasion,
        unit: a.unit,
        from: bound(&a.from, false)?,
        to: bound(&a.to, true)?,
    };
    let t0 = std::time::Instant::now();
    let found: Vec<_> = index
        .search(&f)
        .await?
        .into_iter()
        .filter(|e| !a.violations || e.full_process_violation())
        .collect();
    for e in &found {
        if a.json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            let mut status = if e.gaps > e.gaps_filled {
                format!("{} gaps", e.gaps - e.gaps_filled)
            } else if e.missing.is_empty() {
                "complete".into()
            } else {
                format!("missing {}", e.missing.join(","))
            };
            // A deadline counted without a year's official schedule is
            // shown as such until it is assessed again.
            if e.deadline_status.as_deref() == Some("provisional") {
                status.push_str(&format!(
                    "; deadline provisional, due {}",
                    e.deadline_due.as_deref().unwrap_or("-")
                ));
            }
            println_escaped!(
                "{:<25} {:<40} {:<10} {:<16} {:<14} {:>7} {}",
                e.started_at.as_deref().unwrap_or(&e.received_at),
                format!("{}/{}", e.recorder, e.recording_id),
                e.officer.as_deref().unwrap_or("-"),
                e.category.as_deref().unwrap_or("-"),
                e.case_id.as_deref().unwrap_or("-"),
                e.duration.map(|d| format!("{d:.0}s")).unwrap_or("-".into()),
                status
            );
        }
    }
    if !a.json {
        eprintln!(
            "{} recordings ({:.2} s)",
            found.len(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn index(c: IndexCommand) -> anyhow::Result<ExitCode> {
    match c {
        IndexCommand::Rebuild(a) => {
            let index = a.store.index().await?;
            let t0 = std::time::Instant::now();
            let n = index.rebuild().await?;
            println!(
                "catalog rebuilt from storage: {n} recordings ({:.1} s)",
                t0.elapsed().as_secs_f64()
            );
            // Cluster mode: the records office's decisions, from the
            // request documents.
            if let Some(db) = index.db() {
                let requests = custody::records_office::list(index.store()).await?;
                let decisions: Vec<_> = requests.iter().filter_map(|r| r.decision()).collect();
                let added = db.restore_decisions(&decisions).await?;
                println!(
                    "records-office decisions: {} in storage, {added} added to the database",
                    decisions.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
