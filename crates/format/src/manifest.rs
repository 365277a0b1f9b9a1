//! The documents that describe a recording in storage (`docs/manifest.md`):
//! the header document (object 0 of the chain, stored as exact bytes) and
//! the manifest that lists every object in chain order.

use serde::{Deserialize, Serialize};

use crate::chain::{self, Chain, Hash};

use crate::metadata::{DeviceKind, RecordingMeta, RecordingMode};

pub const HEADER_FORMAT: &str = "custody-header/1";
pub const MANIFEST_FORMAT: &str = "custody-manifest/1";

/// How the recording was made (R4 "制作方法").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    /// Kind of the device that made it, from the ledger.
    pub device_kind: DeviceKind,
    /// Live or docked, as the device declared (absent if it did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecordingMode>,
}

/// The device that delivered the bytes (the recorder itself, or a docking
/// rack uploading for it), as authenticated by its certificate — or, for a
/// device that speaks another protocol, as `ingest` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploader {
    pub device: String,
    pub device_kind: DeviceKind,
    /// SHA-256 of the client certificate's DER; empty when the device has
    /// no certificate (`ingest`).
    pub certificate_sha256: String,
    /// How the bytes reached the gateway when not over custody's own
    /// protocol; absent for custody's QUIC protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
}

/// A device that speaks another protocol, as the gateway reached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingest {
    /// `rtsp`: the gateway pulled the stream from the camera.
    pub protocol: String,
    /// Where from, without credentials (`rtsp://host:port/path`).
    pub source: String,
    /// How the device was identified (`ledger-url`: the ledger names this
    /// URL for this device, and the gateway connected to it).
    pub identified_by: String,
}

/// Object 0 of every recording. Created once, at the first byte's arrival;
/// a resumed upload keeps the original header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderDoc {
    pub format: String,
    /// The device that made the recording (ledger id).
    pub recorder: String,
    pub recording_id: String,
    pub method: Method,
    /// Gateway clock at first receipt, RFC 3339 UTC.
    pub received_at: String,
    /// The uploading device's clock as it sent its first request, if it
    /// said (`device_clock` in `upload`/`live`), and how far it was off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_clock: Option<DeviceClock>,
    pub gateway: String,
    pub uploader: Uploader,
    /// The ledger's record of the recorder when the recording was made
    /// (device clock), or at receipt if the device gave no time.
    pub ledger: LedgerView,
    /// Everything the device declared, verbatim.
    pub meta: RecordingMeta,
    /// Size the device declared up front, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_size: Option<u64>,
    /// Required metadata the device did not supply (R4); the recording is
    /// kept regardless and reported as incomplete.
    pub missing: Vec<String>,
    /// Where the declaration and the ledger disagree (e.g. the officer the
    /// device names is not the one the ledger assigns); kept, not refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discrepancies: Vec<String>,
    /// The gateway's Ed25519 public key (raw, hex) that signs this
    /// recording's checkpoints.
    pub signing_key: String,
    /// The retention class it was received under (R5); raised later by
    /// signed annotations, never lowered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::retention::Retention>,
    /// Another recording this one is a copy of: a recorder's full-quality
    /// local file docked after it streamed the same recording live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<CopyOf>,
}

/// What the uploading device's clock said when the gateway's said
/// `received_at`: device times in the metadata are only as good as it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClock {
    /// As the device sent it (RFC 3339).
    pub at: String,
    /// `at` minus `received_at`, in whole seconds (rounded towards zero):
    /// negative when the device's clock is behind the gateway's.
    pub skew_seconds: i64,
}

/// The longest `device_clock` a device may send.
pub const MAX_DEVICE_CLOCK_LEN: usize = 64;

impl DeviceClock {
    /// The device's clock `sent` (as a request carried it) against the
    /// gateway's `received`; an error names what is wrong with `sent`.
    pub fn at_receipt(sent: &str, received: time::OffsetDateTime) -> Result<DeviceClock, String> {
        if sent.len() > MAX_DEVICE_CLOCK_LEN {
            return Err(format!(
                "device_clock: longer than {MAX_DEVICE_CLOCK_LEN} bytes"
            ));
        }
        let at = crate::time_fmt::parse(sent)
            .ok_or_else(|| "device_clock: not an RFC 3339 time".to_string())?;
        Ok(DeviceClock {
            at: sent.to_string(),
            skew_seconds: (at - received).whole_seconds(),
        })
    }
}

/// How a linked recording relates to the one that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    /// In the docked copy's header and manifest: it duplicates the live
    /// recording named.
    #[serde(rename = "docked-copy-of")]
    CopyOf,
    /// In the live recording's manifest (from a signed annotation): the
    /// recording named is its docked copy.
    #[serde(rename = "docked-copy")]
    HasCopy,
}

