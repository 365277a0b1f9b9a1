//! Bounds on everything read from the wire or from a device's files.
//! Each is published in `docs/protocol.md`; changing one changes the protocol.

/// Longest identifier (device, recording, officer, category, case).
pub const MAX_ID_LEN: usize = 64;
/// Longest free-text field (proof object, notes, file name).
pub const MAX_TEXT_LEN: usize = 4096;
/// Most content markers in one message.
pub const MAX_MARKERS: usize = 256;
/// Largest control message (JSON) frame payload.
pub const MAX_MSG_LEN: usize = 64 * 1024;
/// Largest data frame payload.
pub const MAX_DATA_LEN: usize = 1024 * 1024;
/// Largest file accepted as one recording original (1 TiB).
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Most streams a device may have open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 64;
/// Longest a stream may stay silent before the gateway gives up on it.
pub const STREAM_IDLE_SECS: u64 = 60;

/// Recordings in one inventory page (a page stays under `MAX_MSG_LEN`).
pub const MAX_INVENTORY_ITEMS: usize = 256;
/// Pages in one inventory.
pub const MAX_INVENTORY_PAGES: u32 = 4096;
