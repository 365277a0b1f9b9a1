//! The records office's two-person workflows as rules over storage, with no
//! HTTP in them (the command center's `view::records_office` is a thin
//! layer over this, and a command-line tool could call it alike): export of
//! a recording as a verification bundle (R6) and deletion of a recording
//! whose retention has expired (R5), each requested by one person and
//! approved by a second. Requests are kept in storage as
//! `policy/requests/<id>.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::signing::SigningKey;
use custody_format::confidentiality::Mark;
use custody_format::manifest::Manifest;
use custody_format::retention::Enforcement;
use custody_store::{Store, StoreError, layout};

/// Where requests are kept in storage.
pub const REQUESTS: &str = "policy/requests/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Give the recording out as a verification bundle.
    Export,
    /// Delete a recording whose retention has expired.
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pending,
    /// Approved; being carried out, or its carrying out was interrupted
    /// (the next approval carries it out).
    Approved,
    /// Approved and carried out.
    Done,
    Rejected,
    /// Approved, but carrying it out failed (see `result`).
    Failed,
}

/// A request as storage keeps it (`policy/requests/<id>.json`); every
/// change is also in the audit trail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestDoc {
    pub id: String,
    pub kind: Kind,
    pub recorder: String,
    pub recording_id: String,
    pub reason: String,
    /// The recording's manifest when the request was made.
    #[serde(default)]
    pub manifest_key: String,
    /// Its confidentiality marks then: only viewers cleared for them see
    /// the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confidentiality: Vec<Mark>,
    pub requested_by: String,
    pub requested_at: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// Why a decision cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Decided before (and not an approval left half carried out).
    AlreadyDecided,
    /// Two people: the one who asked cannot also approve.
    SamePerson,
}

/// What a decision that may be taken is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// Pending until now: the decision is to be stored, then carried out.
    New,
    /// Approved before and interrupted (the gateway stopped) before it
    /// was carried out: carried out now, the first decision kept.
    Resumed,
}

impl RequestDoc {
    /// A new pending request by `requested_by` about the recording whose
    /// manifest is `manifest_key`.
    pub fn new(
        kind: Kind,
        (recorder, recording_id): (&str, &str),
        reason: String,
        (manifest_key, m): (String, &Manifest),
        requested_by: &str,
    ) -> RequestDoc {
        RequestDoc {
            id: new_id(),
            kind,
            recorder: recorder.to_string(),
            recording_id: recording_id.to_string(),
            reason,
            manifest_key,
            confidentiality: m.confidentiality.clone(),
            requested_by: requested_by.to_string(),
            requested_at: custody_format::time_fmt::now(),
            status: Status::Pending,
            decided_by: None,
            decided_at: None,
            note: None,
            result: None,
        }
    }

    /// Whether `decider` may approve (or reject) this request now.
    pub fn may_decide(&self, decider: &str, approve: bool) -> Result<Decided, Refusal> {
        // An approval interrupted before its end (the gateway stopped) is
        // carried out by the next approval; anything else decided stays so.
        let resuming = approve && self.status == Status::Approved;
        if self.status != Status::Pending && !resuming {
            return Err(Refusal::AlreadyDecided);
        }
        if approve && self.requested_by == decider {
            return Err(Refusal::SamePerson);
        }
        Ok(if resuming {
            Decided::Resumed
        } else {
            Decided::New
        })
    }

    /// Records a new decision by `decider`.
    pub fn decide(&mut self, decider: &str, note: Option<String>, approve: bool) {
        self.decided_by = Some(decider.to_string());
        self.decided_at = Some(custody_format::time_fmt::now());
        self.note = note;
        self.status = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
    }

    /// Records how carrying it out ended.
    pub fn carried_out(&mut self, outcome: Result<String, String>) {
        let (status, result) = match outcome {
            Ok(r) => (Status::Done, r),
            Err(e) => (Status::Failed, e),
        };
        self.status = status;
        self.result = Some(result);
    }

    /// `recorder/recording-id`.
    pub fn recording(&self) -> String {
        format!("{}/{}", self.recorder, self.recording_id)
    }
}

/// A request id: the time it was made and random digits.
fn new_id() -> String {
    let mut b = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("randomness");
    let t = custody_format::clock::now();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        hex::encode(b)
    )
}

