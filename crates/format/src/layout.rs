//! Object keys (`docs/manifest.md`, "Storage layout").
//!
//! Recordings are filed by category and by day of receipt (分类), each under
//! its own prefix that never changes once chosen. Cases (分案) are index
//! objects pointing at recordings, so a case assigned later adds an index
//! entry instead of moving or rewriting an original.
//!
//! ```text
//! records/<category>/<yyyy>/<mm>/<dd>/<recorder>/<recording-id>/
//!     000000-header.json      object 0
//!     000001-original.<ext>   object 1
//!     manifest.json
//! index/recordings/<recorder>/<recording-id>.json   → prefix (locator)
//! index/cases/<case>/<recorder>/<recording-id>.json  → prefix
//! usage/<device>/<yyyy>/<mm>/<dd>/<time>-<seq>.json  usage record entries
//! quarantine/<recorder>/<recording-id>/<nanos>/...   bytes that failed a check
//! ```

use time::{OffsetDateTime, UtcOffset};

use crate::manifest::Role;

/// Where recordings without a category go. Device-chosen categories start
/// with a letter or digit, so this name can never collide with one.
pub const UNCATEGORIZED: &str = "_uncategorized";

pub fn recording_prefix(
    category: Option<&str>,
    received_local: OffsetDateTime,
    recorder: &str,
    recording_id: &str,
) -> String {
    format!(
        "records/{}/{:04}/{:02}/{:02}/{}/{}",
        category.unwrap_or(UNCATEGORIZED),
        received_local.year(),
        received_local.month() as u8,
        received_local.day(),
        recorder,
        recording_id
    )
}

pub fn object_key(prefix: &str, index: u64, role: Role, ext: &str) -> String {
    let role = match role {
        Role::Header => "header",
        Role::Original => "original",
        Role::Init => "init",
        Role::Segment => "segment",
        Role::Annotation => "annotation",
        Role::RawChunk => "raw",
    };
    format!("{prefix}/{index:06}-{role}.{ext}")
}

pub fn manifest_key(prefix: &str) -> String {
    format!("{prefix}/manifest.json")
}

/// A live recording's journal objects, written as it grows.
pub fn journal_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/journal/{seq:06}.json")
}

pub fn locator_key(recorder: &str, recording_id: &str) -> String {
    format!("index/recordings/{recorder}/{recording_id}.json")
}

pub fn case_key(case: &str, recorder: &str, recording_id: &str) -> String {
    format!("index/cases/{case}/{recorder}/{recording_id}.json")
}

pub fn usage_key(device: &str, at_local: OffsetDateTime, seq: u64) -> String {
    format!(
        "usage/{device}/{:04}/{:02}/{:02}/{:02}{:02}{:02}.{:09}-{seq:06}.json",
        at_local.year(),
        at_local.month() as u8,
        at_local.day(),
        at_local.hour(),
        at_local.minute(),
        at_local.second(),
        at_local.nanosecond()
    )
}

/// A safe extension for the original's key, from the device's file name:
/// 1-8 lowercase alphanumerics, else `bin`.
pub fn original_ext(file_name: Option<&str>) -> String {
    file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "bin".to_string())
}

/// Parses a `±HH:MM` offset (the unit's local time, for day partitions and
/// working-day deadlines).
pub fn parse_offset(s: &str) -> Option<UtcOffset> {
    let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(s, &fmt).ok()
}

/// A recording's checkpoint number `seq`: the exact bytes signed.
pub fn checkpoint_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/checkpoints/{seq:06}.json")
}

/// The raw Ed25519 signature of checkpoint `seq`.
pub fn signature_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}/checkpoints/{seq:06}.sig")
}

/// The recorder name of audit logs (it cannot collide with a device id).
pub const AUDIT_RECORDER: &str = "_audit";
/// Their category in the storage layout.
pub const AUDIT_CATEGORY: &str = "_audit";

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn keys() {
        let t = datetime!(2026-11-30 07:05:09.5 +08:00);
        let p = recording_prefix(Some("traffic"), t, "bwc-1", "r-9");
        assert_eq!(p, "records/traffic/2026/11/30/bwc-1/r-9");
        assert_eq!(
            recording_prefix(None, t, "bwc-1", "r-9"),
            "records/_uncategorized/2026/11/30/bwc-1/r-9"
        );
        assert_eq!(
            object_key(&p, 1, Role::Original, "mp4"),
            "records/traffic/2026/11/30/bwc-1/r-9/000001-original.mp4"
        );
        assert_eq!(
            usage_key("bwc-1", t, 7),
            "usage/bwc-1/2026/11/30/070509.500000000-000007.json"
        );
    }

    #[test]
    fn extensions() {
        for (name, ext) in [
            (Some("a.MP4"), "mp4"),
            (Some("clip.tar.gz"), "gz"),
            (Some("noext"), "bin"),
            (Some("x.ünï"), "bin"),
            (Some("x.averyverylongext"), "bin"),
            (Some("x./"), "bin"),
            (None, "bin"),
        ] {
            assert_eq!(original_ext(name), ext, "{name:?}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("-03:30"), UtcOffset::from_hms(-3, -30, 0).ok());
        assert_eq!(parse_offset("8"), None);
    }
}
