//! Lossy links: live recordings (`custody record --file`, a 4.2 Mbit/s
//! H.264 + AAC MPEG-TS at the pace of its clock) and docked uploads
//! (`custody dock`, a 20 MiB file) through the link emulator
//! (tests/common/link.rs) into `custody serve` with a local store, for each
//! congestion controller asked for, with a loss-free link of the same delay
//! and cap as the baseline in the same run.
//!
//! Per live run: the real-time factor (media seconds / seconds until the
//! recording closed), how far the recorder ran behind (its unacknowledged
//! bytes, in seconds of media: at most, and when the source ended), the
//! recorder's buffer fill over time, and quinn's path statistics from the
//! recorder's log (packets lost, congestion events, RTT, window). Per dock
//! run: seconds and goodput. Medians of BENCH_RUNS runs.
//!
//! Run: `cargo bench --bench lossy_links` (about 22 minutes on 2 cores;
//! BENCH_ONLY picks rows, 2 minutes each). Environment: BENCH_CC
//! (controllers, default "custody-bbr"; "cubic newreno quinn-bbr" for the
//! comparison), BENCH_SECONDS (live media length, default 30),
//! BENCH_DOCK_MIB (default 20), BENCH_RUNS (default 3), BENCH_ONLY (run only
//! scenarios whose name contains it), BENCH_TIMEOUT (seconds before a run
//! counts as not finished, default 240), BENCH_LOOPBACK_MIB (the dock over
//! loopback, default 256), BENCH_LOG (append the devices' logs to this
//! file). Prints markdown tables for docs/reliability.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::link::{GilbertElliott, LinkEmulator, LinkProfile};
use common::*;

const MBIT: u64 = 1_000_000;

/// A link to run through: loss each way, round trip, jitter each way, cap
/// each way.
#[derive(Clone)]
struct Scenario {
    name: String,
    /// None: straight to the gateway over loopback, no emulator.
    profile: Option<LinkProfile>,
}

fn mobile(loss: f64, rtt_ms: u64, cap_mbit: u64, seed: u64) -> Scenario {
    let name = if loss == 0.0 {
        format!("no loss, {rtt_ms} ms RTT, {cap_mbit} Mbit/s (baseline)")
    } else {
        format!(
            "{} % loss, {rtt_ms} ms RTT, {cap_mbit} Mbit/s",
            loss * 100.0
        )
    };
    Scenario {
        name,
        profile: Some(LinkProfile::mobile(
            loss,
            Duration::from_millis(rtt_ms),
            Duration::from_millis(10),
            cap_mbit * MBIT,
            seed,
        )),
    }
}

/// 2 % mean loss in bursts of 5 packets on average (Gilbert–Elliott), on
/// top of 0.5 % random loss.
fn bursty(rtt_ms: u64, cap_mbit: u64, seed: u64) -> Scenario {
    let mut s = mobile(0.005, rtt_ms, cap_mbit, seed);
    let ge = GilbertElliott {
        p: 0.004,
        r: 0.2,
        loss_good: 0.0,
        loss_bad: 0.8,
    };
    let p = s.profile.as_mut().expect("emulated");
    p.up.burst = Some(ge);
    p.down.burst = Some(ge);
    s.name = format!(
        "bursts ({:.1} % in bursts of {:.0}) + 0.5 % loss, {rtt_ms} ms RTT, {cap_mbit} Mbit/s",
        ge.mean_loss() * 100.0,
        1.0 / ge.r
    );
    s
}

fn live_scenarios() -> Vec<Scenario> {
    vec![
        mobile(0.0, 100, 20, 1),
        mobile(0.02, 100, 20, 2),
        mobile(0.0, 200, 5, 3),
        mobile(0.01, 150, 5, 4),
        mobile(0.02, 100, 5, 5),
        mobile(0.05, 200, 5, 6),
        mobile(0.10, 200, 5, 7),
        bursty(150, 5, 8),
    ]
}

fn dock_scenarios(loopback_mib: u64) -> Vec<Scenario> {
    vec![
        Scenario {
            name: format!("loopback, no emulator ({loopback_mib} MiB)"),
            profile: None,
        },
        mobile(0.0, 100, 20, 11),
        mobile(0.05, 100, 20, 12),
        mobile(0.0, 200, 5, 13),
        mobile(0.01, 150, 5, 14),
        mobile(0.05, 200, 5, 15),
        mobile(0.10, 200, 5, 16),
    ]
}