impl Relation {
    /// The word stored in headers and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::CopyOf => "docked-copy-of",
            Relation::HasCopy => "docked-copy",
        }
    }
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The recording a docked copy duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOf {
    /// Always [`Relation::CopyOf`](Relation::CopyOf).
    pub relation: Relation,
    pub recorder: String,
    pub recording_id: String,
}

/// A link between two recordings of the same event, listed in the
/// manifest: the docked copy names the live recording (`docked-copy-of`,
/// from its header) and the live recording names its copy (`docked-copy`,
/// from a signed annotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub relation: Relation,
    pub recorder: String,
    pub recording_id: String,
    /// The other recording's manifest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// For `docked-copy`: indexes of the live gaps the copy covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps_filled: Vec<usize>,
}

impl HeaderDoc {
    /// The exact bytes stored as object 0. Serialised once and kept; never
    /// re-serialised for hashing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("header serialises");
        v.push(b'\n');
        v
    }
}

/// What an object is within its recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Object 0: the header document.
    Header,
    /// Bytes exactly as the device sent them.
    Original,
    /// A CMAF initialisation segment derived from an original.
    Init,
    /// A CMAF media segment derived from an original.
    Segment,
    /// A later signed annotation (proof object, case, markers).
    Annotation,
    /// A live recording's original bytes, cut where its segments close.
    RawChunk,
}

/// The original a derived object was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedFrom {
    pub index: u64,
    pub key: String,
    pub sha256: String,
}

/// Media time a derived object covers, in seconds from the start of the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRange {
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub index: u64,
    pub key: String,
    pub role: Role,
    pub size: u64,
    pub sha256: String,
    /// Chain value `c_index`.
    pub chain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<DerivedFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaRange>,
    /// For raw chunks: where the bytes sit in the device's stream. Chunks
    /// are contiguous except across recorded gaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    /// Gateway clock when the object was cut (live recordings), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A range of bytes in a device's live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// A stretch of a live recording that was never received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// `lost-bytes` (the device could not keep them), `source-restart` (the
    /// recorder restarted), or `tail` (the recorder stopped sending and the
    /// recording was closed by timeout).
    pub kind: String,
    /// Gateway clock: last byte before the gap, first byte after it (or the
    /// close, for a tail gap).
    pub wall_from: String,
    pub wall_to: String,
    /// Recording media time, seconds: where the gap starts and (estimated
    /// from the wall clock) where media resumes.
    pub media_from: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_to: Option<f64>,
    /// Stream offsets of bytes that never arrived, for `lost-bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<ByteRange>,
    pub reason: String,
}

/// How a live recording ended and whether it is whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSummary {
    pub closed_by: ClosedBy,
    pub started_at: String,
    pub ended_at: String,
    /// Seconds of media derived.
    pub media_duration: f64,
    /// Bytes of the device's stream received.
    pub stream_bytes: u64,
    pub gaps: Vec<Gap>,
    /// No gaps.
    pub complete: bool,
    /// A mandatory full-process recording (R2) with gaps: flagged, never hidden.
    pub full_process_violation: bool,
    /// Journal objects under `<prefix>/journal/`, in order.
    pub journal_chunks: u64,
    /// Whether raw chunks (the device's bytes) are stored; a policy may
    /// turn them off, leaving the segments as the only record.
    pub raw_chunks: bool,
}

/// What ended a live recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedBy {
    /// The recorder said it ended (`end`, or its gateway log's day ended).
    Device,
    /// It went silent for longer than the gateway waits.
    Timeout,
}

impl ClosedBy {
    /// The word stored in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Device => "device",
            ClosedBy::Timeout => "timeout",
        }
    }
}

/// Whether the recording arrived intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegrityStatus {
    /// The device's end-to-end SHA-256 matched the bytes stored.
    Verified,
    /// The bytes stored differ from what the device declared; kept for inspection.
    Mismatch,
}

/// Fields copied from the header for people and indexes; the header object
/// remains the authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub officer: Option<String>,
    pub occasion: Option<crate::metadata::Occasion>,
    pub mandatory_full_process: bool,
    pub category: Option<String>,
    pub case_id: Option<String>,
    pub proof_object: Option<String>,
    pub started_at: Option<String>,
    pub received_at: String,
    pub method: Method,
    /// The recorder's unit in the ledger when it was made (from the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The officer's name in the ledger (from the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_name: Option<String>,
    /// The header's `device_clock.skew_seconds`: how far the uploading
    /// device's clock was from the gateway's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub recorder: String,
    pub recording_id: String,
    /// Key prefix under which every object of the recording lives.
    pub prefix: String,
    pub integrity: IntegrityStatus,
    /// SHA-256 the device declared for its file, lowercase hex.
    pub declared_sha256: String,
    /// True when all required metadata was supplied.
    pub metadata_complete: bool,
    pub missing: Vec<String>,
    pub summary: Summary,
    pub objects: Vec<ObjectEntry>,
    pub object_count: u64,
    /// Chain value of the last object.
    pub chain_head: String,
    /// Gateway clock when the manifest was written, RFC 3339 UTC.
    pub finalized_at: String,
    pub gateway: String,
    /// Whether CMAF derivatives were made from the original, and if not why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<DerivationSummary>,
    /// Present for live recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSummary>,
    /// Other recordings of the same event (a live recording and its
    /// docked copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// The storage deadline (R4) and whether it was met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<crate::deadline::DeadlineRecord>,
    /// How long it is kept (R5), from its header and retention annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::retention::RetentionState>,
    /// Confidentiality marks (R6), from signed annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confidentiality: Vec<crate::confidentiality::Mark>,
}

