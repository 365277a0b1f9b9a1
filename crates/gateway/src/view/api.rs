//! Routes of the command center. Every response to a recording's playlist
//! or download, and every refusal, goes to the audit trail; media segments
//! and parts are covered by the playlist fetch that listed them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth::{COOKIE, Principal};
use super::hls;
use super::listener::Peer;
use super::live_item::LiveItem;
use super::respond::{audit_unavailable, json_error, not_located, refuse, storage_unavailable};
use super::state::{MANIFEST_TTL, S};
use crate::catalog::Filter as SearchQuery;
use crate::live::LiveRecording;
use custody_format::manifest::{Manifest, Role};
use custody_verify::locate::LocateError;

const INDEX_HTML: &str = include_str!("../../../../web/index.html");
const APP_JS: &str = include_str!("../../../../web/app.js");
const STYLE_CSS: &str = include_str!("../../../../web/style.css");
const HLS_JS: &str = include_str!("../../../../web/node_modules/hls.js/dist/hls.min.js");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

fn with_type(body: impl Into<Body>, ctype: &'static str, cache: &'static str) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

pub fn router(state: S) -> axum::Router {
    axum::Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/hls.min.js",
            get(|| async { page(HLS_JS, "text/javascript; charset=utf-8") }),
        )
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/live", get(live_list))
        .route("/api/recordings", get(recordings))
        .route("/live/{recorder}/{id}/{file}", get(live_file))
        .route("/rec/{recorder}/{id}/{file}", get(stored_file))
        .route("/rec/{recorder}/{id}/obj/{file}", get(stored_object))
        .merge(super::records_office::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::csrf::same_origin_json_only,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn page(body: &'static str, ctype: &'static str) -> Response {
    with_type(body, ctype, "no-cache")
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
}

/// The session cookie's attributes: `Secure` whenever the server speaks
/// HTTPS (a browser would drop a Secure cookie over plain HTTP).
fn cookie_attrs(s: &S) -> &'static str {
    if s.gw.cfg.http.tls {
        "Path=/; HttpOnly; Secure; SameSite=Strict"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    }
}

