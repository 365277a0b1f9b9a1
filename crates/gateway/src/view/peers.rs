//! Cluster mode: the walls of all gateways show every live feed. A live
//! recording is received (and its parts made) by the gateway holding its
//! lease; another gateway's wall lists it by asking the other gateways
//! (`GET /cluster/live`) and plays it by relaying the holder's LL-HLS
//! playlists, initialisation segments, segments and parts
//! (`GET /cluster/live/<recorder>/<id>/<file>`, answered by
//! `view::cluster_routes`). The viewer is logged in,
//! authorised (by the recording's unit, which the holder names) and
//! audited at the gateway they use; the holder answers only other
//! gateways: a request carries `x-custody-peer`, signed with the
//! checkpoint signing key every gateway of a cluster shares.
//!
//! Each gateway records where its command center answers the others in
//! the database (`custody_db::gateways`), refreshed every few seconds.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::live_item::LiveItem;
use crate::signing::SigningKey;
use custody_db::Db;

/// The request header naming the asking gateway: `<id> <unix secs> <hex
/// Ed25519 signature>`.
pub const PEER_HEADER: &str = "x-custody-peer";
/// The response header naming a live recording's unit, for the asking
/// gateway's authorisation.
pub const UNIT_HEADER: &str = "x-custody-unit";
/// How far a request's time may be from the answering gateway's clock.
const SKEW_SECS: i64 = 60;
/// A gateway not seen for this long is left out.
const SEEN_WITHIN: Duration = Duration::from_secs(30);
/// How often a gateway refreshes its row.
const REFRESH: Duration = Duration::from_secs(5);
/// The largest answer relayed (a segment of a high-rate feed fits).
const MAX_ANSWER: usize = 64 << 20;

/// This gateway's side of the other gateways' command centers.
pub struct Peers {
    db: Db,
    auth: PeerAuth,
    me: String,
    /// The name every gateway's certificate carries.
    server_name: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] axum::http::Error),
    #[error("the answer is over {MAX_ANSWER} bytes or broke off")]
    Body,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the certificate name {0:?} is not valid")]
    Name(String),
    #[error("tls: {0}")]
    Tls(String),
}

/// An answer from another gateway.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Peers {
    /// For a gateway in cluster mode with a command center.
    pub fn new(gw: &crate::shared::Gateway) -> Result<Option<Arc<Peers>>, PeerError> {
        let Some(db) = gw.db.clone() else {
            return Ok(None);
        };
        let tls = if gw.cfg.http.tls {
            let mut roots = rustls::RootCertStore::empty();
            for c in custody_transport::quic::load_certs(&gw.cfg.tls.ca)
                .map_err(|e| PeerError::Tls(e.to_string()))?
            {
                roots.add(c).map_err(|e| PeerError::Tls(e.to_string()))?;
            }
            let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| PeerError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
        } else {
            None
        };
        Ok(Some(Arc::new(Peers {
            db,
            auth: PeerAuth {
                signer: gw.signer.clone(),
                me: gw.cfg.gateway.id.clone(),
            },
            me: gw.cfg.gateway.id.clone(),
            server_name: gw.cfg.client.server_name.clone(),
            tls,
        })))
    }

    /// Keeps this gateway's row fresh while it runs.
    pub async fn announce(self: Arc<Self>, addr: String) {
        loop {
            if let Err(e) = self.db.gateway_seen(&self.me, &addr).await {
                tracing::warn!("cluster: command center address not recorded: {e}");
            }
            tokio::time::sleep(REFRESH).await;
        }
    }

    /// The other gateways seen lately, as `(id, address)`.
    pub async fn others(&self) -> Vec<(String, String)> {
        match self.db.gateways_seen(SEEN_WITHIN).await {
            Ok(all) => all.into_iter().filter(|(id, _)| *id != self.me).collect(),
            Err(e) => {
                tracing::warn!("cluster: other gateways not read: {e}");
                Vec::new()
            }
        }
    }

    /// The command center of the gateway holding live recording
    /// `recorder/id`'s lease, unless that is this one or none.
    pub async fn holder(&self, recorder: &str, id: &str) -> Option<(String, String)> {
        let name = crate::lease::Leases::live_name(recorder, id);
        let (holder, _) = self.db.lease_holder(&name).await.ok()??;
        if holder == self.me {
            return None;
        }
        self.others().await.into_iter().find(|(g, _)| *g == holder)
    }

    /// The asking gateway, if `value` is a fresh signature of `path` by
    /// this cluster's key.
    pub fn check(&self, value: &str, path: &str, now: i64) -> Result<String, &'static str> {
        self.auth.check(value, path, now)
    }

    /// `GET path` (with its query) on the command center at `addr`, as
    /// this gateway.
    pub async fn get(&self, addr: &str, path: &str, wait: Duration) -> Result<Answer, PeerError> {
        let req = Request::get(path)
            .header(header::HOST, &self.server_name)
            .header(PEER_HEADER, self.auth.token(path, unix_now()))
            .body(Empty::<Bytes>::new())?;
        let go = async {
            let tcp = TcpStream::connect(addr).await?;
            match &self.tls {
                Some(tls) => {
                    let name = ServerName::try_from(self.server_name.clone())
                        .map_err(|_| PeerError::Name(self.server_name.clone()))?;
                    let s = tls.connect(name, tcp).await?;
                    send(TokioIo::new(s), req).await
                }
                None => send(TokioIo::new(tcp), req).await,
            }
        };
        tokio::time::timeout(wait, go)
            .await
            .map_err(|_| PeerError::Timeout(wait))?
    }
}

