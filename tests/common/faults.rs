//! Fault injection helpers (issue 11): seeded schedules, kill counts,
//! storage's open multipart uploads.

use std::time::Duration;

use custody::store::Store;

use super::World;

/// A small seeded generator (xorshift64*): the same seed gives the same
/// schedule of faults on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(self.next_u64() % span.max(1))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// How many times the crash-loop tests kill a process: `CUSTODY_CRASH_KILLS`,
/// 12 by default (the 100 run in the ignored `*_hundred_*` tests).
pub fn kills_from_env() -> usize {
    std::env::var("CUSTODY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Multipart uploads left open in the test's bucket, as `key (upload id)`.
pub async fn open_multipart_uploads(w: &World) -> Vec<String> {
    match w.store().await {
        Store::S3(s) => s
            .list_multipart_uploads("")
            .await
            .expect("list multipart uploads")
            .into_iter()
            .map(|u| format!("{} ({})", u.key, u.upload_id))
            .collect(),
        Store::Local(_) => Vec::new(),
    }
}

/// A tmpfs of a fixed size mounted for one test; unmounted when dropped.
pub struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    /// Mounts a `bytes`-sized tmpfs on `dir` (created if missing). Mounting
    /// needs root (CAP_SYS_ADMIN): where it is impossible this says so on
    /// stderr, naming what the test needed, and returns `None` so the test
    /// can skip.
    pub fn mount_or_skip(dir: &std::path::Path, bytes: u64, for_what: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs for {for_what} at {} (needs root): {}",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount for {for_what}: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process still holding a file there must not keep the
        // mount (and the test's temporary directory) alive.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}
