//! The records regulation as behaviour, against Garage: the storage
//! deadline in working days (R4), the catalog and `custody list` (R5),
//! cases assigned later, the catalog rebuilt from storage alone, docked
//! inventories, and `custody compliance`.

mod common;

use common::records::{custody, list, media};
use common::*;

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
    // Its deadline falls in 2027, for which the calendar has no schedule:
    // provisional, counted with weekends as the only rest days.
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
    assert_eq!(year_end["deadline"]["status"], "provisional");
    assert!(
        year_end["deadline"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("provisional: no official holiday schedule for 2027"),
        "{year_end:#}"
    );
    // Wednesday 30 December: Thursday 31 and Friday 1 January.
    assert_eq!(
        year_end["deadline"]["deadline"]["due"],
        "2027-01-02T00:00:00+08:00"
    );
    assert_eq!(
        year_end["deadline"]["deadline"]["provisional_years"],
        serde_json::json!([2027])
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
    assert_eq!(names("deadline_unknown"), ["bwc-1/bare", "bwc-1/held-1"]);
    assert_eq!(names("deadline_provisional"), ["bwc-1/year-end"]);
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
        "5. Recorded on a device, not uploaded (R4)",
        "7. Deadline provisional: holiday schedule not yet in the calendar (R4)",
        "bwc-1/year-end  officer o-1001  unit market  due 2027-01-02T00:00:00+08:00 provisionally",
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

/// A 2027 holiday schedule for tests. **Not the official schedule**: when
/// this was written the State Council had not published 2027's. It is
/// shaped like a real year file (holiday-cn format): New Year's Day on
/// Friday 1 January, Spring Festival, Qingming, Labour Day, Dragon Boat,
/// Mid-Autumn and National Day, with adjusted working weekends.
const TEST_FIXTURE_2027: &str = r#"{
  "year": 2027,
  "papers": ["https://example.invalid/test-fixture-not-the-official-2027-schedule"],
  "days": [
    {"name": "TEST FIXTURE New Year's Day", "date": "2027-01-01", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-06", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-07", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-08", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-09", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-10", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-11", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-12", "isOffDay": true},
    {"name": "TEST FIXTURE Spring Festival", "date": "2027-02-20", "isOffDay": false},
    {"name": "TEST FIXTURE Qingming", "date": "2027-04-05", "isOffDay": true},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-04-25", "isOffDay": false},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-05-01", "isOffDay": true},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-05-02", "isOffDay": true},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-05-03", "isOffDay": true},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-05-04", "isOffDay": true},
    {"name": "TEST FIXTURE Labour Day", "date": "2027-05-05", "isOffDay": true},
    {"name": "TEST FIXTURE Dragon Boat", "date": "2027-06-09", "isOffDay": true},
    {"name": "TEST FIXTURE Mid-Autumn", "date": "2027-09-15", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-09-26", "isOffDay": false},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-01", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-04", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-05", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-06", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-07", "isOffDay": true},
    {"name": "TEST FIXTURE National Day", "date": "2027-10-09", "isOffDay": false}
  ]
}
"#;

/// The same kind of test fixture for 2028 (not an official schedule): New
/// Year's Day block from Saturday 1 to Monday 3 January.
const TEST_FIXTURE_2028: &str = r#"{
  "year": 2028,
  "papers": ["https://example.invalid/test-fixture-not-the-official-2028-schedule"],
  "days": [
    {"name": "TEST FIXTURE New Year's Day", "date": "2028-01-01", "isOffDay": true},
    {"name": "TEST FIXTURE New Year's Day", "date": "2028-01-02", "isOffDay": true},
    {"name": "TEST FIXTURE New Year's Day", "date": "2028-01-03", "isOffDay": true}
  ]
}
"#;

