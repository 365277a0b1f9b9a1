//! The `uploads` and `upload_parts` tables: docked uploads in cluster mode,
//! staged in storage part by part. A part is recorded only by the gateway
//! holding the upload's lease, checked in the same transaction (fencing):
//! a gateway that lost its lease cannot add to the list another now
//! extends.

use std::time::Duration;

use crate::{Db, DbError};

/// One staged part: bytes `start..start+len` of the original, in object
/// `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub part: i32,
    pub start: u64,
    pub len: u64,
    pub key: String,
    /// SHA-256 of the part, hex.
    pub sha256: String,
}

/// A docked upload as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub header: Vec<u8>,
    /// The spool entry's state, JSON.
    pub state: String,
    /// Bytes staged, contiguous from 0.
    pub staged: u64,
    pub complete: bool,
    pub parts: Vec<Part>,
}

/// Why a part was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The lease is not held with this token (expired and taken over).
    LeaseLost,
    /// The part does not start where the staged bytes end.
    NotContiguous { staged: u64 },
    /// No such upload.
    Unknown,
}

fn n(v: i64) -> u64 {
    v.max(0) as u64
}

impl Db {
    /// The upload `recorder/id` with its parts in order, if it is known.
    pub async fn upload_get(&self, recorder: &str, id: &str) -> Result<Option<Upload>, DbError> {
        let c = self.client().await?;
        let Some(r) = c
            .query_opt(
                "SELECT header, state, staged, complete FROM uploads
                 WHERE recorder = $1 AND recording_id = $2",
                &[&recorder, &id],
            )
            .await?
        else {
            return Ok(None);
        };
        let parts = c
            .query(
                "SELECT part, start_at, len, key, sha256 FROM upload_parts
                 WHERE recorder = $1 AND recording_id = $2 ORDER BY part",
                &[&recorder, &id],
            )
            .await?
            .into_iter()
            .map(|p| Part {
                part: p.get(0),
                start: n(p.get(1)),
                len: n(p.get(2)),
                key: p.get(3),
                sha256: p.get(4),
            })
            .collect();
        Ok(Some(Upload {
            header: r.get(0),
            state: r.get(1),
            staged: n(r.get(2)),
            complete: r.get(3),
            parts,
        }))
    }

    /// Records a new upload (nothing staged yet); one already recorded
    /// stays as it is.
    pub async fn upload_begin(
        &self,
        recorder: &str,
        id: &str,
        header: &[u8],
        state: &str,
    ) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO uploads (recorder, recording_id, header, state)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&recorder, &id, &header, &state],
            )
            .await?;
        Ok(())
    }

    /// Records part `p` as staged, if lease `lease` is still held with
    /// `token` and the part follows the staged bytes. The token is the
    /// fence, not the expiry: a lease that ran out while the database was
    /// down is still its holder's until another gateway takes it over. Returns the bytes now
    /// staged.
    pub async fn upload_stage(
        &self,
        recorder: &str,
        id: &str,
        lease: &str,
        token: i64,
        p: &Part,
    ) -> Result<Result<u64, Refused>, DbError> {
        let mut c = self.client().await?;
        let t = c.transaction().await?;
        let held = t
            .query_opt(
                "SELECT 1 FROM leases WHERE name = $1 AND token = $2 FOR UPDATE",
                &[&lease, &token],
            )
            .await?;
        if held.is_none() {
            return Ok(Err(Refused::LeaseLost));
        }
        let Some(r) = t
            .query_opt(
                "SELECT staged FROM uploads WHERE recorder = $1 AND recording_id = $2 FOR UPDATE",
                &[&recorder, &id],
            )
            .await?
        else {
            return Ok(Err(Refused::Unknown));
        };
        let staged = n(r.get(0));
        if staged != p.start {
            return Ok(Err(Refused::NotContiguous { staged }));
        }
        let end = p.start + p.len;
        t.execute(
            "INSERT INTO upload_parts (recorder, recording_id, part, start_at, len, key, sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (recorder, recording_id, part) DO UPDATE
             SET start_at = $4, len = $5, key = $6, sha256 = $7",
            &[
                &recorder,
                &id,
                &p.part,
                &(p.start as i64),
                &(p.len as i64),
                &p.key,
                &p.sha256,
            ],
        )
        .await?;
        t.execute(
            "UPDATE uploads SET staged = $3, updated_at = now()
             WHERE recorder = $1 AND recording_id = $2",
            &[&recorder, &id, &(end as i64)],
        )
        .await?;
        t.commit().await?;
        Ok(Ok(end))
    }

    /// Marks the upload complete (every byte staged, the device's hash
    /// matched), with the spool entry's state as it now is.
    pub async fn upload_complete(
        &self,
        recorder: &str,
        id: &str,
        state: &str,
    ) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "UPDATE uploads SET complete = true, state = $3, updated_at = now()
                 WHERE recorder = $1 AND recording_id = $2",
                &[&recorder, &id, &state],
            )
            .await?;
        Ok(())
    }

    /// Complete uploads untouched for `idle` whose lease
    /// ([`crate::leases::upload_name`]) nobody holds (the
    /// gateway that received them stopped before storing them), as
    /// `(recorder, recording_id)`.
    pub async fn uploads_unheld(&self, idle: Duration) -> Result<Vec<(String, String)>, DbError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT u.recorder, u.recording_id FROM uploads u
                 WHERE u.complete AND u.updated_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM leases l
                                   WHERE l.name = 'upload ' || u.recorder || '/' || u.recording_id
                                     AND l.expires_at > now())
                 ORDER BY u.updated_at LIMIT 100",
                &[&idle.as_secs_f64()],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    /// Forgets the upload (archived, or failed and quarantined); returns the
    /// keys of its staged parts, for the caller to delete.
    pub async fn upload_remove(&self, recorder: &str, id: &str) -> Result<Vec<String>, DbError> {
        let mut c = self.client().await?;
        let t = c.transaction().await?;
        let keys = t
            .query(
                "DELETE FROM upload_parts WHERE recorder = $1 AND recording_id = $2 RETURNING key",
                &[&recorder, &id],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        t.execute(
            "DELETE FROM uploads WHERE recorder = $1 AND recording_id = $2",
            &[&recorder, &id],
        )
        .await?;
        t.commit().await?;
        Ok(keys)
    }
}
