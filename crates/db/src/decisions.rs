//! The `request_decisions` table: one decision per records-office request,
//! whichever gateway it reaches first. A primary key and
//! `INSERT … ON CONFLICT DO NOTHING` make "first" hold across gateways.

use crate::{Db, DbError};

/// One decision, as the request document records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub request_id: String,
    /// `approved` or `rejected`.
    pub status: String,
    pub decided_by: String,
    pub decided_at: String,
}

impl Db {
    /// Claims the request for `d`. True if `d` is the request's decision:
    /// stored now, or stored before by the same decider at the same instant
    /// (a retry); false if another decision was there first.
    pub async fn claim_decision(&self, d: &Decision) -> Result<bool, DbError> {
        let c = self.client().await?;
        let inserted = c
            .execute(
                "INSERT INTO request_decisions (request_id, status, decided_by, decided_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING",
                &[&d.request_id, &d.status, &d.decided_by, &d.decided_at],
            )
            .await?;
        if inserted == 1 {
            return Ok(true);
        }
        let row = c
            .query_opt(
                "SELECT status, decided_by, decided_at FROM request_decisions WHERE request_id = $1",
                &[&d.request_id],
            )
            .await?;
        Ok(row.is_some_and(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
            ) == (d.status.clone(), d.decided_by.clone(), d.decided_at.clone())
        }))
    }

    /// Puts back decisions read from storage (`custody index rebuild`);
    /// ones already there stay as they are. Returns how many were added.
    pub async fn restore_decisions(&self, all: &[Decision]) -> Result<u64, DbError> {
        let mut c = self.client().await?;
        let t = c.transaction().await?;
        let mut n = 0;
        for d in all {
            n += t
                .execute(
                    "INSERT INTO request_decisions (request_id, status, decided_by, decided_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING",
                    &[&d.request_id, &d.status, &d.decided_by, &d.decided_at],
                )
                .await?;
        }
        t.commit().await?;
        Ok(n)
    }
}
