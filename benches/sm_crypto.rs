//! SM3 and SM2 beside SHA-256 and Ed25519, measured in the same run: the
//! cost a deployment takes on by choosing the Chinese national algorithms.
//!
//! Hashing one file (page-cached): the sha2 and sm3 crates in-process,
//! `sha256sum`, `openssl dgst -sha256` and `openssl dgst -sm3`. Signing and
//! verifying a checkpoint-sized message with custody's own signing key
//! (`custody::signing`, Ed25519 through ring, SM2 through RustCrypto's sm2).
//!
//! Run: `cargo bench --bench sm_crypto` (BENCH_MIB, default 512).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Read;
use std::process::Command;
use std::time::Instant;

use common::*;
use custody::signing::{Algorithm, SigningKey};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Seconds to feed `path` through `update` in-process (the sha2 and sm3
/// crates stand on different `digest` versions).
fn hash_with(path: &std::path::Path, mut update: impl FnMut(&[u8])) -> f64 {
    let t = Instant::now();
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        update(&buf[..k]);
    }
    t.elapsed().as_secs_f64()
}

fn sha256_secs(path: &std::path::Path) -> f64 {
    use sha2::Digest;
    let mut d = sha2::Sha256::new();
    let secs = hash_with(path, |b| d.update(b));
    std::hint::black_box(d.finalize());
    secs
}

fn sm3_secs(path: &std::path::Path) -> f64 {
    use sm3::Digest;
    let mut d = sm3::Sm3::new();
    let secs = hash_with(path, |b| d.update(b));
    std::hint::black_box(d.finalize());
    secs
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    t.elapsed().as_secs_f64()
}

/// Microseconds per signature and per verification, over `n` of each.
fn sign_verify(algorithm: Algorithm, n: u32) -> (f64, f64) {
    let key = SigningKey::generate_for(algorithm).unwrap();
    let public = key.public();
    // A checkpoint is about 700 bytes of pretty JSON.
    let msg = vec![b'x'; 700];
    let t = Instant::now();
    let mut sigs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        sigs.push(key.sign(&msg));
    }
    let sign = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for s in &sigs {
        assert!(public.verify(&msg, s));
    }
    let verify = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    (sign, verify)
}

fn main() {
    let mib: u64 = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let size = mib << 20;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    write_random_file(&file, size, 23);
    let _ = sha256_file(&file); // into the page cache

    let runs = |f: &dyn Fn() -> f64| median((0..3).map(|_| f()).collect());
    let sha2 = runs(&|| sha256_secs(&file));
    let rows = [
        ("SHA-256, sha2 crate (baseline)", sha2),
        ("SM3, sm3 crate (custody's)", runs(&|| sm3_secs(&file))),
        (
            "sha256sum",
            runs(&|| timed(Command::new("sha256sum").arg(&file))),
        ),
        (
            "openssl dgst -sha256",
            runs(&|| timed(Command::new("openssl").args(["dgst", "-sha256"]).arg(&file))),
        ),
        (
            "openssl dgst -sm3",
            runs(&|| timed(Command::new("openssl").args(["dgst", "-sm3"]).arg(&file))),
        ),
    ];
    println!("hashing one {mib} MiB file (page cache), median of 3");
    println!("| hash | seconds | MB/s | speed / sha2 SHA-256 |");
    println!("|---|---|---|---|");
    for (name, secs) in rows {
        println!(
            "| {name} | {secs:.2} | {:.0} | {:.2} |",
            size as f64 / 1e6 / secs,
            sha2 / secs
        );
    }

    let n = 2000;
    let (ed_sign, ed_verify) = sign_verify(Algorithm::Ed25519, n);
    let (sm_sign, sm_verify) = sign_verify(Algorithm::Sm2, n);
    println!();
    println!("signing a 700-byte checkpoint, {n} times each (custody::signing)");
    println!("| algorithm | sign µs | verify µs | sign / Ed25519 | verify / Ed25519 |");
    println!("|---|---|---|---|---|");
    for (name, s, v) in [
        ("Ed25519 (baseline)", ed_sign, ed_verify),
        ("SM2 (GB/T 32918, SM3)", sm_sign, sm_verify),
    ] {
        println!(
            "| {name} | {s:.1} | {v:.1} | {:.2} | {:.2} |",
            s / ed_sign,
            v / ed_verify
        );
    }
}
