//! The `live_recordings` table: where each open live recording of the
//! cluster is stored and which spool copy of it is current (its epoch), so
//! that another gateway can continue it from storage when its gateway dies.

use crate::{Db, DbError};

/// An open live recording as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    pub prefix: String,
    pub epoch: i64,
}

impl Db {
    /// Records live recording `recorder/id` under `prefix`, its spool copy
    /// of epoch `epoch` (created, or continued from storage, now).
    pub async fn live_set(
        &self,
        recorder: &str,
        id: &str,
        prefix: &str,
        epoch: i64,
    ) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO live_recordings (recorder, recording_id, prefix, epoch)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (recorder, recording_id) DO UPDATE SET prefix = $3, epoch = $4",
                &[&recorder, &id, &prefix, &epoch],
            )
            .await?;
        Ok(())
    }

    pub async fn live_get(&self, recorder: &str, id: &str) -> Result<Option<LiveRow>, DbError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT prefix, epoch FROM live_recordings
                 WHERE recorder = $1 AND recording_id = $2",
                &[&recorder, &id],
            )
            .await?
            .map(|r| LiveRow {
                prefix: r.get(0),
                epoch: r.get(1),
            }))
    }

    /// Forgets the recording (stored whole) — only if its row is still of
    /// `epoch`.
    pub async fn live_remove(&self, recorder: &str, id: &str, epoch: i64) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM live_recordings
                 WHERE recorder = $1 AND recording_id = $2 AND epoch = $3",
                &[&recorder, &id, &epoch],
            )
            .await?;
        Ok(())
    }
}
