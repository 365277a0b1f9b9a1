//! Routes of the command center. Every response to a recording's playlist
//! or download, and every refusal, goes to the audit trail; media segments
//! and parts are covered by the playlist fetch that listed them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::audit::{AuditEntry, AuditLog};
use super::auth::{Auth, COOKIE, Principal};
use super::catalog::{Catalog, Query as SearchQuery};
use super::hls;
use super::listener::Peer;
use crate::archive::{Locator, MAX_DOC_BYTES};
use crate::gateway::Gateway;
use crate::live::LiveRecording;
use crate::manifest::{Manifest, Role};
use crate::store::layout;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");
const HLS_JS: &str = include_str!("../../web/node_modules/hls.js/dist/hls.min.js");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

pub struct State {
    gw: Arc<Gateway>,
    auth: Auth,
    audit: AuditLog,
    catalog: Catalog,
    /// Last audit entry per (viewer, recording, action), to log a watcher's
    /// repeated playlist reloads once every 30 s rather than twice a second.
    logged: Mutex<HashMap<(String, String, String), Instant>>,
    /// Recently read manifests: a player fetching a stored recording's
    /// segments does not read locator and manifest again for each one.
    manifests: Mutex<HashMap<(String, String), CachedManifest>>,
}

type CachedManifest = (Arc<Manifest>, Instant);

/// How long a cached manifest is used (annotations append to manifests).
const MANIFEST_TTL: Duration = Duration::from_secs(30);

type S = Arc<State>;

