//! A PostgreSQL server of the test's own: `initdb` into a fresh directory,
//! `pg_ctl start` on a free port of 127.0.0.1, trust authentication, fsync
//! off (a test database; a SIGKILL of the server is still survived, an OS
//! crash is not what the tests make). Debian's `postgresql` package
//! provides the binaries (`scripts/setup.sh` installs it); `PG_BIN` may name
//! another directory of them.
//!
//! PostgreSQL refuses to run as root: as root, the server runs as the
//! package's `postgres` user, in a directory that user owns.

use std::path::PathBuf;
use std::process::Command;

pub struct Postgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    running: bool,
}

fn bin_dir() -> PathBuf {
    if let Ok(p) = std::env::var("PG_BIN") {
        return p.into();
    }
    // Debian: /usr/lib/postgresql/<major>/bin, newest major first.
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL server binaries (apt install postgresql, or set PG_BIN)")
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Postgres {
    pub fn start() -> Postgres {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Not under the world's directory: as root, the server's user must
        // reach it, and the world's directory is private.
        let dir = std::env::temp_dir().join(format!("custody-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut pg = Postgres {
            dir,
            port: super::free_tcp_port(),
            bin: bin_dir(),
            running: false,
        };
        if as_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pg.dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {} to postgres", pg.dir.display());
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a server binary (as `postgres` when we are root); panics with
    /// its output when it fails.
    fn run(&self, tool: &str, args: &[&str]) -> String {
        let exe = self.bin.join(tool);
        let mut c = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = c.args(args).current_dir(&self.dir).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start_server(&mut self) {
        let opts = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log,
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    /// Stops the server at once (`-m immediate`: no shutdown checkpoint,
    /// like a crash of the process).
    pub fn stop(&mut self) {
        if self.running {
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    &self.data().display().to_string(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
            self.running = false;
        }
    }

    /// Starts it again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    /// The URL of database `db` (`postgres` exists from the start).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with `psql` in database `db`; returns its unaligned output.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ],
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            // Not `stop`: a panic while unwinding would abort the test run.
            let mut c = if as_root() {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"])
                    .arg(self.bin.join("pg_ctl"));
                c
            } else {
                Command::new(self.bin.join("pg_ctl"))
            };
            let _ = c
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
