//! `custody retention`, `custody mark` and `custody request`: the records
//! office's actions. Listing reads storage; everything that changes a
//! recording or gives it out goes through the gateway's API as a viewer.

use std::path::PathBuf;
use std::process::ExitCode;

use custody::policy::confidentiality::Mark;
use custody::policy::retention::{MAX_YEARS, PermanentReason};

use super::api_client::{Api, ApiArgs};

#[derive(Debug, clap::Subcommand)]
pub enum Retention {
    /// Recordings with their retention; `--expired` for those past it.
    List(ListArgs),
    /// Raise a recording's retention (never lowered): more years, or permanent.
    Raise(RaiseArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Only recordings whose retention has expired (deletable on approval).
    #[arg(long)]
    pub expired: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RaiseArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// RECORDER/RECORDING-ID.
    pub recording: String,
    /// Standard retention of this many years (2 to 200) from the end of recording.
    #[arg(
        long,
        conflicts_with = "permanent",
        required_unless_present = "permanent",
        value_parser = parse_years
    )]
    pub years: Option<u32>,
    /// Permanent, for one of the regulation's reasons: major-case,
    /// obstruction, major-emergency, major-complex.
    #[arg(long, value_parser = parse_reason)]
    pub permanent: Option<PermanentReason>,
    #[arg(long)]
    pub note: Option<String>,
}

/// Years of a standard class, checked as the gateway checks them.
fn parse_years(s: &str) -> Result<u32, String> {
    let years: u32 = s
        .parse()
        .map_err(|_| format!("a whole number of years, 2 to {MAX_YEARS}"))?;
    custody::policy::retention::Retention::Standard { years }
        .check()
        .map_err(|e| e.to_string())?;
    Ok(years)
}

fn parse_reason(s: &str) -> Result<PermanentReason, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| "one of major-case, obstruction, major-emergency, major-complex".into())
}

fn parse_mark(s: &str) -> Result<Mark, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| "one of state-secret, trade-secret, personal-privacy".into())
}

