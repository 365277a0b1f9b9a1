//! Puts the wall's browser player (hls.js, pinned in web/package-lock.json)
//! into the gateway. It comes from the npm registry by `npm ci`, run here
//! when web/node_modules lacks it, so a fresh clone builds in one step.
//! Only this crate runs npm: the verifier and the device client never
//! build it.

use std::path::Path;
use std::process::Command;

/// The repository's `web/`, seen from this crate (`crates/gateway`).
const WEB: &str = "../../web";
const HLS_JS: &str = "../../web/node_modules/hls.js/dist/hls.min.js";

fn main() {
    println!("cargo:rerun-if-changed={WEB}/package-lock.json");
    println!("cargo:rerun-if-changed={HLS_JS}");
    if Path::new(HLS_JS).exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--prefix", WEB, "--no-audit", "--no-fund"])
        .status();
    match status {
        Ok(s) if s.success() && Path::new(HLS_JS).exists() => {}
        Ok(s) => panic!("`npm ci --prefix web` failed ({s}); the wall needs {HLS_JS}"),
        Err(e) => panic!(
            "npm not found ({e}): install nodejs and npm (scripts/setup.sh does), \
             or run `npm ci --prefix web` before building"
        ),
    }
}
