//! Nothing acknowledged is lost: the gateway killed mid-upload, the docking
//! client killed mid-upload, and storage down during an upload all end with
//! the file stored intact, sending only what was not acknowledged.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::link::{LinkEmulator, LinkProfile};
use common::*;
use custody::spool::writer::read_ack;

fn durable_in_spool(w: &World, recording: &str) -> u64 {
    read_ack(&w.path("spool/recordings/bwc-1").join(recording).join("ack")).unwrap_or(0)
}

fn recording_id_for(file: &std::path::Path) -> String {
    format!("f-{}", &sha256_file(file)[..40])
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_sigkilled_mid_gigabyte_upload_resumes_from_durable_offset() {
    let w = World::new(Backend::Garage);
    let mut gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, 1 << 30, 42);
    let id = recording_id_for(&file);

    let mut dock = w
        .client_cmd("dock", "bwc-1", &gw)
        .args(["--json", "--retry-for-secs", "0"])
        .arg(&media)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the gateway once a good part of the file is durable.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while durable_in_spool(&w, &id) < 300 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "upload did not progress"
        );
        assert!(dock.try_wait().unwrap().is_none(), "dock ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.kill();
    let at_kill = durable_in_spool(&w, &id);
    let _ = dock.wait();
    assert!(at_kill < 1 << 30, "the whole file was already durable");

    gw.restart();
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), gw.log());
    let r = &results[0];
    assert_eq!(r["result"], "archived", "{r}");
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= at_kill,
        "resumed from {resumed}, but {at_kill} was durable"
    );

    // The stored object is the source, byte for byte.
    let store = w.store().await;
    let key = r["manifest_key"]
        .as_str()
        .unwrap()
        .replace("manifest.json", "000001-original.mp4");
    let (size, h) = store.read_hash(&key).await.unwrap();
    assert_eq!(size, 1 << 30);
    assert_eq!(hex::encode(h), sha256_file(&file));
    assert!(
        w.verify(r["manifest_key"].as_str().unwrap())
            .status
            .success()
    );
    // The gateway said how much it kept after the crash.
    assert!(
        gw.log().contains(&format!("from byte {resumed}")),
        "{}",
        gw.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dock_killed_mid_upload_resumes_when_run_again() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, 200 << 20, 43);
    let id = recording_id_for(&file);
    let mut dock = w
        .client_cmd("dock", "bwc-1", &gw)
        .arg("--json")
        .arg(&media)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while durable_in_spool(&w, &id) < 50 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "upload did not progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    dock.kill().unwrap();
    let _ = dock.wait();
    let at_kill = durable_in_spool(&w, &id);
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(results[0]["result"], "archived");
    let resumed = results[0]["resumed_from"].as_u64().unwrap();
    assert!(resumed >= at_kill && resumed > 0, "{resumed} < {at_kill}");
    assert!(
        w.verify(results[0]["manifest_key"].as_str().unwrap())
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dock_through_a_dropped_link_reconnects_and_resumes() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let proxy = UdpProxy::start(gw.addr).await;
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, 200 << 20, 44);
    let id = recording_id_for(&file);
    let dock = Command::new(BIN)
        .arg("dock")
        .args(["--gateway", &proxy.addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .args(["--json", "--no-inventory", "--link-timeout", "2"])
        .args(["--retry-for-secs", "60"])
        .arg(&media)
        .current_dir(w.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while durable_in_spool(&w, &id) < 50 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "upload did not progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The link drops for longer than the link timeout, then comes back.
    proxy.set_cut(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let at_cut = durable_in_spool(&w, &id);
    proxy.set_cut(false);
    let out = dock.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(r["result"], "archived", "{r}");
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(resumed >= at_cut && resumed > 0, "{resumed} < {at_cut}");
    let m = r["manifest_key"].as_str().unwrap();
    assert!(w.verify(m).status.success());
    // "archived" means the gateway matched the file's SHA-256 end to end.
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_outage_keeps_bytes_in_the_spool_until_storage_returns() {
    let w = World::with_gateway_settings(Backend::Garage, "archive_wait_secs = 2");
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.mp4"), 30 << 20, 44);
    write_random_file(&media.join("b.wav"), 100_000, 45);

    let mut w = w;
    w.garage.as_mut().unwrap().stop();
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    // Durable in the spool counts as delivered: the dock succeeds.
    assert!(out.status.success(), "{}", stdout(&out));
    for r in &results {
        assert_eq!(r["result"], "spooled", "{r}");
    }
    // The gateway tries storage, fails, and keeps trying.
    eventually(60, "the archiver retrying while storage is down", || {
        let retrying = gw.log().contains("retrying");
        async move { retrying.then_some(()) }
    })
    .await;

    w.garage.as_mut().unwrap().restart();
    let store = w.store().await;
    for r in &results {
        let key = r["manifest_key"].as_str().unwrap().to_string();
        eventually(60, "archive after the outage", || {
            let (store, key) = (store.clone(), key.clone());
            async move { store.exists(&key).await.ok().filter(|e| *e) }
        })
        .await;
        let o = w.verify(&key);
        assert!(o.status.success(), "{}", stdout(&o));
    }
    // The spool let go of the bulk data once storage had it.
    let leftover: u64 = walk_sizes(&w.path("spool/recordings"));
    assert!(leftover < 1 << 20, "spool still holds {leftover} bytes");
    // Usage records written during the outage reached storage too.
    eventually(30, "usage records after the outage", || {
        let store = store.clone();
        async move {
            let n = store.list("usage/bwc-1/").await.ok()?.len();
            (n >= 4).then_some(())
        }
    })
    .await;
}

fn walk_sizes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let md = e.metadata().unwrap();
        if md.is_dir() {
            total += walk_sizes(&e.path());
        } else {
            total += md.len();
        }
    }
    total
}

/// `custody dock --json` of `dir` as bwc-1 through the emulated link at
/// `addr`.
fn dock_via(w: &World, addr: std::net::SocketAddr, dir: &std::path::Path) -> std::process::Child {
    Command::new(BIN)
        .arg("dock")
        .args(["--gateway", &addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .args(["--json", "--no-inventory", "--link-timeout", "10"])
        .args(["--retry-for-secs", "120"])
        .arg(dir)
        .current_dir(w.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Docked uploads through radio links losing 1 %, 5 % and 10 % of the
/// packets each way, with 100–200 ms round trips, jitter and a 5 Mbit/s
/// cap: each file is archived with its SHA-256 matched end to end and
/// verifies from storage. (Speed is a figure: benches/lossy_links.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn dock_through_lossy_radio_links_arrives_whole() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    for (i, (loss, rtt_ms)) in [(0.01, 100), (0.05, 150), (0.10, 200)]
        .into_iter()
        .enumerate()
    {
        let profile = LinkProfile::mobile(
            loss,
            Duration::from_millis(rtt_ms),
            Duration::from_millis(10),
            5_000_000,
            i as u64 + 11,
        );
        let link = LinkEmulator::with_profile(gw.addr, profile).await;
        let media = w.path(&format!("media-{i}"));
        std::fs::create_dir_all(&media).unwrap();
        let file = media.join("clip.mp4");
        // (Distinct contents: the generator seeds with `seed | 1`.)
        write_random_file(&file, 3 << 20, 101 + 2 * i as u64);
        let out = dock_via(&w, link.addr, &media).wait_with_output().unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        let r: serde_json::Value =
            serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
        assert_eq!(r["result"], "archived", "{loss}: {r}");
        assert_eq!(r["sha256"], sha256_file(&file), "{r}");
        assert!(
            w.verify(r["manifest_key"].as_str().unwrap())
                .status
                .success()
        );
        let up = link.stats().up;
        let radio = up.dropped_random as f64 / up.offered as f64;
        assert!((radio - loss).abs() < loss / 2.0, "{loss}: {up:?}");
    }
}

/// The dock's address changes mid-upload (new source port, then new
/// address): the upload carries on over the same connection by QUIC
/// migration and completes in its first attempt — nothing resumed.
#[tokio::test(flavor = "multi_thread")]
async fn dock_through_an_address_change_continues_on_the_same_connection() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let profile = LinkProfile::mobile(
        0.0,
        Duration::from_millis(40),
        Duration::from_millis(5),
        40_000_000,
        21,
    );
    let link = LinkEmulator::with_profile(gw.addr, profile).await;
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("clip.mp4");
    write_random_file(&file, 24 << 20, 60);
    let id = recording_id_for(&file);
    let dock = dock_via(&w, link.addr, &media);
    for (at, ip) in [(4u64 << 20, None), (12 << 20, Some("127.0.0.2"))] {
        common::eventually(120, "upload progress", || {
            let d = durable_in_spool(&w, &id);
            async move { (d >= at).then_some(()) }
        })
        .await;
        link.rebind(ip.map(|i| i.parse().unwrap())).await;
    }
    let out = dock.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(r["result"], "archived", "{r}");
    assert_eq!(r["resumed_from"], 0, "one attempt, no reconnect: {r}");
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
    assert_eq!(link.stats().rebinds, 2);
    assert_eq!(link.gateway_sees()[0].ip().to_string(), "127.0.0.2");
    assert!(
        w.verify(r["manifest_key"].as_str().unwrap())
            .status
            .success()
    );
}