/// What became of the original in the remux stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivationSummary {
    pub status: DerivationStatus,
    /// The input kind GStreamer's typefinding gave the original's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The pipeline description used (`pipelines/<name>.pipeline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Every track of the input, and whether it is in the derivative.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<Track>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How to make the derived objects again, byte for byte (docked
    /// recordings; `docs/manifest.md` §9.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// Live: media the derivative lacks although the original has it
    /// (`docs/manifest.md` §9.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<DerivativeHole>,
}

/// Whether CMAF derivatives were made from the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DerivationStatus {
    /// Derived objects are in the chain.
    Derived,
    /// None was attempted: not audio-visual, derivation off, no bytes, a log
    /// (see `reason`).
    None,
    /// Deriving failed (see `reason`); the original is kept as it came.
    Failed,
}

impl DerivationStatus {
    /// The word stored in manifests and sent to devices.
    pub fn as_str(self) -> &'static str {
        match self {
            DerivationStatus::Derived => "derived",
            DerivationStatus::None => "none",
            DerivationStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for DerivationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stretch of a live recording's media time missing from its derivative
/// (never from its raw chunks, which hold every byte received).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DerivativeHole {
    /// Media time of the last stored segment's end, seconds.
    pub media_from: f64,
    /// Media time where the derivative goes on, seconds.
    pub media_to: f64,
    pub reason: String,
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }
}

/// Builds a chain of object entries in order.
#[derive(Debug, Default)]
pub struct EntryBuilder {
    chain: Chain,
    entries: Vec<ObjectEntry>,
}

impl EntryBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, key: String, role: Role, size: u64, sha256: &Hash) -> &mut ObjectEntry {
        let c = self.chain.push(sha256);
        self.entries.push(ObjectEntry {
            index: self.entries.len() as u64,
            key,
            role,
            size,
            sha256: hex::encode(sha256),
            chain: hex::encode(c),
            content_type: None,
            derived_from: None,
            media: None,
            range: None,
            at: None,
        });
        self.entries.last_mut().expect("just pushed")
    }

    pub fn head_hex(&self) -> String {
        self.chain.head().map(hex::encode).unwrap_or_default()
    }

    pub fn into_entries(self) -> Vec<ObjectEntry> {
        self.entries
    }
}

/// Recomputes the chain over entries' hashes and checks each stored chain
/// value; returns the index of the first entry whose value is wrong.
pub fn check_chain(entries: &[ObjectEntry]) -> Result<Hash, (u64, String)> {
    let mut chain = Chain::new();
    for (i, e) in entries.iter().enumerate() {
        if e.index != i as u64 {
            return Err((
                e.index,
                format!("entry at position {i} has index {}", e.index),
            ));
        }
        let h = chain::parse_hex(&e.sha256)
            .ok_or_else(|| (e.index, "sha256 is not 64 lowercase hex digits".to_string()))?;
        let c = chain.push(&h);
        if hex::encode(c) != e.chain {
            return Err((
                e.index,
                format!(
                    "chain value is {} but recomputes to {}",
                    e.chain,
                    hex::encode(c)
                ),
            ));
        }
    }
    chain
        .head()
        .copied()
        .ok_or_else(|| (0, "manifest lists no objects".to_string()))
}

/// The ledger's record of a device at a given time, copied into each
/// recording's header so the record shows who held the device when it was
/// made, even if the ledger changes later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    pub device: String,
    pub kind: DeviceKind,
    pub status: DeviceStatus,
    pub custodian: String,
    pub unit: String,
    /// Officer assigned at that time, if any.
    pub officer: Option<String>,
    pub officer_name: Option<String>,
    pub enforcement: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceStatus {
    Active,
    Revoked,
}