/// Lines a child wrote to stderr, each with when it was read.
type Lines = Arc<Mutex<Vec<(f64, String)>>>;

/// Also appended to the file BENCH_LOG names, if set, for a closer look.
fn collect_stderr(child: &mut std::process::Child, t0: Instant) -> Lines {
    let lines: Lines = Arc::default();
    let err = child.stderr.take().unwrap();
    let l2 = lines.clone();
    let mut log = std::env::var("BENCH_LOG").ok().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    });
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let t = t0.elapsed().as_secs_f64();
            if let Some(f) = log.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{t:.2} {line}");
            }
            l2.lock().unwrap().push((t, line));
        }
    });
    lines
}

/// `key=value` from a tracing line.
fn field(line: &str, key: &str) -> Option<f64> {
    let i = line.find(&format!(" {key}="))? + key.len() + 2;
    let v: String = line[i..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    v.parse().ok()
}

/// quinn's path statistics of the last `path` line: (lost packets, sent
/// packets, congestion events, rtt ms, cwnd).
fn last_path(lines: &Lines) -> Option<[f64; 5]> {
    let l = lines.lock().unwrap();
    let line = &l.iter().rev().find(|(_, x)| x.contains("custody::link"))?.1;
    Some([
        field(line, "lost_packets")?,
        field(line, "sent_packets")?,
        field(line, "congestion_events")?,
        field(line, "rtt_ms")?,
        field(line, "cwnd")?,
    ])
}

/// The recorder's buffer over time: (seconds, unacknowledged bytes,
/// acknowledged bytes).
fn buffer_fill(lines: &Lines) -> Vec<(f64, f64, f64)> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, x)| x.contains("custody::buffer"))
        .filter_map(|(t, x)| Some((*t, field(x, "unacked")?, field(x, "acked")?)))
        .collect()
}

