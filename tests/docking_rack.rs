//! What a docking rack reports about a recorder's folder: every entry is
//! uploaded or listed with why it was not, and counted; files with the same
//! bytes under different names are one recording that holds every name;
//! tracks the derivative leaves out are named.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use custody::annotate::{Annotation, Fact};
use custody::manifest::{HeaderDoc, Manifest, Role};

/// `custody dock` as text (what the rack's operator reads).
fn dock_text(w: &World, gw: &GatewayProc, dir: &Path) -> std::process::Output {
    w.client_cmd("dock", "rack-1", gw)
        .args(["--recorder", "bwc-1", "--retry-for-secs", "20"])
        .arg(dir)
        .output()
        .unwrap()
}

fn result_for<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no line for {name}: {results:?}"))
}

async fn manifest(w: &World, key: &str) -> Manifest {
    let b = w.store().await.get_bytes(key, 1 << 26).await.unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// The file names a stored recording holds: its header's, then those of
/// its `docked-as` annotations.
async fn file_names(w: &World, m: &Manifest) -> Vec<String> {
    let store = w.store().await;
    let mut names = Vec::new();
    for o in &m.objects {
        let b = store.get_bytes(&o.key, 1 << 20).await.unwrap();
        match o.role {
            Role::Header => {
                let h: HeaderDoc = serde_json::from_slice(&b).unwrap();
                names.extend(h.meta.file_name);
            }
            Role::Annotation => {
                let a: Annotation = serde_json::from_slice(&b).unwrap();
                if let Fact::DockedAs {
                    file_name,
                    uploader,
                } = a.fact
                {
                    assert_eq!(uploader, "rack-1");
                    names.push(file_name);
                }
            }
            _ => {}
        }
    }
    names
}

/// Waits until the gateway has worked through every file name it was given
/// to record (its pending records in the spool are gone).
async fn names_recorded(w: &World) {
    let dir = w.path("spool/names");
    eventually(60, "the gateway to record the file names", || {
        let dir = dir.clone();
        async move {
            let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
            (left == 0).then_some(())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_of_the_folder_is_uploaded_or_listed_with_a_reason() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(media.join(".cache")).unwrap();
    write_random_file(&media.join("a.bin"), 5000, 1);
    std::fs::write(
        media.join("a.bin.json"),
        r#"{"recording_id":"rec-a","officer":"o-1001"}"#,
    )
    .unwrap();
    // Hidden files are files: recorders and cameras hide some of theirs.
    write_random_file(&media.join(".hidden.bin"), 4000, 2);
    write_random_file(&media.join(".cache/b.bin"), 3000, 3);
    // A sidecar that is not JSON: its metadata cannot be used, so its
    // bytes are kept as a file of their own.
    write_random_file(&media.join("c.bin"), 2000, 4);
    std::fs::write(media.join("c.bin.json"), "{ not json").unwrap();
    // Nothing to upload in these three.
    let fifo = Command::new("mkfifo")
        .arg(media.join("pipe"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink(media.join("gone.bin"), media.join("dangling")).unwrap();
    std::os::unix::fs::symlink(&media, media.join("loop")).unwrap();

    let out = dock_text(&w, &gw, &media);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    // 9 entries: 5 files uploaded, 1 sidecar used, 3 skipped.
    assert!(
        text.contains("9 found: 5 uploaded, 1 sidecar, 3 skipped, 0 failed"),
        "{text}"
    );
    for (name, why) in [
        ("pipe", "a FIFO: nothing to upload"),
        ("dangling", "a symbolic link to nothing"),
        ("loop", "again (a symbolic link)"),
    ] {
        let at = text
            .find(&format!("SKIPPED  {}", media.join(name).display()))
            .unwrap_or_else(|| panic!("{name} not listed as skipped: {text}"));
        assert!(text[at..].contains(why), "{name}: {text}");
    }
    assert!(text.contains(&format!("sidecar   {}", media.join("a.bin.json").display())));

    // The same in JSON, one line per entry (docking again: all stored).
    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(results.len(), 8, "{results:?}");
    for name in [
        "/a.bin",
        "/.hidden.bin",
        "/.cache/b.bin",
        "/c.bin",
        "/c.bin.json",
    ] {
        let r = result_for(&results, name);
        assert_eq!(r["result"], "archived", "{r}");
        assert_eq!(r["already_stored"], true, "{r}");
        let o = w.verify(r["manifest_key"].as_str().unwrap());
        assert!(o.status.success(), "{}", stdout(&o));
    }
    let a = result_for(&results, "/a.bin");
    assert_eq!(a["recording"], "bwc-1/rec-a");
    assert_eq!(a["sidecar"], media.join("a.bin.json").display().to_string());
    let c = result_for(&results, "/c.bin");
    assert!(
        c["warnings"][0]
            .as_str()
            .unwrap()
            .contains("uploaded as a file of its own"),
        "{c}"
    );
    for name in ["/pipe", "/dangling", "/loop"] {
        assert_eq!(result_for(&results, name)["result"], "skipped");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_bytes_under_two_names_are_one_recording_holding_both() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let media = w.path("media");
    std::fs::create_dir_all(&media).unwrap();
    write_random_file(&media.join("one.mp4"), 300_000, 7);
    std::fs::copy(media.join("one.mp4"), media.join("two.mp4")).unwrap();

    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", media.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (one, two) = (
        result_for(&results, "/one.mp4"),
        result_for(&results, "/two.mp4"),
    );
    assert_eq!(one["recording"], two["recording"]);
    assert!(
        one["recording"].as_str().unwrap().starts_with("bwc-1/f-"),
        "{one}"
    );
    assert_eq!(one["already_stored"], false, "{one}");
    assert_eq!(two["already_stored"], true, "{two}");
    assert_eq!(
        two["same_bytes_as"],
        media.join("one.mp4").display().to_string()
    );
    let key = one["manifest_key"].as_str().unwrap().to_string();
    names_recorded(&w).await;
    let m = manifest(&w, &key).await;
    assert_eq!(file_names(&w, &m).await, ["one.mp4", "two.mp4"]);
    let o = w.verify(&key);
    assert!(o.status.success(), "{}", stdout(&o));

    // Docking the folder again: both already stored, nothing resent, no
    // name recorded twice — and the report says so.
    let out = dock_text(&w, &gw, &media);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("already stored").count(), 2, "{text}");
    assert!(!text.contains("resumed from byte"), "{text}");
    assert!(text.contains("2 found: 2 uploaded"), "{text}");
    names_recorded(&w).await;
    let m = manifest(&w, &key).await;
    assert_eq!(file_names(&w, &m).await, ["one.mp4", "two.mp4"]);

    // A third name, docked on its own later, is added too.
    let later = w.path("later");
    std::fs::create_dir_all(&later).unwrap();
    std::fs::copy(media.join("one.mp4"), later.join("three.mp4")).unwrap();
    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", later.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(results[0]["already_stored"], true);
    names_recorded(&w).await;
    let m = manifest(&w, &key).await;
    assert_eq!(
        file_names(&w, &m).await,
        ["one.mp4", "two.mp4", "three.mp4"]
    );
    let o = w.verify(&key);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// `seconds` of H.264 with MP2 audio in MPEG-TS: fMP4 cannot carry MP2
/// without transcoding, so the audio is left out of the derivative.
fn h264_mp2_ts(path: &Path, seconds: u32) {
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "mp2", "-shortest", "-f", "mpegts"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn tracks_left_out_of_the_derivative_are_named() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let (text_dir, json_dir) = (w.path("text"), w.path("json"));
    std::fs::create_dir_all(&text_dir).unwrap();
    std::fs::create_dir_all(&json_dir).unwrap();
    h264_mp2_ts(&text_dir.join("mp2.ts"), 2);
    h264_mp2_ts(&json_dir.join("mp2-long.ts"), 3);

    let out = dock_text(&w, &gw, &text_dir);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("1 of 2 tracks left out: audio/mpeg"),
        "{text}"
    );
    assert!(
        text.contains("MPEG-1 audio (MP2/MP3) cannot be carried"),
        "{text}"
    );
    assert!(!text.contains("see tracks"), "{text}");

    let (out, results) = w.dock(
        "rack-1",
        &gw,
        &["--recorder", "bwc-1", json_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let note = &results[0]["derivation"];
    assert_eq!(note["status"], "derived", "{note}");
    let reason = note["reason"].as_str().unwrap();
    // The manifest's reason is the one the device was told, quoting the
    // track as the manifest's `tracks` lists it.
    let m = manifest(&w, results[0]["manifest_key"].as_str().unwrap()).await;
    let d = m.derivation.unwrap();
    assert_eq!(d.reason.as_deref(), Some(reason));
    let left_out: Vec<_> = d.tracks.iter().filter(|t| !t.included).collect();
    assert_eq!(left_out.len(), 1, "{:?}", d.tracks);
    assert!(reason.contains(&left_out[0].caps), "{reason}");
    assert!(
        reason.contains(left_out[0].reason.as_deref().unwrap()),
        "{reason}"
    );
}