async fn login(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Json(b): Json<LoginBody>,
) -> Response {
    let path = "/api/login";
    match s.auth.login(b.token.trim()) {
        Some((id, p)) => {
            if !s
                .audit(
                    Some(&p),
                    "login",
                    None,
                    path,
                    StatusCode::OK,
                    &peer,
                    String::new(),
                )
                .await
            {
                s.auth.end_session(&id);
                return audit_unavailable();
            }
            let mut r = Json(&p).into_response();
            let cookie = format!("{COOKIE}={id}; {}", cookie_attrs(&s));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => {
            if s.refusal_due() {
                let status = StatusCode::UNAUTHORIZED;
                s.audit(
                    None,
                    "login-refused",
                    None,
                    path,
                    status,
                    &peer,
                    String::new(),
                )
                .await;
            }
            json_error(
                StatusCode::UNAUTHORIZED,
                "invalid, expired or revoked token",
            )
        }
    }
}

async fn logout(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    // Read and ignored: answering before a body has arrived resets an
    // HTTP/2 stream.
    _body: axum::body::Bytes,
) -> Response {
    let who = s.auth.who(&headers, &peer);
    s.auth.logout(&headers);
    if let Some(p) = &who {
        let path = "/api/logout";
        s.audit(
            Some(p),
            "logout",
            None,
            path,
            StatusCode::OK,
            &peer,
            String::new(),
        )
        .await;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let cookie = format!("{COOKIE}=; {}; Max-Age=0", cookie_attrs(&s));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn me(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    match s.auth.who(&headers, &peer) {
        Some(p) => Json(p).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "log in first"),
    }
}

pub(super) fn unit_of(r: &LiveRecording) -> &str {
    &r.header.ledger.unit
}

/// A recording shown on the wall (not one of the gateway's own logs).
pub(super) fn on_wall(r: &LiveRecording) -> bool {
    !r.recorder.starts_with('_')
}

/// The live feeds this gateway receives that `may_watch` (given the unit)
/// allows; each is marked watched, so its parts are kept from now.
pub(super) fn local_live(s: &S, may_watch: impl Fn(&str) -> bool) -> Vec<LiveItem> {
    let mut items = Vec::new();
    for r in s.gw.live.all() {
        if !on_wall(&r) || !may_watch(unit_of(&r)) {
            continue;
        }
        // A wall lists it: someone may open it any moment, so its parts
        // are kept from now (and a new player starts without waiting for
        // the next keyframe).
        r.view.lock().expect("view").watch();
        let st = r.status();
        let codecs = r
            .view
            .lock()
            .expect("view")
            .inits
            .back()
            .map(|(_, b)| hls::codecs(b));
        let m = &r.header.meta;
        items.push(LiveItem {
            recorder: r.recorder.clone(),
            recording_id: r.id.clone(),
            officer: m
                .officer
                .clone()
                .or_else(|| r.header.ledger.officer.clone()),
            officer_name: r.header.ledger.officer_name.clone(),
            occasion: m
                .occasion
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            case_id: m.case_id.clone(),
            category: m.category.clone(),
            unit: unit_of(&r).to_string(),
            status: st.state.to_string(),
            started_at: st.started_at,
            last_byte_at: st.last_byte_at,
            gaps: st.gaps,
            master: format!("/live/{}/{}/master.m3u8", r.recorder, r.id),
            playable: codecs.as_ref().is_none_or(|c| c.1),
            codecs: codecs.map(|c| c.0),
        });
    }
    items
}

async fn live_list(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = s.auth.who(&headers, &peer) else {
        return refuse(&s, None, None, "/api/live", &peer).await;
    };
    if !s
        .audit_view(&who, "list-live", None, "/api/live", &peer)
        .await
    {
        return audit_unavailable();
    }
    let mut items = local_live(&s, |unit| who.may_watch_live(unit));
    // Cluster mode: the feeds the other gateways receive, played through
    // this one (`view::peers`).
    items.extend(
        match &s.peers {
            Some(p) => super::peers::remote_live(p).await,
            None => Vec::new(),
        }
        .into_iter()
        .filter(|i| who.may_watch_live(&i.unit)),
    );
    items.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    let mut r = Json(items).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Results of one search at most; more are cut off and the response says so.
const MAX_RESULTS: usize = 500;

async fn recordings(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Response {
    let who = s.auth.who(&headers, &peer);
    let Some(who) = who.filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(&headers, &peer);
        return refuse(&s, w.as_ref(), None, "/api/recordings", &peer).await;
    };
    if let Err(e) = q.check_times() {
        return json_error(StatusCode::BAD_REQUEST, &e);
    }
    let mut items = match super::recordings::search(s.gw.catalog.index(), &q, &who.clearances).await
    {
        Ok(items) => items,
        Err(e) => return storage_unavailable("search", e),
    };
    let truncated = items.len() > MAX_RESULTS;
    items.truncate(MAX_RESULTS);
    let detail = serde_json::json!({
        "officer": q.officer, "device": q.device, "case": q.case,
        "category": q.category, "occasion": q.occasion, "unit": q.unit, "from": q.from, "to": q.to,
        "results": items.len(), "truncated": truncated,
    });
    let path = "/api/recordings";
    if !s
        .audit(
            Some(&who),
            "search",
            None,
            path,
            StatusCode::OK,
            &peer,
            detail.to_string(),
        )
        .await
    {
        return audit_unavailable();
    }
    let mut r = Json(items).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if truncated {
        h.insert("x-custody-truncated", HeaderValue::from_static("true"));
    }
    r
}

#[derive(Deserialize, Default)]
pub(super) struct HlsQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
}

/// Waits (bounded) until `ready` holds for the recording's view.
async fn wait_view(
    rec: &LiveRecording,
    limit: Duration,
    ready: impl Fn(&crate::live::feed::LiveView) -> bool,
) -> bool {
    let mut rx = rec.view.lock().expect("view").subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let v = rec.view.lock().expect("view");
            if ready(&v) || v.ended {
                return ready(&v);
            }
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return false;
        }
    }
}

