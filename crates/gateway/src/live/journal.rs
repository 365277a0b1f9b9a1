//! A live recording's journal: the chain entries made as segments close,
//! one chunk file per cut, kept in the spool and copied to storage under
//! `<prefix>/journal/`. Each chunk carries the progress after it, so the
//! newest chunk alone tells where the recording stands after a crash; the
//! cost of one more segment is one small object, whatever the length of the
//! recording.

use std::path::{Path, PathBuf};

use crate::spool::write_atomic;

pub use custody_format::journal::{JOURNAL_FORMAT, JournalChunk, Progress, RunStart};
/// The journal directory of one recording in the spool.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Journal { dir: dir.into() }
    }

    pub fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:06}.json"))
    }

    /// Writes a chunk atomically (fsynced) before anything refers to it.
    pub fn write(&self, chunk: &JournalChunk) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.path(chunk.seq), &chunk.to_bytes())
    }

    pub fn read(&self, seq: u64) -> std::io::Result<JournalChunk> {
        read_chunk(&self.path(seq))
    }

    /// Sequence numbers present, ascending.
    pub fn seqs(&self) -> std::io::Result<Vec<u64>> {
        let mut v: Vec<u64> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json")?.parse().ok()
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        v.sort_unstable();
        Ok(v)
    }

    /// The newest chunk, if any.
    pub fn last(&self) -> std::io::Result<Option<JournalChunk>> {
        match self.seqs()?.last() {
            Some(&s) => self.read(s).map(Some),
            None => Ok(None),
        }
    }
}

fn read_chunk(p: &Path) -> std::io::Result<JournalChunk> {
    let b = std::fs::read(p)?;
    serde_json::from_slice(&b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_chunk_is_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("journal"));
        assert!(j.last().unwrap().is_none());
        for seq in 0..3 {
            j.write(&JournalChunk {
                format: JOURNAL_FORMAT.into(),
                recorder: "r".into(),
                recording_id: "i".into(),
                seq,
                at: "t".into(),
                entries: Vec::new(),
                gaps: Vec::new(),
                progress: Progress {
                    next_index: seq + 10,
                    ..Default::default()
                },
                last: false,
                raw_chunks: true,
            })
            .unwrap();
        }
        assert_eq!(j.seqs().unwrap(), [0, 1, 2]);
        assert_eq!(j.last().unwrap().unwrap().progress.next_index, 12);
    }
}
