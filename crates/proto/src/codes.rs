//! Error codes. Stream-level codes travel in `error` messages, and as the
//! STOP_SENDING code when the gateway stops reading a stream;
//! connection-level codes are QUIC application close codes. Numbers are part
//! of the protocol and never reused (11 is retired).

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $num:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant = $num,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub fn code(self) -> u32 { self as u32 }
            pub fn name(self) -> &'static str { match self { $($name::$variant => $text,)* } }
            pub fn from_code(code: u64) -> Option<Self> {
                match code { $($num => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} ({})", self.name(), self.code())
            }
        }
    };
}

codes! {
    /// Why a stream's request failed.
    StreamError {
        /// A frame header was malformed (unknown type, empty data frame, truncated).
        BadFrame = 1, "bad_frame";
        /// A frame was longer than the protocol allows.
        FrameTooLarge = 2, "frame_too_large";
        /// A control message was not valid JSON or not a known message.
        BadMessage = 3, "bad_message";
        /// A message arrived where the protocol does not allow it.
        UnexpectedMessage = 4, "unexpected_message";
        /// Metadata failed validation; the message names the field.
        InvalidMetadata = 5, "invalid_metadata";
        /// The file's SHA-256 differs from what the device declared.
        Sha256Mismatch = 6, "sha256_mismatch";
        /// The number of bytes received differs from what the device declared.
        SizeMismatch = 7, "size_mismatch";
        /// The recording is already being received on another stream.
        RecordingBusy = 8, "recording_busy";
        /// The recording id is already stored with different content (size
        /// or SHA-256); a file cannot take another recording's id.
        RecordingConflict = 9, "recording_conflict";
        /// The file exceeds the size limit.
        TooLarge = 10, "too_large";
        /// A docking rack named a recorder that is not in the ledger, or a
        /// device named a recorder other than itself.
        RecorderNotAllowed = 12, "recorder_not_allowed";
        /// The stream stayed silent for longer than the idle limit.
        Timeout = 13, "timeout";
        /// The gateway could not make the bytes durable (disk full, I/O error).
        StorageFailure = 14, "storage_failure";
        /// Unexpected gateway failure; the request may be retried.
        Internal = 15, "internal";
        /// A newer upload of the same recording by the same device took
        /// over this stream (the device had reconnected).
        Superseded = 16, "superseded";
        /// The live recording was closed; further bytes need a new recording id.
        RecordingClosed = 17, "recording_closed";
        /// The device has as many live streams open as it may.
        TooManyStreams = 18, "too_many_streams";
        /// The stream is faster than the device's bitrate limit allows.
        BitrateExceeded = 19, "bitrate_exceeded";
        /// The recording is in progress and was started by another device:
        /// only that device may resume, retry or append to it.
        NotRecordingOwner = 20, "not_recording_owner";
        /// The gateway's spool disk is full (below its reserve): bytes
        /// acknowledged so far are kept; retry later.
        SpoolFull = 21, "spool_full";
    }
}

codes! {
    /// Why the gateway closed a connection (QUIC application close codes).
    CloseCode {
        /// Normal close.
        Done = 0, "done";
        /// The certificate carries no device identity (SAN URI).
        NoDeviceIdentity = 0x100, "no_device_identity";
        /// The device is not in the ledger.
        DeviceUnknown = 0x101, "device_unknown";
        /// The device is revoked in the ledger.
        DeviceRevoked = 0x102, "device_revoked";
        /// The device has no current assignment to an officer.
        DeviceUnassigned = 0x103, "device_unassigned";
        /// The device is assigned to someone who is not enforcement staff.
        OfficerNotEnforcement = 0x104, "officer_not_enforcement";
        /// The gateway is shutting down; reconnect later.
        ShuttingDown = 0x105, "shutting_down";
        /// The peer broke the protocol at connection level.
        ProtocolViolation = 0x106, "protocol_violation";
    }
}

