//! The command center's shared state: the gateway, viewers' sessions,
//! the audit trail and its rate limits, cached manifests, decision locks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::audit::{AuditEntry, AuditLog};
use super::auth::{Auth, Principal};
use super::listener::Peer;
use crate::shared::Gateway;
use custody_format::manifest::Manifest;

pub struct State {
    pub(super) gw: Arc<Gateway>,
    pub(super) auth: Auth,
    audit: AuditLog,
    /// Last audit entry per (viewer, recording, action), to log a watcher's
    /// repeated playlist reloads once every 30 s rather than twice a second.
    logged: Mutex<HashMap<(String, String, String), Instant>>,
    /// Recently read manifests: a player fetching a stored recording's
    /// segments does not read locator and manifest again for each one.
    pub(super) manifests: Mutex<HashMap<(String, String), CachedManifest>>,
    /// Refusals this minute: (since, audited one by one, not audited).
    refusals: Mutex<(Instant, u32, u64)>,
    /// Refusals of past minutes not yet counted in an audit entry.
    unsummed: std::sync::atomic::AtomicU64,
    /// One records-office decision at a time per request.
    pub(super) decisions: super::decisions::DecisionLocks,
    /// Cluster mode: the other gateways' command centers.
    pub(super) peers: Option<Arc<super::peers::Peers>>,
}

/// A viewer's repeated access to one recording is audited this often.
const REPEAT_AUDIT: Duration = Duration::from_secs(30);
/// Refusals audited one by one per minute.
const REFUSALS_PER_MINUTE: u32 = 120;

type CachedManifest = (Arc<Manifest>, Instant);

/// How long a cached manifest is used (annotations append to manifests).
pub(super) const MANIFEST_TTL: Duration = Duration::from_secs(30);

pub(super) type S = Arc<State>;

impl State {
    pub fn new(gw: Arc<Gateway>, peers: Option<Arc<super::peers::Peers>>) -> S {
        let s = Arc::new(State {
            peers,
            auth: Auth::new(gw.cfg.viewers.clone()),
            audit: AuditLog::start(gw.clone()),
            logged: Mutex::new(HashMap::new()),
            manifests: Mutex::new(HashMap::new()),
            refusals: Mutex::new((Instant::now(), 0, 0)),
            unsummed: Default::default(),
            decisions: Default::default(),
            gw,
        });
        // Refusals beyond the per-minute allowance are summed up once a
        // minute, so even a flood leaves its size in the trail.
        let weak = Arc::downgrade(&s);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(s) = weak.upgrade() else { return };
                let skipped = {
                    let mut r = s.refusals.lock().expect("refusals");
                    let n = r.2;
                    *r = (Instant::now(), 0, 0);
                    n + s.unsummed.swap(0, std::sync::atomic::Ordering::Relaxed)
                };
                if skipped > 0 {
                    let peer = Peer {
                        addr: ([0, 0, 0, 0], 0).into(),
                        viewer: None,
                    };
                    let detail = format!(
                        "{skipped} further requests were refused in the last minute (not recorded one by one)"
                    );
                    s.audit(
                        None,
                        "refused",
                        None,
                        "-",
                        StatusCode::UNAUTHORIZED,
                        &peer,
                        detail,
                    )
                    .await;
                }
            }
        });
        s
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn audit(
        &self,
        who: Option<&Principal>,
        action: &str,
        recording: Option<String>,
        path: &str,
        status: StatusCode,
        peer: &Peer,
        detail: String,
    ) -> bool {
        self.audit
            .record(AuditEntry {
                at: custody_format::time_fmt::now(),
                viewer: who.map(|p| p.name.clone()).unwrap_or_else(|| "-".into()),
                role: who.and_then(|p| {
                    serde_json::to_value(p.role)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                }),
                action: action.to_string(),
                recording,
                path: path.to_string(),
                status: status.as_u16(),
                peer: peer.addr.to_string(),
                detail,
            })
            .await
    }

    /// Audits an action a viewer takes (status 200): `false` if the entry
    /// could not be kept, and the action must not go ahead.
    pub(super) async fn audit_as(
        &self,
        who: &Principal,
        action: &str,
        recording: Option<String>,
        path: &str,
        peer: &Peer,
        detail: String,
    ) -> bool {
        self.audit(
            Some(who),
            action,
            recording,
            path,
            StatusCode::OK,
            peer,
            detail,
        )
        .await
    }

    /// Forgets a cached manifest (its recording just changed).
    pub(super) fn forget_manifest(&self, recorder: &str, id: &str) {
        self.manifests
            .lock()
            .expect("manifests")
            .remove(&(recorder.to_string(), id.to_string()));
    }

    /// [`Self::audit_view`] for a listing that concerns no one recording.
    pub(super) async fn audit_repeat(
        &self,
        who: &Principal,
        action: &str,
        path: &str,
        peer: &Peer,
    ) -> bool {
        self.audit_view(who, action, None, path, peer).await
    }

    /// Audits a repeated access at most every 30 s per viewer and
    /// recording; `false` if the entry could not be kept (the access is
    /// then refused).
    pub(super) async fn audit_view(
        &self,
        who: &Principal,
        action: &str,
        recording: Option<String>,
        path: &str,
        peer: &Peer,
    ) -> bool {
        let key = (
            who.name.clone(),
            recording.clone().unwrap_or_default(),
            action.to_string(),
        );
        let due = {
            let mut l = self.logged.lock().expect("logged");
            let due = l.get(&key).is_none_or(|t| t.elapsed() >= REPEAT_AUDIT);
            if due {
                if l.len() >= 10_000 {
                    l.retain(|_, t| t.elapsed() < REPEAT_AUDIT);
                }
                l.insert(key.clone(), Instant::now());
            }
            due
        };
        if !due {
            return true;
        }
        let ok = self
            .audit(
                Some(who),
                action,
                recording,
                path,
                StatusCode::OK,
                peer,
                String::new(),
            )
            .await;
        if !ok {
            // Not recorded: the next access tries again.
            self.logged.lock().expect("logged").remove(&key);
        }
        ok
    }

    /// Whether a refusal is audited one by one: at most
    /// `REFUSALS_PER_MINUTE` a minute, so requests without credentials
    /// cannot grow the signed log without bound. The others are counted,
    /// and the count goes into the next entry audited.
    pub(super) fn refusal_due(&self) -> bool {
        let mut r = self.refusals.lock().expect("refusals");
        if r.0.elapsed() >= Duration::from_secs(60) {
            self.unsummed
                .fetch_add(r.2, std::sync::atomic::Ordering::Relaxed);
            *r = (Instant::now(), 0, 0);
        }
        if r.1 < REFUSALS_PER_MINUTE {
            r.1 += 1;
            true
        } else {
            r.2 += 1;
            false
        }
    }
}
