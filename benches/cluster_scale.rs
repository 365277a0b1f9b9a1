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
//! Run: `cargo bench --bench cluster_scale` (BENCH_FILES files of
//! BENCH_MIB MiB each per configuration, default 6 × 64). Prints a table;
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
}
