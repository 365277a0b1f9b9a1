//! Garage on loopback: a single node per test (`Garage::start`), or a
//! cluster of three with replication factor 3 (`GarageCluster::start`),
//! its layout assigned and applied here with the `garage` command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use custody::config::StoreConfig;

use super::{http_ok, patience};

fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GARAGE_BIN") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = Path::new(&home).join(".cargo/bin/garage");
    if p.exists() {
        return p;
    }
    "garage".into()
}

const ACCESS_KEY: &str = "GKa1a1a1a1a1a1a1a1a1a1a1a1";
const BUCKET: &str = "custody";

/// One Garage server with its own directories and ports.
pub struct Garage {
    dir: PathBuf,
    child: Option<Child>,
    pub endpoint: String,
    admin: String,
    rpc: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    /// `None`: a single node that makes its own layout, key and bucket.
    /// `Some(peers)`: a member of a three-node cluster.
    cluster: Option<Vec<String>>,
}

impl Garage {
    /// The server's process id, while it runs.
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A single node, key and bucket ready.
    pub fn start(root: &Path) -> Garage {
        let mut g = Garage::new(root.join("garage"), None);
        g.start_fresh();
        g
    }

    /// Picks ports and starts a server that stores nothing yet. A port
    /// picked free may be taken by another process (another test's Garage
    /// among them) before this one binds it; a server that exits, never
    /// answers or does not hold its own ports is started again on others.
    fn start_fresh(&mut self) {
        for attempt in 1..=3 {
            self.configure();
            match self.run() {
                Ok(()) => return,
                Err(why) if attempt < 3 => {
                    eprintln!("garage start {attempt}: {why}; trying other ports");
                    self.stop();
                    let _ = std::fs::remove_dir_all(self.dir.join("meta"));
                    let _ = std::fs::remove_dir_all(self.dir.join("data"));
                }
                Err(why) => panic!("garage did not start: {why}"),
            }
        }
    }

    fn new(dir: PathBuf, cluster: Option<Vec<String>>) -> Garage {
        std::fs::create_dir_all(&dir).unwrap();
        Garage {
            dir,
            child: None,
            endpoint: String::new(),
            admin: String::new(),
            rpc: String::new(),
            access_key: ACCESS_KEY.into(),
            secret_key: "b2".repeat(32),
            bucket: BUCKET.into(),
            cluster,
        }
    }

    /// Writes the configuration with three fresh ports.
    fn configure(&mut self) {
        // Held together so that the three are distinct.
        let held: Vec<std::net::TcpListener> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let port = |i: usize| held[i].local_addr().unwrap().port();
        let (rpc, s3, admin) = (port(0), port(1), port(2));
        drop(held);
        self.endpoint = format!("http://127.0.0.1:{s3}");
        self.admin = format!("127.0.0.1:{admin}");
        self.rpc = format!("127.0.0.1:{rpc}");
        self.write_config();
    }