fn wait(child: &mut std::process::Child, limit: Duration) -> bool {
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn device_cmd(w: &World, sub: &str, addr: std::net::SocketAddr, cc: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg(sub)
        .args(["--gateway", &addr.to_string(), "--ca"])
        .arg(w.certs.ca_cert())
        .arg("--cert")
        .arg(w.certs.device_cert("bwc-1"))
        .arg("--key")
        .arg(w.certs.device_key("bwc-1"))
        .args(["--congestion", cc, "--json"])
        .args(["--log", "custody::link=debug,custody::buffer=debug"])
        .current_dir(w.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

struct LiveRun {
    finished: bool,
    complete: bool,
    reconnects: u64,
    /// Media seconds per second until the recording closed; for a run cut
    /// off at the limit, the share of the source's rate acknowledged.
    realtime: f64,
    /// Seconds of media not yet acknowledged: the most, and when the
    /// source ended.
    behind_max: f64,
    behind_at_end: f64,
    /// Bytes per second acknowledged, for a run that did not finish.
    got_through: f64,
    fill: Vec<(f64, f64, f64)>,
    path: Option<[f64; 5]>,
    link: Drops,
}

/// What the emulated uplink dropped, as shares of the packets offered:
/// the radio's loss (random and bursts) and the bottleneck queue's
/// overflow (what the sender's window put in excess of the link).
#[derive(Clone, Copy)]
struct Drops {
    radio: f64,
    queue: f64,
}

fn drops(link: Option<&LinkEmulator>) -> Drops {
    let up = link.map(|l| l.stats().up).unwrap_or_default();
    let n = up.offered.max(1) as f64;
    Drops {
        radio: (up.dropped_random + up.dropped_burst) as f64 / n,
        queue: up.dropped_queue as f64 / n,
    }
}

fn drops_cell(d: &[Drops]) -> String {
    format!(
        "{:.1} / {:.1}",
        100.0 * median(d.iter().map(|d| d.radio).collect()),
        100.0 * median(d.iter().map(|d| d.queue).collect())
    )
}

/// The emulator for a scenario (none for loopback) and where the device
/// sends.
async fn path_to(gw: &GatewayProc, sc: &Scenario) -> (Option<LinkEmulator>, std::net::SocketAddr) {
    match &sc.profile {
        Some(p) => {
            let link = LinkEmulator::with_profile(gw.addr, p.clone()).await;
            let addr = link.addr;
            (Some(link), addr)
        }
        None => (None, gw.addr),
    }
}

async fn live_run(sc: &Scenario, cc: &str, file: &Path, secs: u64, limit: Duration) -> LiveRun {
    let w = World::with_config(Backend::Local, |c| c.live.close_after_secs = 300);
    let gw = w.gateway();
    let (link, addr) = path_to(&gw, sc).await;
    let bytes_per_sec = std::fs::metadata(file).unwrap().len() as f64 / secs as f64;
    let t0 = Instant::now();
    let mut child = device_cmd(&w, "record", addr, cc)
        .arg("--file")
        .arg(file)
        .arg("--state-dir")
        .arg(w.path("rec"))
        .args(["--recording-id", "bwc-1-bench", "--link-timeout", "10"])
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child, t0);
    let finished = tokio::task::block_in_place(|| wait(&mut child, limit));
    let wall = t0.elapsed().as_secs_f64();
    let mut out = String::new();
    if finished {
        use std::io::Read;
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    }
    let o: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let fill = buffer_fill(&lines);
    let behind = |b: f64| b / bytes_per_sec;
    let behind_max = fill.iter().map(|f| behind(f.1)).fold(0.0, f64::max);
    let behind_at_end = fill
        .iter()
        .rfind(|f| f.0 <= secs as f64 + 0.5)
        .map(|f| behind(f.1))
        .unwrap_or(0.0);
    let got_through = fill.last().map(|f| f.2 / f.0).unwrap_or(0.0);
    LiveRun {
        finished,
        got_through,
        complete: o["complete"] == true,
        reconnects: o["reconnects"].as_u64().unwrap_or(0),
        // A run cut off at the limit: the share of the source's rate that
        // got through, not media over the limit (which flatters it).
        realtime: if finished {
            secs as f64 / wall
        } else {
            got_through / bytes_per_sec
        },
        behind_max,
        behind_at_end,
        fill,
        path: last_path(&lines),
        link: drops(link.as_ref()),
    }
}

struct DockRun {
    finished: bool,
    /// Bytes durable at the gateway at the end.
    durable: u64,
    archived: bool,
    wall: f64,
    path: Option<[f64; 5]>,
    link: Drops,
}

async fn dock_run(sc: &Scenario, cc: &str, mib: u64, limit: Duration) -> DockRun {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let (link, addr) = path_to(&gw, sc).await;
    let dir = w.path("media");
    std::fs::create_dir_all(&dir).unwrap();
    write_random_file(&dir.join("clip.bin"), mib << 20, 99);
    let t0 = Instant::now();
    let mut child = device_cmd(&w, "dock", addr, cc)
        .args(["--no-inventory", "--retry-for-secs", "600"])
        .arg(&dir)
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child, t0);
    let finished = tokio::task::block_in_place(|| wait(&mut child, limit));
    let wall = t0.elapsed().as_secs_f64();
    let mut out = String::new();
    if finished {
        use std::io::Read;
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    }
    let archived = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|v| v["result"] == "archived");
    // What the gateway held when the run ended (all of it, if it finished).
    let id = format!("f-{}", &sha256_file(&dir.join("clip.bin"))[..40]);
    let durable =
        custody::spool::writer::read_ack(&w.path("spool/recordings/bwc-1").join(id).join("ack"))
            .unwrap_or(0);
    DockRun {
        finished,
        durable: if finished { mib << 20 } else { durable },
        archived,
        wall,
        path: last_path(&lines),
        link: drops(link.as_ref()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn path_cell(p: Option<[f64; 5]>) -> String {
    match p {
        Some([lost, sent, events, rtt, cwnd]) => format!(
            "{:.1} % / {events:.0} / {rtt:.0} / {:.0}",
            100.0 * lost / sent.max(1.0),
            cwnd / 1000.0
        ),
        None => "-".into(),
    }
}

/// The buffer's fill, in seconds of media, every 5 s of the run.
fn fill_cell(fill: &[(f64, f64, f64)], bytes_per_sec: f64) -> String {
    let mut out = Vec::new();
    let mut next = 5.0;
    for (t, b, _) in fill {
        if *t >= next {
            out.push(format!("{:.1}", b / bytes_per_sec));
            next += 5.0;
        }
    }
    out.join(" ")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let ccs: Vec<String> = env("BENCH_CC", "custody-bbr")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let secs: u64 = env("BENCH_SECONDS", "30").parse().unwrap();
    let mib: u64 = env("BENCH_DOCK_MIB", "20").parse().unwrap();
    let loopback_mib: u64 = env("BENCH_LOOPBACK_MIB", "256").parse().unwrap();
    let runs: usize = env("BENCH_RUNS", "3").parse().unwrap();
    let only = env("BENCH_ONLY", "");
    let limit = Duration::from_secs(env("BENCH_TIMEOUT", "240").parse().unwrap());
    let file: PathBuf = ts_4mbit(secs);
    let bytes_per_sec = std::fs::metadata(&file).unwrap().len() as f64 / secs as f64;
    println!(
        "lossy links: live {secs} s of {:.2} Mbit/s MPEG-TS, dock {mib} MiB, {runs} runs each, medians; jitter 10 ms each way (order kept), queue 100 ms at the cap; loss each way",
        bytes_per_sec * 8.0 / 1e6
    );
    println!();
    println!(
        "| live: link | controller | finished | × real time | behind at most s | behind at source end s | buffer fill every 5 s (s of media, one run) | lost % / congestion events / RTT ms / cwnd kB | reconnects | uplink drops %: radio / queue |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for sc in live_scenarios().iter().filter(|s| s.name.contains(&only)) {
        for cc in &ccs {
            let mut rs = Vec::new();
            for _ in 0..runs {
                rs.push(live_run(sc, cc, &file, secs, limit).await);
            }
            let done = rs.iter().filter(|r| r.finished && r.complete).count();
            let mid = median(rs.iter().map(|r| r.realtime).collect());
            // The run whose real-time factor is the median speaks for the rest.
            let rep = rs
                .iter()
                .min_by(|a, b| {
                    (a.realtime - mid)
                        .abs()
                        .partial_cmp(&(b.realtime - mid).abs())
                        .unwrap()
                })
                .unwrap();
            println!(
                "| {} | {cc} | {done}/{runs} | {:.2}{} | {:.1} | {:.1} | {} | {} | {} | {} |",
                sc.name,
                mid,
                if done < runs {
                    format!(
                        " (not finished in {} s: {:.2} Mbit/s got through)",
                        limit.as_secs(),
                        8.0 * median(rs.iter().map(|r| r.got_through).collect()) / 1e6
                    )
                } else {
                    String::new()
                },
                median(rs.iter().map(|r| r.behind_max).collect()),
                median(rs.iter().map(|r| r.behind_at_end).collect()),
                fill_cell(&rep.fill, bytes_per_sec),
                path_cell(rep.path),
                rs.iter().map(|r| r.reconnects).max().unwrap_or(0),
                drops_cell(&rs.iter().map(|r| r.link).collect::<Vec<_>>()),
            );
        }
    }
    println!();
    println!(
        "| dock: link | controller | finished | seconds | goodput Mbit/s | lost % / congestion events / RTT ms / cwnd kB | uplink drops %: radio / queue |"
    );
    println!("|---|---|---|---|---|---|---|");
    for sc in dock_scenarios(loopback_mib)
        .iter()
        .filter(|s| s.name.contains(&only))
    {
        for cc in &ccs {
            // Over loopback 20 MiB take a blink: more, as in
            // benches/dock_throughput.rs.
            let mib = if sc.profile.is_none() {
                loopback_mib
            } else {
                mib
            };
            let mut rs = Vec::new();
            for _ in 0..runs {
                rs.push(dock_run(sc, cc, mib, limit).await);
            }
            let done = rs.iter().filter(|r| r.finished && r.archived).count();
            let wall = median(rs.iter().map(|r| r.wall).collect());
            let rep = rs
                .iter()
                .min_by(|a, b| {
                    (a.wall - wall)
                        .abs()
                        .partial_cmp(&(b.wall - wall).abs())
                        .unwrap()
                })
                .unwrap();
            println!(
                "| {} | {cc} | {done}/{runs} | {wall:.1}{} | {:.2} | {} | {} |",
                sc.name,
                if done < runs {
                    format!(
                        " (not finished: {:.1} of {mib} MiB durable)",
                        rep.durable as f64 / (1 << 20) as f64
                    )
                } else {
                    String::new()
                },
                median(
                    rs.iter()
                        .map(|r| r.durable as f64 * 8.0 / 1e6 / r.wall)
                        .collect()
                ),
                path_cell(rep.path),
                drops_cell(&rs.iter().map(|r| r.link).collect::<Vec<_>>()),
            );
        }
    }
}
