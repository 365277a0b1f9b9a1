//! `custody list` on 100 000 recordings: the catalog's day shards for two
//! years of recordings, searched by case, officer and time range, on the
//! local store and on Garage — against `grep` over the same lines as the
//! baseline. `custody index rebuild` is timed on 10 000 recordings (its
//! cost is one locator and one manifest read per recording).
//!
//! BENCH_RECORDINGS (default 100000), BENCH_REBUILD (default 10000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use common::*;
use custody::catalog::Entry;
use custody::store::Store;

fn entry(i: usize) -> (String, Entry) {
    let day = i % 730;
    let date = time::Date::from_calendar_date(2025, time::Month::January, 1).unwrap()
        + time::Duration::days(day as i64);
    let (y, m, d) = (date.year(), date.month() as u8, date.day());
    let id = format!("r{i:07}");
    let recorder = format!("bwc-{}", i % 500);
    let prefix = format!("records/market/{y:04}/{m:02}/{d:02}/{recorder}/{id}");
    let started = format!("{y:04}-{m:02}-{d:02}T{:02}:00:00+08:00", 8 + i % 10);
    let e = Entry {
        recorder,
        recording_id: id,
        manifest_key: format!("{prefix}/manifest.json"),
        officer: Some(format!("o-{}", i % 2000)),
        officer_name: None,
        unit: Some(format!("unit-{}", i % 20)),
        category: Some(["market", "traffic", "health"][i % 3].into()),
        case_id: i.is_multiple_of(7).then(|| format!("C-{}", i % 5000)),
        occasion: Some("on-site-inspection".into()),
        mandatory_full_process: i.is_multiple_of(11),
        mode: Some(
            if i.is_multiple_of(4) {
                "live"
            } else {
                "docked"
            }
            .into(),
        ),
        started_at: Some(started.clone()),
        ended_at: None,
        received_at: started.clone(),
        stored_at: started,
        duration: Some(300.0),
        size: 150_000_000,
        gaps: 0,
        gaps_filled: 0,
        missing: Vec::new(),
        links: Vec::new(),
        codecs: Some("avc1.64001f,mp4a.40.2".into()),
        playable: true,
        chain_head: "0".repeat(64),
        deadline_due: None,
        deadline_status: Some("met".into()),
        deadline_reason: None,
        retention: Some("standard (2 years)".into()),
        retain_until: None,
        confidentiality: Vec::new(),
        clock_skew_seconds: None,
    };
    (custody::catalog::shard_key(&e.manifest_key).unwrap(), e)
}

async fn write_catalog(store: &Store, n: usize) {
    let mut shards: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for i in 0..n {
        let (k, e) = entry(i);
        let s = shards.entry(k).or_default();
        serde_json::to_writer(&mut *s, &e).unwrap();
        s.push(b'\n');
    }
    for (k, b) in shards {
        let h = custody::chain::sha256(&b);
        store.put_bytes(&k, Bytes::from(b), &h).await.unwrap();
    }
}

/// Median wall time of `custody list` with `args`, and the number found.
fn time_list(w: &World, args: &[&str]) -> (f64, usize) {
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let o = Command::new(BIN)
            .args(["list", "--json", "-c"])
            .arg(&w.config)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        times.push(t.elapsed().as_secs_f64());
        found = stdout(&o).lines().count();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[1], found)
}

/// `grep` over the shard files of the local store: the baseline.
fn time_grep(root: &std::path::Path, pattern: &str) -> (f64, usize) {
    let t = Instant::now();
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "find {} -name '*.jsonl' -print0 | xargs -0 grep -h -F '{pattern}' | wc -l",
            root.join("index/catalog").display()
        ))
        .output()
        .unwrap();
    (
        t.elapsed().as_secs_f64(),
        stdout(&o).trim().parse().unwrap_or(0),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BENCH_RECORDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rebuild_n: usize = std::env::var("BENCH_REBUILD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("custody list over {n} recordings (730 day shards), median of 3 runs");
    println!("| store | search | found | custody list s | grep baseline s | ratio |");
    println!("|---|---|---|---|---|---|");
    for backend in ["local", "garage"] {
        let w = World::new(if backend == "local" {
            Backend::Local
        } else {
            Backend::Garage
        });
        let store = w.store().await;
        write_catalog(&store, n).await;
        let searches: [(&str, Vec<&str>, &str); 3] = [
            ("by case", vec!["--case", "C-1234"], r#""case_id":"C-1234""#),
            (
                "by officer",
                vec!["--officer", "o-77"],
                r#""officer":"o-77""#,
            ),
            (
                "one month",
                vec!["--from", "2026-03-01", "--to", "2026-03-31"],
                r#""started_at":"2026-03-"#,
            ),
        ];
        for (name, args, pattern) in searches {
            let (t, found) = time_list(&w, &args);
            let (g, gfound) = if backend == "local" {
                time_grep(&w.path("store"), pattern)
            } else {
                (f64::NAN, 0)
            };
            if backend == "local" {
                assert_eq!(found, gfound, "{name}: custody and grep disagree");
            }
            println!(
                "| {backend} | {name} | {found} | {t:.2} | {} | {} |",
                if g.is_nan() {
                    "-".into()
                } else {
                    format!("{g:.2}")
                },
                if g.is_nan() {
                    "-".into()
                } else {
                    format!("{:.1}", t / g)
                }
            );
        }
    }

    // Rebuild from locators and manifests alone.
    let w = World::new(Backend::Local);
    let store = w.store().await;
    for i in 0..rebuild_n {
        let (_, e) = entry(i);
        let prefix = e
            .manifest_key
            .trim_end_matches("/manifest.json")
            .to_string();
        let manifest = serde_json::json!({
            "format": "custody-manifest/1", "recorder": e.recorder, "recording_id": e.recording_id,
            "prefix": prefix, "integrity": "verified", "declared_sha256": "", "metadata_complete": true,
            "missing": [], "summary": {"officer": e.officer, "occasion": "on-site-inspection",
            "mandatory_full_process": false, "category": e.category, "case_id": e.case_id,
            "proof_object": "x", "started_at": e.started_at, "received_at": e.received_at,
            "method": {"device_kind": "body-worn-recorder", "mode": "docked"}},
            "objects": [], "object_count": 0, "chain_head": "", "finalized_at": e.stored_at,
            "gateway": "bench",
        });
        let mb = Bytes::from(serde_json::to_vec(&manifest).unwrap());
        store
            .put_bytes(&e.manifest_key, mb.clone(), &custody::chain::sha256(&mb))
            .await
            .unwrap();
        let loc = serde_json::json!({"recorder": e.recorder, "recording_id": e.recording_id,
            "prefix": prefix, "manifest_key": e.manifest_key, "size": 0, "sha256": "", "chain_head": ""});
        let lb = Bytes::from(serde_json::to_vec(&loc).unwrap());
        let key = custody::store::layout::locator_key(&e.recorder, &e.recording_id);
        store
            .put_bytes(&key, lb.clone(), &custody::chain::sha256(&lb))
            .await
            .unwrap();
    }
    let t = Instant::now();
    let o = Command::new(BIN)
        .args(["index", "rebuild", "-c"])
        .arg(&w.config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let s = t.elapsed().as_secs_f64();
    println!(
        "\ncustody index rebuild, local store, {rebuild_n} recordings: {s:.1} s ({:.0} recordings/s; {})",
        rebuild_n as f64 / s,
        stdout(&o).trim()
    );
}