fn request_key(id: &str) -> String {
    format!("{REQUESTS}{id}.json")
}

pub async fn save(store: &Store, r: &RequestDoc) -> Result<(), StoreError> {
    store.put_json(&request_key(&r.id), r).await.map(|_| ())
}

/// The request `id`, if there is one (a damaged document counts as none).
pub async fn load(store: &Store, id: &str) -> Result<Option<RequestDoc>, StoreError> {
    if !custody_format::metadata::valid_id(id) {
        return Ok(None);
    }
    match store.get_json(&request_key(id), "request").await {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotDocument { .. }) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every request that parses, newest first.
pub async fn list(store: &Store) -> Result<Vec<RequestDoc>, StoreError> {
    let mut out = Vec::new();
    for o in store.list(REQUESTS).await? {
        if let Ok(r) = store.get_json::<RequestDoc>(&o.key, "request").await {
            out.push(r);
        }
    }
    out.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
    Ok(out)
}

/// How storing a decision ended when it did not.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("the request was decided already")]
    DecidedElsewhere,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] custody_db::DbError),
}

impl RequestDoc {
    /// Its decision as the cluster's database keeps it, once decided.
    pub fn decision(&self) -> Option<custody_db::decisions::Decision> {
        let status = match self.status {
            Status::Pending => return None,
            Status::Rejected => "rejected",
            Status::Approved | Status::Done | Status::Failed => "approved",
        };
        Some(custody_db::decisions::Decision {
            request_id: self.id.clone(),
            status: status.into(),
            decided_by: self.decided_by.clone()?,
            decided_at: self.decided_at.clone()?,
        })
    }
}

/// Stores a decision. In cluster mode (`db`) the database decides which
/// decision is first, across gateways, before the document is written.
/// Alone, the document is written and read back: storage has no
/// conditional writes, so a decision made at the same moment through
/// another gateway on the same bucket can overwrite this one, and reading
/// it back catches that only when the other write came first
/// (`docs/command-center.md` §10.4 says what this does not guarantee).
pub async fn store_decision(
    store: &Store,
    db: Option<&custody_db::Db>,
    r: &RequestDoc,
) -> Result<(), DecisionError> {
    if let Some(db) = db {
        let d = r.decision().ok_or(DecisionError::DecidedElsewhere)?;
        if !db.claim_decision(&d).await? {
            return Err(DecisionError::DecidedElsewhere);
        }
    }
    save(store, r).await?;
    match load(store, &r.id).await? {
        Some(x)
            if x.status == r.status
                && x.decided_by == r.decided_by
                && x.decided_at == r.decided_at =>
        {
            Ok(())
        }
        _ => Err(DecisionError::DecidedElsewhere),
    }
}

/// Why a recording may not be deleted yet, if so: its period is not over,
/// or less time than the period has passed since the gateway received it
/// (whatever the device's clock claimed).
pub fn not_deletable(m: &Manifest, now: time::OffsetDateTime) -> Option<String> {
    let received = custody_format::time_fmt::parse(&m.summary.received_at);
    match &m.retention {
        None => Some("the recording has no retention record; it is kept".into()),
        Some(r) if !r.expired(now, received) => Some(match r.deletable_from(received) {
            Some(u) => format!(
                "retained until {} ({})",
                custody_format::time_fmt::rfc3339(u),
                r.retention.describe()
            ),
            None => format!("retained for ever ({})", r.retention.describe()),
        }),
        Some(_) => None,
    }
}

/// A deletion whose recording is gone already: if its signed record is
/// there, the deletion was carried out before (and interrupted before the
/// request said so); the request is marked done.
pub async fn finish_interrupted_deletion(store: &Store, r: &mut RequestDoc) -> bool {
    let Some(prefix) = layout::prefix_of_manifest_key(&r.manifest_key) else {
        return false;
    };
    let record = layout::deletion_record_key(prefix);
    if r.kind != Kind::Delete || prefix.is_empty() || !store.exists(&record).await.unwrap_or(false)
    {
        return false;
    }
    r.status = Status::Done;
    r.result = Some(format!("deleted earlier; the deletion record is {record}"));
    true
}

