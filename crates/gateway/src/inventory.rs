//! Inventories: what a recorder holds, as a docking rack reported it. Kept
//! in storage page by page under `inventory/<recorder>/<taken>/<page>.json`;
//! the compliance report compares each recorder's newest complete
//! inventory with what is stored (R4: nothing recorded stays on a device).

use serde::{Deserialize, Serialize};

use custody_proto::InventoryItem;
use custody_store::{Store, StoreError};

/// One page as storage keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPage {
    pub recorder: String,
    /// The device that reported it (the rack, or the recorder itself).
    pub reported_by: String,
    pub taken_at: String,
    pub received_at: String,
    pub page: u32,
    pub last: bool,
    pub items: Vec<InventoryItem>,
}

pub const INVENTORY_PREFIX: &str = "inventory/";

/// `inventory/<recorder>/<yyyymmddThhmmssZ>/<page>.json`: the newest
/// inventory of a recorder sorts last.
pub fn page_key(recorder: &str, taken: time::OffsetDateTime, page: u32) -> String {
    let t = taken.to_offset(time::UtcOffset::UTC);
    format!(
        "{INVENTORY_PREFIX}{recorder}/{:04}{:02}{:02}T{:02}{:02}{:02}Z/{page:05}.json",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The newest inventory of each recorder whose every page arrived:
/// (recorder, pages in order).
pub async fn newest(store: &Store) -> Result<Vec<(String, Vec<StoredPage>)>, StoreError> {
    use std::collections::BTreeMap;
    // recorder → taken → page keys
    let mut inv: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for o in store.list(INVENTORY_PREFIX).await? {
        let parts: Vec<&str> = o.key.split('/').collect();
        if let [_, recorder, taken, _page] = parts[..] {
            inv.entry(recorder.to_string())
                .or_default()
                .entry(taken.to_string())
                .or_default()
                .push(o.key.clone());
        }
    }
    let mut out = Vec::new();
    for (recorder, takes) in inv {
        for keys in takes.values().rev() {
            let mut pages = Vec::new();
            for k in keys {
                let b = store.get_bytes(k, 1 << 20).await?;
                if let Ok(p) = serde_json::from_slice::<StoredPage>(&b) {
                    pages.push(p);
                }
            }
            pages.sort_by_key(|p| p.page);
            let whole = pages.iter().enumerate().all(|(i, p)| p.page as usize == i)
                && pages.last().is_some_and(|p| p.last);
            if whole {
                out.push((recorder.clone(), pages));
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_inventory_sorts_last() {
        let a = page_key(
            "bwc-1",
            custody_format::time_fmt::parse("2026-11-30T09:00:00+08:00").unwrap(),
            0,
        );
        let b = page_key(
            "bwc-1",
            custody_format::time_fmt::parse("2026-11-30T02:00:01Z").unwrap(),
            2,
        );
        assert_eq!(a, "inventory/bwc-1/20261130T010000Z/00000.json");
        assert!(b > a);
    }
}
