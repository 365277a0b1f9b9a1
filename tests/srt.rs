//! Devices pushing over SRT: ffmpeg encoding live (x264 and AAC in MPEG-TS)
//! and pushing to the port the ledger gives the device, with its
//! passphrase and its id as the stream id — twice, the second push a new
//! session of the same recording; and callers the gateway refuses (a
//! stream id naming another device, a wrong passphrase, a revoked device).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::ingest::*;
use common::postgres::Postgres;
use common::*;
use custody::manifest::Role;
use custody::usage::UsageEvent;

const PASSPHRASE: &str = "srt-passphrase-1";

fn free_udp_port() -> u16 {
    free_udp_addr().port()
}

fn add_srt_device(w: &World, id: &str, status: &str, port: u16) {
    add_to_ledger(
        w,
        &format!(
            r#"
[[device]]
id = "{id}"
kind = "video-camera"
custodian = "Li Na"
unit = "market"
status = "{status}"
[[device.assignment]]
officer = "o-1001"
[device.srt]
port = {port}
passphrase = "{PASSPHRASE}"
"#
        ),
    );
}

/// ffmpeg encoding `secs` of a test picture and tone and pushing them over
/// SRT to `port` as `stream_id` with `passphrase`, writing what it sent to
/// `sent` as well (the same muxer output, through ffmpeg's tee; a failing
/// SRT slave fails the push instead of being dropped). `linger` lets SRT
/// deliver the last packets before ffmpeg closes.
fn push(port: u16, stream_id: &str, passphrase: &str, secs: u32, sent: &Path) -> bool {
    push_with(port, stream_id, passphrase, secs, sent, "")
}

/// [`push`] with more SRT options (`&name=value…`) in the URL.
fn push_with(
    port: u16,
    stream_id: &str,
    passphrase: &str,
    secs: u32,
    sent: &Path,
    options: &str,
) -> bool {
    let url = format!(
        "srt\\://127.0.0.1\\:{port}?streamid={stream_id}&passphrase={passphrase}&pbkeylen=16&linger=5&connect_timeout=2000{options}"
    );
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
        ])
        .args(["-map", "0:v", "-map", "1:a", "-f", "tee"])
        .arg(format!(
            "[f=mpegts:onfail=abort]{url}|[f=mpegts]{}",
            sent.display()
        ))
        .output()
        .unwrap();
    out.status.success()
}

/// Pushes until a push gets through (the gateway's listener may not be up
/// yet, or may be between sessions).
fn push_through(port: u16, id: &str, secs: u32, sent: &Path) {
    for _ in 0..30 {
        if push(port, id, PASSPHRASE, secs, sent) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("no SRT push to port {port} got through");
}

fn cat(parts: &[PathBuf], out: &Path) {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&std::fs::read(p).unwrap());
    }
    std::fs::write(out, all).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_srt_push_is_kept_byte_for_byte_across_two_sessions() {
    let w = World::with_config(Backend::Local, |c| {
        // The second push must come before the recording closes, also on
        // a loaded machine.
        c.live.close_after_secs = 30;
        c.srt.stall_secs = 3;
        c.srt.address = "127.0.0.1".into();
    });
    let port = free_udp_port();
    add_srt_device(&w, "enc-1", "active", port);
    let gw = w.gateway();
    let (sent1, sent2) = (w.path("sent-1.ts"), w.path("sent-2.ts"));
    push_through(port, "enc-1", 4, &sent1);
    // A second session: the device pushes again (access-control syntax for
    // the stream id this time).
    push_through(port, "#!::r=enc-1,m=publish", 3, &sent2);
    let (key, m) = closed_recording(&w, "enc-1").await;
    let v = w.verify(&key);
    assert!(v.status.success(), "{}", stdout(&v));
    // The original is exactly what ffmpeg sent, both sessions in order.
    let (raw, sent) = (w.path("raw.ts"), w.path("sent.ts"));
    concat(&w, &m, &[Role::RawChunk], &raw).await;
    cat(&[sent1, sent2], &sent);
    assert_eq!(
        sha256_file(&raw),
        sha256_file(&sent),
        "raw chunks differ from what was sent"
    );
    let fmp4 = w.path("derived.mp4");
    concat(&w, &m, &[Role::Init, Role::Segment], &fmp4).await;
    assert_eq!(codecs(&fmp4), ["aac", "h264"]);
    let l = m.live.as_ref().unwrap();
    let kinds: Vec<&str> = l.gaps.iter().map(|g| g.kind.as_str()).collect();
    assert_eq!(kinds, ["source-restart", "tail"], "{:?}", l.gaps);
    assert!(
        l.gaps[0].reason.contains("SRT session"),
        "{}",
        l.gaps[0].reason
    );
    let header = header_of(&w, &m).await;
    assert_eq!(header["uploader"]["device"], "enc-1");
    assert_eq!(header["uploader"]["ingest"]["protocol"], "srt");
    assert_eq!(
        header["uploader"]["ingest"]["identified_by"],
        "srt-stream-id-and-passphrase"
    );
    let source = header["uploader"]["ingest"]["source"].as_str().unwrap();
    assert!(source.starts_with("srt://127.0.0.1:"), "{source}");
    let usage = eventually(30, "both sessions in the usage record", || async {
        let u = usage_of(&w, "enc-1").await;
        (u.iter()
            .filter(|e| e.event == UsageEvent::SessionOpened)
            .count()
            >= 2)
            .then_some(u)
    })
    .await;
    assert!(usage.iter().all(|e| !e.detail.contains(PASSPHRASE)));
    // Callers that finished the handshake are not reported as unfinished
    // (the recording's close came long after their follow-up).
    assert!(
        usage.iter().all(|e| e.event != UsageEvent::Refused),
        "{usage:?}"
    );
    assert!(!gw.log().contains("did not finish"), "{}", gw.log());
    assert!(gw.log().contains("taking in the SRT listener on port"));
}

