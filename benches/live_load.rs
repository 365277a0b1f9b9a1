//! Live load: N recorders stream a 4 Mbit/s H.264 + AAC MPEG-TS file at
//! real-time pace, all at once, into one gateway with Garage behind it.
//! Reports per N the gateway's CPU use, resident memory per stream,
//! segment-close → durable-in-storage latency (p50/p99) and dropped or late
//! data (gaps, reconnects, segments short of the expected count).
//!
//! Run: `cargo bench --bench live_load` (BENCH_STREAMS="25 50 100 200",
//! BENCH_SECONDS=30). The recorders run in this process (library client).
//! With BENCH_PIN=1 the gateway runs alone on core 0 and this process
//! (the recorders) and Garage on core 1 (`taskset`), so that the gateway's
//! own cost per stream is measured; without it all share both cores.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use custody::client::Client;
use custody::client::live::{RecordOptions, record};
use custody::client::source::Source;
use custody::metadata::{RecordingMeta, RecordingMode};

/// Pins every thread of process `pid` (and the threads it starts later)
/// to CPU `cpu`.
fn pin(pid: u32, cpu: usize) {
    let ok = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin {pid} to CPU {cpu}");
}

/// CPU seconds (user + system) a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The gateway's last latency line of `what` ("segment-close to storage"
/// or "ingest to playable part"): (count, p50 ms, p99 ms).
fn last_latency(log: &str, what: &str) -> Option<(u64, u64, u64)> {
    let line = log.lines().rev().find(|l| l.contains(what))?;
    let num = |k: &str| -> Option<u64> {
        let i = line.find(&format!("{k}="))? + k.len() + 1;
        let digits: String = line[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    };
    let count = num("segments").or_else(|| num("parts"))?;
    Some((count, num("p50_ms")?, num("p99_ms")?))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let counts: Vec<usize> = std::env::var("BENCH_STREAMS")
        .unwrap_or_else(|_| "25 50 100 200".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let file = ts_4mbit(secs);
    println!("live load, {secs} s of 4 Mbit/s H.264 + AAC per stream, real-time pace");
    println!(
        "| streams | wall s (each stream is {secs} s) | gateway CPU % (of 1 core) | per stream % | RSS per stream MiB | close→storage p50 ms | p99 ms | ingest→playable p50 ms | p99 ms | gaps | reconnects | segments / expected |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in counts {
        let w = World::with_config(Backend::Garage, |c| {
            c.live.close_after_secs = 120;
            c.live.max_streams_per_device = 1000;
        });
        let gw = w.gateway();
        let pid = gw.pid().unwrap();
        let pinned = std::env::var_os("BENCH_PIN").is_some();
        if pinned {
            pin(pid, 0);
            pin(std::process::id(), 1);
            pin(w.garage.as_ref().unwrap().pid().unwrap(), 1);
        }
        let base_rss = gw.rss_kib().unwrap_or(0);
        let cfg = custody::config::ClientConfig {
            gateway: gw.addr.to_string(),
            server_name: "localhost".into(),
            ca: w.certs.ca_cert(),
            cert: w.certs.device_cert("bwc-1"),
            key: w.certs.device_key("bwc-1"),
        };
        let cpu0 = cpu_secs(pid);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let cfg = cfg.clone();
            let state = w.path(&format!("rec-{i}"));
            let file = file.clone();
            tasks.push(tokio::spawn(async move {
                let client =
                    Client::with_timeouts(&cfg, Duration::from_secs(10), Duration::from_secs(2))
                        .unwrap();
                let r = record(
                    &client,
                    RecordOptions {
                        meta: RecordingMeta {
                            recording_id: String::new(),
                            mode: Some(RecordingMode::Live),
                            ..Default::default()
                        },
                        state_dir: state,
                        buffer_bytes: 32 << 20,
                        source: Source::File {
                            path: file,
                            start: 0,
                        },
                        duration: None,
                        tee: None,
                        recording_id: Some(format!("load-{n}-{i}")),
                        marks: Vec::new(),
                    },
                    &|_| {},
                )
                .await;
                client.close();
                r
            }));
        }
        let mut peak = base_rss;
        while !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak = peak.max(gw.rss_kib().unwrap_or(0));
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_secs(pid) - cpu0;
        let (mut gaps, mut reconnects, mut segs, mut failed) = (0, 0, 0u64, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(o) => {
                    gaps += o.gaps.len();
                    reconnects += o.reconnects;
                    segs += o.derivation.segments;
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("stream failed: {e}");
                }
            }
        }
        // Let the last uploads land and the latency line be written.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let lat = last_latency(&gw.log(), "segment-close to storage");
        let view = last_latency(&gw.log(), "ingest to playable part");
        let expected = n as u64 * secs / 2;
        println!(
            "| {n} | {wall:.1} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {gaps} | {reconnects} | {segs} / {expected}{} |",
            100.0 * cpu / wall,
            100.0 * cpu / wall / n as f64,
            (peak.saturating_sub(base_rss)) as f64 / 1024.0 / n as f64,
            lat.map(|l| l.1.to_string()).unwrap_or("-".into()),
            lat.map(|l| l.2.to_string()).unwrap_or("-".into()),
            view.map(|l| l.1.to_string()).unwrap_or("-".into()),
            view.map(|l| l.2.to_string()).unwrap_or("-".into()),
            if failed > 0 {
                format!(" ({failed} streams failed)")
            } else {
                String::new()
            },
        );
    }
}
