//! Signed checkpoints as stored (`docs/manifest.md` §7): the statement a
//! gateway signs about a recording's chain, journal and final manifest, and
//! where the checkpoint and its raw Ed25519 signature are kept. Signing is
//! the gateway's; checking is the verifier's.

use serde::{Deserialize, Serialize};

use crate::chain::{self, Hash};

/// The format this version signs: the fields of `custody-checkpoint/1`
/// plus the recording's storage prefix, its journal (live recordings) and,
/// on final checkpoints, the exact manifest.
pub const CHECKPOINT_FORMAT: &str = "custody-checkpoint/2";
/// Signed by earlier versions: the object count and chain head only.
pub const CHECKPOINT_FORMAT_1: &str = "custody-checkpoint/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub recorder: String,
    pub recording_id: String,
    /// `/2`: the storage prefix the recording was written under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// 0, 1, 2, … per recording.
    pub seq: u64,
    /// The first `object_count` objects of the chain are covered.
    pub object_count: u64,
    /// Chain value of object `object_count − 1`, hex.
    pub chain_head: String,
    /// `/2`, live recordings: the journal chunks stored so far and the hash
    /// chain over their exact bytes (they hold every entry's range and
    /// every gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalHead>,
    /// `/2`, final checkpoints: SHA-256 of the exact bytes of the manifest
    /// stored right after this checkpoint (completeness, gaps, derivation
    /// status, summary, links, retention …), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
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

/// How far a live recording's journal reaches: `chunks` chunks, chained
/// like the objects (§4 of docs/manifest.md) over the SHA-256 of each
/// chunk's exact bytes: `j_0 = SHA-256(Z ‖ SHA-256(chunk 0))`,
/// `j_i = SHA-256(j_{i−1} ‖ SHA-256(chunk i))`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHead {
    pub chunks: u64,
    /// `j_{chunks−1}`, hex; empty when there are no chunks.
    pub head: String,
}

impl JournalHead {
    /// The head after one more chunk whose exact bytes are `chunk`.
    pub fn extend(&mut self, chunk: &[u8]) {
        let prev: Option<Hash> = chain::parse_hex(&self.head);
        self.head = hex::encode(chain::link(prev.as_ref(), &chain::sha256(chunk)));
        self.chunks += 1;
    }

    /// The head over `chunks`, in order.
    pub fn over<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> JournalHead {
        let mut j = JournalHead::default();
        for c in chunks {
            j.extend(c);
        }
        j
    }
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

/// What a checkpoint states about one recording.
#[derive(Debug, Clone)]
pub struct Statement {
    pub recorder: String,
    pub recording_id: String,
    pub prefix: String,
    pub seq: u64,
    pub object_count: u64,
    pub chain_head: String,
    pub journal: Option<JournalHead>,
    pub manifest_sha256: Option<String>,
    pub previous: Option<String>,
    pub is_final: bool,
}
