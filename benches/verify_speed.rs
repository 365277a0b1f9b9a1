//! Verification speed: `custody verify` on a large docked recording, next
//! to raw SHA-256 of the same bytes measured in the same run (the sha2
//! crate in-process, and coreutils/OpenSSL), for the embedded local store
//! and for Garage.
//!
//! Run: `cargo bench --bench verify_speed` (BENCH_MIB, default 2048).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use common::*;

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mib: u64 = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2048);
    let size = mib << 20;
    println!("verify speed, one {mib} MiB recording, median of 3");
    println!("| store | path | seconds | MB/s | custody / raw sha2 |");
    println!("|---|---|---|---|---|");
    for backend in ["local", "garage"] {
        let w = World::new(if backend == "local" {
            Backend::Local
        } else {
            Backend::Garage
        });
        let gw = w.gateway();
        let media = w.path("media");
        std::fs::create_dir_all(&media).unwrap();
        let file = media.join("long.bin");
        write_random_file(&file, size, 11);
        let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
        assert!(out.status.success());
        let key = results[0]["manifest_key"].as_str().unwrap().to_string();
        drop(gw);
        let _ = sha256_file(&file); // warm the page cache for the baselines
        let mut raw = Vec::new();
        let mut sum = Vec::new();
        let mut ssl = Vec::new();
        let mut ver = Vec::new();
        let mut get = Vec::new();
        let store = w.store().await;
        let original = {
            let b = store.get_bytes(&key, 1 << 24).await.unwrap();
            let m: custody::manifest::Manifest = serde_json::from_slice(&b).unwrap();
            m.objects
                .iter()
                .find(|o| o.role == custody::manifest::Role::Original)
                .unwrap()
                .key
                .clone()
        };
        for _ in 0..3 {
            // Reading the original out of storage once, through one SHA-256
            // (the floor for any verifier that does not trust the store).
            let t = Instant::now();
            let _ = store.read_hash(&original).await.unwrap();
            get.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let _ = sha256_file(&file);
            raw.push(t.elapsed().as_secs_f64());
            sum.push(timed(Command::new("sha256sum").arg(&file)));
            ssl.push(timed(
                Command::new("openssl").args(["dgst", "-sha256"]).arg(&file),
            ));
            ver.push(timed(
                Command::new(BIN)
                    .args(["verify", "-c"])
                    .arg(&w.config)
                    .arg(&key),
            ));
        }
        let raw = median(raw);
        for (name, secs) in [
            ("SHA-256, sha2 crate (raw)", raw),
            ("sha256sum", median(sum)),
            ("openssl dgst -sha256", median(ssl)),
            (
                "read the original from the store + SHA-256 (baseline)",
                median(get),
            ),
            (
                "custody verify (every object, chain, checkpoints)",
                median(ver),
            ),
        ] {
            println!(
                "| {backend} | {name} | {secs:.2} | {:.0} | {:.2} |",
                size as f64 / 1e6 / secs,
                raw / secs
            );
        }
    }
}
