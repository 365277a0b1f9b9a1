//! Leases in cluster mode: a live recording is written to storage by the
//! one gateway holding its lease in the cluster's database
//! (`custody_db::leases`). A held [`Lease`] renews itself every third of
//! its time to live; if a renewal finds the lease no longer its own (its row
//! removed, or granted again to a second process with the same gateway
//! id), [`Lease::lost`] fires and the holder stops writing. An expired
//! lease is taken over by another gateway only where the old holder
//! acknowledged nothing beyond what storage holds (a docked upload, a live
//! recording in cluster mode: `take_upload`, `take_live`). Dropping it
//! gives it up.

use std::sync::Arc;
use std::time::Duration;

use custody_db::Db;
use custody_db::leases::Grant;
use tokio_util::sync::CancellationToken;

/// This gateway's side of the lease table.
pub struct Leases {
    db: Db,
    metrics: Arc<crate::metrics::Metrics>,
    /// The gateway id: who holds what.
    holder: String,
    ttl: Duration,
}

/// Why a lease was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("held by gateway {holder} until {until}")]
    HeldBy { holder: String, until: String },
    #[error("held by gateway {holder} until it stopped renewing at {since}")]
    Abandoned { holder: String, since: String },
    #[error("cluster database: {0}")]
    Db(#[from] custody_db::DbError),
}

impl Leases {
    pub fn new(
        db: Db,
        holder: &str,
        ttl: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Leases> {
        Arc::new(Leases {
            db,
            metrics,
            holder: holder.to_string(),
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease of live recording `recorder/id`.
    pub fn live_name(recorder: &str, id: &str) -> String {
        custody_db::leases::live_name(recorder, id)
    }

    /// The lease of docked upload `recorder/id` (cluster mode).
    pub fn upload_name(recorder: &str, id: &str) -> String {
        custody_db::leases::upload_name(recorder, id)
    }

    /// The lease of taking in device `device` over RTSP or SRT.
    pub fn ingest_name(device: &str) -> String {
        custody_db::leases::ingest_name(device)
    }

    /// Takes the lease of taking in a device, taking it over from a holder
    /// that let it expire: it stopped pulling or listening by then, and
    /// what it received is in its own recording.
    pub async fn take_ingest(self: &Arc<Self>, name: &str) -> Result<Lease, LeaseError> {
        self.take_or_take_over(name, "a device ingest's").await
    }

    /// Takes the lease of a docked upload, taking it over from a holder
    /// that let it expire (it died or lost the database): every byte it
    /// acknowledged is staged in storage, so nothing of it is lost.
    pub async fn take_upload(self: &Arc<Self>, name: &str) -> Result<Lease, LeaseError> {
        self.take_or_take_over(name, "a docked upload's").await
    }

    /// Takes the lease of a live recording, taking it over from a holder
    /// that let it expire: in cluster mode everything it acknowledged is
    /// in the journal in storage, which the new holder continues.
    pub async fn take_live(self: &Arc<Self>, name: &str) -> Result<Lease, LeaseError> {
        self.take_or_take_over(name, "a live recording's").await
    }

    async fn take_or_take_over(
        self: &Arc<Self>,
        name: &str,
        whose: &str,
    ) -> Result<Lease, LeaseError> {
        match self.take(name).await {
            Err(LeaseError::Abandoned { holder, since }) => {
                match self
                    .db
                    .take_over_lease(name, &self.holder, self.ttl)
                    .await?
                {
                    Some(token) => {
                        tracing::info!(lease = %name, from = %holder, %since, token, "took over {whose} expired lease");
                        self.metrics.lease_taken_over();
                        Ok(Lease::start(self.clone(), name.to_string(), token))
                    }
                    // Taken over by another gateway since.
                    None => Box::pin(self.take(name)).await,
                }
            }
            r => r,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Takes lease `name` (again, if this gateway held it before). An
    /// abandoned lease is not taken over: its holder's spool has bytes
    /// this gateway does not.
    pub async fn take(self: &Arc<Self>, name: &str) -> Result<Lease, LeaseError> {
        match self.db.take_lease(name, &self.holder, self.ttl).await? {
            Grant::Taken { token } => Ok(Lease::start(self.clone(), name.to_string(), token)),
            Grant::HeldBy { holder, until } => Err(LeaseError::HeldBy { holder, until }),
            Grant::Expired { holder, since } => Err(LeaseError::Abandoned { holder, since }),
        }
    }
}

/// A lease this gateway holds; given up when dropped.
pub struct Lease {
    leases: Arc<Leases>,
    name: String,
    token: i64,
    lost: CancellationToken,
    stop: CancellationToken,
    _held: crate::metrics::Open,
}

impl Lease {
    fn start(leases: Arc<Leases>, name: String, token: i64) -> Lease {
        let (lost, stop) = (CancellationToken::new(), CancellationToken::new());
        let (l, n, lo, st) = (leases.clone(), name.clone(), lost.clone(), stop.clone());
        tokio::spawn(async move {
            let every = l.ttl / 3;
            // Past this, another gateway may take the lease over: stop
            // writing by then, even if the database cannot say so (a
            // gateway cut off from it). A renewal moves it on from when
            // it was sent; a tenth of the lease is left as margin.
            let mut deadline = tokio::time::Instant::now() + l.ttl * 9 / 10;
            loop {
                let wake = (tokio::time::Instant::now() + every).min(deadline);
                tokio::select! {
                    _ = st.cancelled() => return,
                    _ = tokio::time::sleep_until(wake) => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::error!(lease = %n, token, "lease expired without a renewal (the cluster database was not reached): it stops writing that recording");
                    l.metrics.lease_lost();
                    lo.cancel();
                    return;
                }
                let sent = tokio::time::Instant::now();
                match l.db.renew_lease(&n, token, l.ttl).await {
                    Ok(true) => deadline = sent + l.ttl * 9 / 10,
                    Ok(false) => {
                        tracing::error!(lease = %n, token, "lease lost: no longer this process's; it stops writing that recording");
                        l.metrics.lease_lost();
                        lo.cancel();
                        return;
                    }
                    // The database unreachable: try again at the next
                    // beat, until the deadline.
                    Err(e) => tracing::warn!(lease = %n, "lease not renewed: {e}"),
                }
            }
        });
        Lease {
            _held: leases.metrics.lease_held(),
            leases,
            name,
            token,
            lost,
            stop,
        }
    }

    /// Fires when a renewal finds the lease no longer this one's.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    pub fn token(&self) -> i64 {
        self.token
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks the lease lost (a fenced write found it taken over).
    pub fn mark_lost(&self) {
        if !self.lost.is_cancelled() {
            self.leases.metrics.lease_lost();
            self.lost.cancel();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
        let (l, n, t) = (self.leases.clone(), self.name.clone(), self.token);
        // Given up in the background; if that fails the lease expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = l.db.release_lease(&n, t).await {
                    tracing::warn!(lease = %n, "lease not given up (it will expire): {e}");
                }
            });
        }
    }
}
