//! Retention, confidentiality and two-person requests (R5, R6): against
//! Garage, which does not enforce retention (the gateway refuses early
//! deletion and says storage does not), and against moto in server mode,
//! which enforces S3 Object Lock (a conformance check of the lock path).

mod common;

use std::process::{Command, Output};

use common::ops::{answer, spawn_post};
use common::*;
use custody::config::{ViewerConfig, ViewerRole};
use custody_format::confidentiality::Mark;

/// (name, role, unit, clearances)
const VIEWERS: &[(&str, ViewerRole, &str, &[Mark])] = &[
    ("sup-a", ViewerRole::Supervisor, "", &[]),
    (
        "sup-b",
        ViewerRole::Supervisor,
        "",
        &[Mark::PersonalPrivacy],
    ),
    ("aud", ViewerRole::Auditor, "", &[]),
];

fn token(name: &str) -> String {
    format!("retention-token-{name}-0123456789")
}

fn world(backend: Backend) -> World {
    let mut w = World::with_config(backend, |c| {
        c.http.listen = Some("127.0.0.1:0".into());
        for (name, role, unit, clear) in VIEWERS {
            c.viewers.push(ViewerConfig {
                name: name.to_string(),
                role: *role,
                unit: unit.to_string(),
                token_sha256: Some(hex::encode(custody::chain::sha256(token(name).as_bytes()))),
                clearances: clear.to_vec(),
            });
        }
    });
    // Every process runs on a clock set to Wednesday 2 December 2026,
    // 10:00 in Beijing, whatever day the test runs on.
    w.set_clock(NOW);
    w
}

/// The world's time when a test starts.
const NOW: &str = "2026-12-02T02:00:00Z";

/// `custody <args>` as viewer `who` against the gateway's API.
fn api(w: &World, gw: &GatewayProc, who: &str, args: &[&str]) -> Output {
    w.command()
        .args(args)
        .arg("-c")
        .arg(&w.config)
        .args([
            "--url",
            &format!("https://localhost:{}", gw.http_addr().port()),
        ])
        .args(["--token", &token(who)])
        .output()
        .unwrap()
}

