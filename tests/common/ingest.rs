//! What the tests of devices on other protocols (RTSP, SRT) share: ledger
//! entries added to the world's ledger, the device's usage record, its
//! recording once closed, and the objects and codecs it holds.

use std::path::Path;
use std::process::Command;

use super::{World, eventually, stdout};
use custody::manifest::{Manifest, Role};
use custody::usage::UsageEntry;

/// Appends `entry` (TOML) to the world's ledger.
pub fn add_to_ledger(w: &World, entry: &str) {
    let path = w.path("ledger.toml");
    let mut ledger = std::fs::read_to_string(&path).unwrap();
    ledger.push_str(entry);
    std::fs::write(&path, ledger).unwrap();
}

/// Every entry of `device`'s usage record in storage.
pub async fn usage_of(w: &World, device: &str) -> Vec<UsageEntry> {
    let store = w.store().await;
    let mut out = Vec::new();
    for o in store.list(&format!("usage/{device}/")).await.unwrap() {
        out.push(serde_json::from_slice(&store.get_bytes(&o.key, 1 << 20).await.unwrap()).unwrap());
    }
    out
}

/// The manifest key and manifest of `device`'s first recording to close.
pub async fn closed_recording(w: &World, device: &str) -> (String, Manifest) {
    let store = w.store().await;
    let key = eventually(90, "the recording closed", || {
        let store = store.clone();
        async move {
            let l = store
                .list(&format!("index/recordings/{device}/"))
                .await
                .ok()?;
            let v: serde_json::Value =
                serde_json::from_slice(&store.get_bytes(&l.first()?.key, 1 << 20).await.ok()?)
                    .ok()?;
            Some(v["manifest_key"].as_str()?.to_string())
        }
    })
    .await;
    let m = serde_json::from_slice(&store.get_bytes(&key, 1 << 26).await.unwrap()).unwrap();
    (key, m)
}

/// The recording's header document.
pub async fn header_of(w: &World, m: &Manifest) -> serde_json::Value {
    let store = w.store().await;
    serde_json::from_slice(&store.get_bytes(&m.objects[0].key, 1 << 20).await.unwrap()).unwrap()
}

/// Writes the recording's objects of `roles`, in chain order, to `out`.
pub async fn concat(w: &World, m: &Manifest, roles: &[Role], out: &Path) {
    let store = w.store().await;
    let mut all = Vec::new();
    for o in m.objects.iter().filter(|o| roles.contains(&o.role)) {
        all.extend_from_slice(&store.get_bytes(&o.key, 1 << 30).await.unwrap());
    }
    std::fs::write(out, all).unwrap();
}

/// The codecs of the streams ffprobe finds in `file`, sorted.
pub fn codecs(file: &Path) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    let mut c: Vec<String> = stdout(&o).lines().map(|l| l.trim().to_string()).collect();
    c.sort();
    c
}

/// Every closed recording of `device` (its locators), with its manifest
/// key, in the order they began.
pub async fn recordings_of(w: &World, device: &str) -> Vec<(String, Manifest)> {
    let store = w.store().await;
    let mut out = Vec::new();
    for l in store
        .list(&format!("index/recordings/{device}/"))
        .await
        .unwrap()
    {
        let v: serde_json::Value =
            serde_json::from_slice(&store.get_bytes(&l.key, 1 << 20).await.unwrap()).unwrap();
        let key = v["manifest_key"].as_str().unwrap().to_string();
        let m: Manifest =
            serde_json::from_slice(&store.get_bytes(&key, 1 << 26).await.unwrap()).unwrap();
        out.push((key, m));
    }
    out.sort_by(|a, b| a.1.recording_id.cmp(&b.1.recording_id));
    out
}

/// The first entry of `device`'s usage record that `pick` takes, waited
/// for up to `secs` seconds (`what` names it if it never comes).
pub async fn usage_entry(
    w: &World,
    device: &str,
    secs: u64,
    what: &str,
    pick: impl Fn(&UsageEntry) -> bool,
) -> UsageEntry {
    eventually(secs, what, || async {
        usage_of(w, device).await.into_iter().find(|e| pick(e))
    })
    .await
}
