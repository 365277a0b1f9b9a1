//! The gateway's Prometheus metrics: one registry and the typed handles the
//! rest of the gateway records through. Every label is bounded — a protocol
//! code's name, the kind of stream, a storage operation — and none names a
//! device, officer or recording (unbounded, and device names are sensitive).
//! `crate::view::ops` serves them at `/metrics`; docs/operations.md lists
//! each one.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
/// A counter handle (cheap to clone) for hot paths that count in a task.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::spool::space::SpoolSpace;
use custody_proto::{CloseCode, StreamError};
use custody_store::{Observer as StoreObserver, Op as StoreOp};

/// Why a device was turned away, or why one of its requests ended in an
/// error: the `reason` label of `custody_refusals_total`. Close-code and
/// stream-error names are unique across both sets (`protocol::codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The TLS layer refused the client certificate (untrusted, expired,
    /// revoked) before any device identity could be trusted.
    Certificate,
    /// The connection was closed at admission with this code.
    Admission(CloseCode),
    /// A stream's request ended with this error sent to the device.
    Stream(StreamError),
}

impl Refusal {
    /// The label value: the code's protocol name.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Certificate => "certificate_refused",
            Refusal::Admission(c) => c.name(),
            Refusal::Stream(e) => e.name(),
        }
    }

    /// Every value the label can take, so that each series exists (at 0)
    /// from the first scrape.
    fn all() -> impl Iterator<Item = Refusal> {
        std::iter::once(Refusal::Certificate)
            .chain(
                CloseCode::ALL
                    .iter()
                    // A normal close and a shutdown refuse nothing.
                    .filter(|c| !matches!(c, CloseCode::Done | CloseCode::ShuttingDown))
                    .map(|c| Refusal::Admission(*c)),
            )
            .chain(StreamError::ALL.iter().map(|e| Refusal::Stream(*e)))
    }
}

/// Which way bytes came in: the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `upload` streams: files from docking racks and recorders.
    Docked,
    /// `live` streams.
    Live,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Docked => "docked",
            Kind::Live => "live",
        }
    }

    const ALL: [Kind; 2] = [Kind::Docked, Kind::Live];
}

/// A docked upload's milestones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Accepted from byte 0.
    Started,
    /// Accepted from a later byte (a retry after an interruption).
    Resumed,
    /// Every byte arrived and its SHA-256 matched the device's: spooled.
    Completed,
}

/// Who tried a storage request again: the `by` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The S3 client repeated a request within one operation (a 5xx, a
    /// throttle, a dropped connection).
    S3Client,
    /// The archiver tried a docked recording again after a failure.
    Archive,
    /// A live recording's uploader tried a journal chunk (or the closing
    /// manifest) again after a failure.
    LiveUpload,
}

impl Retry {
    fn label(self) -> &'static str {
        match self {
            Retry::S3Client => "s3_client",
            Retry::Archive => "archive",
            Retry::LiveUpload => "live_upload",
        }
    }

    const ALL: [Retry; 3] = [Retry::S3Client, Retry::Archive, Retry::LiveUpload];
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

