//! One gateway per spool: a second `custody serve` on a spool that a
//! running gateway holds stops at once, naming the first, before it
//! touches what the spool holds; the lock goes with the process.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_gateway_on_a_spool_in_use_refuses_to_start() {
    let w = World::new(Backend::Local);
    let mut gw = w.gateway();

    // A live recording left open in the spool (its recorder died): what a
    // second gateway would resume.
    let mut rec = w.client_cmd("record", "bwc-1", &gw);
    rec.arg("--state-dir")
        .arg(w.path("rec-state"))
        .args([
            "--stdin",
            "--recording-id",
            "bwc-1-held",
            "--officer",
            "o-1001",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut rec = KillOnDrop(rec.spawn().unwrap());
    let input = w.path("input.bin");
    write_random_file(&input, 256 << 10, 7);
    rec.0
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&std::fs::read(&input).unwrap())
        .unwrap();
    let data = w.path("spool/recordings/bwc-1/bwc-1-held/data");
    eventually(30, "the live recording's bytes in the spool", || {
        let n = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
        async move { (n >= 256 << 10).then_some(()) }
    })
    .await;
    drop(rec);

    // The second gateway, on another port so that nothing else stops it.
    let log = w.path("second.log");
    let mut second = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "-c"])
            .arg(&w.config)
            .args(["--listen", "127.0.0.1:0"])
            .env("CUSTODY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = second.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "a second gateway is running on a spool in use: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{said}");
    assert!(said.contains("is in use by another gateway"), "{said}");
    assert!(
        said.contains(&format!("pid {}", gw.pid().unwrap())),
        "the first gateway is named: {said}"
    );
    assert!(!said.contains("resumed from the spool"), "{said}");
    assert!(gw.is_running());
    assert!(!gw.log().contains("resumed from the spool"));

    // The lock goes with the process: the same spool, after a kill, starts
    // and resumes the recording.
    gw.restart();
    assert!(
        gw.log().contains("live recording resumed from the spool"),
        "{}",
        gw.log()
    );
}
