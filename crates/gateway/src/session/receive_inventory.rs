//! `inventory`: a docking rack reports what a recorder holds. Each page is
//! kept in storage (through the outbox, so an outage only delays it) under
//! `inventory/<recorder>/<taken>/<page>.json`; the compliance report
//! compares the newest inventory of each recorder with what is stored.

use std::sync::Arc;

use quinn::SendStream;

use super::Session;
use super::frames::{Failure, fail, reply};
use super::status::resolve_recorder;
use crate::inventory::{StoredPage, page_key};
use crate::usage::UsageEvent;
use custody_format::limits;
use custody_format::metadata::valid_id;
use custody_proto::{InventoryItem, Reply, StreamError};

/// One page as the device sent it.
pub struct Page {
    pub taken_at: String,
    pub page: u32,
    pub last: bool,
    pub items: Vec<InventoryItem>,
}

/// Whether a page passes [`check`]: the fuzz targets' entry (the failure
/// itself is a reply on the session's stream).
#[doc(hidden)]
pub fn page_is_valid(p: &Page) -> bool {
    check(p).is_ok()
}

/// A page's syntax and bounds, before anything is stored.
pub(crate) fn check(p: &Page) -> Result<time::OffsetDateTime, Failure> {
    let bad = |m: String| Err(fail(StreamError::InvalidMetadata, m));
    let Some(taken) = custody_format::time_fmt::parse(&p.taken_at) else {
        return bad("taken_at: not an RFC 3339 time".into());
    };
    if p.items.len() > limits::MAX_INVENTORY_ITEMS {
        return bad(format!(
            "{} items in one page; at most {}",
            p.items.len(),
            limits::MAX_INVENTORY_ITEMS
        ));
    }
    if p.page >= limits::MAX_INVENTORY_PAGES {
        return bad(format!(
            "page {}: at most {} pages",
            p.page,
            limits::MAX_INVENTORY_PAGES
        ));
    }
    for i in &p.items {
        if !valid_id(&i.recording_id) {
            return bad(format!("recording_id {:?}: not a valid id", i.recording_id));
        }
        if i.size > limits::MAX_FILE_SIZE {
            return bad(format!("{}: size over the limit", i.recording_id));
        }
        if let Some(t) = &i.started_at
            && (t.len() > 64 || custody_format::time_fmt::parse(t).is_none())
        {
            return bad(format!(
                "{}: started_at is not an RFC 3339 time",
                i.recording_id
            ));
        }
    }
    Ok(taken)
}

pub async fn run(
    s: &Arc<Session>,
    send: &mut SendStream,
    recorder: Option<&str>,
    p: Page,
) -> Result<(), Failure> {
    if let Some(r) = recorder
        && !valid_id(r)
    {
        return Err(fail(
            StreamError::InvalidMetadata,
            "recorder: not a valid id",
        ));
    }
    let recorder = resolve_recorder(s, recorder)?;
    let taken = check(&p)?;
    let n = p.items.len() as u64;
    let stored = StoredPage {
        recorder: recorder.clone(),
        reported_by: s.device().to_string(),
        taken_at: p.taken_at,
        received_at: custody_format::time_fmt::now(),
        page: p.page,
        last: p.last,
        items: p.items,
    };
    let key = page_key(&recorder, taken, stored.page);
    let body = serde_json::to_vec_pretty(&stored).expect("inventory page serialises");
    let outbox = s.gw.usage.outbox().clone();
    tokio::task::spawn_blocking(move || outbox.put(&key, &body))
        .await
        .map_err(|e| fail(StreamError::Internal, e.to_string()))?
        .map_err(|e| fail(StreamError::StorageFailure, format!("spool: {e}")))?;
    if stored.last {
        s.usage(
            UsageEvent::InventoryReported,
            None,
            format!(
                "{} reported the recordings on {recorder} as of {} ({} pages)",
                s.device(),
                stored.taken_at,
                stored.page + 1
            ),
        )
        .await;
    }
    reply(send, &Reply::Noted { items: n }).await
}
