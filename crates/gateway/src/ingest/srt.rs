//! Devices that push MPEG-TS over SRT. Every device the ledger lists with a
//! `[device.srt]` port and passphrase gets a listener on that port while
//! the ledger admits it (`super::feed`). A caller is taken only if its
//! stream id names the device and the ledger admits the device at that
//! moment; SRT's own handshake refuses a caller without the passphrase.
//! What SRT delivers is the original, byte for byte.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::feed::{Media, record};
use crate::ledger::SrtDevice;
use crate::shared::Gateway;
use crate::usage::UsageEvent;
use custody_media::srt::{SrtListener, device_of_stream_id};

/// Refused callers recorded one by one per listener; past that, callers
/// that keep trying are only logged (anyone can send a stream id).
const REFUSALS_RECORDED: usize = 16;

/// Starts listening for the device on its own thread.
pub(super) fn start(gw: &Arc<Gateway>, device: &str, dev: &SrtDevice) -> Media {
    let cfg = gw.cfg.srt.clone();
    let dev = dev.clone();
    let gw = gw.clone();
    let device = device.to_string();
    let rt = tokio::runtime::Handle::current();
    Media::spawn(format!("srt-{device}"), move |tx, peer| {
        let listener = SrtListener {
            address: &cfg.address,
            port: dev.port,
            passphrase: &dev.passphrase,
            latency_ms: cfg.latency_ms,
        };
        let recorded = Mutex::new(HashSet::new());
        let dev_id = device.clone();
        let accept = move |stream_id: &str, from: &str| {
            let verdict = verdict(&gw, &dev_id, stream_id);
            if let Err(why) = &verdict {
                let cut: String = stream_id.chars().take(80).collect();
                let shown = custody_format::text::escape(&cut);
                let detail = format!("SRT caller {from} with stream id \"{shown}\" refused: {why}");
                tracing::warn!(device = %dev_id, "{detail}");
                let mut r = recorded.lock().expect("refusals");
                if r.len() < REFUSALS_RECORDED && r.insert(detail.clone()) {
                    let (gw, d, at) = (gw.clone(), dev_id.clone(), from.parse().ok());
                    rt.spawn(async move {
                        record(&gw, &d, UsageEvent::Refused, detail, at).await;
                    });
                }
            }
            verdict.is_ok()
        };
        let connected = move |p: String| {
            *peer.lock().expect("peer") = Some(p);
        };
        let open = tx.clone();
        let stall = Duration::from_secs(cfg.stall_secs.max(1));
        let r = custody_media::srt::listen(
            &listener,
            stall,
            &|| !open.is_closed(),
            accept,
            connected,
            &mut |b| tx.blocking_send(Bytes::from(b)).is_ok(),
        );
        match r {
            Ok(()) => "the device ended its stream".to_string(),
            Err(e) => e.to_string(),
        }
    })
}

/// Whether a caller naming `stream_id` is taken for `device` now.
fn verdict(gw: &Gateway, device: &str, stream_id: &str) -> Result<(), String> {
    if device_of_stream_id(stream_id) != Some(device) {
        return Err(format!("the stream id does not name {device}"));
    }
    gw.ledger
        .current()
        .admit(device, custody_format::clock::now())
        .map(|_| ())
        .map_err(|r| {
            gw.metrics
                .refused(crate::metrics::Refusal::Admission(r.code));
            format!("{}: {}", r.code.name(), r.reason)
        })
}
