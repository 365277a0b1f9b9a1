//! `custody verify`

use std::path::PathBuf;
use std::process::ExitCode;

use custody::store::Store;
use custody::verify;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file whose [store] section says where recordings are.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Manifest key, `records/…` prefix, or RECORDER/RECORDING-ID.
    #[arg(required = true)]
    pub recordings: Vec<String>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = super::load_config(a.config.as_deref())?;
    a.store.apply(&mut cfg);
    let store = Store::open(&cfg.store).await?;
    let mut all_ok = true;
    let mut reports = Vec::new();
    for target in &a.recordings {
        let key = verify::resolve(&store, target).await?;
        let r = verify::verify(&store, &key).await?;
        all_ok &= r.ok;
        if !a.json {
            print_report(&r);
        }
        reports.push(r);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(r: &verify::Report) {
    let who = match (&r.recorder, &r.recording_id) {
        (Some(a), Some(b)) => format!("{a}/{b}"),
        _ => "?".into(),
    };
    if r.ok {
        println!(
            "OK {} ({who}): {} objects, {} bytes, chain head {}{}",
            r.manifest_key,
            r.objects,
            r.bytes,
            r.chain_head.as_deref().unwrap_or("-"),
            if r.state == "open" {
                " (open live recording: its journal so far)"
            } else {
                ""
            }
        );
        for g in &r.gaps {
            println!(
                "  gap ({}): {} to {}, media {:.1} s: {}",
                g.kind, g.wall_from, g.wall_to, g.media_from, g.reason
            );
        }
    } else {
        println!("FAILED {} ({who})", r.manifest_key);
        for f in &r.failures {
            match f.index {
                Some(i) => println!("  object {i} {}: {}", f.key, f.reason),
                None => println!("  {}: {}", f.key, f.reason),
            }
        }
    }
}
