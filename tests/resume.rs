//! Nothing acknowledged is lost: the gateway killed mid-upload (once, and
//! again and again in a crash loop), the docking client killed mid-upload,
//! and storage down during an upload all end with the file stored intact,
//! sending only what was not acknowledged.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::faults::{HttpFaults, Rng, StorageProxy, kills_from_env, open_multipart_uploads};
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
    // The upload sent ahead before the kill was aborted (its journal named
    // it); the restarted gateway sent every part again from its spool, while
    // the rest arrived.
    assert!(
        gw.log().contains(&format!("sent_ahead={}", 1u64 << 30)),
        "{}",
        gw.log()
    );
    assert!(open_multipart_uploads(&w).await.is_empty());
}

/// A link cut mid-upload (single mode, S3 storage): the device resumes on a
/// new connection to the same gateway process, which goes on with the
/// multipart upload it was sending while the bytes arrived rather than
/// starting another; the stored original is the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_dock_goes_on_with_the_upload_sent_ahead() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let proxy = UdpProxy::start(gw.addr).await;
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    let size: u64 = (12 << 23) + 777;
    write_random_file(&file, size, 47);
    let id = recording_id_for(&file);
    let r = dock_through_a_cut(&w, &proxy, &media, &id, 3 << 23).await;
    let log = gw.log();
    assert_eq!(
        log.matches("sending the original to storage while it arrives")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains(&format!("sent_ahead={}", 12u64 << 23)),
        "{log}"
    );
    let store = w.store().await;
    let key = r["manifest_key"]
        .as_str()
        .unwrap()
        .replace("manifest.json", "000001-original.mp4");
    let (stored, h) = store.read_hash(&key).await.unwrap();
    assert_eq!(stored, size);
    assert_eq!(hex::encode(h), sha256_file(&file));
    assert!(open_multipart_uploads(&w).await.is_empty());
    assert!(
        w.verify(r["manifest_key"].as_str().unwrap())
            .status
            .success()
    );
}

