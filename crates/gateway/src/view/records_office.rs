//! Records-office actions over the command center's API, each by an
//! authenticated viewer and each in the audit trail: raising retention,
//! marking confidentiality, and two-person requests — export (a
//! verification bundle, R6) and deletion of an expired recording (R5) —
//! made by one viewer and approved by a second. The rules of the
//! requests are `crate::records_office`'s; this module authenticates,
//! audits and answers.

use std::path::PathBuf;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Principal;
use super::listener::Peer;
use super::respond::{audit_unavailable, json_error, not_located, refuse_as, storage_unavailable};
use super::state::S;
use crate::annotate::{self, AnnotateError};
use crate::policy::retention;
use crate::records_office::{
    self as office, Decided, DecisionError, Kind, Office, Refusal, RequestDoc, Status,
};
use custody_format::annotation::Fact;
use custody_format::confidentiality::Mark;
use custody_format::locator::MAX_DOC_BYTES;
use custody_format::manifest::Manifest;
use custody_format::retention::{Enforcement, Retention};
use custody_verify::locate::LocateError;

/// Where a stored recording's manifest is, and the manifest: found through
/// its locator and checked to be the recording asked for
/// (`crate::locate`).
async fn recording(
    s: &S,
    recorder: &str,
    id: &str,
) -> Result<Option<(String, Manifest)>, LocateError> {
    if !custody_format::metadata::valid_id(recorder) || !custody_format::metadata::valid_id(id) {
        return Ok(None);
    }
    Ok(custody_verify::locate::stored(&s.gw.store, recorder, id)
        .await?
        .map(|f| (f.locator.manifest_key, f.manifest)))
}

/// Parses a JSON body — after the caller is authenticated, so a stranger
/// learns nothing from how a body is refused.
#[allow(clippy::result_large_err)]
fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(b)
        .map_err(|e| json_error(StatusCode::BAD_REQUEST, &format!("request body: {e}")))
}

/// Free text a viewer sends (a reason, a note) follows the protocol's text
/// rule: at most 4096 bytes, no control characters but `\n` and `\t`.
#[allow(clippy::result_large_err)]
fn check_text(field: &'static str, v: Option<&str>) -> Result<(), Response> {
    match v.map(|t| custody_format::metadata::check_text(field, t)) {
        Some(Err(e)) => Err(json_error(StatusCode::BAD_REQUEST, &e.to_string())),
        _ => Ok(()),
    }
}

/// Decisions and their documents are never cached.
fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn annotate_error(e: AnnotateError) -> Response {
    match e {
        AnnotateError::Refused(m) => json_error(StatusCode::CONFLICT, &m),
        AnnotateError::Store(e) => storage_unavailable("annotation", e),
    }
}

/// Who may act, and whether the act was recorded: the viewer, or the
/// response that refuses.
async fn decider(
    s: &S,
    headers: &HeaderMap,
    peer: &Peer,
    path: &str,
    rec: Option<String>,
) -> Result<Principal, Response> {
    match s.auth.who(headers, peer) {
        Some(p) if p.may_decide() => Ok(p),
        w => Err(refuse_as(s, w.as_ref(), rec, path, peer).await),
    }
}

/// The common start of a records-office change to the stored recording
/// `recorder/id` (requested at `path`), in this order: a supervisor (else 401/403), a readable body (else 400),
/// the recording (else 404, or 503 when storage fails) and clearance for
/// its marks (else 403). Returns the viewer, the body and the manifest key.
async fn change_to<T: serde::de::DeserializeOwned>(
    s: &S,
    headers: &HeaderMap,
    peer: &Peer,
    (recorder, id): (&str, &str),
    path: &str,
    body: &[u8],
) -> Result<(Principal, T, String), Response> {
    let name = format!("{recorder}/{id}");
    let who = decider(s, headers, peer, path, Some(name.clone())).await?;
    let b: T = parse(body)?;
    match recording(s, recorder, id).await {
        Ok(Some((k, m))) if who.cleared_for(&m.confidentiality) => Ok((who, b, k)),
        Ok(Some(_)) => Err(refuse_as(s, Some(&who), Some(name), path, peer).await),
        Ok(None) => Err(json_error(
            StatusCode::NOT_FOUND,
            "no such stored recording",
        )),
        Err(e) => Err(not_located(s, &who, name, path, peer, e).await),
    }
}

