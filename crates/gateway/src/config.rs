//! The one TOML configuration file. Relative paths are resolved against the
//! directory the file is in. S3 settings left out here come from the
//! standard AWS environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, profiles).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub client: ClientConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub live: LiveConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// Fixed cameras pulled over RTSP (`[device.rtsp]` in the ledger).
    #[serde(default)]
    pub rtsp: RtspConfig,
    /// Devices pushing over SRT (`[device.srt]` in the ledger).
    #[serde(default)]
    pub srt: SrtConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Command-center accounts (`[[viewer]]`).
    #[serde(default, rename = "viewer")]
    pub viewers: Vec<ViewerConfig>,
}

/// The records regulation's parameters.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Working days after its end by which a recording must be stored (R4).
    pub working_days: u32,
    /// Holiday schedules for years published after this build
    /// (`<year>.json`, the format of the built-in ones).
    pub calendar_dir: Option<PathBuf>,
    /// Standard retention from the end of recording, years (at least 2).
    pub standard_years: u32,
    /// `auto`: write with S3 Object Lock when the bucket enforces it (probed
    /// at start); `off`: never (the gateway alone refuses early deletion).
    pub object_lock: ObjectLockMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectLockMode {
    Auto,
    Off,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            working_days: 2,
            calendar_dir: None,
            standard_years: 2,
            object_lock: ObjectLockMode::Auto,
        }
    }
}

/// Several gateways over one bucket (docs/operations.md). Absent, a gateway
/// works alone and keeps its indexes in storage.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// PostgreSQL the gateways share (`postgres://user@host:port/db`): it
    /// holds the catalog, records-office decisions and leases. Setting it
    /// turns cluster mode on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// How long a live recording's lease lasts unless renewed (renewed
    /// every third of it): how soon a dead gateway's recordings are seen
    /// as abandoned.
    pub lease_secs: u64,
    /// Where the other gateways reach this one's command center
    /// (`host:port`; its certificate must carry `[client] server_name`).
    /// Default: the address `[http] listen` bound, unless that is a
    /// wildcard address. The walls of the other gateways show this
    /// gateway's live feeds through it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_advertise: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            database: None,
            lease_secs: 15,
            http_advertise: None,
        }
    }
}

/// Pulling the fixed cameras the ledger lists with an RTSP URL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspConfig {
    /// Pull them from this gateway (in a cluster, the one holding a
    /// camera's ingest lease pulls it).
    pub pull: bool,
    /// A camera that sends nothing for this long is reconnected (its first
    /// media may take up to 20 s, or this if longer).
    pub stall_secs: u64,
    /// Longest wait between attempts to reach a camera (the first retry
    /// comes after 1 s, then twice as long each time).
    pub max_backoff_secs: u64,
    /// A camera streaming without end is recorded in recordings of about
    /// this length: past it, the next video keyframe begins a new one
    /// (0: one recording for as long as the stream goes on).
    pub max_recording_secs: u64,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            pull: true,
            stall_secs: 10,
            max_backoff_secs: 30,
            max_recording_secs: 3600,
        }
    }
}

/// Listening for the devices the ledger lists with an SRT port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtConfig {
    /// Listen for them on this gateway (in a cluster, the one holding a
    /// device's ingest lease listens for it).
    pub listen: bool,
    /// Address the listeners bind.
    pub address: String,
    /// SRT receive latency (its retransmission window), milliseconds.
    pub latency_ms: u32,
    /// A device that sends nothing for this long (after its first bytes)
    /// is let go; its listener waits for it again.
    pub stall_secs: u64,
    /// As `[rtsp] max_recording_secs`.
    pub max_recording_secs: u64,
}

impl Default for SrtConfig {
    fn default() -> Self {
        SrtConfig {
            listen: true,
            address: "0.0.0.0".into(),
            latency_ms: 120,
            stall_secs: 10,
            max_recording_secs: 3600,
        }
    }
}

