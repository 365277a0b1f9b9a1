//! A live feed as the wall lists it, and as gateways tell each other in
//! cluster mode.

use serde::{Deserialize, Serialize};

/// A live feed as the wall lists it (and as gateways tell each other in
/// cluster mode, `view::peers`).
#[derive(Serialize, Deserialize)]
pub(super) struct LiveItem {
    pub(super) recorder: String,
    pub(super) recording_id: String,
    pub(super) officer: Option<String>,
    pub(super) officer_name: Option<String>,
    pub(super) occasion: Option<String>,
    pub(super) case_id: Option<String>,
    pub(super) category: Option<String>,
    pub(super) unit: String,
    pub(super) status: String,
    pub(super) started_at: String,
    pub(super) last_byte_at: String,
    pub(super) gaps: usize,
    pub(super) master: String,
    pub(super) playable: bool,
    pub(super) codecs: Option<String>,
}
