//! The command-center listener: HTTPS with the gateway's certificate (a
//! viewer may log in with a client certificate), or plain HTTP on a trusted
//! network. TLS handshakes run in their own tasks so a slow client never
//! holds up others.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use custody_transport::quic::{self, QuicError};

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The viewer named by a verified client certificate, if one was shown.
    pub viewer: Option<String>,
}

pub use crate::pki::VIEWER_URI_PREFIX;

pub enum Conn {
    Tls(Box<TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

pub struct Listener {
    rx: mpsc::Receiver<(Conn, Peer)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(c) = self.rx.recv().await {
                return c;
            }
            // The acceptor task is gone: nothing will ever come.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.addr,
            viewer: None,
        })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        stream.remote_addr().clone()
    }
}

fn viewer_of(cert: &rustls_pki_types::CertificateDer<'_>) -> Option<String> {
    let (_, x) = x509_parser::parse_x509_certificate(cert).ok()?;
    let san = x.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::URI(u) => u
            .strip_prefix(VIEWER_URI_PREFIX)
            .filter(|v| custody_format::metadata::valid_id(v))
            .map(str::to_string),
        _ => None,
    })
}

/// TLS for viewers: the gateway certificate; client certificates from the
/// device CA are accepted (not required), checked against the CRLs, and
/// identify viewers. HTTP/2 is offered so that a wall of players, each
/// holding a blocking playlist request, shares one connection instead of
/// queueing behind the browser's six per origin.
pub fn tls_config(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    crls: &[std::path::PathBuf],
) -> Result<Arc<rustls::ServerConfig>, QuicError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in quic::load_certs(ca)? {
        roots.add(c)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(quic::load_crls(crls)?)
        .only_check_end_entity_revocation()
        .allow_unauthenticated()
        .build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(quic::load_certs(cert)?, quic::load_key(key)?)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Binds `addr` and accepts connections (TLS if `tls` is given) in the
/// background.
pub async fn bind(addr: &str, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Listener> {
    let tcp = TcpListener::bind(addr).await?;
    let local = tcp.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let acceptor = tls.map(TlsAcceptor::from);
        loop {
            let (sock, remote) = match tcp.accept().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = sock.set_nodelay(true);
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                let conn = match acceptor {
                    None => (
                        Conn::Plain(sock),
                        Peer {
                            addr: remote,
                            viewer: None,
                        },
                    ),
                    Some(a) => {
                        let handshake = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            a.accept(sock),
                        )
                        .await;
                        match handshake {
                            Ok(Ok(s)) => {
                                let viewer = s
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(viewer_of);
                                (
                                    Conn::Tls(Box::new(s)),
                                    Peer {
                                        addr: remote,
                                        viewer,
                                    },
                                )
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, "https handshake failed: {e}");
                                return;
                            }
                            Err(_) => return,
                        }
                    }
                };
                let _ = tx.send(conn).await;
            });
        }
    });
    Ok(Listener { rx, addr: local })
}
