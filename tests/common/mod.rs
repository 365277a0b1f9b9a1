//! Test harness: real parts only. A single-node Garage server on loopback
//! per test, a real PKI made with `custody certs`' code, the real `custody`
//! binary as gateway and clients, talking QUIC over 127.0.0.1.
#![allow(dead_code)]

pub mod faults;
pub mod garage;
pub mod ingest;
pub mod ops;
pub mod postgres;
pub mod records;
pub mod s3;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use custody::config::Config;
use custody::config::StoreConfig;
use custody::pki::{self, CertDir};
use custody::store::Store;
pub use garage::{Garage, GarageCluster};

pub const BIN: &str = env!("CARGO_BIN_EXE_custody");

pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn moto_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/custody/moto/bin/moto_server")
}

/// moto in server mode: an S3 that enforces Object Lock, to check the
/// retention path against (Garage has no Object Lock).
pub struct Moto {
    child: Option<Child>,
    pub endpoint: String,
    pub bucket: String,
}

impl Moto {
    pub fn start(root: &Path) -> Moto {
        let port = free_tcp_port();
        let log = std::fs::File::create(root.join("moto.log")).unwrap();
        let child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("moto_server (scripts/setup.sh installs it in ~/.cache/custody/moto, or set MOTO_SERVER)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + patience(60);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let bucket = "custody-locked".to_string();
        // A bucket with Object Lock (moto checks no signatures).
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nx-amz-bucket-object-lock-enabled: true\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "moto bucket: {resp}");
        Moto {
            child: Some(child),
            endpoint: format!("http://{addr}"),
            bucket,
        }
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            bucket: Some(self.bucket.clone()),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("moto".into()),
            secret_access_key: Some("moto".into()),
            ..StoreConfig::default()
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn http_ok(addr: &str, path: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200 ")
}

pub const LEDGER: &str = r#"
[[officer]]
id = "o-1001"
name = "Zhang Wei"
unit = "market"
enforcement = true

[[officer]]
id = "clerk-1"
name = "Wang Fang"
unit = "office"
enforcement = false

[[device]]
id = "bwc-1"
kind = "body-worn-recorder"
custodian = "Li Na"
unit = "market"
status = "active"
[[device.assignment]]
officer = "o-1001"

[[device]]
id = "rack-1"
kind = "docking-rack"
custodian = "Li Na"
unit = "market"
status = "active"
[[device.assignment]]
officer = "o-1001"

[[device]]
id = "bwc-revoked"
kind = "body-worn-recorder"
custodian = "Li Na"
status = "revoked"
[[device.assignment]]
officer = "o-1001"

[[device]]
id = "cam-clerk"
kind = "camera"
custodian = "Li Na"
status = "active"
[[device.assignment]]
officer = "clerk-1"
"#;

/// Devices with certificates: the ledger knows all but `ghost`.
pub const DEVICES: &[&str] = &["bwc-1", "rack-1", "bwc-revoked", "cam-clerk", "ghost"];

/// The clock a test's processes run on (`CUSTODY_TEST_NOW`, see
/// `custody::clock`): it reads `at` when made and advances in real time, the
/// same for every process started from it, so a test gives the same result
/// in any year.
#[derive(Debug, Clone, Copy)]
pub struct TestClock {
    at: time::OffsetDateTime,
    set: Instant,
}

impl TestClock {
    /// A clock that reads `at` (RFC 3339) now.
    pub fn at(at: &str) -> TestClock {
        TestClock {
            at: custody::time_fmt::parse(at).expect("an RFC 3339 test time"),
            set: Instant::now(),
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.at + self.set.elapsed()
    }

    /// Starts `cmd`'s clock at this clock's now.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env(
            custody::clock::TEST_NOW_VAR,
            custody::time_fmt::rfc3339(self.now()),
        )
    }
}

/// Everything one test needs: PKI, ledger, store, config.
pub struct World {
    pub dir: tempfile::TempDir,
    pub certs: CertDir,
    pub garage: Option<Garage>,
    pub garage_cluster: Option<GarageCluster>,
    pub moto: Option<Moto>,
    pub config: PathBuf,
    /// The clock of every process the world starts; `None`: the real one.
    pub clock: Option<TestClock>,
}

pub enum Backend {
    Garage,
    /// Three Garage nodes, replication factor 3.
    GarageCluster,
    Local,
    /// moto's S3, enforcing Object Lock.
    Moto,
}

impl World {
    pub fn new(backend: Backend) -> World {
        Self::with_config(backend, |_| {})
    }

