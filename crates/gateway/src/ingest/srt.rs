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
use custody_media::srt::{Gate, HANDSHAKE, SrtListener, device_of_stream_id};

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
        let gate = Arc::new(DeviceGate {
            gw,
            device,
            rt,
            peer,
            recorded: Mutex::new(HashSet::new()),
        });
        let open = tx.clone();
        let stall = Duration::from_secs(cfg.stall_secs.max(1));
        let r =
            custody_media::srt::listen(&listener, stall, &|| !open.is_closed(), gate, &mut |b| {
                tx.blocking_send(Bytes::from(b)).is_ok()
            });
        match r {
            Ok(()) => "the device ended its stream".to_string(),
            Err(e) => e.to_string(),
        }
    })
}

/// The callers of one device's listener: admitted against the ledger,
/// refusals recorded (the first [`REFUSALS_RECORDED`] distinct ones).
struct DeviceGate {
    gw: Arc<Gateway>,
    device: String,
    rt: tokio::runtime::Handle,
    /// Who the feed is receiving from, once taken.
    peer: Arc<Mutex<Option<String>>>,
    recorded: Mutex<HashSet<String>>,
}

impl DeviceGate {
    fn refused(&self, from: &str, stream_id: &str, why: &str) {
        let cut: String = stream_id.chars().take(80).collect();
        let shown = custody_format::text::escape(&cut);
        let detail = format!("SRT caller {from} with stream id \"{shown}\" refused: {why}");
        tracing::warn!(device = %self.device, "{detail}");
        let mut r = self.recorded.lock().expect("refusals");
        if r.len() < REFUSALS_RECORDED && r.insert(detail.clone()) {
            let (gw, d, at) = (self.gw.clone(), self.device.clone(), from.parse().ok());
            self.rt.spawn(async move {
                record(&gw, &d, UsageEvent::Refused, detail, at).await;
            });
        }
    }
}

impl Gate for DeviceGate {
    fn accept(&self, stream_id: &str, peer: &str) -> bool {
        let verdict = verdict(&self.gw, &self.device, stream_id);
        if let Err(why) = &verdict {
            self.refused(peer, stream_id, why);
        }
        verdict.is_ok()
    }

    fn connected(&self, peer: String) {
        *self.peer.lock().expect("peer") = Some(peer);
    }

    fn unfinished(&self, stream_id: &str, peer: &str) {
        self.refused(
            peer,
            stream_id,
            &format!(
                "the SRT handshake did not finish within {} s: a wrong or missing passphrase, \
                 or the caller gave up",
                HANDSHAKE.as_secs()
            ),
        );
    }
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
