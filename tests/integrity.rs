//! End-to-end integrity: a device whose bytes do not match its declared
//! SHA-256 is told so and its bytes are quarantined; a byte flipped in
//! storage is found by `custody verify`, which names the object.

mod common;

use std::sync::Arc;

use common::*;
use custody::client::dock::{UploadJob, upload};
use custody::metadata::RecordingMeta;
use custody::protocol::RecordingState;

#[tokio::test(flavor = "multi_thread")]
async fn sha256_mismatch_is_reported_and_bytes_are_quarantined() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let file = w.path("clip.mp4");
    write_random_file(&file, 2_000_000, 5);
    let client = w.client("bwc-1", &gw);
    let conn = client.connect().await.unwrap();
    let wrong = custody::chain::sha256(b"not the file");
    let job = UploadJob {
        path: file.clone(),
        meta: RecordingMeta {
            recording_id: "rec-mismatch".into(),
            ..Default::default()
        },
        size: 2_000_000,
        sha256: wrong,
    };
    let o = upload(&conn, &job, Arc::new(|_| {})).await.unwrap();
    assert!(!o.sha256_matched);
    assert_eq!(o.state, RecordingState::Failed);
    assert!(
        o.detail.as_deref().unwrap().contains("sha256_mismatch"),
        "{o:?}"
    );

    // The bytes are kept: quarantined in storage with a report naming the problem.
    let store = w.store().await;
    let objs = eventually(30, "quarantine in storage", || async {
        let l = store.list("quarantine/bwc-1/rec-mismatch/").await.ok()?;
        l.iter()
            .any(|o| o.key.ends_with("/report.json"))
            .then_some(l)
    })
    .await;
    let data = objs.iter().find(|o| o.key.ends_with("/data")).unwrap();
    let (size, h) = store.read_hash(&data.key).await.unwrap();
    assert_eq!(size, 2_000_000);
    assert_eq!(hex::encode(h), sha256_file(&file));
    let report = objs
        .iter()
        .find(|o| o.key.ends_with("/report.json"))
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&store.get_bytes(&report.key, 1 << 20).await.unwrap()).unwrap();
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains(&hex::encode(wrong))
    );
    // Nothing was filed as a recording.
    assert!(store.list("records/").await.unwrap().is_empty());

    // The device can try again with the right hash; the upload starts afresh.
    let job = UploadJob {
        sha256: custody::chain::sha256(&std::fs::read(&file).unwrap()),
        ..job
    };
    let o = upload(&conn, &job, Arc::new(|_| {})).await.unwrap();
    assert!(o.sha256_matched, "{o:?}");
    assert_eq!(o.resumed_from, 0);
    assert_eq!(o.state, RecordingState::Archived);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_the_object_that_was_altered_in_storage() {
    let w = World::new(Backend::Garage);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("clip.mp4"), 9 << 20, 7);
    let (out, results) = w.dock("bwc-1", &gw, &[media.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mkey = results[0]["manifest_key"].as_str().unwrap().to_string();
    let (ok, _) = w.verify_json(&mkey);
    assert!(ok);

    let store = w.store().await;
    let prefix = mkey.trim_end_matches("/manifest.json");
    let original = format!("{prefix}/000001-original.mp4");
    let bytes = store.get_bytes(&original, 64 << 20).await.unwrap();
    let mut flipped = bytes.to_vec();
    flipped[4_000_000] ^= 0x01;
    store
        .put_bytes(
            &original,
            flipped.into(),
            &custody::chain::sha256(&{
                let mut f = bytes.to_vec();
                f[4_000_000] ^= 0x01;
                f
            }),
        )
        .await
        .unwrap();

    let o = w.verify(&mkey);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.starts_with("FAILED"), "{text}");
    assert!(
        text.contains(&format!("object 1 {original}: SHA-256 is")),
        "{text}"
    );
    let (ok, report) = w.verify_json(&mkey);
    assert!(!ok);
    assert_eq!(report["failures"][0]["index"], 1);

    // Deleting the header is named too; an extra object under the prefix is flagged.
    store
        .delete(&format!("{prefix}/000000-header.json"))
        .await
        .unwrap();
    let junk = bytes::Bytes::from_static(b"spliced");
    store
        .put_bytes(
            &format!("{prefix}/000002-segment.m4s"),
            junk.clone(),
            &custody::chain::sha256(&junk),
        )
        .await
        .unwrap();
    let text = stdout(&w.verify(&mkey));
    assert!(
        text.contains("object 0") && text.contains("missing from storage"),
        "{text}"
    );
    assert!(
        text.contains(
            "000002-segment.m4s: object in the recording's prefix is not in its manifest"
        ),
        "{text}"
    );
}
