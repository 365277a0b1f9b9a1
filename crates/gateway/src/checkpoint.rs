//! Signed checkpoints: the gateway's Ed25519 signature over a recording's
//! state — how many objects, the chain head after them, where it is
//! stored, how far its journal reaches, the exact manifest once it is
//! closed, when, and the checkpoint before. A verifier holding the
//! gateway's public key can then tell a genuine recording from one whose
//! manifest or journal was rewritten with all hashes recomputed, or that
//! was moved, by someone with write access to the bucket.
//!
//! Stored next to the recording as `<prefix>/checkpoints/NNNNNN.json` (the
//! exact bytes signed) and `NNNNNN.sig` (the raw 64-byte signature), so that
//! `openssl pkeyutl -verify -rawin` checks them without custody.

use crate::signing::SigningKey;
use custody_format::chain::{self};

pub use custody_format::checkpoint::{
    CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_1, Checkpoint, JournalHead, Signed, Statement,
};
pub use custody_format::layout::{checkpoint_key, signature_key};

/// Signs a statement about a recording's chain as `custody-checkpoint/2`.
pub fn sign(key: &SigningKey, s: Statement) -> Signed {
    let checkpoint = Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        recorder: s.recorder,
        recording_id: s.recording_id,
        prefix: Some(s.prefix),
        seq: s.seq,
        object_count: s.object_count,
        chain_head: s.chain_head,
        journal: s.journal,
        manifest_sha256: s.manifest_sha256,
        at: custody_format::time_fmt::now(),
        previous: s.previous,
        is_final: s.is_final,
        public_key: key.public().to_hex(),
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

pub use custody_verify::signature::open_checkpoint as open;

/// Writes a signed checkpoint to storage: signature first, then the
/// checkpoint, so a checkpoint present is always a signed one.
pub async fn store(
    store: &custody_store::Store,
    prefix: &str,
    s: &Signed,
) -> Result<(), custody_store::StoreError> {
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

/// Where a final checkpoint goes in a recording's sequence of checkpoints.
#[derive(Debug, Clone)]
pub struct Place {
    pub seq: u64,
    /// SHA-256 of the checkpoint before, hex (`None` for checkpoint 0).
    pub previous: Option<String>,
    /// The journal as stored (live recordings).
    pub journal: Option<JournalHead>,
}

/// Stores a recording's manifest: first the gateway's final checkpoint
/// over it — its objects, its chain head, its prefix, the journal and the
/// SHA-256 of the manifest's exact bytes — then the manifest itself.
///
/// This is the only way a manifest is written (archiving a docked
/// recording, closing a live one, appending an annotation), so no manifest
/// reaches storage without a final checkpoint that signs every byte of it,
/// and a manifest present is a signed one.
pub async fn seal(
    store: &custody_store::Store,
    key: &SigningKey,
    manifest: &custody_format::manifest::Manifest,
    manifest_bytes: &[u8],
    place: Place,
) -> Result<Signed, custody_store::StoreError> {
    let mh = chain::sha256(manifest_bytes);
    let signed = sign(
        key,
        Statement {
            recorder: manifest.recorder.clone(),
            recording_id: manifest.recording_id.clone(),
            prefix: manifest.prefix.clone(),
            seq: place.seq,
            object_count: manifest.object_count,
            chain_head: manifest.chain_head.clone(),
            journal: place.journal,
            manifest_sha256: Some(hex::encode(mh)),
            previous: place.previous,
            is_final: true,
        },
    );
    self::store(store, &manifest.prefix, &signed).await?;
    store
        .put_bytes(
            &custody_format::layout::manifest_key(&manifest.prefix),
            bytes::Bytes::copy_from_slice(manifest_bytes),
            &mh,
        )
        .await?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(object_count: u64) -> Statement {
        Statement {
            recorder: "bwc-1".into(),
            recording_id: "r".into(),
            prefix: "records/x/2026/11/30/bwc-1/r".into(),
            seq: 0,
            object_count,
            chain_head: "ab".repeat(32),
            journal: None,
            manifest_sha256: Some("cd".repeat(32)),
            previous: None,
            is_final: true,
        }
    }

    #[test]
    fn signed_checkpoints_verify_only_with_their_key() {
        let k = SigningKey::generate().unwrap();
        let s = sign(&k, statement(3));
        let c = open(&s.bytes, &s.signature, &k.public()).unwrap();
        assert_eq!(c.object_count, 3);
        assert!(c.is_final);
        assert_eq!(c.format, CHECKPOINT_FORMAT);
        assert_eq!(c.prefix.as_deref(), Some("records/x/2026/11/30/bwc-1/r"));
        let other = SigningKey::generate().unwrap();
        assert!(open(&s.bytes, &s.signature, &other.public()).is_err());
        let mut forged = s.bytes.clone();
        let i = forged.iter().position(|&b| b == b'3').unwrap();
        forged[i] = b'9';
        assert!(open(&forged, &s.signature, &k.public()).is_err());
        assert!(
            String::from_utf8(s.bytes)
                .unwrap()
                .contains("\"final\": true")
        );
    }

    #[test]
    fn version_1_checkpoints_still_parse() {
        let v1 = br#"{
  "format": "custody-checkpoint/1",
  "recorder": "bwc-0001",
  "recording_id": "bwc-0001-live-demo",
  "seq": 1,
  "object_count": 12,
  "chain_head": "66ad21e78a74c345e371544129500a395c3a6016adf1dab6bdfe8d27a6faa5a9",
  "at": "2026-11-30T02:25:10.165072036Z",
  "previous": "42ede0e81b53184510eebbeafe25f3001471f08e71d417844f0033ff71ce17c0",
  "final": false,
  "public_key": "d05ccb693f063d75b7471880b9b5fef1786bfb03c923aefe0cb006716e5f758f"
}
"#;
        let c: Checkpoint = serde_json::from_slice(v1).unwrap();
        assert_eq!(c.format, CHECKPOINT_FORMAT_1);
        assert_eq!((c.prefix, c.journal, c.manifest_sha256), (None, None, None));
    }

    #[test]
    fn the_journal_head_chains_chunk_hashes_like_objects() {
        // j_0 = SHA-256(Z ‖ SHA-256(chunk 0)), j_1 = SHA-256(j_0 ‖ SHA-256(chunk 1)):
        // the same values as the object chain over the same bytes.
        let j = JournalHead::over([&b"header"[..], &b"original"[..]]);
        assert_eq!(j.chunks, 2);
        assert_eq!(
            j.head,
            "1a16fabe1082089768decbd0c5adcf1a1210192ccbcaa06f6ea08637257f6e6a"
        );
        assert_eq!(JournalHead::over([]), JournalHead::default());
    }
}
