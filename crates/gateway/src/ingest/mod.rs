//! Devices that speak other protocols than custody's own, brought into the
//! same evidence model (ledger admission, the bytes received kept as the
//! original, remux without transcoding, the hash chain, gaps, usage
//! records): [`rtsp`] pulls the fixed cameras the ledger lists with an RTSP
//! URL, [`srt`] listens for the devices it lists with an SRT port and
//! passphrase. [`feed`] is what they share: one device's sessions feeding
//! one live recording.

mod feed;
mod loss;
pub mod rtsp;
pub mod srt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::ledger::{RtspCamera, SrtDevice};
use crate::shared::Gateway;
use crate::tasks::Tasks;
use custody_format::manifest::Ingest;

/// How the ledger is read again for devices added, changed or removed.
const LEDGER_POLL: Duration = Duration::from_secs(5);

/// Starts taking in what the configuration turns on.
pub fn start(gw: Arc<Gateway>, tasks: &Tasks) {
    if gw.cfg.rtsp.pull || gw.cfg.srt.listen {
        tasks.spawn("ingest devices", supervise(gw));
    }
}

/// How one device reaches the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Rtsp(RtspCamera),
    Srt(SrtDevice),
}

impl Source {
    fn protocol(&self) -> &'static str {
        match self {
            Source::Rtsp(_) => "RTSP",
            Source::Srt(_) => "SRT",
        }
    }

    fn id_prefix(&self) -> &'static str {
        match self {
            Source::Rtsp(_) => "rtsp",
            Source::Srt(_) => "srt",
        }
    }

    /// For people: what is being used.
    fn what(&self) -> String {
        match self {
            Source::Rtsp(c) => format!("the RTSP camera {}", c.url),
            Source::Srt(d) => format!("the SRT listener on port {}", d.port),
        }
    }

    /// What it means for a session not to start.
    fn cannot(&self) -> &'static str {
        match self {
            Source::Rtsp(_) => "cannot be pulled",
            Source::Srt(_) => "cannot be opened",
        }
    }

    fn max_backoff(&self, gw: &Gateway) -> Duration {
        Duration::from_secs(match self {
            Source::Rtsp(_) => gw.cfg.rtsp.max_backoff_secs.max(1),
            Source::Srt(_) => 5,
        })
    }

    /// How long one recording of the device may grow; `None`: no limit.
    fn max_recording(&self, gw: &Gateway) -> Option<Duration> {
        let secs = match self {
            Source::Rtsp(_) => gw.cfg.rtsp.max_recording_secs,
            Source::Srt(_) => gw.cfg.srt.max_recording_secs,
        };
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// The device's address as far as it is known before a session.
    async fn known_peer(&self) -> Option<SocketAddr> {
        match self {
            Source::Rtsp(c) => rtsp::peer_of(&c.url).await,
            Source::Srt(_) => None,
        }
    }

    fn start(&self, gw: &Arc<Gateway>, device: &str) -> feed::Media {
        match self {
            Source::Rtsp(c) => rtsp::start(gw, device, c),
            Source::Srt(d) => srt::start(gw, device, d),
        }
    }

    /// What the header records of how the bytes came.
    fn ingest(&self, peer: Option<&str>) -> Ingest {
        match self {
            Source::Rtsp(c) => Ingest {
                protocol: "rtsp".into(),
                source: c.url.clone(),
                identified_by: "ledger-url".into(),
            },
            Source::Srt(_) => Ingest {
                protocol: "srt".into(),
                source: format!("srt://{}", peer.unwrap_or("unknown")),
                identified_by: "srt-stream-id-and-passphrase".into(),
            },
        }
    }
}

/// The sources the ledger lists now, by device.
fn wanted(gw: &Gateway) -> HashMap<String, Source> {
    let ledger = gw.ledger.current();
    let mut out = HashMap::new();
    for d in ledger.devices() {
        if let (Some(c), true) = (&d.rtsp, gw.cfg.rtsp.pull) {
            out.insert(d.id.clone(), Source::Rtsp(c.clone()));
        } else if let (Some(s), true) = (&d.srt, gw.cfg.srt.listen) {
            out.insert(d.id.clone(), Source::Srt(s.clone()));
        }
    }
    out
}

/// Keeps one feed per device the ledger lists with a source, restarting it
/// when its source changes and stopping it when the device leaves the
/// ledger.
async fn supervise(gw: Arc<Gateway>) {
    let mut running: HashMap<String, (Source, Feed)> = HashMap::new();
    loop {
        let wanted = wanted(&gw);
        running.retain(|id, (src, f)| wanted.get(id) == Some(src) && !f.0.is_finished());
        for (id, src) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(id) {
                let id = slot.key().clone();
                tracing::info!(device = %id, "taking in {}", src.what());
                let task = tokio::spawn(feed::run(gw.clone(), id, src.clone()));
                slot.insert((src, Feed(task)));
            }
        }
        tokio::time::sleep(LEDGER_POLL).await;
    }
}

/// A device's feed, stopped when dropped.
struct Feed(tokio::task::JoinHandle<()>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.abort();
    }
}
