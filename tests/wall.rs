//! The command center end to end: Debian's chromium (headless, driven by
//! playwright-core) signs in to the wall and watches a live feed from
//! `custody record --test-source` and a stored recording in S3 (Garage);
//! ffmpeg reads the LL-HLS and VOD playlists; every viewer role is held to
//! what it may see, and the audit trail records it all and verifies.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use custody::config::{ViewerConfig, ViewerRole};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Viewers of the test gateway: (name, role, unit).
const VIEWERS: &[(&str, ViewerRole, &str)] = &[
    ("sup", ViewerRole::Supervisor, ""),
    ("op-market", ViewerRole::Operator, "market"),
    ("op-office", ViewerRole::Operator, "office"),
    ("aud", ViewerRole::Auditor, ""),
];

/// Each viewer's token: fixed per name (the gateway keeps only its hash).
fn token(name: &str) -> String {
    format!("test-token-{name}-0123456789abcdef")
}

fn wall_world(backend: Backend) -> World {
    World::with_config(backend, |c| {
        c.http.listen = Some("127.0.0.1:0".into());
        for (name, role, unit) in VIEWERS {
            c.viewers.push(ViewerConfig {
                name: name.to_string(),
                role: *role,
                unit: unit.to_string(),
                token_sha256: Some(sha256_hex(token(name).as_bytes())),
                clearances: Vec::new(),
            });
        }
    })
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(custody::chain::sha256(b))
}

/// Makes a 6 s H.264/AAC MP4 with ffmpeg and docks it as `bwc-1`'s
/// recording `stored-0001`; returns its path.
fn dock_stored(w: &World, gw: &GatewayProc) -> PathBuf {
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("stored-0001.mp4");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=6")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=6"])
        .args(["-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        media.join("stored-0001.mp4.json"),
        r#"{"recording_id":"stored-0001","officer":"o-1001","occasion":"on-site-inspection",
            "category":"market","case_id":"case-wall-1","started_at":"2026-11-30T09:00:00+08:00",
            "proof_object":"shop inspection"}"#,
    )
    .unwrap();
    let (out, results) = w.dock(
        "rack-1",
        gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results[0]["result"], "archived", "{}", stdout(&out));
    assert_eq!(
        results[0]["derivation"]["status"],
        "derived",
        "{}",
        stdout(&out)
    );
    file
}

/// Docks a short H.265 + AAC MP4 (libx265) as `bwc-1`, case `case-wall-2`.
fn dock_hevc(w: &World, gw: &GatewayProc) -> PathBuf {
    let media = w.path("media-hevc");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("stored-hevc.mp4");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=3")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"])
        .args(["-x265-params", "log-level=error", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        media.join("stored-hevc.mp4.json"),
        r#"{"recording_id":"stored-hevc","officer":"o-1001","occasion":"on-site-inspection",
            "category":"market","case_id":"case-wall-2","started_at":"2026-11-30T10:00:00+08:00",
            "proof_object":"shop inspection"}"#,
    )
    .unwrap();
    let (out, results) = w.dock(
        "rack-1",
        gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results[0]["result"], "archived", "{}", stdout(&out));
    assert_eq!(
        results[0]["derivation"]["status"],
        "derived",
        "{}",
        stdout(&out)
    );
    file
}

