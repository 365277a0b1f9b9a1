//! Cluster mode on this machine: aggregate dock throughput through 1, 2
//! and 3 gateways sharing a three-node Garage cluster (replication factor
//! 3) and PostgreSQL, next to, in the same run, one gateway in single mode
//! (no database) over the same cluster and a plain aws-sdk-s3 upload of
//! the same bytes to it (the ceiling).
//!
//! Everything — three Garage nodes, PostgreSQL, the gateways and the
//! docking racks — shares this machine's cores, so the figures say what
//! cluster mode costs per gateway, not how a cluster of machines scales.
//!
//! Then live streams held: BENCH_STREAMS recorders (default 12) each
//! streaming the same 20 s camera file at its own pace, through one
//! gateway in single mode and through 1, 2 and 3 gateways in cluster mode
//! (where a live byte is acknowledged only once its journal chunk is in
//! storage): whether every recording is stored whole, how long the
//! recorders took, and the segment close → stored latency the gateways
//! measured (p50 and p99 from their histograms).
//!
//! Run: `cargo bench --bench cluster_scale` (BENCH_FILES files of
//! BENCH_MIB MiB each per configuration, default 6 × 64; BENCH_PART=live
//! for the live streams only). Prints tables;
//! docs/performance.md records the figures.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::postgres::Postgres;
use common::s3::plain_s3_upload;
use common::*;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `files` random files of `size` bytes (from `seed`), spread over `racks`
/// folders.
fn media(w: &World, tag: &str, seed: u64, files: u64, size: u64, racks: usize) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = (0..racks)
        .map(|r| w.path(&format!("media-{tag}-{r}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    for i in 0..files {
        let d = &dirs[i as usize % racks];
        let f = d.join(format!("{tag}-{i}.bin"));
        // Distinct bytes per configuration: nothing is "already stored".
        write_random_file(&f, size, seed * 1000 + i);
        let _ = sha256_file(&f);
    }
    dirs
}

/// Docks each folder through its gateway, all at once; the seconds until
/// every file is reported archived.
fn dock_all(w: &World, gws: &[&GatewayProc], dirs: &[PathBuf], files: u64) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        let runs: Vec<_> = dirs
            .iter()
            .zip(gws.iter().cycle())
            .map(|(d, gw)| {
                s.spawn(move || w.dock("rack-1", gw, &["--recorder", "bwc-1", d.to_str().unwrap()]))
            })
            .collect();
        let mut archived = 0;
        let mut all = Vec::new();
        for r in runs {
            let (out, results) = r.join().unwrap();
            assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
            archived += results.iter().filter(|r| r["result"] == "archived").count() as u64;
            all.extend(results);
        }
        assert_eq!(archived, files, "every file archived: {all:#?}");
    });
    t.elapsed().as_secs_f64()
}