/// Signs and checks requests between gateways with the key they share.
struct PeerAuth {
    signer: Arc<SigningKey>,
    me: String,
}

impl PeerAuth {
    fn message(id: &str, secs: i64, path: &str) -> Vec<u8> {
        format!("custody-peer/1\n{id}\n{secs}\n{path}").into_bytes()
    }

    /// The `x-custody-peer` value for a request of `path` (with its query).
    fn token(&self, path: &str, now: i64) -> String {
        let sig = self.signer.sign(&Self::message(&self.me, now, path));
        format!("{} {now} {}", self.me, hex::encode(sig))
    }

    /// The asking gateway, if `value` is a fresh signature of `path` by
    /// this cluster's key.
    pub fn check(&self, value: &str, path: &str, now: i64) -> Result<String, &'static str> {
        let mut it = value.split(' ');
        let (Some(id), Some(secs), Some(sig), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Err("malformed");
        };
        let secs: i64 = secs.parse().map_err(|_| "malformed time")?;
        if (now - secs).abs() > SKEW_SECS {
            return Err("stale");
        }
        let sig = hex::decode(sig).map_err(|_| "malformed signature")?;
        let public = self.signer.public();
        if !crate::signing::verify(&public, &Self::message(id, secs, path), &sig) {
            return Err("not signed by this cluster's key");
        }
        Ok(id.to_string())
    }
}

async fn send<I>(io: I, req: Request<Empty<Bytes>>) -> Result<Answer, PeerError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|_| PeerError::Body)?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub(super) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The live feeds the other gateways hold, as their lists give them.
pub(super) async fn remote_live(peers: &Arc<Peers>) -> Vec<LiveItem> {
    let asks = peers.others().await.into_iter().map(|(id, addr)| {
        let peers = peers.clone();
        async move {
            match peers
                .get(&addr, "/cluster/live", Duration::from_secs(3))
                .await
            {
                Ok(a) if a.status == StatusCode::OK => {
                    serde_json::from_slice::<Vec<LiveItem>>(&a.body).ok()
                }
                Ok(a) => {
                    tracing::warn!(gateway = %id, status = %a.status, "cluster: live list refused");
                    None
                }
                Err(e) => {
                    tracing::warn!(gateway = %id, "cluster: live list not read: {e}");
                    None
                }
            }
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

/// A file of live recording `recorder/id` from the gateway holding it, if
/// another gateway does: `uri` is the viewer's request (path and query),
/// asked for under `/cluster`. The answer's unit header says who may see
/// it; the caller checks it before relaying.
pub(super) async fn fetch_live(
    peers: &Peers,
    recorder: &str,
    id: &str,
    uri: &Uri,
    wait: Duration,
) -> Option<Result<Answer, PeerError>> {
    let (_, addr) = peers.holder(recorder, id).await?;
    let path = format!(
        "/cluster{}",
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    Some(peers.get(&addr, &path, wait).await)
}

/// The holder's answer as the viewer gets it: status, type, caching, body.
pub(super) fn relay(a: Answer) -> Response {
    let mut r = Response::new(Body::from(a.body));
    *r.status_mut() = a.status;
    for h in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(v) = a.headers.get(&h) {
            r.headers_mut().insert(h, v.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(me: &str, key: &Arc<SigningKey>) -> PeerAuth {
        PeerAuth {
            signer: key.clone(),
            me: me.into(),
        }
    }

    #[test]
    fn a_request_signed_by_the_cluster_key_passes_and_nothing_else_does() {
        let key = Arc::new(SigningKey::generate().unwrap());
        let (a, b) = (auth("gw-a", &key), auth("gw-b", &key));
        let path = "/cluster/live/bwc-1/r1/index.m3u8?_HLS_msn=3";
        let t = a.token(path, 1_000);
        assert_eq!(b.check(&t, path, 1_010), Ok("gw-a".to_string()));
        assert_eq!(
            b.check(&t, "/cluster/live", 1_010),
            Err("not signed by this cluster's key")
        );
        assert_eq!(b.check(&t, path, 1_100), Err("stale"));
        let other = auth("gw-a", &Arc::new(SigningKey::generate().unwrap()));
        assert_eq!(
            b.check(&other.token(path, 1_000), path, 1_000),
            Err("not signed by this cluster's key")
        );
        let forged = t.replacen("gw-a", "gw-c", 1);
        assert_eq!(
            b.check(&forged, path, 1_000),
            Err("not signed by this cluster's key")
        );
        assert_eq!(b.check("gw-a 1000", path, 1_000), Err("malformed"));
    }
}
