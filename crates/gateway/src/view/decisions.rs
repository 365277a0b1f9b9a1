//! One records-office decision at a time per request in this gateway.

use std::collections::HashMap;
use std::sync::Arc;

/// One decision at a time per request in this gateway: a decision takes
/// its request's lock, reads the stored request afresh under it, and
/// stores its own decision before carrying anything out, so a concurrent
/// second decision finds the request decided and is refused (409).
#[derive(Default)]
pub struct DecisionLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// A held decision lock; the entry is forgotten once nobody waits for it.
pub(super) struct DecisionGuard<'a> {
    locks: &'a DecisionLocks,
    id: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl DecisionLocks {
    pub(super) async fn lock(&self, id: &str) -> DecisionGuard<'_> {
        let m = self
            .0
            .lock()
            .expect("decision locks")
            .entry(id.to_string())
            .or_default()
            .clone();
        DecisionGuard {
            locks: self,
            id: id.to_string(),
            held: Some(m.lock_owned().await),
        }
    }
}

impl Drop for DecisionGuard<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut map = self.locks.0.lock().expect("decision locks");
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.id);
        }
    }
}
