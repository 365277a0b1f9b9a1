//! Responses every route module gives: JSON errors, refusals (audited),
//! storage and audit-trail outages, a recording the index does not lead to.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Principal;
use super::listener::Peer;
use super::state::S;
use custody_verify::locate::LocateError;

pub(super) fn json_error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, Json(serde_json::json!({ "error": msg }))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// [`refuse`] for the other route modules.
pub(super) async fn refuse_as(
    s: &S,
    who: Option<&Principal>,
    recording: Option<String>,
    path: &str,
    peer: &Peer,
) -> Response {
    refuse(s, who, recording, path, peer).await
}

/// Refuses a request (401 with nobody logged in, else 403) and audits it.
pub(super) async fn refuse(
    s: &S,
    who: Option<&Principal>,
    recording: Option<String>,
    path: &str,
    peer: &Peer,
) -> Response {
    let status = if who.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    if s.refusal_due() {
        s.audit(who, "refused", recording, path, status, peer, String::new())
            .await;
    }
    json_error(
        status,
        if who.is_some() {
            "not allowed for your role"
        } else {
            "log in first"
        },
    )
}

/// 503 when an access cannot be recorded: nothing is shown unaudited.
pub(super) fn audit_unavailable() -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the audit trail cannot be written; try again",
    )
}

/// 503 for a storage failure; the details (keys included) go to the log only.
pub(super) fn storage_unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!("command center: {what}: {e}");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage is unavailable; try again",
    )
}

/// The answer when a stored recording cannot be found as asked: storage
/// failed (503), or what its locator leads to is another recording (409,
/// audited as refused with the reason: nothing of another recording is
/// ever served under this one's name).
pub(super) async fn not_located(
    s: &S,
    who: &Principal,
    name: String,
    path: &str,
    peer: &Peer,
    e: LocateError,
) -> Response {
    match e {
        LocateError::Store(e) => storage_unavailable("manifest", e),
        LocateError::Mismatch(why) => {
            tracing::warn!(recording = %name, "command center: {why}");
            let status = StatusCode::CONFLICT;
            s.audit(Some(who), "refused", Some(name), path, status, peer, why)
                .await;
            json_error(
                status,
                "the index leads this recording to another one; nothing is shown (run custody verify)",
            )
        }
    }
}
