//! The QUIC endpoint: TLS 1.3 with mutual authentication on both sides.
//! Devices must present a certificate that chains to the configured CA
//! (and is not on a configured CRL); the ledger check comes after the
//! handshake, in the session.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::{TransportConfig, VarInt};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use tokio::sync::mpsc;

use custody_format::limits;
use custody_proto::ALPN;

#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    #[error("socket {addr}: {source}")]
    Socket {
        addr: String,
        source: std::io::Error,
    },
}

fn pem_err(path: &Path, e: impl std::fmt::Display) -> QuicError {
    QuicError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, QuicError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no certificate in file"));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, QuicError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_err(path, e))
}

fn roots(ca: &Path) -> Result<RootCertStore, QuicError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate the TLS layer refused, for the refusal log.
#[derive(Debug, Clone)]
pub struct CertRefusal {
    /// Device id if the certificate carries one, else its subject.
    pub presented: String,
    /// The device, when the certificate is known to be genuine (it was
    /// refused for revocation only).
    pub device: Option<String>,
    pub fingerprint: String,
    pub reason: String,
}

/// Wraps the WebPKI verifier to report every refused certificate, so that
/// refusals at the TLS layer are logged and recorded like ledger refusals.
#[derive(Debug)]
struct ReportingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refusals: mpsc::Sender<CertRefusal>,
}

impl ClientCertVerifier for ReportingVerifier {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &r {
            // Bounded: a flood of bad handshakes drops reports, never memory.
            // Only a revoked certificate is known to be genuine (its chain
            // verified before revocation was checked); any other failure
            // means the id inside is just a claim and is filed as such.
            let genuine = matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            );
            let _ = self.refusals.try_send(CertRefusal {
                presented: crate::identity::describe_cert(end_entity),
                device: if genuine {
                    crate::identity::device_id_from_cert(end_entity).ok()
                } else {
                    None
                },
                fingerprint: crate::identity::cert_fingerprint(end_entity),
                reason: e.to_string(),
            });
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The congestion controller of a QUIC endpoint. Only the sender's matters
/// for a transfer: the device's for uploads and live streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Congestion {
    /// custody's BBR-style controller for lossy radio links
    /// ([`crate::congestion`]): random loss does not slow it down.
    #[default]
    CustodyBbr,
    /// quinn's default, loss-based: shrinks the window (×0.7) on every loss
    /// event, so random radio loss holds it far below the link's capacity.
    Cubic,
    /// Loss-based, halves the window on every loss event.
    NewReno,
    /// quinn's experimental BBR (docs/reliability.md: its window is noise).
    QuinnBbr,
}

impl Congestion {
    pub const ALL: [Congestion; 4] = [
        Congestion::CustodyBbr,
        Congestion::Cubic,
        Congestion::NewReno,
        Congestion::QuinnBbr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Congestion::Cubic => "cubic",
            Congestion::NewReno => "newreno",
            Congestion::QuinnBbr => "quinn-bbr",
            Congestion::CustodyBbr => "custody-bbr",
        }
    }

    fn factory(self) -> Arc<dyn quinn::congestion::ControllerFactory + Send + Sync> {
        match self {
            Congestion::Cubic => Arc::new(quinn::congestion::CubicConfig::default()),
            Congestion::NewReno => Arc::new(quinn::congestion::NewRenoConfig::default()),
            Congestion::QuinnBbr => Arc::new(quinn::congestion::BbrConfig::default()),
            Congestion::CustodyBbr => Arc::new(crate::congestion::CustodyBbrConfig::default()),
        }
    }
}

impl std::str::FromStr for Congestion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Congestion::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Congestion::ALL.iter().map(|c| c.name()).collect();
                format!("one of {}", names.join(", "))
            })
    }
}

/// Logs a connection's path statistics (round-trip time, congestion
/// window, packets sent and lost) every `every` while it lives and once
/// when it closes, at debug level under `custody::link`: what a lossy link
/// does to a transfer.
pub fn watch_path(conn: &quinn::Connection, every: Duration) {
    if !tracing::enabled!(target: "custody::link", tracing::Level::DEBUG) {
        return;
    }
    let conn = conn.clone();
    tokio::spawn(async move {
        loop {
            let closed = tokio::time::timeout(every, conn.closed()).await.is_ok();
            log_path(&conn, closed);
            if closed {
                return;
            }
        }
    });
}

fn log_path(conn: &quinn::Connection, closed: bool) {
    let s = conn.stats();
    tracing::debug!(
        target: "custody::link",
        peer = %conn.remote_address(),
        closed,
        rtt_ms = s.path.rtt.as_millis() as u64,
        min_rtt_ms = s.path.min_rtt.as_millis() as u64,
        cwnd = s.path.cwnd,
        sent_packets = s.path.sent_packets,
        lost_packets = s.path.lost_packets,
        lost_bytes = s.path.lost_bytes,
        congestion_events = s.path.congestion_events,
        mtu = s.path.current_mtu,
        tx_bytes = s.udp_tx.bytes,
        rx_bytes = s.udp_rx.bytes,
        "path"
    );
}

