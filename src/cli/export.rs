//! `custody export-proof` — the verification bundle for an auditor or court.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use custody::signing::SigningKey;
use custody::store::Store;
use custody::{export, verify};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Where to write the bundle (a new folder).
    #[arg(long)]
    pub out: PathBuf,
    /// Leave the objects out (the auditor fetches them from storage).
    #[arg(long)]
    pub without_objects: bool,
    /// The gateway public key to publish in the bundle (PEM). Default: the
    /// public half of the configured signing key.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Manifest key, records/… prefix, or RECORDER/RECORDING-ID.
    pub recording: String,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.store.load()?;
    let pem = match &a.public_key {
        Some(p) => std::fs::read_to_string(p).with_context(|| p.display().to_string())?,
        None => SigningKey::from_pem(
            &std::fs::read_to_string(&cfg.tls.signing_key)
                .with_context(|| format!("signing key {}", cfg.tls.signing_key.display()))?,
        )?
        .public_key_pem(),
    };
    let store = Store::open(&cfg.store).await?;
    let target = verify::resolve(&store, &a.recording).await?;
    let key = target.manifest_key.clone();
    // Only a recording that verifies, and is the one asked for, is worth
    // handing out.
    let report = verify::verify_target(
        &store,
        &target,
        &verify::VerifyOptions {
            trusted_key: Some(custody::signing::public_from_pem(&pem)?),
        },
    )
    .await?;
    anyhow::ensure!(
        report.ok,
        "{key} does not verify ({} problems); run custody verify",
        report.failures.len()
    );
    anyhow::ensure!(!a.out.exists(), "{} exists", a.out.display());
    let b = export::export(&store, &key, &pem, &a.out, !a.without_objects).await?;
    println!(
        "bundle {}: {} objects ({} bytes), {} checkpoints; read VERIFY.txt or run bash verify.sh",
        a.out.display(),
        b.objects,
        b.bytes,
        b.checkpoints
    );
    Ok(ExitCode::SUCCESS)
}
