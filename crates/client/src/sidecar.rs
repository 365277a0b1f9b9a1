//! Metadata for docked files: a sidecar JSON next to each file
//! (`clip.mp4` → `clip.mp4.json`) plus defaults from the command line.
//!
//! Paperwork must never cost a recording: a field that is malformed is
//! dropped with a warning and the file is uploaded anyway, marked by the
//! gateway as missing that field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use custody_format::limits;
use custody_format::metadata::RecordingMeta;

/// Room for the metadata in an upload request: the rest of the request
/// (its type, size and device clock) takes well under a kilobyte.
const META_BUDGET: usize = limits::MAX_MSG_LEN - 1024;

/// Reads `fields` into `meta` field by field, returning a warning for each
/// field that could not be used.
pub fn apply(meta: &mut RecordingMeta, fields: &Map<String, Value>) -> Vec<String> {
    let mut warnings = Vec::new();
    fn take<T: DeserializeOwned>(
        v: &Value,
        name: &str,
        slot: &mut Option<T>,
        warnings: &mut Vec<String>,
    ) {
        if v.is_null() {
            return;
        }
        match serde_json::from_value::<T>(v.clone()) {
            Ok(x) => *slot = Some(x),
            Err(e) => warnings.push(format!("{name} ignored: {e}")),
        }
    }
    for (k, v) in fields {
        match k.as_str() {
            "recording_id" => {
                let mut s: Option<String> = None;
                take(v, k, &mut s, &mut warnings);
                if let Some(s) = s {
                    meta.recording_id = s;
                }
            }
            "recorder" => take(v, k, &mut meta.recorder, &mut warnings),
            "mode" => take(v, k, &mut meta.mode, &mut warnings),
            "started_at" => take(v, k, &mut meta.started_at, &mut warnings),
            "ended_at" => take(v, k, &mut meta.ended_at, &mut warnings),
            "officer" => take(v, k, &mut meta.officer, &mut warnings),
            "proof_object" => take(v, k, &mut meta.proof_object, &mut warnings),
            "occasion" => take(v, k, &mut meta.occasion, &mut warnings),
            "full_process" => take(v, k, &mut meta.full_process, &mut warnings),
            "category" => take(v, k, &mut meta.category, &mut warnings),
            "case_id" => take(v, k, &mut meta.case_id, &mut warnings),
            "file_name" => take(v, k, &mut meta.file_name, &mut warnings),
            "markers" => {
                let mut m = None;
                take(v, k, &mut m, &mut warnings);
                if let Some(m) = m {
                    meta.markers = m;
                }
            }
            other => warnings.push(format!("unknown field {other} ignored")),
        }
    }
    warnings
}

/// Drops fields that fail validation until the metadata is valid, with a
/// warning for each, then markers from the end until the metadata fits in
/// one upload request. The recording id is never dropped: if it is
/// invalid, `fallback_id` replaces it.
pub fn sanitize(meta: &mut RecordingMeta, fallback_id: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for _ in 0..32 {
        let Err(e) = meta.validate() else {
            fit_in_one_request(meta, &mut warnings);
            return warnings;
        };
        warnings.push(format!("{e}; field dropped"));
        match e.field {
            "recording_id" => meta.recording_id = fallback_id.to_string(),
            "recorder" => meta.recorder = None,
            "started_at" => meta.started_at = None,
            "ended_at" => meta.ended_at = None,
            "officer" => meta.officer = None,
            "proof_object" => meta.proof_object = None,
            "category" => meta.category = None,
            "case_id" => meta.case_id = None,
            "file_name" => meta.file_name = None,
            "full_process" => meta.full_process = None,
            _ => meta.markers.clear(),
        }
    }
    warnings
}

/// Valid metadata may still be too large to send: 256 markers may each
/// carry 4 KiB of note. Without this, a sidecar could cost the recording
/// its upload (the request would exceed the protocol's message limit);
/// the last markers are dropped instead, with a warning. Every other field
/// is bounded well under the budget.
fn fit_in_one_request(meta: &mut RecordingMeta, warnings: &mut Vec<String>) {
    let total = json_len(meta);
    if total <= META_BUDGET {
        return;
    }
    let mut over = total - META_BUDGET;
    let mut dropped = 0;
    while over > 0
        && let Some(m) = meta.markers.pop()
    {
        // The marker and the comma before it.
        over = over.saturating_sub(json_len(&m) + 1);
        dropped += 1;
    }
    warnings.push(format!(
        "{dropped} markers dropped: the metadata would not fit in one upload request ({META_BUDGET} bytes at most)"
    ));
}

/// The length of `v` as JSON (these types always serialise).
fn json_len<T: serde::Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_format::metadata::Occasion;

    #[test]
    fn good_fields_are_kept_bad_ones_dropped() {
        let v: Value = serde_json::json!({
            "recording_id": "rec-7",
            "officer": "o-1",
            "occasion": "hearing",
            "started_at": "not a time",
            "category": "a/b",
            "case_id": 12,
            "colour": "blue",
        });
        let mut m = RecordingMeta {
            recording_id: "fallback".into(),
            ..Default::default()
        };
        let mut w = apply(&mut m, v.as_object().unwrap());
        w.extend(sanitize(&mut m, "fallback"));
        assert_eq!(m.recording_id, "rec-7");
        assert_eq!(m.officer.as_deref(), Some("o-1"));
        assert_eq!(m.occasion, Some(Occasion::Hearing));
        assert_eq!(m.started_at, None);
        assert_eq!(m.category, None);
        assert_eq!(m.case_id, None);
        assert!(m.validate().is_ok());
        let all = w.join("\n");
        for needle in [
            "case_id ignored",
            "unknown field colour",
            "started_at",
            "category",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
    }

    #[test]
    fn invalid_recording_id_falls_back() {
        let mut m = RecordingMeta {
            recording_id: "../../etc".into(),
            ..Default::default()
        };
        let w = sanitize(&mut m, "f-123");
        assert_eq!(m.recording_id, "f-123");
        assert_eq!(w.len(), 1);
    }

    /// 256 markers of 4 KiB notes are each valid, together 1 MiB: the
    /// upload request must still fit in one message (found by the fuzz
    /// target `sidecar`'s invariant).
    #[test]
    fn markers_beyond_one_request_are_dropped_with_a_warning() {
        let marker = serde_json::json!({"kind": "evidence", "note": "n".repeat(4096)});
        let v = serde_json::json!({"recording_id": "rec-8", "markers": vec![marker; 256]});
        let mut m = RecordingMeta::default();
        let mut w = apply(&mut m, v.as_object().unwrap());
        w.extend(sanitize(&mut m, "fallback"));
        assert!(m.validate().is_ok());
        assert!(!m.markers.is_empty() && m.markers.len() < 256);
        let req = custody_proto::Request::Upload {
            meta: Box::new(m.clone()),
            size: Some(custody_format::limits::MAX_FILE_SIZE),
            device_clock: Some("2026-12-06T08:00:00.123456789+08:00".into()),
        };
        custody_proto::frame::encode_msg(&req).expect("fits in one message");
        let dropped = 256 - m.markers.len();
        assert!(
            w.iter()
                .any(|w| w.starts_with(&format!("{dropped} markers dropped"))),
            "{w:?}"
        );
    }
}