/// Docks `media` through `proxy` (link timeout 2 s); once `cut_after`
/// bytes of recording `id` are durable the link drops for 5 s — longer
/// than the link timeout — and comes back. The dock must reconnect, resume
/// from at least what was durable at the cut, and get its file archived;
/// its JSON result.
async fn dock_through_a_cut(
    w: &World,
    proxy: &UdpProxy,
    media: &std::path::Path,
    id: &str,
    cut_after: u64,
) -> serde_json::Value {
    let dock = dock_via_with(w, proxy.addr, media, "2", "60");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while durable_in_spool(w, id) < cut_after {
        assert!(
            std::time::Instant::now() < deadline,
            "upload did not progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    proxy.set_cut(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let at_cut = durable_in_spool(w, id);
    proxy.set_cut(false);
    let out = dock.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(r["result"], "archived", "{r}");
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(resumed >= at_cut && resumed > 0, "{resumed} < {at_cut}");
    r
}

/// What a crash loop cost and proved.
#[derive(Debug)]
struct CrashFigures {
    kills: usize,
    /// Kills while bytes were still arriving (the others hit archiving).
    data_kills: usize,
    size: u64,
    bytes_sent: u64,
    attempts: u64,
    secs: f64,
}

impl CrashFigures {
    fn resent(&self) -> u64 {
        self.bytes_sent.saturating_sub(self.size)
    }

    fn report(&self, what: &str) {
        println!(
            "| {what} | {} ({} while receiving) | {} MiB | {} | {} | {} MiB ({:.2} %) | {:.0} |",
            self.kills,
            self.data_kills,
            self.size >> 20,
            self.attempts,
            self.bytes_sent,
            self.resent() >> 20,
            100.0 * self.resent() as f64 / self.size as f64,
            self.secs
        );
    }
}

/// Docks one file of `size` bytes while the gateway is SIGKILLed `kills`
/// times at seeded random moments (while the bytes arrive, and while the
/// recording goes to storage), each time restarted on the same spool.
async fn dock_through_gateway_kills(
    kills: usize,
    size: u64,
    seed: u64,
    gateway: impl FnOnce(&mut custody::config::GatewayConfig),
) -> CrashFigures {
    let w = World::with_config(Backend::Garage, |c| gateway(&mut c.gateway));
    let mut gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, size, seed);
    let id = recording_id_for(&file);
    let ack = w.path("spool/recordings/bwc-1").join(&id).join("ack");
    let store = w.store().await;
    let locator = format!("index/recordings/bwc-1/{id}.json");
    let started = Instant::now();
    let mut dock = KillOnDrop(
        w.client_cmd("dock", "bwc-1", &gw)
            .args(["--json", "--no-inventory", "--link-timeout", "2"])
            .args(["--retry-for-secs", "1200"])
            .arg(&media)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs(60 + 20 * kills as u64);
    let state = ack.with_file_name("state.json");
    let spooled = || std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"spooled\""));
    let attempts_seen = |gw: &GatewayProc| {
        gw.log()
            .lines()
            .filter(|l| l.contains(&id) && l.contains("from byte"))
            .count()
    };
    let mut durable_at_kill = Vec::new();
    let mut done = 0;
    while done < kills {
        // Each kill hits work in progress: once the dock has resumed (or,
        // once every byte is in, while the archiver moves the recording to
        // storage), the gateway lives a random while and is killed.
        let seen = attempts_seen(&gw);
        while attempts_seen(&gw) == seen && !spooled() {
            assert!(Instant::now() < deadline, "the dock did not come back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(rng.between(Duration::from_millis(200), Duration::from_millis(1500)))
            .await;
        if store.exists(&locator).await.unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "the crash loop took too long");
        gw.kill();
        durable_at_kill.push(read_ack(&ack).unwrap_or(0));
        done += 1;
        tokio::time::sleep(rng.between(Duration::ZERO, Duration::from_millis(400))).await;
        gw.restart();
    }
    let out = wait_output(&mut dock.0, deadline);
    assert!(out.status.success(), "{}\n{}", stdout(&out), gw.log());
    let r: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert!(r["result"] == "archived" || r["result"] == "spooled", "{r}");
    let key = r["manifest_key"].as_str().unwrap().to_string();
    eventually(120, "the recording in storage", || {
        let (store, key) = (store.clone(), key.clone());
        async move { store.exists(&key).await.ok().filter(|e| *e) }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();

    // Every acknowledged byte survived: each restart resumed at or beyond
    // what was durable when the gateway died.
    let log = gw.log();
    let resumes: Vec<u64> = log
        .lines()
        .filter(|l| l.contains(&id) && l.contains("receiving"))
        .filter_map(|l| {
            let at = l.find("from byte ")? + "from byte ".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    for d in durable_at_kill.iter().filter(|d| **d < size) {
        assert!(
            resumes.iter().any(|r| r >= d),
            "{d} bytes were durable at a kill, but no attempt resumed there: {resumes:?}"
        );
    }
    // The stored original is the file, byte for byte, and the recording
    // verifies from storage alone.
    let original = key.replace("manifest.json", "000001-original.mp4");
    let (n, h) = store.read_hash(&original).await.unwrap();
    assert_eq!((n, hex::encode(h)), (size, sha256_file(&file)));
    let v = w.verify(&key);
    assert!(v.status.success(), "{}", stdout(&v));
    // Killed mid-multipart or not, storage holds no upload left open.
    eventually(60, "no multipart upload left open", || {
        let w = &w;
        async move { open_multipart_uploads(w).await.is_empty().then_some(()) }
    })
    .await;
    assert!(!log.contains("panicked"), "{log}");
    let figures = CrashFigures {
        kills: done,
        data_kills: durable_at_kill.iter().filter(|d| **d < size).count(),
        size,
        bytes_sent: r["bytes_sent"].as_u64().unwrap(),
        attempts: r["attempts"].as_u64().unwrap(),
        secs,
    };
    println!("{figures:?}; durable at each kill {durable_at_kill:?}; resumed at {resumes:?}");
    figures
}

fn wait_output(c: &mut Child, deadline: Instant) -> std::process::Output {
    loop {
        if c.try_wait().unwrap().is_some() {
            let mut out = String::new();
            if let Some(mut s) = c.stdout.take() {
                std::io::Read::read_to_string(&mut s, &mut out).unwrap();
            }
            return std::process::Output {
                status: c.wait().unwrap(),
                stdout: out.into_bytes(),
                stderr: Vec::new(),
            };
        }
        assert!(Instant::now() < deadline, "the client did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The crash-loop gateways' connection-window ceiling: the autotuned window
/// never exceeds it, so it bounds what one kill can cost.
const CRASH_WINDOW: u64 = 4 << 20;

/// The crash-loop gateway's settings: the window ceiling, then `extra`,
/// `[gateway]` settings in TOML (which must not set
/// `connection_window_bytes` again).
fn crash_settings(extra: &str) -> impl FnOnce(&mut custody::config::GatewayConfig) {
    let extra: toml::Table = toml::from_str(extra)
        .unwrap_or_else(|e| panic!("CUSTODY_CRASH_GATEWAY is not [gateway] settings in TOML: {e}"));
    move |g| {
        g.connection_window_bytes = CRASH_WINDOW;
        let mut t = toml::Table::try_from(&*g).expect("gateway settings as TOML");
        t.extend(extra);
        *g = t
            .try_into()
            .expect("CUSTODY_CRASH_GATEWAY: settings the gateway reads");
    }
}

/// The most a kill while bytes arrive can cost the dock, by the protocol:
/// what the connection window let the device send ahead of what the gateway
/// read, the frame being read and the one queued for the spool writer.
/// Bytes written but not yet synced are not lost: the restarted gateway
/// keeps them (same boot).
fn resend_bound_per_kill() -> u64 {
    CRASH_WINDOW + 2 * custody::limits::MAX_DATA_LEN as u64
}

/// `CUSTODY_CRASH_GATEWAY` adds `[gateway]` settings (e.g. smaller
/// `ack_bytes` and windows) to reproduce the tuned rows of
/// `docs/reliability.md`.
#[tokio::test(flavor = "multi_thread")]
async fn docked_upload_survives_a_crash_loop() {
    let settings = std::env::var("CUSTODY_CRASH_GATEWAY").unwrap_or_default();
    let f = dock_through_gateway_kills(
        kills_from_env(),
        1 << 30,
        0x5eed_0003,
        crash_settings(&settings),
    )
    .await;
    f.report("docked 1 GiB, loopback");
    assert!(f.kills >= kills_from_env().min(5), "{f:?}");
    if settings.is_empty() {
        let bound = f.data_kills as u64 * resend_bound_per_kill();
        assert!(f.resent() <= bound, "{f:?}: more re-sent than {bound}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the issue's 100 kills, about 10 minutes: cargo test --release --test resume hundred -- --ignored --nocapture"]
async fn docked_upload_survives_a_hundred_kills() {
    let f = dock_through_gateway_kills(100, 4 << 30, 0x5eed_0100, crash_settings("")).await;
    f.report("docked 4 GiB, loopback");
    let bound = f.data_kills as u64 * resend_bound_per_kill();
    assert!(f.resent() <= bound, "{f:?}: more re-sent than {bound}");
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

/// The docking client SIGKILLed again and again at seeded random moments
/// while it sends, and run again each time: every run resumes at least
/// where the gateway was durable when the one before died (the gateway
/// keeps what a dead client's stream delivered), and the last one stores
/// the file intact.
#[tokio::test(flavor = "multi_thread")]
async fn dock_killed_again_and_again_resumes_each_run() {
    let kills = kills_from_env();
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, 1 << 30, 45);
    let id = recording_id_for(&file);
    let mut rng = Rng::new(0x5eed_0005);
    let deadline = Instant::now() + Duration::from_secs(60 + 15 * kills as u64);
    let mut durable_at_kill = Vec::new();
    for _ in 0..kills {
        let before = gw.log().matches("from byte").count();
        let mut dock = KillOnDrop(
            w.client_cmd("dock", "bwc-1", &gw)
                .args(["--json", "--no-inventory"])
                .arg(&media)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Killed a random while after the gateway accepted its upload.
        while gw.log().matches("from byte").count() == before {
            assert!(Instant::now() < deadline, "the dock did not start sending");
            assert!(dock.0.try_wait().unwrap().is_none(), "the dock ended early");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(rng.between(Duration::from_millis(50), Duration::from_millis(500)))
            .await;
        dock.0.kill().unwrap();
        let _ = dock.0.wait();
        durable_at_kill.push(durable_in_spool(&w, &id));
    }
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    let r = &results[0];
    assert_eq!(r["result"], "archived", "{r}");
    let log = gw.log();
    let resumes: Vec<u64> = log
        .lines()
        .filter(|l| l.contains(&id))
        .filter_map(|l| {
            l.split("from byte ")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(resumes.len(), kills + 1, "{resumes:?}");
    for (i, d) in durable_at_kill.iter().enumerate() {
        assert!(
            resumes[i + 1] >= *d,
            "run {} resumed at {} but {d} was durable when run {i} died",
            i + 1,
            resumes[i + 1]
        );
    }
    let m = r["manifest_key"].as_str().unwrap();
    assert!(w.verify(m).status.success());
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
    println!(
        "dock killed {kills} times: durable at each kill {durable_at_kill:?}, resumed at {resumes:?}"
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
    let r = dock_through_a_cut(&w, &proxy, &media, &id, 50 << 20).await;
    let m = r["manifest_key"].as_str().unwrap();
    assert!(w.verify(m).status.success());
    // "archived" means the gateway matched the file's SHA-256 end to end.
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_outage_keeps_bytes_in_the_spool_until_storage_returns() {
    let w = World::with_config(Backend::Garage, |c| c.gateway.archive_wait_secs = 2);
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

/// Garage SIGKILLed and started again while the gateway is in the middle
/// of a multipart upload of a docked file: the archiver retries, the
/// recording is stored whole, and no multipart upload is left open.
#[tokio::test(flavor = "multi_thread")]
async fn garage_restarted_mid_multipart_upload_leaves_nothing_open() {
    let mut w = World::with_config(Backend::Garage, |c| c.gateway.archive_wait_secs = 1);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.mp4");
    write_random_file(&file, 160 << 20, 46);
    let id = recording_id_for(&file);
    let journal = w.path("spool/recordings/bwc-1").join(&id).join("multipart");
    let mut dock = KillOnDrop(
        w.client_cmd("dock", "bwc-1", &gw)
            .args(["--json", "--no-inventory"])
            .arg(&media)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The journal names the upload once storage gave it an id: the
    // upload is open, parts are going up.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&journal).is_ok_and(|j| j.lines().count() > 1) {
        assert!(Instant::now() < deadline, "no multipart upload began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.garage.as_mut().unwrap().stop();
    let journal_then = std::fs::read_to_string(&journal).unwrap_or_default();
    eventually(60, "the archiver failing while storage is down", || {
        let retrying = gw.log().contains("retrying");
        async move { retrying.then_some(()) }
    })
    .await;
    w.garage.as_mut().unwrap().restart();
    let out = std::mem::replace(&mut dock.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    let r: serde_json::Value = stdout(&out)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap();
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
    let key = r["manifest_key"].as_str().unwrap().to_string();
    let store = w.store().await;
    // The locator is the archive's last write (docs/manifest.md §7).
    let locator = format!("index/recordings/bwc-1/{id}.json");
    eventually(120, "the recording archived after the restart", || {
        let (store, locator) = (store.clone(), locator.clone());
        async move { store.exists(&locator).await.ok().filter(|e| *e) }
    })
    .await;
    let v = w.verify(&key);
    assert!(v.status.success(), "{}", stdout(&v));
    eventually(60, "no multipart upload left open", || async {
        let open = open_multipart_uploads(&w).await;
        open.is_empty().then_some(())
    })
    .await;
    assert!(!journal.exists(), "the journal outlived the upload");
    assert!(!gw.log().contains("panicked"));
    println!("garage killed with the journal at {journal_then:?}");
}

/// Storage slow (2 s before every response, 4 MiB/s each way) and failing
/// at random (seeded: a fifth of new connections answered 500 or 503, a
/// fifth of further requests on a kept-alive connection cut), through a
/// proxy between the gateway and Garage: every docked file still reaches
/// storage whole, nothing multipart is left open, the log says what failed.
#[tokio::test(flavor = "multi_thread")]
async fn slow_and_failing_storage_still_gets_every_file() {
    let w = World::with_config(Backend::Garage, |c| c.gateway.archive_wait_secs = 1);
    let garage: std::net::SocketAddr = w.garage.as_ref().unwrap().endpoint["http://".len()..]
        .parse()
        .unwrap();
    let bad = HttpFaults {
        latency: Duration::from_secs(2),
        bytes_per_sec: 4 << 20,
        error_rate: 0.2,
    };
    // Storage works while the gateway starts (its start-up checks are not
    // under test here); the faults begin with the load.
    let proxy = StorageProxy::start(garage, HttpFaults::default(), 0x5eed_0007).await;
    // The gateway (not the test) talks to storage through the proxy.
    w.edit_config(|c| c.store.endpoint = Some(format!("http://{}", proxy.addr)));
    let gw = w.gateway();
    proxy.set(bad);
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.mp4"), 20 << 20, 47);
    write_random_file(&media.join("b.wav"), 300_000, 48);
    let started = Instant::now();
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(results.len(), 2, "{}", stdout(&out));
    let store = w.store().await;
    for r in &results {
        // The locator is the archive's last write (docs/manifest.md §7).
        let key = format!("index/recordings/{}.json", r["recording"].as_str().unwrap());
        eventually(300, "archived through slow, failing storage", || {
            let (store, key) = (store.clone(), key.clone());
            async move { store.exists(&key).await.ok().filter(|e| *e) }
        })
        .await;
    }
    let secs = started.elapsed().as_secs_f64();
    proxy.set(HttpFaults::default());
    for r in &results {
        let v = w.verify(r["manifest_key"].as_str().unwrap());
        assert!(v.status.success(), "{}", stdout(&v));
    }
    eventually(60, "no multipart upload left open", || async {
        open_multipart_uploads(&w).await.is_empty().then_some(())
    })
    .await;
    let injected = proxy.injected.load(std::sync::atomic::Ordering::Relaxed);
    assert!(injected > 0, "the proxy injected no fault");
    let log = gw.log();
    assert!(!log.contains("panicked"), "{log}");
    println!(
        "slow, failing storage: {injected} requests failed or cut by the proxy; both files stored in {secs:.0} s; {} archive retries logged",
        log.matches("retrying").count()
    );
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
    dock_via_with(w, addr, dir, "10", "120")
}

/// `custody dock` of `dir` through `addr` (a link emulator), with the
/// given link timeout and retry budget (seconds), JSON on stdout.
fn dock_via_with(
    w: &World,
    addr: std::net::SocketAddr,
    dir: &std::path::Path,
    link_timeout: &str,
    retry_for: &str,
) -> std::process::Child {
    Command::new(BIN)
        .arg("dock")
        .args(["--gateway", &addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .args(["--json", "--no-inventory", "--link-timeout", link_timeout])
        .args(["--retry-for-secs", retry_for])
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
