//! The verification bundle (`custody export-proof`): everything an auditor
//! needs to check a recording with `sha256sum`, `openssl` and the spec,
//! without custody — the manifest, the signed checkpoints, the gateway's
//! public key, the objects, and a plain-text procedure with a script that
//! carries it out.

use std::path::Path;

use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::Manifest;
use custody_store::{Store, StoreError, layout};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Refused(String),
}

const PROCEDURE: &str = include_str!("export/VERIFY.txt");
const SCRIPT: &str = include_str!("export/verify.sh");

/// What was written.
#[derive(Debug)]
pub struct Bundle {
    pub objects: usize,
    pub bytes: u64,
    pub checkpoints: usize,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| ExportError::Io(d.display().to_string(), e))?;
    }
    std::fs::write(path, bytes).map_err(|e| ExportError::Io(path.display().to_string(), e))
}

/// Writes the bundle of the recording at `manifest_key` into `out`.
/// `public_key_pem` is the gateway key the unit publishes.
pub async fn export(
    store: &Store,
    manifest_key: &str,
    public_key_pem: &str,
    out: &Path,
    with_objects: bool,
) -> Result<Bundle, ExportError> {
    let mbytes = store.get_bytes(manifest_key, MAX_DOC_BYTES).await?;
    let m: Manifest = serde_json::from_slice(&mbytes)
        .map_err(|e| ExportError::Refused(format!("{manifest_key}: manifest is not valid: {e}")))?;
    write(&out.join("manifest.json"), &mbytes)?;
    write(&out.join("public-key.pem"), public_key_pem.as_bytes())?;
    write(&out.join("VERIFY.txt"), PROCEDURE.as_bytes())?;
    write(&out.join("verify.sh"), SCRIPT.as_bytes())?;

    // One line per object in chain order: index, SHA-256, chain value, file.
    let mut chain = String::new();
    let mut sums = String::new();
    let mut bytes = 0u64;
    for o in &m.objects {
        let name = o.key.rsplit('/').next().unwrap_or(&o.key).to_string();
        chain.push_str(&format!(
            "{} {} {} objects/{name}\n",
            o.index, o.sha256, o.chain
        ));
        sums.push_str(&format!("{}  objects/{name}\n", o.sha256));
        if with_objects {
            let dir = out.join("objects");
            std::fs::create_dir_all(&dir)
                .map_err(|e| ExportError::Io(dir.display().to_string(), e))?;
            bytes += store.download(&o.key, &dir.join(&name)).await?;
        }
    }
    write(&out.join("chain.txt"), chain.as_bytes())?;
    write(&out.join("SHA256SUMS"), sums.as_bytes())?;

    let dir = layout::checkpoints_dir(&m.prefix);
    let mut n = 0;
    for o in store.list(&dir).await? {
        let name = o.key.strip_prefix(&dir).unwrap_or(&o.key);
        let body = store.get_bytes(&o.key, MAX_DOC_BYTES).await?;
        write(&out.join("checkpoints").join(name), &body)?;
        if name.ends_with(".json") {
            n += 1;
        }
    }
    if n == 0 {
        return Err(ExportError::Refused(format!(
            "{manifest_key}: the recording has no signed checkpoint to export"
        )));
    }
    Ok(Bundle {
        objects: m.objects.len(),
        bytes,
        checkpoints: n,
    })
}