impl State {
    pub fn new(gw: Arc<Gateway>) -> S {
        Arc::new(State {
            auth: Auth::new(gw.cfg.viewers.clone()),
            audit: AuditLog::start(gw.clone()),
            catalog: Catalog::default(),
            logged: Mutex::new(HashMap::new()),
            manifests: Mutex::new(HashMap::new()),
            gw,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        who: Option<&Principal>,
        action: &str,
        recording: Option<String>,
        path: &str,
        status: StatusCode,
        peer: &Peer,
        detail: String,
    ) {
        self.audit
            .record(AuditEntry {
                at: crate::time_fmt::now(),
                viewer: who.map(|p| p.name.clone()).unwrap_or_else(|| "-".into()),
                role: who.and_then(|p| {
                    serde_json::to_value(p.role)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                }),
                action: action.to_string(),
                recording,
                path: path.to_string(),
                status: status.as_u16(),
                peer: peer.addr.to_string(),
                detail,
            })
            .await;
    }

    /// Audits a repeated access at most every 30 s per viewer and recording.
    async fn audit_view(
        &self,
        who: &Principal,
        action: &str,
        recording: String,
        path: &str,
        peer: &Peer,
    ) {
        let key = (who.name.clone(), recording.clone(), action.to_string());
        let due = {
            let mut l = self.logged.lock().expect("logged");
            let due = l
                .get(&key)
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
            if due {
                l.insert(key, Instant::now());
            }
            due
        };
        if due {
            self.audit(
                Some(who),
                action,
                Some(recording),
                path,
                StatusCode::OK,
                peer,
                String::new(),
            )
            .await;
        }
    }
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, Json(serde_json::json!({ "error": msg }))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Refuses a request (401 with nobody logged in, else 403) and audits it.
async fn refuse(
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
    s.audit(who, "refused", recording, path, status, peer, String::new())
        .await;
    json_error(
        status,
        if who.is_some() {
            "not allowed for your role"
        } else {
            "log in first"
        },
    )
}

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

async fn login(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Json(b): Json<LoginBody>,
) -> Response {
    match s.auth.login(b.token.trim()) {
        Some((id, p)) => {
            s.audit(
                Some(&p),
                "login",
                None,
                "/api/login",
                StatusCode::OK,
                &peer,
                String::new(),
            )
            .await;
            let mut r = Json(&p).into_response();
            let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        None => {
            s.audit(
                None,
                "login-refused",
                None,
                "/api/login",
                StatusCode::UNAUTHORIZED,
                &peer,
                String::new(),
            )
            .await;
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
) -> Response {
    let who = s.auth.who(&headers, &peer);
    s.auth.logout(&headers);
    if let Some(p) = &who {
        s.audit(
            Some(p),
            "logout",
            None,
            "/api/logout",
            StatusCode::OK,
            &peer,
            String::new(),
        )
        .await;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "custody_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
        ),
    );
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

#[derive(Serialize)]
struct LiveItem {
    recorder: String,
    recording_id: String,
    officer: Option<String>,
    officer_name: Option<String>,
    occasion: Option<String>,
    case_id: Option<String>,
    category: Option<String>,
    unit: String,
    status: &'static str,
    started_at: String,
    last_byte_at: String,
    gaps: usize,
    master: String,
    playable: bool,
    codecs: Option<String>,
}

fn unit_of(r: &LiveRecording) -> &str {
    &r.header.ledger.unit
}

async fn live_list(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = s.auth.who(&headers, &peer) else {
        return refuse(&s, None, None, "/api/live", &peer).await;
    };
    let mut items = Vec::new();
    for r in s.gw.live.all() {
        if r.recorder.starts_with('_') || !who.may_watch_live(unit_of(&r)) {
            continue;
        }
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
            status: st.state,
            started_at: st.started_at,
            last_byte_at: st.last_byte_at,
            gaps: st.gaps,
            master: format!("/live/{}/{}/master.m3u8", r.recorder, r.id),
            playable: codecs.as_ref().is_none_or(|c| c.1),
            codecs: codecs.map(|c| c.0),
        });
    }
    items.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    let mut r = Json(items).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

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
    match s.catalog.search(&s.gw.store, &q).await {
        Ok(items) => {
            s.audit(
                Some(&who),
                "search",
                None,
                "/api/recordings",
                StatusCode::OK,
                &peer,
                serde_json::to_string(&serde_json::json!({
                    "officer": q.officer, "device": q.device, "case": q.case,
                    "category": q.category, "occasion": q.occasion, "from": q.from, "to": q.to,
                    "results": items.len(),
                }))
                .unwrap_or_default(),
            )
            .await;
            let mut r = Json(items).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("storage: {e}")),
    }
}

#[derive(Deserialize, Default)]
struct HlsQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
}

/// Waits (bounded) until `ready` holds for the recording's view.
async fn wait_view(
    rec: &LiveRecording,
    limit: Duration,
    ready: impl Fn(&crate::live::view::LiveView) -> bool,
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

async fn live_file(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id, file)): Path<(String, String, String)>,
    Query(q): Query<HlsQuery>,
) -> Response {
    let path = format!("/live/{recorder}/{id}/{file}");
    let rec_name = format!("{recorder}/{id}");
    let who = s.auth.who(&headers, &peer);
    let Some(rec) =
        s.gw.live
            .get(&recorder, &id)
            .filter(|r| !r.recorder.starts_with('_'))
    else {
        return match who {
            Some(_) => json_error(StatusCode::NOT_FOUND, "no such live recording"),
            None => refuse(&s, None, Some(rec_name), &path, &peer).await,
        };
    };
    let Some(who) = who.filter(|p| p.may_watch_live(unit_of(&rec))) else {
        let w = s.auth.who(&headers, &peer);
        return refuse(&s, w.as_ref(), Some(rec_name), &path, &peer).await;
    };
    let part_target = s.gw.cfg.live.part_seconds;
    match file.as_str() {
        "master.m3u8" => {
            rec.view.lock().expect("view").watch();
            s.audit_view(&who, "watch-live", rec_name, &path, &peer)
                .await;
            // Wait briefly for the first initialisation segment: its codecs
            // go into the playlist so unsupported ones fail early.
            wait_view(&rec, Duration::from_secs(5), |v| !v.inits.is_empty()).await;
            let codecs = rec
                .view
                .lock()
                .expect("view")
                .inits
                .back()
                .map(|(_, b)| hls::codecs(b).0)
                .unwrap_or_default();
            with_type(
                hls::master(&codecs, 4_000_000, "index.m3u8", 9),
                "application/vnd.apple.mpegurl",
                "no-cache",
            )
        }
        "index.m3u8" => {
            rec.view.lock().expect("view").watch();
            s.audit_view(&who, "watch-live", rec_name, &path, &peer)
                .await;
            // Blocking playlist reload: wait for the part asked for.
            if let Some(msn) = q.msn {
                let part = q.part.unwrap_or(0);
                let limit = Duration::from_secs_f64(part_target * 6.0 + 1.0);
                wait_view(&rec, limit, |v| {
                    v.head()
                        .is_some_and(|(m, p)| m > msn || (m == msn && p >= part))
                })
                .await;
            } else {
                wait_view(&rec, Duration::from_secs(5), |v| v.head().is_some()).await;
            }
            let body = hls::live(&rec.view.lock().expect("view"), part_target);
            with_type(body, "application/vnd.apple.mpegurl", "no-cache")
        }
        f if f.starts_with("init-") && f.ends_with(".mp4") => {
            let g: Option<u64> = f[5..f.len() - 4].parse().ok();
            match g.and_then(|g| rec.view.lock().expect("view").init_data(g)) {
                Some(b) => with_type(b, "video/mp4", "max-age=3600"),
                None => json_error(StatusCode::NOT_FOUND, "no such initialisation segment"),
            }
        }
        f if f.starts_with("seg-") && f.ends_with(".m4s") => {
            let Some(msn) = f[4..f.len() - 4].parse::<u64>().ok() else {
                return json_error(StatusCode::NOT_FOUND, "bad segment name");
            };
            wait_view(&rec, Duration::from_secs(6), |v| {
                v.segment(msn).is_some_and(|s| s.complete)
            })
            .await;
            match rec
                .view
                .lock()
                .expect("view")
                .segment(msn)
                .filter(|s| s.complete)
            {
                Some(seg) => with_type(seg.bytes(), "video/mp4", "max-age=60"),
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
            let limit = Duration::from_secs_f64(part_target * 6.0 + 1.0);
            wait_view(&rec, limit, |v| match v.segment(msn) {
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
                Some(b) => with_type(b, "video/mp4", "max-age=60"),
                None => json_error(StatusCode::NOT_FOUND, "part not available"),
            }
        }
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// A stored recording's manifest, found by its locator.
async fn stored_manifest(s: &S, recorder: &str, id: &str) -> Option<Arc<Manifest>> {
    let key = (recorder.to_string(), id.to_string());
    if let Some((m, t)) = s.manifests.lock().expect("manifests").get(&key)
        && t.elapsed() < MANIFEST_TTL
    {
        return Some(m.clone());
    }
    let m = Arc::new(read_manifest(s, recorder, id).await?);
    let mut c = s.manifests.lock().expect("manifests");
    c.retain(|_, (_, t)| t.elapsed() < MANIFEST_TTL);
    if c.len() < 1024 {
        c.insert(key, (m.clone(), Instant::now()));
    }
    Some(m)
}

async fn read_manifest(s: &S, recorder: &str, id: &str) -> Option<Manifest> {
    let lb =
        s.gw.store
            .get_bytes(&layout::locator_key(recorder, id), MAX_DOC_BYTES)
            .await
            .ok()?;
    let loc: Locator = serde_json::from_slice(&lb).ok()?;
    let mb =
        s.gw.store
            .get_bytes(&loc.manifest_key, MAX_DOC_BYTES)
            .await
            .ok()?;
    serde_json::from_slice(&mb).ok()
}

async fn stored_file(
    AxState(s): AxState<S>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((recorder, id, file)): Path<(String, String, String)>,
) -> Response {
    let path = format!("/rec/{recorder}/{id}/{file}");
    let rec_name = format!("{recorder}/{id}");
    let Some(who) = s.auth.who(&headers, &peer).filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(&headers, &peer);
        return refuse(&s, w.as_ref(), Some(rec_name), &path, &peer).await;
    };
    let Some(m) = stored_manifest(&s, &recorder, &id).await else {
        return json_error(StatusCode::NOT_FOUND, "no such stored recording");
    };
    match file.as_str() {
        "master.m3u8" => {
            s.audit_view(&who, "open-stored", rec_name, &path, &peer)
                .await;
            let codecs = match m.objects.iter().find(|o| o.role == Role::Init) {
                Some(init) => match s.gw.store.get_bytes(&init.key, 1 << 20).await {
                    Ok(b) => hls::codecs(&b).0,
                    Err(_) => String::new(),
                },
                None => {
                    return json_error(
                        StatusCode::NOT_FOUND,
                        "this recording has no playable derivative",
                    );
                }
            };
            with_type(
                hls::master(&codecs, 4_000_000, "index.m3u8", 7),
                "application/vnd.apple.mpegurl",
                "no-cache",
            )
        }
        "index.m3u8" => {
            s.audit_view(&who, "open-stored", rec_name, &path, &peer)
                .await;
            match hls::vod(&m) {
                Some(p) => with_type(p, "application/vnd.apple.mpegurl", "no-cache"),
                None => json_error(
                    StatusCode::NOT_FOUND,
                    "this recording has no playable derivative",
                ),
            }
        }
        "original" => {
            s.audit(
                Some(&who),
                "download",
                Some(rec_name),
                &path,
                StatusCode::OK,
                &peer,
                String::new(),
            )
            .await;
            let originals: Vec<String> = m
                .objects
                .iter()
                .filter(|o| matches!(o.role, Role::Original | Role::RawChunk))
                .map(|o| o.key.clone())
                .collect();
            let name = m
                .objects
                .iter()
                .find(|o| o.role == Role::Original)
                .and_then(|o| o.key.rsplit('.').next().map(|e| format!("{id}.{e}")))
                .unwrap_or_else(|| format!("{id}.ts"));
            let store = s.gw.store.clone();
            // Originals may be gigabytes: streamed in ranges of 4 MiB, so a
            // download holds at most one range in memory.
            const RANGE: u64 = 4 << 20;
            let state = (store, originals.into_iter(), None::<(String, u64)>);
            let stream =
                futures_util::stream::unfold(state, |(store, mut keys, mut cur)| async move {
                    loop {
                        let (key, off) = match cur.take() {
                            Some(c) => c,
                            None => (keys.next()?, 0),
                        };
                        match store.get_range(&key, off, RANGE).await {
                            Ok(b) if b.is_empty() => continue,
                            Ok(b) => {
                                let next = off + b.len() as u64;
                                let more = b.len() as u64 == RANGE;
                                let cur = more.then_some((key, next));
                                return Some((Ok(b), (store, keys, cur)));
                            }
                            Err(e) => {
                                // End the body early: the client sees a truncated
                                // download rather than a silently short file.
                                let err = std::io::Error::other(e.to_string());
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
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
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
    let Some(_who) = s.auth.who(&headers, &peer).filter(|p| p.may_open_stored()) else {
        let w = s.auth.who(&headers, &peer);
        return refuse(
            &s,
            w.as_ref(),
            Some(format!("{recorder}/{id}")),
            &path,
            &peer,
        )
        .await;
    };
    let Some(m) = stored_manifest(&s, &recorder, &id).await else {
        return json_error(StatusCode::NOT_FOUND, "no such stored recording");
    };
    let Some(o) = m
        .objects
        .get(index as usize)
        .filter(|o| matches!(o.role, Role::Init | Role::Segment))
    else {
        return json_error(StatusCode::NOT_FOUND, "no such segment");
    };
    match s.gw.store.get_bytes(&o.key, 1 << 30).await {
        Ok(b) => with_type(b, "video/mp4", "max-age=3600"),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("storage: {e}")),
    }
}