/// Media served to viewers: cached by their browser only.
const MEDIA_CACHE: &str = "private, max-age=60";

async fn live_file(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((recorder, id, file)): Path<(String, String, String)>,
    Query(q): Query<HlsQuery>,
) -> Response {
    let path = format!("/live/{recorder}/{id}/{file}");
    let rec_name = format!("{recorder}/{id}");
    let who = s.auth.who(&headers, &peer);
    let rec = s.gw.live.get(&recorder, &id).filter(|r| on_wall(r));
    if rec.is_none()
        && let (Some(p), Some(peers)) = (&who, &s.peers)
    {
        let wait = live_block(&s) + Duration::from_secs(5);
        match super::peers::fetch_live(peers, &recorder, &id, &uri, wait).await {
            Some(Ok(a)) => {
                let unit = a
                    .headers
                    .get(super::peers::UNIT_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if !p.may_watch_live(&unit) {
                    return refuse(&s, Some(p), Some(rec_name), &path, &peer).await;
                }
                if file.ends_with(".m3u8")
                    && !s
                        .audit_view(p, "watch-live", Some(rec_name), &path, &peer)
                        .await
                {
                    return audit_unavailable();
                }
                return super::peers::relay(a);
            }
            Some(Err(e)) => {
                tracing::warn!(recording = %rec_name, "cluster: live feed not relayed: {e}");
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    "the gateway receiving this feed did not answer",
                );
            }
            None => {}
        }
    }
    // Whether a recording exists is itself shown only to who may watch it.
    let allowed = match (&who, &rec) {
        (Some(p), Some(r)) => p.may_watch_live(unit_of(r)),
        (Some(p), None) => p.role == crate::config::ViewerRole::Supervisor,
        (None, _) => false,
    };
    if !allowed {
        return refuse(&s, who.as_ref(), Some(rec_name), &path, &peer).await;
    }
    let (Some(who), Some(rec)) = (who, rec) else {
        return json_error(StatusCode::NOT_FOUND, "no such live recording");
    };
    serve_live(&s, &rec, &file, &q, Some((&who, &rec_name, &path, &peer))).await
}

/// Audits a viewer's playlist fetch (`audit`: viewer, recording, path,
/// peer); true when there is none to audit or it is recorded.
async fn audited(s: &S, audit: Option<(&Principal, &str, &str, &Peer)>) -> bool {
    match audit {
        Some((who, name, path, peer)) => {
            s.audit_view(who, "watch-live", Some(name.to_string()), path, peer)
                .await
        }
        None => true,
    }
}

/// How long a blocking LL-HLS request waits at most: three target
/// durations.
fn live_block(s: &S) -> Duration {
    let part_target = s.gw.cfg.live.part_seconds;
    let segment_target = s.gw.cfg.media.segment_seconds;
    Duration::from_secs_f64((segment_target * 3.0).max(part_target * 6.0))
}

