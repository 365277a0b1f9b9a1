//! Appends a recording's bytes to the spool, hashing as it goes, and
//! publishes how much is durable. A byte counts as durable only after the
//! data file has been fsynced *and* the new length recorded in the `ack`
//! file has been fsynced; after a crash the data file is cut back to that
//! length, so nothing beyond an acknowledgement is ever trusted — unless
//! the machine has not restarted since (same kernel boot): then the bytes
//! written after the last acknowledgement are exactly what was written
//! (the kernel's page cache survives a process's death), and a docked
//! upload keeps them instead of asking the device to send them again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::EntryDir;
use super::space::SpoolSpace;
use custody_format::chain::Hash;

/// The ack file holds the durable length and a check word, so a torn or
/// zeroed write reads as "nothing durable" rather than as a wrong length.
const ACK_MAGIC: u64 = 0x6375_7374_6f64_7901;

pub fn read_ack(path: &Path) -> std::io::Result<u64> {
    let mut b = [0u8; 16];
    match File::open(path) {
        Ok(mut f) => match f.read_exact(&mut b) {
            Ok(()) => {
                let n = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
                let check = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
                Ok(if check == n ^ ACK_MAGIC { n } else { 0 })
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The ack file's record of durable length `n`: the length and its check
/// word (`read_ack`).
fn ack_record(n: u64) -> [u8; 16] {
    let mut rec = [0u8; 16];
    rec[..8].copy_from_slice(&n.to_le_bytes());
    rec[8..].copy_from_slice(&(n ^ ACK_MAGIC).to_le_bytes());
    rec
}

/// Sets the durable length recorded in the ack file to `n` (fsynced); the
/// next writer opened on the entry cuts the data back to it. For a spool
/// entry restored from what the cluster staged (`crate::staging`), which
/// may trust fewer bytes than this spool made durable.
pub fn reset_ack(path: &Path, n: u64) -> std::io::Result<()> {
    let rec = ack_record(n);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all_at(&rec, 0)?;
    f.sync_data()?;
    if let Some(dir) = path.parent() {
        super::sync_dir(dir)?;
    }
    Ok(())
}

/// This boot of the machine: random per boot, so a file that names it was
/// written since the last restart of the kernel.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether the entry's writer last opened it during this boot, so whatever
/// it wrote is still what the data file reads (in the page cache if not yet
/// on disk). After a machine crash the boot differs and the unsynced tail
/// may hold anything: it is cut.
fn written_this_boot(entry: &EntryDir, boot: Option<&str>) -> bool {
    let Some(boot) = boot else { return false };
    std::fs::read_to_string(entry.boot()).is_ok_and(|b| b.trim() == boot)
}

pub struct OriginalWriter {
    data: File,
    ack: File,
    /// `None` for a live stream's writer: nobody checks a live stream's
    /// whole-file hash (each chunk and segment is hashed on its own).
    hasher: Option<Sha256>,
    written: u64,
    durable: u64,
}

impl OriginalWriter {
    /// Opens the entry's data file for appending after its durable prefix,
    /// re-hashing that prefix so the final SHA-256 covers the whole file.
    /// Bytes written after the last acknowledgement during this boot (the
    /// gateway was killed, the machine was not) are kept, made durable now
    /// and so acknowledged: a resume re-sends only what never reached the
    /// file.
    pub fn open(entry: &EntryDir) -> std::io::Result<Self> {
        Self::open_with(entry, true, true)
    }

    /// Like `open`, without re-hashing the durable prefix and without
    /// keeping an unacknowledged tail: for live streams, whose whole-stream
    /// hash nobody checks (a reconnect need not read back hours of
    /// recording), and whose chunk journal follows acknowledgements.
    pub fn open_unhashed(entry: &EntryDir) -> std::io::Result<Self> {
        Self::open_with(entry, false, false)
    }

    fn open_with(entry: &EntryDir, rehash: bool, keep_tail: bool) -> std::io::Result<Self> {
        let durable = read_ack(&entry.ack())?;
        let created = !entry.data().exists() || !entry.ack().exists();
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(entry.data())?;
        let len = data.metadata()?.len();
        if len < durable {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "spool data is {len} bytes but {durable} were acknowledged: the spool disk lost data"
                ),
            ));
        }
        let boot = boot_id();
        let acked = durable;
        let durable = if keep_tail && len > durable && written_this_boot(entry, boot.as_deref()) {
            len
        } else {
            durable
        };
        data.set_len(durable)?;
        let mut hasher = Sha256::new();
        data.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 4 << 20];
        let mut left = if rehash { durable } else { 0 };
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = data.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        data.seek(SeekFrom::Start(durable))?;
        let ack = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(entry.ack())?;
        // Named before anything is appended: a tail written from now on
        // was written during this boot.
        if let Some(b) = &boot {
            std::fs::write(entry.boot(), b)?;
        }
        if created {
            // The new directory entries must survive a crash as well as
            // the bytes the acknowledgements will point into.
            super::sync_dir(&entry.dir)?;
        }
        let mut w = OriginalWriter {
            data,
            ack,
            hasher: rehash.then_some(hasher),
            written: durable,
            durable: acked,
        };
        if durable > acked {
            w.sync()?;
            tracing::info!(
                path = %entry.data().display(),
                acknowledged = acked,
                kept = durable - acked,
                "kept the bytes written after the last acknowledgement before a restart"
            );
        }
        Ok(w)
    }

    pub fn append(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.write_all(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(buf);
        }
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Makes everything written so far durable; returns the durable length.
    pub fn sync(&mut self) -> std::io::Result<u64> {
        if self.durable == self.written {
            return Ok(self.durable);
        }
        self.data.sync_data()?;
        let rec = ack_record(self.written);
        self.ack.write_all_at(&rec, 0)?;
        self.ack.sync_data()?;
        self.durable = self.written;
        Ok(self.durable)
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Syncs and returns the total length and SHA-256 of the file (`None`
    /// from a writer opened unhashed).
    pub fn finish(mut self) -> std::io::Result<(u64, Option<Hash>)> {
        self.sync()?;
        Ok((self.written, self.hasher.map(|h| h.finalize().into())))
    }
}

/// What a writer is asked to do.
#[derive(Debug)]
pub enum WriterItem {
    Data(Bytes),
    /// Make everything so far durable, then answer with the durable length.
    Sync(tokio::sync::oneshot::Sender<u64>),
}

/// Asks the writer behind `tx` to make everything sent so far durable;
/// the durable length, or `None` if the writer has stopped.
pub async fn sync(tx: &tokio::sync::mpsc::Sender<WriterItem>) -> Option<u64> {
    let (otx, orx) = tokio::sync::oneshot::channel();
    tx.send(WriterItem::Sync(otx)).await.ok()?;
    orx.await.ok()
}

impl From<Bytes> for WriterItem {
    fn from(b: Bytes) -> Self {
        WriterItem::Data(b)
    }
}

/// How a writer's syncs are paced.
#[derive(Debug, Clone, Copy)]
pub struct SyncPace {
    /// Bytes the writer may have written beyond what the running sync
    /// covers; past that it waits for the disk.
    pub ack_bytes: u64,
    /// The least time between the starts of two syncs (unless the stream
    /// ends or a sync is asked for): a live stream's frames come every few
    /// milliseconds, and a sync each cost more CPU than the rest of the
    /// stream; an upload's come as fast as the link allows, and its syncs
    /// run back to back.
    pub min_interval: std::time::Duration,
}

impl SyncPace {
    /// An upload: syncs back to back, at most `ack_bytes` beyond them.
    pub fn upload(ack_bytes: u64) -> SyncPace {
        SyncPace {
            ack_bytes,
            min_interval: std::time::Duration::ZERO,
        }
    }

    /// A live stream: at most 1 MiB beyond the running sync, and at most
    /// ten syncs a second (a byte waits at most 100 ms for its sync).
    pub fn live(ack_bytes: u64) -> SyncPace {
        SyncPace {
            ack_bytes: ack_bytes.min(1 << 20),
            min_interval: std::time::Duration::from_millis(100),
        }
    }
}

/// Drives a writer from a channel on a blocking thread, with a second
/// thread making its bytes durable while it goes on appending: a sync
/// starts as soon as the one before ended and bytes were written since,
/// and covers everything written when it started, so acknowledgements
/// follow the disk's pace without the stream waiting for each sync (a
/// sync per received frame stalled a fast upload on every fsync), paced by
/// `pace`. Returns when the channel closes, after
/// a final sync. Stops with an error of kind `StorageFull` when the
/// spool's filesystem falls below its reserve or is full, after making
/// what it wrote before durable.
pub fn run_writer<T: Into<WriterItem>>(
    mut w: OriginalWriter,
    mut rx: mpsc::Receiver<T>,
    durable_tx: watch::Sender<u64>,
    pace: SyncPace,
    space: &SpoolSpace,
) -> std::io::Result<(u64, Option<Hash>)> {
    let (data, ack) = (w.data.try_clone()?, w.ack.try_clone()?);
    let shared = SyncShared::new(w.written(), w.durable(), pace.min_interval);
    let ack_bytes = pace.ack_bytes;
    let (written, synced) = std::thread::scope(|scope| {
        let syncer = std::thread::Builder::new()
            .name("spool sync".into())
            .spawn_scoped(scope, || shared.run(data, ack, &durable_tx))?;
        let written = write_loop(&mut w, &mut rx, &shared, ack_bytes, space);
        // Whatever was written whole is made durable (and acknowledged)
        // before the writer ends, also when it stops on an error.
        shared.close();
        let synced = syncer
            .join()
            .map_err(|_| std::io::Error::other("the spool sync thread panicked"))?;
        Ok::<_, std::io::Error>((written, synced))
    })?;
    if let Err(e) = &written
        && let Err(sync) = &synced
    {
        tracing::warn!("spool: could not sync before stopping ({e}): {sync}");
    }
    written?;
    w.durable = synced?;
    let r = w.finish()?;
    let _ = durable_tx.send(r.0);
    Ok(r)
}

/// Appends what arrives until the channel closes; an error stops it.
fn write_loop<T: Into<WriterItem>>(
    w: &mut OriginalWriter,
    rx: &mut mpsc::Receiver<T>,
    shared: &SyncShared,
    ack_bytes: u64,
    space: &SpoolSpace,
) -> std::io::Result<()> {
    while let Some(item) = rx.blocking_recv() {
        match item.into() {
            WriterItem::Data(c) => {
                space
                    .check()
                    .map_err(std::io::Error::from)
                    .and_then(|()| w.append(&c))?;
                shared.wrote(w.written(), ack_bytes)?;
            }
            WriterItem::Sync(reply) => {
                let _ = reply.send(shared.durable_at(w.written())?);
            }
        }
    }
    Ok(())
}

/// What the writer and its sync thread share.
struct SyncShared {
    state: std::sync::Mutex<SyncState>,
    changed: std::sync::Condvar,
    min_interval: std::time::Duration,
}

struct SyncState {
    /// Bytes appended to the data file.
    written: u64,
    /// Bytes the running sync covers (it began after they were written).
    syncing: u64,
    /// Bytes durable: data synced, then the ack record synced.
    durable: u64,
    /// The writer is done: sync what is written, then end.
    closed: bool,
    /// The sync thread failed; the writer stops.
    failed: Option<String>,
    /// Someone waits for a sync: it starts without waiting out the pace.
    urgent: bool,
}

impl SyncShared {
    fn new(written: u64, durable: u64, min_interval: std::time::Duration) -> SyncShared {
        SyncShared {
            state: std::sync::Mutex::new(SyncState {
                written,
                syncing: durable,
                durable,
                closed: false,
                failed: None,
                urgent: false,
            }),
            changed: std::sync::Condvar::new(),
            min_interval,
        }
    }

    fn wait<'a>(
        &self,
        s: std::sync::MutexGuard<'a, SyncState>,
    ) -> std::sync::MutexGuard<'a, SyncState> {
        self.changed.wait(s).unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failure(s: &SyncState) -> std::io::Result<()> {
        match &s.failed {
            Some(e) => Err(std::io::Error::other(format!("spool sync failed: {e}"))),
            None => Ok(()),
        }
    }

    /// The writer appended up to `written`; waits while more than
    /// `ack_bytes` are beyond what the running sync covers.
    fn wrote(&self, written: u64, ack_bytes: u64) -> std::io::Result<()> {
        let mut s = self.lock();
        s.written = written;
        self.changed.notify_all();
        while s.failed.is_none() && written.saturating_sub(s.syncing) > ack_bytes {
            s.urgent = true;
            s = self.wait(s);
        }
        Self::failure(&s)
    }

    /// Waits until `written` bytes are durable; the durable length.
    fn durable_at(&self, written: u64) -> std::io::Result<u64> {
        let mut s = self.lock();
        s.written = written;
        s.urgent = true;
        self.changed.notify_all();
        while s.failed.is_none() && s.durable < written {
            s = self.wait(s);
        }
        Self::failure(&s)?;
        Ok(s.durable)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The sync thread: syncs whatever was written since the last sync
    /// began, publishes each new durable length, ends once the writer
    /// closed and everything written is durable. The durable length.
    fn run(&self, data: File, ack: File, durable_tx: &watch::Sender<u64>) -> std::io::Result<u64> {
        let mut last_start: Option<std::time::Instant> = None;
        loop {
            let target = {
                let mut s = self.lock();
                while s.written == s.durable && !s.closed {
                    s = self.wait(s);
                }
                if s.written == s.durable {
                    return Ok(s.durable);
                }
                // Paced: wait out the interval since the last sync began,
                // unless the stream ended or someone waits for the sync.
                if let Some(at) = last_start {
                    let due = at + self.min_interval;
                    loop {
                        let now = std::time::Instant::now();
                        if s.closed || s.urgent || now >= due {
                            break;
                        }
                        s = self
                            .changed
                            .wait_timeout(s, due - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
                last_start = Some(std::time::Instant::now());
                s.urgent = false;
                s.syncing = s.written;
                self.changed.notify_all();
                s.written
            };
            let synced = data
                .sync_data()
                .and_then(|()| ack.write_all_at(&ack_record(target), 0))
                .and_then(|()| ack.sync_data());
            let mut s = self.lock();
            match synced {
                Ok(()) => {
                    // Published before the waiters wake: whoever a sync
                    // answers finds the watch showing it already.
                    let _ = durable_tx.send(target);
                    s.durable = target;
                    self.changed.notify_all();
                }
                Err(e) => {
                    s.failed = Some(e.to_string());
                    self.changed.notify_all();
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> EntryDir {
        let dir =
            std::env::temp_dir().join(format!("custody-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        EntryDir { dir }
    }

    #[test]
    fn resume_cuts_back_to_the_acknowledged_length() {
        let e = entry("resume");
        let mut w = OriginalWriter::open(&e).unwrap();
        w.append(b"hello ").unwrap();
        assert_eq!(w.sync().unwrap(), 6);
        w.append(b"unacknowledged").unwrap();
        drop(w); // crash: the tail was written but never acknowledged
        // ... and the machine restarted: the tail may hold anything.
        std::fs::write(e.boot(), "an earlier boot").unwrap();
        assert_eq!(read_ack(&e.ack()).unwrap(), 6);
        let mut w = OriginalWriter::open(&e).unwrap();
        assert_eq!(w.written(), 6);
        w.append(b"world").unwrap();
        let (n, h) = w.finish().unwrap();
        assert_eq!(n, 11);
        assert_eq!(h, Some(custody_format::chain::sha256(b"hello world")));
        assert_eq!(std::fs::read(e.data()).unwrap(), b"hello world");
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[test]
    fn a_reset_ack_cuts_even_durable_bytes_on_the_next_open() {
        let e = entry("reset");
        let mut w = OriginalWriter::open(&e).unwrap();
        w.append(b"hello world").unwrap();
        assert_eq!(w.sync().unwrap(), 11);
        drop(w);
        reset_ack(&e.ack(), 6).unwrap();
        let w = OriginalWriter::open_unhashed(&e).unwrap();
        assert_eq!((w.written(), w.durable()), (6, 6));
        drop(w);
        // This boot wrote nothing past the ack now: nothing is kept.
        let w = OriginalWriter::open(&e).unwrap();
        assert_eq!(w.durable(), 6);
        assert_eq!(std::fs::read(e.data()).unwrap(), b"hello ");
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[test]
    fn a_tail_written_this_boot_is_kept_and_made_durable() {
        let e = entry("tail");
        let mut w = OriginalWriter::open(&e).unwrap();
        w.append(b"hello ").unwrap();
        assert_eq!(w.sync().unwrap(), 6);
        w.append(b"world").unwrap();
        drop(w); // the gateway died: written, never acknowledged
        assert_eq!(read_ack(&e.ack()).unwrap(), 6);
        let w = OriginalWriter::open(&e).unwrap();
        assert_eq!((w.written(), w.durable()), (11, 11));
        assert_eq!(read_ack(&e.ack()).unwrap(), 11, "kept means acknowledged");
        let (n, h) = w.finish().unwrap();
        assert_eq!(
            (n, h),
            (11, Some(custody_format::chain::sha256(b"hello world")))
        );
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[test]
    fn a_tail_from_another_boot_or_a_live_stream_is_cut() {
        for (name, boot, live) in [
            (
                "other-boot",
                Some("00000000-0000-0000-0000-000000000000"),
                false,
            ),
            ("no-boot", None, false),
            ("live", None, true),
        ] {
            let e = entry(name);
            let mut w = OriginalWriter::open(&e).unwrap();
            w.append(b"hello ").unwrap();
            w.sync().unwrap();
            w.append(b"garbage").unwrap();
            drop(w);
            match boot {
                Some(b) => std::fs::write(e.boot(), b).unwrap(),
                None if !live => std::fs::remove_file(e.boot()).unwrap(),
                None => {}
            }
            let w = if live {
                OriginalWriter::open_unhashed(&e).unwrap()
            } else {
                OriginalWriter::open(&e).unwrap()
            };
            assert_eq!((w.written(), w.durable()), (6, 6), "{name}");
            drop(w);
            assert_eq!(std::fs::read(e.data()).unwrap(), b"hello ", "{name}");
            std::fs::remove_dir_all(&e.dir).unwrap();
        }
    }

    #[test]
    fn damaged_ack_means_nothing_durable() {
        let e = entry("torn");
        std::fs::write(e.ack(), [7u8; 16]).unwrap();
        assert_eq!(read_ack(&e.ack()).unwrap(), 0);
        std::fs::write(e.ack(), [7u8; 5]).unwrap();
        assert_eq!(read_ack(&e.ack()).unwrap(), 0);
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[test]
    fn lost_data_is_an_error_not_a_silent_zero_fill() {
        let e = entry("lost");
        let mut w = OriginalWriter::open(&e).unwrap();
        w.append(b"0123456789").unwrap();
        w.sync().unwrap();
        drop(w);
        std::fs::OpenOptions::new()
            .write(true)
            .open(e.data())
            .unwrap()
            .set_len(3)
            .unwrap();
        assert!(OriginalWriter::open(&e).is_err());
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[tokio::test]
    async fn run_writer_acks_and_finishes() {
        let e = entry("run");
        let w = OriginalWriter::open(&e).unwrap();
        let (tx, rx) = mpsc::channel(4);
        let (dtx, mut drx) = watch::channel(0);
        let space = SpoolSpace::new(&e.dir, 0);
        let h = tokio::task::spawn_blocking(move || {
            run_writer(w, rx, dtx, SyncPace::upload(4), &space)
        });
        tx.send(Bytes::from_static(b"abcdef")).await.unwrap();
        drx.changed().await.unwrap();
        assert!(*drx.borrow() >= 6);
        tx.send(Bytes::from_static(b"gh")).await.unwrap();
        drop(tx);
        let (n, hash) = h.await.unwrap().unwrap();
        assert_eq!(n, 8);
        assert_eq!(hash, Some(custody_format::chain::sha256(b"abcdefgh")));
        assert_eq!(*drx.borrow(), 8);
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[tokio::test]
    async fn a_paced_writer_syncs_at_once_when_asked_and_at_the_end() {
        let e = entry("paced");
        let w = OriginalWriter::open_unhashed(&e).unwrap();
        let (tx, rx) = mpsc::channel::<WriterItem>(4);
        let (dtx, drx) = watch::channel(0);
        let space = SpoolSpace::new(&e.dir, 0);
        // An hour between syncs: only a request or the end may cut it short.
        let pace = SyncPace {
            ack_bytes: 1 << 20,
            min_interval: std::time::Duration::from_secs(3600),
        };
        let h = tokio::task::spawn_blocking(move || run_writer(w, rx, dtx, pace, &space));
        for chunk in [&b"abc"[..], b"def", b"gh"] {
            tx.send(WriterItem::Data(Bytes::copy_from_slice(chunk)))
                .await
                .unwrap();
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send(WriterItem::Sync(reply)).await.unwrap();
            let d = answer.await.unwrap();
            assert_eq!(d, *drx.borrow());
            assert_eq!(read_ack(&e.ack()).unwrap(), d);
        }
        assert_eq!(*drx.borrow(), 8);
        tx.send(WriterItem::Data(Bytes::from_static(b"ij")))
            .await
            .unwrap();
        drop(tx);
        let (n, hash) = h.await.unwrap().unwrap();
        assert_eq!((n, hash), (10, None), "a live writer keeps no hash");
        assert_eq!(read_ack(&e.ack()).unwrap(), 10);
        assert_eq!(std::fs::read(e.data()).unwrap(), b"abcdefghij");
        std::fs::remove_dir_all(&e.dir).unwrap();
    }

    #[tokio::test]
    async fn a_spool_below_its_reserve_takes_no_bytes() {
        let e = entry("full");
        let w = OriginalWriter::open(&e).unwrap();
        let (tx, rx) = mpsc::channel(4);
        let (dtx, drx) = watch::channel(0);
        let space = SpoolSpace::new(&e.dir, u64::MAX);
        let h = tokio::task::spawn_blocking(move || {
            run_writer(w, rx, dtx, SyncPace::upload(4), &space)
        });
        let _ = tx.send(Bytes::from_static(b"abcdef")).await;
        let err = h.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
        assert!(err.to_string().contains("spool is full"), "{err}");
        assert_eq!(*drx.borrow(), 0);
        assert_eq!(std::fs::metadata(e.data()).unwrap().len(), 0);
        std::fs::remove_dir_all(&e.dir).unwrap();
    }
}
