//! `custody compliance`: the report a records officer hands in.

use std::collections::HashSet;
use std::process::ExitCode;

use custody::catalog::Filter;
use custody::policy::compliance::{self, NotUploaded};
use custody::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Recordings that started on or after (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Recordings that started on or before (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this unit's recorders (the ledger's unit when they recorded).
    #[arg(long)]
    pub unit: Option<String>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Recordings the newest complete inventory of each recorder lists that
/// storage does not hold (under their id, or as a docked copy).
async fn not_uploaded(
    store: &Store,
    stored: &HashSet<(String, String)>,
    recorders: Option<&HashSet<String>>,
) -> anyhow::Result<Vec<NotUploaded>> {
    let mut out = Vec::new();
    for (recorder, pages) in custody::inventory::newest(store).await? {
        if recorders.is_some_and(|r| !r.contains(&recorder)) {
            continue;
        }
        for p in &pages {
            for i in &p.items {
                let docked = custody_format::link::docked_id(&i.recording_id);
                if !stored.contains(&(recorder.clone(), i.recording_id.clone()))
                    && !stored.contains(&(recorder.clone(), docked))
                {
                    out.push(NotUploaded {
                        recorder: recorder.clone(),
                        recording_id: i.recording_id.clone(),
                        reported_by: p.reported_by.clone(),
                        reported_at: p.taken_at.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.store.load()?;
    let index = custody::catalog::Index::open(&cfg).await?;
    let store = index.store().clone();
    let policy = custody::policy::Policy::from_config(&cfg)?;
    let f = Filter {
        unit: a.unit.clone(),
        from: super::list::bound(&a.from, false)?,
        to: super::list::bound(&a.to, true)?,
        ..Default::default()
    };
    let all = index.all().await?;
    let stored: HashSet<(String, String)> = all
        .iter()
        .map(|e| (e.recorder.clone(), e.recording_id.clone()))
        .collect();
    let entries: Vec<_> = all.into_iter().filter(|e| f.matches(e)).collect();
    // A unit's recorders, from the ledger (for the inventory section).
    let recorders = match &a.unit {
        Some(u) => {
            let ledger = custody::ledger::LedgerFile::open(&cfg.ledger.path)?;
            let l = ledger.current();
            Some(
                l.devices()
                    .filter(|d| &d.unit == u)
                    .map(|d| d.id.clone())
                    .collect::<HashSet<_>>(),
            )
        }
        None => None,
    };
    let missing = not_uploaded(&store, &stored, recorders.as_ref()).await?;
    let period = match (&a.from, &a.to) {
        (None, None) => "all recordings".to_string(),
        (f, t) => format!(
            "recordings from {} to {}",
            f.as_deref().unwrap_or("the first"),
            t.as_deref().unwrap_or("now")
        ),
    };
    let title = format!(
        "Records compliance report: {}, {period}",
        a.unit
            .as_deref()
            .map_or("all units".to_string(), |u| format!("unit {u}"))
    );
    let r = compliance::build(
        title,
        policy.calendar().version().to_string(),
        policy.working_days,
        &entries,
        missing,
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", custody::text::escape_lines(&r.text()));
    }
    Ok(ExitCode::SUCCESS)
}