/// The body of a raise. Its class is checked as it is read, so years out
/// of bounds are a bad request (400) like any other unreadable body.
#[derive(Deserialize)]
#[serde(try_from = "RawRetentionBody")]
pub struct RetentionBody {
    retention: Retention,
    note: Option<String>,
}

#[derive(Deserialize)]
struct RawRetentionBody {
    #[serde(flatten)]
    retention: Retention,
    #[serde(default)]
    note: Option<String>,
}

impl TryFrom<RawRetentionBody> for RetentionBody {
    type Error = retention::RetentionError;

    fn try_from(b: RawRetentionBody) -> Result<Self, Self::Error> {
        b.retention.check()?;
        Ok(RetentionBody {
            retention: b.retention,
            note: b.note,
        })
    }
}

/// POST /api/recordings/{recorder}/{id}/retention — supervisors.
pub async fn raise_retention(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/api/recordings/{recorder}/{id}/retention");
    let name = format!("{recorder}/{id}");
    let (who, b, key) =
        match change_to::<RetentionBody>(&s, &headers, &peer, (&recorder, &id), &path, &body).await
        {
            Ok(v) => v,
            Err(r) => return r,
        };
    if let Err(r) = check_text("note", b.note.as_deref()) {
        return r;
    }
    let detail = format!(
        "{}: {}",
        b.retention.describe(),
        b.note.clone().unwrap_or_default()
    );
    if !s
        .audit_as(&who, "retention", Some(name), &path, &peer, detail)
        .await
    {
        return audit_unavailable();
    }
    let signer = s.gw.signer.clone();
    if let Err(e) = annotate::annotate(
        &s.gw.store,
        s.gw.catalog.index(),
        &signer,
        &key,
        Fact::Retention(b.retention),
        &who.name,
        b.note,
    )
    .await
    {
        return annotate_error(e);
    }
    // The manifest now says how long; storage is made to hold it so.
    let m: Manifest = match s
        .gw
        .store
        .get_bytes(&key, MAX_DOC_BYTES)
        .await
        .map(|b| serde_json::from_slice(&b))
    {
        Ok(Ok(m)) => m,
        Ok(Err(_)) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "manifest not readable after the annotation",
            );
        }
        Err(e) => return storage_unavailable("manifest", e),
    };
    let state = m.retention.clone();
    if let (Enforcement::ObjectLock, Some(st)) = (&s.gw.retention, &state)
        && let Err(e) = retention::lock_recording(&s.gw.store, &m.prefix, st).await
    {
        return storage_unavailable("object lock", e);
    }
    s.forget_manifest(&recorder, &id);
    no_store(
        Json(serde_json::json!({
            "retention": state,
            "storage": s.gw.retention,
        }))
        .into_response(),
    )
}

#[derive(Deserialize)]
pub struct MarkBody {
    mark: Mark,
    #[serde(default)]
    note: Option<String>,
}

/// POST /api/recordings/{recorder}/{id}/confidentiality — supervisors.
pub async fn mark(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/api/recordings/{recorder}/{id}/confidentiality");
    let name = format!("{recorder}/{id}");
    let (who, b, key) =
        match change_to::<MarkBody>(&s, &headers, &peer, (&recorder, &id), &path, &body).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    if let Err(r) = check_text("note", b.note.as_deref()) {
        return r;
    }
    if !s
        .audit_as(
            &who,
            "mark",
            Some(name),
            &path,
            &peer,
            b.mark.describe().to_string(),
        )
        .await
    {
        return audit_unavailable();
    }
    match annotate::annotate(
        &s.gw.store,
        s.gw.catalog.index(),
        &s.gw.signer.clone(),
        &key,
        Fact::Confidentiality(b.mark),
        &who.name,
        b.note,
    )
    .await
    {
        Ok(_) => {
            // Playback must not go on from a manifest cached before the mark.
            s.forget_manifest(&recorder, &id);
            no_store(Json(serde_json::json!({ "marked": b.mark })).into_response())
        }
        Err(e) => annotate_error(e),
    }
}

