//! Checking the gateway's Ed25519 signatures (checkpoints, deletion records,
//! the export bundle) with its public key alone. Signing is the gateway's
//! (`custody_gateway::signing`); a verifier needs only this.

use custody_format::checkpoint::Checkpoint;
use rustls_pki_types::pem::PemObject;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("not an Ed25519 key")]
    NotEd25519,
    #[error("public key PEM: {0}")]
    Pem(String),
}

/// Extracts the raw 32-byte key from an Ed25519 public key PEM (SPKI).
pub fn public_from_pem(pem: &str) -> Result<[u8; 32], PublicKeyError> {
    let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PublicKeyError::Pem(e.to_string()))?;
    let der = der.as_ref();
    if der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
        return Err(PublicKeyError::NotEd25519);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&der[12..]);
    Ok(out)
}

/// Whether `sig` is `public`'s Ed25519 signature of `msg`.
pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(msg, sig)
        .is_ok()
}

/// Checks a stored checkpoint's signature against `public` and parses it.
pub fn open_checkpoint(
    bytes: &[u8],
    signature: &[u8],
    public: &[u8; 32],
) -> Result<Checkpoint, String> {
    if !verify(public, bytes, signature) {
        return Err("signature does not verify with the trusted public key".into());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("checkpoint is not valid: {e}"))
}