/// The command-center server (the wall, live and stored playback).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `host:port`; absent turns the server off.
    pub listen: Option<String>,
    /// HTTPS with the gateway certificate (plain HTTP only on a trusted
    /// network or loopback).
    pub tls: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: None,
            tls: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerRole {
    /// Watches the live feeds of their own unit.
    Operator,
    /// Watches every live feed and opens stored recordings.
    Supervisor,
    /// Opens stored recordings (no live feeds).
    Auditor,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerConfig {
    pub name: String,
    pub role: ViewerRole,
    #[serde(default)]
    pub unit: String,
    /// SHA-256 (hex) of the viewer's login token; the token itself is
    /// never stored (`custody viewer-token` makes a pair).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Confidentiality marks the viewer may see recordings under (R6):
    /// `state-secret`, `trade-secret`, `personal-privacy`.
    #[serde(default)]
    pub clearances: Vec<custody_format::confidentiality::Mark>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Low-latency part duration inside each segment (for the live view).
    pub part_seconds: f64,
    /// A recording whose recorder sends nothing (and has no stream) for this
    /// long is closed, with the silence recorded as a tail gap.
    pub close_after_secs: u64,
    /// Live streams one device may have open at once.
    pub max_streams_per_device: usize,
    /// Sustained bitrate limit per stream; bursts of up to 30 s at this
    /// rate are allowed (a recorder catching up after a lost link).
    pub max_bitrate_kbps: u64,
    /// Store the recorder's bytes as raw chunk objects (the originals).
    pub raw_chunks: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            part_seconds: 0.5,
            close_after_secs: 120,
            max_streams_per_device: 2,
            max_bitrate_kbps: 50_000,
            raw_chunks: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Derive CMAF segments from originals (never transcoding).
    pub derive: bool,
    /// Directory of pipeline descriptions, one per input kind.
    pub pipelines: PathBuf,
    /// Target media segment duration; segments start at keyframes, so
    /// actual durations follow the recorder's keyframe interval.
    pub segment_seconds: f64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            derive: true,
            pipelines: "pipelines".into(),
            segment_seconds: 2.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Name recorded in headers and manifests.
    pub id: String,
    pub listen: String,
    /// Where received bytes are made durable before they are acknowledged.
    pub spool: PathBuf,
    /// The unit's UTC offset, `±HH:MM`: day partitions of the layout.
    pub utc_offset: String,
    /// How long an upload stream waits for its recording to reach storage
    /// before finishing with the recording safely spooled.
    pub archive_wait_secs: u64,
    /// Bytes an upload may have written beyond what the running spool
    /// sync covers (the spool syncs continuously; past this the stream
    /// waits for the disk).
    pub ack_bytes: u64,
    /// Free bytes the spool's filesystem keeps: below it the gateway takes
    /// no new bytes (`spool_full`), so the spool can still drain.
    pub spool_reserve_bytes: u64,
    /// Kernel UDP socket buffer size requested for the QUIC socket.
    pub udp_buffer_bytes: usize,
    /// QUIC flow-control window per stream, and the most a connection's
    /// window grows to: it follows twice the path's rate × round trip
    /// (`session::window`), from 512 KiB.
    pub stream_window_bytes: u64,
    pub connection_window_bytes: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            id: "custody-gateway".into(),
            listen: "127.0.0.1:4433".into(),
            spool: "var/spool".into(),
            utc_offset: "+08:00".into(),
            archive_wait_secs: 120,
            ack_bytes: 8 << 20,
            spool_reserve_bytes: 64 << 20,
            udp_buffer_bytes: 4 << 20,
            stream_window_bytes: 16 << 20,
            connection_window_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA that device certificates must chain to.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Certificate revocation lists (PEM) checked for device certificates.
    pub crls: Vec<PathBuf>,
    /// Ed25519 key for checkpoints and annotations.
    pub signing_key: PathBuf,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca: "certs/ca.pem".into(),
            cert: "certs/gateway.pem".into(),
            key: "certs/gateway.key".into(),
            crls: Vec::new(),
            signing_key: "certs/signing.key".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    pub path: PathBuf,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            path: "ledger.toml".into(),
        }
    }
}

pub use custody_store::StoreConfig;

