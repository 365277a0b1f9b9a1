//! The regulation's vocabulary: device kinds, occasions, full-process reasons,
//! content markers, and the metadata a device attaches to a recording.
//!
//! These types are shared by the wire protocol, the header document (object 0
//! of every chain) and the manifest, so their serde names are part of the
//! published formats (`docs/protocol.md`, `docs/manifest.md`).

use serde::{Deserialize, Serialize};

use crate::limits;

/// Recording devices the regulation names (R1), plus the docking rack that
/// uploads on behalf of recorders and generic storage devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    BodyWornRecorder,
    HandheldTerminal,
    Camera,
    AudioRecorder,
    VideoCamera,
    SurveillanceCamera,
    DockingRack,
    StorageDevice,
}

impl DeviceKind {
    /// Kinds that upload on behalf of other devices rather than record themselves.
    pub fn is_relay(self) -> bool {
        matches!(self, DeviceKind::DockingRack | DeviceKind::StorageDevice)
    }
}

/// The seven occasions on which recording is used (R2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Occasion {
    OnSiteInspection,
    RandomSpotCheck,
    InvestigationEvidence,
    EvidencePreservation,
    Hearing,
    AdministrativeCoercion,
    DocumentService,
}

/// Why a recording must cover the whole process without gaps (R2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullProcessReason {
    PersonalLiberty,
    LifeHealth,
    MajorProperty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullProcess {
    pub mandatory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FullProcessReason>,
}

/// How the recording reached the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingMode {
    Live,
    Docked,
}

/// What a content marker points at (R3), or an officer's important-moment mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MarkerKind {
    Scene,
    Persons,
    Evidence,
    Measures,
    DocumentsServed,
    Important,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub kind: MarkerKind,
    /// Seconds from the start of the recording's media, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_time: Option<f64>,
    /// The device clock when the mark was made, as the device reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Marker {
    pub fn validate(&self) -> Result<(), MetaError> {
        if let Some(n) = &self.note {
            check_text("markers.note", n)?;
        }
        if let Some(t) = &self.device_time {
            check_time("markers.device_time", t)?;
        }
        if let Some(t) = self.media_time
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(meta_err(
                "markers.media_time",
                "must be a non-negative number",
            ));
        }
        Ok(())
    }
}

/// Metadata a device sends with a recording. Everything is optional on the
/// wire so that a file is never refused over paperwork; what the regulation
/// requires and is absent is listed by [`RecordingMeta::missing_required`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingMeta {
    /// The device's own id for this recording; stable across resumes.
    pub recording_id: String,
    /// The device that made the recording, when a docking rack uploads for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecordingMode>,
    /// Start of recording by the device's clock (RFC 3339), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// End of recording by the device's clock (RFC 3339), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Officer who made the recording.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// What the recording proves (证明对象); absent means pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occasion: Option<Occasion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_process: Option<FullProcess>,
    /// Enforcement category (分类), a key-safe identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Case (分案), when already known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<Marker>,
    /// The file name on the device, for people; never used as a storage key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// A field value that cannot be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct MetaError {
    pub field: &'static str,
    pub reason: String,
}

fn meta_err(field: &'static str, reason: impl Into<String>) -> MetaError {
    MetaError {
        field,
        reason: reason.into(),
    }
}