/// Serves file `file` of live recording `rec` (its playlists, audited as
/// `audit` says: the viewer, the recording's name, the path and the peer —
/// none when another gateway asks, which audits its own viewer).
pub(super) async fn serve_live(
    s: &S,
    rec: &Arc<LiveRecording>,
    file: &str,
    q: &HlsQuery,
    audit: Option<(&Principal, &str, &str, &Peer)>,
) -> Response {
    let part_target = s.gw.cfg.live.part_seconds;
    let segment_target = s.gw.cfg.media.segment_seconds;
    let block = live_block(s);
    match file {
        "master.m3u8" => {
            rec.view.lock().expect("view").watch();
            if !audited(s, audit).await {
                return audit_unavailable();
            }
            // Wait briefly for the first initialisation segment: its codecs
            // go into the playlist so unsupported ones fail early.
            wait_view(rec, Duration::from_secs(5), |v| !v.inits.is_empty()).await;
            let (codecs, bandwidth) = {
                let v = rec.view.lock().expect("view");
                let codecs = v.inits.back().map(|(_, b)| hls::codecs(b).0);
                (codecs.unwrap_or_default(), v.bandwidth())
            };
            with_type(
                hls::master(&codecs, bandwidth.unwrap_or(4_000_000), "index.m3u8", 9),
                "application/vnd.apple.mpegurl",
                "no-cache",
            )
        }
        "index.m3u8" => {
            rec.view.lock().expect("view").watch();
            if !audited(s, audit).await {
                return audit_unavailable();
            }
            if let Some(msn) = q.msn {
                // Blocking playlist reload: hold until the segment (or the
                // part) asked for is in the playlist.
                let newest = rec.view.lock().expect("view").window().map(|w| w.1);
                if newest.is_some_and(|n| msn > n + 2) {
                    return json_error(StatusCode::BAD_REQUEST, "_HLS_msn is too far ahead");
                }
                let ready = wait_view(rec, block, |v| match q.part {
                    Some(part) => v
                        .head()
                        .is_some_and(|(m, p)| m > msn || (m == msn && p >= part)),
                    None => {
                        v.segment(msn).is_some_and(|s| s.complete)
                            || v.head().is_some_and(|(m, _)| m > msn)
                    }
                })
                .await;
                if !ready {
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the part asked for did not come in time",
                    );
                }
            } else {
                wait_view(rec, Duration::from_secs(5), |v| v.head().is_some()).await;
            }
            let body = hls::live(&rec.view.lock().expect("view"), part_target, segment_target);
            with_type(body, "application/vnd.apple.mpegurl", "no-cache")
        }
        f if f.starts_with("init-") && f.ends_with(".mp4") => {
            let g: Option<u64> = f[5..f.len() - 4].parse().ok();
            match g.and_then(|g| rec.view.lock().expect("view").init_data(g)) {
                Some(b) => with_type(b, "video/mp4", MEDIA_CACHE),
                None => json_error(StatusCode::NOT_FOUND, "no such initialisation segment"),
            }
        }
        f if f.starts_with("seg-") && f.ends_with(".m4s") => {
            let Some(msn) = f[4..f.len() - 4].parse::<u64>().ok() else {
                return json_error(StatusCode::NOT_FOUND, "bad segment name");
            };
            if !coming(rec, msn) {
                return json_error(StatusCode::NOT_FOUND, "segment not available");
            }
            wait_view(rec, block, |v| v.segment(msn).is_some_and(|s| s.complete)).await;
            match rec
                .view
                .lock()
                .expect("view")
                .segment(msn)
                .filter(|s| s.complete)
            {
                Some(seg) => with_type(seg.bytes(), "video/mp4", MEDIA_CACHE),
                None => json_error(StatusCode::NOT_FOUND, "segment not available"),
            }
        }
        f if f.starts_with("part-") && f.ends_with(".m4s") => {
            let name = &f[5..f.len() - 4];
            let parsed = name
                .split_once('.')
                .and_then(|(m, k)| Some((m.parse::<u64>().ok()?, k.parse::<usize>().ok()?)));
            let Some((msn, k)) = parsed else {
                return json_error(StatusCode::NOT_FOUND, "bad part name");
            };
            if !coming(rec, msn) {
                return json_error(StatusCode::NOT_FOUND, "part not available");
            }
            wait_view(rec, block, |v| match v.segment(msn) {
                Some(seg) => seg.parts.len() > k || seg.complete,
                None => v.head().is_some_and(|(m, _)| m > msn),
            })
            .await;
            let data = rec
                .view
                .lock()
                .expect("view")
                .segment(msn)
                .and_then(|seg| seg.parts.get(k).map(|p| p.data.clone()));
            match data {
                Some(b) => with_type(b, "video/mp4", MEDIA_CACHE),
                None => json_error(StatusCode::NOT_FOUND, "part not available"),
            }
        }
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Whether segment `msn` is in the window or about to be: a request for
/// one that left it (or lies far ahead) is answered at once.
fn coming(rec: &LiveRecording, msn: u64) -> bool {
    let v = rec.view.lock().expect("view");
    match v.window() {
        Some((oldest, newest)) => msn >= oldest && msn <= newest + 1,
        None => msn <= 1,
    }
}

/// A stored recording's manifest, found by its locator: `Ok(None)` when
/// there is no such recording.
/// Who may open stored recording `recorder/id` (requested at `path`), and
/// its manifest: a viewer whose role opens stored recordings (else 401/403),
/// the recording (else 404, or 503 when storage fails) and clearance for its
/// marks (else 403).
async fn open_stored(
    s: &S,
    headers: &HeaderMap,
    peer: &Peer,
    (recorder, id): (&str, &str),
    path: &str,
) -> Result<(Principal, Arc<Manifest>), Response> {
    let name = format!("{recorder}/{id}");
    let Some(who) = s.auth.who(headers, peer).filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(headers, peer);
        return Err(refuse(s, w.as_ref(), Some(name), path, peer).await);
    };
    let m = match stored_manifest(s, recorder, id).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(json_error(
                StatusCode::NOT_FOUND,
                "no such stored recording",
            ));
        }
        Err(e) => return Err(not_located(s, &who, name, path, peer, e).await),
    };
    if !who.cleared_for(&m.confidentiality) {
        return Err(refuse(s, Some(&who), Some(name), path, peer).await);
    }
    Ok((who, m))
}