#[derive(Deserialize)]
pub struct NewRequest {
    kind: Kind,
    /// RECORDER/RECORDING-ID.
    recording: String,
    reason: String,
}

/// POST /api/requests — supervisors and auditors.
pub async fn create(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = "/api/requests";
    let Some(who) = s.auth.who(&headers, &peer).filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(&headers, &peer);
        return refuse_as(&s, w.as_ref(), None, path, &peer).await;
    };
    let b: NewRequest = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some((recorder, id)) = b.recording.split_once('/') else {
        return json_error(StatusCode::BAD_REQUEST, "recording: RECORDER/RECORDING-ID");
    };
    if b.reason.trim().is_empty() || b.reason.len() > custody_format::limits::MAX_TEXT_LEN {
        return json_error(
            StatusCode::BAD_REQUEST,
            "reason: say why (at most 4096 bytes)",
        );
    }
    if let Err(r) = check_text("reason", Some(&b.reason)) {
        return r;
    }
    let (manifest_key, m) = match recording(&s, recorder, id).await {
        Ok(Some(v)) => v,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such stored recording"),
        Err(e) => return not_located(&s, &who, b.recording, path, &peer, e).await,
    };
    if !who.cleared_for(&m.confidentiality) {
        return refuse_as(&s, Some(&who), Some(b.recording), path, &peer).await;
    }
    if b.kind == Kind::Delete
        && let Some(why) = office::not_deletable(&m, custody_format::clock::now())
    {
        return json_error(StatusCode::CONFLICT, &why);
    }
    let r = RequestDoc::new(
        b.kind,
        (recorder, id),
        b.reason,
        (manifest_key, &m),
        &who.name,
    );
    let action = match r.kind {
        Kind::Export => "request-export",
        Kind::Delete => "request-delete",
    };
    if !s
        .audit_as(
            &who,
            action,
            Some(b.recording),
            path,
            &peer,
            format!("request {}: {}", r.id, r.reason),
        )
        .await
    {
        return audit_unavailable();
    }
    if let Err(e) = office::save(&s.gw.store, &r).await {
        return storage_unavailable("request", e);
    }
    no_store((StatusCode::CREATED, Json(r)).into_response())
}

/// GET /api/requests — supervisors and auditors.
pub async fn list(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = s.auth.who(&headers, &peer).filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(&headers, &peer);
        return refuse_as(&s, w.as_ref(), None, "/api/requests", &peer).await;
    };
    if !s
        .audit_repeat(&who, "list-requests", "/api/requests", &peer)
        .await
    {
        return audit_unavailable();
    }
    let mut out = match office::list(&s.gw.store).await {
        Ok(v) => v,
        Err(e) => return storage_unavailable("requests", e),
    };
    out.retain(|r| who.cleared_for(&r.confidentiality));
    no_store(Json(out).into_response())
}

#[derive(Deserialize, Default)]
pub struct Decision {
    #[serde(default)]
    note: Option<String>,
}

/// Where an approved export's bundle is kept for its requester.
fn bundle_dir(s: &S, id: &str) -> PathBuf {
    s.gw.spool.root().join("exports").join(id)
}

/// POST /api/requests/{id}/approve — a supervisor other than the requester.
pub async fn approve(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    decide(s, peer, headers, id, body, true).await
}

/// POST /api/requests/{id}/reject — a supervisor.
pub async fn reject(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    decide(s, peer, headers, id, body, false).await
}