    fn write_config(&self) {
        let replication = match &self.cluster {
            None => "replication_factor = 1".to_string(),
            Some(peers) => format!(
                "replication_factor = 3\nconsistency_mode = \"consistent\"\nbootstrap_peers = [{}]",
                peers
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let conf = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "lmdb"
{replication}
rpc_bind_addr = "{rpc}"
rpc_public_addr = "{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "garage"
api_bind_addr = "{s3}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "{admin}"
admin_token = "test-admin-token"
"#,
            d = self.dir.display(),
            rpc = self.rpc,
            s3 = &self.endpoint["http://".len()..],
            admin = self.admin,
            secret = "1".repeat(64),
        );
        std::fs::write(self.dir.join("garage.toml"), conf).unwrap();
    }

    /// The `garage` command line against this node.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_bin())
            .arg("-c")
            .arg(self.dir.join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("garage binary");
        assert!(
            out.status.success(),
            "garage {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Spawns the server and waits until it answers (a single node, or a
    /// cluster member once the layout exists: healthy; a cluster member
    /// before: its admin port open). On failure says why, with the end of
    /// its log.
    fn run(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("garage.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = Command::new(garage_bin());
        cmd.arg("-c")
            .arg(self.dir.join("garage.toml"))
            .arg("server");
        if self.cluster.is_none() {
            cmd.args(["--single-node", "--default-bucket"])
                .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
                .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
                .env("GARAGE_DEFAULT_BUCKET", &self.bucket);
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage binary (cargo install garage, or set GARAGE_BIN)");
        self.child = Some(child);
        let laid_out = self.cluster.is_none() || self.dir.join("laid-out").exists();
        let deadline = Instant::now() + patience(20);
        loop {
            let up = if laid_out {
                http_ok(&self.admin, "/health")
            } else {
                std::net::TcpStream::connect(&self.admin).is_ok()
            };
            // Answering is not enough: the port may be another server's
            // (a test's gateway once talked to another Garage's admin API).
            if up && self.holds_its_ports(laid_out) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            let why = match exited {
                Some(status) => format!("exited with {status}"),
                None if Instant::now() >= deadline => "not healthy in time".to_string(),
                None => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "{why} (admin {}); log:\n{}",
                self.admin,
                tail.join("\n")
            ));
        }
    }

    /// Whether this node's process is the one listening on its admin port
    /// and, once it serves requests, on its S3 and RPC ports.
    fn holds_its_ports(&self, serving: bool) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        let s3 = &self.endpoint["http://".len()..];
        let ports: &[&str] = if serving {
            &[&self.admin, &self.rpc, s3]
        } else {
            &[&self.admin]
        };
        ports.iter().all(|addr| {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            port.is_some_and(|port| listens_on(pid, port))
        })
    }

    /// Kills the server (SIGKILL): the store becomes unreachable.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data and ports.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.run() {
            panic!("garage did not restart: {why}");
        }
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            bucket: Some(self.bucket.clone()),
            endpoint: Some(self.endpoint.clone()),
            region: Some("garage".into()),
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            ..StoreConfig::default()
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three Garage nodes, every object on all three (replication factor 3,
/// consistent mode: a write needs two of them). Gateways talk to node 0.
pub struct GarageCluster {
    pub nodes: Vec<Garage>,
}

impl GarageCluster {
    pub fn start(root: &Path) -> GarageCluster {
        let mut nodes: Vec<Garage> = (0..3)
            .map(|i| Garage::new(root.join(format!("garage-{i}")), Some(Vec::new())))
            .collect();
        for n in &mut nodes {
            n.start_fresh();
        }
        // `<id>@<rpc address>` of each node.
        let ids: Vec<String> = nodes
            .iter()
            .map(|n| n.cli(&["node", "id", "-q"]).trim().to_string())
            .collect();
        for id in &ids[1..] {
            nodes[0].cli(&["node", "connect", id]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            nodes[0].cli(&[
                "layout",
                "assign",
                "-z",
                &format!("dc{i}"),
                "-c",
                "1G",
                short,
            ]);
        }
        nodes[0].cli(&["layout", "apply", "--version", "1"]);
        // Restarted nodes find each other at once (instead of by gossip,
        // tens of seconds later).
        for n in &mut nodes {
            n.cluster = Some(ids.clone());
            n.write_config();
            std::fs::write(n.dir.join("laid-out"), b"").unwrap();
        }
        let deadline = Instant::now() + patience(30);
        while !nodes.iter().all(|n| http_ok(&n.admin, "/health")) {
            assert!(
                Instant::now() < deadline,
                "garage cluster not healthy after its layout"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let secret = nodes[0].secret_key.clone();
        nodes[0].cli(&["key", "import", "--yes", ACCESS_KEY, &secret]);
        nodes[0].cli(&["bucket", "create", BUCKET]);
        nodes[0].cli(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", ACCESS_KEY,
        ]);
        GarageCluster { nodes }
    }

    /// Node 0, the one gateways are configured with.
    pub fn store_config(&self) -> StoreConfig {
        self.nodes[0].store_config()
    }
}

/// Whether process `pid` holds a socket listening on TCP `port` on
/// 127.0.0.1 (`/proc/net/tcp`: state 0A is LISTEN; the inode names the
/// socket among the process's file descriptors). Assumes Linux on a
/// little-endian machine (how the table writes 127.0.0.1) and that `pid` is
/// Garage itself, not a wrapper script in `GARAGE_BIN`.
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let wanted = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.len() > 9 && cols[1] == wanted && cols[3] == "0A").then(|| cols[9].to_string())
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes
                .iter()
                .any(|inode| target == format!("socket:[{inode}]"))
        })
    })
}