    /// A world whose gateway runs the test configuration (`test-gateway`
    /// on a free port, spool and store in the world's directory, archive
    /// wait 20 s, the test CRL, this checkout's pipelines) changed by
    /// `edit`. The configuration is built as values and written as
    /// `custody.toml`.
    pub fn with_config(backend: Backend, edit: impl FnOnce(&mut Config)) -> World {
        let dir = tempfile::Builder::new()
            .prefix("custody-test-")
            .tempdir()
            .unwrap();
        let certs = CertDir::new(dir.path().join("certs"));
        pki::init(
            &certs,
            "Test Bureau",
            &["localhost".into(), "127.0.0.1".into()],
            30,
            custody::signing::Algorithm::Ed25519,
            false,
        )
        .unwrap();
        for d in DEVICES {
            pki::issue_device(&certs, d, 30, false).unwrap();
        }
        std::fs::write(dir.path().join("ledger.toml"), LEDGER).unwrap();
        let garage = match backend {
            Backend::Garage => Some(Garage::start(dir.path())),
            _ => None,
        };
        let garage_cluster = match backend {
            Backend::GarageCluster => Some(GarageCluster::start(dir.path())),
            _ => None,
        };
        let moto = match backend {
            Backend::Moto => Some(Moto::start(dir.path())),
            _ => None,
        };
        let store = match Self::s3_config(&garage, &garage_cluster, &moto) {
            Some(s3) => StoreConfig {
                part_size_mib: 8,
                ..s3
            },
            None => StoreConfig {
                local_dir: "store".into(),
                ..StoreConfig::default()
            },
        };
        let mut cfg = Config::parse("").expect("the defaults parse");
        cfg.gateway.id = "test-gateway".into();
        cfg.gateway.listen = "127.0.0.1:0".into();
        cfg.gateway.spool = "spool".into();
        cfg.gateway.archive_wait_secs = 20;
        cfg.tls.crls = vec!["certs/crl.pem".into()];
        cfg.media.pipelines = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines").into();
        cfg.store = store;
        edit(&mut cfg);
        let config = dir.path().join("custody.toml");
        std::fs::write(&config, cfg.to_toml()).unwrap();
        World {
            dir,
            certs,
            garage,
            garage_cluster,
            moto,
            config,
            clock: None,
        }
    }

    /// Changes the gateway's configuration (read back as values, changed
    /// by `edit`, written again) for gateways started from now on.
    pub fn edit_config(&self, edit: impl FnOnce(&mut Config)) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut cfg = Config::parse(&text).expect("the world's configuration parses");
        edit(&mut cfg);
        std::fs::write(&self.config, cfg.to_toml()).unwrap();
    }

    /// Runs every process started from now on with its clock at `at`
    /// (RFC 3339), advancing in real time.
    pub fn set_clock(&mut self, at: &str) {
        self.clock = Some(TestClock::at(at));
    }