#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// RECORDER/RECORDING-ID.
    pub recording: String,
    /// state-secret, trade-secret or personal-privacy.
    #[arg(value_parser = parse_mark)]
    pub mark: Mark,
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Request {
    /// Ask to give a recording out (a verification bundle); a second person approves.
    Export(NewArgs),
    /// Ask to delete a recording whose retention has expired; a second person approves.
    Delete(NewArgs),
    /// Requests and their state.
    List(ApiOnly),
    /// Approve someone else's request (carried out at once).
    Approve(DecideArgs),
    /// Reject a request.
    Reject(DecideArgs),
    /// Download an approved export's bundle into a folder.
    Fetch(FetchArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// RECORDER/RECORDING-ID.
    pub recording: String,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct ApiOnly {
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub id: String,
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    pub id: String,
    #[arg(long)]
    pub out: PathBuf,
}

fn split(recording: &str) -> anyhow::Result<(&str, &str)> {
    recording
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("{recording:?}: give RECORDER/RECORDING-ID"))
}

pub async fn retention(c: Retention) -> anyhow::Result<ExitCode> {
    match c {
        Retention::List(a) => {
            let cfg = a.store.load()?;
            let index = custody::catalog::Index::open(&cfg).await?;
            let store = index.store().clone();
            // What the gateway's probe found at its last start (probing
            // here would leave a locked probe object behind).
            let enforced = match store
                .get_bytes(custody::policy::retention::PROBE_RESULT, 1 << 20)
                .await
            {
                Ok(b) => serde_json::from_slice::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| {
                        Some(format!(
                            "{} (probed by gateway {} at {})",
                            v["describe"].as_str()?,
                            v["gateway"].as_str().unwrap_or("?"),
                            v["probed_at"].as_str().unwrap_or("?")
                        ))
                    })
                    .unwrap_or_else(|| "retention enforcement: unreadable probe record".into()),
                Err(e) if e.is_not_found() => {
                    "retention enforcement unknown: no gateway has probed this storage yet".into()
                }
                Err(e) => return Err(e.into()),
            };
            let now = custody::clock::now();
            let expired = |e: &custody::catalog::Entry| {
                e.retain_until
                    .as_deref()
                    .and_then(custody::time_fmt::parse)
                    .is_some_and(|u| u <= now)
            };
            let entries: Vec<_> = index
                .all()
                .await?
                .into_iter()
                .filter(|e| !a.expired || expired(e))
                .collect();
            if a.json {
                for e in &entries {
                    println!(
                        "{}",
                        serde_json::json!({
                            "recording": format!("{}/{}", e.recorder, e.recording_id),
                            "retention": e.retention,
                            "until": e.retain_until,
                            "expired": expired(e),
                        })
                    );
                }
            } else {
                eprintln_escaped!("{enforced}");
                for e in &entries {
                    println_escaped!(
                        "{:<40} {:<60} {}{}",
                        format!("{}/{}", e.recorder, e.recording_id),
                        e.retention.as_deref().unwrap_or("-"),
                        e.retain_until.as_deref().unwrap_or("for ever"),
                        if expired(e) { "  EXPIRED" } else { "" }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Retention::Raise(a) => {
            let (recorder, id) = split(&a.recording)?;
            let body = match (a.years, a.permanent) {
                (_, Some(r)) => {
                    serde_json::json!({"class": "permanent", "reason": r, "note": a.note})
                }
                (Some(y), None) => {
                    serde_json::json!({"class": "standard", "years": y, "note": a.note})
                }
                (None, None) => anyhow::bail!("give --years or --permanent"),
            };
            let api = Api::new(&a.api)?;
            let r = api
                .json(
                    "POST",
                    &format!("/api/recordings/{recorder}/{id}/retention"),
                    Some(body),
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn mark(a: MarkArgs) -> anyhow::Result<ExitCode> {
    let (recorder, id) = split(&a.recording)?;
    let api = Api::new(&a.api)?;
    let r = api
        .json(
            "POST",
            &format!("/api/recordings/{recorder}/{id}/confidentiality"),
            Some(serde_json::json!({"mark": a.mark, "note": a.note})),
        )
        .await?;
    println!("{r}");
    Ok(ExitCode::SUCCESS)
}

pub async fn request(c: Request) -> anyhow::Result<ExitCode> {
    let show = |v: serde_json::Value| -> anyhow::Result<ExitCode> {
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(ExitCode::SUCCESS)
    };
    match c {
        Request::Export(a) => new(a, "export").await.and_then(show),
        Request::Delete(a) => new(a, "delete").await.and_then(show),
        Request::List(a) => show(Api::new(&a.api)?.json("GET", "/api/requests", None).await?),
        Request::Approve(a) => {
            let api = Api::new(&a.api)?;
            let r = api
                .json(
                    "POST",
                    &format!("/api/requests/{}/approve", a.id),
                    Some(serde_json::json!({"note": a.note})),
                )
                .await?;
            let failed = r["status"] == "failed";
            show(r)?;
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Request::Reject(a) => {
            let api = Api::new(&a.api)?;
            show(
                api.json(
                    "POST",
                    &format!("/api/requests/{}/reject", a.id),
                    Some(serde_json::json!({"note": a.note})),
                )
                .await?,
            )
        }
        Request::Fetch(a) => {
            let api = Api::new(&a.api)?;
            let files: Vec<String> = serde_json::from_value(
                api.json("GET", &format!("/api/requests/{}/bundle", a.id), None)
                    .await?,
            )?;
            for f in &files {
                let b = api
                    .call(
                        "GET",
                        &format!("/api/requests/{}/bundle/{}", a.id, f.replace('/', "|")),
                        None,
                    )
                    .await?;
                let p = a.out.join(f);
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d)?;
                }
                std::fs::write(&p, &b)?;
            }
            println!("{} files of the bundle in {}", files.len(), a.out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn new(a: NewArgs, kind: &str) -> anyhow::Result<serde_json::Value> {
    split(&a.recording)?;
    Api::new(&a.api)?
        .json(
            "POST",
            "/api/requests",
            Some(serde_json::json!({"kind": kind, "recording": a.recording, "reason": a.reason})),
        )
        .await
}
