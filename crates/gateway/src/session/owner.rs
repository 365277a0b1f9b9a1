//! A recording in progress belongs to the device that started it. Its
//! header — object 0, signed with the rest of the chain — names that
//! device as the uploader, so the bytes that follow must come from it too:
//! another device (a docking rack, say, naming the same recorder and
//! recording id) may not resume a docked upload, start a new attempt
//! after a quarantined one, or append to or end a live recording that it
//! did not start.

use std::sync::Arc;

use super::Session;
use super::frames::blocking;
use super::frames::{Failure, fail};
use crate::live::LiveRecording;
use crate::shared::Gateway;
use crate::usage::UsageEvent;
use custody_format::manifest::HeaderDoc;
use custody_proto::{RecordingState, StreamError};

/// Which kind of request asks to continue a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Upload,
    Live,
}

/// The device that started `recorder/id`, if the recording is still in
/// progress at this gateway as the kind of recording `mode` asks for: an
/// open live recording, or a docked upload that is receiving or whose last
/// attempt was quarantined. `None` for a recording that is new, complete
/// (spooled, archived) or closed — or of the other kind, which the request
/// refuses on its own (`recording_conflict`, or a docked copy, §7.6 and
/// §6.7 of docs/protocol.md).
async fn started_by(
    gw: &Arc<Gateway>,
    recorder: &str,
    id: &str,
    mode: Mode,
) -> Result<Option<String>, Failure> {
    if mode == Mode::Live {
        // Every open live recording is in the registry.
        return Ok(gw
            .live
            .get(recorder, id)
            .filter(|rec| !rec.is_closed())
            .map(|rec| rec.header.uploader.device.clone()));
    }
    let entry = gw.spool.entry(recorder, id);
    blocking(move || {
        let in_progress = entry.load_state()?.is_some_and(|st| {
            matches!(
                st.status,
                RecordingState::Receiving | RecordingState::Unknown | RecordingState::Failed
            )
        });
        if !in_progress || LiveRecording::load_state(&entry)?.is_some() {
            return Ok(None);
        }
        let header: HeaderDoc = serde_json::from_slice(&entry.read_header()?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(Some(header.uploader.device))
    })
    .await
}

/// Refuses the session's device, with `not_recording_owner` and an entry
/// in its usage record, when `recorder/id` is in progress and was started
/// by another device.
pub(super) async fn ensure_owner(
    s: &Arc<Session>,
    recorder: &str,
    id: &str,
    mode: Mode,
) -> Result<(), Failure> {
    match started_by(&s.gw, recorder, id, mode).await? {
        Some(owner) if owner != s.device() => {
            let f = fail(
                StreamError::NotRecordingOwner,
                format!(
                    "recording {recorder}/{id} was started by {owner}; only {owner} may continue it"
                ),
            );
            s.usage(
                UsageEvent::Refused,
                Some(id),
                format!("{}: {}", f.code.name(), f.message),
            )
            .await;
            Err(f)
        }
        _ => Ok(()),
    }
}
