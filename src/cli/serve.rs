//! `custody serve`

use std::path::PathBuf;
use std::process::ExitCode;

use custody::gateway;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (TOML).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config file.
    #[arg(long)]
    pub listen: Option<String>,
    /// Write the bound address to this file once listening (for scripts
    /// that ask for port 0).
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Command-center listen address (`host:port`), overriding `[http]`.
    #[arg(long)]
    pub http_listen: Option<String>,
    /// Write the command center's bound address to this file.
    #[arg(long)]
    pub http_addr_file: Option<PathBuf>,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = super::load_config(a.config.as_deref())?;
    if let Some(l) = a.listen {
        cfg.gateway.listen = l;
    }
    if let Some(l) = a.http_listen {
        cfg.http.listen = Some(l);
    }
    let running = gateway::start(cfg).await?;
    if let Some(p) = &a.addr_file {
        custody::spool::write_atomic(p, running.local_addr.to_string().as_bytes())?;
    }
    if let (Some(p), Some(h)) = (&a.http_addr_file, running.http_addr) {
        custody::spool::write_atomic(p, h.to_string().as_bytes())?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = running.serve() => {}
        _ = term.recv() => running.shutdown().await,
        _ = tokio::signal::ctrl_c() => running.shutdown().await,
    }
    Ok(ExitCode::SUCCESS)
}
