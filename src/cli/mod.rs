//! Subcommands.

/// `println!` for a line that carries stored, device or viewer text: its
/// control and bidirectional characters are shown escaped
/// ([`custody::text::escape`]), so the text cannot act on the terminal or
/// forge a line.
macro_rules! println_escaped {
    ($($arg:tt)*) => {
        println!("{}", custody::text::escape(&format!($($arg)*)))
    };
}

/// [`println_escaped`] on standard error.
macro_rules! eprintln_escaped {
    ($($arg:tt)*) => {
        eprintln!("{}", custody::text::escape(&format!($($arg)*)))
    };
}

mod annotate;
mod api_client;
mod audit;
mod certs;
mod compliance;
mod dock;
mod export;
mod ledger;
mod list;
mod record;
mod records;
mod rederive_report;
mod remux;
mod serve;
mod verify;
mod viewer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use custody::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "custody",
    version,
    about = "Ingest gateway for law-enforcement audio-visual records"
)]
pub struct Cli {
    /// Log filter (e.g. `info`, `custody=debug`); RUST_LOG works too.
    #[arg(long, global = true, env = "CUSTODY_LOG")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: QUIC ingest, spool, archive to storage.
    Serve(serve::Args),
    /// List and verify the command center's audit trail.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Append a signed annotation (proof object, case, markers, note) to a closed recording.
    Annotate(annotate::Args),
    /// Make the device PKI: CA, gateway and device certificates, CRL, signing key.
    #[command(subcommand)]
    Certs(certs::Command),
    /// Write a verification bundle an auditor checks with sha256sum and openssl.
    ExportProof(export::Args),
    /// Upload every file in the given folders, as a docking rack does.
    Dock(dock::Args),
    /// The records compliance report: late, incomplete, gaps, not uploaded.
    Compliance(compliance::Args),
    /// Retention (R5): list, and raise (through the gateway, as a viewer).
    #[command(subcommand)]
    Retention(records::Retention),
    /// Mark a recording confidential (R6), through the gateway, as a viewer.
    Mark(records::MarkArgs),
    /// Two-person requests to export or delete a recording (R5, R6).
    #[command(subcommand)]
    Request(records::Request),
    /// The device ledger (R1): a device's history, a unit's usage report.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Find stored recordings by case, category, officer, device, occasion and time.
    List(list::Args),
    /// Maintain the catalog of stored recordings.
    #[command(subcommand)]
    Index(list::IndexCommand),
    /// Stream a live recording, as a body-worn recorder does.
    Record(record::Args),
    /// Verify a recording from storage alone.
    Verify(verify::Args),
    /// Derive CMAF segments from a local file as the gateway would.
    Remux(remux::Args),
    /// Make a command-center login token and its `[[viewer]]` entry.
    ViewerToken(viewer::Args),
}

pub fn init_tracing(cli: &Cli) {
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(a) => serve::run(a).await,
        Command::Annotate(a) => annotate::run(a).await,
        Command::Audit(c) => audit::run(c).await,
        Command::Certs(c) => certs::run(c),
        Command::Dock(a) => dock::run(a).await,
        Command::List(a) => list::run(a).await,
        Command::Ledger(c) => ledger::run(c).await,
        Command::Retention(c) => records::retention(c).await,
        Command::Mark(a) => records::mark(a).await,
        Command::Request(c) => records::request(c).await,
        Command::Compliance(a) => compliance::run(a).await,
        Command::Index(c) => list::index(c).await,
        Command::ExportProof(a) => export::run(a).await,
        Command::Record(a) => record::run(a).await,
        Command::Verify(a) => verify::run(a).await,
        Command::Remux(a) => tokio::task::block_in_place(|| remux::run(a)),
        Command::ViewerToken(a) => viewer::run(a),
    }
}

/// Loads `--config` if given, else defaults relative to the working directory.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Config::load(p).with_context(|| format!("loading {}", p.display())),
        None => Ok(Config::defaults(&std::env::current_dir()?)),
    }
}

/// How a device reaches the gateway, shared by `dock` and `record`: the
/// configuration's `[client]` section, each part overridable by a flag.
#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// Configuration file; its [client] section names gateway and certificates.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Gateway address host:port.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Name on the gateway's certificate.
    #[arg(long)]
    pub server_name: Option<String>,
    /// CA certificate the gateway's certificate must chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// This device's certificate and key.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Congestion controller for what this device sends: custody-bbr,
    /// cubic, newreno or quinn-bbr (docs/reliability.md compares them).
    #[arg(long, default_value = "custody-bbr", value_parser = parse_congestion)]
    pub congestion: custody::quic::Congestion,
}

fn parse_congestion(s: &str) -> Result<custody::quic::Congestion, String> {
    s.parse()
}

impl DeviceArgs {
    /// The configuration with the flags given applied to `[client]`.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = load_config(self.config.as_deref())?;
        let c = &mut cfg.client;
        for (dst, src) in [
            (&mut c.gateway, &self.gateway),
            (&mut c.server_name, &self.server_name),
        ] {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        for (dst, src) in [
            (&mut c.ca, &self.ca),
            (&mut c.cert, &self.cert),
            (&mut c.key, &self.key),
        ] {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        Ok(cfg)
    }
}

/// Where a command that reads storage finds it: the configuration file's
/// `[store]`, each part overridable by a flag.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Configuration file whose [store] section says where recordings are.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// S3 bucket (overrides the config file).
    #[arg(long)]
    pub bucket: Option<String>,
    /// S3 endpoint URL (overrides the config file and AWS_ENDPOINT_URL).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Local store directory (the embedded default), when no bucket is set.
    #[arg(long)]
    pub local_dir: Option<PathBuf>,
}

impl StoreArgs {
    /// The configuration with the store flags given applied.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = load_config(self.config.as_deref())?;
        self.apply(&mut cfg);
        Ok(cfg)
    }

    /// The catalog the configuration and flags name: in the store, or in
    /// the cluster's database.
    pub async fn index(&self) -> anyhow::Result<custody::catalog::Index> {
        Ok(custody::catalog::Index::open(&self.load()?).await?)
    }

    fn apply(&self, cfg: &mut Config) {
        if let Some(b) = &self.bucket {
            cfg.store.bucket = Some(b.clone());
        }
        if let Some(e) = &self.endpoint {
            cfg.store.endpoint = Some(e.clone());
        }
        if let Some(d) = &self.local_dir {
            cfg.store.local_dir = d.clone();
            if self.bucket.is_none() {
                cfg.store.bucket = None;
            }
        }
    }
}