async fn decide(
    s: S,
    peer: Peer,
    headers: HeaderMap,
    id: String,
    body: axum::body::Bytes,
    approve: bool,
) -> Response {
    let path = format!(
        "/api/requests/{id}/{}",
        if approve { "approve" } else { "reject" }
    );
    let who = match decider(&s, &headers, &peer, &path, None).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    // The body is read only once the viewer is known. It must be a JSON
    // object (`{}` at least): an empty POST decides nothing.
    let d: Decision = match parse(&body) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Err(r) = check_text("note", d.note.as_deref()) {
        return r;
    }
    if !custody_format::metadata::valid_id(&id) {
        return json_error(StatusCode::NOT_FOUND, "no such request");
    }
    // Carried out in a task of its own: a client that goes away does not
    // cut a decision off between storing it and carrying it out.
    let task = tokio::spawn(async move {
        let _one_at_a_time = s.decisions.lock(&id).await;
        // Across gateways too, in cluster mode: one decision, carried out
        // once, whichever gateway each approval reaches.
        let _in_the_cluster = match &s.gw.db {
            Some(db) => match db.hold(&format!("records-office request {id}")).await {
                Ok(held) => Some(held),
                Err(e) => return storage_unavailable("request", e),
            },
            None => None,
        };
        decide_locked(&s, &peer, &who, &id, &path, d, approve).await
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!("a records-office decision failed: {e}");
        json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the decision failed; read the request again",
        )
    })
}

/// The request's state, read afresh under its decision lock, and the
/// decision: stored before anything is carried out.
async fn decide_locked(
    s: &S,
    peer: &Peer,
    who: &Principal,
    id: &str,
    path: &str,
    d: Decision,
    approve: bool,
) -> Response {
    let mut r = match office::load(&s.gw.store, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such request"),
        Err(e) => return storage_unavailable("request", e),
    };
    let name = r.recording();
    let decided = match r.may_decide(&who.name, approve) {
        Ok(d) => d,
        Err(Refusal::AlreadyDecided) => {
            return json_error(StatusCode::CONFLICT, "the request was decided already");
        }
        Err(Refusal::SamePerson) => return refuse_as(s, Some(who), Some(name), path, peer).await,
    };
    let m = match recording(s, &r.recorder, &r.recording_id).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            // A deletion interrupted after its record was written: finish
            // the request's paperwork.
            if office::finish_interrupted_deletion(&s.gw.store, &mut r).await {
                if let Err(e) = office::save(&s.gw.store, &r).await {
                    return storage_unavailable("request", e);
                }
                return no_store(Json(r).into_response());
            }
            return json_error(StatusCode::NOT_FOUND, "the recording is no longer stored");
        }
        Err(e) => return not_located(s, who, name, path, peer, e).await,
    };
    if !who.cleared_for(&m.1.confidentiality) {
        return refuse_as(s, Some(who), Some(name), path, peer).await;
    }
    let action = match (approve, r.kind) {
        (false, _) => "reject",
        (true, Kind::Export) => "approve-export",
        (true, Kind::Delete) => "approve-delete",
    };
    let detail = format!(
        "request {id} by {}: {}",
        r.requested_by,
        d.note.clone().unwrap_or_default()
    );
    if !s
        .audit_as(who, action, Some(name.clone()), path, peer, detail)
        .await
    {
        return audit_unavailable();
    }
    if decided == Decided::New {
        r.decide(&who.name, d.note, approve);
        match office::store_decision(&s.gw.store, s.gw.db.as_ref(), &r).await {
            Ok(()) => {}
            Err(DecisionError::DecidedElsewhere) => {
                return json_error(StatusCode::CONFLICT, "the request was decided already");
            }
            Err(DecisionError::Store(e)) => return storage_unavailable("request", e),
            Err(DecisionError::Db(e)) => return storage_unavailable("request", e),
        }
        if !approve {
            return no_store(Json(r).into_response());
        }
    }
    let office = Office {
        store: &s.gw.store,
        index: s.gw.catalog.index(),
        signer: &s.gw.signer,
        enforcement: &s.gw.retention,
    };
    let outcome = office
        .carry_out(&r, (&m.0, &m.1), &who.name, &bundle_dir(s, &r.id))
        .await;
    r.carried_out(outcome);
    let detail = format!("request {id}: {}", r.result.clone().unwrap_or_default());
    s.audit_as(
        who,
        &format!("{action}-result"),
        Some(name),
        path,
        peer,
        detail,
    )
    .await;
    if let Err(e) = office::save(&s.gw.store, &r).await {
        return storage_unavailable("request", e);
    }
    no_store(Json(r).into_response())
}

