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

/// What the storage proxy does to the traffic it relays.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFaults {
    /// Added before each response starts (once per request and response).
    pub latency: Duration,
    /// Cap on each direction of each connection, bytes per second (0: none).
    pub bytes_per_sec: u64,
    /// Chance that a new connection's first request is answered 500 or 503
    /// by the proxy, and that a further request on a kept-alive connection
    /// finds the connection closed instead of forwarded.
    pub error_rate: f64,
}

/// A TCP relay in front of an S3 server (Garage) that makes it slow and
/// unreliable, seeded: see `HttpFaults`. The faults can be changed (or
/// cleared) while it runs.
pub struct StorageProxy {
    pub addr: std::net::SocketAddr,
    faults: std::sync::Arc<std::sync::Mutex<HttpFaults>>,
    /// Requests answered with an error or cut by the proxy.
    pub injected: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StorageProxy {
    pub async fn start(target: std::net::SocketAddr, faults: HttpFaults, seed: u64) -> Self {
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Mutex::new(faults));
        let injected = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        let (f, n) = (faults.clone(), injected.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (f, n, rng) = (f.clone(), n.clone(), rng.clone());
                tokio::spawn(async move {
                    let _ = relay(client, target, f, n, rng).await;
                });
            }
        });
        StorageProxy {
            addr,
            faults,
            injected,
            task,
        }
    }

    pub fn set(&self, faults: HttpFaults) {
        *self.faults.lock().unwrap() = faults;
    }
}

impl Drop for StorageProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: tokio::net::TcpStream,
    target: std::net::SocketAddr,
    faults: std::sync::Arc<std::sync::Mutex<HttpFaults>>,
    injected: std::sync::Arc<std::sync::atomic::AtomicU64>,
    rng: std::sync::Arc<std::sync::Mutex<Rng>>,
) -> std::io::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fail_first = {
        let p = faults.lock().unwrap().error_rate;
        rng.lock().unwrap().chance(p)
    };
    if fail_first {
        // Read the request head, answer with a server error, hang up.
        let mut head = Vec::new();
        let mut b = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
            let k = client.read(&mut b).await?;
            if k == 0 {
                return Ok(());
            }
            head.extend_from_slice(&b[..k]);
        }
        let (status, code) = if rng.lock().unwrap().chance(0.5) {
            ("500 Internal Server Error", "InternalError")
        } else {
            ("503 Service Unavailable", "SlowDown")
        };
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
        );
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        injected.fetch_add(1, Ordering::Relaxed);
        client.write_all(resp.as_bytes()).await?;
        return client.shutdown().await;
    }
    let upstream = tokio::net::TcpStream::connect(target).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    // Set when a request's bytes went up, cleared when its response starts.
    let asked = Arc::new(AtomicBool::new(false));
    let a = asked.clone();
    let (f, r) = (faults.clone(), rng.clone());
    let up = async move {
        let mut b = vec![0u8; 16384];
        let mut answered = false;
        loop {
            let k = cr.read(&mut b).await?;
            if k == 0 {
                return uw.shutdown().await;
            }
            let fx = *f.lock().unwrap();
            // A new request on a kept-alive connection (the last one was
            // answered): sometimes the connection dies under it.
            if answered && !a.load(Ordering::SeqCst) && r.lock().unwrap().chance(fx.error_rate) {
                injected.fetch_add(1, Ordering::Relaxed);
                return Err(std::io::ErrorKind::ConnectionReset.into());
            }
            a.store(true, Ordering::SeqCst);
            answered = true;
            uw.write_all(&b[..k]).await?;
            throttle(k, fx.bytes_per_sec).await;
        }
    };
    let f = faults.clone();
    let down = async move {
        let mut b = vec![0u8; 16384];
        loop {
            let k = ur.read(&mut b).await?;
            if k == 0 {
                return cw.shutdown().await;
            }
            let fx = *f.lock().unwrap();
            if asked.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(fx.latency).await;
            }
            cw.write_all(&b[..k]).await?;
            throttle(k, fx.bytes_per_sec).await;
        }
    };
    // Either side ending or failing ends the connection.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

async fn throttle(bytes: usize, per_sec: u64) {
    if per_sec > 0 {
        tokio::time::sleep(Duration::from_secs_f64(bytes as f64 / per_sec as f64)).await;
    }
}
