//! `custody ledger`: a device's history in the ledger (custodian, unit,
//! status, who it was assigned to and when) and the usage report of a unit
//! for a period, from the usage records in storage (R1).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::{StreamExt, TryStreamExt};

use custody::ledger::LedgerFile;
use custody::store::Store;
use custody::usage::UsageEntry;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A device's entry and its assignments over time.
    Show(ShowArgs),
    /// What a unit's devices did in a period: sessions, uploads, refusals.
    Usage(UsageArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    pub device: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// The unit (all devices the ledger lists under it).
    #[arg(long, required_unless_present = "device")]
    pub unit: Option<String>,
    /// One device instead of a unit.
    #[arg(long)]
    pub device: Option<String>,
    /// First day, YYYY-MM-DD (the gateway's local days).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: Option<String>,
    /// Every entry, not only the counts.
    #[arg(long)]
    pub entries: bool,
    #[arg(long)]
    pub json: bool,
}

fn day(s: &Option<String>) -> anyhow::Result<Option<String>> {
    match s {
        None => Ok(None),
        Some(d) => {
            let digits: String = d.chars().filter(|c| *c != '-').collect();
            anyhow::ensure!(
                digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()),
                "{d:?} is not a day (YYYY-MM-DD)"
            );
            Ok(Some(digits))
        }
    }
}

pub async fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Show(a) => show(a),
        Command::Usage(a) => usage(a).await,
    }
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(a.config.as_deref())?;
    let ledger = LedgerFile::open(&cfg.ledger.path)?.current();
    let d = ledger.device(&a.device).ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not in the ledger {}",
            a.device,
            cfg.ledger.path.display()
        )
    })?;
    let fmt = |t: &Option<time::OffsetDateTime>| t.map(custody::time_fmt::rfc3339);
    let assignments: Vec<serde_json::Value> = d
        .assignments
        .iter()
        .map(|x| {
            let o = ledger.officer(&x.officer);
            serde_json::json!({
                "officer": x.officer,
                "name": o.map(|o| o.name.clone()),
                "enforcement": o.map(|o| o.enforcement),
                "from": fmt(&x.from),
                "until": fmt(&x.until),
            })
        })
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "device": d.id, "kind": d.kind, "custodian": d.custodian, "unit": d.unit,
                "status": d.status, "assignments": assignments,
            }))?
        );
    } else {
        println_escaped!(
            "{} ({:?}), custodian {}, unit {}, {:?}",
            d.id,
            d.kind,
            d.custodian,
            d.unit,
            d.status
        );
        for x in &assignments {
            println_escaped!(
                "  assigned to {} ({}{}) from {} until {}",
                x["officer"].as_str().unwrap_or("-"),
                x["name"].as_str().unwrap_or("not in the ledger"),
                if x["enforcement"] == false {
                    ", not enforcement staff"
                } else {
                    ""
                },
                x["from"].as_str().unwrap_or("the start"),
                x["until"].as_str().unwrap_or("now")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn usage(a: UsageArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.store.load()?;
    let store = Store::open(&cfg.store).await?;
    let ledger = LedgerFile::open(&cfg.ledger.path)?.current();
    let devices: Vec<String> = match (&a.device, &a.unit) {
        (Some(d), _) => vec![d.clone()],
        (None, Some(u)) => ledger
            .devices()
            .filter(|d| &d.unit == u)
            .map(|d| d.id.clone())
            .collect(),
        (None, None) => anyhow::bail!("give --unit or --device"),
    };
    let (from, to) = (day(&a.from)?, day(&a.to)?);
    let mut keys = Vec::new();
    for d in &devices {
        for o in store.list(&format!("usage/{d}/")).await? {
            // usage/<device>/<yyyy>/<mm>/<dd>/<time>-<seq>.json
            let parts: Vec<&str> = o.key.split('/').collect();
            if let [_, _, y, m, dd, _] = parts[..] {
                let k = format!("{y}{m}{dd}");
                if from.as_deref().is_none_or(|f| k.as_str() >= f)
                    && to.as_deref().is_none_or(|t| k.as_str() <= t)
                {
                    keys.push(o.key);
                }
            }
        }
    }
    let mut entries: Vec<UsageEntry> = futures_util::stream::iter(keys)
        .map(|k| {
            let store = store.clone();
            async move {
                let b = store.get_bytes(&k, 1 << 20).await?;
                Ok::<_, custody::store::StoreError>(serde_json::from_slice::<UsageEntry>(&b).ok())
            }
        })
        .buffer_unordered(16)
        .try_filter_map(|e| async move { Ok(e) })
        .try_collect()
        .await?;
    entries.sort_by(|x, y| x.at.cmp(&y.at));
    // device → event → count
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for e in &entries {
        let ev = serde_json::to_value(e.event)?
            .as_str()
            .unwrap_or("?")
            .to_string();
        *counts
            .entry(e.device.clone())
            .or_default()
            .entry(ev)
            .or_default() += 1;
    }
    if a.json {
        let body = serde_json::json!({
            "unit": a.unit, "device": a.device, "from": a.from, "to": a.to,
            "devices": devices, "counts": counts,
            "entries": if a.entries { serde_json::to_value(&entries)? } else { serde_json::Value::Null },
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    println_escaped!(
        "Usage of {} from {} to {}: {} devices, {} entries",
        a.unit.as_deref().map_or_else(
            || a.device.clone().unwrap_or_default(),
            |u| format!("unit {u}")
        ),
        a.from.as_deref().unwrap_or("the start"),
        a.to.as_deref().unwrap_or("now"),
        devices.len(),
        entries.len()
    );
    for d in &devices {
        let c = counts.get(d);
        let line: Vec<String> = c
            .map(|c| c.iter().map(|(k, n)| format!("{k} {n}")).collect())
            .unwrap_or_default();
        println_escaped!(
            "  {d}: {}",
            if line.is_empty() {
                "no use".into()
            } else {
                line.join(", ")
            }
        );
    }
    if a.entries {
        for e in &entries {
            println_escaped!(
                "{}  {:<12} {:<20} {}",
                e.at,
                e.device,
                serde_json::to_value(e.event)?.as_str().unwrap_or("?"),
                e.detail
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
