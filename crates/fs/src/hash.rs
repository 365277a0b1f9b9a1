//! SHA-256 of files and readers, as the chain uses it.

use std::io::Read;
use std::path::Path;

use custody_format::chain::Hash;
use sha2::{Digest, Sha256};

pub fn hash_reader(r: &mut impl Read) -> std::io::Result<(u64, Hash)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            return Ok((n, h.finalize().into()));
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
}

/// Hashes a file with reading and hashing overlapped on two threads, so a
/// large object costs about what SHA-256 alone costs.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, Hash)> {
    const BUF: usize = 8 << 20;
    let mut f = std::fs::File::open(path)?;
    if f.metadata()?.len() <= BUF as u64 {
        return hash_reader(&mut f);
    }
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(2);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(3);
    for _ in 0..3 {
        let _ = empty_tx.send(vec![0u8; BUF]);
    }
    let hasher = std::thread::spawn(move || {
        let mut h = Sha256::new();
        let mut n = 0u64;
        for (buf, len) in full_rx {
            h.update(&buf[..len]);
            n += len as u64;
            if empty_tx.send(buf).is_err() {
                break;
            }
        }
        (n, <Hash>::from(h.finalize()))
    });
    let read = (|| -> std::io::Result<()> {
        for mut buf in empty_rx.iter() {
            let mut len = 0;
            while len < buf.len() {
                let k = f.read(&mut buf[len..])?;
                if k == 0 {
                    break;
                }
                len += k;
            }
            if len == 0 {
                return Ok(());
            }
            let done = len < buf.len();
            if full_tx.send((buf, len)).is_err() || done {
                return Ok(());
            }
        }
        Ok(())
    })();
    drop(full_tx);
    let r = hasher
        .join()
        .map_err(|_| std::io::Error::other("hash thread panicked"))?;
    read.map(|()| r)
}
