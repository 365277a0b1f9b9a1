//! The device side of the protocol: connecting with a device certificate
//! and uploading files with resume. `custody dock` and the tests use it; it
//! is also the reference for device makers.

mod config;
pub mod dock;
pub mod live;
pub mod ring;
pub mod sidecar;
pub mod source;

use std::net::SocketAddr;

use custody_proto::{CloseCode, ErrorBody, StreamError};
use custody_transport::quic;

pub use config::ClientConfig;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Quic(#[from] quic::QuicError),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("refused by the gateway: {name} ({code:#x}): {reason}")]
    Refused {
        code: u64,
        name: String,
        reason: String,
    },
    #[error("gateway error {}: {}", .0.name, .0.message)]
    Stream(ErrorBody),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// The recorder's source cannot start.
    #[error(transparent)]
    Source(#[from] source::SourceError),
}

impl ClientError {
    /// Whether the gateway refused a request for its `device_clock` field:
    /// a gateway built before the field existed answers `bad_message`
    /// naming it. The request is then repeated without the field
    /// (`docs/protocol.md` §5.1).
    pub fn refuses_device_clock(&self) -> bool {
        matches!(self, ClientError::Stream(b)
            if b.code == StreamError::BadMessage.code() && b.message.contains("device_clock"))
    }

    /// Whether the gateway stopped the stream with `code`.
    pub fn is_stream(&self, code: StreamError) -> bool {
        matches!(self, ClientError::Stream(b) if b.code as u64 == code.code() as u64)
    }

    /// Whether trying again later (on a new connection) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Connection(e) => {
                !matches!(e, quinn::ConnectionError::ApplicationClosed(_))
            }
            ClientError::Connect(_) | ClientError::Resolve(_) => true,
            ClientError::Stream(b) => matches!(
                StreamError::from_code(b.code as u64),
                Some(
                    StreamError::RecordingBusy
                        | StreamError::Timeout
                        | StreamError::StorageFailure
                        | StreamError::SpoolFull
                        | StreamError::Internal
                )
            ),
            ClientError::Protocol(_) => true,
            // A gateway restarting asks devices to come back.
            ClientError::Refused { code, .. } => *code == CloseCode::ShuttingDown.code() as u64,
            _ => false,
        }
    }

    /// Maps a lost connection to a refusal when the gateway closed it with
    /// one of its close codes.
    pub fn from_connection(e: quinn::ConnectionError) -> ClientError {
        if let quinn::ConnectionError::ApplicationClosed(c) = &e {
            let code = c.error_code.into_inner();
            let name = CloseCode::from_code(code)
                .map(|c| c.name().to_string())
                .unwrap_or_else(|| "unknown".into());
            return ClientError::Refused {
                code,
                name,
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            };
        }
        ClientError::Connection(e)
    }
}

/// A device's endpoint and where the gateways are.
pub struct Client {
    endpoint: quinn::Endpoint,
    /// `host:port` of each gateway, in the configured order.
    gateways: Vec<String>,
    server_name: String,
    /// The gateway connected to last, and that connection: once it is
    /// closed, the next `connect` tries the other gateways first.
    last: std::sync::Mutex<Option<quinn::Connection>>,
    /// The last gateway refused the recording as held by another one: the
    /// next `connect` tries the others first, as for a closed connection.
    move_on: std::sync::atomic::AtomicBool,
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ClientError> {
        Self::with_timeouts(
            cfg,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(5),
        )
    }

    /// A client that declares a silent link lost after `idle` and pings
    /// every `keep_alive`.
    pub fn with_timeouts(
        cfg: &ClientConfig,
        idle: std::time::Duration,
        keep_alive: std::time::Duration,
    ) -> Result<Client, ClientError> {
        Self::with_transport(cfg, idle, keep_alive, quic::Congestion::default())
    }

