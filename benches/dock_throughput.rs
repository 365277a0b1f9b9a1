//! Dock throughput: a 1 GiB file docked over loopback QUIC into a gateway
//! with Garage behind it, next to baselines measured in the same run:
//! SHA-256 of the file (sha2, and coreutils/OpenSSL for reference) and a
//! plain aws-sdk-s3 multipart upload of the same file to the same Garage.
//!
//! Run: `cargo bench --bench dock_throughput` (set BENCH_MIB to change the
//! size). Prints a table; docs/performance.md records the figures.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::s3::plain_s3_upload;
use common::*;

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn time_cmd(cmd: &str, args: &[&str]) -> Option<f64> {
    let t = Instant::now();
    let ok = std::process::Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| t.elapsed().as_secs_f64())
}

fn dock_once(w: &World, file_dir: &Path) -> (f64, serde_json::Value) {
    let gw = w.gateway();
    let t = Instant::now();
    let (out, results) = w.dock("bwc-1", &gw, &[file_dir.to_str().unwrap()]);
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stdout(&out));
    (secs, results[0].clone())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mib: u64 = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let size = mib << 20;
    println!(
        "dock throughput, {mib} MiB file, loopback, this machine ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let w = World::with_config(Backend::Garage, |c| c.gateway.archive_wait_secs = 600);
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join("long.bin");
    write_random_file(&file, size, 7);
    // Warm the page cache so every contender reads from memory.
    let _ = sha256_file(&file);

    let t = Instant::now();
    let _ = sha256_file(&file);
    let sha2 = t.elapsed().as_secs_f64();
    let sha256sum = time_cmd("sha256sum", &[file.to_str().unwrap()]);
    let openssl = time_cmd("openssl", &["dgst", "-sha256", file.to_str().unwrap()]);
    let s3 = plain_s3_upload(w.garage.as_ref().unwrap(), &file, size).await;

    // custody end to end: hash at the dock, QUIC, spool fsync, hash check,
    // multipart upload with per-part SHA-256, manifest.
    let (dock_s3, r) = dock_once(&w, &media);
    assert_eq!(r["result"], "archived", "{r}");

    // The same with the embedded local store: ingest without S3.
    let wl = World::with_config(Backend::Local, |c| c.gateway.archive_wait_secs = 600);
    let lmedia = wl.path("media");
    std::fs::create_dir_all(&lmedia).unwrap();
    std::fs::rename(&file, lmedia.join("long.bin")).unwrap();
    let (dock_local, r) = dock_once(&wl, &lmedia);
    assert_eq!(r["result"], "archived", "{r}");

    let rows = [
        ("SHA-256, sha2 crate (baseline)", Some(sha2)),
        ("SHA-256, coreutils sha256sum", sha256sum),
        ("SHA-256, openssl dgst", openssl),
        (
            "plain aws-sdk-s3 multipart upload to Garage (baseline)",
            Some(s3),
        ),
        (
            "custody dock -> gateway -> Garage, until archived",
            Some(dock_s3),
        ),
        (
            "custody dock -> gateway -> local store, until archived",
            Some(dock_local),
        ),
    ];
    println!("| path | seconds | MB/s |");
    println!("|---|---|---|");
    for (name, secs) in rows {
        match secs {
            Some(s) => println!("| {name} | {s:.2} | {:.0} |", mbps(size, s)),
            None => println!("| {name} | n/a | n/a |"),
        }
    }
    let slowest = s3.max(sha2);
    println!(
        "custody end to end / slowest baseline (the ceiling): {:.2}",
        slowest / dock_s3
    );
}