/// A stored manifest, by the key `custody dock` reported.
async fn manifest(w: &World, r: &serde_json::Value) -> serde_json::Value {
    let b = w
        .store()
        .await
        .get_bytes(r["manifest_key"].as_str().unwrap(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// Docks one small recording `id` that ended at `ended`.
fn dock_one(w: &World, gw: &GatewayProc, id: &str, ended: &str) -> serde_json::Value {
    let dir = w.path(&format!("rack-{id}"));
    media(
        &dir,
        id,
        id.len() as u64,
        &format!(
            r#""officer":"o-1001","occasion":"on-site-inspection","proof_object":"goods","category":"market","full_process":{{"mandatory":false}},"started_at":"{ended}","ended_at":"{ended}""#
        ),
    );
    let (out, results) = w.dock(
        "rack-1",
        gw,
        &["--recorder", "bwc-1", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results[0]["result"], "archived", "{results:?}");
    results[0].clone()
}

/// The signed `deadline` annotations of a recording, in chain order.
async fn deadline_annotations(w: &World, m: &serde_json::Value) -> Vec<serde_json::Value> {
    let store = w.store().await;
    let mut out = Vec::new();
    for o in m["objects"].as_array().unwrap() {
        if o["role"] == "annotation" {
            let b = store
                .get_bytes(o["key"].as_str().unwrap(), 1 << 20)
                .await
                .unwrap();
            let a: serde_json::Value = serde_json::from_slice(&b).unwrap();
            if a["kind"] == "deadline" {
                out.push(a);
            }
        }
    }
    out
}

/// The calendar after 2026: until a year's official schedule is in
/// `calendar_dir`, deadlines that need it are provisional (weekends only),
/// shown as such by `custody list` and `custody compliance`; when the
/// schedule arrives — while the gateway runs, or before it starts — every
/// provisional deadline is assessed again and the answer appended as a
/// signed annotation, which the manifest, the catalog and the report show.
#[tokio::test(flavor = "multi_thread")]
async fn provisional_deadlines_are_assessed_again_when_the_schedule_arrives() {
    let mut w = World::new(Backend::Local);
    let calendar = w.path("calendar");
    std::fs::create_dir_all(&calendar).unwrap();
    w.edit_config(|c| c.policy.calendar_dir = Some("calendar".into()));
    // Saturday 2 January 2027, 10:00 in Beijing.
    w.set_clock("2027-01-02T02:00:00Z");
    let gw = w.gateway();

    // Ended Wednesday 30 December 2026, 10:00 in Beijing. Counting 2027's
    // weekends only, due at the end of Friday 1 January: stored late.
    let r = dock_one(&w, &gw, "new-year", "2026-12-30T02:00:00Z");
    let m = manifest(&w, &r).await;
    let d = &m["deadline"];
    assert_eq!(d["status"], "provisional", "{d:#}");
    assert_eq!(d["deadline"]["due"], "2027-01-02T00:00:00+08:00", "{d:#}");
    assert_eq!(
        d["deadline"]["provisional_years"],
        serde_json::json!([2027])
    );
    assert!(
        d["reason"].as_str().unwrap().starts_with(
            "provisional: no official holiday schedule for 2027 in calendar cn-holiday 2020-2026"
        ),
        "{d:#}"
    );
    assert_eq!(d["deadline"]["sources"][0]["file"], "built-in cn/2026.json");

    // custody list and custody compliance say it is provisional.
    let o = custody(&w, &["list"]);
    assert!(
        stdout(&o).contains("deadline provisional, due 2027-01-02T00:00:00+08:00"),
        "{}",
        stdout(&o)
    );
    assert_eq!(list(&w, &[])[0]["deadline_status"], "provisional");
    let report = |w: &World| {
        let o = custody(w, &["compliance", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let rep = report(&w);
    assert_eq!(
        rep["deadline_provisional"][0]["recording"],
        "bwc-1/new-year"
    );
    assert!(
        rep["deadline_provisional"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("late by that count"),
        "{rep:#}"
    );
    assert_eq!(rep["late"], serde_json::json!([]));
    let o = custody(&w, &["compliance"]);
    assert!(
        stdout(&o)
            .contains("7. Deadline provisional: holiday schedule not yet in the calendar (R4)")
            && stdout(&o).contains("bwc-1/new-year  officer o-1001"),
        "{}",
        stdout(&o)
    );

    // The 2027 schedule is added while the gateway runs. With 1 January a
    // holiday, the two working days are Thursday 31 and Monday 4: met.
    std::fs::write(calendar.join("2027.json"), TEST_FIXTURE_2027).unwrap();
    let m = eventually(90, "the deadline assessed again", || {
        let w = &w;
        let r = &r;
        async move {
            let m = manifest(w, r).await;
            (m["deadline"]["status"] != "provisional").then_some(m)
        }
    })
    .await;
    assert!(
        gw.log().contains("holiday calendar changed"),
        "{}",
        gw.log()
    );
    let d = &m["deadline"];
    assert_eq!(d["status"], "met", "{d:#}");
    assert_eq!(d["deadline"]["due"], "2027-01-05T00:00:00+08:00", "{d:#}");
    assert!(d.get("reason").is_none(), "{d:#}");
    assert!(d["deadline"].get("provisional_years").is_none(), "{d:#}");
    assert!(
        d["deadline"]["calendar"]
            .as_str()
            .unwrap()
            .starts_with("cn-holiday 2020-2027 sha256:"),
        "{d:#}"
    );
    let added = &d["deadline"]["sources"][1];
    assert_eq!(added["year"], 2027);
    assert_eq!(
        added["file"],
        calendar.join("2027.json").display().to_string()
    );
    assert_eq!(
        added["sha256"],
        hex::encode(custody::chain::sha256(TEST_FIXTURE_2027.as_bytes()))
    );
    assert_eq!(
        added["papers"][0],
        "https://example.invalid/test-fixture-not-the-official-2027-schedule"
    );
    // As a signed annotation by the gateway, once; the recording verifies.
    let a = deadline_annotations(&w, &m).await;
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["by"], "gateway test-gateway");
    assert_eq!(a[0]["value"], *d);
    assert!(
        a[0]["reason"]
            .as_str()
            .unwrap()
            .contains("the official holiday schedule for 2027 is now in calendar"),
        "{:#}",
        a[0]
    );
    let (ok, v) = w.verify_json(r["manifest_key"].as_str().unwrap());
    assert!(ok, "{v:#}");
    // The catalog and the report follow.
    assert_eq!(list(&w, &[])[0]["deadline_status"], "met");
    let rep = report(&w);
    assert_eq!(rep["deadline_provisional"], serde_json::json!([]));
    assert_eq!(rep["late"], serde_json::json!([]));

    // At the end of 2027 the same happens for 2028, this time with the
    // schedule added while no gateway runs: it is assessed at start.
    drop(gw);
    // Friday 31 December 2027, 10:00 in Beijing.
    w.set_clock("2027-12-31T02:00:00Z");
    let gw = w.gateway();
    let r2 = dock_one(&w, &gw, "year-2028", "2027-12-31T01:00:00Z");
    let m2 = manifest(&w, &r2).await;
    assert_eq!(m2["deadline"]["status"], "provisional");
    assert_eq!(
        m2["deadline"]["deadline"]["provisional_years"],
        serde_json::json!([2028])
    );
    // Monday 3 and Tuesday 4 January, counting weekends only.
    assert_eq!(
        m2["deadline"]["deadline"]["due"],
        "2028-01-05T00:00:00+08:00"
    );
    drop(gw);
    std::fs::write(calendar.join("2028.json"), TEST_FIXTURE_2028).unwrap();
    let gw = w.gateway();
    let m2 = eventually(60, "the deadline assessed at start", || {
        let w = &w;
        let r2 = &r2;
        async move {
            let m = manifest(w, r2).await;
            (m["deadline"]["status"] != "provisional").then_some(m)
        }
    })
    .await;
    // Monday 3 January is a holiday: Tuesday 4 and Wednesday 5.
    assert_eq!(m2["deadline"]["status"], "met");
    assert_eq!(
        m2["deadline"]["deadline"]["due"],
        "2028-01-06T00:00:00+08:00"
    );
    assert_eq!(deadline_annotations(&w, &m2).await.len(), 1);
    // The first recording was not touched again.
    let m = manifest(&w, &r).await;
    assert_eq!(deadline_annotations(&w, &m).await.len(), 1);
    drop(gw);
}
