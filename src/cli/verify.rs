//! `custody verify`

use std::path::PathBuf;
use std::process::ExitCode;

use custody::store::Store;
use custody::verify;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The gateway's public key (PEM) to trust for checkpoints. Default: the
    /// configured signing key's public half, if present; else the key the
    /// recording names (consistency only, not origin).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Also make each docked recording's derived objects again from its
    /// original, as its manifest records, and compare them with those
    /// stored (docs/manifest.md §9.6).
    #[arg(long)]
    pub rederive: bool,
    /// Manifest key, `records/…` prefix, or RECORDER/RECORDING-ID.
    #[arg(required = true)]
    pub recordings: Vec<String>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.store.load()?;
    let store = Store::open(&cfg.store).await?;
    let trusted_key = trusted_key(&cfg, a.public_key.as_deref())?;
    let opts = verify::VerifyOptions { trusted_key };
    let mut all_ok = true;
    let mut reports = Vec::new();
    let mut rederived = Vec::new();
    for target in &a.recordings {
        let target = verify::resolve(&store, target).await?;
        let r = verify::verify_target(&store, &target, &opts).await?;
        all_ok &= r.ok;
        if !a.json {
            print_report(&r);
        }
        reports.push(r);
        if a.rederive {
            let rr = custody::rederive::rederive(&store, &target.manifest_key).await?;
            all_ok &= rr.ok();
            if !a.json {
                super::rederive_report::print(&rr);
            }
            rederived.push(rr);
        }
    }
    if a.json && a.rederive {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "verify": reports, "rederive": rederived })
            )?
        );
    } else if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The gateway key to trust: `--public-key`, else the configured signing
/// key's public half when it is readable here.
pub fn trusted_key(
    cfg: &custody::config::Config,
    public_key: Option<&std::path::Path>,
) -> anyhow::Result<Option<custody::signing::PublicKey>> {
    Ok(match public_key {
        Some(p) => Some(custody::signing::public_from_pem(
            &std::fs::read_to_string(p)?,
        )?),
        None => std::fs::read_to_string(&cfg.tls.signing_key)
            .ok()
            .and_then(|pem| custody::signing::SigningKey::from_pem(&pem).ok())
            .map(|k| k.public()),
    })
}

pub fn print_report(r: &verify::Report) {
    let who = match (&r.recorder, &r.recording_id) {
        (Some(a), Some(b)) => format!("{a}/{b}"),
        _ => "?".into(),
    };
    if r.ok {
        println_escaped!(
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
        println_escaped!(
            "  made by {} (uploaded by {}); {} of {} objects signed with {} key {}",
            r.officer.as_deref().unwrap_or("-"),
            r.uploader.as_deref().unwrap_or("-"),
            r.signed_objects,
            r.objects,
            if r.key_pinned {
                "trusted"
            } else {
                "the recording's own (not pinned; give --public-key)"
            },
            r.public_key.as_deref().unwrap_or("-")
        );
        if r.empty {
            println!(
                "  {}",
                if r.state == "open" {
                    "holds no media yet: the live recording has received no byte of stream so far"
                } else {
                    "holds no media: the live recording was opened and ended without a byte of stream"
                }
            );
        }
        if let Some(n) = &r.not_signed {
            println!("  {n}");
        }
        for (i, g) in r.gaps.iter().enumerate() {
            let filled = r
                .links
                .iter()
                .find(|l| l.gaps_filled.contains(&i))
                .map(|l| {
                    format!(
                        " [filled by the docked copy {}/{}]",
                        l.recorder, l.recording_id
                    )
                })
                .unwrap_or_default();
            println_escaped!(
                "  gap ({}): {} to {}, media {:.1} s: {}{filled}",
                g.kind,
                g.wall_from,
                g.wall_to,
                g.media_from,
                g.reason
            );
        }
        for h in &r.derivative_holes {
            println_escaped!(
                "  derivative hole: media {:.1} to {:.1} s: {}",
                h.media_from,
                h.media_to,
                h.reason
            );
        }
        for l in &r.links {
            println_escaped!("  {} {}/{}", l.relation, l.recorder, l.recording_id);
        }
    } else {
        println_escaped!("FAILED {} ({who})", r.manifest_key);
        for f in &r.failures {
            match f.index {
                Some(i) => println_escaped!("  object {i} {}: {}", f.key, f.reason),
                None => println_escaped!("  {}: {}", f.key, f.reason),
            }
        }
    }
}