async fn stored_manifest(
    s: &S,
    recorder: &str,
    id: &str,
) -> Result<Option<Arc<Manifest>>, LocateError> {
    let key = (recorder.to_string(), id.to_string());
    if let Some((m, t)) = s.manifests.lock().expect("manifests").get(&key)
        && t.elapsed() < MANIFEST_TTL
    {
        return Ok(Some(m.clone()));
    }
    let Some(found) = custody_verify::locate::stored(&s.gw.store, recorder, id).await? else {
        return Ok(None);
    };
    let m = Arc::new(found.manifest);
    let mut c = s.manifests.lock().expect("manifests");
    c.retain(|_, (_, t)| t.elapsed() < MANIFEST_TTL);
    if c.len() < 1024 {
        c.insert(key, (m.clone(), Instant::now()));
    }
    Ok(Some(m))
}

/// Bits per second of a stored recording's derivative at its peak segment.
fn vod_bandwidth(m: &Manifest) -> Option<u64> {
    m.objects
        .iter()
        .filter(|o| o.role == Role::Segment)
        .filter_map(|o| {
            let r = o.media.as_ref()?;
            let d = r.end - r.start;
            (d > 0.0).then(|| (o.size as f64 * 8.0 / d) as u64)
        })
        .max()
}

async fn stored_file(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id, file)): Path<(String, String, String)>,
) -> Response {
    let path = format!("/rec/{recorder}/{id}/{file}");
    let rec_name = format!("{recorder}/{id}");
    let (who, m) = match open_stored(&s, &headers, &peer, (&recorder, &id), &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match file.as_str() {
        "master.m3u8" => {
            if !s
                .audit_view(&who, "open-stored", Some(rec_name), &path, &peer)
                .await
            {
                return audit_unavailable();
            }
            let codecs = match m.objects.iter().find(|o| o.role == Role::Init) {
                Some(init) => match s.gw.store.get_bytes(&init.key, 1 << 20).await {
                    Ok(b) => hls::codecs(&b).0,
                    Err(e) => return storage_unavailable("init segment", e),
                },
                None => {
                    return json_error(
                        StatusCode::NOT_FOUND,
                        "this recording has no playable derivative",
                    );
                }
            };
            with_type(
                hls::master(
                    &codecs,
                    vod_bandwidth(&m).unwrap_or(4_000_000),
                    "index.m3u8",
                    7,
                ),
                "application/vnd.apple.mpegurl",
                "no-cache",
            )
        }
        "index.m3u8" => {
            if !s
                .audit_view(&who, "open-stored", Some(rec_name), &path, &peer)
                .await
            {
                return audit_unavailable();
            }
            match hls::vod(&m) {
                Some(p) => with_type(p, "application/vnd.apple.mpegurl", "no-cache"),
                None => json_error(
                    StatusCode::NOT_FOUND,
                    "this recording has no playable derivative",
                ),
            }
        }
        "original" => {
            let status = StatusCode::OK;
            let detail = String::new();
            if !s
                .audit(
                    Some(&who),
                    "download",
                    Some(rec_name),
                    &path,
                    status,
                    &peer,
                    detail,
                )
                .await
            {
                return audit_unavailable();
            }
            download(&s, &m, &id)
        }
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The original as one file: a docked recording's object, or a live
/// recording's raw chunks in order. Streamed from storage in ranges of
/// 4 MiB, so a download holds at most one range in memory whatever its size.
fn download(s: &S, m: &Manifest, id: &str) -> Response {
    let originals: Vec<String> = m
        .objects
        .iter()
        .filter(|o| matches!(o.role, Role::Original | Role::RawChunk))
        .map(|o| o.key.clone())
        .collect();
    let name = m
        .objects
        .iter()
        .find(|o| matches!(o.role, Role::Original | Role::RawChunk))
        .and_then(|o| o.key.rsplit('.').next().map(|e| format!("{id}.{e}")))
        .unwrap_or_else(|| format!("{id}.bin"));
    let size: u64 = m
        .objects
        .iter()
        .filter(|o| matches!(o.role, Role::Original | Role::RawChunk))
        .map(|o| o.size)
        .sum();
    const RANGE: u64 = 4 << 20;
    let state = (
        s.gw.store.clone(),
        originals.into_iter(),
        None::<(String, u64)>,
    );
    let stream = futures_util::stream::unfold(state, |(store, mut keys, mut cur)| async move {
        loop {
            let (key, off) = match cur.take() {
                Some(c) => c,
                None => (keys.next()?, 0),
            };
            match store.get_range(&key, off, RANGE).await {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => {
                    let next = off + b.len() as u64;
                    let cur = (b.len() as u64 == RANGE).then_some((key, next));
                    return Some((Ok(b), (store, keys, cur)));
                }
                Err(e) => {
                    // End the body early: with Content-Length set, the
                    // client sees a truncated download, never a short file
                    // that looks whole.
                    tracing::warn!(key, "download interrupted: {e}");
                    let err = std::io::Error::other("storage failed during the download");
                    return Some((Err(err), (store, Vec::new().into_iter(), None)));
                }
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn stored_object(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id, file)): Path<(String, String, String)>,
) -> Response {
    let path = format!("/rec/{recorder}/{id}/obj/{file}");
    // `<index>.mp4` (an initialisation segment) or `<index>.m4s`.
    let index = file
        .strip_suffix(".mp4")
        .or_else(|| file.strip_suffix(".m4s"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let m = match open_stored(&s, &headers, &peer, (&recorder, &id), &path).await {
        Ok((_, m)) => m,
        Err(r) => return r,
    };
    let Some(o) = m
        .objects
        .get(index as usize)
        .filter(|o| matches!(o.role, Role::Init | Role::Segment))
    else {
        return json_error(StatusCode::NOT_FOUND, "no such segment");
    };
    match s.gw.store.get_bytes(&o.key, 1 << 30).await {
        Ok(b) => with_type(b, "video/mp4", "private, max-age=3600"),
        Err(e) => storage_unavailable("segment", e),
    }
}