    /// As [`Client::with_timeouts`], sending with the given congestion
    /// controller.
    pub fn with_transport(
        cfg: &ClientConfig,
        idle: std::time::Duration,
        keep_alive: std::time::Duration,
        congestion: quic::Congestion,
    ) -> Result<Client, ClientError> {
        if cfg.cert.as_os_str().is_empty() || cfg.key.as_os_str().is_empty() {
            return Err(ClientError::Config(
                "a device certificate and key are needed (client.cert/client.key or --cert/--key)"
                    .into(),
            ));
        }
        let endpoint = quic::client(&quic::ClientSettings {
            ca: &cfg.ca,
            cert: &cfg.cert,
            key: &cfg.key,
            udp_buffer: 4 << 20,
            stream_window: 16 << 20,
            conn_window: 64 << 20,
            idle_timeout: idle,
            keep_alive,
            congestion,
        })?;
        Ok(Client {
            endpoint,
            gateways: gateway_list(&cfg.gateway),
            server_name: cfg.server_name.clone(),
            last: std::sync::Mutex::new(None),
            move_on: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Every IPv4 address of every gateway, without repeats.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, ClientError> {
        let mut all = Vec::new();
        for g in &self.gateways {
            if let Ok(addrs) = tokio::net::lookup_host(g).await {
                for a in addrs.filter(|a| a.is_ipv4()) {
                    if !all.contains(&a) {
                        all.push(a);
                    }
                }
            }
        }
        if all.is_empty() {
            return Err(ClientError::Resolve(self.gateways.join(",")));
        }
        Ok(all)
    }

    /// Connects to a gateway: the one connected to last, unless that
    /// connection has since closed (the gateway died, restarts, or the
    /// link failed), then the others first; each in turn until one
    /// answers.
    pub async fn connect(&self) -> Result<quinn::Connection, ClientError> {
        let addrs = self.resolve().await?;
        let last = self.last.lock().expect("last lock").clone();
        let move_on = self
            .move_on
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        let order = try_order(
            &addrs,
            last.as_ref()
                .map(|c| (c.remote_address(), move_on || c.close_reason().is_some())),
        );
        let mut failed = None;
        for addr in order {
            match self.connect_to(addr).await {
                Ok(conn) => {
                    *self.last.lock().expect("last lock") = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) if e.is_retryable() => {
                    tracing::debug!(%addr, "gateway not reached: {e}");
                    failed = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(failed.expect("at least one address was tried"))
    }

    async fn connect_to(&self, addr: SocketAddr) -> Result<quinn::Connection, ClientError> {
        let conn = self
            .endpoint
            .connect(addr, &self.server_name)?
            .await
            .map_err(ClientError::from_connection)?;
        quic::watch_path(&conn, std::time::Duration::from_secs(2));
        Ok(conn)
    }

    /// The gateway connected to last refused to take the recording
    /// (another gateway holds it): the next `connect` tries the others
    /// first.
    pub fn try_another(&self) {
        self.move_on
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"done");
    }

    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

/// The configured gateways: `host:port` separated by commas.
fn gateway_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect()
}

/// The order to try `addrs` in, given the last connection's address and
/// whether it has closed: a working last gateway first; a closed one last.
fn try_order(addrs: &[SocketAddr], last: Option<(SocketAddr, bool)>) -> Vec<SocketAddr> {
    let mut order = addrs.to_vec();
    if let Some((addr, closed)) = last
        && let Some(i) = order.iter().position(|a| *a == addr)
    {
        order.rotate_left(if closed { i + 1 } else { i });
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_gateway_is_tried_last_and_a_working_one_first() {
        let a: Vec<SocketAddr> = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(try_order(&a, None), a);
        assert_eq!(try_order(&a, Some((a[1], false))), vec![a[1], a[2], a[0]]);
        assert_eq!(try_order(&a, Some((a[1], true))), vec![a[2], a[0], a[1]]);
        assert_eq!(try_order(&a, Some((a[2], true))), vec![a[0], a[1], a[2]]);
        let gone: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(try_order(&a, Some((gone, true))), a);
        assert_eq!(
            gateway_list(" a:1, b:2 ,,c:3"),
            vec!["a:1".to_string(), "b:2".into(), "c:3".into()]
        );
    }

    #[test]
    fn an_older_gateway_refusing_the_device_clock_is_recognised() {
        // What a gateway built before `device_clock` answers: serde's
        // unknown-field message in a bad_message error.
        let old = frame_error_message::<custody_proto::message::Request>(
            r#"{"type":"upload","meta":{"recording_id":"r"},"device_clock":"2026-12-02T02:00:00Z","surplus":1}"#,
        );
        assert!(old.contains("surplus"), "{old}");
        let refused = |message: &str| {
            ClientError::Stream(ErrorBody::new(StreamError::BadMessage, message))
                .refuses_device_clock()
        };
        assert!(refused(
            "bad message: unknown field `device_clock`, expected `meta` or `size` at line 1 column 80"
        ));
        assert!(!refused("bad message: unknown field `surplus`"));
        assert!(
            !ClientError::Stream(ErrorBody::new(
                StreamError::InvalidMetadata,
                "device_clock: not an RFC 3339 time"
            ))
            .refuses_device_clock()
        );
    }

    fn frame_error_message<T: serde::de::DeserializeOwned>(json: &str) -> String {
        serde_json::from_str::<T>(json).err().unwrap().to_string()
    }
}
