//! The records regulation as behaviour, against Garage: the storage
//! deadline in working days (R4), the catalog and `custody list` (R5),
//! cases assigned later, the catalog rebuilt from storage alone, docked
//! inventories, and `custody compliance`.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// `custody <args> -c <config>`, on the world's clock.
fn custody(w: &World, args: &[&str]) -> Output {
    w.command()
        .args(args)
        .arg("-c")
        .arg(&w.config)
        .output()
        .unwrap()
}

/// A small file with a sidecar declaring `meta` (JSON fields).
fn media(dir: &Path, id: &str, seed: u64, meta: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join(format!("{id}.mp4"));
    write_random_file(&f, 50_000, seed);
    let sep = if meta.is_empty() { "" } else { "," };
    std::fs::write(
        dir.join(format!("{id}.mp4.json")),
        format!(r#"{{"recording_id":"{id}"{sep}{meta}}}"#),
    )
    .unwrap();
}

fn list(w: &World, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["list", "--json"];
    a.extend_from_slice(args);
    let o = custody(w, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(v: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = v
        .iter()
        .map(|e| e["recording_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn deadlines_catalog_inventory_and_compliance() {
    let mut w = World::new(Backend::Garage);
    // Every process runs on a clock set to Monday 30 November 2026, 10:00
    // in Beijing, whatever day the test runs on.
    w.set_clock("2026-11-30T02:00:00Z");
    let gw = w.gateway();
    let hour_ago = "2026-11-30T01:00:00Z";
    let base = r#""officer":"o-1001","occasion":"on-site-inspection","proof_object":"goods","category":"market""#;
    let full = format!(r#"{base},"full_process":{{"mandatory":false}}"#);
    let full = full.as_str();
    let dir = w.path("rack");
    // Made an hour ago: stored within the deadline.
    media(
        &dir,
        "on-time",
        1,
        &format!(r#"{full},"case_id":"C-1","started_at":"{hour_ago}","ended_at":"{hour_ago}""#),
    );
    // Ended weeks ago: stored late.
    media(
        &dir,
        "late",
        2,
        &format!(
            r#"{base},"started_at":"2026-11-02T09:00:00+08:00","ended_at":"2026-11-02T09:30:00+08:00","full_process":{{"mandatory":true,"reason":"major-property"}}"#
        ),
    );
    // No time, no officer, no proof object: metadata missing, deadline unknown.
    media(&dir, "bare", 3, "");
    // Its deadline falls in 2027, for which no schedule is published yet.
    media(
        &dir,
        "year-end",
        4,
        &format!(
            r#"{full},"started_at":"2026-12-30T09:00:00+08:00","ended_at":"2026-12-30T10:00:00+08:00""#
        ),
    );
    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results.len(), 4);
    assert!(
        results.iter().all(|r| r["result"] == "archived"),
        "{results:?}"
    );

    // The deadline is in each manifest, with the calendar it came from.
    let store = w.store().await;
    let manifest_of = |id: &str| {
        let key = results
            .iter()
            .find(|r| r["recording"] == format!("bwc-1/{id}"))
            .unwrap()["manifest_key"]
            .as_str()
            .unwrap()
            .to_string();
        let store = store.clone();
        async move {
            let b = store.get_bytes(&key, 1 << 20).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()
        }
    };
    let m = manifest_of("late").await;
    let d = &m["deadline"];
    assert_eq!(d["status"], "late", "{d:#}");
    assert_eq!(d["basis"], "device");
    // Monday 2 November 2026 (+08:00): due at the end of Wednesday 4th.
    assert_eq!(d["deadline"]["due"], "2026-11-05T00:00:00+08:00", "{d:#}");
    assert!(
        d["deadline"]["calendar"]
            .as_str()
            .unwrap()
            .starts_with("cn-holiday 2020-2026")
    );
    assert_eq!(manifest_of("on-time").await["deadline"]["status"], "met");
    let bare = manifest_of("bare").await;
    assert_eq!(bare["deadline"]["status"], "unknown");
    let year_end = manifest_of("year-end").await;
    assert_eq!(year_end["deadline"]["status"], "unknown");
    assert!(
        year_end["deadline"]["reason"]
            .as_str()
            .unwrap()
            .contains("2027"),
        "{year_end:#}"
    );

    // custody list: every search a records officer makes.
    let all = ["bare", "late", "on-time", "year-end"];
    let table: &[(&[&str], &[&str])] = &[
        (&[], &all),
        (&["--officer", "o-1001"], &["late", "on-time", "year-end"]),
        (&["--device", "bwc-1"], &all),
        (&["--device", "bwc-2"], &[]),
        (&["--case", "C-1"], &["on-time"]),
        (
            &["--category", "market", "--occasion", "on-site-inspection"],
            &["late", "on-time", "year-end"],
        ),
        (&["--unit", "market"], &all),
        (&["--from", "2026-11-01", "--to", "2026-11-03"], &["late"]),
        (&["--from", "2026-12-01"], &["year-end"]),
    ];
    for (args, want) in table {
        assert_eq!(ids(&list(&w, args)), want.to_vec(), "custody list {args:?}");
    }

    // A case assigned later (a signed annotation) is found by it.
    let o = custody(
        &w,
        &[
            "annotate",
            "--by",
            "records-office",
            "--case",
            "C-9",
            "bwc-1/late",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&list(&w, &["--case", "C-9"])), ["late"]);

    // The catalog is derived data: gone, and rebuilt from storage alone.
    for o in store.list("index/catalog/").await.unwrap() {
        store.delete(&o.key).await.unwrap();
    }
    assert!(list(&w, &[]).is_empty());
    let o = custody(&w, &["index", "rebuild"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("4 recordings"), "{}", stdout(&o));
    assert_eq!(ids(&list(&w, &[])), all.to_vec());
    assert_eq!(ids(&list(&w, &["--case", "C-9"])), ["late"]);

    // A rack reports what a recorder holds without uploading it yet.
    let later = w.path("later");
    media(&later, "held-1", 5, full);
    media(&later, "held-2", 6, full);
    let (out, _) = w.dock(
        "rack-1",
        &gw,
        &[
            "--recorder",
            "bwc-1",
            "--inventory-only",
            later.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = |w: &World| {
        let o = custody(w, &["compliance", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let not_uploaded = |r: &serde_json::Value| {
        let mut v: Vec<String> = r["not_uploaded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["recording_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // The inventory reaches storage through the outbox.
    let r = eventually(30, "the inventory in storage", || {
        let r = report(&w);
        async move { (!r["not_uploaded"].as_array().unwrap().is_empty()).then_some(r) }
    })
    .await;
    assert_eq!(not_uploaded(&r), ["held-1", "held-2"]);
    // One of them uploaded (which also reports the inventory again).
    std::fs::remove_file(later.join("held-2.mp4")).unwrap();
    std::fs::remove_file(later.join("held-2.mp4.json")).unwrap();
    let (out, _) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", later.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r = eventually(30, "the newer inventory", || {
        let r = report(&w);
        async move { (not_uploaded(&r).is_empty()).then_some(r) }
    })
    .await;

    // The report a records officer hands in.
    let names = |k: &str| -> Vec<String> {
        let mut v: Vec<String> = r[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["recording"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(r["recordings"], 5);
    assert_eq!(names("late"), ["bwc-1/late"]);
    // held-1 declared no time either.
    assert_eq!(
        names("deadline_unknown"),
        ["bwc-1/bare", "bwc-1/held-1", "bwc-1/year-end"]
    );
    // held-1 lacks its start time, bare nearly everything.
    assert_eq!(names("metadata_missing"), ["bwc-1/bare", "bwc-1/held-1"]);
    let o = custody(
        &w,
        &["compliance", "--unit", "market", "--from", "2026-11-01"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "Records compliance report: unit market",
        "1. Stored after the deadline (R4)",
        "bwc-1/late  officer o-1001  unit market  due 2026-11-05T00:00:00+08:00",
        "2. Deadline not assessable",
        "no official holiday schedule for 2027",
        "5. Recorded on a device, not uploaded (R4)",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }

    // The ledger (R1): the device's history, and the unit's usage report.
    let o = custody(&w, &["ledger", "show", "bwc-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("assigned to o-1001 (Zhang Wei)"),
        "{}",
        stdout(&o)
    );
    let o = custody(&w, &["ledger", "usage", "--unit", "market", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let u: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rack = &u["counts"]["rack-1"];
    assert!(rack["archived"].as_u64().unwrap() >= 5, "{u:#}");
    assert!(rack["session-opened"].as_u64().unwrap() >= 3, "{u:#}");
    assert!(rack["inventory-reported"].as_u64().unwrap() >= 2, "{u:#}");
}
