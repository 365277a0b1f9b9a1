//! `custody viewer-token`: a login token for the command center and the
//! `[[viewer]]` entry that admits it (only the token's SHA-256 is kept).

use std::process::ExitCode;

use custody::config::ViewerRole;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The viewer's name, as it appears in the audit trail.
    pub name: String,
    /// operator (live feeds of their unit), supervisor (all live feeds and
    /// stored recordings) or auditor (stored recordings only).
    #[arg(long, value_parser = parse_role, default_value = "operator")]
    pub role: ViewerRole,
    /// The viewer's unit (operators see its recorders' live feeds).
    #[arg(long, default_value = "")]
    pub unit: String,
}

fn parse_role(s: &str) -> Result<ViewerRole, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown role {s:?}: operator, supervisor or auditor"))
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        custody::metadata::valid_id(&a.name),
        "viewer name {:?}: letters, digits, . _ - (as device ids)",
        a.name
    );
    anyhow::ensure!(
        a.role != ViewerRole::Operator || !a.unit.is_empty(),
        "an operator watches their unit's feeds: give --unit"
    );
    let mut b = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let token = hex::encode(b);
    let digest = hex::encode(custody::chain::sha256(token.as_bytes()));
    let role = serde_json::to_value(a.role)?;
    eprintln!(
        "token for {} (give it to the viewer; it is not stored anywhere):",
        a.name
    );
    println!("{token}");
    eprintln!("add to the gateway configuration:");
    eprintln!(
        "[[viewer]]\nname = {:?}\nrole = {}\nunit = {:?}\ntoken_sha256 = \"{digest}\"",
        a.name, role, a.unit
    );
    Ok(ExitCode::SUCCESS)
}
