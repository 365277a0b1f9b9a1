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

/// The extension of a derived object's key: `mp4` for the CMAF
/// initialisation segment, `m4s` for media segments (docked and live
/// alike); other roles are not media (`bin`).
pub fn media_ext(role: Role) -> &'static str {
    match role {
        Role::Init => "mp4",
        Role::Segment => "m4s",
        _ => "bin",
    }
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

/// Where every recording's objects are filed: list it to find them all.
pub const RECORDS_ROOT: &str = "records/";

/// Every recording of one category (audit logs are category
/// [`AUDIT_CATEGORY`]).
pub fn category_root(category: &str) -> String {
    format!("{RECORDS_ROOT}{category}/")
}

/// Everything stored under one recording's prefix, for listing it.
pub fn recording_dir(prefix: &str) -> String {
    format!("{prefix}/")
}

/// A recording's checkpoints and their signatures, for listing them.
pub fn checkpoints_dir(prefix: &str) -> String {
    format!("{prefix}/checkpoints/")
}

/// A live recording's journal objects, for listing them.
pub fn journal_dir(prefix: &str) -> String {
    format!("{prefix}/journal/")
}

/// The recording prefix a manifest's key lies under, if it is one.
pub fn prefix_of_manifest_key(key: &str) -> Option<&str> {
    key.strip_suffix("/manifest.json")
}

/// The recording prefix a journal object's key lies under, if it is one.
pub fn prefix_of_journal_key(key: &str) -> Option<&str> {
    key.rfind("/journal/").map(|i| &key[..i])
}

/// The record of a deleted recording (two-person deletion, R5): what was
/// there, who approved, when.
pub fn deletion_record_key(prefix: &str) -> String {
    format!("{prefix}/deleted.json")
}

/// The gateway's signature over [`deletion_record_key`]'s bytes.
pub fn deletion_signature_key(prefix: &str) -> String {
    format!("{prefix}/deleted.sig")
}

/// A file of a quarantined upload, `dir` being its directory relative to
/// `quarantine/` (`<recorder>/<recording-id>/<nanos>`).
pub fn quarantine_key(dir: &str, file: &str) -> String {
    format!("quarantine/{dir}/{file}")
}

/// Part `part` of docked upload `recorder/id` staged in storage in cluster
/// mode by the holder of lease token `token` (deleted once the recording
/// is archived; see docs/operations.md).
pub fn staging_part_key(recorder: &str, id: &str, token: i64, part: i32) -> String {
    format!("{}{token}/{part:06}", staging_upload_prefix(recorder, id))
}

/// Where every part of docked upload `recorder/id` is staged, whoever
/// staged it: a gateway killed between storing a part and recording it
/// leaves a part the database does not know, found by this prefix.
pub fn staging_upload_prefix(recorder: &str, id: &str) -> String {
    format!("staging/{recorder}/{id}/")
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
    fn every_key_of_a_recording_lies_under_its_prefix() {
        let p = "records/traffic/2026/11/30/bwc-1/r-9";
        for (key, want) in [
            (manifest_key(p), "/manifest.json"),
            (journal_key(p, 3), "/journal/000003.json"),
            (checkpoint_key(p, 12), "/checkpoints/000012.json"),
            (signature_key(p, 12), "/checkpoints/000012.sig"),
            (deletion_record_key(p), "/deleted.json"),
            (deletion_signature_key(p), "/deleted.sig"),
            (
                object_key(p, 2, Role::Init, media_ext(Role::Init)),
                "/000002-init.mp4",
            ),
            (
                object_key(p, 3, Role::Segment, media_ext(Role::Segment)),
                "/000003-segment.m4s",
            ),
            (object_key(p, 7, Role::RawChunk, "bin"), "/000007-raw.bin"),
        ] {
            assert_eq!(key, format!("{p}{want}"));
            assert!(key.starts_with(&recording_dir(p)), "{key}");
        }
        assert!(checkpoint_key(p, 0).starts_with(&checkpoints_dir(p)));
        assert!(journal_key(p, 0).starts_with(&journal_dir(p)));
        assert_eq!(prefix_of_journal_key(&journal_key(p, 9)), Some(p));
        assert_eq!(prefix_of_journal_key(&manifest_key(p)), None);
        assert_eq!(prefix_of_manifest_key(&manifest_key(p)), Some(p));
        assert_eq!(prefix_of_manifest_key(&journal_key(p, 1)), None);
        assert!(p.starts_with(&category_root("traffic")));
        assert!(p.starts_with(RECORDS_ROOT));
        assert_eq!(
            locator_key("bwc-1", "r-9"),
            "index/recordings/bwc-1/r-9.json"
        );
        assert_eq!(
            case_key("c-1", "bwc-1", "r-9"),
            "index/cases/c-1/bwc-1/r-9.json"
        );
        assert_eq!(
            quarantine_key("bwc-1/r-9/17", "report.json"),
            "quarantine/bwc-1/r-9/17/report.json"
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
