//! Full disks (issue 11, item 5). The gateway's spool on a small tmpfs that
//! fills: new bytes are refused with `spool_full` (retryable), every
//! acknowledged byte is kept, and the upload goes on once space returns.
//! The recorder's buffer on a filesystem without room for it: `custody
//! record` refuses to start rather than record bytes it cannot keep.
//!
//! While the spool is full the gateway says so in its metrics too:
//! `/readyz` answers 503 naming the spool, `custody_spool_below_reserve` is
//! 1 and `custody_refusals_total{reason="spool_full"}` counts the refusals.
//!
//! The filesystems are tmpfs mounts, which need root (CAP_SYS_ADMIN): where
//! mounting is impossible the tests say so on stderr and skip.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::faults::Tmpfs;
use common::ops::{self, http};
use common::*;
use custody::spool::space::free_bytes;
use custody::spool::writer::read_ack;

const MIB: u64 = 1 << 20;

fn durable_in_spool(w: &World, recording: &str) -> u64 {
    read_ack(&w.path("spool/recordings/bwc-1").join(recording).join("ack")).unwrap_or(0)
}

/// Fills the filesystem at `dir` until `leave` bytes are free.
fn fill_until(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let ballast = dir.join("ballast");
    let free = free_bytes(dir).unwrap();
    assert!(free > leave, "{free} bytes free, wanted to leave {leave}");
    let f = std::fs::File::create(&ballast).unwrap();
    // tmpfs has no holes to cheat with: a zero-filled file takes its room.
    use std::io::Write;
    let mut w = std::io::BufWriter::new(f);
    let chunk = vec![0u8; MIB as usize];
    let mut left = free - leave;
    while left > 0 {
        let n = left.min(MIB) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.into_inner().unwrap().sync_all().unwrap();
    ballast
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_refuses_new_bytes_keeps_acknowledged_ones_and_recovers() {
    let w = World::with_config(Backend::Local, |c| {
        c.gateway.spool_reserve_bytes = 16 * MIB;
        c.gateway.ack_bytes = MIB;
        http(c);
    });
    let spool = w.path("spool");
    let Some(_fs) = Tmpfs::mount_or_skip(&spool, 128 * MIB, "the gateway's spool") else {
        return;
    };
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("clip.bin");
    write_random_file(&file, 48 * MIB, 7);
    let id = format!("f-{}", &sha256_file(&file)[..40]);
    assert_eq!(ops::get(&w, &gw, "/readyz", None).status, 200);
    let spool_full = "custody_refusals_total{reason=\"spool_full\"}";
    assert_eq!(ops::scrape(&w, &gw).value(spool_full), 0.0);

    // 16 MiB of reserve and 20 MiB more: the upload gets about 20 MiB in.
    let ballast = fill_until(&spool, 36 * MIB);
    let mut dock = KillOnDrop(
        w.client_cmd("dock", "bwc-1", &gw)
            .args(["--json", "--no-inventory", "--retry-for-secs", "120"])
            .arg(&media)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    eventually(60, "the gateway to say its spool is full", || async {
        gw.log().contains("spool full").then_some(())
    })
    .await;
    // The dock keeps trying and is refused before any byte is taken: the
    // durable length does not move and nothing is lost.
    let refusals = |n: usize| {
        let gw = &gw;
        async move { (gw.log().matches("spool_full").count() >= n).then_some(()) }
    };
    eventually(30, "a retry refused with spool_full", || refusals(2)).await;
    let durable_when_full = durable_in_spool(&w, &id);
    assert!(
        durable_when_full > 0 && durable_when_full < 48 * MIB,
        "{durable_when_full}"
    );
    eventually(30, "another retry refused", || refusals(3)).await;
    assert!(dock.0.try_wait().unwrap().is_none(), "the dock gave up");
    assert_eq!(durable_in_spool(&w, &id), durable_when_full);
    assert!(
        free_bytes(&spool).unwrap() >= 8 * MIB,
        "the reserve was eaten"
    );
    // The gateway says so to its monitoring: not ready, naming the spool,
    // and the refusals counted by their stream error.
    let ready = ops::get(&w, &gw, "/readyz", None);
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.starts_with("not ready: spool "), "{ready:?}");
    assert!(ready.body.contains("the spool is full"), "{ready:?}");
    let full = ops::scrape(&w, &gw);
    assert!(full.value(spool_full) >= 2.0, "{}", full.0);
    assert_eq!(full.value("custody_spool_below_reserve"), 1.0);
    assert!(full.value("custody_spool_free_bytes") < full.value("custody_spool_reserve_bytes"));

    // Space returns: the next attempt resumes where the spool was durable.
    std::fs::remove_file(&ballast).unwrap();
    let ready = ops::get(&w, &gw, "/readyz", None);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready\n"),
        "{ready:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while dock.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the dock did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = std::mem::replace(
        &mut dock.0,
        std::process::Command::new("true").spawn().unwrap(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let r: serde_json::Value = stdout(&out)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("a result line");
    assert_eq!(r["result"], "archived", "{r}");
    assert_eq!(r["sha256"], sha256_file(&file), "{r}");
    assert!(r["attempts"].as_u64().unwrap() >= 3, "{r}");
    let log = gw.log();
    assert!(log.contains("spool has room again"), "{log}");
    let resumed: Vec<u64> = log
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
    assert!(
        resumed.last().is_some_and(|&o| o >= durable_when_full),
        "resumed at {resumed:?}, {durable_when_full} was durable"
    );
    assert!(
        w.verify(r["manifest_key"].as_str().unwrap())
            .status
            .success()
    );
    assert!(!log.contains("panicked"), "{log}");
    let after = ops::scrape(&w, &gw);
    assert_eq!(after.value("custody_spool_below_reserve"), 0.0);
    assert!(after.value("custody_docked_uploads_resumed_total") >= 1.0);
    assert_eq!(after.value("custody_docked_uploads_completed_total"), 1.0);
    assert_eq!(
        after.value("custody_acknowledged_bytes_total{kind=\"docked\"}"),
        (48 * MIB) as f64
    );
    println!(
        "spool full at {durable_when_full} of {} bytes; resumed at {resumed:?}; {} refusals with spool_full; {r}",
        48 * MIB,
        after.value(spool_full)
    );
}

/// A live stream asked for while the spool is full is refused with
/// `spool_full`; the recorder keeps its bytes and retries, and once space
/// returns the whole recording arrives: complete, no gap.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_stream_refused_by_a_full_spool_arrives_whole_once_space_returns() {
    let w = World::with_config(Backend::Local, |c| {
        c.gateway.spool_reserve_bytes = 16 * MIB;
        c.live.close_after_secs = 60;
    });
    let spool = w.path("spool");
    let Some(_fs) = Tmpfs::mount_or_skip(&spool, 64 * MIB, "the gateway's spool") else {
        return;
    };
    let gw = w.gateway();
    let ballast = fill_until(&spool, 8 * MIB);
    let tee = w.path("tee.ts");
    let mut rec = KillOnDrop(
        w.client_cmd("record", "bwc-1", &gw)
            .arg("--state-dir")
            .arg(w.path("rec"))
            .args(["--json", "--officer", "o-1001", "--test-source"])
            .args(["--duration", "20", "--tee"])
            .arg(&tee)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    eventually(30, "live streams refused with spool_full", || {
        let n = gw.log().matches("spool_full").count();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    assert!(!gw.log().contains("live stream open"), "{}", gw.log());
    std::fs::remove_file(&ballast).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while rec.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the recorder did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = std::mem::replace(
        &mut rec.0,
        std::process::Command::new("true").spawn().unwrap(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let o: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["complete"], true, "{o}");
    assert!(o["reconnects"].as_u64().unwrap() >= 2, "{o}");
    assert_eq!(
        o["bytes"].as_u64().unwrap(),
        std::fs::metadata(&tee).unwrap().len(),
        "{o}"
    );
    let v = w.verify(o["manifest_key"].as_str().unwrap());
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(gw.log().contains("spool has room again"), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorder_whose_buffer_does_not_fit_refuses_to_record() {
    let w = World::new(Backend::Local);
    let state = w.path("rec-state");
    let Some(_fs) = Tmpfs::mount_or_skip(&state, 8 * MIB, "the recorder's buffer") else {
        return;
    };
    let gw = w.gateway();
    let out = w
        .client_cmd("record", "bwc-1", &gw)
        .arg("--state-dir")
        .arg(&state)
        .args(["--test-source", "--duration", "5", "--buffer-mib", "64"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("buffer"), "{err}");
    // Nothing was streamed: no recording claims bytes that were never kept.
    assert!(!gw.log().contains("live stream open"), "{}", gw.log());
}