/// What it takes to make the same derivative again from the original
/// (`crate::rederive`): the pipeline description as it was, the segment
/// duration asked of the muxer, and the versions of what did the work.
/// Derived bytes depend on nothing else (no wall-clock time, no randomness).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// The pipeline description file, verbatim (`pipelines/README.md`).
    pub pipeline_description: String,
    /// The muxer's target segment duration (`[media] segment_seconds`).
    pub segment_seconds: f64,
    /// GStreamer's version, e.g. `1.22.0`.
    pub gstreamer: String,
    /// The fMP4 muxer's (gst-plugin-fmp4) version, e.g. `0.14.5`.
    pub fmp4mux: String,
}

/// A track of the input and whether it made it into the derivative.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub caps: String,
    pub included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Most left-out tracks a derivation's reason names, and the longest caps
/// text it quotes for each: the reason also travels to the device in one
/// message, and the manifest's `tracks` lists every track in full.
const REASON_TRACKS: usize = 8;
const REASON_CAPS_CHARS: usize = 200;

/// Why a derivative lacks some of the input's tracks, naming each one left
/// out and why (`None` when every track is in).
pub fn left_out_reason(tracks: &[Track]) -> Option<String> {
    let out: Vec<&Track> = tracks.iter().filter(|t| !t.included).collect();
    if out.is_empty() {
        return None;
    }
    let named = out
        .iter()
        .take(REASON_TRACKS)
        .map(|t| {
            let caps: String = t.caps.chars().take(REASON_CAPS_CHARS).collect();
            let cut = if caps.len() < t.caps.len() { "…" } else { "" };
            format!(
                "{caps}{cut} ({})",
                t.reason.as_deref().unwrap_or("left out")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let more = match out.len().saturating_sub(REASON_TRACKS) {
        0 => String::new(),
        n => format!("; and {n} more (see tracks)"),
    };
    Some(format!(
        "{} of {} tracks left out: {named}{more}",
        out.len(),
        tracks.len()
    ))
}

impl HeaderDoc {
    /// The instant the recording's retention period runs from: the end of
    /// recording (the live close, else the device's declared end, else its
    /// declared start) — but never before the gateway received it. A
    /// device's clock is not trusted to shorten retention: a recorder whose
    /// clock was reset to 2001 would otherwise make fresh evidence deletable
    /// at once. (A docked recording ended before its upload began, so its
    /// period then runs from receipt, which keeps it a little longer than
    /// the regulation asks, never shorter.)
    pub fn retention_start(&self, live_end: Option<time::OffsetDateTime>) -> time::OffsetDateTime {
        let parse = |s: &Option<String>| s.as_deref().and_then(crate::time_fmt::parse);
        let end = live_end
            .or_else(|| parse(&self.meta.ended_at))
            .or_else(|| parse(&self.meta.started_at));
        match (end, crate::time_fmt::parse(&self.received_at)) {
            (Some(end), Some(received)) => end.max(received),
            (end, received) => end.or(received).unwrap_or_else(crate::clock::now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_are_stored_by_their_names_and_no_other_is_read() {
        for r in [Relation::CopyOf, Relation::HasCopy] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<Relation>(&json).unwrap(), r);
        }
        assert!(serde_json::from_str::<Relation>("\"copy\"").is_err());
    }

    #[test]
    fn device_clocks_are_checked_and_compared() {
        let received = crate::time_fmt::parse("2026-12-02T02:00:05.9Z").unwrap();
        let c = DeviceClock::at_receipt("2001-01-01T08:00:00+08:00", received).unwrap();
        assert_eq!(c.at, "2001-01-01T08:00:00+08:00");
        assert_eq!(c.skew_seconds, -817_869_605);
        let ahead = DeviceClock::at_receipt("2026-12-02T02:10:06Z", received).unwrap();
        assert_eq!(ahead.skew_seconds, 600);
        for bad in ["yesterday", "2026-12-02", "9999-12-31T23:00:00-05:00"] {
            assert_eq!(
                DeviceClock::at_receipt(bad, received).unwrap_err(),
                "device_clock: not an RFC 3339 time"
            );
        }
        let long = format!("2026-12-02T02:00:05.{}Z", "9".repeat(60));
        assert!(
            DeviceClock::at_receipt(&long, received)
                .unwrap_err()
                .contains("longer than 64 bytes")
        );
    }

    #[test]
    fn builder_and_check_agree() {
        let mut b = EntryBuilder::new();
        b.push("p/0".into(), Role::Header, 3, &chain::sha256(b"abc"));
        b.push("p/1".into(), Role::Original, 1, &chain::sha256(b"x"));
        let head = b.head_hex();
        let mut entries = b.into_entries();
        assert_eq!(hex::encode(check_chain(&entries).unwrap()), head);
        entries[1].sha256 = hex::encode(chain::sha256(b"y"));
        assert_eq!(check_chain(&entries).unwrap_err().0, 1);
        entries.swap(0, 1);
        assert!(check_chain(&entries).is_err());
        assert!(check_chain(&[]).is_err());
    }
}
