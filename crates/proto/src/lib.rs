//! Wire protocol v1 (`docs/protocol.md`): ALPN id, framing, messages, codes.

pub mod codes;
pub mod frame;
pub mod message;

pub use codes::{CloseCode, ErrorBody, StreamError};
pub use frame::{Frame, FrameError, read_frame, write_msg};
pub use message::{
    DerivationNote, Finish, InventoryItem, LiveControl, RecordingState, Reply, Request,
};

/// The ALPN protocol id of this protocol version.
pub const ALPN: &[u8] = b"custody/1";
