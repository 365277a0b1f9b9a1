//! `status`: how much of a recording is durably stored.

use std::sync::Arc;

use quinn::SendStream;

use super::Session;
use super::frames::{Failure, fail, reply};
use custody_format::metadata::valid_id;
use custody_proto::{RecordingState, Reply, StreamError};

/// Which recorder a request is about: the device itself, or — for docking
/// racks and storage devices only — a recorder the ledger knows.
pub fn resolve_recorder(s: &Session, requested: Option<&str>) -> Result<String, Failure> {
    let device = s.device();
    match requested {
        None => Ok(device.to_string()),
        Some(r) if r == device => Ok(device.to_string()),
        Some(r) => {
            if !s.admission.kind.is_relay() {
                return Err(fail(
                    StreamError::RecorderNotAllowed,
                    format!(
                        "{device} is a recorder and may only upload its own recordings, not {r}'s"
                    ),
                ));
            }
            let ledger = s.gw.ledger.current();
            match ledger.device(r) {
                Some(d) if !d.kind.is_relay() => Ok(r.to_string()),
                Some(_) => Err(fail(
                    StreamError::RecorderNotAllowed,
                    format!("{r} is not a recording device"),
                )),
                None => Err(fail(
                    StreamError::RecorderNotAllowed,
                    format!("recorder {r} is not in the ledger"),
                )),
            }
        }
    }
}

pub async fn run(
    s: &Arc<Session>,
    send: &mut SendStream,
    recording_id: &str,
    recorder: Option<&str>,
) -> Result<(), Failure> {
    if !valid_id(recording_id) {
        return Err(fail(
            StreamError::InvalidMetadata,
            "recording_id: not a valid id",
        ));
    }
    if let Some(r) = recorder
        && !valid_id(r)
    {
        return Err(fail(
            StreamError::InvalidMetadata,
            "recorder: not a valid id",
        ));
    }
    let recorder = resolve_recorder(s, recorder)?;
    let entry = s.gw.spool.entry(&recorder, recording_id);
    let st = {
        let e = entry.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let st = e.load_state()?;
            let durable = e.durable()?;
            Ok((st, durable))
        })
        .await
        .map_err(|e| fail(StreamError::Internal, e.to_string()))?
        .map_err(|e| fail(StreamError::StorageFailure, format!("spool: {e}")))?
    };
    let r = match st {
        (Some(st), durable) => {
            let durable = match st.status {
                RecordingState::Receiving | RecordingState::Failed => durable,
                _ => st.size.unwrap_or(durable),
            };
            Reply::Status {
                state: st.status,
                durable,
                size: st.size,
                sha256: st.sha256,
                manifest_key: Some(st.manifest_key),
            }
        }
        (None, _) => match s.gw.find_archived(&recorder, recording_id).await {
            Some(loc) => Reply::Status {
                state: RecordingState::Archived,
                durable: loc.size,
                size: Some(loc.size),
                sha256: Some(loc.sha256),
                manifest_key: Some(loc.manifest_key),
            },
            None => Reply::Status {
                state: RecordingState::Unknown,
                durable: 0,
                size: None,
                sha256: None,
                manifest_key: None,
            },
        },
    };
    reply(send, &r).await
}
