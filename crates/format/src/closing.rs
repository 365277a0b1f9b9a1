//! The one construction of a recording's manifest, for docked and live
//! recordings alike (`docs/manifest.md` §4): what is copied from the header
//! (the summary, the missing metadata, the retention, the links) is copied
//! here only, so the two kinds cannot drift apart. Pure: every time and
//! every fact the gateway decided is passed in.

use time::OffsetDateTime;

use crate::deadline::DeadlineRecord;
use crate::manifest::{
    DerivationSummary, HeaderDoc, IntegrityStatus, LiveSummary, MANIFEST_FORMAT, Manifest,
    ObjectEntry, Summary,
};
use crate::retention::RetentionState;

/// What a closed recording's manifest is made of, besides its header.
#[derive(Debug, Clone)]
pub struct Closing<'a> {
    pub header: &'a HeaderDoc,
    /// Key prefix of every object of the recording.
    pub prefix: &'a str,
    /// Every object, in chain order (object 0 is the header).
    pub objects: Vec<ObjectEntry>,
    /// The chain value of the last object.
    pub chain_head: String,
    /// When the manifest is written (docked) or the recording closed
    /// (live), RFC 3339 as recorded.
    pub finalized_at: String,
    /// The gateway's name.
    pub gateway: &'a str,
    /// The SHA-256 the device declared for its file (docked), hex.
    pub declared_sha256: Option<&'a str>,
    pub derivation: DerivationSummary,
    /// A live recording's close: its retention runs from there.
    pub live: Option<LiveSummary>,
    /// The end of recording used for retention: the live close, if any.
    pub live_end: Option<OffsetDateTime>,
    /// The storage deadline, where the gateway has a calendar.
    pub deadline: Option<DeadlineRecord>,
}

impl Summary {
    /// The fields of a header that people and indexes read from the
    /// manifest (the header object stays the authority).
    pub fn of(h: &HeaderDoc) -> Summary {
        Summary {
            officer: h.meta.officer.clone(),
            occasion: h.meta.occasion,
            mandatory_full_process: h.meta.full_process.as_ref().is_some_and(|f| f.mandatory),
            category: h.meta.category.clone(),
            case_id: h.meta.case_id.clone(),
            proof_object: h.meta.proof_object.clone(),
            started_at: h.meta.started_at.clone(),
            received_at: h.received_at.clone(),
            method: h.method.clone(),
            unit: Some(h.ledger.unit.clone()).filter(|u| !u.is_empty()),
            officer_name: h.ledger.officer_name.clone(),
            clock_skew_seconds: h.device_clock.as_ref().map(|c| c.skew_seconds),
        }
    }
}

impl Manifest {
    /// The manifest of a recording as it is closed.
    pub fn build(c: Closing<'_>) -> Manifest {
        let h = c.header;
        Manifest {
            format: MANIFEST_FORMAT.into(),
            recorder: h.recorder.clone(),
            recording_id: h.recording_id.clone(),
            prefix: c.prefix.to_string(),
            integrity: IntegrityStatus::Verified,
            declared_sha256: c.declared_sha256.unwrap_or_default().to_string(),
            metadata_complete: h.missing.is_empty(),
            missing: h.missing.clone(),
            summary: Summary::of(h),
            object_count: c.objects.len() as u64,
            objects: c.objects,
            chain_head: c.chain_head,
            finalized_at: c.finalized_at,
            gateway: c.gateway.to_string(),
            derivation: Some(c.derivation),
            live: c.live,
            links: h
                .copy_of
                .iter()
                .map(|c| crate::manifest::Link {
                    relation: c.relation,
                    recorder: c.recorder.clone(),
                    recording_id: c.recording_id.clone(),
                    manifest_key: None,
                    gaps_filled: Vec::new(),
                })
                .collect(),
            deadline: c.deadline,
            retention: h
                .retention
                .map(|r| RetentionState::at_build(r, h.retention_start(c.live_end))),
            confidentiality: Vec::new(),
        }
    }
}
