//! Dock throughput: a 1 GiB file docked over loopback QUIC into a gateway
//! with Garage behind it, next to baselines measured in the same run:
//! SHA-256 of the file (sha2, and coreutils/OpenSSL for reference) and a
//! plain aws-sdk-s3 multipart upload of the same file to the same Garage.
//!
//! Run: `cargo bench --bench dock_throughput` (set BENCH_MIB to change the
//! size; BENCH_DOCK_ARGS adds arguments to `custody dock`, e.g.
//! `--congestion cubic`; BENCH_TIMELINE=1 prints the gateways' logs, whose
//! times say how long receiving and archiving took). Prints a table;
//! docs/performance.md records the figures.

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

/// The bare transfer: the file sent over one QUIC stream with custody's
/// own endpoint settings (certificates, windows, socket buffers), the
/// receiver discarding it — no spool, no hashing, no acknowledgements.
/// Both ends run in this process, as the dock and the gateway run in two.
async fn bare_quic(w: &World, file: &Path) -> f64 {
    use custody_transport::quic::{self, ClientSettings, ServerSettings};
    let certs = &w.certs;
    let (ca, gcert, gkey) = (certs.ca_cert(), certs.gateway_cert(), certs.gateway_key());
    let (dcert, dkey) = (certs.device_cert("bwc-1"), certs.device_key("bwc-1"));
    let g = custody::config::GatewayConfig::default();
    let (server, _refusals) = quic::server(&ServerSettings {
        listen: "127.0.0.1:0",
        ca: &ca,
        cert: &gcert,
        key: &gkey,
        crls: &[],
        udp_buffer: g.udp_buffer_bytes,
        stream_window: g.stream_window_bytes,
        conn_window: g.connection_window_bytes,
    })
    .unwrap();
    let addr = server.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let conn = server.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = conn.accept_bi().await.unwrap();
        let mut n = 0u64;
        while let Some(c) = recv.read_chunk(1 << 20, true).await.unwrap() {
            n += c.bytes.len() as u64;
        }
        n
    });
    let client = quic::client(&ClientSettings {
        ca: &ca,
        cert: &dcert,
        key: &dkey,
        udp_buffer: g.udp_buffer_bytes,
        stream_window: g.stream_window_bytes,
        conn_window: g.connection_window_bytes,
        idle_timeout: std::time::Duration::from_secs(30),
        keep_alive: std::time::Duration::from_secs(5),
        congestion: quic::Congestion::default(),
    })
    .unwrap();
    let t = Instant::now();
    let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let mut f = tokio::fs::File::open(file).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        use tokio::io::AsyncReadExt;
        let n = f.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        send.write_all(&buf[..n]).await.unwrap();
    }
    send.finish().unwrap();
    let got = receiver.await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, std::fs::metadata(file).unwrap().len());
    conn.close(0u32.into(), b"done");
    secs
}

fn dock_once(w: &World, file_dir: &Path) -> (f64, serde_json::Value) {
    let gw = w.gateway();
    let t = Instant::now();
    let extra = std::env::var("BENCH_DOCK_ARGS").unwrap_or_default();
    let mut args: Vec<&str> = extra.split_whitespace().collect();
    args.push(file_dir.to_str().unwrap());
    let (out, results) = w.dock("bwc-1", &gw, &args);
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stdout(&out));
    // Where the time went, from the gateway's log: set BENCH_TIMELINE=1.
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        for l in gw.log().lines() {
            println!("  gateway: {l}");
        }
    }
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
    let quic = bare_quic(&w, &file).await;

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
            "bare QUIC transfer, custody's endpoint settings (baseline)",
            Some(quic),
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
    // The ceiling of each path is its slowest stage run alone: into Garage
    // the slower of the QUIC transfer and the plain upload, into the local
    // store the QUIC transfer.
    println!(
        "custody into Garage / slowest stage alone (max of bare QUIC, plain S3 upload): {:.2}",
        s3.max(quic) / dock_s3
    );
    println!(
        "custody into the local store / bare QUIC transfer: {:.2}",
        quic / dock_local
    );
}
