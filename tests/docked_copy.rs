//! One recording, two copies: a recorder streams live until its link dies
//! for good, and its full-quality local file is docked later under the
//! same recording id. The copy is stored beside the live recording (never
//! appended to it), both manifests link each other, the live tail gap is
//! reported as filled, and everything verifies — whether the copy arrives
//! after the live recording closed or while it is still open.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use custody::manifest::{Manifest, Role};

/// A 20 s H.264 + AAC MPEG-TS file: the recorder's own full-quality copy.
fn local_file(w: &World) -> std::path::PathBuf {
    let f = w.path("local.ts");
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=20")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=20"])
        .args(["-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-shortest", "-f", "mpegts"])
        .arg(&f)
        .status()
        .unwrap();
    assert!(st.success());
    f
}

/// Streams `file` live at its own pace as `bwc-1`'s recording `id`.
fn stream(w: &World, gw: &GatewayProc, file: &Path, id: &str) -> KillOnDrop {
    let child = w
        .record_cmd(gw.addr, &format!("state-{id}"))
        .args(["--officer", "o-1001", "--recording-id", id, "--file"])
        .arg(file)
        .args(["--mandatory", "personal-liberty", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Docks `file` from the rack as `bwc-1`'s recording `id`: the outcome.
fn dock(w: &World, gw: &GatewayProc, file: &Path, id: &str) -> serde_json::Value {
    let dir = w.path(&format!("dock-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(file, dir.join(format!("{id}.ts"))).unwrap();
    std::fs::write(
        dir.join(format!("{id}.ts.json")),
        format!(
            r#"{{"recording_id":"{id}","officer":"o-1001","occasion":"administrative-coercion",
                "full_process":{{"mandatory":true,"reason":"personal-liberty"}},"proof_object":"the arrest"}}"#
        ),
    )
    .unwrap();
    let (out, results) = w.dock(
        "rack-1",
        gw,
        &["--recorder", "bwc-1", dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    results[0].clone()
}

async fn manifest(w: &World, key: &str) -> Manifest {
    let b = w.store().await.get_bytes(key, 1 << 26).await.unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// Waits until the live recording `id` is closed, stored and names its
/// docked copy; returns its verify report.
async fn linked(w: &World, id: &str) -> serde_json::Value {
    eventually(90, "the live recording linked to its docked copy", || {
        let (ok, r) = w.verify_json(&format!("bwc-1/{id}"));
        async move {
            (r["state"] == "closed" && r["links"].as_array().is_some_and(|l| !l.is_empty())).then(
                || {
                    assert!(ok, "{r:#}");
                    r
                },
            )
        }
    })
    .await
}

/// The live recording's raw chunks, as stored, in order.
async fn live_bytes(w: &World, m: &Manifest) -> Vec<u8> {
    let store = w.store().await;
    let mut out = Vec::new();
    for o in m.objects.iter().filter(|o| o.role == Role::RawChunk) {
        out.extend_from_slice(&store.get_bytes(&o.key, 1 << 26).await.unwrap());
    }
    out
}

async fn check_pair(w: &World, id: &str, file: &Path, docked: &serde_json::Value) {
    let docked_id = format!("{id}.docked");
    assert_eq!(docked["result"], "archived", "{docked}");
    assert_eq!(
        docked["recording"],
        format!("bwc-1/{docked_id}"),
        "{docked}"
    );
    assert_eq!(docked["sha256"].as_str().unwrap(), sha256_file(file));

    let live = linked(w, id).await;
    let live_m = manifest(w, live["manifest_key"].as_str().unwrap()).await;
    let summary = live_m.live.as_ref().unwrap();
    // The recorder died: a tail gap, the full-process flag raised, and the
    // copy fills the gap.
    assert_eq!(summary.gaps.len(), 1, "{:?}", summary.gaps);
    assert_eq!(summary.gaps[0].kind, "tail");
    assert!(summary.full_process_violation);
    assert_eq!(live_m.links.len(), 1, "{:?}", live_m.links);
    let link = &live_m.links[0];
    assert_eq!(link.relation.as_str(), "docked-copy");
    assert_eq!(link.recording_id, docked_id);
    assert_eq!(
        link.gaps_filled,
        vec![0],
        "the 20 s copy covers the tail gap"
    );
    // …through a signed annotation, the last object of the live chain.
    let last = live_m.objects.last().unwrap();
    assert_eq!(last.role, Role::Annotation);
    assert_eq!(live["signed_objects"], live["objects"], "{live:#}");

    // The copy's manifest names the live recording, from its chained header.
    let (ok, d) = w.verify_json(docked["manifest_key"].as_str().unwrap());
    assert!(ok, "{d:#}");
    let docked_m = manifest(w, docked["manifest_key"].as_str().unwrap()).await;
    assert_eq!(docked_m.links[0].relation.as_str(), "docked-copy-of");
    assert_eq!(docked_m.links[0].recording_id, id);
    assert_eq!(docked_m.recording_id, docked_id);

    // The live original is what the recorder streamed before it died: a
    // prefix of the local file, with nothing of the docked upload in it.
    let raw = live_bytes(w, &live_m).await;
    let local = std::fs::read(file).unwrap();
    assert!(
        !raw.is_empty() && raw.len() < local.len(),
        "{} of {}",
        raw.len(),
        local.len()
    );
    assert!(
        local.starts_with(&raw),
        "the live original is not a prefix of the recorder's file"
    );

    // custody verify prints the gap as filled.
    let out = w.verify(&format!("bwc-1/{id}"));
    assert!(
        stdout(&out).contains(&format!("[filled by the docked copy bwc-1/{docked_id}]")),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docked_copy_is_linked_and_fills_the_live_gap() {
    let w = World::with_config(Backend::Garage, |c| {
        c.gateway.archive_wait_secs = 30;
        c.live.close_after_secs = 3;
    });
    let gw = w.gateway();
    let file = local_file(&w);

    // A: the recorder dies 7 s in; the live recording closes by timeout;
    // then the rack docks the recorder's file.
    let a = stream(&w, &gw, &file, "two-a");
    // B: streamed at the same time; its copy is docked while it is still
    // open, and linked once it closes.
    let b = stream(&w, &gw, &file, "two-b");
    tokio::time::sleep(Duration::from_secs(7)).await;
    drop(a);
    let docked_b = dock(&w, &gw, &file, "two-b");
    let (_, open) = w.verify_json("bwc-1/two-b");
    assert_eq!(
        open["state"], "open",
        "B is still live while its copy is stored"
    );
    drop(b);

    eventually(60, "A closed by timeout", || {
        let (_, r) = w.verify_json("bwc-1/two-a");
        async move { (r["state"] == "closed").then_some(()) }
    })
    .await;
    let docked_a = dock(&w, &gw, &file, "two-a");
    check_pair(&w, "two-a", &file, &docked_a).await;
    check_pair(&w, "two-b", &file, &docked_b).await;

    // Docking the copy again is recognised as done, not stored twice.
    let again = dock(&w, &gw, &file, "two-a");
    assert_eq!(again["recording"], "bwc-1/two-a.docked", "{again}");
    assert_eq!(again["manifest_key"], docked_a["manifest_key"], "{again}");
}
