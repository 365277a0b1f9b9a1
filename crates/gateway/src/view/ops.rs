//! Endpoints for operators' tools, on the command center's listener and
//! without login: `/metrics` (Prometheus), `/healthz` and `/readyz`. They
//! carry aggregate numbers and the gateway's own state only — no device,
//! officer, recording or viewer — so nothing in them needs a role.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Format;
use crate::shared::Gateway;

pub fn routes(gw: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(gw)
}

fn text(status: StatusCode, ctype: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Runs `f` off the async threads: it asks the spool's filesystem, which
/// a sick disk can make slow.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Every metric, in OpenMetrics text if the scraper accepts it (Prometheus
/// does), else in Prometheus text 0.0.4.
async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let format = Format::from_accept(accept.as_deref());
    match off_thread(move || gw.metrics.encode(format)).await {
        Some(body) => text(StatusCode::OK, format.content_type(), body),
        None => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "metrics could not be read\n".into(),
        ),
    }
}

/// 200 while the process serves HTTP.
async fn healthz() -> Response {
    text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
}

/// 200 when the gateway can take bytes, else 503 with the reason.
async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    let ready = off_thread(move || gw.readiness())
        .await
        .unwrap_or_else(|| Err("readiness could not be checked".into()));
    match ready {
        Ok(()) => text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ready\n".into(),
        ),
        Err(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("not ready: {why}\n"),
        ),
    }
}
