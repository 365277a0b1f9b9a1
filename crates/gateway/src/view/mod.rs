//! The command center: an HTTPS server in the gateway process serving the
//! wall (a web page with hls.js bundled in), Low-Latency HLS of live
//! recordings from their in-memory parts, VOD HLS of stored recordings
//! streamed from storage (never exposing keys or credentials), viewer
//! authentication, and an audit trail of every access.

mod api;
pub mod audit;
pub mod auth;
mod csrf;
mod decisions;
pub mod hls;
pub mod listener;
mod ops;
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
}

/// Starts the server if `[http] listen` is set; returns its address.
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
    let state = state::State::new(gw.clone());
    // The operations endpoints stand outside the wall's routes: no login,
    // no audit (they name nothing but aggregate numbers).
    let app = api::router(state).merge(ops::routes(gw.clone()));
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
