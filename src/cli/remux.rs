//! `custody remux` — run the derivation a docked recording would get, on a
//! local file, and show what comes out. For operators checking a new
//! pipeline description or an unusual recorder's files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use custody::derive;
use custody::pipeline::Registry;
use custody::pipeline::remux::RemuxOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of pipeline descriptions.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// Target segment duration in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub segment_seconds: f64,
    /// The recording to remux.
    pub input: PathBuf,
    /// Where init.mp4, seg-*.m4s and derivation.json go.
    pub out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let registry = Registry::load(&a.pipelines)?;
    let opts = RemuxOptions {
        fragment_duration: Duration::from_secs_f64(a.segment_seconds),
        ..RemuxOptions::default()
    };
    let name = a
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let d = derive::derive(&registry, &a.input, name.as_deref(), &a.out, &opts)?;
    println!("{}", serde_json::to_string_pretty(&d)?);
    Ok(match d {
        derive::Derivation::Failed { .. } => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}