fn ok_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Docks a small recording `id` with the given end of recording.
fn dock(w: &World, gw: &GatewayProc, id: &str, ended: &str) -> serde_json::Value {
    dock_as(
        w,
        gw,
        id,
        &format!(r#""started_at":"{ended}","ended_at":"{ended}""#),
        None,
    )
}

/// Docks a small recording `id` whose sidecar adds `meta` (JSON fields),
/// from rack-1 running on its own clock `rack_clock` if given (else the
/// world's).
fn dock_as(
    w: &World,
    gw: &GatewayProc,
    id: &str,
    meta: &str,
    rack_clock: Option<&str>,
) -> serde_json::Value {
    let dir = w.path(&format!("dock-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    write_random_file(&dir.join(format!("{id}.mp4")), 200_000, id.len() as u64);
    std::fs::write(
        dir.join(format!("{id}.mp4.json")),
        format!(r#"{{"recording_id":"{id}","officer":"o-1001","category":"market",{meta}}}"#),
    )
    .unwrap();
    let mut cmd = w.client_cmd("dock", "rack-1", gw);
    if let Some(c) = rack_clock {
        TestClock::at(c).apply(&mut cmd);
    }
    let out = cmd
        .args(["--json", "--retry-for-secs", "20", "--recorder", "bwc-1"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let results: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(results[0]["result"], "archived", "{results:?}");
    results[0].clone()
}

/// `custody retention list <args>`, which must succeed.
fn retention_list(w: &World, args: &[&str]) -> Output {
    let o = w
        .command()
        .args(["retention", "list", "-c"])
        .arg(&w.config)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// POSTs a JSON `body` to the command center as viewer `who`: the status
/// and the answer's body.
fn post(w: &World, gw: &GatewayProc, who: &str, path: &str, body: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(w.certs.ca_cert())
        .args(["-H", &format!("Authorization: Bearer {}", token(who))])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("https://localhost:{}{path}", gw.http_addr().port()))
        .output()
        .unwrap();
    let out = stdout(&o);
    let (answer, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), answer.to_string())
}

/// A stored manifest.
async fn manifest(w: &World, key: &str) -> serde_json::Value {
    let b = w.store().await.get_bytes(key, 1 << 20).await.unwrap();
    serde_json::from_slice(&b).unwrap()
}

fn audit(w: &World) -> Vec<serde_json::Value> {
    let o = w
        .command()
        .args(["audit", "list", "--json", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn garage_retention_requests_and_marks() {
    let mut w = world(Backend::Garage);
    let gw = w.gateway();
    assert!(
        gw.log().contains("storage does NOT enforce retention"),
        "the gateway says plainly that Garage does not enforce retention"
    );
    // Ended in 2023, ended an hour ago: both are kept at least 2 years
    // from their receipt today, to 2028.
    let old = dock(&w, &gw, "old-2023", "2023-01-10T09:00:00+08:00");
    let new = dock(&w, &gw, "fresh", "2026-12-02T01:00:00Z");

    // Listing reads storage; nothing has expired yet.
    let o = retention_list(&w, &["--expired"]);
    assert!(
        stderr(&o).contains("storage does NOT enforce retention"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "", "nothing expired yet");
    let o = retention_list(&w, &["--json"]);
    let line = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["recording"] == "bwc-1/old-2023")
        .expect("old-2023 is listed");
    assert!(
        line["until"]
            .as_str()
            .unwrap()
            .starts_with("2028-12-02T02:0"),
        "{line}"
    );
    assert_eq!(line["expired"], false, "{line}");

    // Neither can be deleted: the request is refused with why.
    for r in ["bwc-1/fresh", "bwc-1/old-2023"] {
        let o = api(
            &w,
            &gw,
            "aud",
            &["request", "delete", r, "--reason", "tidy up"],
        );
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("409") && stderr(&o).contains("retained until 2028-12-02T02:0"),
            "{r}: {}",
            stderr(&o)
        );
    }

    // Years out of bounds are refused with the limit named — by the API
    // (400; 10000 used to answer 200 with `until == from`, 4294967295 an
    // earlier `until`, 2147483647 a panic) and by the command line before
    // it sends anything — and nothing is stored.
    let raise_path = "/api/recordings/bwc-1/fresh/retention";
    let before = manifest(&w, new["manifest_key"].as_str().unwrap()).await;
    for years in ["10000", "4294967295", "2147483647", "201"] {
        let body = format!(r#"{{"class":"standard","years":{years}}}"#);
        let (code, answer) = post(&w, &gw, "sup-a", raise_path, &body);
        assert_eq!(code, 400, "{years}: {answer}");
        assert!(
            answer.contains(&format!("at most 200 years, not {years}")),
            "{years}: {answer}"
        );
    }
    let o = api(
        &w,
        &gw,
        "sup-a",
        &["retention", "raise", "bwc-1/fresh", "--years", "10000"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("at most 200 years, not 10000"),
        "{}",
        stderr(&o)
    );
    let fresh = manifest(&w, new["manifest_key"].as_str().unwrap()).await;
    assert_eq!(fresh, before, "nothing was stored");
    assert_eq!(fresh["retention"]["years"], 2, "{fresh:#}");
    // A raise in bounds ends later, from the same start.
    let r = ok_json(&api(
        &w,
        &gw,
        "sup-a",
        &["retention", "raise", "bwc-1/fresh", "--years", "200"],
    ));
    assert_eq!(r["retention"]["years"], 200, "{r}");
    assert_eq!(r["retention"]["from"], fresh["retention"]["from"], "{r}");
    let until = r["retention"]["until"].as_str().unwrap();
    assert!(until.starts_with("2226-12-02T"), "{r}");
    assert_eq!(
        until[10..],
        r["retention"]["from"].as_str().unwrap()[10..],
        "the same time of day: {r}"
    );

    // Retention is raised (permanent), never lowered; auditors cannot raise it.
    let o = api(
        &w,
        &gw,
        "aud",
        &[
            "retention",
            "raise",
            "bwc-1/fresh",
            "--permanent",
            "major-case",
        ],
    );
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    let r = ok_json(&api(
        &w,
        &gw,
        "sup-a",
        &[
            "retention",
            "raise",
            "bwc-1/fresh",
            "--permanent",
            "major-case",
            "--note",
            "case C-7",
        ],
    ));
    assert_eq!(r["retention"]["class"], "permanent", "{r}");
    assert_eq!(r["storage"]["enforced_by"], "gateway", "{r}");
    let o = api(
        &w,
        &gw,
        "sup-a",
        &["retention", "raise", "bwc-1/fresh", "--years", "5"],
    );
    assert!(stderr(&o).contains("never lowered"), "{}", stderr(&o));
    let (ok, v) = w.verify_json(new["manifest_key"].as_str().unwrap());
    assert!(ok, "the raise is a signed annotation: {v}");

    // Two years and a day later, the gateway restarted: old-2023 has expired.
    drop(gw);
    w.set_clock("2028-12-03T02:00:00Z");
    let gw = w.gateway();
    let o = retention_list(&w, &["--expired"]);
    assert!(stdout(&o).contains("bwc-1/old-2023"), "{}", stdout(&o));
    assert!(stdout(&o).contains("  EXPIRED"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("bwc-1/fresh"), "{}", stdout(&o));

    // Deleting the expired one takes two people.
    let req = ok_json(&api(
        &w,
        &gw,
        "aud",
        &[
            "request",
            "delete",
            "bwc-1/old-2023",
            "--reason",
            "retention over",
        ],
    ));
    let id = req["id"].as_str().unwrap();
    assert_eq!(req["status"], "pending");
    let o = api(&w, &gw, "aud", &["request", "approve", id]);
    assert!(
        stderr(&o).contains("403"),
        "auditors do not approve: {}",
        stderr(&o)
    );
    let done = ok_json(&api(
        &w,
        &gw,
        "sup-a",
        &["request", "approve", id, "--note", "checked"],
    ));
    assert_eq!(done["status"], "done", "{done}");
    let store = w.store().await;
    let prefix = old["manifest_key"]
        .as_str()
        .unwrap()
        .trim_end_matches("/manifest.json")
        .to_string();
    let left: Vec<String> = store
        .list(&format!("{prefix}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        left,
        [
            format!("{prefix}/deleted.json"),
            format!("{prefix}/deleted.sig")
        ]
    );
    // The deletion record is signed by the gateway key.
    let record = store.get_bytes(&left[0], 1 << 20).await.unwrap();
    let sig = store.get_bytes(&left[1], 1 << 20).await.unwrap();
    let key = custody::signing::SigningKey::from_pem(
        &std::fs::read_to_string(w.certs.dir.join("signing.key")).unwrap(),
    )
    .unwrap();
    assert!(custody::signing::verify(&key.public(), &record, &sig));
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["requested_by"], "aud");
    assert_eq!(record["approved_by"], "sup-a");
    // Gone from the catalog too.
    let o = w
        .command()
        .args(["list", "--json", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    assert!(!stdout(&o).contains("old-2023"), "{}", stdout(&o));

    // Export: requested by one supervisor, approved by another, fetched by
    // the first, and verified with standard tools.
    let req = ok_json(&api(
        &w,
        &gw,
        "sup-a",
        &[
            "request",
            "export",
            "bwc-1/fresh",
            "--reason",
            "court order 17",
        ],
    ));
    let id = req["id"].as_str().unwrap().to_string();
    let o = api(&w, &gw, "sup-a", &["request", "approve", &id]);
    assert!(
        stderr(&o).contains("403"),
        "the requester cannot approve: {}",
        stderr(&o)
    );
    let done = ok_json(&api(&w, &gw, "sup-b", &["request", "approve", &id]));
    assert_eq!(done["status"], "done", "{done}");
    let out = w.path("bundle");
    let o = api(
        &w,
        &gw,
        "sup-a",
        &["request", "fetch", &id, "--out", out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new("/bin/bash")
        .arg("verify.sh")
        .current_dir(&out)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("RECORDING VERIFIED"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = api(
        &w,
        &gw,
        "aud",
        &[
            "request",
            "fetch",
            &id,
            "--out",
            w.path("x").to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&o).contains("403"),
        "only requester and approver fetch: {}",
        stderr(&o)
    );

    // A personal-privacy mark: only viewers cleared for it see the recording.
    let o = api(
        &w,
        &gw,
        "sup-b",
        &["mark", "bwc-1/fresh", "personal-privacy"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let http = gw.http_addr();
    let get = |who: &str, path: &str| {
        let o = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(w.certs.ca_cert())
            .args(["-H", &format!("Authorization: Bearer {}", token(who))])
            .arg(format!("https://localhost:{}{path}", http.port()))
            .output()
            .unwrap();
        stdout(&o)
    };
    assert_eq!(get("sup-b", "/rec/bwc-1/fresh/original"), "200");
    assert_eq!(get("sup-a", "/rec/bwc-1/fresh/original"), "403");
    assert_eq!(get("aud", "/rec/bwc-1/fresh/original"), "403");
    let o = api(
        &w,
        &gw,
        "aud",
        &["request", "export", "bwc-1/fresh", "--reason", "x"],
    );
    assert!(
        stderr(&o).contains("403"),
        "uncleared viewers cannot ask to export: {}",
        stderr(&o)
    );

    // All of it is in the audit trail.
    let entries = eventually(30, "the audit trail", || {
        let e = audit(&w);
        async move { e.iter().any(|x| x["action"] == "mark").then_some(e) }
    })
    .await;
    for (viewer, action) in [
        ("sup-a", "retention"),
        ("aud", "request-delete"),
        ("sup-a", "approve-delete"),
        ("sup-a", "approve-delete-result"),
        ("sup-a", "request-export"),
        ("sup-b", "approve-export"),
        ("sup-a", "export-download"),
        ("sup-b", "mark"),
    ] {
        assert!(
            entries
                .iter()
                .any(|e| e["viewer"] == viewer && e["action"] == action),
            "no {action} by {viewer} in {entries:#?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e["viewer"] == "sup-a" && e["action"] == "refused" && e["status"] == 403),
        "the self-approval refusal is audited"
    );
}

/// A recorder whose clock was reset docks a mandatory full-process
/// recording dated 2001 through a rack whose clock was reset too: it used
/// to be deletable through request and approval a second after upload.
/// Its retention runs from the gateway's receipt, the clock difference is
/// recorded and reported, and deletion waits for receipt + 2 years.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_clock_cannot_shorten_retention() {
    let mut w = world(Backend::Local);
    let gw = w.gateway();
    let reset = dock_as(
        &w,
        &gw,
        "reset-2001",
        r#""started_at":"2001-01-01T00:00:00Z","ended_at":"2001-01-01T00:30:00Z","full_process":{"mandatory":true,"reason":"personal-liberty"}"#,
        Some("2001-01-01T01:00:00Z"),
    );
    dock(&w, &gw, "in-time", "2026-12-02T01:30:00Z");

    // The period runs from receipt, not from the device's 2001.
    let m = manifest(&w, reset["manifest_key"].as_str().unwrap()).await;
    let received = m["summary"]["received_at"].as_str().unwrap();
    assert!(received.starts_with("2026-12-02T02:"), "{m:#}");
    assert_eq!(m["retention"]["from"], received, "{m:#}");
    let until = m["retention"]["until"].as_str().unwrap();
    assert_eq!(until[..4], *"2028", "{m:#}");
    assert_eq!(until[4..], received[4..], "{m:#}");

    // The device's clock and how far off it was: in the signed header and
    // the manifest.
    let want = (time::OffsetDateTime::parse(
        "2001-01-01T01:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        - custody::time_fmt::parse(NOW).unwrap())
    .whole_seconds();
    let skew = m["summary"]["clock_skew_seconds"].as_i64().unwrap();
    // The two clocks were set a moment apart.
    assert!((skew - want).abs() < 3600, "{skew} vs {want}");
    let header = w.store().await;
    let header: serde_json::Value = serde_json::from_slice(
        &header
            .get_bytes(m["objects"][0]["key"].as_str().unwrap(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        header["device_clock"]["at"]
            .as_str()
            .unwrap()
            .starts_with("2001-01-01T01:"),
        "{header:#}"
    );
    assert_eq!(header["device_clock"]["skew_seconds"], skew);

    // It cannot be deleted: the request is refused.
    let ask = |w: &World, gw: &GatewayProc| {
        api(
            w,
            gw,
            "aud",
            &[
                "request",
                "delete",
                "bwc-1/reset-2001",
                "--reason",
                "device says 2001",
            ],
        )
    };
    let o = ask(&w, &gw);
    assert!(
        stderr(&o).contains("409") && stderr(&o).contains(&format!("retained until {until}")),
        "{}",
        stderr(&o)
    );

    // The compliance report lists the clock, and only that recording.
    let o = w
        .command()
        .args(["compliance", "--json", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let skewed: Vec<&str> = r["clock_skew"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["recording"].as_str().unwrap())
        .collect();
    assert_eq!(skewed, ["bwc-1/reset-2001"], "{r:#}");
    let o = w
        .command()
        .args(["compliance", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(
        text.contains("6. Device clock off by more than 5 minutes")
            && text.contains(
                "bwc-1/reset-2001  officer o-1001  unit market  the uploading device's clock was"
            ),
        "{text}"
    );

    // An hour before receipt + 2 years: still refused.
    drop(gw);
    w.set_clock("2028-12-02T01:00:00Z");
    let gw = w.gateway();
    let o = ask(&w, &gw);
    assert!(stderr(&o).contains("409"), "{}", stderr(&o));
    // An hour after: two people delete it.
    drop(gw);
    w.set_clock("2028-12-02T03:00:00Z");
    let gw = w.gateway();
    let req = ok_json(&ask(&w, &gw));
    let id = req["id"].as_str().unwrap();
    let done = ok_json(&api(&w, &gw, "sup-a", &["request", "approve", id]));
    assert_eq!(done["status"], "done", "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn object_lock_is_enforced_where_storage_supports_it() {
    let w = world(Backend::Moto);
    let gw = w.gateway();
    assert!(
        gw.log()
            .contains("storage enforces retention (S3 Object Lock"),
        "{}",
        gw.log()
    );
    let r = dock(&w, &gw, "locked", "2026-12-02T01:00:00Z");
    let moto = w.moto.as_ref().unwrap();
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "moto", "moto", None, None, "test",
        ))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    let prefix = r["manifest_key"]
        .as_str()
        .unwrap()
        .trim_end_matches("manifest.json")
        .to_string();
    let versions = s3
        .list_object_versions()
        .bucket(&moto.bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    let objects: Vec<(String, String)> = versions
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_string(),
                v.version_id().unwrap().to_string(),
            )
        })
        .collect();
    assert!(objects.len() >= 4, "{objects:?}");
    // Storage compares lock dates with its own clock: the real one.
    let two_years = time::OffsetDateTime::now_utc() + time::Duration::days(2 * 365);
    for (key, version) in &objects {
        let h = s3
            .head_object()
            .bucket(&moto.bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.object_lock_mode().map(|m| m.as_str()),
            Some("COMPLIANCE"),
            "{key}"
        );
        let until = h.object_lock_retain_until_date().unwrap().secs();
        assert!(
            until >= two_years.unix_timestamp(),
            "{key} retained only until {until}"
        );
        // Storage itself refuses to delete it.
        let del = s3
            .delete_object()
            .bucket(&moto.bucket)
            .key(key)
            .version_id(version)
            .send()
            .await;
        assert!(del.is_err(), "{key} could be deleted");
    }
    // Permanent: every object under legal hold.
    let o = api(
        &w,
        &gw,
        "sup-a",
        &[
            "retention",
            "raise",
            "bwc-1/locked",
            "--permanent",
            "obstruction",
        ],
    );
    let v = ok_json(&o);
    assert_eq!(v["storage"]["enforced_by"], "object-lock", "{v}");
    let held = |key: String| {
        let s3 = s3.clone();
        let bucket = moto.bucket.clone();
        async move {
            let h = s3
                .head_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(
                h.object_lock_legal_hold_status().map(|s| s.as_str()),
                Some("ON"),
                "{key}"
            );
        }
    };
    for (key, _) in &objects {
        held(key.clone()).await;
    }
    // What is added to a permanent recording later (an annotation, its
    // checkpoint) is held as well.
    let o = api(
        &w,
        &gw,
        "sup-a",
        &["mark", "bwc-1/locked", "personal-privacy"],
    );
    ok_json(&o);
    let before: std::collections::HashSet<&String> = objects.iter().map(|(k, _)| k).collect();
    let listed = s3
        .list_objects_v2()
        .bucket(&moto.bucket)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    let added: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .filter(|k| !before.contains(k) && !k.ends_with("/manifest.json"))
        .collect();
    assert!(
        added.iter().any(|k| k.contains("annotation")),
        "no annotation object: {added:?}"
    );
    for key in added {
        held(key).await;
    }
}

fn bearer(who: &str) -> String {
    format!("Authorization: Bearer {}", token(who))
}

const JSON: &str = "Content-Type: application/json";

/// The stored request, as storage holds it.
async fn stored_request(w: &World, id: &str) -> serde_json::Value {
    let b = w
        .store()
        .await
        .get_bytes(&format!("policy/requests/{id}.json"), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// Reject, approve and approve again, fired at once at one request, round
/// after round: exactly one decision wins, the others get 409; the export
/// or deletion runs at most once, and never after a rejection.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_decisions_on_one_request_have_exactly_one_winner() {
    let mut w = world(Backend::Local);
    let gw = w.gateway();
    dock(&w, &gw, "to-export", "2026-11-30T09:00:00+08:00");
    let mut rounds: Vec<(String, &str, Option<String>)> = Vec::new();
    for i in 0..8 {
        rounds.push((format!("export-{i}"), "export", None));
    }
    for i in 0..3 {
        let id = format!("to-delete-{i}");
        let r = dock(&w, &gw, &id, "2023-01-10T09:00:00+08:00");
        rounds.push((id, "delete", r["manifest_key"].as_str().map(str::to_string)));
    }
    // Retention runs from receipt: the decisions are made once two years
    // and a month have passed (a gateway restarted on a later clock).
    drop(gw);
    w.set_clock("2029-01-05T02:00:00Z");
    let gw = w.gateway();
    let mut requests = Vec::new();
    for (rec, kind, manifest) in &rounds {
        let target = if *kind == "export" {
            "bwc-1/to-export".to_string()
        } else {
            format!("bwc-1/{rec}")
        };
        let req = ok_json(&api(
            &w,
            &gw,
            "aud",
            &["request", kind, &target, "--reason", "race"],
        ));
        let id = req["id"].as_str().unwrap().to_string();
        let decide = |who: &str, verb: &str| {
            spawn_post(
                &w,
                &gw,
                &format!("/api/requests/{id}/{verb}"),
                &[bearer(who), JSON.into()],
                Some(&format!(r#"{{"note":"{who} {verb}s"}}"#)),
            )
        };
        // All three in flight at once.
        let racers = [
            ("reject", decide("sup-a", "reject")),
            ("approve", decide("sup-a", "approve")),
            ("approve", decide("sup-b", "approve")),
        ];
        let answers: Vec<(&str, u16, String)> = racers
            .into_iter()
            .map(|(verb, c)| {
                let (code, body) = answer(c);
                (verb, code, body)
            })
            .collect();
        let winners: Vec<_> = answers.iter().filter(|a| a.1 == 200).collect();
        assert_eq!(winners.len(), 1, "{kind} {id}: {answers:#?}");
        for (_, code, body) in answers.iter().filter(|a| a.1 != 200) {
            assert_eq!(*code, 409, "{body}");
            assert!(body.contains("decided already"), "{body}");
        }
        let (verb, _, body) = winners[0];
        let answered: serde_json::Value = serde_json::from_str(body).unwrap();
        let stored = stored_request(&w, &id).await;
        assert_eq!(stored["status"], answered["status"], "{stored}");
        let bundle = w.path("spool").join("exports").join(&id);
        match (*kind, *verb) {
            ("export", "reject") => {
                assert_eq!(stored["status"], "rejected");
                assert!(!bundle.exists(), "an export was made after a rejection");
            }
            ("export", _) => {
                assert_eq!(stored["status"], "done", "{stored}");
                assert!(bundle.join("manifest.json").exists());
            }
            ("delete", "reject") => {
                assert_eq!(stored["status"], "rejected");
                let (ok, v) = w.verify_json(manifest.as_deref().unwrap());
                assert!(ok, "deleted after a rejection: {v}");
            }
            _ => {
                assert_eq!(stored["status"], "done", "{stored}");
                let record = manifest
                    .as_deref()
                    .unwrap()
                    .replace("manifest.json", "deleted.json");
                assert!(w.store().await.exists(&record).await.unwrap());
            }
        }
        requests.push((id, *verb == "reject"));
    }
    // The trail has one decision per request, and at most one outcome.
    let decided = requests.len();
    let entries = eventually(30, "every decision in the audit trail", || {
        let e = audit(&w);
        let n = e
            .iter()
            .filter(|x| {
                matches!(
                    x["action"].as_str(),
                    Some("reject" | "approve-export" | "approve-delete")
                )
            })
            .count();
        async move { (n >= decided).then_some(e) }
    })
    .await;
    for (id, rejected) in &requests {
        let about = |action: &str| {
            entries
                .iter()
                .filter(|e| {
                    e["action"].as_str().is_some_and(|a| a.starts_with(action))
                        && e["detail"]
                            .as_str()
                            .is_some_and(|d| d.starts_with(&format!("request {id}")))
                })
                .count()
        };
        let results = about("approve-export-result") + about("approve-delete-result");
        let decisions = about("reject") + about("approve-") - results;
        assert_eq!(decisions, 1, "decisions on {id}");
        assert_eq!(results, usize::from(!rejected), "outcomes of {id}");
    }
}

/// State-changing routes refuse what a page on another site can make a
/// browser send: a cross-site Origin or Sec-Fetch-Site (403), a body that is
/// not declared JSON (415), an empty body (400). A same-origin JSON
/// decision goes through.
#[tokio::test(flavor = "multi_thread")]
async fn cross_site_and_non_json_posts_change_nothing() {
    let w = world(Backend::Local);
    let gw = w.gateway();
    dock(&w, &gw, "csrf", "2026-11-30T09:00:00+08:00");
    let req = ok_json(&api(
        &w,
        &gw,
        "aud",
        &["request", "export", "bwc-1/csrf", "--reason", "court order"],
    ));
    let id = req["id"].as_str().unwrap().to_string();
    let approve = format!("/api/requests/{id}/approve");
    let port = gw.http_addr().port();
    let note = Some(r#"{"note":"x"}"#);
    let evil = "Origin: https://evil.example".to_string();
    for (headers, body, want) in [
        (vec![bearer("sup-b"), JSON.into(), evil.clone()], note, 403),
        (
            vec![
                bearer("sup-b"),
                JSON.into(),
                "Sec-Fetch-Site: cross-site".into(),
            ],
            note,
            403,
        ),
        (
            vec![
                bearer("sup-b"),
                JSON.into(),
                "Sec-Fetch-Site: same-site".into(),
            ],
            note,
            403,
        ),
        (
            vec![
                bearer("sup-b"),
                JSON.into(),
                format!("Origin: https://localhost:{}", port + 1),
            ],
            note,
            403,
        ),
        (
            vec![
                bearer("sup-b"),
                "Content-Type: application/x-www-form-urlencoded".into(),
            ],
            Some("note=x"),
            415,
        ),
        (
            vec![bearer("sup-b"), "Content-Type: text/plain".into()],
            note,
            415,
        ),
        (vec![bearer("sup-b")], None, 415),
        (vec![bearer("sup-b"), JSON.into()], None, 400),
        (vec![bearer("sup-b"), JSON.into()], Some("  "), 400),
    ] {
        let (code, body) = answer(spawn_post(&w, &gw, &approve, &headers, body));
        assert_eq!(code, want, "{headers:?}: {body}");
        assert_eq!(stored_request(&w, &id).await["status"], "pending");
    }
    // Other state-changing routes too: a mark, a login.
    let (code, _) = answer(spawn_post(
        &w,
        &gw,
        "/api/recordings/bwc-1/csrf/confidentiality",
        &[bearer("sup-b"), JSON.into(), evil.clone()],
        Some(r#"{"mark":"state-secret"}"#),
    ));
    assert_eq!(code, 403);
    let (code, body) = answer(spawn_post(
        &w,
        &gw,
        "/api/login",
        &[JSON.into(), evil.clone()],
        Some(&format!(r#"{{"token":"{}"}}"#, token("sup-b"))),
    ));
    assert_eq!(code, 403, "{body}");
    let (code, body) = answer(spawn_post(
        &w,
        &gw,
        "/api/logout",
        &["Sec-Fetch-Site: cross-site".into(), JSON.into()],
        Some("{}"),
    ));
    assert_eq!(code, 403, "{body}");
    // Viewer text follows the text rule.
    let (code, body) = answer(spawn_post(
        &w,
        &gw,
        "/api/requests",
        &[bearer("aud"), JSON.into()],
        Some(r#"{"kind":"export","recording":"bwc-1/csrf","reason":"ok\u001b[2J"}"#),
    ));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("reason: contains control characters"),
        "{body}"
    );
    // The wall's own way: same origin, JSON.
    let (code, body) = answer(spawn_post(
        &w,
        &gw,
        &approve,
        &[
            bearer("sup-b"),
            JSON.into(),
            format!("Origin: https://localhost:{port}"),
            "Sec-Fetch-Site: same-origin".into(),
        ],
        note,
    ));
    assert_eq!(code, 200, "{body}");
    assert_eq!(stored_request(&w, &id).await["status"], "done");
    // The cross-site attempts are in the audit trail.
    eventually(30, "cross-site refusals in the audit trail", || {
        let e = audit(&w);
        async move {
            e.iter()
                .any(|x| {
                    x["action"] == "refused"
                        && x["status"] == 403
                        && x["viewer"] == "sup-b"
                        && x["detail"]
                            .as_str()
                            .is_some_and(|d| d.contains("Origin https://evil.example"))
                })
                .then_some(())
        }
    })
    .await;
}