fn row(name: &str, bytes: u64, secs: f64, base: f64) {
    println!(
        "| {name} | {secs:.2} | {:.0} | {:.2} |",
        bytes as f64 / 1e6 / secs,
        base / secs
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let files = env("BENCH_FILES", 6);
    let size = env("BENCH_MIB", 64) << 20;
    let total = files * size;
    println!(
        "cluster scale: {files} files of {} MiB per configuration, 3 Garage nodes (rf 3) and PostgreSQL, this machine ({} cores)",
        size >> 20,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let pg = Postgres::start();
    let w = World::with_config(Backend::GarageCluster, |c| {
        c.gateway.archive_wait_secs = 900;
    });
    // `BENCH_PART=live`: the live streams only.
    if std::env::var("BENCH_PART").as_deref() == Ok("live") {
        live_streams_held(&w, &pg);
        return;
    }

    // Ceiling: the same bytes, plain uploads, all at once.
    let plain_dir = media(&w, "plain", 1, files, size, 1);
    let node = &w.garage_cluster.as_ref().unwrap().nodes[0];
    let paths: Vec<PathBuf> = std::fs::read_dir(&plain_dir[0])
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .collect();
    let t = Instant::now();
    futures_util::future::join_all(paths.iter().map(|p: &PathBuf| {
        let len = std::fs::metadata(p).unwrap().len();
        plain_s3_upload(node, p, len)
    }))
    .await;
    let plain = t.elapsed().as_secs_f64();

    // One gateway alone (no database). One docking process per gateway:
    // a device's newer connection to a gateway supersedes its older one.
    let single = {
        let gw = w.another_gateway("single", |_| {});
        let dirs = media(&w, "single", 2, files, size, 1);
        dock_all(&w, &[&gw], &dirs, files)
    };

    // Cluster mode: 1, 2, 3 gateways, the files split between them.
    let mut cluster = Vec::new();
    for n in 1..=3usize {
        let gws: Vec<GatewayProc> = (0..n)
            .map(|i| {
                w.another_gateway(&format!("c{n}-{i}"), |c| {
                    c.cluster.database = Some(pg.url("postgres"));
                })
            })
            .collect();
        let refs: Vec<&GatewayProc> = gws.iter().collect();
        let dirs = media(&w, &format!("c{n}"), 2 + n as u64, files, size, n);
        cluster.push((n, dock_all(&w, &refs, &dirs, files)));
    }

    println!("| path | seconds | MB/s | plain upload time / this |");
    println!("|---|---|---|---|");
    row(
        "plain aws-sdk-s3 multipart uploads to the cluster, all at once (baseline)",
        total,
        plain,
        plain,
    );
    row(
        "custody, 1 gateway, single mode (no database)",
        total,
        single,
        plain,
    );
    for (n, secs) in &cluster {
        row(
            &format!("custody, {n} gateway(s), cluster mode"),
            total,
            *secs,
            plain,
        );
    }
    println!(
        "cluster mode / single mode, one gateway: {:.2}",
        single / cluster[0].1
    );

    live_streams_held(&w, &pg);
}

/// A 20 s MPEG-TS camera file (H.264 640×360, 1 s GOP, about 1 Mbit/s).
fn camera_file(w: &World) -> PathBuf {
    let f = w.path("camera.ts");
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=20")
        .args([
            "-c:v", "libx264", "-b:v", "1M", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts",
        ])
        .arg(&f)
        .status()
        .unwrap();
    assert!(st.success());
    f
}

/// The `q` quantile of histogram `name` summed over `scrapes`, from its
/// cumulative buckets (the upper bound of the bucket it falls in).
fn quantile(scrapes: &[ops::Metrics], name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for m in scrapes {
        for l in
            m.0.lines()
                .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let n: f64 = l.rsplit_once(' ')?.1.parse().ok()?;
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += n,
                None => buckets.push((le, n)),
            }
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    (total > 0.0).then(|| {
        buckets
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::INFINITY, |(le, _)| *le)
    })
}

/// Live streams held with one gateway in single mode and 1, 2, 3 gateways
/// in cluster mode.
fn live_streams_held(w: &World, pg: &Postgres) {
    let streams = env("BENCH_STREAMS", 12) as usize;
    let file = camera_file(w);
    let media_secs = 20.0;
    println!();
    println!(
        "live: {streams} recorders streaming a 20 s camera file ({} KiB) at its pace",
        std::fs::metadata(&file).unwrap().len() >> 10
    );
    println!(
        "| path | recordings whole | seconds for 20 s of media | segment close → stored p50 / p99 (s) |"
    );
    println!("|---|---|---|---|");
    let configs: Vec<(String, usize, bool)> =
        std::iter::once(("1 gateway, single mode".to_string(), 1, false))
            .chain((1..=3).map(|n| (format!("{n} gateway(s), cluster mode"), n, true)))
            .collect();
    for (round, (name, n, cluster)) in configs.into_iter().enumerate() {
        let gws: Vec<GatewayProc> = (0..n)
            .map(|i| {
                w.another_gateway(&format!("live{round}-{i}"), |c| {
                    ops::http(c);
                    c.live.max_streams_per_device = streams;
                    c.live.close_after_secs = 60;
                    if cluster {
                        c.cluster.database = Some(pg.url("postgres"));
                    }
                })
            })
            .collect();
        let t = Instant::now();
        let recorders: Vec<(String, std::process::Child)> = (0..streams)
            .map(|i| {
                let id = format!("live{round}-{i}");
                let gw = &gws[i % n];
                let child = w
                    .record_cmd_to(&gw.addr.to_string(), &format!("state-{id}"))
                    .args([
                        "--officer",
                        "o-1001",
                        "--recording-id",
                        &id,
                        "--json",
                        "--file",
                    ])
                    .arg(&file)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                (id, child)
            })
            .collect();
        let mut whole = 0;
        for (id, c) in recorders {
            let out = c.wait_with_output().unwrap();
            let r: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if out.status.success() && r["complete"] == true {
                whole += 1;
            } else {
                eprintln!("{id}: {r}");
            }
        }
        let secs = t.elapsed().as_secs_f64();
        // The last segments reach storage after the recorders are answered
        // (single mode); wait for every recording to be stored.
        for i in 0..streams {
            let id = format!("bwc-1/live{round}-{i}");
            let deadline = Instant::now() + std::time::Duration::from_secs(120);
            let closed = || {
                let (ok, v) = w.verify_json(&id);
                ok && v["state"] == "closed"
            };
            while !closed() && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
        let scrapes: Vec<ops::Metrics> = gws.iter().map(|g| ops::scrape(w, g)).collect();
        let lat = "custody_live_segment_close_to_stored_seconds";
        let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
        println!(
            "| custody, {name} | {whole} of {streams} | {secs:.1} ({:.2}× real time) | {} / {} |",
            secs / media_secs,
            fmt(quantile(&scrapes, lat, 0.5)),
            fmt(quantile(&scrapes, lat, 0.99)),
        );
    }
}
