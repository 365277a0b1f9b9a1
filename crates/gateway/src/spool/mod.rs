//! The spool: local disk where received bytes become durable before the
//! gateway acknowledges them, and where they wait until storage has them.
//!
//! ```text
//! <spool>/recordings/<recorder>/<recording-id>/
//!     header.json    object 0, exact bytes, written once
//!     state.json     EntryState, replaced atomically
//!     data           the original as received so far
//!     ack            durable length of `data` (see `writer`)
//!     boot           the machine boot its writer last opened `data` in
//!                    (`writer`: a restart on the same boot keeps the tail)
//!     manifest.json  the manifest, built once before archiving
//!     multipart      the multipart upload open for this entry: its key, and its
//!                    id once storage gave one (from before it is created until
//!                    it is completed or aborted)
//! <spool>/outbox/    small objects waiting for storage (usage records, indexes)
//! <spool>/quarantine/<recorder>/<recording-id>/<time>/  failed uploads
//! <spool>/gateway.lock  held by the one gateway using the spool (`lock`)
//! ```

pub mod lock;
pub mod outbox;
pub mod space;
pub mod writer;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use custody_proto::RecordingState;

#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// What the spool knows about one recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryState {
    pub status: RecordingState,
    /// Storage prefix, fixed when the recording was first seen.
    pub prefix: String,
    pub manifest_key: String,
    /// Final size and SHA-256 of the received bytes, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What the device said the SHA-256 should be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub use custody_fs::{sync_dir, write_atomic};

/// `len` bytes of a spool file from `start` (bytes already durable: a
/// part to send to storage).
pub fn read_range(path: &Path, start: u64, len: u64) -> std::io::Result<bytes::Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(path)?.read_exact_at(&mut buf, start)?;
    Ok(buf.into())
}

/// The spool directory of one recording.
#[derive(Debug, Clone)]
pub struct EntryDir {
    pub dir: PathBuf,
}

impl EntryDir {
    pub fn header(&self) -> PathBuf {
        self.dir.join("header.json")
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn ack(&self) -> PathBuf {
        self.dir.join("ack")
    }
    pub fn boot(&self) -> PathBuf {
        self.dir.join("boot")
    }
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub fn multipart_journal(&self) -> PathBuf {
        self.dir.join("multipart")
    }
    /// CMAF derivatives of the original and `derivation.json`.
    pub fn derived(&self) -> PathBuf {
        self.dir.join("derived")
    }

    pub fn load_state(&self) -> std::io::Result<Option<EntryState>> {
        match std::fs::read(self.state_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save_state(&self, st: &EntryState) -> std::io::Result<()> {
        write_atomic(
            &self.state_path(),
            &serde_json::to_vec_pretty(st).expect("state serialises"),
        )
    }

    /// Creates the entry with its header; the state file is written last so
    /// that an entry with a state always has its header.
    pub fn create(&self, header: &[u8], st: &EntryState) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.header(), header)?;
        self.save_state(st)?;
        // The entry, its recorder directory and `recordings/` may all be new.
        let mut dir = self.dir.parent();
        for _ in 0..2 {
            if let Some(d) = dir {
                sync_dir(d)?;
                dir = d.parent();
            }
        }
        Ok(())
    }

    pub fn read_header(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.header())
    }

    /// The durable length of `data` (0 before any acknowledgement).
    pub fn durable(&self) -> std::io::Result<u64> {
        writer::read_ack(&self.ack())
    }

    /// Deletes the bulky files once storage holds them, keeping the small
    /// state and header so status queries still answer.
    pub fn release_data(&self) -> std::io::Result<()> {
        for p in [
            self.data(),
            self.ack(),
            self.boot(),
            self.multipart_journal(),
        ] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        match std::fs::remove_dir_all(self.derived()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(&self.dir)
    }
}

impl Spool {
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<Spool> {
        let root = root.into();
        for sub in ["recordings", "outbox", "quarantine"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Spool { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn entry(&self, recorder: &str, recording_id: &str) -> EntryDir {
        // Both ids were validated (no separators, no dots in front).
        EntryDir {
            dir: self
                .root
                .join("recordings")
                .join(recorder)
                .join(recording_id),
        }
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    pub fn quarantine_dir(&self, recorder: &str, recording_id: &str, stamp: &str) -> PathBuf {
        self.root
            .join("quarantine")
            .join(recorder)
            .join(recording_id)
            .join(stamp)
    }

    /// Every recording the spool holds, with its state.
    pub fn scan(&self) -> std::io::Result<Vec<(String, String, EntryState)>> {
        let mut out = Vec::new();
        let base = self.root.join("recordings");
        for rec in std::fs::read_dir(&base)? {
            let rec = rec?;
            if !rec.file_type()?.is_dir() {
                continue;
            }
            for id in std::fs::read_dir(rec.path())? {
                let id = id?;
                let e = EntryDir { dir: id.path() };
                match e.load_state() {
                    Ok(Some(st)) => out.push((
                        rec.file_name().to_string_lossy().into_owned(),
                        id.file_name().to_string_lossy().into_owned(),
                        st,
                    )),
                    Ok(None) => {}
                    Err(err) => {
                        tracing::error!(dir = %e.dir.display(), "unreadable spool state: {err}")
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Ok(out)
    }
}