/// The `error` message: sent on a stream before the gateway finishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u32,
    pub name: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: StreamError, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.code(),
            name: code.name().to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = HashSet::new();
        for c in StreamError::ALL {
            assert_eq!(StreamError::from_code(c.code() as u64), Some(*c));
            assert!(seen.insert(c.name()));
        }
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code() as u64), Some(*c));
            assert!(seen.insert(c.name()));
        }
        assert_eq!(StreamError::from_code(999), None);
    }

    /// The numbers and names are the protocol: this table only ever grows.
    #[test]
    fn stream_error_numbers_and_names_are_stable() {
        use StreamError::*;
        let table = [
            (BadFrame, 1, "bad_frame"),
            (FrameTooLarge, 2, "frame_too_large"),
            (BadMessage, 3, "bad_message"),
            (UnexpectedMessage, 4, "unexpected_message"),
            (InvalidMetadata, 5, "invalid_metadata"),
            (Sha256Mismatch, 6, "sha256_mismatch"),
            (SizeMismatch, 7, "size_mismatch"),
            (RecordingBusy, 8, "recording_busy"),
            (RecordingConflict, 9, "recording_conflict"),
            (TooLarge, 10, "too_large"),
            (RecorderNotAllowed, 12, "recorder_not_allowed"),
            (Timeout, 13, "timeout"),
            (StorageFailure, 14, "storage_failure"),
            (Internal, 15, "internal"),
            (Superseded, 16, "superseded"),
            (RecordingClosed, 17, "recording_closed"),
            (TooManyStreams, 18, "too_many_streams"),
            (BitrateExceeded, 19, "bitrate_exceeded"),
            (NotRecordingOwner, 20, "not_recording_owner"),
            (SpoolFull, 21, "spool_full"),
        ];
        let all: Vec<StreamError> = table.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(StreamError::ALL, all.as_slice());
        for (c, num, name) in table {
            assert_eq!((c.code(), c.name()), (num, name));
            assert_eq!(StreamError::from_code(num as u64), Some(c));
            assert_eq!(c.to_string(), format!("{name} ({num})"));
        }
        // 11 (`not_found`) is retired, never reused.
        assert_eq!(StreamError::from_code(11), None);
        for n in [0, 22, 0x100, u64::from(u32::MAX) + 1, u64::MAX] {
            assert_eq!(StreamError::from_code(n), None, "{n}");
        }
    }

    #[test]
    fn close_code_numbers_and_names_are_stable() {
        use CloseCode::*;
        let table = [
            (Done, 0x0, "done"),
            (NoDeviceIdentity, 0x100, "no_device_identity"),
            (DeviceUnknown, 0x101, "device_unknown"),
            (DeviceRevoked, 0x102, "device_revoked"),
            (DeviceUnassigned, 0x103, "device_unassigned"),
            (OfficerNotEnforcement, 0x104, "officer_not_enforcement"),
            (ShuttingDown, 0x105, "shutting_down"),
            (ProtocolViolation, 0x106, "protocol_violation"),
        ];
        let all: Vec<CloseCode> = table.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(CloseCode::ALL, all.as_slice());
        for (c, num, name) in table {
            assert_eq!((c.code(), c.name()), (num, name));
            assert_eq!(CloseCode::from_code(num as u64), Some(c));
            assert_eq!(c.to_string(), format!("{name} ({num})"));
        }
        for n in [1, 0xff, 0x107, 0x1_0000_0100] {
            assert_eq!(CloseCode::from_code(n), None, "{n}");
        }
    }

    /// The rows `| <number> | `<name>` | …` of one section of
    /// docs/protocol.md, from its heading to the next `## `.
    fn documented_codes(section: &str) -> Vec<(u64, String)> {
        let doc = include_str!("../../../docs/protocol.md");
        let start = doc.find(section).expect("section");
        let body = &doc[start + section.len()..];
        let body = &body[..body.find("\n## ").unwrap_or(body.len())];
        body.lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let (num, name) = (cells.get(1)?, cells.get(2)?);
                let num = num.trim_matches('`');
                let num = match num.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                    None => num.parse().ok()?,
                };
                Some((num, name.strip_prefix('`')?.strip_suffix('`')?.to_string()))
            })
            .collect()
    }

    #[test]
    fn codes_are_those_the_protocol_documents() {
        let stream: Vec<(u64, String)> = StreamError::ALL
            .iter()
            .map(|c| (c.code() as u64, c.name().to_string()))
            .collect();
        let mut documented = documented_codes("## 10. Stream errors");
        // The retired code stays in the table, with no variant.
        let retired = documented.remove(10);
        assert_eq!(retired, (11, "not_found".to_string()));
        assert_eq!(documented, stream);

        let close: Vec<(u64, String)> = CloseCode::ALL
            .iter()
            .map(|c| (c.code() as u64, c.name().to_string()))
            .collect();
        assert_eq!(documented_codes("## 2. Connection admission"), close);
    }

    #[test]
    fn an_error_body_names_its_code() {
        let e = ErrorBody::new(StreamError::RecordingBusy, "busy");
        assert_eq!(
            e,
            ErrorBody {
                code: 8,
                name: "recording_busy".into(),
                message: "busy".into()
            }
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"code":8,"name":"recording_busy","message":"busy"}"#
        );
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), e);
    }
}