/// Transport limits shared by both sides.
fn transport(
    stream_window: u64,
    conn_window: u64,
    keep_alive: Option<(Duration, Duration)>,
    congestion: Congestion,
) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.congestion_controller_factory(congestion.factory());
    t.max_concurrent_bidi_streams(VarInt::from_u32(limits::MAX_CONCURRENT_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.stream_receive_window(VarInt::from_u64(stream_window).unwrap_or(VarInt::MAX));
    t.receive_window(VarInt::from_u64(conn_window).unwrap_or(VarInt::MAX));
    t.send_window(conn_window);
    let (idle, ping) = keep_alive.unwrap_or((Duration::from_secs(30), Duration::ZERO));
    let fallback: quinn::IdleTimeout = Duration::from_secs(30)
        .try_into()
        .expect("30 s is a valid idle timeout");
    t.max_idle_timeout(Some(idle.try_into().unwrap_or(fallback)));
    if !ping.is_zero() {
        t.keep_alive_interval(Some(ping));
    }
    Arc::new(t)
}

pub struct ServerSettings<'a> {
    pub listen: &'a str,
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub crls: &'a [std::path::PathBuf],
    pub udp_buffer: usize,
    pub stream_window: u64,
    /// The connection window each device connection starts with; the
    /// session adjusts it from there.
    pub conn_window: u64,
}

/// Reads certificate revocation lists (PEM).
pub fn load_crls(
    paths: &[std::path::PathBuf],
) -> Result<Vec<CertificateRevocationListDer<'static>>, QuicError> {
    paths
        .iter()
        .map(|p| CertificateRevocationListDer::from_pem_file(p).map_err(|e| pem_err(p, e)))
        .collect()
}

/// Binds the gateway's QUIC endpoint. Refused client certificates are
/// reported on the returned channel.
pub fn server(
    s: &ServerSettings<'_>,
) -> Result<(quinn::Endpoint, mpsc::Receiver<CertRefusal>), QuicError> {
    let provider = provider();
    let crls = load_crls(s.crls)?;
    let inner =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(s.ca)?), provider.clone())
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .build()?;
    let (tx, rx) = mpsc::channel(256);
    let verifier = Arc::new(ReportingVerifier {
        inner,
        refusals: tx,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(s.cert)?, load_key(s.key)?)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| QuicError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport(
        s.stream_window,
        s.conn_window,
        None,
        Congestion::default(),
    ));
    // A recorder on a mobile link changes address (a new cell, a NAT
    // rebinding): its connection follows it (RFC 9000 §9), the stream
    // goes on without a reconnect. quinn's default, made explicit.
    cfg.migration(true);
    let addr: SocketAddr = s.listen.parse().map_err(|e| QuicError::Socket {
        addr: s.listen.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })?;
    let sock = udp_socket(addr, s.udp_buffer)?;
    let ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(cfg),
        sock,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| QuicError::Socket {
        addr: addr.to_string(),
        source,
    })?;
    Ok((ep, rx))
}

/// A UDP socket with larger kernel buffers: quinn leaves the 208 KiB
/// default, which drops packets in bursts at dock speeds.
fn udp_socket(addr: SocketAddr, buf: usize) -> Result<std::net::UdpSocket, QuicError> {
    let sock = std::net::UdpSocket::bind(addr).map_err(|source| QuicError::Socket {
        addr: addr.to_string(),
        source,
    })?;
    let r = socket2::SockRef::from(&sock);
    if let Err(e) = r.set_recv_buffer_size(buf) {
        tracing::warn!("could not set UDP receive buffer to {buf}: {e}");
    }
    if let Err(e) = r.set_send_buffer_size(buf) {
        tracing::warn!("could not set UDP send buffer to {buf}: {e}");
    }
    Ok(sock)
}

pub struct ClientSettings<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub udp_buffer: usize,
    pub stream_window: u64,
    pub conn_window: u64,
    /// How long a silent link lasts before it counts as lost, and how often
    /// to ping to keep it alive. A live recorder wants a short one, to
    /// reconnect quickly on a dropped mobile link.
    pub idle_timeout: Duration,
    pub keep_alive: Duration,
    pub congestion: Congestion,
}

/// A device-side endpoint that authenticates with the device certificate.
pub fn client(s: &ClientSettings<'_>) -> Result<quinn::Endpoint, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(s.ca)?)
        .with_client_auth_cert(load_certs(s.cert)?, load_key(s.key)?)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| QuicError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport(
        s.stream_window,
        s.conn_window,
        Some((s.idle_timeout, s.keep_alive)),
        s.congestion,
    ));
    let sock = udp_socket("0.0.0.0:0".parse().expect("valid"), s.udp_buffer)?;
    let mut ep = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        sock,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| QuicError::Socket {
        addr: "0.0.0.0:0".into(),
        source,
    })?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}
