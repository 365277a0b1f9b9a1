//! Fixed cameras pulled over RTSP: a real RTSP server (GStreamer's
//! gst-rtsp-server, `tests/media/rtsp_camera.py`, encoding live with x264,
//! avenc_aac and mulawenc) that the ledger lists, pulled into a live
//! recording through a camera restart until the camera goes away for good;
//! and cameras the ledger refuses or that refuse the gateway's credentials.

mod common;

use std::process::Command;

use common::ingest::*;
use common::*;
use custody::manifest::Role;
use custody::usage::UsageEvent;

const CAMERA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/rtsp_camera.py");
const PASSWORD: &str = "camera-pass-1";

/// Debian's Python, which has the GStreamer bindings (a user's own
/// `python3` earlier in PATH may not).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test camera serving `rtsp://127.0.0.1:port/cam` to `custody` with
/// [`PASSWORD`]; stopped when dropped. Its output goes to a file: a pipe
/// nobody reads would stop it once full.
fn camera(w: &World, port: u16) -> KillOnDrop {
    let log = w.path(&format!("camera-{port}.log"));
    let child = Command::new(python())
        .arg(CAMERA)
        .arg(port.to_string())
        .args(["custody", PASSWORD])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + patience(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the RTSP test camera did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

/// Adds a camera to the world's ledger.
fn add_camera(w: &World, id: &str, status: &str, port: u16, password: &str) {
    add_camera_over(w, id, status, port, password, "tcp");
}

/// [`add_camera`], its RTP over `transport` (`tcp` or `udp`).
fn add_camera_over(w: &World, id: &str, status: &str, port: u16, password: &str, transport: &str) {
    add_to_ledger(
        w,
        &format!(
            r#"
[[device]]
id = "{id}"
kind = "surveillance-camera"
custodian = "Li Na"
unit = "market"
status = "{status}"
[[device.assignment]]
officer = "o-1001"
[device.rtsp]
url = "rtsp://127.0.0.1:{port}/cam"
username = "custody"
password = "{password}"
transport = "{transport}"
"#
        ),
    );
}

async fn segments(w: &World) -> usize {
    let store = w.store().await;
    store
        .list("records/")
        .await
        .unwrap()
        .iter()
        .filter(|o| o.key.contains("-segment."))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rtsp_camera_is_recorded_through_its_restart_until_it_goes_away() {
    // The recording must outlast the camera's restart (on a loaded machine
    // the restarted test camera was seen taking 40 s to send media again),
    // and then close.
    let w = World::with_config(Backend::Local, |c| {
        c.live.close_after_secs = 90;
        c.rtsp.stall_secs = 4;
        c.rtsp.max_backoff_secs = 1;
    });
    let port = free_tcp_port();
    let cam = camera(&w, port);
    add_camera(&w, "cam-1", "active", port, PASSWORD);
    let gw = w.gateway();
    let first = eventually(60, "segments from the camera", || async {
        let n = segments(&w).await;
        (n >= 3).then_some(n)
    })
    .await;
    // The camera restarts: the gateway reaches it again and the recording
    // goes on, the time it was away a gap.
    drop(cam);
    let cam = camera(&w, port);
    let deadline = std::time::Instant::now() + patience(60);
    while !gw.log().contains("gap recorded") {
        assert!(
            std::time::Instant::now() < deadline,
            "the restart was not recorded as a gap: {}",
            gw.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eventually(60, "segments after the restart", || async {
        (segments(&w).await >= first + 3).then_some(())
    })
    .await;
    // The camera goes away for good: the recording closes by timeout.
    drop(cam);
    let (locator, m) = closed_recording(&w, "cam-1").await;
    let v = w.verify(&locator);
    assert!(v.status.success(), "{}", stdout(&v));
    // Who delivered it, and how: the ledger's camera at the ledger's URL.
    let header = header_of(&w, &m).await;
    assert_eq!(header["uploader"]["device"], "cam-1");
    assert_eq!(header["uploader"]["certificate_sha256"], "");
    assert_eq!(header["uploader"]["ingest"]["protocol"], "rtsp");
    assert_eq!(
        header["uploader"]["ingest"]["source"],
        format!("rtsp://127.0.0.1:{port}/cam")
    );
    assert_eq!(header["method"]["device_kind"], "surveillance-camera");
    // The password is nowhere in what was stored.
    let grep = Command::new("grep")
        .args(["-r", "-l", PASSWORD])
        .arg(w.path("store"))
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(1), "{}", stdout(&grep));
    let l = m.live.as_ref().unwrap();
    assert_eq!(l.closed_by.as_str(), "timeout");
    let kinds: Vec<&str> = l.gaps.iter().map(|g| g.kind.as_str()).collect();
    assert_eq!(kinds, ["source-restart", "tail"], "{:?}", l.gaps);
    assert!(
        l.gaps[0].reason.contains("RTSP session"),
        "{}",
        l.gaps[0].reason
    );
    assert!(l.gaps[0].bytes.is_none(), "no byte of the stream was lost");
    // The original: the camera's H.264 and AAC in MPEG-TS; the derivative:
    // the same codecs in fragmented MP4. G.711 is left out, and said so.
    let raw = w.path("raw.ts");
    concat(&w, &m, &[Role::RawChunk], &raw).await;
    // (each session with the camera is its own transport stream, one after
    // the other)
    let kept = codecs(&raw);
    assert!(
        kept.iter().any(|c| c == "h264") && kept.iter().any(|c| c == "aac"),
        "{kept:?}"
    );
    let fmp4 = w.path("derived.mp4");
    concat(&w, &m, &[Role::Init, Role::Segment], &fmp4).await;
    assert_eq!(codecs(&fmp4), ["aac", "h264"]);
    assert!(
        gw.log()
            .contains("left out of the recording: audio stream in PCMU"),
        "{}",
        gw.log()
    );
    // Each session with the camera is in its usage record.
    let usage = eventually(30, "the camera's usage record", || async {
        let u = usage_of(&w, "cam-1").await;
        let opened = u
            .iter()
            .filter(|e| e.event == UsageEvent::SessionOpened)
            .count();
        (opened >= 2).then_some(u)
    })
    .await;
    assert!(
        usage
            .iter()
            .any(|e| e.event == UsageEvent::SessionClosed && e.detail.contains("RTSP session")),
        "{usage:?}"
    );
    assert!(usage.iter().all(|e| !e.detail.contains(PASSWORD)));
}

#[tokio::test(flavor = "multi_thread")]
async fn cameras_refused_by_the_ledger_or_refusing_the_gateway_are_recorded_not_pulled() {
    let w = World::with_config(Backend::Local, |c| {
        c.rtsp.max_backoff_secs = 1;
    });
    let port = free_tcp_port();
    let _cam = camera(&w, port);
    add_camera(&w, "cam-revoked", "revoked", port, PASSWORD);
    add_camera(&w, "cam-wrong-password", "active", port, "not-the-password");
    let mut gw = w.gateway();
    let refused = usage_entry(&w, "cam-revoked", 60, "the revoked camera's refusal", |e| {
        e.event == UsageEvent::Refused
    })
    .await;
    assert!(
        refused.detail.starts_with("device_revoked:"),
        "{}",
        refused.detail
    );
    let failed = usage_entry(
        &w,
        "cam-wrong-password",
        60,
        "the wrong password's failure",
        |e| e.event == UsageEvent::UploadFailed,
    )
    .await;
    assert!(
        failed.detail.contains("cannot be pulled"),
        "{}",
        failed.detail
    );
    assert!(failed.detail.contains("Unauthorized"), "{}", failed.detail);
    assert!(!failed.detail.contains("not-the-password"));
    // Retries go on quietly: one record per outcome, not one per attempt.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let failures = usage_of(&w, "cam-wrong-password")
        .await
        .into_iter()
        .filter(|e| e.event == UsageEvent::UploadFailed)
        .count();
    assert_eq!(failures, 1);
    assert!(gw.is_running());
    let store = w.store().await;
    assert!(store.list("records/").await.unwrap().is_empty());
}

/// RTP over UDP (the camera sends to ports the gateway opened; rtspsrc is
/// told UDP only, so a recording proves UDP worked), and a camera that
/// streams longer than `max_recording_secs`: its recordings after the
/// first begin at a video keyframe of the gateway's own MPEG-TS, and each
/// verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_camera_pulled_over_udp_is_recorded_in_recordings_of_the_maximum_length() {
    let w = World::with_config(Backend::Local, |c| {
        c.live.close_after_secs = 5;
        c.rtsp.stall_secs = 4;
        c.rtsp.max_backoff_secs = 1;
        c.rtsp.max_recording_secs = 4;
    });
    let port = free_tcp_port();
    let cam = camera(&w, port);
    add_camera_over(&w, "cam-1", "active", port, PASSWORD, "udp");
    let _gw = w.gateway();
    // Two recordings closed at their maximum length while the camera goes on.
    let manifests = eventually(
        90,
        "two recordings cut from the camera's stream",
        || async {
            let ms = recordings_of(&w, "cam-1").await;
            (ms.len() >= 2).then_some(ms)
        },
    )
    .await;
    drop(cam);
    for (i, (key, m)) in manifests.iter().enumerate() {
        let v = w.verify(key);
        assert!(v.status.success(), "{key}: {}", stdout(&v));
        let live = m.live.as_ref().unwrap();
        assert_eq!(live.closed_by, custody::manifest::ClosedBy::Device, "{key}");
        assert!(live.gaps.is_empty(), "{key}: {:?}", live.gaps);
        let raw = w.path(&format!("raw-{i}.ts"));
        concat(&w, m, &[Role::RawChunk], &raw).await;
        let bytes = std::fs::read(&raw).unwrap();
        if i > 0 {
            assert_eq!(
                custody_media::ts_continuity::keyframe_cut(&bytes[..188 * 16]),
                Some(0),
                "{key} begins with a video keyframe (and any tables right before it)"
            );
        }
        let fmp4 = w.path(&format!("derived-{i}.mp4"));
        concat(&w, m, &[Role::Init, Role::Segment], &fmp4).await;
        assert_eq!(codecs(&fmp4), ["aac", "h264"], "{key}");
    }
}

/// Cluster mode: a camera its lease holder cannot reach is handed on — the
/// holder gives the ingest lease up after a few failed attempts and the
/// other gateway tries (here neither can reach it: the lease goes back and
/// forth), each failure recorded once per gateway, not once per attempt.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_a_camera_the_holder_cannot_reach_is_tried_by_another_gateway() {
    let pg = common::postgres::Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.cluster.lease_secs = 3;
        c.rtsp.max_backoff_secs = 1;
    });
    // Nothing listens there.
    add_camera(&w, "cam-away", "active", free_tcp_port(), PASSWORD);
    let _a = w.gateway();
    let _b = w.another_gateway("gateway-b", |_| {});
    let holder = || {
        pg.sql(
            "postgres",
            "SELECT holder FROM leases WHERE name = 'ingest cam-away' AND expires_at > now()",
        )
        .trim()
        .to_string()
    };
    let mut seen = std::collections::BTreeSet::new();
    eventually(90, "both gateways trying the camera in turn", || {
        let h = holder();
        if !h.is_empty() {
            seen.insert(h);
        }
        let both = seen.len() == 2;
        async move { both.then_some(()) }
    })
    .await;
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["gateway-b", "test-gateway"]
    );
    let failures = usage_of(&w, "cam-away")
        .await
        .into_iter()
        .filter(|e| e.event == UsageEvent::UploadFailed)
        .count();
    assert!(
        (1..=4).contains(&failures),
        "{failures} failures recorded: once per gateway and outcome, not per attempt"
    );
}