#[tokio::test(flavor = "multi_thread")]
async fn srt_callers_are_refused_for_another_stream_id_a_wrong_passphrase_or_a_revoked_device() {
    let w = World::with_config(Backend::Local, |c| {
        c.srt.address = "127.0.0.1".into();
    });
    let (port, revoked_port) = (free_udp_port(), free_udp_port());
    add_srt_device(&w, "enc-1", "active", port);
    add_srt_device(&w, "enc-revoked", "revoked", revoked_port);
    let gw = w.gateway();
    let sent = w.path("sent.ts");
    // Another device's id, again and again while the listener comes up.
    let refused = eventually(60, "the caller with another stream id refused", || {
        let (sent, w, gw) = (sent.clone(), &w, &gw);
        async move {
            assert!(
                !push(port, "bwc-1", PASSPHRASE, 1, &sent),
                "taken: {}",
                gw.log()
            );
            usage_of(w, "enc-1")
                .await
                .into_iter()
                .find(|e| e.event == UsageEvent::Refused)
        }
    })
    .await;
    assert!(
        refused.detail.contains("stream id \"bwc-1\"")
            && refused.detail.contains("does not name enc-1"),
        "{}",
        refused.detail
    );
    // The right stream id without the passphrase: SRT's handshake refuses,
    // and the attempt is recorded once it has had its time to finish.
    assert!(!push(port, "enc-1", "not-the-passphrase", 1, &sent));
    let r = usage_entry(&w, "enc-1", 30, "the wrong passphrase's refusal", |e| {
        e.event == UsageEvent::Refused && e.detail.contains("handshake")
    })
    .await;
    assert!(
        r.detail.contains("stream id \"enc-1\"")
            && r.detail
                .contains("did not finish within 5 s: a wrong or missing passphrase"),
        "{}",
        r.detail
    );
    assert!(!r.detail.contains("not-the-passphrase"), "{}", r.detail);
    // A revoked device is not listened for: its refusal is recorded.
    let r = usage_entry(&w, "enc-revoked", 30, "the revoked device's refusal", |e| {
        e.event == UsageEvent::Refused
    })
    .await;
    assert!(r.detail.starts_with("device_revoked:"), "{}", r.detail);
    assert!(!push(revoked_port, "enc-revoked", PASSPHRASE, 1, &sent));
    let store = w.store().await;
    assert!(store.list("records/").await.unwrap().is_empty());
}

