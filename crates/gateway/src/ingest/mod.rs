//! Devices that speak other protocols than custody's own, brought into the
//! same evidence model (ledger admission, the bytes received kept as the
//! original, remux without transcoding, the hash chain, gaps, usage
//! records): [`rtsp`] pulls the fixed cameras the ledger lists with an
//! RTSP URL.

pub mod rtsp;

use std::sync::Arc;

use crate::shared::Gateway;
use crate::tasks::Tasks;

/// Starts pulling what the configuration turns on.
pub fn start(gw: Arc<Gateway>, tasks: &Tasks) {
    if gw.cfg.rtsp.pull {
        tasks.spawn("rtsp cameras", rtsp::supervise(gw));
    }
}