/// The protocols devices are taken in with besides custody's own: the
/// `protocol` label.
const INGEST_PROTOCOLS: [&str; 2] = ["rtsp", "srt"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByLabel {
    by: &'static str,
}

/// Storage's counters: the observer of the gateway's [`custody_store::Store`], and the
/// retries of the loops that write to it.
#[derive(Debug, Clone, Default)]
pub struct StorageMetrics {
    operations: Family<OpLabel, Counter>,
    errors: Family<OpLabel, Counter>,
    retries: Family<ByLabel, Counter>,
}

impl StoreObserver for StorageMetrics {
    fn operation(&self, op: StoreOp, failed: bool) {
        let l = OpLabel { op: op.name() };
        self.operations.get_or_create(&l).inc();
        if failed {
            self.errors.get_or_create(&l).inc();
        }
    }

    fn client_retry(&self) {
        self.retried(Retry::S3Client);
    }
}

impl StorageMetrics {
    pub fn retried(&self, by: Retry) {
        self.retries
            .get_or_create(&ByLabel { by: by.label() })
            .inc();
    }

    fn register(&self, r: &mut Registry) {
        for op in StoreOp::ALL {
            let l = OpLabel { op: op.name() };
            self.operations.get_or_create_owned(&l);
            self.errors.get_or_create_owned(&l);
        }
        for by in Retry::ALL {
            self.retries
                .get_or_create_owned(&ByLabel { by: by.label() });
        }
        r.register(
            "storage_operations",
            "Storage operations (S3 or the local directory) by operation",
            self.operations.clone(),
        );
        r.register(
            "storage_errors",
            "Storage operations that failed, by operation (a missing object is not a failure)",
            self.errors.clone(),
        );
        r.register(
            "storage_retries",
            "Storage requests tried again: by the S3 client within an operation, by the archiver or by a live uploader",
            self.retries.clone(),
        );
    }
}

/// One unit of a gauge, held while what it counts is open; given back when
/// dropped, however the holder ends.
#[derive(Debug)]
#[must_use = "the gauge goes down again when this is dropped"]
pub struct Open(Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts the bytes one stream acknowledges: how far its durable length
/// grew between acknowledgements the device was sent.
#[derive(Debug)]
pub struct AckedBytes {
    counter: Counter,
    at: u64,
}

impl AckedBytes {
    /// The device was told that `durable` bytes are durable.
    pub fn acked(&mut self, durable: u64) {
        if durable > self.at {
            self.counter.inc_by(durable - self.at);
            self.at = durable;
        }
    }
}

/// An exposition format, chosen by the scraper's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for).
    OpenMetrics,
    /// Prometheus text 0.0.4 (anything else: curl, older scrapers).
    Prometheus,
}

impl Format {
    /// OpenMetrics if the client lists it as acceptable, else Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let listed = accept.is_some_and(|a| {
            a.split(',').any(|range| {
                let mut params = range.split(';').map(str::trim);
                let media = params.next().unwrap_or("");
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !params.any(|p| p.replace(' ', "") == "q=0")
            })
        });
        if listed {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The spool's room, read from its filesystem at each scrape.
#[derive(Debug)]
struct SpoolCollector(Arc<SpoolSpace>);

impl Collector for SpoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let room = self.0.room();
        // A filesystem that cannot be asked has no figure to show.
        if let Some(free) = room.free {
            let g = ConstGauge::new(free);
            g.encode(encoder.encode_descriptor(
                "spool_free",
                "Bytes free on the spool's filesystem (for an unprivileged writer).",
                Some(&Unit::Bytes),
                g.metric_type(),
            )?)?;
        }
        let g = ConstGauge::new(room.reserve);
        g.encode(encoder.encode_descriptor(
            "spool_reserve",
            "Free space below which the spool takes no new bytes (gateway.spool_reserve_bytes).",
            Some(&Unit::Bytes),
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(u32::from(room.full));
        g.encode(encoder.encode_descriptor(
            "spool_below_reserve",
            "1 while the spool's filesystem has less free than the reserve (new bytes refused with spool_full), else 0.",
            None,
            g.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Live segment close → stored: from 5 ms to about 40 s.
fn live_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 14)
}

/// Docked recording complete → manifest stored: from 50 ms to about 55 min
/// (hours of video from a docking rack take minutes to store).
fn archive_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.05, 2.0, 17)
}

/// The gateway's registry and its handles.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    sessions_opened: Counter,
    refusals: Family<ReasonLabel, Counter>,
    uploads_started: Counter,
    uploads_resumed: Counter,
    uploads_completed: Counter,
    live_streams_open: Gauge,
    received: Family<KindLabel, Counter>,
    acknowledged: Family<KindLabel, Counter>,
    storage: Arc<StorageMetrics>,
    live_segment_stored: Histogram,
    archived: Histogram,
    leases_held: Gauge,
    leases_lost: Counter,
    lease_takeovers: Counter,
    staged: Counter,
    sent_ahead: Counter,
    ingest_sessions_open: Family<ProtocolLabel, Gauge>,
    ingest_cuts: Family<ProtocolLabel, Counter>,
    ingest_lost_packets: Family<ProtocolLabel, Counter>,
}