/// Cluster mode: two gateways, one SRT device. Only the gateway holding the
/// device's ingest lease listens for it and records; when that gateway
/// dies, the other takes the lease over and the device's next push is
/// recorded there.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_one_gateway_takes_a_device_in_and_another_takes_over_when_it_dies() {
    let pg = Postgres::start();
    let w = World::with_config(Backend::Garage, |c| {
        c.cluster.database = Some(pg.url("postgres"));
        c.cluster.lease_secs = 3;
        c.live.close_after_secs = 5;
        c.srt.stall_secs = 3;
        c.srt.address = "127.0.0.1".into();
    });
    let port = free_udp_port();
    add_srt_device(&w, "enc-1", "active", port);
    let mut a = w.gateway();
    let mut b = w.another_gateway("gateway-b", |_| {});
    let holder = || {
        pg.sql(
            "postgres",
            "SELECT holder FROM leases WHERE name = 'ingest enc-1' AND expires_at > now()",
        )
        .trim()
        .to_string()
    };
    let first = eventually(60, "the ingest lease taken", || async {
        Some(holder()).filter(|h| !h.is_empty())
    })
    .await;
    let spooled = |spool: &str| w.path(spool).join("recordings").join("enc-1").exists();
    let (first_spool, second_spool, second_id) = match first.as_str() {
        "test-gateway" => ("spool", "spool-gateway-b", "gateway-b"),
        "gateway-b" => ("spool-gateway-b", "spool", "test-gateway"),
        other => panic!("ingest lease held by {other:?}"),
    };
    push_through(port, "enc-1", 3, &w.path("sent-1.ts"));
    assert!(spooled(first_spool), "the lease holder records the device");
    assert!(!spooled(second_spool), "the other gateway keeps nothing");
    let (holding, waiting) = if first == "test-gateway" {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    assert!(
        waiting
            .log()
            .contains("is taken in by another gateway: held by gateway"),
        "{}",
        waiting.log()
    );
    // Said once, not at every renewal of the holder's lease.
    assert_eq!(
        waiting
            .log()
            .matches("is taken in by another gateway")
            .count(),
        1,
        "{}",
        waiting.log()
    );
    holding.kill();
    eventually(60, "the ingest lease taken over", || async {
        (holder() == second_id).then_some(())
    })
    .await;
    push_through(port, "enc-1", 3, &w.path("sent-2.ts"));
    assert!(spooled(second_spool), "the new holder records the device");
    // Its recording closes and verifies.
    let id = std::fs::read_dir(w.path(second_spool).join("recordings").join("enc-1"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let store = w.store().await;
    eventually(60, "the new holder's recording closed", || async {
        store
            .exists(&format!("index/recordings/enc-1/{id}.json"))
            .await
            .ok()
            .filter(|e| *e)
    })
    .await;
    let v = w.verify(&format!("enc-1/{id}"));
    assert!(v.status.success(), "{}", stdout(&v));
}

/// Over a lossy link with a latency shorter than the round trip, SRT gives
/// up on packets and delivers the rest: the holes, found by the MPEG-TS
/// continuity counters, are recorded as `transport-loss` gaps; the
/// original is what arrived, short of whole TS packets only.
#[tokio::test(flavor = "multi_thread")]
async fn packets_srt_dropped_on_a_lossy_link_are_recorded_as_gaps() {
    use common::link::{Impairment, LinkEmulator};
    use std::time::Duration;
    let w = World::with_config(Backend::Local, |c| {
        c.live.close_after_secs = 5;
        c.srt.stall_secs = 3;
        c.srt.latency_ms = 20;
        c.srt.address = "127.0.0.1".into();
        ops::http(c);
    });
    let port = free_udp_port();
    add_srt_device(&w, "enc-1", "active", port);
    let gw = w.gateway();
    // 60 ms round trip, 10 % loss each way: a lost packet's retransmission
    // comes after SRT's 20 ms have passed.
    let lossy = Impairment::radio(0.10, Duration::from_millis(30), Duration::ZERO, 0);
    let link = LinkEmulator::with_profile(
        format!("127.0.0.1:{port}").parse().unwrap(),
        common::link::LinkProfile {
            up: lossy.clone(),
            down: lossy,
            seed: 7,
        },
    )
    .await;
    let sent = w.path("sent.ts");
    let through = (0..30).any(|_| {
        let ok = push_with(
            link.addr.port(),
            "enc-1",
            PASSPHRASE,
            6,
            &sent,
            "&latency=20000",
        );
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    assert!(through, "no push through the lossy link got through");
    let (key, m) = closed_recording(&w, "enc-1").await;
    let v = w.verify(&key);
    assert!(v.status.success(), "{}", stdout(&v));
    let gaps = &m.live.as_ref().unwrap().gaps;
    let losses: Vec<_> = gaps.iter().filter(|g| g.kind == "transport-loss").collect();
    assert!(!losses.is_empty(), "{gaps:?}");
    for g in &losses {
        assert!(
            g.reason.contains("MPEG-TS packets missing")
                && g.reason.contains("latency: at least 20 ms"),
            "{}",
            g.reason
        );
        assert!(
            g.bytes.is_none(),
            "no byte of the stream's offsets is skipped"
        );
    }
    assert!(
        !m.live.as_ref().unwrap().complete,
        "a recording with gaps is not complete"
    );
    // What arrived is what was sent less whole TS packets.
    let raw = w.path("raw.ts");
    concat(&w, &m, &[Role::RawChunk], &raw).await;
    let (raw_len, sent_len) = (
        std::fs::metadata(&raw).unwrap().len(),
        std::fs::metadata(&sent).unwrap().len(),
    );
    assert!(raw_len < sent_len, "{raw_len} of {sent_len} bytes");
    assert_eq!(
        (sent_len - raw_len) % 188,
        0,
        "{raw_len} of {sent_len} bytes"
    );
    // The metrics count what the gaps say, and no session is left open.
    let in_gaps: u64 = losses
        .iter()
        .map(|g| {
            let n = g.reason.split("at least ").nth(1).unwrap();
            n.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    let m = ops::scrape(&w, &gw);
    assert_eq!(
        m.value("custody_ingest_transport_lost_packets_total{protocol=\"srt\"}"),
        in_gaps as f64
    );
    eventually(30, "the SRT session ended", || async {
        let open = ops::scrape(&w, &gw).value("custody_ingest_sessions_open{protocol=\"srt\"}");
        (open == 0.0).then_some(())
    })
    .await;
}

/// A device streaming longer than `max_recording_secs` fills several
/// recordings, each after the first begun at a video keyframe: together
/// their originals are exactly what the device sent, and each verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_push_is_recorded_in_recordings_of_the_maximum_length() {
    let w = World::with_config(Backend::Local, |c| {
        c.live.close_after_secs = 4;
        c.srt.stall_secs = 3;
        c.srt.max_recording_secs = 3;
        c.srt.address = "127.0.0.1".into();
        ops::http(c);
    });
    let port = free_udp_port();
    add_srt_device(&w, "enc-1", "active", port);
    let gw = w.gateway();
    let sent = w.path("sent.ts");
    push_through(port, "enc-1", 10, &sent);
    // Every recording of the device, closed; the last closes by timeout
    // once the device has stopped.
    let manifests = eventually(90, "the recordings closed", || async {
        let ms = recordings_of(&w, "enc-1").await;
        let last = ms.last()?.1.live.as_ref()?;
        (ms.len() >= 2 && last.closed_by == custody::manifest::ClosedBy::Timeout).then_some(ms)
    })
    .await;
    assert!(manifests.len() >= 3, "{} recordings", manifests.len());
    let mut all = Vec::new();
    for (i, (key, m)) in manifests.iter().enumerate() {
        let v = w.verify(key);
        assert!(v.status.success(), "{key}: {}", stdout(&v));
        let raw = w.path(&format!("raw-{i}.ts"));
        concat(&w, m, &[Role::RawChunk], &raw).await;
        let bytes = std::fs::read(&raw).unwrap();
        if i > 0 {
            // ffmpeg writes the PAT and PMT right before each keyframe:
            // the recording begins with them, then the keyframe.
            assert_eq!(
                custody_media::ts_continuity::keyframe_cut(&bytes[..188 * 16]),
                Some(0),
                "{key} begins with a video keyframe and the tables before it"
            );
            assert_eq!(
                (bytes[1] & 0x1f, bytes[2]),
                (0, 0),
                "{key} begins with the PAT"
            );
        }
        let live = m.live.as_ref().unwrap();
        if i + 1 < manifests.len() {
            assert_eq!(live.closed_by, custody::manifest::ClosedBy::Device, "{key}");
            assert!(live.gaps.is_empty(), "{key}: {:?}", live.gaps);
            assert!(live.complete, "{key}");
        }
        all.extend(bytes);
    }
    assert!(
        all == std::fs::read(&sent).unwrap(),
        "the recordings' originals together are not what was sent"
    );
    assert_eq!(
        ops::scrape(&w, &gw).value("custody_ingest_recordings_cut_total{protocol=\"srt\"}"),
        (manifests.len() - 1) as f64
    );
}
