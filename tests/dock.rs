//! Docked uploads end to end: `custody dock` → QUIC → gateway → Garage,
//! then `custody verify` reading storage alone.

mod common;

use common::faults::open_multipart_uploads;
use common::*;
use custody::manifest::{HeaderDoc, Manifest};
use custody::usage::UsageEntry;

#[tokio::test(flavor = "multi_thread")]
async fn dock_folder_into_garage_then_verify_and_redock_without_resending() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(media.join("sub")).unwrap();
    // 20 MiB: a multipart upload with 8 MiB parts.
    write_random_file(&media.join("long.mp4"), 20 << 20, 1);
    write_random_file(&media.join("sub/photo.jpg"), 300_000, 2);
    write_random_file(&media.join("note.wav"), 1234, 3);
    std::fs::write(
        media.join("long.mp4.json"),
        r#"{"recording_id":"bwc1-20261130-0001","officer":"o-1001","occasion":"administrative-coercion",
            "full_process":{"mandatory":true,"reason":"personal-liberty"},"category":"market",
            "case_id":"case-2026-17","started_at":"2026-11-30T09:00:00+08:00","proof_object":"seizure of goods",
            "markers":[{"kind":"evidence","media_time":12.5,"note":"goods shown"}]}"#,
    )
    .unwrap();

    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(results.len(), 3, "{}", stdout(&out));
    for r in &results {
        assert_eq!(r["result"], "archived", "{r}");
        let path = std::path::Path::new(r["path"].as_str().unwrap());
        assert_eq!(r["sha256"].as_str().unwrap(), sha256_file(path));
    }
    let long = results
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("long.mp4"))
        .unwrap();
    assert_eq!(long["recording"], "bwc-1/bwc1-20261130-0001");
    let mkey = long["manifest_key"].as_str().unwrap().to_string();
    assert!(
        mkey.starts_with("records/market/")
            && mkey.ends_with("/bwc-1/bwc1-20261130-0001/manifest.json"),
        "{mkey}"
    );

    // Every recording verifies from storage alone, by key and by id.
    for r in &results {
        let o = w.verify(r["manifest_key"].as_str().unwrap());
        assert!(o.status.success(), "{}", stdout(&o));
        assert!(stdout(&o).starts_with("OK "), "{}", stdout(&o));
    }
    let o = w.verify("bwc-1/bwc1-20261130-0001");
    assert!(o.status.success(), "{}", stdout(&o));

    // Manifest and header say what the regulation asks for.
    let store = w.store().await;
    let m: Manifest =
        serde_json::from_slice(&store.get_bytes(&mkey, 1 << 20).await.unwrap()).unwrap();
    assert!(m.metadata_complete, "{:?}", m.missing);
    assert!(m.summary.mandatory_full_process);
    assert_eq!(m.summary.case_id.as_deref(), Some("case-2026-17"));
    assert_eq!(m.objects.len(), 2);
    assert_eq!(m.objects[1].size, 20 << 20);
    let header: HeaderDoc =
        serde_json::from_slice(&store.get_bytes(&m.objects[0].key, 1 << 20).await.unwrap())
            .unwrap();
    assert_eq!(header.uploader.device, "rack-1");
    assert_eq!(header.recorder, "bwc-1");
    assert_eq!(header.ledger.officer.as_deref(), Some("o-1001"));
    assert_eq!(header.ledger.custodian, "Li Na");
    assert_eq!(
        header.meta.started_at.as_deref(),
        Some("2026-11-30T09:00:00+08:00")
    );
    assert!(!header.received_at.is_empty());
    assert!(
        header.discrepancies.is_empty(),
        "{:?}",
        header.discrepancies
    );
    // The case index points at the recording without moving it.
    assert!(
        store
            .exists("index/cases/case-2026-17/bwc-1/bwc1-20261130-0001.json")
            .await
            .unwrap()
    );

    // A file without a sidecar is stored anyway and marked incomplete.
    let wav = results
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with("note.wav"))
        .unwrap();
    let m2: Manifest = serde_json::from_slice(
        &store
            .get_bytes(wav["manifest_key"].as_str().unwrap(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!m2.metadata_complete);
    assert!(
        m2.missing.contains(&"proof_object".to_string()),
        "{:?}",
        m2.missing
    );
    assert!(m2.prefix.starts_with("records/_uncategorized/"));

    // Docking the same folder again confirms without resending a byte.
    let (out, again) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    for r in &again {
        assert_eq!(r["result"], "archived", "{r}");
        assert_eq!(r["resumed_from"], r["size"], "{r}");
    }

    // The usage record has the sessions and uploads of the rack.
    let entries = eventually(20, "usage records", || async {
        let list = store.list("usage/rack-1/").await.ok()?;
        let mut es = Vec::new();
        for o in list {
            let b = store.get_bytes(&o.key, 1 << 20).await.ok()?;
            es.push(serde_json::from_slice::<UsageEntry>(&b).ok()?);
        }
        let verified = es
            .iter()
            .filter(|e| e.event == custody::usage::UsageEvent::UploadVerified)
            .count();
        (verified >= 3).then_some(es)
    })
    .await;
    assert!(
        entries
            .iter()
            .any(|e| e.event == custody::usage::UsageEvent::SessionOpened
                && e.officer.as_deref() == Some("o-1001"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_local_store_works_without_s3() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.ts"), 3 << 20, 9);
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(results[0]["result"], "archived");
    let key = results[0]["manifest_key"].as_str().unwrap();
    assert!(w.path("store").join(key).is_file());
    let o = w.verify(key);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorder_may_not_upload_for_another_device() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("a.bin"), 1000, 1);
    let (out, results) = w.dock(
        "bwc-1",
        &gw,
        &["--recorder", "rack-1", media.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert_eq!(results[0]["result"], "error");
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("recorder_not_allowed"),
        "{}",
        results[0]
    );
    // A rack may not name a recorder the ledger lacks either.
    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "nobody", media.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("not in the ledger")
    );
}

/// The original goes to storage part by part while it arrives (single
/// mode, S3 storage): once the device's `finish` matches, only the last,
/// partial part is left to send. Every whole part the spool made durable
/// was sent ahead — not a matter of timing: the sender sends each whole
/// durable part before the archiver may complete the upload — the stored
/// object is the file byte for byte, and no multipart upload is left open.
#[tokio::test(flavor = "multi_thread")]
async fn the_original_is_sent_to_storage_while_it_arrives() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    // Seven whole 8 MiB parts and a tail.
    let size: u64 = (7 << 23) + 12_345;
    let file = media.join("long.mp4");
    write_random_file(&file, size, 5);
    let (out, results) = w.dock("bwc-1", &gw, &["--no-inventory", media.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), gw.log());
    let r = &results[0];
    assert_eq!(r["result"], "archived", "{r}");
    let log = gw.log();
    assert!(
        log.contains("original completed from the parts sent while it arrived")
            && log.contains(&format!("sent_ahead={}", 7u64 << 23)),
        "{log}"
    );
    let store = w.store().await;
    let mkey = r["manifest_key"].as_str().unwrap();
    let m: Manifest =
        serde_json::from_slice(&store.get_bytes(mkey, 1 << 20).await.unwrap()).unwrap();
    let (stored, h) = store.read_hash(&m.objects[1].key).await.unwrap();
    assert_eq!(stored, size);
    assert_eq!(hex::encode(h), sha256_file(&file));
    assert!(open_multipart_uploads(&w).await.is_empty());
    let o = w.verify(mkey);
    assert!(o.status.success(), "{}", stdout(&o));
}
