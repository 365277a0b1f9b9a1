//! The gateway's operations endpoints (`/metrics`, `/healthz`, `/readyz`)
//! as a scraper sees them: curl over HTTPS, trusting the test CA, without
//! a token.

use std::process::Command;

use super::{Config, GatewayProc, World, stderr, stdout};

/// Turns the command center (and so the operations endpoints) on, on a
/// free port.
pub fn http(c: &mut Config) {
    c.http.listen = Some("127.0.0.1:0".into());
}

/// One answer: status, `Content-Type` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// `GET path` on the gateway's command-center listener, with `accept` as
/// the `Accept` header if given.
pub fn get(w: &World, gw: &GatewayProc, path: &str, accept: Option<&str>) -> Answer {
    let port = gw.http_addr().port();
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code} %{content_type}", "--cacert"])
        .arg(w.certs.ca_cert())
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some(a) = accept {
        c.args(["-H", &format!("Accept: {a}")]);
    }
    let out = c
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (status, content_type) = last.split_once(' ').unwrap_or((last, ""));
    Answer {
        status: status.parse().unwrap_or(0),
        content_type: content_type.to_string(),
        body: body.to_string(),
    }
}

/// `/metrics` in Prometheus text, which must answer 200.
pub fn scrape(w: &World, gw: &GatewayProc) -> Metrics {
    let a = get(w, gw, "/metrics", None);
    assert_eq!(a.status, 200, "{a:?}");
    Metrics(a.body)
}

/// A scraped exposition.
#[derive(Debug, Clone)]
pub struct Metrics(pub String);

impl Metrics {
    /// The value of `series` (its name and labels exactly as exposed, e.g.
    /// `custody_refusals_total{reason="spool_full"}`); panics if absent.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.0))
    }
}

/// A POST to the command center with curl: (status, body). `headers` are
/// sent as they are; `body` with them (nothing sets a content type).
pub fn spawn_post(
    w: &World,
    gw: &GatewayProc,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> std::process::Child {
    let mut c = Command::new("curl");
    c.args(["-sS", "-X", "POST", "-w", "\n%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert());
    for h in headers {
        c.args(["-H", h]);
    }
    if let Some(b) = body {
        c.args(["--data-binary", b]);
    }
    c.arg(format!("https://localhost:{}{path}", gw.http_addr().port()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a [`spawn_post`]: (status, body).
pub fn answer(c: std::process::Child) -> (u16, String) {
    let out = c.wait_with_output().unwrap();
    let s = stdout(&out);
    let (body, code) = s.rsplit_once('\n').unwrap_or(("", &s));
    let code = code.trim().parse().unwrap_or(0);
    // A failed transfer: say why.
    let body = if code == 0 {
        stderr(&out)
    } else {
        body.to_string()
    };
    (code, body)
}

/// `GET path` on the command center at `http` over HTTPS (curl, trusting
/// the test CA), with `token` as the viewer's bearer token if given:
/// (status, body).
pub fn get_as(
    w: &World,
    http: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, Vec<u8>) {
    let body = w.path(&format!("curl-{}-{}.out", std::process::id(), unique()));
    let mut c = Command::new("curl");
    c.args(["-s", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert())
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", http.port())]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = c
        .arg(format!("https://localhost:{}{path}", http.port()))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
    let b = std::fs::read(&body).unwrap_or_default();
    let _ = std::fs::remove_file(&body);
    (code, b)
}

/// A number no other call in this process got: concurrent requests write
/// their bodies to files of their own.
fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