/// `custody record --test-source` as `bwc-1`.
fn record(w: &World, gw: &GatewayProc, id: &str, secs: u32) -> KillOnDrop {
    let child = Command::new(BIN)
        .arg("record")
        .args(["--gateway", &gw.addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .arg("--state-dir")
        .arg(w.path(&format!("rec-{id}")))
        .args(["--officer", "o-1001", "--occasion", "on-site-inspection"])
        .args(["--case", "case-wall-1", "--recording-id", id])
        .args(["--test-source", "--duration", &secs.to_string(), "--json"])
        .current_dir(w.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// An HTTPS request with curl, checking the gateway's certificate against
/// the test CA: (status, body).
fn get(w: &World, http: SocketAddr, path: &str, who: Option<&str>) -> (u16, Vec<u8>) {
    common::ops::get_as(w, http, path, who.map(token).as_deref())
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

/// Waits until the live list (as `sup` sees it) shows `id` playable.
fn wait_live(w: &World, http: SocketAddr, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, b) = get(w, http, "/api/live", Some("sup"));
        if code == 200
            && json(&b).as_array().unwrap().iter().any(|r| {
                r["recording_id"] == id && r["playable"] == true && r["codecs"].is_string()
            })
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "live feed {id} never listed: {code} {}",
            String::from_utf8_lossy(&b)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs ffmpeg on a playlist of the gateway (as `who`), copying `secs` of
/// it into an MP4: (success, stderr, duration of what it wrote).
fn ffmpeg_read(
    w: &World,
    http: SocketAddr,
    path: &str,
    who: &str,
    secs: u32,
    out: &Path,
) -> (bool, String, f64) {
    let o = Command::new("ffmpeg")
        .args(["-v", "error", "-headers"])
        .arg(format!("Authorization: Bearer {}\r\n", token(who)))
        .args(["-tls_verify", "1", "-ca_file"])
        .arg(w.certs.ca_cert())
        .args(["-rw_timeout", "20000000", "-i"])
        .arg(format!("https://localhost:{}{path}", http.port()))
        .args(["-t", &secs.to_string(), "-c", "copy", "-y"])
        .arg(out)
        .output()
        .unwrap();
    let dur = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(out)
        .output()
        .ok()
        .and_then(|p| String::from_utf8_lossy(&p.stdout).trim().parse().ok())
        .unwrap_or(0.0);
    (o.status.success(), stderr(&o), dur)
}

/// `custody audit list --json` entries.
fn audit_entries(w: &World) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["audit", "list", "--json", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn has(entries: &[serde_json::Value], viewer: &str, action: &str, status: u16, path: &str) -> bool {
    entries.iter().any(|e| {
        e["viewer"] == viewer && e["action"] == action && e["status"] == status && e["path"] == path
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_playlists_and_audit() {
    let w = wall_world(Backend::Local);
    let gw = w.gateway();
    let http = gw.http_addr();
    let original = dock_stored(&w, &gw);
    let rec = record(&w, &gw, "live-auth", 40);
    wait_live(&w, http, "live-auth");

    let live_master = "/live/bwc-1/live-auth/master.m3u8";
    let live_index = "/live/bwc-1/live-auth/index.m3u8";
    let vod_index = "/rec/bwc-1/stored-0001/index.m3u8";
    let download = "/rec/bwc-1/stored-0001/original";

    // Nobody logged in: 401 and an error, nothing else.
    for path in [
        "/api/live",
        "/api/recordings",
        live_master,
        live_index,
        vod_index,
        download,
    ] {
        let (code, b) = get(&w, http, path, None);
        assert_eq!(code, 401, "{path}");
        assert_eq!(
            json(&b),
            serde_json::json!({"error": "log in first"}),
            "{path}"
        );
    }
    // The wall's page itself is public (it asks for a token).
    let (code, page) = get(&w, http, "/", None);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("hls.min.js"));
    assert_eq!(get(&w, http, "/hls.min.js", None).0, 200);

    // Which role sees what: (viewer, path, status).
    let table: &[(&str, &str, u16)] = &[
        ("op-office", live_master, 403),
        ("op-office", vod_index, 403),
        ("op-market", live_master, 200),
        ("op-market", vod_index, 403),
        ("op-market", "/api/recordings", 403),
        ("aud", live_master, 403),
        ("aud", vod_index, 200),
        ("aud", "/api/recordings?case=case-wall-1", 200),
        ("sup", live_master, 200),
        ("sup", vod_index, 200),
    ];
    for (who, path, want) in table {
        let (code, b) = get(&w, http, path, Some(who));
        assert_eq!(code, *want, "{who} {path}: {}", String::from_utf8_lossy(&b));
        if *want == 403 {
            assert_eq!(
                json(&b),
                serde_json::json!({"error": "not allowed for your role"})
            );
        }
    }
    // The master playlist names the codecs (the test camera's x264
    // constrained baseline 3.0 and AAC-LC) and a measured bandwidth.
    let (_, b) = get(&w, http, live_master, Some("sup"));
    let master = String::from_utf8_lossy(&b).to_string();
    assert!(
        master.contains("CODECS=\"avc1.42c01e,mp4a.40.2\""),
        "{master}"
    );
    // Whether a live recording exists is shown only to who may watch it.
    let ghost = "/live/bwc-1/no-such-recording/master.m3u8";
    assert_eq!(get(&w, http, ghost, Some("sup")).0, 404);
    assert_eq!(get(&w, http, ghost, Some("op-market")).0, 403);
    // Operators see only their unit's feeds in the list.
    let (_, b) = get(&w, http, "/api/live", Some("op-office"));
    assert_eq!(json(&b), serde_json::json!([]));
    let (_, b) = get(&w, http, "/api/live", Some("op-market"));
    assert_eq!(json(&b)[0]["recording_id"], "live-auth");
    // A client certificate from `custody certs viewer` logs the viewer in
    // without a token; a device's certificate identifies nobody.
    let certs = w.certs.ca_cert().parent().unwrap().to_path_buf();
    let o = Command::new(BIN)
        .args(["certs", "viewer", "--dir"])
        .arg(&certs)
        .arg("op-market")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let with_cert = |cert: &Path, key: &Path| {
        let o = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--cacert"])
            .arg(w.certs.ca_cert())
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", http.port())])
            .arg(format!("https://localhost:{}/api/live", http.port()))
            .output()
            .unwrap();
        let text = stdout(&o);
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    let (code, body) = with_cert(
        &certs.join("viewers/op-market.pem"),
        &certs.join("viewers/op-market.key"),
    );
    assert_eq!(code, "200", "{body}");
    assert_eq!(json(body.as_bytes())[0]["recording_id"], "live-auth");
    let (code, _) = with_cert(&w.certs.device_cert("bwc-1"), &w.certs.device_key("bwc-1"));
    assert_eq!(code, "401");
    // The auditor's search finds the docked recording, without storage keys.
    let (_, b) = get(&w, http, "/api/recordings?case=case-wall-1", Some("aud"));
    let found = json(&b);
    let item = found
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["recording_id"] == "stored-0001")
        .unwrap_or_else(|| panic!("stored recording not found: {found}"));
    assert_eq!(item["playable"], true);
    assert!(
        !String::from_utf8_lossy(&b).contains("records/"),
        "storage keys leaked: {found}"
    );

    // The download is the original, byte for byte.
    let (code, b) = get(&w, http, download, Some("aud"));
    assert_eq!(code, 200);
    assert_eq!(sha256_hex(&b), sha256_file(&original));

    // LL-HLS: parts, preload hint, and a blocking reload that waits for the
    // next part.
    let (_, b) = get(&w, http, live_index, Some("sup"));
    let pl = String::from_utf8_lossy(&b).to_string();
    assert!(pl.contains("#EXT-X-PART-INF:PART-TARGET="), "{pl}");
    assert!(pl.contains("CAN-BLOCK-RELOAD=YES"), "{pl}");
    let hint = pl
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-"))
        .unwrap_or_else(|| panic!("no preload hint: {pl}"));
    let (msn, part) = hint.trim_end_matches(".m4s\"").split_once('.').unwrap();
    let t0 = Instant::now();
    let (code, b) = get(
        &w,
        http,
        &format!("{live_index}?_HLS_msn={msn}&_HLS_part={part}"),
        Some("sup"),
    );
    assert_eq!(code, 200);
    let next = String::from_utf8_lossy(&b).to_string();
    assert!(
        next.contains(&format!("URI=\"part-{msn}.{part}.m4s\"")),
        "the blocking reload returned without part {msn}.{part} after {:?}: {next}",
        t0.elapsed()
    );
    let (code, b) = get(
        &w,
        http,
        &format!("/live/bwc-1/live-auth/part-{msn}.{part}.m4s"),
        Some("sup"),
    );
    assert_eq!(code, 200);
    assert!(!b.is_empty());

    // ffmpeg reads both playlists over HTTPS, verifying the gateway. It
    // plays only whole segments (not parts): wait for a few.
    let deadline = Instant::now() + Duration::from_secs(30);
    while String::from_utf8_lossy(&get(&w, http, live_index, Some("sup")).1)
        .matches("#EXTINF")
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "no complete live segments");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (ok, err, dur) = ffmpeg_read(&w, http, live_master, "op-market", 4, &w.path("live.mp4"));
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg on the LL-HLS playlist: {err}"
    );
    assert!(dur >= 3.5, "ffmpeg copied {dur} s of the live feed");
    let vod_master = "/rec/bwc-1/stored-0001/master.m3u8";
    let (ok, err, dur) = ffmpeg_read(&w, http, vod_master, "aud", 60, &w.path("vod.mp4"));
    assert!(
        ok && err.trim().is_empty(),
        "ffmpeg on the VOD playlist: {err}"
    );
    assert!(
        (dur - 6.0).abs() < 0.5,
        "ffmpeg copied {dur} s of a 6 s recording"
    );
    let st = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(w.path("vod.mp4"))
        .output()
        .unwrap();
    assert_eq!(
        stdout(&st).trim(),
        "150",
        "every frame of the stored recording plays"
    );

    // H.265, which browsers mostly cannot play: listed as not playable with
    // its codec named, and offered as a download of the original.
    let hevc = dock_hevc(&w, &gw);
    let item = eventually(30, "the H.265 recording in the catalog", || {
        let (_, b) = get(&w, http, "/api/recordings?case=case-wall-2", Some("aud"));
        let found = json(&b);
        async move {
            found
                .as_array()?
                .iter()
                // Listed once its original is stored; its codecs once the
                // derivation has been read (a moment later on a busy machine).
                .find(|r| r["recording_id"] == "stored-hevc" && r["codecs"].is_string())
                .cloned()
        }
    })
    .await;
    assert_eq!(item["playable"], false, "{item}");
    assert!(
        item["codecs"].as_str().unwrap().starts_with("hvc1."),
        "{item}"
    );
    let (code, b) = get(&w, http, item["download"].as_str().unwrap(), Some("aud"));
    assert_eq!(code, 200);
    assert_eq!(sha256_hex(&b), sha256_file(&hevc));

    // A wrong token is refused at login too.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert())
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", http.port())])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"token":"wrong"}"#,
        ])
        .arg(format!("https://localhost:{}/api/login", http.port()))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "401");

    drop(rec);

    // Everything above is in the audit trail in storage, which verifies.
    let entries = eventually(60, "the audit trail in storage", || {
        let entries = audit_entries(&w);
        async move {
            (has(&entries, "aud", "download", 200, download)
                && entries.iter().any(|e| e["action"] == "login-refused"))
            .then_some(entries)
        }
    })
    .await;
    for (path, who, action, status) in [
        (live_master, "-", "refused", 401),
        (download, "-", "refused", 401),
        (live_master, "op-office", "refused", 403),
        (vod_index, "op-market", "refused", 403),
        (live_master, "aud", "refused", 403),
        (live_master, "op-market", "watch-live", 200),
        (vod_index, "aud", "open-stored", 200),
        ("/api/recordings", "aud", "search", 200),
    ] {
        assert!(
            has(&entries, who, action, status, path),
            "no audit entry {who} {action} {status} {path} in {entries:#?}"
        );
    }
    let out = Command::new(BIN)
        .args(["audit", "verify", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("OK records/_audit/"),
        "{}",
        stdout(&out)
    );
}

/// Where the browser test leaves its screenshots (kept after the test).
/// An HTTPS POST of a JSON body with curl (as `who`): (status, body).
fn post_json(w: &World, http: SocketAddr, path: &str, who: &str, body: &str) -> (u16, Vec<u8>) {
    let out_file = w.path(&format!("curl-post-{}.out", std::process::id()));
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert())
        .args(["--resolve", &format!("localhost:{}:127.0.0.1", http.port())])
        .args(["-H", &format!("Authorization: Bearer {}", token(who))])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("https://localhost:{}{path}", http.port()))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
    let b = std::fs::read(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    (code, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locator_that_leads_to_another_recording_is_refused_and_audited() {
    let w = wall_world(Backend::Local);
    let gw = w.gateway();
    let http = gw.http_addr();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    for (id, seed) in [("rec-a", 1), ("rec-b", 2)] {
        write_random_file(&media.join(format!("{id}.bin")), 200_000 + seed, seed);
        std::fs::write(
            media.join(format!("{id}.bin.json")),
            format!(r#"{{"recording_id":"{id}","category":"market"}}"#),
        )
        .unwrap();
    }
    let (out, _) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    // Someone with write access to storage swaps the two locators.
    let store = w.store().await;
    let (ka, kb) = (
        "index/recordings/bwc-1/rec-a.json",
        "index/recordings/bwc-1/rec-b.json",
    );
    let (la, lb) = (
        store.get_bytes(ka, 1 << 20).await.unwrap(),
        store.get_bytes(kb, 1 << 20).await.unwrap(),
    );
    let put = |k: &'static str, b: bytes::Bytes| {
        let store = store.clone();
        async move {
            let h = custody::chain::sha256(&b);
            store.put_bytes(k, b, &h).await.unwrap();
        }
    };
    put(ka, lb.clone()).await;
    put(kb, la.clone()).await;

    // Asked for rec-a, the wall finds rec-b: it serves nothing of it.
    let download = "/rec/bwc-1/rec-a/original";
    for path in [download, "/rec/bwc-1/rec-a/index.m3u8"] {
        let (code, b) = get(&w, http, path, Some("sup"));
        assert_eq!(code, 409, "{path}: {}", String::from_utf8_lossy(&b));
        assert!(
            json(&b)["error"]
                .as_str()
                .unwrap()
                .contains("leads this recording to another one"),
            "{}",
            String::from_utf8_lossy(&b)
        );
    }
    let (code, b) = post_json(
        &w,
        http,
        "/api/requests",
        "sup",
        r#"{"kind":"export","recording":"bwc-1/rec-a","reason":"court order"}"#,
    );
    assert_eq!(code, 409, "{}", String::from_utf8_lossy(&b));
    // Each refusal is audited, under the recording asked for, with why.
    let refused = eventually(30, "the refusals in the audit trail", || async {
        let es: Vec<serde_json::Value> = audit_entries(&w)
            .into_iter()
            .filter(|e| {
                e["action"] == "refused"
                    && e["status"] == 409
                    && e["recording"] == "bwc-1/rec-a"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("names bwc-1/rec-b"))
            })
            .collect();
        (es.len() >= 3).then_some(es)
    })
    .await;
    assert!(
        refused
            .iter()
            .any(|e| e["path"] == download && e["viewer"] == "sup"),
        "{refused:#?}"
    );

    // With the locators put back, rec-a is served, byte for byte.
    put(ka, la).await;
    put(kb, lb).await;
    let (code, b) = get(&w, http, download, Some("sup"));
    assert_eq!(code, 200);
    assert_eq!(b, std::fs::read(media.join("rec-a.bin")).unwrap());
}

fn artifacts() -> PathBuf {
    let d = Path::new(ROOT).join("target/test-artifacts/wall");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The gateway's last "ingest to playable" figure: (parts, p50 ms, p99 ms).
fn ingest_latency(log: &str) -> Option<(u64, u64, u64)> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("live latency ingest to playable part"))?;
    let field = |name: &str| -> Option<u64> {
        let rest = &line[line.find(&format!("{name}="))? + name.len() + 1..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((field("parts")?, field("p50_ms")?, field("p99_ms")?))
}

#[tokio::test(flavor = "multi_thread")]
async fn wall_in_chromium_plays_live_and_stored() {
    let driver = Path::new(ROOT).join("tests/browser/node_modules/playwright-core");
    assert!(
        driver.exists(),
        "the browser test needs playwright-core: run scripts/setup.sh (npm ci --prefix tests/browser)"
    );
    let w = wall_world(Backend::Garage);
    let gw = w.gateway();
    let http = gw.http_addr();
    dock_stored(&w, &gw);
    let rec = record(&w, &gw, "live-wall", 180);
    wait_live(&w, http, "live-wall");

    let out_dir = artifacts();
    let out = Command::new("node")
        .arg(Path::new(ROOT).join("tests/browser/wall.mjs"))
        .args(["--url", &format!("https://127.0.0.1:{}", http.port())])
        .args(["--token", &token("sup"), "--stored-device", "bwc-1"])
        .args(["--timeout", "60", "--latency-samples", "10", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    drop(rec);
    let result: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
        panic!(
            "wall.mjs printed no result ({e}): {}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    assert!(
        out.status.success() && result["ok"] == true,
        "the wall failed: {result:#}\n{}",
        stderr(&out)
    );
    // Live: decoded frames and advancing time, in low-latency mode.
    let live = &result["live"];
    assert_eq!(live["id"], "bwc-1/live-wall");
    assert!(live["frames_grown"].as_u64().unwrap() > 0, "{live}");
    assert!(live["advanced_s"].as_f64().unwrap() > 0.5, "{live}");
    assert_eq!(live["width"], 640);
    assert_eq!(live["lowLatencyMode"], true);
    // Stored: the docked recording played from S3 through the gateway.
    let stored = &result["stored"];
    assert_eq!(stored["id"], "bwc-1/stored-0001");
    assert!(stored["frames_grown"].as_u64().unwrap() > 0, "{stored}");
    assert!(stored["advanced_s"].as_f64().unwrap() > 0.5, "{stored}");
    for shot in result["screenshots"].as_array().unwrap() {
        assert!(Path::new(shot.as_str().unwrap()).exists());
    }
    // Glass-to-glass: the barcode the test camera burns into each frame,
    // read back from the decoded picture in the browser.
    let g2g = &result["latency_ms"];
    assert!(
        g2g["samples"].as_u64().unwrap() >= 5,
        "barcode unreadable: {g2g}"
    );
    let p50 = g2g["p50"].as_i64().unwrap();
    assert!(p50 > 0, "a frame shown before it was captured: {g2g}");
    let ingest = ingest_latency(&gw.log());
    eprintln!(
        "wall: glass-to-glass p50 {p50} ms (min {}, max {}, {} samples); ingest to playable {:?} (parts, p50 ms, p99 ms); screenshots in {}",
        g2g["min"],
        g2g["max"],
        g2g["samples"],
        ingest,
        out_dir.display()
    );
    assert!(
        ingest.is_some_and(|(n, _, _)| n > 0),
        "the gateway measured no parts"
    );
}
