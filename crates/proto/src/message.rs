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
    /// The recording is finished: close it. No other fields (a unit
    /// variant of a tagged enum would ignore them).
    #[serde(deserialize_with = "no_fields")]
    End,
}

/// Refuses any field beside the tag: `{"type":"end"}` and nothing more.
fn no_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoFields {}
    NoFields::deserialize(d).map(|_| ())
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

    use crate::frame::{decode, encode_msg};
    use custody_format::manifest::{ByteRange, Gap};
    use custody_format::metadata::{Marker, MarkerKind};

    /// `json` decoded as `T` and encoded again, if it decodes.
    fn reencoded<T: serde::de::DeserializeOwned + Serialize>(json: &str) -> Option<String> {
        let v: T = serde_json::from_str(json).ok()?;
        Some(serde_json::to_string(&v).unwrap())
    }

    /// Every message example of docs/protocol.md is exactly one kind of
    /// message, and is what this code sends for it, byte for byte.
    #[test]
    fn the_protocol_documents_examples_are_exact() {
        let doc = include_str!("../../../docs/protocol.md");
        let examples: Vec<&str> = doc
            .lines()
            .filter(|l| l.starts_with(r#"{"type":""#))
            .collect();
        assert_eq!(examples.len(), 18);
        for ex in examples {
            let as_each = [
                reencoded::<Request>(ex),
                reencoded::<Finish>(ex),
                reencoded::<LiveControl>(ex),
                reencoded::<Reply>(ex),
            ];
            let parsed: Vec<String> = as_each.into_iter().flatten().collect();
            assert_eq!(parsed, vec![ex.to_string()], "{ex}");
        }
    }

    /// Serialised, framed, read back and decoded: the same value.
    fn round_trips<T>(v: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let frame = encode_msg(v).unwrap();
        let back: T = decode(&frame[crate::frame::HEADER_LEN..]).unwrap();
        assert_eq!(&back, v);
    }

    #[test]
    fn every_message_kind_round_trips() {
        let meta = |id: &str| {
            Box::new(RecordingMeta {
                recording_id: id.into(),
                ..RecordingMeta::default()
            })
        };
        for r in [
            Request::Upload {
                meta: meta("r1"),
                size: None,
                device_clock: None,
            },
            Request::Upload {
                meta: meta("r1"),
                size: Some(custody_format::limits::MAX_FILE_SIZE),
                device_clock: Some("2026-12-02T02:00:00Z".into()),
            },
            Request::Live {
                meta: meta("r2"),
                device_clock: None,
            },
            Request::Status {
                recording_id: "r1".into(),
                recorder: None,
            },
            Request::Inventory {
                recorder: None,
                taken_at: "2026-11-30T01:12:00.25Z".into(),
                page: 4095,
                last: false,
                items: vec![],
            },
        ] {
            round_trips(&r);
        }
        round_trips(&Finish::Finish {
            size: u64::MAX,
            sha256: "00".repeat(32),
        });
        for c in [
            LiveControl::Gap {
                to: 0,
                kind: "source-restart".into(),
                reason: String::new(),
                since: None,
            },
            LiveControl::Mark {
                marker: Marker {
                    kind: MarkerKind::DocumentsServed,
                    media_time: None,
                    device_time: None,
                    note: None,
                },
            },
            LiveControl::End,
        ] {
            round_trips(&c);
        }
        let gap = Gap {
            kind: "tail".into(),
            wall_from: "2026-11-30T00:15:03.93Z".into(),
            wall_to: "2026-11-30T00:17:03.93Z".into(),
            media_from: 2.5,
            media_to: None,
            bytes: Some(ByteRange {
                offset: 1,
                length: 2,
            }),
            reason: "closed by timeout".into(),
        };
        let note = DerivationNote {
            status: "failed".into(),
            segments: 0,
            reason: Some("no keyframe".into()),
        };
        for r in [
            Reply::Accepted {
                recorder: "bwc-1".into(),
                recording_id: "r1.docked".into(),
                offset: 0,
                state: RecordingState::Receiving,
                manifest_key: "records/x/manifest.json".into(),
            },
            Reply::Ack { durable: u64::MAX },
            Reply::Verified {
                size: 3,
                sha256: "00".repeat(32),
                matched: false,
                state: RecordingState::Failed,
            },
            Reply::Archived {
                manifest_key: "k".into(),
                chain_head: "11".repeat(32),
                derivation: None,
            },
            Reply::Closed {
                manifest_key: "k".into(),
                complete: false,
                gap_count: 65,
                gaps: vec![gap],
                derivation: note,
            },
            Reply::Noted { items: 0 },
            Reply::Status {
                state: RecordingState::Unknown,
                durable: 0,
                size: Some(7),
                sha256: Some("22".repeat(32)),
                manifest_key: None,
            },
            Reply::Error(ErrorBody::new(StreamError::SpoolFull, "retry later")),
        ] {
            round_trips(&r);
        }
    }

    #[test]
    fn recording_states_are_spelled_as_documented() {
        for (state, name) in [
            (RecordingState::Receiving, "receiving"),
            (RecordingState::Spooled, "spooled"),
            (RecordingState::Archived, "archived"),
            (RecordingState::Failed, "failed"),
            (RecordingState::Unknown, "unknown"),
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), name);
            let back: RecordingState = serde_json::from_value(name.into()).unwrap();
            assert_eq!(back, state);
        }
        assert!(serde_json::from_str::<RecordingState>(r#""Receiving""#).is_err());
    }

    /// docs/protocol.md §4 and §10: unknown types and fields (at every
    /// level), duplicate keys, missing fields, wrong types and spellings,
    /// and numbers that are not unsigned 64-bit integers are refused.
    #[test]
    fn malformed_messages_are_refused() {
        let requests = [
            r#"{"type":"delete"}"#,
            r#"{"recording_id":"r"}"#,
            r#"{"type":"status"}"#,
            r#"{"type":"status","recording_id":"r","extra":1}"#,
            r#"{"type":"status","recording_id":"a","recording_id":"b"}"#,
            r#"{"type":"status","type":"status","recording_id":"a"}"#,
            r#"{"type":"Status","recording_id":"r"}"#,
            r#"{"type":"upload","meta":{"recording_id":"r","colour":"red"}}"#,
            r#"{"type":"upload","meta":{"recording_id":"r","full_process":{"mandatory":true,"why":"x"}}}"#,
            r#"{"type":"upload","meta":{"recording_id":"r","markers":[{"kind":"scene","x":1}]}}"#,
            r#"{"type":"upload","meta":{"recording_id":"r","mode":"Docked"}}"#,
            r#"{"type":"upload","meta":{"recording_id":"r","occasion":"patrol"}}"#,
            r#"{"type":"upload","meta":{"recording_id":"r"},"size":-1}"#,
            r#"{"type":"upload","meta":{"recording_id":"r"},"size":1.5}"#,
            r#"{"type":"upload","meta":{"recording_id":"r"},"size":18446744073709551616}"#,
            r#"{"type":"upload","meta":{"recording_id":"r"},"size":"5"}"#,
            r#"{"type":"live","meta":{"recording_id":"r"},"size":5}"#,
            r#"{"type":"inventory","taken_at":"t","page":0,"last":true,"items":[{"recording_id":"r","size":1,"sha256":"x"}]}"#,
            r#"{"type":"inventory","taken_at":"t","page":4294967296,"last":true,"items":[]}"#,
        ];
        for json in requests {
            assert!(
                serde_json::from_str::<Request>(json).is_err(),
                "accepted: {json}"
            );
        }
        for json in [
            r#"{"type":"finish","size":1}"#,
            r#"{"type":"finish","size":1,"sha256":"00","at":"now"}"#,
            r#"{"type":"end"}"#,
        ] {
            assert!(
                serde_json::from_str::<Finish>(json).is_err(),
                "accepted: {json}"
            );
        }
        for json in [
            r#"{"type":"finish","size":1,"sha256":"00"}"#,
            r#"{"type":"gap","to":1,"kind":"lost-bytes"}"#,
            r#"{"type":"gap","to":1,"kind":"lost-bytes","reason":"r","bytes":3}"#,
            r#"{"type":"mark","marker":{"kind":"evidence","colour":"red"}}"#,
            r#"{"type":"mark","marker":{"kind":"sunset"}}"#,
            r#"{"type":"mark"}"#,
            r#"{"type":"end","now":true}"#,
            r#"{"type":"live","meta":{"recording_id":"r"}}"#,
        ] {
            assert!(
                serde_json::from_str::<LiveControl>(json).is_err(),
                "accepted: {json}"
            );
        }
        for json in [
            r#"{"type":"ack","durable":1,"extra":2}"#,
            r#"{"type":"ack","durable":-1}"#,
            r#"{"type":"archived","manifest_key":"k","chain_head":"h","derivation":{"status":"derived","segments":1,"x":0}}"#,
            r#"{"type":"error","code":1,"name":"bad_frame"}"#,
        ] {
            assert!(
                serde_json::from_str::<Reply>(json).is_err(),
                "accepted: {json}"
            );
        }
    }
}