    /// The `custody` binary, on the world's clock.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        if let Some(clock) = &self.clock {
            clock.apply(&mut c);
        }
        c
    }

    /// Makes the deployment sign with `algorithm`, before any gateway
    /// starts. An SM2 key is made by OpenSSL (`genpkey -algorithm SM2`), so
    /// that custody reads keys it did not make.
    pub fn sign_with(&self, algorithm: custody::signing::Algorithm) {
        let (key, public) = (self.certs.signing_key(), self.certs.signing_pub());
        if algorithm == custody::signing::Algorithm::Ed25519 {
            return;
        }
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let (k, p) = (key.to_str().unwrap(), public.to_str().unwrap());
        openssl(&["genpkey", "-algorithm", "SM2", "-out", k]);
        openssl(&["pkey", "-in", k, "-pubout", "-out", p]);
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn s3_config(
        garage: &Option<Garage>,
        cluster: &Option<GarageCluster>,
        moto: &Option<Moto>,
    ) -> Option<StoreConfig> {
        garage
            .as_ref()
            .map(Garage::store_config)
            .or_else(|| cluster.as_ref().map(GarageCluster::store_config))
            .or_else(|| moto.as_ref().map(Moto::store_config))
    }

    pub fn store_config(&self) -> StoreConfig {
        Self::s3_config(&self.garage, &self.garage_cluster, &self.moto).unwrap_or_else(|| {
            StoreConfig {
                local_dir: self.path("store"),
                ..StoreConfig::default()
            }
        })
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.store_config()).await.unwrap()
    }

    pub fn gateway(&self) -> GatewayProc {
        GatewayProc::start(self)
    }

    /// Another gateway over the same store: the world's configuration with
    /// its own id `name`, spool and log (`gateway-<name>.log`), changed by
    /// `edit`.
    pub fn another_gateway(&self, name: &str, edit: impl FnOnce(&mut Config)) -> GatewayProc {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut cfg = Config::parse(&text).expect("the world's configuration parses");
        cfg.gateway.id = name.into();
        cfg.gateway.spool = format!("spool-{name}").into();
        edit(&mut cfg);
        let config = self.path(&format!("custody-{name}.toml"));
        std::fs::write(&config, cfg.to_toml()).unwrap();
        GatewayProc::spawn(
            config,
            "127.0.0.1:0".into(),
            self.path(&format!("gateway-{name}.log")),
            self.clock,
        )
    }

    /// `custody record` as `bwc-1` against the gateway at `addr`, with the
    /// recorder's state in `state` (under the world's directory), on the
    /// world's clock; the caller adds what to stream.
    pub fn record_cmd(&self, addr: SocketAddr, state: &str) -> Command {
        self.record_cmd_to(&addr.to_string(), state)
    }

    /// `custody record` as `bwc-1` to `gateways` (comma-separated).
    pub fn record_cmd_to(&self, gateways: &str, state: &str) -> Command {
        let mut c = self.command();
        c.arg("record")
            .args(["--gateway", gateways, "--ca"])
            .arg(self.certs.ca_cert())
            .arg("--cert")
            .arg(self.certs.device_cert("bwc-1"))
            .arg("--key")
            .arg(self.certs.device_key("bwc-1"))
            .arg("--state-dir")
            .arg(self.path(state))
            .current_dir(self.dir.path());
        c
    }

    /// A `custody` command with the device's client flags set.
    pub fn client_cmd(&self, sub: &str, device: &str, gw: &GatewayProc) -> Command {
        self.client_cmd_with(
            sub,
            &self.certs.device_cert(device),
            &self.certs.device_key(device),
            gw,
        )
    }

    /// A `custody` client command presenting the given certificate.
    pub fn client_cmd_with(&self, sub: &str, cert: &Path, key: &Path, gw: &GatewayProc) -> Command {
        self.client_cmd_to(sub, cert, key, &gw.addr.to_string())
    }

    /// A `custody` client command to `gateways` (`host:port`, several
    /// separated by commas).
    pub fn client_cmd_to(&self, sub: &str, cert: &Path, key: &Path, gateways: &str) -> Command {
        let mut c = self.command();
        c.arg(sub)
            .arg("--gateway")
            .arg(gateways)
            .arg("--ca")
            .arg(self.certs.ca_cert())
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .current_dir(self.dir.path());
        c
    }

    /// Runs `custody dock --json` and returns its per-file results.
    pub fn dock(
        &self,
        device: &str,
        gw: &GatewayProc,
        args: &[&str],
    ) -> (Output, Vec<serde_json::Value>) {
        let mut cmd = self.client_cmd("dock", device, gw);
        cmd.arg("--json");
        if !args.contains(&"--retry-for-secs") {
            cmd.args(["--retry-for-secs", "20"]);
        }
        let out = cmd.args(args).output().unwrap();
        let results = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (out, results)
    }

    pub fn verify(&self, target: &str) -> Output {
        self.command()
            .args(["verify", "-c"])
            .arg(&self.config)
            .arg(target)
            .output()
            .unwrap()
    }

    pub fn verify_json(&self, target: &str) -> (bool, serde_json::Value) {
        let out = self
            .command()
            .args(["verify", "--json", "-c"])
            .arg(&self.config)
            .arg(target)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify output not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), v[0].clone())
    }

    /// Client endpoint for in-process protocol tests.
    pub fn client(&self, device: &str, gw: &GatewayProc) -> custody::client::Client {
        custody::client::Client::new(&custody::config::ClientConfig {
            gateway: gw.addr.to_string(),
            server_name: "localhost".into(),
            ca: self.certs.ca_cert(),
            cert: self.certs.device_cert(device),
            key: self.certs.device_key(device),
        })
        .unwrap()
    }
}