/// Identifiers that become parts of storage keys: devices, recordings,
/// categories, cases, officers. Restricted so a key can never escape its prefix.
/// Whether `s` is an id named after a file's content, as `custody dock`
/// gives files without one: `f-` and the first 40 hex digits of the file's
/// SHA-256. Live recordings may not take such ids, so a docked file named
/// by its content is never the copy of a live recording.
pub fn is_content_id(s: &str) -> bool {
    s.strip_prefix("f-")
        .is_some_and(|h| h.len() == 40 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

pub fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= limits::MAX_ID_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn check_id(field: &'static str, v: &str) -> Result<(), MetaError> {
    if valid_id(v) {
        Ok(())
    } else {
        Err(meta_err(
            field,
            format!(
                "must be 1-{} characters of A-Z a-z 0-9 . _ - starting with a letter or digit",
                limits::MAX_ID_LEN
            ),
        ))
    }
}

/// The protocol's *text* rule: at most `MAX_TEXT_LEN` bytes, no control
/// characters (C0, DEL, C1) except `\n` and `\t`.
pub fn check_text(field: &'static str, v: &str) -> Result<(), MetaError> {
    if v.len() > limits::MAX_TEXT_LEN {
        return Err(meta_err(
            field,
            format!("longer than {} bytes", limits::MAX_TEXT_LEN),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(meta_err(field, "contains control characters"));
    }
    Ok(())
}

/// An RFC 3339 time that is also valid text.
pub fn check_time(field: &'static str, v: &str) -> Result<(), MetaError> {
    check_text(field, v)?;
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map_err(|e| meta_err(field, format!("not an RFC 3339 time: {e}")))?;
    // A time that cannot be written in UTC could not be recorded with.
    crate::time_fmt::parse(v).map(|_| ()).ok_or_else(|| {
        meta_err(
            field,
            "not an RFC 3339 time: outside the years 0000-9999 in UTC",
        )
    })
}

impl RecordingMeta {
    /// Checks every field's syntax and bounds. Missing fields are not errors.
    pub fn validate(&self) -> Result<(), MetaError> {
        check_id("recording_id", &self.recording_id)?;
        if let Some(v) = &self.recorder {
            check_id("recorder", v)?;
        }
        if let Some(v) = &self.started_at {
            check_time("started_at", v)?;
        }
        if let Some(v) = &self.ended_at {
            check_time("ended_at", v)?;
        }
        if let Some(v) = &self.officer {
            check_id("officer", v)?;
        }
        if let Some(v) = &self.proof_object {
            check_text("proof_object", v)?;
        }
        if let Some(v) = &self.category {
            check_id("category", v)?;
        }
        if let Some(v) = &self.case_id {
            check_id("case_id", v)?;
        }
        if let Some(v) = &self.file_name {
            check_text("file_name", v)?;
        }
        if let Some(fp) = &self.full_process
            && fp.mandatory
            && fp.reason.is_none()
        {
            return Err(meta_err(
                "full_process",
                "a mandatory full-process recording needs a reason",
            ));
        }
        if self.markers.len() > limits::MAX_MARKERS {
            return Err(meta_err(
                "markers",
                format!("more than {} markers", limits::MAX_MARKERS),
            ));
        }
        for m in &self.markers {
            m.validate()?;
        }
        Ok(())
    }

    /// The regulation's required metadata (R4: how, when, by whom, what it
    /// proves) and the R2 fields, named as they appear in the manifest.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.mode.is_none() {
            missing.push("mode");
        }
        if self.started_at.is_none() {
            missing.push("started_at");
        }
        if self.officer.is_none() {
            missing.push("officer");
        }
        if self.proof_object.is_none() {
            missing.push("proof_object");
        }
        if self.occasion.is_none() {
            missing.push("occasion");
        }
        if self.full_process.is_none() {
            missing.push("full_process");
        }
        if self.category.is_none() {
            missing.push("category");
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RecordingMeta {
        RecordingMeta {
            recording_id: "rec-1".into(),
            mode: Some(RecordingMode::Docked),
            started_at: Some("2026-11-30T08:00:00+08:00".into()),
            officer: Some("o-1001".into()),
            proof_object: Some("scene of the inspection".into()),
            occasion: Some(Occasion::OnSiteInspection),
            full_process: Some(FullProcess {
                mandatory: false,
                reason: None,
            }),
            category: Some("market".into()),
            ..Default::default()
        }
    }

    #[test]
    fn ids() {
        for (s, ok) in [
            ("a", true),
            ("bwc-0001", true),
            ("A.b_c-9", true),
            ("", false),
            ("-x", false),
            (".hidden", false),
            ("a/b", false),
            ("a b", false),
            ("..", false),
            ("ä", false),
        ] {
            assert_eq!(valid_id(s), ok, "{s:?}");
        }
        assert!(!valid_id(&"x".repeat(limits::MAX_ID_LEN + 1)));
    }

    #[test]
    fn content_ids() {
        let h = "0123456789abcdef0123456789abcdef01234567";
        for (s, want) in [
            (format!("f-{h}"), true),
            (format!("f-{}", &h[..39]), false),
            (format!("f-{h}0"), false),
            (format!("f-{}", h.to_uppercase()), false),
            (format!("g-{h}"), false),
            ("bwc-0001-20261130".to_string(), false),
        ] {
            assert_eq!(is_content_id(&s), want, "{s}");
        }
    }

    #[test]
    fn complete_metadata_has_nothing_missing() {
        let m = full();
        m.validate().unwrap();
        assert!(m.missing_required().is_empty());
    }

    #[test]
    fn bare_metadata_lists_what_is_missing() {
        let m = RecordingMeta {
            recording_id: "r".into(),
            ..Default::default()
        };
        m.validate().unwrap();
        assert_eq!(
            m.missing_required(),
            [
                "mode",
                "started_at",
                "officer",
                "proof_object",
                "occasion",
                "full_process",
                "category"
            ]
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut m = full();
        m.started_at = Some("yesterday".into());
        assert_eq!(m.validate().unwrap_err().field, "started_at");
        // Parses, but is in the year 10000 in UTC: nothing could write it.
        let mut m = full();
        m.ended_at = Some("9999-12-31T23:00:00-05:00".into());
        assert_eq!(m.validate().unwrap_err().field, "ended_at");
        let mut m = full();
        m.category = Some("../etc".into());
        assert_eq!(m.validate().unwrap_err().field, "category");
        let mut m = full();
        m.full_process = Some(FullProcess {
            mandatory: true,
            reason: None,
        });
        assert_eq!(m.validate().unwrap_err().field, "full_process");
    }

    #[test]
    fn wire_names_are_kebab_case() {
        let j = serde_json::to_string(&Occasion::AdministrativeCoercion).unwrap();
        assert_eq!(j, "\"administrative-coercion\"");
        let j = serde_json::to_string(&DeviceKind::BodyWornRecorder).unwrap();
        assert_eq!(j, "\"body-worn-recorder\"");
        assert!(
            serde_json::from_str::<RecordingMeta>(r#"{"recording_id":"x","bogus":1}"#).is_err()
        );
    }
}
