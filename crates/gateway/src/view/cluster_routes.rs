//! The routes the other gateways of a cluster call (`view::peers` is the
//! asking side): this gateway's live feeds, listed and served to another
//! gateway's wall. Only a request signed with the cluster's key is
//! answered.

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::peers::{PEER_HEADER, UNIT_HEADER, unix_now};
use super::respond::json_error;
use super::state::S;

/// The routes other gateways call.
pub(super) fn routes(state: S) -> axum::Router {
    axum::Router::new()
        .route("/cluster/live", get(list))
        .route("/cluster/live/{recorder}/{id}/{file}", get(file))
        .with_state(state)
}

/// The refusal to answer with, unless another gateway of the cluster asks.
fn refusal(s: &S, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    let Some(peers) = &s.peers else {
        return Some(json_error(StatusCode::NOT_FOUND, "not in cluster mode"));
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let checked = match headers.get(PEER_HEADER).and_then(|v| v.to_str().ok()) {
        Some(value) => peers.check(value, path, unix_now()),
        None => Err("no x-custody-peer header"),
    };
    match checked {
        Ok(_) => None,
        Err(why) => {
            tracing::warn!(%path, "a request as another gateway refused: {why}");
            Some(json_error(
                StatusCode::UNAUTHORIZED,
                "for other gateways only",
            ))
        }
    }
}

async fn list(AxState(s): AxState<S>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(r) = refusal(&s, &headers, &uri) {
        return r;
    }
    axum::Json(super::api::local_live(&s, |_| true)).into_response()
}

async fn file(
    AxState(s): AxState<S>,
    headers: HeaderMap,
    uri: Uri,
    Path((recorder, id, file)): Path<(String, String, String)>,
    q: axum::extract::Query<super::api::HlsQuery>,
) -> Response {
    if let Some(r) = refusal(&s, &headers, &uri) {
        return r;
    }
    let Some(rec) =
        s.gw.live
            .get(&recorder, &id)
            .filter(|r| super::api::on_wall(r))
    else {
        return json_error(StatusCode::NOT_FOUND, "no such live recording");
    };
    let unit = HeaderValue::from_str(super::api::unit_of(&rec)).ok();
    let mut r = super::api::serve_live(&s, &rec, &file, &q, None).await;
    if let Some(u) = unit {
        r.headers_mut().insert(UNIT_HEADER, u);
    }
    r
}