/// A running `custody serve` process.
pub struct GatewayProc {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
    config: PathBuf,
    listen: String,
    clock: Option<TestClock>,
}

impl GatewayProc {
    fn start(w: &World) -> GatewayProc {
        Self::spawn(
            w.config.clone(),
            "127.0.0.1:0".into(),
            w.path("gateway.log"),
            w.clock,
        )
    }

    fn spawn(
        config: PathBuf,
        listen: String,
        log: PathBuf,
        clock: Option<TestClock>,
    ) -> GatewayProc {
        let addr_file = log.with_extension("addr");
        let http_file = log.with_extension("http");
        let _ = std::fs::remove_file(&addr_file);
        let _ = std::fs::remove_file(&http_file);
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        if let Some(clock) = &clock {
            clock.apply(&mut cmd);
        }
        let child = cmd
            .args(["serve", "-c"])
            .arg(&config)
            .args(["--listen", &listen, "--addr-file"])
            .arg(&addr_file)
            .arg("--http-addr-file")
            .arg(&http_file)
            .env("CUSTODY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + patience(30);
        let addr = loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file)
                && let Ok(a) = s.trim().parse::<SocketAddr>()
            {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        GatewayProc {
            child: Some(child),
            addr,
            log,
            config,
            listen,
            clock,
        }
    }

    /// SIGKILL: no shutdown, no flush — as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM: the orderly shutdown `systemctl stop` asks for. Returns
    /// the exit status once the gateway has stopped.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("gateway running");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + patience(20);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("gateway did not stop on SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the gateway again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let again = Self::spawn(
            self.config.clone(),
            self.addr.to_string(),
            self.log.clone(),
            self.clock,
        );
        *self = again;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The command center's address (the config must have `[http] listen`).
    pub fn http_addr(&self) -> SocketAddr {
        let f = self.log.with_extension("http");
        let deadline = Instant::now() + patience(10);
        loop {
            if let Ok(s) = std::fs::read_to_string(&f)
                && let Ok(a) = s.trim().parse::<SocketAddr>()
            {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "the command center did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Resident memory of the gateway process, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `len` bytes of deterministic pseudo-random content.
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// A `secs`-second 1280×720 H.264 + AAC MPEG-TS at a constant 4.2 Mbit/s
/// (ffmpeg, libx264), made once per build tree and shared by the tests and
/// benches that stream a 4 Mbit/s camera.
pub fn ts_4mbit(secs: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("4mbit_{secs}s.ts"));
    if !out.exists() {
        // Written aside and renamed, so concurrent tests never read half a file.
        let tmp = dir.join(format!(
            ".{}-{:?}.ts",
            std::process::id(),
            std::thread::current().id()
        ));
        let st = Command::new("ffmpeg")
            .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=1280x720:rate=25:duration={secs}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=500:sample_rate=48000:duration={secs}"
            ))
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "3900k",
                "-maxrate",
                "3900k",
            ])
            .args([
                "-bufsize", "4M", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
            ])
            .args(["-muxrate", "4200k", "-f", "mpegts"])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// How long a test waits for something that takes `secs` on the
/// development machine, at most: three times as long. These bounds only
/// guard against a hang; a slower machine (CI's took twice as long) must
/// not fail on them.
pub fn patience(secs: u64) -> Duration {
    Duration::from_secs(secs * 3)
}

/// Polls `f` until it returns `Some`, or panics after `patience(secs)`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `cmd` to its end, killing it and failing the test if it is still
/// running after `secs`: a hang is a failure, not a wait.
pub fn output_within(mut cmd: Command, secs: u64) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s: {}\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub mod link;

/// A UDP relay between a device and the gateway that can be cut, as a
/// mobile link drops: the link emulator with a perfect link.
pub type UdpProxy = link::LinkEmulator;

/// A child process that is killed when dropped, so a failing test leaves
/// nothing running behind it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
