//! Cross-site request forgery. The session cookie is `SameSite=Strict`,
//! but that is one browser rule; every route that changes something (all
//! `POST`s: login, logout, the records office) also refuses
//!
//! - a request a browser marks as made by another site: `Sec-Fetch-Site`
//!   other than `same-origin` or `none`, or, from a browser that does not
//!   send that header, an `Origin` that is not the address the request was
//!   sent to (`403`, audited as `refused`);
//! - a body that is not declared JSON (`415`): an HTML form on another site
//!   can only send form-encoded or plain-text bodies, and a script on
//!   another site cannot send `Content-Type: application/json` without the
//!   gateway's consent (a CORS preflight, which it never grants).
//!
//! Clients that are not browsers (the CLI, scripts) send neither header and
//! are judged by their token alone. Each route then reads its body as JSON,
//! so an empty body approves nothing.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

use super::listener::Peer;
use super::respond::json_error;
use super::state::S;

/// The middleware: lets safe methods through, and refuses the rest unless
/// they come from this origin with a JSON body.
pub(super) async fn same_origin_json_only(
    State(s): State<S>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let refusal = if let Some(why) = cross_site(req.headers(), req.uri()) {
        let path = req.uri().path().to_string();
        if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<Peer>>()
            && s.refusal_due()
        {
            let who = s.auth.who(req.headers(), peer);
            s.audit(
                who.as_ref(),
                "refused",
                None,
                &path,
                StatusCode::FORBIDDEN,
                peer,
                why,
            )
            .await;
        }
        json_error(StatusCode::FORBIDDEN, "cross-site request refused")
    } else if !declares_json(req.headers()) {
        json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send a JSON body with Content-Type: application/json",
        )
    } else {
        return next.run(req).await;
    };
    // The body is read (up to the routes' own limit) and dropped before
    // the answer: over HTTP/2 an answer to a request whose body is still
    // coming resets the stream, and the client would see a transport error
    // instead of the refusal.
    let _ = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await;
    refusal
}

/// The framework's body limit on every route that reads a body (2 MiB).
const MAX_BODY_BYTES: usize = 2 << 20;

/// Why a request was made on another site's behalf, if it was.
fn cross_site(h: &HeaderMap, uri: &Uri) -> Option<String> {
    // Set by the browser itself; scripts cannot forge it.
    if let Some(site) = h.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => None,
            Ok(v) => Some(format!("cross-site request (Sec-Fetch-Site: {v})")),
            Err(_) => Some("cross-site request (Sec-Fetch-Site unreadable)".into()),
        };
    }
    let origin = h.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let target = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match (origin_host, target) {
        (Some(o), Some(t)) if o.eq_ignore_ascii_case(t) => None,
        _ => Some(format!(
            "cross-site request (Origin {origin} for {})",
            target.unwrap_or("an unknown host")
        )),
    }
}

/// Whether the body is declared as JSON (`application/json`, parameters
/// such as `charset` allowed).
fn declares_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_requests_from_this_origin_pass() {
        let uri: Uri = "/api/requests/x/approve".parse().unwrap();
        for (h, ok) in [
            (headers(&[]), true),
            (headers(&[("sec-fetch-site", "same-origin")]), true),
            (headers(&[("sec-fetch-site", "none")]), true),
            (headers(&[("sec-fetch-site", "same-site")]), false),
            (headers(&[("sec-fetch-site", "cross-site")]), false),
            (
                headers(&[
                    ("host", "gw.example:8443"),
                    ("origin", "https://gw.example:8443"),
                ]),
                true,
            ),
            (
                headers(&[
                    ("host", "GW.example:8443"),
                    ("origin", "https://gw.example:8443"),
                ]),
                true,
            ),
            (
                headers(&[
                    ("host", "gw.example:8443"),
                    ("origin", "https://evil.example"),
                ]),
                false,
            ),
            (
                headers(&[
                    ("host", "gw.example:8443"),
                    ("origin", "https://gw.example:9443"),
                ]),
                false,
            ),
            (
                headers(&[("host", "gw.example:8443"), ("origin", "null")]),
                false,
            ),
            (headers(&[("origin", "https://gw.example:8443")]), false),
            // The browser's own header decides over Origin.
            (
                headers(&[
                    ("sec-fetch-site", "cross-site"),
                    ("host", "gw.example:8443"),
                    ("origin", "https://gw.example:8443"),
                ]),
                false,
            ),
        ] {
            assert_eq!(cross_site(&h, &uri).is_none(), ok, "{h:?}");
        }
        // HTTP/2 names the target in the URI's authority, not in Host.
        let uri: Uri = "https://gw.example:8443/api/logout".parse().unwrap();
        assert!(cross_site(&headers(&[("origin", "https://gw.example:8443")]), &uri).is_none());
    }

    #[test]
    fn only_json_bodies_pass() {
        for (v, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/x-www-form-urlencoded", false),
            ("multipart/form-data; boundary=x", false),
            ("text/plain", false),
            ("application/jsonp", false),
        ] {
            assert_eq!(declares_json(&headers(&[("content-type", v)])), ok, "{v}");
        }
        assert!(!declares_json(&HeaderMap::new()));
    }
}
