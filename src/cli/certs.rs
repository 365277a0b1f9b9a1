//! `custody certs`

use std::path::PathBuf;
use std::process::ExitCode;

use custody::pki::{self, CertDir};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the CA, the gateway's certificate, an empty CRL and the
    /// checkpoint signing key.
    Init {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Organisation name in the certificates.
        #[arg(long, default_value = "custody")]
        org: String,
        /// DNS names and IP addresses the gateway is reached at.
        #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        names: Vec<String>,
        /// Validity of the gateway certificate in days (the CA gets at least ten years).
        #[arg(long, default_value_t = 825)]
        days: i64,
        /// The signature algorithm of checkpoints, annotations and records.
        #[arg(long, value_enum, default_value_t = Signing::Ed25519)]
        signing: Signing,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Make a new checkpoint signing key (signing.key, signing.pub.pem),
    /// replacing the one `init` made. Recordings signed before keep naming
    /// the old key: keep its public half to verify them. Do it with no live
    /// recording open: its later checkpoints would be signed by a key its
    /// header does not name.
    SigningKey {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[arg(long, value_enum)]
        algorithm: Signing,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate to each device id.
    Device {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long, default_value_t = 825)]
        days: i64,
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate to each command-center viewer (a
    /// `[[viewer]]` name): the wall then needs no token.
    Viewer {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long)]
        force: bool,
    },
    /// Revoke every certificate issued to a device (or, as `viewer:NAME`,
    /// to a viewer) and rewrite the CRL.
    Revoke {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        id: String,
    },
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    match c {
        Command::Init {
            dir,
            org,
            names,
            days,
            signing,
            force,
        } => {
            let r = pki::init(
                &CertDir::new(&dir),
                &org,
                &names,
                days,
                signing.into(),
                force,
            )?;
            for p in r.written {
                println!("wrote {}", p.display());
            }
        }
        Command::SigningKey {
            dir,
            algorithm: name,
            force,
        } => {
            for p in pki::new_signing_key(&CertDir::new(&dir), name.into(), force)? {
                println!("wrote {}", p.display());
            }
        }
        Command::Device {
            dir,
            ids,
            days,
            force,
        } => {
            let d = CertDir::new(&dir);
            for id in ids {
                pki::issue_device(&d, &id, days, force)?;
                println!(
                    "issued {} and {} (add {id} to the ledger to admit it)",
                    d.device_cert(&id).display(),
                    d.device_key(&id).display()
                );
            }
        }
        Command::Viewer {
            dir,
            names,
            days,
            force,
        } => {
            let d = CertDir::new(&dir);
            for name in names {
                pki::issue_viewer(&d, &name, days, force)?;
                println!(
                    "issued {} and {} (a [[viewer]] named {name} must exist; for a browser: \
                     openssl pkcs12 -export -inkey {} -in {} -out {name}.p12)",
                    d.viewer_cert(&name).display(),
                    d.viewer_key(&name).display(),
                    d.viewer_key(&name).display(),
                    d.viewer_cert(&name).display()
                );
            }
        }
        Command::Revoke { dir, id } => {
            let d = CertDir::new(&dir);
            let n = pki::revoke_device(&d, &id)?;
            println!(
                "{} now lists {n} revoked certificate(s); the gateway reads it at start (tls.crls). \
                 Set the device's status to \"revoked\" in the ledger to refuse it at once.",
                d.crl().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A signature algorithm on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Signing {
    Ed25519,
    /// SM2 (GB/T 32918), SM3 digest.
    Sm2,
}

impl From<Signing> for custody::signing::Algorithm {
    fn from(s: Signing) -> Self {
        match s {
            Signing::Ed25519 => custody::signing::Algorithm::Ed25519,
            Signing::Sm2 => custody::signing::Algorithm::Sm2,
        }
    }
}
