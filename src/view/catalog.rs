//! What stored recordings there are, for the wall's search: built from the
//! locators and manifests in storage and refreshed as new ones appear.

use std::collections::HashMap;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::archive::{Locator, MAX_DOC_BYTES};
use crate::manifest::{Manifest, Role};
use crate::store::Store;

/// One stored recording as the wall lists it (no storage keys).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub recorder: String,
    pub recording_id: String,
    pub officer: Option<String>,
    pub case_id: Option<String>,
    pub category: Option<String>,
    pub occasion: Option<String>,
    pub started_at: Option<String>,
    pub received_at: String,
    pub mode: Option<String>,
    pub duration: Option<f64>,
    pub status: String,
    pub master: Option<String>,
    pub playable: bool,
    pub codecs: Option<String>,
    pub download: String,
}

#[derive(Default)]
pub struct Catalog {
    /// Manifest key → (chain head seen, item).
    items: Mutex<HashMap<String, (String, Item)>>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Query {
    pub officer: Option<String>,
    pub device: Option<String>,
    pub case: Option<String>,
    pub category: Option<String>,
    pub occasion: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

fn occasion_name(o: Option<crate::metadata::Occasion>) -> Option<String> {
    o.and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| v.as_str().map(str::to_string))
}

async fn item(store: &Store, m: &Manifest) -> Item {
    let base = format!("/rec/{}/{}", m.recorder, m.recording_id);
    let segments: Vec<_> = m
        .objects
        .iter()
        .filter(|o| o.role == Role::Segment)
        .collect();
    let duration = m.live.as_ref().map(|l| l.media_duration).or_else(|| {
        segments
            .last()
            .and_then(|o| o.media.as_ref().map(|r| r.end))
    });
    let (codecs, playable) = match m.objects.iter().find(|o| o.role == Role::Init) {
        Some(init) => match store.get_bytes(&init.key, 1 << 20).await {
            Ok(b) => {
                let (c, p) = super::hls::codecs(&b);
                (Some(c), p)
            }
            Err(_) => (None, false),
        },
        None => (None, false),
    };
    let status = match &m.live {
        Some(l) if !l.complete => format!("{} gaps", l.gaps.len()),
        _ => "complete".to_string(),
    };
    Item {
        recorder: m.recorder.clone(),
        recording_id: m.recording_id.clone(),
        officer: m.summary.officer.clone(),
        case_id: m.summary.case_id.clone(),
        category: m.summary.category.clone(),
        occasion: occasion_name(m.summary.occasion),
        started_at: m.summary.started_at.clone(),
        received_at: m.summary.received_at.clone(),
        mode: m
            .summary
            .method
            .mode
            .and_then(|x| serde_json::to_value(x).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        duration,
        status,
        master: (!segments.is_empty()).then(|| format!("{base}/master.m3u8")),
        playable: playable && !segments.is_empty(),
        codecs,
        download: format!("{base}/original"),
    }
}

fn in_range(t: Option<&str>, from: Option<&str>, to: Option<&str>) -> bool {
    let Some(t) = t.and_then(crate::time_fmt::parse) else {
        return from.is_none() && to.is_none();
    };
    from.and_then(crate::time_fmt::parse).is_none_or(|f| t >= f)
        && to.and_then(crate::time_fmt::parse).is_none_or(|x| t <= x)
}

impl Catalog {
    /// Refreshes from storage and returns the items matching `q`, newest first.
    pub async fn search(
        &self,
        store: &Store,
        q: &Query,
    ) -> Result<Vec<Item>, crate::store::StoreError> {
        let locators = store.list("index/recordings/").await?;
        let mut items = self.items.lock().await;
        for o in locators {
            if o.key
                .starts_with(&format!("index/recordings/{}/", super::AUDIT_RECORDER))
            {
                continue;
            }
            let Ok(b) = store.get_bytes(&o.key, MAX_DOC_BYTES).await else {
                continue;
            };
            let Ok(loc) = serde_json::from_slice::<Locator>(&b) else {
                continue;
            };
            if items
                .get(&loc.manifest_key)
                .is_some_and(|(head, _)| *head == loc.chain_head)
            {
                continue;
            }
            let Ok(mb) = store.get_bytes(&loc.manifest_key, MAX_DOC_BYTES).await else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<Manifest>(&mb) else {
                continue;
            };
            let it = item(store, &m).await;
            items.insert(loc.manifest_key.clone(), (m.chain_head.clone(), it));
        }
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_deref()
                .filter(|w| !w.is_empty())
                .is_none_or(|w| have.as_deref() == Some(w))
        };
        let mut out: Vec<Item> = items
            .values()
            .map(|(_, i)| i)
            .filter(|i| {
                eq(&q.officer, &i.officer)
                    && eq(&q.device, &Some(i.recorder.clone()))
                    && eq(&q.case, &i.case_id)
                    && eq(&q.category, &i.category)
                    && eq(&q.occasion, &i.occasion)
                    && in_range(
                        i.started_at.as_deref().or(Some(&i.received_at)),
                        q.from.as_deref().filter(|s| !s.is_empty()),
                        q.to.as_deref().filter(|s| !s.is_empty()),
                    )
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| b.received_at.cmp(&a.received_at));
        out.truncate(500);
        Ok(out)
    }
}