pub use custody_client::ClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve(base);
        cfg.check()?;
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// The configuration as a `custody.toml` that [`Config::parse`] reads
    /// back as the same values (tools and tests build one as values and
    /// write it).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a configuration serialises to TOML")
    }

    /// Defaults for running without a file: paths relative to `base`.
    pub fn defaults(base: &Path) -> Config {
        let mut cfg: Config = Self::parse("").expect("empty config parses");
        cfg.resolve(base);
        cfg
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.gateway.spool);
        fix(&mut self.tls.ca);
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.signing_key);
        self.tls.crls.iter_mut().for_each(fix);
        fix(&mut self.ledger.path);
        fix(&mut self.store.local_dir);
        fix(&mut self.client.ca);
        fix(&mut self.client.cert);
        fix(&mut self.client.key);
        fix(&mut self.media.pipelines);
        if let Some(d) = &mut self.policy.calendar_dir {
            fix(d);
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if custody_format::layout::parse_offset(&self.gateway.utc_offset).is_none() {
            return Err(ConfigError::Invalid(format!(
                "gateway.utc_offset {:?} is not ±HH:MM",
                self.gateway.utc_offset
            )));
        }
        if !(0.1..=60.0).contains(&self.media.segment_seconds) {
            return Err(ConfigError::Invalid(
                "media.segment_seconds must be between 0.1 and 60".into(),
            ));
        }
        if self.gateway.ack_bytes == 0 {
            return Err(ConfigError::Invalid("gateway.ack_bytes must be > 0".into()));
        }
        let l = &self.live;
        if !(l.part_seconds >= 0.05 && l.part_seconds <= self.media.segment_seconds) {
            return Err(ConfigError::Invalid(format!(
                "live.part_seconds must be between 0.05 and media.segment_seconds ({})",
                self.media.segment_seconds
            )));
        }
        if l.max_streams_per_device == 0 || l.max_bitrate_kbps == 0 || l.close_after_secs == 0 {
            return Err(ConfigError::Invalid(
                "live.max_streams_per_device, live.max_bitrate_kbps and live.close_after_secs must be > 0"
                    .into(),
            ));
        }
        custody_format::retention::Retention::Standard {
            years: self.policy.standard_years,
        }
        .check()
        .map_err(|e| ConfigError::Invalid(format!("policy.standard_years: {e}")))?;
        self.check_viewers()
    }

    /// Viewer accounts: unique names, well-formed token hashes, and a unit
    /// for every operator (an operator without one would see nothing).
    fn check_viewers(&self) -> Result<(), ConfigError> {
        let bad =
            |name: &str, why: &str| Err(ConfigError::Invalid(format!("viewer {name:?}: {why}")));
        for (i, v) in self.viewers.iter().enumerate() {
            if !custody_format::metadata::valid_id(&v.name) {
                return bad(
                    &v.name,
                    "name must be letters, digits, . _ - (as device ids)",
                );
            }
            if self.viewers[..i].iter().any(|w| w.name == v.name) {
                return bad(&v.name, "named twice");
            }
            if let Some(t) = &v.token_sha256
                && (t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return bad(
                    &v.name,
                    "token_sha256 must be 64 hex digits (custody viewer-token)",
                );
            }
            if v.role == ViewerRole::Operator && v.unit.is_empty() {
                return bad(&v.name, "an operator needs a unit");
            }
        }
        Ok(())
    }

    pub fn utc_offset(&self) -> time::UtcOffset {
        custody_format::layout::parse_offset(&self.gateway.utc_offset)
            .unwrap_or(time::UtcOffset::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_built_as_values_reads_back_the_same() {
        let mut c = Config::parse("").unwrap();
        c.gateway.id = "gw-test".into();
        c.gateway.archive_wait_secs = 3;
        c.http.listen = Some("127.0.0.1:0".into());
        c.live.close_after_secs = 7;
        c.store.bucket = Some("b".into());
        c.tls.crls = vec!["certs/crl.pem".into()];
        c.viewers.push(ViewerConfig {
            name: "sup".into(),
            role: ViewerRole::Supervisor,
            unit: String::new(),
            token_sha256: Some("00".repeat(32)),
            clearances: Vec::new(),
        });
        let text = c.to_toml();
        let back = Config::parse(&text).unwrap();
        assert_eq!(back.to_toml(), text);
        assert_eq!(back.gateway.id, "gw-test");
        assert_eq!(back.http.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(back.live.close_after_secs, 7);
        assert_eq!(back.viewers.len(), 1);
        assert_eq!(back.viewers[0].role, ViewerRole::Supervisor);
        assert_eq!(back.store.bucket.as_deref(), Some("b"));
        // Unset options stay unset.
        assert_eq!(back.policy.calendar_dir, None);
        assert_eq!(back.store.endpoint, None);
    }

    #[test]
    fn viewers_are_checked() {
        let h = "ab".repeat(32);
        // (viewers, error expected containing)
        let table = [
            (
                format!("name = \"op\"\nrole = \"operator\"\nunit = \"m\"\ntoken_sha256 = \"{h}\""),
                None,
            ),
            (
                format!("name = \"op\"\nrole = \"operator\"\ntoken_sha256 = \"{h}\""),
                Some("needs a unit"),
            ),
            (
                "name = \"a\"\nrole = \"auditor\"\ntoken_sha256 = \"xyz\"".to_string(),
                Some("64 hex digits"),
            ),
            (
                "name = \"a b\"\nrole = \"auditor\"".to_string(),
                Some("name must be"),
            ),
            (
                "name = \"a\"\nrole = \"auditor\"\n[[viewer]]\nname = \"a\"\nrole = \"supervisor\""
                    .to_string(),
                Some("named twice"),
            ),
        ];
        for (v, want) in table {
            let cfg = Config::parse(&format!("[[viewer]]\n{v}")).unwrap();
            match (cfg.check(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{v}: {e}"),
                (r, w) => panic!("{v}: {r:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn paths_resolve_against_the_file() {
        let mut cfg = Config::parse(
            r#"
[gateway]
spool = "spool"
[store]
bucket = "b"
local_dir = "/abs/store"
"#,
        )
        .unwrap();
        cfg.resolve(Path::new("/etc/custody"));
        assert_eq!(cfg.gateway.spool, Path::new("/etc/custody/spool"));
        assert_eq!(cfg.store.local_dir, Path::new("/abs/store"));
        assert_eq!(cfg.tls.ca, Path::new("/etc/custody/certs/ca.pem"));
        assert_eq!(cfg.store.bucket.as_deref(), Some("b"));
    }

    #[test]
    fn live_settings_are_checked() {
        // (settings, error expected containing)
        let table = [
            ("[live]\npart_seconds = 0.25", None),
            ("[live]\npart_seconds = 0", Some("live.part_seconds")),
            ("[live]\npart_seconds = -1", Some("live.part_seconds")),
            ("[live]\npart_seconds = nan", Some("live.part_seconds")),
            (
                "[media]\nsegment_seconds = 2\n[live]\npart_seconds = 3",
                Some("live.part_seconds"),
            ),
            ("[live]\nmax_streams_per_device = 0", Some("must be > 0")),
            ("[live]\nmax_bitrate_kbps = 0", Some("must be > 0")),
        ];
        for (s, want) in table {
            let cfg = Config::parse(s).unwrap();
            match (cfg.check(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{s}: {e}"),
                (r, w) => panic!("{s}: {r:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn standard_years_are_bounded() {
        for (years, want) in [
            (
                1u64,
                Some("policy.standard_years: standard retention is at least 2 years, not 1"),
            ),
            (2, None),
            (200, None),
            (
                201,
                Some("policy.standard_years: standard retention is at most 200 years, not 201"),
            ),
            (10_000, Some("at most 200 years, not 10000")),
            (4_294_967_295, Some("at most 200 years, not 4294967295")),
        ] {
            let cfg = Config::parse(&format!("[policy]\nstandard_years = {years}")).unwrap();
            match (cfg.check(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{years}: {e}"),
                (r, w) => panic!("{years}: {r:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::parse("[gateway]\nlisten_on = \"x\"\n").is_err());
    }
}
