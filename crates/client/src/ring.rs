//! The recorder's local buffer: what it produced and the gateway has not
//! acknowledged yet, in a bounded file (as a real recorder keeps it on its
//! own storage), with its state beside it so that a recorder that restarts
//! continues the same recording. When the link is down longer than the
//! buffer lasts, the oldest unacknowledged bytes are overwritten — and the
//! gateway is told exactly which bytes were lost.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use custody_fs::write_atomic;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingState {
    pub recording_id: String,
    /// Stream bytes produced so far (the next byte's offset).
    pub produced: u64,
    /// Stream bytes the gateway acknowledged as durable.
    pub acked: u64,
    /// Where the source is (bytes of a file read), to continue after a restart.
    pub source_pos: u64,
    /// Device clock of the last byte produced, RFC 3339.
    pub last_produced_at: String,
    /// The source ended: everything up to `produced` is the whole recording.
    pub ended: bool,
    /// The gateway confirmed the recording closed.
    pub closed: bool,
}

pub struct Ring {
    file: File,
    cap: u64,
    pub state: RingState,
    state_path: PathBuf,
    /// Bytes the source produces below this offset are dropped: the
    /// gateway already has them (see `skip_produced_until`).
    skip_to: u64,
}

impl Ring {
    /// The state a buffer in `dir` holds, without creating anything.
    pub fn saved_state(dir: &Path) -> std::io::Result<Option<RingState>> {
        match std::fs::read(dir.join("state.json")) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the buffer in `dir`, or creates it for a new recording.
    /// Returns whether an existing recording was resumed.
    pub fn open(
        dir: &Path,
        cap: u64,
        new_id: impl FnOnce() -> String,
    ) -> std::io::Result<(Ring, bool)> {
        std::fs::create_dir_all(dir)?;
        let state_path = dir.join("state.json");
        let (state, resumed) = match Self::saved_state(dir)? {
            Some(state) => (state, true),
            None => (
                RingState {
                    recording_id: new_id(),
                    last_produced_at: custody_format::time_fmt::now(),
                    ..Default::default()
                },
                false,
            ),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("buffer.bin"))?;
        reserve(&file, cap).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "no room for the recorder's {cap}-byte buffer in {}: {e}",
                    dir.display()
                ),
            )
        })?;
        let ring = Ring {
            file,
            cap,
            state,
            state_path,
            skip_to: 0,
        };
        ring.persist()?;
        Ok((ring, resumed))
    }

    /// The earliest stream offset still in the buffer.
    pub fn floor(&self) -> u64 {
        self.state.produced.saturating_sub(self.cap)
    }

    pub fn produced(&self) -> u64 {
        self.state.produced
    }

    /// Bytes produced but not acknowledged.
    pub fn unacked(&self) -> u64 {
        self.state.produced - self.state.acked.min(self.state.produced)
    }

    /// The gateway holds the stream up to `offset`, more than this buffer
    /// knows it produced: the recorder was killed after sending bytes but
    /// before it saved how far it had got. A source that produces the very
    /// same bytes again (a file read from its saved position) goes on, and
    /// the bytes it produces below `offset` are dropped as they come, so
    /// every byte keeps its offset.
    pub fn skip_produced_until(&mut self, offset: u64) {
        self.skip_to = offset;
    }

    /// Appends produced bytes (overwriting the oldest when full).
    pub fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut data = data;
        if self.skip_to > self.state.produced {
            let n = (self.skip_to - self.state.produced).min(data.len() as u64);
            self.state.produced += n;
            data = &data[n as usize..];
        }
        if data.len() as u64 > self.cap {
            // Only the newest `cap` bytes can be kept.
            let skip = data.len() - self.cap as usize;
            self.state.produced += skip as u64;
            data = &data[skip..];
        }
        let mut off = self.state.produced;
        while !data.is_empty() {
            let pos = off % self.cap;
            let n = data.len().min((self.cap - pos) as usize);
            self.file.write_all_at(&data[..n], pos)?;
            data = &data[n..];
            off += n as u64;
        }
        self.state.produced = off;
        self.state.last_produced_at = custody_format::time_fmt::now();
        Ok(())
    }

    /// Reads up to `max` bytes from stream offset `from` (at or above the floor).
    pub fn read(&self, from: u64, max: usize) -> std::io::Result<Vec<u8>> {
        let from = from.max(self.floor());
        let end = self.state.produced.min(from + max as u64);
        let mut out = vec![0u8; (end.saturating_sub(from)) as usize];
        let mut done = 0usize;
        let mut off = from;
        while done < out.len() {
            let pos = off % self.cap;
            let n = (out.len() - done).min((self.cap - pos) as usize);
            self.file.read_exact_at(&mut out[done..done + n], pos)?;
            done += n;
            off += n as u64;
        }
        Ok(out)
    }

    pub fn ack(&mut self, durable: u64) {
        self.state.acked = self.state.acked.max(durable);
    }

    /// Makes buffer and state durable on the recorder.
    pub fn persist(&self) -> std::io::Result<()> {
        self.file.sync_data()?;
        write_atomic(
            &self.state_path,
            &serde_json::to_vec_pretty(&self.state).expect("state serialises"),
        )
    }
}

/// Allocates the buffer's whole capacity on disk now, so that a
/// filesystem without room for it refuses at the start instead of part way
/// through a recording, with bytes produced and nowhere to keep them.
fn reserve(file: &File, cap: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(cap)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: the descriptor is open for writing for the duration of the call.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_reports_what_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, resumed) = Ring::open(dir.path(), 10, || "rec-1".into()).unwrap();
        assert!(!resumed);
        r.append(b"0123456").unwrap();
        assert_eq!(r.read(2, 100).unwrap(), b"23456");
        r.append(b"789abc").unwrap();
        // 13 bytes produced into a 10-byte buffer: 0..3 are gone.
        assert_eq!(r.floor(), 3);
        assert_eq!(r.read(0, 100).unwrap(), b"3456789abc");
        assert_eq!(r.read(8, 3).unwrap(), b"89a");
        r.ack(5);
        assert_eq!(r.unacked(), 8);
        r.persist().unwrap();
        let (r2, resumed) = Ring::open(dir.path(), 10, || unreachable!()).unwrap();
        assert!(resumed);
        assert_eq!(r2.state.recording_id, "rec-1");
        assert_eq!(r2.read(3, 100).unwrap(), b"3456789abc");
    }

    #[test]
    fn bytes_the_gateway_already_holds_are_dropped_as_they_are_produced_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _) = Ring::open(dir.path(), 100, || "rec-1".into()).unwrap();
        r.append(b"0123").unwrap();
        // The gateway holds 0..7: "456" comes again from the source and is
        // dropped; "789" follows at its own offsets.
        r.skip_produced_until(7);
        r.append(b"45").unwrap();
        assert_eq!(r.produced(), 6);
        r.append(b"6789").unwrap();
        assert_eq!(r.produced(), 10);
        assert_eq!(r.read(7, 100).unwrap(), b"789");
    }
}
