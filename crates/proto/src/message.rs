//! Control messages (JSON in type-1 frames), tagged by `"type"`.

use serde::{Deserialize, Serialize};

use super::codes::ErrorBody;
use custody_format::metadata::RecordingMeta;

/// The first message on every stream a device opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Upload a file as a recording's original, resuming if part of it is
    /// already durable. Followed by data frames and one `finish`.
    Upload {
        meta: Box<RecordingMeta>,
        /// Total size, when the device knows it up front.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// The device's clock as it sends this request (RFC 3339), so the
        /// gateway can record how far it is off (`docs/protocol.md` §5.1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_clock: Option<String>,
    },
    /// Stream a live recording (new, or resumed after a lost link): data
    /// frames follow, interleaved with `gap` and ended by `end`.
    Live {
        meta: Box<RecordingMeta>,
        /// As for `upload`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_clock: Option<String>,
    },
    /// Ask how much of a recording is durably stored.
    Status {
        recording_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recorder: Option<String>,
    },
    /// What a recorder holds, as a docking rack found it: one page of at
    /// most `MAX_INVENTORY_ITEMS` recordings. The gateway keeps every page;
    /// the compliance report lists recordings reported here but never
    /// uploaded.
    Inventory {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recorder: Option<String>,
        /// When the rack read the recorder (its clock, RFC 3339): names
        /// the inventory; its pages share it.
        taken_at: String,
        page: u32,
        /// The inventory's last page.
        last: bool,
        items: Vec<InventoryItem>,
    },
}

/// A recording a recorder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryItem {
    pub recording_id: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// Sent by the device after the last data frame of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Finish {
    Finish {
        size: u64,
        /// SHA-256 of the whole file, lowercase hex.
        sha256: String,
    },
}

/// Control messages a recorder sends within a live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveControl {
    /// The stream continues at offset `to`. Bytes between the current
    /// offset and `to` were lost by the recorder (`lost-bytes`, e.g. its
    /// buffer overflowed while the link was down); with `to` equal to the
    /// current offset nothing was lost but the recording was interrupted
    /// (`source-restart`: the recorder restarted since `since`, its clock).
    Gap {
        to: u64,
        kind: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// A content marker or important moment the officer set while
    /// recording (R3), chained into the recording as a signed annotation.
    Mark {
        marker: custody_format::metadata::Marker,
    },
    /// The recording is finished: close it.
    End,
}

/// Where a recording stands at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Bytes are arriving; `durable` of them are safe.
    Receiving,
    /// The whole file is durable in the spool and its hash checked;
    /// archiving to storage is pending.
    Spooled,
    /// Stored with its manifest.
    Archived,
    /// The upload failed its integrity check; bytes kept in quarantine.
    Failed,
    /// The gateway has never seen it.
    Unknown,
}

/// The outcome of deriving CMAF segments, as told to the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivationNote {
    /// `derived`, `none` (not audio-visual) or `failed`.
    pub status: String,
    /// Number of media segments derived.
    pub segments: u64,
    /// Why there is no derivative, or which tracks were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Messages from the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Upload accepted: send data starting at `offset`.
    Accepted {
        recorder: String,
        recording_id: String,
        offset: u64,
        state: RecordingState,
        manifest_key: String,
    },
    /// The first `durable` bytes are fsynced to the spool or stored.
    Ack {
        durable: u64,
    },
    /// End-to-end integrity result, sent after `finish`.
    Verified {
        size: u64,
        sha256: String,
        matched: bool,
        state: RecordingState,
    },
    /// The recording and its manifest are in storage.
    Archived {
        manifest_key: String,
        chain_head: String,
        /// What the remux stage made of the original (absent when the
        /// recording was archived before this stream).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        derivation: Option<DerivationNote>,
    },
    /// The live recording is closed (after `end`); `gaps` lists what never
    /// arrived (at most the first 64; `gap_count` says how many).
    Closed {
        manifest_key: String,
        complete: bool,
        gap_count: u64,
        gaps: Vec<custody_format::manifest::Gap>,
        derivation: DerivationNote,
    },
    /// An inventory page is durable at the gateway.
    Noted {
        items: u64,
    },
    /// Answer to `status`.
    Status {
        state: RecordingState,
        durable: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest_key: Option<String>,
    },
    Error(ErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::StreamError;

    #[test]
    fn wire_shape() {
        let r: Request =
            serde_json::from_str(r#"{"type":"upload","meta":{"recording_id":"r1"},"size":5}"#)
                .unwrap();
        assert!(matches!(
            r,
            Request::Upload {
                size: Some(5),
                device_clock: None,
                ..
            }
        ));
        let r: Request = serde_json::from_str(
            r#"{"type":"live","meta":{"recording_id":"r1"},"device_clock":"2026-12-02T02:00:00Z"}"#,
        )
        .unwrap();
        assert!(
            matches!(r, Request::Live { device_clock: Some(c), .. } if c == "2026-12-02T02:00:00Z")
        );
        let f: Finish =
            serde_json::from_str(r#"{"type":"finish","size":1,"sha256":"00"}"#).unwrap();
        assert_eq!(
            f,
            Finish::Finish {
                size: 1,
                sha256: "00".into()
            }
        );
        let e = serde_json::to_string(&Reply::Error(ErrorBody::new(StreamError::BadFrame, "x")))
            .unwrap();
        assert_eq!(
            e,
            r#"{"type":"error","code":1,"name":"bad_frame","message":"x"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"type":"delete"}"#).is_err());
    }
}
