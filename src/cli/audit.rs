//! `custody audit`: lists and verifies the command center's audit trail
//! (one hash-chained, signed log a day, stored like a live recording).

use std::path::PathBuf;
use std::process::ExitCode;

use custody::store::Store;
use custody::verify;
use custody::view::audit::{self, AuditEntry, StoredLog};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print audit entries (oldest first), filtered.
    List(ListArgs),
    /// Verify every audit log in range: hash chain, objects, signed checkpoints.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct Range {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// First day, YYYY-MM-DD (the gateway's UTC offset).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub range: Range,
    /// Only this viewer's entries (`-` for requests nobody logged in made).
    #[arg(long)]
    pub viewer: Option<String>,
    /// Only entries about this recording (RECORDER/RECORDING-ID).
    #[arg(long)]
    pub recording: Option<String>,
    /// Only this action (login, watch-live, open-stored, download, refused, …).
    #[arg(long)]
    pub action: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub range: Range,
    /// The gateway's public key (PEM) to trust for checkpoints (default:
    /// the configured signing key's public half).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

fn day(s: &Option<String>) -> anyhow::Result<Option<String>> {
    match s {
        None => Ok(None),
        Some(d) => {
            let digits: String = d.chars().filter(|c| *c != '-').collect();
            anyhow::ensure!(
                digits.len() == 8 && digits.chars().all(|c| c.is_ascii_digit()),
                "{d:?} is not a day (YYYY-MM-DD)"
            );
            Ok(Some(digits))
        }
    }
}

async fn logs(r: &Range) -> anyhow::Result<(custody::config::Config, Store, Vec<StoredLog>)> {
    let cfg = r.store.load()?;
    let store = Store::open(&cfg.store).await?;
    let (from, to) = (day(&r.from)?, day(&r.to)?);
    let logs = audit::stored_logs(&store)
        .await?
        .into_iter()
        .filter(|l| from.as_deref().is_none_or(|f| l.day() >= f))
        .filter(|l| to.as_deref().is_none_or(|t| l.day() <= t))
        .collect();
    Ok((cfg, store, logs))
}

pub async fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::List(a) => list(a).await,
        Command::Verify(a) => verify_logs(a).await,
    }
}

fn keep(a: &ListArgs, e: &AuditEntry) -> bool {
    a.viewer.as_ref().is_none_or(|v| *v == e.viewer)
        && a.action.as_ref().is_none_or(|x| *x == e.action)
        && a.recording
            .as_ref()
            .is_none_or(|r| e.recording.as_ref() == Some(r))
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let (_, store, logs) = logs(&a.range).await?;
    for log in &logs {
        for e in audit::read_entries(&store, log).await? {
            if !keep(&a, &e) {
                continue;
            }
            if a.json {
                println!("{}", serde_json::to_string(&e)?);
            } else {
                println_escaped!(
                    "{}  {:<12} {:<13} {:<3} {:<30} {}{}",
                    e.at,
                    e.viewer,
                    e.action,
                    e.status,
                    e.recording.as_deref().unwrap_or("-"),
                    e.peer,
                    if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", e.detail)
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify_logs(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (cfg, store, logs) = logs(&a.range).await?;
    let trusted_key = super::verify::trusted_key(&cfg, a.public_key.as_deref())?;
    if logs.is_empty() {
        println!("no audit logs in range");
        return Ok(ExitCode::SUCCESS);
    }
    let opts = verify::VerifyOptions { trusted_key };
    let mut ok = true;
    for log in &logs {
        let key = custody::store::layout::manifest_key(&log.prefix);
        let r = verify::verify_with(&store, &key, &opts).await?;
        ok &= r.ok;
        super::verify::print_report(&r);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