impl Metrics {
    /// A registry with every metric at zero; the spool's room is read from
    /// `space` at each scrape.
    pub fn new(space: Arc<SpoolSpace>) -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("custody"),
            sessions_open: Gauge::default(),
            sessions_opened: Counter::default(),
            refusals: Family::default(),
            uploads_started: Counter::default(),
            uploads_resumed: Counter::default(),
            uploads_completed: Counter::default(),
            live_streams_open: Gauge::default(),
            received: Family::default(),
            acknowledged: Family::default(),
            storage: Arc::default(),
            live_segment_stored: Histogram::new(live_buckets()),
            archived: Histogram::new(archive_buckets()),
            leases_held: Gauge::default(),
            leases_lost: Counter::default(),
            lease_takeovers: Counter::default(),
            staged: Counter::default(),
            sent_ahead: Counter::default(),
            ingest_sessions_open: Family::default(),
            ingest_cuts: Family::default(),
            ingest_lost_packets: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "sessions_open",
            "Device connections admitted and still open",
            m.sessions_open.clone(),
        );
        r.register(
            "sessions_opened",
            "Device connections admitted",
            m.sessions_opened.clone(),
        );
        for why in Refusal::all() {
            m.refusals.get_or_create_owned(&ReasonLabel {
                reason: why.reason(),
            });
        }
        r.register(
            "refusals",
            "Refusals by reason: certificates refused at the TLS handshake (certificate_refused), connections refused at admission (the close code's name), and stream requests ended with an error sent to the device (the stream error's name, e.g. spool_full)",
            m.refusals.clone(),
        );
        r.register(
            "docked_uploads_started",
            "Docked uploads accepted from byte 0",
            m.uploads_started.clone(),
        );
        r.register(
            "docked_uploads_resumed",
            "Docked uploads accepted from a later byte (resumed after an interruption)",
            m.uploads_resumed.clone(),
        );
        r.register(
            "docked_uploads_completed",
            "Docked uploads received whole with a matching SHA-256 and spooled",
            m.uploads_completed.clone(),
        );
        r.register(
            "live_streams_open",
            "Live streams attached to a recording now",
            m.live_streams_open.clone(),
        );
        for kind in Kind::ALL {
            let l = KindLabel { kind: kind.label() };
            m.received.get_or_create_owned(&l);
            m.acknowledged.get_or_create_owned(&l);
        }
        r.register_with_unit(
            "received",
            "Media bytes received from devices in data frames, by kind (docked or live); bytes sent again after an interruption count again",
            Unit::Bytes,
            m.received.clone(),
        );
        r.register_with_unit(
            "acknowledged",
            "Bytes acknowledged to devices as durable in the spool, by kind (docked or live)",
            Unit::Bytes,
            m.acknowledged.clone(),
        );
        m.storage.register(r);
        r.register_with_unit(
            "live_segment_close_to_stored",
            "From a live segment's close (its journal chunk written in the spool) until the chunk and its objects are stored",
            Unit::Seconds,
            m.live_segment_stored.clone(),
        );
        r.register_with_unit(
            "docked_archive",
            "From a docked recording's completion (queued for archiving) until its manifest and index entries are stored",
            Unit::Seconds,
            m.archived.clone(),
        );
        r.register(
            "leases_held",
            "Cluster mode: live recordings and docked uploads whose lease this gateway holds (it writes them to storage)",
            m.leases_held.clone(),
        );
        r.register(
            "leases_lost",
            "Cluster mode: leases a renewal or a staged part found no longer this gateway's (that recording's upload stopped here)",
            m.leases_lost.clone(),
        );
        r.register(
            "lease_takeovers",
            "Cluster mode: docked uploads taken over from a gateway that let their lease expire",
            m.lease_takeovers.clone(),
        );
        r.register_with_unit(
            "docked_staged",
            "Cluster mode: bytes of docked uploads staged in storage as parts (acknowledged only then)",
            Unit::Bytes,
            m.staged.clone(),
        );
        r.register_with_unit(
            "docked_sent_ahead",
            "Single mode, S3 storage: bytes of docked originals sent to storage as parts while they arrived, counted when the archiver completed their upload",
            Unit::Bytes,
            m.sent_ahead.clone(),
        );
        for protocol in INGEST_PROTOCOLS {
            let l = ProtocolLabel { protocol };
            m.ingest_sessions_open.get_or_create_owned(&l);
            m.ingest_cuts.get_or_create_owned(&l);
            m.ingest_lost_packets.get_or_create_owned(&l);
        }
        r.register(
            "ingest_sessions_open",
            "Sessions with RTSP cameras and SRT devices receiving now, by protocol",
            m.ingest_sessions_open.clone(),
        );
        r.register(
            "ingest_recordings_cut",
            "Recordings of RTSP cameras and SRT devices ended at max_recording_secs, the stream going on in the next, by protocol",
            m.ingest_cuts.clone(),
        );
        r.register(
            "ingest_transport_lost_packets",
            "MPEG-TS packets missing from what the transport delivered (at least this many; SRT's too-late drops), recorded as transport-loss gaps, by protocol",
            m.ingest_lost_packets.clone(),
        );
        r.register_collector(Box::new(SpoolCollector(space)));
        m
    }

    /// Counts an RTSP or SRT session (`protocol` `rtsp` or `srt`) receiving
    /// until the guard drops.
    pub fn ingest_session(&self, protocol: &'static str) -> Open {
        let g = self
            .ingest_sessions_open
            .get_or_create_owned(&ProtocolLabel { protocol });
        g.inc();
        Open(g)
    }

    pub fn ingest_cut(&self, protocol: &'static str) {
        self.ingest_cuts
            .get_or_create_owned(&ProtocolLabel { protocol })
            .inc();
    }

    pub fn ingest_lost_packets(&self, protocol: &'static str, packets: u64) {
        self.ingest_lost_packets
            .get_or_create_owned(&ProtocolLabel { protocol })
            .inc_by(packets);
    }

    /// Counts a lease held until the guard drops.
    pub fn lease_held(&self) -> Open {
        self.leases_held.inc();
        Open(self.leases_held.clone())
    }

    pub fn lease_lost(&self) {
        self.leases_lost.inc();
    }

    pub fn lease_taken_over(&self) {
        self.lease_takeovers.inc();
    }

    pub fn staged(&self, bytes: u64) {
        self.staged.inc_by(bytes);
    }

    pub fn sent_ahead(&self, bytes: u64) {
        self.sent_ahead.inc_by(bytes);
    }

    /// Counts an admitted connection, open until the returned guard drops.
    pub fn session_opened(&self) -> Open {
        self.sessions_opened.inc();
        self.sessions_open.inc();
        Open(self.sessions_open.clone())
    }

    pub fn refused(&self, why: Refusal) {
        self.refusals
            .get_or_create(&ReasonLabel {
                reason: why.reason(),
            })
            .inc();
    }

    pub fn docked_upload(&self, what: Upload) {
        match what {
            Upload::Started => &self.uploads_started,
            Upload::Resumed => &self.uploads_resumed,
            Upload::Completed => &self.uploads_completed,
        }
        .inc();
    }

    /// Counts a live stream attached to its recording until the guard drops.
    pub fn live_stream_opened(&self) -> Open {
        self.live_streams_open.inc();
        Open(self.live_streams_open.clone())
    }

    /// The counter of bytes received in data frames of `kind`'s streams.
    pub fn received(&self, kind: Kind) -> Counter {
        self.received
            .get_or_create_owned(&KindLabel { kind: kind.label() })
    }

    /// Counts the acknowledgements of a `kind` stream whose first `from`
    /// bytes were durable (and acknowledged) before it began.
    pub fn acknowledged(&self, kind: Kind, from: u64) -> AckedBytes {
        AckedBytes {
            counter: self
                .acknowledged
                .get_or_create_owned(&KindLabel { kind: kind.label() }),
            at: from,
        }
    }

    /// Storage's counters, for the loops that retry it.
    pub fn storage(&self) -> &StorageMetrics {
        &self.storage
    }

    /// The observer to open the gateway's store with.
    pub fn store_observer(&self) -> Arc<dyn StoreObserver> {
        self.storage.clone()
    }

    /// A live segment reached storage `latency` after it was closed.
    pub fn live_segment_stored(&self, latency: Duration) {
        self.live_segment_stored.observe(latency.as_secs_f64());
    }

    /// A docked recording's manifest was stored `took` after it completed.
    pub fn docked_archived(&self, took: Duration) {
        self.archived.observe(took.as_secs_f64());
    }

    /// Everything, in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn metrics() -> (tempfile::TempDir, Metrics) {
        let dir = tempfile::tempdir().unwrap();
        let space = Arc::new(SpoolSpace::new(dir.path(), 1 << 20));
        (dir, Metrics::new(space))
    }

    /// The value of the sample `series` (name and labels exactly as
    /// exposed), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
    }

    #[test]
    fn every_refusal_reason_is_a_protocol_code_name_and_unique() {
        let mut seen = HashSet::new();
        for why in Refusal::all() {
            assert!(seen.insert(why.reason()), "{why:?} named twice");
        }
        assert_eq!(
            Refusal::Stream(StreamError::SpoolFull).reason(),
            "spool_full"
        );
        assert_eq!(
            Refusal::Admission(CloseCode::DeviceUnknown).reason(),
            "device_unknown"
        );
        assert!(seen.contains("certificate_refused"));
        // Every stream error and every refusing close code has its series.
        assert_eq!(
            seen.len(),
            1 + (CloseCode::ALL.len() - 2) + StreamError::ALL.len()
        );
        assert!(!seen.contains("done") && !seen.contains("shutting_down"));
    }

    #[test]
    fn every_series_exists_at_zero_before_anything_happens() {
        let (_dir, m) = metrics();
        let text = m.encode(Format::Prometheus);
        for series in [
            "custody_sessions_open",
            "custody_sessions_opened_total",
            "custody_refusals_total{reason=\"spool_full\"}",
            "custody_refusals_total{reason=\"device_unknown\"}",
            "custody_docked_uploads_completed_total",
            "custody_received_bytes_total{kind=\"live\"}",
            "custody_acknowledged_bytes_total{kind=\"docked\"}",
            "custody_storage_operations_total{op=\"put\"}",
            "custody_storage_errors_total{op=\"get\"}",
            "custody_storage_retries_total{by=\"s3_client\"}",
            "custody_live_segment_close_to_stored_seconds_count",
            "custody_docked_archive_seconds_count",
            "custody_spool_below_reserve",
            "custody_ingest_sessions_open{protocol=\"rtsp\"}",
            "custody_ingest_recordings_cut_total{protocol=\"srt\"}",
            "custody_ingest_transport_lost_packets_total{protocol=\"srt\"}",
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
        }
        assert_eq!(
            sample(&text, "custody_spool_reserve_bytes"),
            Some((1u64 << 20) as f64)
        );
        assert!(sample(&text, "custody_spool_free_bytes").unwrap() > 0.0);
    }

    #[test]
    fn handles_move_their_series_and_guards_give_back_gauges() {
        let (_dir, m) = metrics();
        let session = m.session_opened();
        let live = m.live_stream_opened();
        m.refused(Refusal::Stream(StreamError::SpoolFull));
        m.refused(Refusal::Stream(StreamError::SpoolFull));
        m.refused(Refusal::Admission(CloseCode::DeviceRevoked));
        m.docked_upload(Upload::Resumed);
        m.received(Kind::Docked).inc_by(1000);
        let mut acks = m.acknowledged(Kind::Live, 100);
        acks.acked(100);
        acks.acked(108);
        acks.acked(104);
        acks.acked(110);
        m.store_observer().operation(StoreOp::Put, true);
        m.store_observer().operation(StoreOp::Get, false);
        m.storage().retried(Retry::Archive);
        m.live_segment_stored(Duration::from_millis(30));
        m.docked_archived(Duration::from_secs(2));
        let text = m.encode(Format::Prometheus);
        for (series, v) in [
            ("custody_sessions_open", 1.0),
            ("custody_sessions_opened_total", 1.0),
            ("custody_live_streams_open", 1.0),
            ("custody_refusals_total{reason=\"spool_full\"}", 2.0),
            ("custody_refusals_total{reason=\"device_revoked\"}", 1.0),
            ("custody_docked_uploads_resumed_total", 1.0),
            ("custody_docked_uploads_started_total", 0.0),
            ("custody_received_bytes_total{kind=\"docked\"}", 1000.0),
            ("custody_received_bytes_total{kind=\"live\"}", 0.0),
            ("custody_acknowledged_bytes_total{kind=\"live\"}", 10.0),
            ("custody_storage_operations_total{op=\"put\"}", 1.0),
            ("custody_storage_errors_total{op=\"put\"}", 1.0),
            ("custody_storage_operations_total{op=\"get\"}", 1.0),
            ("custody_storage_errors_total{op=\"get\"}", 0.0),
            ("custody_storage_retries_total{by=\"archive\"}", 1.0),
            ("custody_live_segment_close_to_stored_seconds_count", 1.0),
            (
                "custody_live_segment_close_to_stored_seconds_bucket{le=\"0.04\"}",
                1.0,
            ),
            (
                "custody_live_segment_close_to_stored_seconds_bucket{le=\"0.02\"}",
                0.0,
            ),
            ("custody_docked_archive_seconds_sum", 2.0),
        ] {
            assert_eq!(sample(&text, series), Some(v), "{series} in\n{text}");
        }
        drop((session, live));
        let text = m.encode(Format::Prometheus);
        assert_eq!(sample(&text, "custody_sessions_open"), Some(0.0));
        assert_eq!(sample(&text, "custody_live_streams_open"), Some(0.0));
        assert_eq!(sample(&text, "custody_sessions_opened_total"), Some(1.0));
    }

    #[test]
    fn a_full_spool_shows_at_the_next_scrape() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metrics::new(Arc::new(SpoolSpace::new(dir.path(), u64::MAX)));
        let text = m.encode(Format::Prometheus);
        assert_eq!(sample(&text, "custody_spool_below_reserve"), Some(1.0));
    }

    #[test]
    fn openmetrics_is_served_to_who_asks_for_it() {
        // What Prometheus 2.x and 3.x send.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
        for other in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("application/openmetrics-text; q=0, text/plain"),
            Some("application/json"),
        ] {
            assert_eq!(Format::from_accept(other), Format::Prometheus, "{other:?}");
        }
        let (_dir, m) = metrics();
        let om = m.encode(Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE custody_refusals counter"), "{om}");
        assert!(om.contains("# UNIT custody_received_bytes bytes"), "{om}");
        let text = m.encode(Format::Prometheus);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE custody_refusals_total counter"),
            "{text}"
        );
        assert!(Format::Prometheus.content_type().starts_with("text/plain"));
        assert!(
            Format::OpenMetrics
                .content_type()
                .starts_with("application/openmetrics-text")
        );
    }
}
