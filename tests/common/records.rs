//! Commands the records tests share: `custody` with the world's
//! configuration, small docked recordings with sidecars, and `custody list`.

use std::path::Path;
use std::process::Output;

use super::{World, stderr, stdout, write_random_file};

/// `custody <args> -c <config>`, on the world's clock.
pub fn custody(w: &World, args: &[&str]) -> Output {
    w.command()
        .args(args)
        .arg("-c")
        .arg(&w.config)
        .output()
        .unwrap()
}

/// A small file with a sidecar declaring `meta` (JSON fields).
pub fn media(dir: &Path, id: &str, seed: u64, meta: &str) {
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

/// `custody list --json <args>`: the catalog lines, in its order.
pub fn list(w: &World, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["list", "--json"];
    a.extend_from_slice(args);
    let o = custody(w, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
