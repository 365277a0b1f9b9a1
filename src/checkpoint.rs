//! Signed checkpoints: the gateway's Ed25519 signature over a recording's
//! chain state — how many objects, the chain head after them, when, and the
//! checkpoint before. A verifier holding the gateway's public key can then
//! tell a genuine recording from one whose manifest was rewritten with all
//! hashes recomputed by someone with write access to the bucket.
//!
//! Stored next to the recording as `<prefix>/checkpoints/NNNNNN.json` (the
//! exact bytes signed) and `NNNNNN.sig` (the raw 64-byte signature), so that
//! `openssl pkeyutl -verify -rawin` checks them without custody.

use serde::{Deserialize, Serialize};

use crate::chain;
use crate::signing::{self, SigningKey};

pub const CHECKPOINT_FORMAT: &str = "custody-checkpoint/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub recorder: String,
    pub recording_id: String,
    /// 0, 1, 2, … per recording.
    pub seq: u64,
    /// The first `object_count` objects of the chain are covered.
    pub object_count: u64,
    /// Chain value of object `object_count − 1`, hex.
    pub chain_head: String,
    /// Gateway clock, RFC 3339 UTC.
    pub at: String,
    /// SHA-256 of the previous checkpoint's bytes (hex), absent for the first.
    pub previous: Option<String>,
    /// The recording is closed at this point (set on the close and on every
    /// checkpoint after it).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The signing key's raw Ed25519 public key, hex: which key to verify with
    /// (a verifier must still compare it with the key it trusts).
    pub public_key: String,
}

pub fn checkpoint_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/checkpoints/{seq:06}.json")
}

pub fn signature_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/checkpoints/{seq:06}.sig")
}

/// A checkpoint as stored: its exact bytes and signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Signed {
    pub fn sha256_hex(&self) -> String {
        hex::encode(chain::sha256(&self.bytes))
    }
}

/// Signs the chain state of a recording.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    key: &SigningKey,
    recorder: &str,
    recording_id: &str,
    seq: u64,
    object_count: u64,
    chain_head: &str,
    previous: Option<String>,
    is_final: bool,
) -> Signed {
    let checkpoint = Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        recorder: recorder.to_string(),
        recording_id: recording_id.to_string(),
        seq,
        object_count,
        chain_head: chain_head.to_string(),
        at: crate::time_fmt::now(),
        previous,
        is_final,
        public_key: hex::encode(key.public_raw()),
    };
    let mut bytes = serde_json::to_vec_pretty(&checkpoint).expect("checkpoint serialises");
    bytes.push(b'\n');
    let signature = key.sign(&bytes);
    Signed {
        checkpoint,
        bytes,
        signature,
    }
}

/// Checks a stored checkpoint's signature against `public` and parses it.
pub fn open(bytes: &[u8], signature: &[u8], public: &[u8; 32]) -> Result<Checkpoint, String> {
    if !signing::verify(public, bytes, signature) {
        return Err("signature does not verify with the trusted public key".into());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("checkpoint is not valid: {e}"))
}

/// Writes a signed checkpoint to storage: signature first, then the
/// checkpoint, so a checkpoint present is always a signed one.
pub async fn store(
    store: &crate::store::Store,
    prefix: &str,
    s: &Signed,
) -> Result<(), crate::store::StoreError> {
    let seq = s.checkpoint.seq;
    let sig = bytes::Bytes::from(s.signature.clone());
    store
        .put_bytes(
            &signature_key(prefix, seq),
            sig.clone(),
            &chain::sha256(&sig),
        )
        .await?;
    let b = bytes::Bytes::from(s.bytes.clone());
    store
        .put_bytes(&checkpoint_key(prefix, seq), b.clone(), &chain::sha256(&b))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_verify_only_with_their_key() {
        let k = SigningKey::generate().unwrap();
        let s = sign(&k, "bwc-1", "r", 0, 3, &"ab".repeat(32), None, true);
        let c = open(&s.bytes, &s.signature, &k.public_raw()).unwrap();
        assert_eq!(c.object_count, 3);
        assert!(c.is_final);
        let other = SigningKey::generate().unwrap();
        assert!(open(&s.bytes, &s.signature, &other.public_raw()).is_err());
        let mut forged = s.bytes.clone();
        let i = forged.iter().position(|&b| b == b'3').unwrap();
        forged[i] = b'9';
        assert!(open(&forged, &s.signature, &k.public_raw()).is_err());
        assert!(
            String::from_utf8(s.bytes)
                .unwrap()
                .contains("\"final\": true")
        );
    }
}