/// The files of an approved export's bundle, relative to it.
fn bundle_files(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, d: &std::path::Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// GET /api/requests/{id}/bundle[/{file}] — the requester and the approver
/// of a done export: the file list, or one file.
pub async fn bundle(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(p): Path<Vec<String>>,
) -> Response {
    let (id, file) = match p.as_slice() {
        [id] => (id.clone(), None),
        [id, file] => (id.clone(), Some(file.clone())),
        _ => return json_error(StatusCode::NOT_FOUND, "not found"),
    };
    let path = format!("/api/requests/{id}/bundle");
    // Who first: a stranger learns nothing about which requests exist.
    let Some(who) = s.auth.who(&headers, &peer) else {
        return refuse_as(&s, None, None, &path, &peer).await;
    };
    let r = match office::load(&s.gw.store, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such request"),
        Err(e) => return storage_unavailable("request", e),
    };
    let name = r.recording();
    let allowed = r.kind == Kind::Export
        && r.status == Status::Done
        && (who.name == r.requested_by || Some(&who.name) == r.decided_by.as_ref())
        && who.cleared_for(&r.confidentiality);
    let who = Some(who);
    let Some(who) = who.filter(|_| allowed) else {
        let w = s.auth.who(&headers, &peer);
        return refuse_as(&s, w.as_ref(), Some(name), &path, &peer).await;
    };
    let dir = bundle_dir(&s, &id);
    let files = bundle_files(&dir);
    match file {
        None => {
            if !s
                .audit_as(
                    &who,
                    "export-list",
                    Some(name),
                    &path,
                    &peer,
                    format!("request {id}"),
                )
                .await
            {
                return audit_unavailable();
            }
            no_store(Json(files).into_response())
        }
        Some(f) => {
            // Only the files the bundle holds: no path from the request
            // reaches the file system.
            let Some(rel) = files.iter().find(|x| x.replace('/', "|") == f) else {
                return json_error(StatusCode::NOT_FOUND, "no such file in the bundle");
            };
            if !s
                .audit_as(
                    &who,
                    "export-download",
                    Some(name),
                    &path,
                    &peer,
                    format!("request {id}: {rel}"),
                )
                .await
            {
                return audit_unavailable();
            }
            // Streamed: bundles hold whole originals.
            match tokio::fs::File::open(dir.join(rel)).await {
                Ok(f) => {
                    let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
                    let mut r = no_store(Response::new(axum::body::Body::from_stream(stream)));
                    r.headers_mut().insert(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/octet-stream"),
                    );
                    r
                }
                Err(_) => json_error(StatusCode::NOT_FOUND, "no such file in the bundle"),
            }
        }
    }
}

/// The routes.
pub fn routes() -> axum::Router<S> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/api/recordings/{recorder}/{id}/retention",
            post(raise_retention),
        )
        .route(
            "/api/recordings/{recorder}/{id}/confidentiality",
            post(mark),
        )
        .route("/api/requests", post(create).get(list))
        .route("/api/requests/{id}/approve", post(approve))
        .route("/api/requests/{id}/reject", post(reject))
        .route("/api/requests/{id}/bundle", get(bundle_list))
        .route("/api/requests/{id}/bundle/{file}", get(bundle_file))
}

async fn bundle_list(
    st: AxState<S>,
    ci: ConnectInfo<Peer>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    bundle(st, ci, headers, Path(vec![id])).await
}

/// A bundle file, its path given with `|` for `/`.
async fn bundle_file(
    st: AxState<S>,
    ci: ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    bundle(st, ci, headers, Path(vec![id, file])).await
}
