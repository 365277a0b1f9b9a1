//! The `gateways` table: each gateway's command-center address for the
//! others, refreshed while it runs, so that the wall of any gateway can
//! show the live feeds another gateway receives.

use std::time::Duration;

use crate::{Db, DbError};

impl Db {
    /// Records that gateway `id` runs now, its command center at `http_addr`.
    pub async fn gateway_seen(&self, id: &str, http_addr: &str) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO gateways (id, http_addr, seen_at) VALUES ($1, $2, now())
                 ON CONFLICT (id) DO UPDATE SET http_addr = $2, seen_at = now()",
                &[&id, &http_addr],
            )
            .await?;
        Ok(())
    }

    /// The gateways seen within `within`, as `(id, http_addr)`, by id.
    pub async fn gateways_seen(&self, within: Duration) -> Result<Vec<(String, String)>, DbError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT id, http_addr FROM gateways
                 WHERE seen_at > now() - make_interval(secs => $1) ORDER BY id",
                &[&within.as_secs_f64()],
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}
