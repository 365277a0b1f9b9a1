//! The command center: an HTTPS server in the gateway process serving the
//! wall (a web page with hls.js bundled in), Low-Latency HLS of live
//! recordings from their in-memory parts, VOD HLS of stored recordings
//! streamed from storage (never exposing keys or credentials), viewer
//! authentication, and an audit trail of every access.

mod api;
pub mod audit;
pub mod auth;
mod cluster_routes;
mod csrf;
mod decisions;
pub mod hls;
pub mod listener;
mod live_item;
mod ops;
mod peers;
mod recordings;
mod records_office;
mod respond;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::shared::Gateway;

pub use audit::{AUDIT_RECORDER, AuditLog};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("http listener {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("http TLS: {0}")]
    Tls(#[from] custody_transport::quic::QuicError),
    #[error("cluster command centers: {0}")]
    Peers(String),
}

/// Starts the server if `[http] listen` is set; returns its address.
/// Where the other gateways reach this command center.
fn advertised(gw: &Gateway, bound: SocketAddr) -> Option<String> {
    match &gw.cfg.cluster.http_advertise {
        Some(a) => Some(a.clone()),
        None => (!bound.ip().is_unspecified()).then(|| bound.to_string()),
    }
}

pub async fn start(
    gw: Arc<Gateway>,
    tasks: &crate::tasks::Tasks,
) -> Result<Option<SocketAddr>, ViewError> {
    let Some(listen) = gw.cfg.http.listen.clone() else {
        return Ok(None);
    };
    let tls = if gw.cfg.http.tls {
        Some(listener::tls_config(
            &gw.cfg.tls.ca,
            &gw.cfg.tls.cert,
            &gw.cfg.tls.key,
            &gw.cfg.tls.crls,
        )?)
    } else {
        None
    };
    let l = listener::bind(&listen, tls)
        .await
        .map_err(|e| ViewError::Bind(listen.clone(), e))?;
    let addr = axum::serve::Listener::local_addr(&l)
        .map_err(|e| ViewError::Bind(listen.clone(), e))?
        .addr;
    let peers = peers::Peers::new(&gw).map_err(|e| ViewError::Peers(e.to_string()))?;
    if let Some(p) = &peers {
        match advertised(&gw, addr) {
            Some(a) => {
                tasks.spawn("cluster command center", p.clone().announce(a));
            }
            None => tracing::warn!(
                %addr,
                "cluster: [http] listen is a wildcard address and [cluster] http_advertise is not set: the other gateways' walls will not show this gateway's live feeds"
            ),
        }
    }
    let state = state::State::new(gw.clone(), peers);
    // The operations endpoints stand outside the wall's routes: no login,
    // no audit (they name nothing but aggregate numbers); so do the
    // gateway-to-gateway routes (their own signed requests, `peers`).
    let app = api::router(state.clone())
        .merge(ops::routes(gw.clone()))
        .merge(cluster_routes::routes(state));
    tasks.spawn("command center", async move {
        let svc = app.into_make_service_with_connect_info::<listener::Peer>();
        if let Err(e) = axum::serve(l, svc).await {
            tracing::error!("http server stopped: {e}");
        }
    });
    tracing::info!(
        %addr,
        tls = gw.cfg.http.tls,
        "command center listening (the wall at /)"
    );
    Ok(Some(addr))
}
