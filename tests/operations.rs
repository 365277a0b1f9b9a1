//! The gateway's operations endpoints (docs/operations.md): `/metrics`
//! counts what a real dock, a real live recording and a refused device did;
//! `/healthz` and `/readyz` answer without login; storage errors and
//! retries show when S3 (Garage, behind a failing proxy) fails. The full
//! spool's side (`/readyz` 503, `spool_full` refusals) is in `full_disk.rs`.

mod common;

use std::process::Stdio;

use common::faults::{HttpFaults, StorageProxy};
use common::ops;
use common::*;

const MIB: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_docked_file_a_live_recording_and_a_refused_device() {
    let w = World::with_config(Backend::Local, ops::http);
    let gw = w.gateway();

    // No login: the endpoints name nothing but aggregate numbers.
    let health = ops::get(&w, &gw, "/healthz", None);
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ok\n"),
        "{health:?}"
    );
    let ready = ops::get(&w, &gw, "/readyz", None);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready\n"),
        "{ready:?}"
    );
    let before = ops::scrape(&w, &gw);
    assert_eq!(before.value("custody_sessions_opened_total"), 0.0);
    assert_eq!(before.value("custody_spool_below_reserve"), 0.0);
    assert!(before.value("custody_spool_free_bytes") > 0.0);

    // A docked file.
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let size = 3 * MIB + 12_345;
    write_random_file(&media.join("clip.bin"), size, 11);
    let (out, results) = w.dock("bwc-1", &gw, &["--no-inventory", media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results[0]["result"], "archived", "{}", stdout(&out));
    // One attempt: each byte was received and acknowledged once.
    assert_eq!(results[0]["attempts"], 1, "{}", stdout(&out));

    // A live recording from the test camera.
    let rec = w
        .client_cmd("record", "bwc-1", &gw)
        .arg("--state-dir")
        .arg(w.path("rec"))
        .args(["--json", "--officer", "o-1001", "--test-source"])
        .args(["--duration", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(rec.status.success(), "{}\n{}", stdout(&rec), stderr(&rec));
    let live: serde_json::Value = serde_json::from_slice(&rec.stdout).unwrap();
    assert_eq!(live["reconnects"], 0, "{live}");
    let live_bytes = live["bytes"].as_u64().unwrap();
    assert!(live_bytes > 0, "{live}");

    // A device the ledger does not know: refused at admission.
    let refused = w.dock(
        "ghost",
        &gw,
        &["--retry-for-secs", "0", media.to_str().unwrap()],
    );
    assert!(!refused.0.status.success());

    // The streams and sessions end a moment after the clients exit, and
    // the live segments reach storage after the recording closed.
    let m = eventually(
        60,
        "streams and sessions closed, live segments stored",
        || {
            let m = ops::scrape(&w, &gw);
            async move {
                (m.value("custody_sessions_open") == 0.0
                    && m.value("custody_live_streams_open") == 0.0
                    && m.value("custody_live_segment_close_to_stored_seconds_count") > 0.0)
                    .then_some(m)
            }
        },
    )
    .await;
    let size = size as f64;
    assert!(m.value("custody_sessions_opened_total") >= 2.0);
    assert_eq!(m.value("custody_docked_uploads_started_total"), 1.0);
    assert_eq!(m.value("custody_docked_uploads_resumed_total"), 0.0);
    assert_eq!(m.value("custody_docked_uploads_completed_total"), 1.0);
    assert!(m.value("custody_received_bytes_total{kind=\"docked\"}") >= size);
    assert_eq!(
        m.value("custody_acknowledged_bytes_total{kind=\"docked\"}"),
        size
    );
    assert!(m.value("custody_received_bytes_total{kind=\"live\"}") >= live_bytes as f64);
    assert_eq!(
        m.value("custody_acknowledged_bytes_total{kind=\"live\"}"),
        live_bytes as f64
    );
    assert!(m.value("custody_refusals_total{reason=\"device_unknown\"}") >= 1.0);
    assert_eq!(
        m.value("custody_refusals_total{reason=\"spool_full\"}"),
        0.0
    );
    assert!(m.value("custody_storage_operations_total{op=\"put\"}") > 0.0);
    assert!(m.value("custody_storage_operations_total{op=\"get\"}") > 0.0);
    assert_eq!(m.value("custody_storage_errors_total{op=\"put\"}"), 0.0);
    assert_eq!(m.value("custody_docked_archive_seconds_count"), 1.0);
    assert_eq!(m.value("custody_spool_below_reserve"), 0.0);

    // Prometheus asks for OpenMetrics and gets it; anyone else gets the
    // Prometheus text format.
    let om = ops::get(
        &w,
        &gw,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(om.status, 200);
    assert!(
        om.content_type
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        om.content_type
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    let plain = ops::get(&w, &gw, "/metrics", None);
    assert!(
        plain.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        plain.content_type
    );
    // Aggregates only: no device or recording names in any label.
    for name in [
        "bwc-1",
        "ghost",
        "o-1001",
        results[0]["recording"].as_str().unwrap(),
    ] {
        assert!(!plain.body.contains(name), "{name} in /metrics");
    }
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    println!(
        "docked {size} bytes, live {live_bytes} bytes; {} storage puts; live segment close to stored: {} segments, {:.3} s on average; docked archive {:.3} s",
        m.value("custody_storage_operations_total{op=\"put\"}"),
        m.value("custody_live_segment_close_to_stored_seconds_count"),
        m.value("custody_live_segment_close_to_stored_seconds_sum")
            / m.value("custody_live_segment_close_to_stored_seconds_count"),
        m.value("custody_docked_archive_seconds_sum"),
    );
}

/// Storage failing: every request through a proxy that answers 500/503 or
/// cuts the connection. The S3 client retries within each operation, the
/// archiver retries the recording, and `/metrics` counts both and the
/// failed operations; once storage works again the file is stored.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_storage_errors_and_retries() {
    let w = World::with_config(Backend::Garage, |c| {
        c.gateway.archive_wait_secs = 1;
        ops::http(c);
    });
    let garage: std::net::SocketAddr = w.garage.as_ref().unwrap().endpoint["http://".len()..]
        .parse()
        .unwrap();
    // Storage works while the gateway starts; it fails once the test says.
    let proxy = StorageProxy::start(garage, HttpFaults::default(), 0x5eed_0011).await;
    w.edit_config(|c| c.store.endpoint = Some(format!("http://{}", proxy.addr)));
    let gw = w.gateway();
    let before = ops::scrape(&w, &gw);
    assert_eq!(
        before.value("custody_storage_retries_total{by=\"s3_client\"}"),
        0.0
    );
    proxy.set(HttpFaults {
        error_rate: 1.0,
        ..HttpFaults::default()
    });
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.bin"), 300_000, 12);
    let (out, results) = w.dock("bwc-1", &gw, &["--no-inventory", media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    // Spooled (acknowledged, kept) but not in storage yet.
    assert_eq!(results[0]["result"], "spooled", "{}", stdout(&out));
    let failing = eventually(120, "storage errors and retries counted", || {
        let m = ops::scrape(&w, &gw);
        async move {
            (m.value("custody_storage_errors_total{op=\"put\"}") > 0.0
                && m.value("custody_storage_retries_total{by=\"s3_client\"}") > 0.0
                && m.value("custody_storage_retries_total{by=\"archive\"}") > 0.0)
                .then_some(m)
        }
    })
    .await;
    assert_eq!(failing.value("custody_docked_archive_seconds_count"), 0.0);
    proxy.set(HttpFaults::default());
    let m = eventually(120, "the recording archived once storage works", || {
        let m = ops::scrape(&w, &gw);
        async move { (m.value("custody_docked_archive_seconds_count") == 1.0).then_some(m) }
    })
    .await;
    assert!(
        m.value("custody_storage_operations_total{op=\"put\"}")
            > m.value("custody_storage_errors_total{op=\"put\"}")
    );
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
    println!(
        "failing storage: {} of {} puts failed, {} S3 client retries, {} archive retries; archived {:.1} s after completion",
        m.value("custody_storage_errors_total{op=\"put\"}"),
        m.value("custody_storage_operations_total{op=\"put\"}"),
        m.value("custody_storage_retries_total{by=\"s3_client\"}"),
        m.value("custody_storage_retries_total{by=\"archive\"}"),
        m.value("custody_docked_archive_seconds_sum"),
    );
}

/// SIGTERM (what `systemctl stop` sends) stops the gateway in order: it
/// closes the devices' connections, stops and joins its background tasks
/// (crates/gateway/src/tasks.rs) and exits 0, leaving the spool unlocked,
/// so that a new gateway starts on it at once and still has what was
/// stored before.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_gateway_in_order_and_it_starts_again() {
    let w = World::with_config(Backend::Local, ops::http);
    let mut gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("clip.bin"), MIB + 7, 5);
    let (out, results) = w.dock("bwc-1", &gw, &["--no-inventory", media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results[0]["result"], "archived", "{}", stdout(&out));

    let status = gw.terminate();
    let log = gw.log();
    assert!(status.success(), "exit {status}: {log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("aborted"), "{log}");

    // The spool lock went with the process: a new gateway starts on the
    // same spool and answers ready.
    gw.restart();
    let ready = ops::get(&w, &gw, "/readyz", None);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready\n"),
        "{ready:?}"
    );
    let (out, results) = w.dock("bwc-1", &gw, &["--no-inventory", media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    // The new gateway finds the recording stored before the SIGTERM.
    assert_eq!(results[0]["result"], "archived", "{}", stdout(&out));
    assert_eq!(results[0]["already_stored"], true, "{}", stdout(&out));
    assert_eq!(results[0]["bytes_sent"], 0, "{}", stdout(&out));
}
