//! The header of a recording as the gateway writes it (object 0 of the
//! chain, `docs/manifest.md` §3) and the device clock a request declares:
//! the same for docked uploads and live recordings.

use time::OffsetDateTime;

use super::Session;
use super::frames::{Failure, fail};
use custody_format::manifest::{HEADER_FORMAT, HeaderDoc, Method, Uploader};
use custody_format::metadata::RecordingMeta;
use custody_proto::StreamError;

/// A request's `device_clock` must be a time the gateway can record
/// (checked on every request, also when a resumed one is otherwise ignored).
pub fn check_device_clock(sent: Option<&str>) -> Result<(), Failure> {
    match sent {
        Some(c) => {
            custody_format::manifest::DeviceClock::at_receipt(c, custody_format::clock::now())
                .map(|_| ())
                .map_err(|e| fail(StreamError::InvalidMetadata, e))
        }
        None => Ok(()),
    }
}

pub fn build_header(
    s: &Session,
    recorder: &str,
    meta: &RecordingMeta,
    size: Option<u64>,
    now: OffsetDateTime,
    device_clock: Option<&str>,
) -> Result<HeaderDoc, Failure> {
    let ledger = s.gw.ledger.current();
    let made_at = meta
        .started_at
        .as_deref()
        .and_then(custody_format::time_fmt::parse)
        .unwrap_or(now);
    let view = ledger.view(recorder, made_at).ok_or_else(|| {
        fail(
            StreamError::RecorderNotAllowed,
            format!("recorder {recorder} is not in the ledger"),
        )
    })?;
    let mut discrepancies = Vec::new();
    if let Some(o) = &meta.officer
        && view.officer.as_deref() != Some(o.as_str())
    {
        discrepancies.push(format!(
            "the device names officer {o} but the ledger assigns {} to {recorder} at {}",
            view.officer.as_deref().unwrap_or("nobody"),
            custody_format::time_fmt::rfc3339(made_at)
        ));
    }
    if view.enforcement == Some(false) {
        discrepancies.push(format!(
            "the ledger assigns {recorder} to someone who is not enforcement staff at {}",
            custody_format::time_fmt::rfc3339(made_at)
        ));
    }
    if view.status == custody_format::manifest::DeviceStatus::Revoked {
        discrepancies.push(format!("{recorder} is revoked in the ledger"));
    }
    Ok(HeaderDoc {
        format: HEADER_FORMAT.into(),
        recorder: recorder.to_string(),
        recording_id: meta.recording_id.clone(),
        method: Method {
            device_kind: view.kind,
            mode: meta.mode,
        },
        received_at: custody_format::time_fmt::rfc3339(now),
        device_clock: device_clock
            .map(|c| custody_format::manifest::DeviceClock::at_receipt(c, now))
            .transpose()
            .map_err(|e| fail(StreamError::InvalidMetadata, e))?,
        gateway: s.gw.cfg.gateway.id.clone(),
        uploader: Uploader {
            device: s.device().to_string(),
            device_kind: s.admission.kind,
            certificate_sha256: s.fingerprint.clone(),
            ingest: s.ingest.clone(),
        },
        ledger: view,
        meta: meta.clone(),
        declared_size: size,
        missing: meta
            .missing_required()
            .into_iter()
            .map(str::to_string)
            .collect(),
        discrepancies,
        copy_of: None,
        retention: Some(custody_format::retention::Retention::Standard {
            years: s.gw.cfg.policy.standard_years,
        }),
        signing_key: s.gw.signer.public().to_hex(),
    })
}
