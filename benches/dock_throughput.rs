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

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;
use tokio::io::AsyncReadExt;

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

/// The baseline upload: aws-sdk-s3 multipart, 16 MiB parts, 4 in flight,
/// no checksums beyond what the SDK requires.
async fn plain_s3_upload(g: &Garage, path: &Path, size: u64) -> f64 {
    let creds =
        aws_sdk_s3::config::Credentials::new(&g.access_key, &g.secret_key, None, None, "bench");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("garage"))
        .endpoint_url(&g.endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let key = "bench/plain-upload.bin";
    let t = Instant::now();
    let up = client
        .create_multipart_upload()
        .bucket(&g.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let part = 16u64 << 20;
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    let mut parts = Vec::new();
    let mut n = 0i32;
    let mut off = 0;
    while off < size {
        let len = part.min(size - off) as usize;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).await.unwrap();
        n += 1;
        while set.len() >= 4 {
            parts.push(set.join_next().await.unwrap().unwrap());
        }
        let (c, b, k, i) = (
            client.clone(),
            g.bucket.clone(),
            key.to_string(),
            id.clone(),
        );
        set.spawn(async move {
            let r = c
                .upload_part()
                .bucket(b)
                .key(k)
                .upload_id(i)
                .part_number(n)
                .body(ByteStream::from(buf))
                .send()
                .await
                .unwrap();
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(r.e_tag().map(str::to_string))
                .build()
        });
        off += len as u64;
    }
    while let Some(p) = set.join_next().await {
        parts.push(p.unwrap());
    }
    parts.sort_by_key(|p| p.part_number());
    client
        .complete_multipart_upload()
        .bucket(&g.bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    t.elapsed().as_secs_f64()
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
