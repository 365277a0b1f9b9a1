//! The file-system primitives every layer that writes or hashes files
//! shares: crash-safe writes ([`write_atomic`], [`sync_dir`]) and SHA-256 of
//! files ([`hash_file`], [`hash_reader`]). Kept apart so that the device
//! client, the verifier, the media layer and storage use one copy without
//! depending on the gateway's spool.

mod durable;
mod hash;

pub use durable::{sync_dir, write_atomic};
pub use hash::{hash_file, hash_reader};
