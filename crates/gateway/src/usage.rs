//! The usage record of every device (R1 使用管理情况台账): one small JSON
//! object per event — who, which device, when, what — appended under
//! `usage/<device>/…` through the spool's outbox, so entries survive
//! storage outages and gateway crashes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use time::UtcOffset;

use crate::spool::outbox::Outbox;
use custody_format::layout;

pub const USAGE_FORMAT: &str = "custody-usage/1";
/// Where refusals of certificates that name no device are filed.
pub const UNIDENTIFIED: &str = "_unidentified";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageEvent {
    SessionOpened,
    SessionClosed,
    Refused,
    UploadStarted,
    UploadResumed,
    UploadVerified,
    UploadFailed,
    Archived,
    /// A docking rack reported what a recorder holds.
    InventoryReported,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageEntry {
    pub format: String,
    pub at: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    pub event: UsageEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub gateway: String,
}

#[derive(Debug, Clone)]
pub struct UsageLog {
    outbox: Outbox,
    offset: UtcOffset,
    gateway: String,
    seq: Arc<AtomicU64>,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Usage<'a> {
    pub device: &'a str,
    pub officer: Option<&'a str>,
    pub event: UsageEvent,
    pub recording_id: Option<&'a str>,
    pub detail: String,
    pub peer: Option<std::net::SocketAddr>,
}

impl UsageLog {
    /// The durable queue of small objects for storage.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub fn new(outbox: Outbox, offset: UtcOffset, gateway: String) -> Self {
        UsageLog {
            outbox,
            offset,
            gateway,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records an event durably (it is in the spool when this returns) and
    /// logs it.
    pub async fn record(&self, u: Usage<'_>) {
        let now = custody_format::clock::now();
        let entry = UsageEntry {
            format: USAGE_FORMAT.into(),
            at: custody_format::time_fmt::rfc3339(now),
            device: u.device.to_string(),
            officer: u.officer.map(str::to_string),
            event: u.event,
            recording_id: u.recording_id.map(str::to_string),
            detail: u.detail,
            peer: u.peer.map(|p| p.to_string()),
            gateway: self.gateway.clone(),
        };
        tracing::info!(
            device = %entry.device,
            officer = entry.officer.as_deref().unwrap_or("-"),
            event = ?entry.event,
            recording = entry.recording_id.as_deref().unwrap_or("-"),
            peer = entry.peer.as_deref().unwrap_or("-"),
            "{}",
            // Can quote what an unverified certificate claims.
            custody_format::text::escape(&entry.detail)
        );
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let key = layout::usage_key(&entry.device, now.to_offset(self.offset), seq);
        let body = serde_json::to_vec(&entry).expect("usage serialises");
        let outbox = self.outbox.clone();
        let res = tokio::task::spawn_blocking(move || outbox.put(&key, &body)).await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("usage record not spooled: {e}"),
            Err(e) => tracing::error!("usage record task failed: {e}"),
        }
    }
}
