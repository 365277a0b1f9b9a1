//! The `leases` table: a named thing held by one gateway until an expiry
//! the holder keeps pushing forward, with a fencing token that grows with
//! every grant. The database's clock decides expiry, so gateways' clocks
//! do not have to agree.

use std::time::Duration;

use crate::{Db, DbError};

/// What asking for a lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Held now, with this token (new, or the holder's own lease again).
    Taken { token: i64 },
    /// Another holder has it, until `until` (RFC 3339, the database's
    /// clock).
    HeldBy { holder: String, until: String },
    /// Another holder had it and let it expire at `since`; not taken: that
    /// holder may still have what it was holding the lease for.
    Expired { holder: String, since: String },
}

/// The lease of live recording `recorder/id`.
pub fn live_name(recorder: &str, id: &str) -> String {
    format!("live {recorder}/{id}")
}

/// The lease of docked upload `recorder/id` (`uploads` finds it by this
/// name too).
pub fn upload_name(recorder: &str, id: &str) -> String {
    format!("upload {recorder}/{id}")
}

/// The lease of taking in a device the gateway reaches itself (an RTSP
/// camera it pulls, an SRT device it listens for): one gateway at a time.
pub fn ingest_name(device: &str) -> String {
    format!("ingest {device}")
}

fn secs(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl Db {
    /// Asks for lease `name` for `holder`, for `ttl`. A holder asking for
    /// its own lease again (a restarted gateway) gets it with a new token.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Grant, DbError> {
        let mut c = self.client().await?;
        let t = c.transaction().await?;
        let row = t
            .query_opt(
                "SELECT holder, expires_at > now(),
                        to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
                 FROM leases WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?;
        let token: i64 = match row {
            None => {
                let r = t
                    .query_opt(
                        "INSERT INTO leases (name, holder, token, expires_at)
                         VALUES ($1, $2, nextval('lease_tokens'), now() + make_interval(secs => $3))
                         ON CONFLICT (name) DO NOTHING RETURNING token",
                        &[&name, &holder, &secs(ttl)],
                    )
                    .await?;
                match r {
                    Some(r) => r.get(0),
                    // Granted to someone else since the SELECT.
                    None => {
                        drop(t);
                        return Box::pin(self.take_lease(name, holder, ttl)).await;
                    }
                }
            }
            Some(r) => {
                let (who, live, until): (String, bool, String) = (r.get(0), r.get(1), r.get(2));
                if who != holder {
                    return Ok(if live {
                        Grant::HeldBy { holder: who, until }
                    } else {
                        Grant::Expired {
                            holder: who,
                            since: until,
                        }
                    });
                }
                t.query_one(
                    "UPDATE leases SET token = nextval('lease_tokens'),
                            expires_at = now() + make_interval(secs => $2)
                     WHERE name = $1 RETURNING token",
                    &[&name, &secs(ttl)],
                )
                .await?
                .get(0)
            }
        };
        t.commit().await?;
        Ok(Grant::Taken { token })
    }

    /// Takes over lease `name` from a holder that let it expire: granted
    /// to `holder` with a new token only if it is still expired (two
    /// gateways taking it over at once: one gets it). Only for what the
    /// old holder cannot have kept to itself — a docked upload, whose
    /// acknowledged bytes are all in storage.
    pub async fn take_over_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, DbError> {
        let r = self
            .client()
            .await?
            .query_opt(
                "UPDATE leases SET holder = $2, token = nextval('lease_tokens'),
                        expires_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND expires_at <= now() RETURNING token",
                &[&name, &holder, &secs(ttl)],
            )
            .await?;
        Ok(r.map(|r| r.get(0)))
    }

    /// Pushes the expiry of the lease held with `token` to `ttl` from now.
    /// False: the lease is no longer this token's (expired and taken).
    pub async fn renew_lease(
        &self,
        name: &str,
        token: i64,
        ttl: Duration,
    ) -> Result<bool, DbError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND token = $2",
                &[&name, &token, &secs(ttl)],
            )
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up (if `token` still holds it).
    pub async fn release_lease(&self, name: &str, token: i64) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM leases WHERE name = $1 AND token = $2",
                &[&name, &token],
            )
            .await?;
        Ok(())
    }

    /// Who holds lease `name`, with its token, if anyone does now.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, DbError> {
        let r = self
            .client()
            .await?
            .query_opt(
                "SELECT holder, token FROM leases WHERE name = $1 AND expires_at > now()",
                &[&name],
            )
            .await?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }
}