/// Where storage, the gateway's key and its retention enforcement are.
pub struct Office<'a> {
    pub store: &'a Store,
    pub index: &'a crate::catalog::Index,
    pub signer: &'a SigningKey,
    pub enforcement: &'a Enforcement,
}

impl Office<'_> {
    /// Carries out an approved request; the result is what the request
    /// records.
    pub async fn carry_out(
        &self,
        r: &RequestDoc,
        (manifest_key, m): (&str, &Manifest),
        approved_by: &str,
        bundle_dir: &Path,
    ) -> Result<String, String> {
        match r.kind {
            Kind::Export => self.export(r, manifest_key, bundle_dir).await,
            Kind::Delete => self.delete(r, manifest_key, m, approved_by).await,
        }
    }

    /// Makes the verification bundle of an approved export in `dir`.
    async fn export(
        &self,
        r: &RequestDoc,
        manifest_key: &str,
        dir: &Path,
    ) -> Result<String, String> {
        // Nothing is given out that does not verify.
        let opts = custody_verify::VerifyOptions {
            trusted_key: Some(self.signer.public()),
        };
        let report = custody_verify::verify_with(self.store, manifest_key, &opts)
            .await
            .map_err(|e| e.to_string())?;
        if !report.ok {
            let why: Vec<String> = report.failures.iter().map(|f| f.reason.clone()).collect();
            return Err(format!("the recording does not verify: {}", why.join("; ")));
        }
        let pem = self.signer.public_key_pem();
        let b = crate::export::export(self.store, manifest_key, &pem, dir, true)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "bundle of {} objects ({} bytes) and {} checkpoints ready for {}",
            b.objects, b.bytes, b.checkpoints, r.requested_by
        ))
    }

    /// Deletes an expired recording, leaving a signed record of the
    /// deletion at its place.
    async fn delete(
        &self,
        r: &RequestDoc,
        manifest_key: &str,
        m: &Manifest,
        approved_by: &str,
    ) -> Result<String, String> {
        if let Some(why) = not_deletable(m, custody_format::clock::now()) {
            return Err(why);
        }
        let store = self.store;
        // A deletion interrupted earlier left its record: that record is
        // rewritten below, never deleted with the objects.
        let record_keys = [
            layout::deletion_record_key(&m.prefix),
            layout::deletion_signature_key(&m.prefix),
        ];
        let objects: Vec<_> = store
            .list(&layout::recording_dir(&m.prefix))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|o| !record_keys.contains(&o.key))
            .collect();
        let record = serde_json::json!({
            "format": "custody-deletion/1",
            "recorder": m.recorder,
            "recording_id": m.recording_id,
            "manifest_key": manifest_key,
            "object_count": m.object_count,
            "chain_head": m.chain_head,
            "retention": m.retention,
            "request": r.id,
            "requested_by": r.requested_by,
            "reason": r.reason,
            "approved_by": approved_by,
            "deleted_at": custody_format::time_fmt::now(),
            "objects_deleted": objects.len(),
        });
        let body = serde_json::to_vec_pretty(&record).expect("deletion record serialises");
        let sig = self.signer.sign(&body);
        // The record first: a deletion interrupted halfway is still explained.
        let put = |key: String, b: Vec<u8>| async move {
            let h = custody_format::chain::sha256(&b);
            store.put_bytes(&key, b.into(), &h).await
        };
        let [record_key, sig_key] = record_keys;
        // A retry keeps the first record (what was there, who approved,
        // when); it only finishes the deletion.
        let first = store.exists(&record_key).await.unwrap_or(false)
            && store.exists(&sig_key).await.unwrap_or(false);
        if !first {
            put(record_key, body).await.map_err(|e| e.to_string())?;
            put(sig_key, sig).await.map_err(|e| e.to_string())?;
        }
        let mut refused = 0;
        let versions = matches!(self.enforcement, Enforcement::ObjectLock);
        for o in &objects {
            // Where storage keeps versions, every version goes (a plain
            // delete would only hide the object).
            let r = if versions {
                store.purge(&o.key).await
            } else {
                store.delete(&o.key).await
            };
            if let Err(e) = r {
                tracing::warn!(key = %o.key, "deletion refused: {e}");
                refused += 1;
            }
        }
        if let Err(e) = self.index.update(manifest_key).await {
            tracing::warn!("catalog after a deletion: {e}");
        }
        if refused > 0 {
            return Err(format!(
                "{refused} of {} objects could not be deleted (storage refused)",
                objects.len()
            ));
        }
        Ok(format!(
            "{} objects deleted; deletion record at {}",
            objects.len(),
            layout::deletion_record_key(&m.prefix)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(status: Status) -> RequestDoc {
        RequestDoc {
            id: "20261201-000000-aabbccddeeff".into(),
            kind: Kind::Delete,
            recorder: "bwc-1".into(),
            recording_id: "r-1".into(),
            reason: "expired".into(),
            manifest_key: "records/x/2020/01/01/bwc-1/r-1/manifest.json".into(),
            confidentiality: Vec::new(),
            requested_by: "alice".into(),
            requested_at: "2026-12-01T00:00:00Z".into(),
            status,
            decided_by: None,
            decided_at: None,
            note: None,
            result: None,
        }
    }

    #[test]
    fn two_people_decide_once() {
        use Status::*;
        // (status, decider, approve) → may decide?
        let table = [
            (Pending, "bob", true, Ok(Decided::New)),
            (Pending, "bob", false, Ok(Decided::New)),
            (Pending, "alice", true, Err(Refusal::SamePerson)),
            // The requester may withdraw (reject) their own request.
            (Pending, "alice", false, Ok(Decided::New)),
            (Approved, "bob", true, Ok(Decided::Resumed)),
            (Approved, "carol", true, Ok(Decided::Resumed)),
            (Approved, "bob", false, Err(Refusal::AlreadyDecided)),
            (Approved, "alice", true, Err(Refusal::SamePerson)),
            (Done, "bob", true, Err(Refusal::AlreadyDecided)),
            (Rejected, "bob", true, Err(Refusal::AlreadyDecided)),
            (Failed, "bob", true, Err(Refusal::AlreadyDecided)),
            (Failed, "bob", false, Err(Refusal::AlreadyDecided)),
        ];
        for (status, who, approve, want) in table {
            assert_eq!(
                request(status).may_decide(who, approve),
                want,
                "{status:?} by {who}, approve {approve}"
            );
        }
    }

    #[test]
    fn a_decision_and_its_outcome_are_recorded() {
        let mut r = request(Status::Pending);
        r.decide("bob", Some("checked".into()), true);
        assert_eq!(r.status, Status::Approved);
        assert_eq!(r.decided_by.as_deref(), Some("bob"));
        assert!(r.decided_at.is_some());
        r.carried_out(Err("storage refused".into()));
        assert_eq!(
            (r.status, r.result.as_deref()),
            (Status::Failed, Some("storage refused"))
        );
        let mut r = request(Status::Pending);
        r.decide("bob", None, false);
        assert_eq!(r.status, Status::Rejected);
        assert_eq!(r.recording(), "bwc-1/r-1");
    }

    #[tokio::test]
    async fn requests_round_trip_and_a_decision_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&custody_store::StoreConfig {
            local_dir: dir.path().join("store"),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut r = request(Status::Pending);
        save(&store, &r).await.unwrap();
        assert_eq!(
            load(&store, &r.id).await.unwrap().unwrap().status,
            Status::Pending
        );
        assert!(load(&store, "../escape").await.unwrap().is_none());
        assert!(load(&store, "none").await.unwrap().is_none());
        r.decide("bob", None, true);
        store_decision(&store, None, &r).await.unwrap();
        let listed = list(&store).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].status, Status::Approved);
        // The recording is gone but no deletion record is there: not done.
        let mut gone = r.clone();
        assert!(!finish_interrupted_deletion(&store, &mut gone).await);
        let prefix = layout::prefix_of_manifest_key(&r.manifest_key).unwrap();
        let record = layout::deletion_record_key(prefix);
        store
            .put_bytes(&record, "{}".into(), &custody_format::chain::sha256(b"{}"))
            .await
            .unwrap();
        assert!(finish_interrupted_deletion(&store, &mut gone).await);
        assert_eq!(gone.status, Status::Done);
    }
}
