//! A machine without a GStreamer package, and sources that fail: the
//! gateway and the recorder refuse to start with the element and the
//! Debian package to install; a recorder whose source fails exits non-zero
//! with the error and its recording ends where the source stopped; a live
//! recording that holds no media verifies as exactly that.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use custody::manifest::Manifest;
use gst::prelude::*;

/// Environment under which a child process sees every GStreamer plugin of
/// this machine except the one that provides `element`, as on a machine
/// without that plugin's package. Returns the variables and the plugin's
/// file name.
fn without_plugin_of(w: &World, element: &str) -> (Vec<(&'static str, PathBuf)>, String) {
    gst::init().unwrap();
    let plugin = gst::ElementFactory::find(element)
        .and_then(|f| f.plugin())
        .and_then(|p| p.filename())
        .unwrap_or_else(|| panic!("this machine has no {element} to hide"));
    let system = plugin.parent().unwrap();
    let dir = w.path(&format!("plugins-without-{element}"));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(system).unwrap() {
        let p = e.unwrap().path();
        if p != plugin && p.extension().is_some_and(|x| x == "so") {
            std::os::unix::fs::symlink(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let name = plugin.file_name().unwrap().to_string_lossy().into_owned();
    (
        vec![
            ("GST_PLUGIN_SYSTEM_PATH_1_0", dir.clone()),
            // A registry of its own, so this machine's cache is not used.
            ("GST_REGISTRY_1_0", dir.join("registry.bin")),
        ],
        name,
    )
}

/// `custody record` for device `bwc-1`, JSON output.
fn record(w: &World, gw: &GatewayProc, state: &str, args: &[&str]) -> Command {
    let mut c = w.client_cmd("record", "bwc-1", gw);
    c.arg("--state-dir")
        .arg(w.path(state))
        .args(["--json", "--officer", "o-1001"])
        .args(args)
        .env_remove("GST_PLUGIN_PATH")
        .env_remove("GST_PLUGIN_PATH_1_0");
    c
}

/// Refused before anything was made: the recorder kept no state (a rerun
/// would otherwise continue a recording the gateway never saw, with a
/// restart gap), and the gateway holds no recording of the device, neither
/// in its spool nor in storage.
fn assert_no_recording_opened(w: &World) {
    let state = w.path("state");
    assert!(!state.exists(), "{} exists", state.display());
    let spool = w.path("spool/recordings/bwc-1");
    assert!(!spool.exists(), "{} exists", spool.display());
    let stored = std::fs::read_dir(w.path("store/records"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "something is stored");
}

async fn manifest(w: &World, key: &str) -> Manifest {
    let store = w.store().await;
    eventually(60, "the manifest in storage", || {
        let (store, key) = (store.clone(), key.to_string());
        async move { serde_json::from_slice(&store.get_bytes(&key, 1 << 26).await.ok()?).ok() }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn record_without_the_clock_overlay_names_the_element_and_its_package() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let (env, plugin) = without_plugin_of(&w, "timeoverlay");
    let mut cmd = record(&w, &gw, "state", &["--test-source", "--duration", "3"]);
    cmd.envs(env);
    let out = output_within(cmd, 60);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "GStreamer element \"timeoverlay\" is missing: install the Debian package gstreamer1.0-x"
        ),
        "without {plugin}: {err}"
    );
    assert_no_recording_opened(&w);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_without_a_demuxer_names_the_element_and_its_package() {
    let w = World::new(Backend::Local);
    let (env, plugin) = without_plugin_of(&w, "avidemux");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "-c"])
        .arg(&w.config)
        .envs(env)
        .env_remove("GST_PLUGIN_PATH")
        .env_remove("GST_PLUGIN_PATH_1_0");
    let out = output_within(cmd, 60);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("60-avi.pipeline"), "without {plugin}: {err}");
    assert!(
        err.contains(
            "GStreamer element \"avidemux\" is missing: install the Debian package gstreamer1.0-plugins-good"
        ),
        "without {plugin}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn record_from_a_file_that_is_not_there_fails_before_opening_a_recording() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let missing = w.path("no-such-recording.ts");
    let out = output_within(
        record(&w, &gw, "state", &["--file", missing.to_str().unwrap()]),
        60,
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("{}: No such file", missing.display())),
        "{}",
        stderr(&out)
    );
    assert_no_recording_opened(&w);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_fails_while_recording_ends_the_recording_and_the_command_fails() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    // A folder opens like a file, but reading it fails: the source fails
    // once the recording has started.
    let folder = w.path("not-a-stream");
    std::fs::create_dir_all(&folder).unwrap();
    let out = output_within(
        record(
            &w,
            &gw,
            "state",
            &[
                "--file",
                folder.to_str().unwrap(),
                "--recording-id",
                "rec-fails",
            ],
        ),
        90,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "the source failed, so the recording ended there: {}: Is a directory",
            folder.display()
        )),
        "{}",
        stderr(&out)
    );
    let o: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        o["source_error"]
            .as_str()
            .unwrap()
            .contains("Is a directory"),
        "{o}"
    );
    assert_eq!(o["bytes"], 0);
    // The recording it opened is closed and stored for what it is.
    let key = o["manifest_key"].as_str().unwrap();
    let m = manifest(&w, key).await;
    assert_eq!(m.live.as_ref().unwrap().stream_bytes, 0);
    let (ok, report) = w.verify_json(key);
    assert!(ok, "{report}");
    assert_eq!(report["empty"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_recording_without_a_byte_verifies_as_holding_no_media() {
    let w = World::new(Backend::Local);
    let gw = w.gateway();
    let mut cmd = record(
        &w,
        &gw,
        "state",
        &["--stdin", "--recording-id", "rec-empty"],
    );
    cmd.stdin(Stdio::null());
    let out = output_within(cmd, 90);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let o: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["bytes"], 0);
    assert_eq!(o["source_error"], serde_json::Value::Null);
    assert_eq!(o["derivation"]["status"], "none", "{o}");
    let key = o["manifest_key"].as_str().unwrap();
    let m = manifest(&w, key).await;
    let d = m.derivation.as_ref().unwrap();
    assert_eq!(
        d.reason.as_deref(),
        Some("the recording holds no media: the recorder sent no bytes")
    );

    let v = w.verify(key);
    let text = stdout(&v);
    assert!(v.status.success(), "{text}");
    assert!(text.starts_with("OK "), "{text}");
    assert!(
        text.contains(
            "holds no media: the live recording was opened and ended without a byte of stream"
        ),
        "{text}"
    );
    let (ok, report) = w.verify_json("bwc-1/rec-empty");
    assert!(ok, "{report}");
    assert_eq!(report["empty"], true);
    assert_eq!(report["state"], "closed");
}
