//! PostgreSQL for cluster mode (`[cluster] database = "postgres://…"`):
//! what several gateways must share and storage cannot arbitrate (S3 here
//! has no conditional writes). A connection pool ([`Db`]), versioned
//! migrations (`migrations/`, applied at connect under an advisory lock so
//! that gateways starting together do not race), and one module per table:
//! [`catalog`], [`decisions`], [`gateways`], [`leases`], [`uploads`].
//!
//! Storage stays the source of truth: every table is derived data that
//! `custody index rebuild` makes again from storage (the manifests, the
//! records-office request documents).

pub mod catalog;
pub mod decisions;
pub mod gateways;
pub mod leases;
pub mod live;
pub mod uploads;

use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any number will do, as long as nothing else in the database uses it
/// ("custody" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_7573_746f_6479;
/// Connections one process keeps at most.
const POOL_SIZE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database address: {0}")]
    Address(String),
    #[error("database connection: {0}")]
    Connection(#[from] deadpool_postgres::PoolError),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database migration: {0}")]
    Migration(#[from] refinery::Error),
}

/// A pool of connections to the cluster's database.
#[derive(Clone)]
pub struct Db {
    pool: deadpool_postgres::Pool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Connects to `url` (`postgres://user@host:port/db`, or the key=value
    /// form) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::Address(e.to_string()))?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(5));
        }
        let manager = deadpool_postgres::Manager::from_config(
            cfg,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| DbError::Address(e.to_string()))?;
        let db = Db { pool };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut c = self.pool.get().await?;
        c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = embedded::migrations::runner().run_async(&mut **c).await;
        c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        for m in report?.applied_migrations() {
            tracing::info!("database: migration {} applied", m);
        }
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        Ok(self.pool.get().await?)
    }

    /// Waits for, then holds, the cluster-wide lock called `name` until the
    /// returned [`Held`] is dropped.
    pub async fn hold(&self, name: &str) -> Result<Held, DbError> {
        // A connection of its own, taken out of the pool: closing it on
        // drop releases the lock whatever happens to its holder (a
        // panicking task, a cancelled future), and no pooled connection is
        // ever handed on with a lock still held.
        let client = deadpool_postgres::Object::take(self.pool.get().await?);
        client
            .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&name])
            .await?;
        Ok(Held { _client: client })
    }
}

/// A cluster-wide lock ([`Db::hold`]); released when dropped (its
/// connection closes; a gateway that dies releases it the same way).
pub struct Held {
    _client: deadpool_postgres::ClientWrapper,
}
