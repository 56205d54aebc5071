//! The PostgreSQL side of the store: one history shared by several daemons. Connecting
//! (the URL, a password kept out of it, a bounded pool), its own migrations
//! (`migrations/postgres/`, applied under sqlx's advisory lock, so two daemons starting at
//! once never race), and the lease table the daemons split the work with ([`leases`]).

mod baselines;
mod alerts;
mod attribution;
mod aliases;
mod published;
mod retention;
mod rollups;
mod scans;
mod size;
mod traces;
pub mod leases;
mod reads;
pub mod write;

use super::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The session lock `migrate` holds around reading and applying migrations.
const MIGRATE_LOCK: i64 = 0x5e47_1e17_0002;

/// The versions applied so far (none before the first run).
async fn applied_migrations(conn: &mut sqlx::PgConnection) -> Result<Vec<i64>, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *conn).await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version").fetch_all(&mut *conn).await?)
}

/// A connection pool to the shared database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Connections for HTTP requests: read-only, and every statement cancelled by the server
    /// at the request's time limit (see [`PgStore::limit_requests`]).
    readers: PgPool,
    rejected_max_bytes: usize,
}

/// How to reach the database.
#[derive(Clone, Copy)]
pub struct PgTarget<'a> {
    /// `postgres://user@host:port/database` (may carry a password; never logged).
    pub url: &'a str,
    /// Used when not empty; else the URL's or `PGPASSWORD`.
    pub password: &'a str,
    pub pool_size: u32,
    /// Raw text kept per rejected input, in bytes.
    pub rejected_max_bytes: usize,
    /// Longest wait for a connection (a database that is down fails calls after this, it
    /// does not hang them).
    pub connect_timeout: Duration,
}

impl PgStore {
    /// Connects (lazily: a database that is down now is retried by each call) and checks
    /// the URL's form.
    pub fn connect(target: PgTarget<'_>) -> Result<PgStore, StoreError> {
        let mut options = PgConnectOptions::from_str(target.url).map_err(|_| StoreError::BadUrl)?;
        if !target.password.is_empty() {
            options = options.password(target.password);
        }
        let options = options.application_name("latency-sentinel");
        let pool = PgPoolOptions::new().max_connections(target.pool_size.max(1)).acquire_timeout(target.connect_timeout).connect_lazy_with(options.clone());
        let readers = reader_pool(&options, target.pool_size, target.connect_timeout, DEFAULT_REQUEST_LIMIT);
        Ok(PgStore { pool, readers, rejected_max_bytes: target.rejected_max_bytes })
    }

    /// Requests' statements are cancelled by the server after `limit` (the HTTP request
    /// timeout): a request that gave up leaves no query running behind it.
    pub fn limit_requests(mut self, limit: Duration) -> PgStore {
        let options = (*self.pool.connect_options()).clone();
        let size = self.pool.options().get_max_connections();
        let acquire = self.pool.options().get_acquire_timeout();
        self.readers = reader_pool(&options, size, acquire, limit);
        self
    }

    /// The view a request reads through (see [`PgStore::limit_requests`]).
    pub fn for_request(&self) -> PgStore {
        PgStore { pool: self.readers.clone(), ..self.clone() }
    }

    /// Applies the migrations not applied yet, on one connection holding a session lock
    /// (a second daemon starting meanwhile waits, then finds nothing to do). Returns the
    /// versions this call applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATE_LOCK).execute(&mut *conn).await?;
        let outcome = async {
            let before = applied_migrations(&mut conn).await?;
            MIGRATOR.run(&mut *conn).await?;
            let after = applied_migrations(&mut conn).await?;
            Ok::<_, StoreError>(after.into_iter().filter(|v| !before.contains(v)).collect())
        }
        .await;
        // Released on this connection (a session lock outlives transactions).
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATE_LOCK).execute(&mut *conn).await?;
        outcome
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.readers.close().await;
    }

    /// One round trip: whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// How long a request's statement may run when the daemon has not said (reports and tools).
const DEFAULT_REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// A lazy pool of read-only connections whose statements the server cancels after `limit`.
fn reader_pool(options: &PgConnectOptions, size: u32, acquire: Duration, limit: Duration) -> PgPool {
    let ms = limit.as_millis().clamp(1, i32::MAX as u128);
    let options = options.clone().options([("statement_timeout", ms.to_string()), ("default_transaction_read_only", "on".to_string())]);
    PgPoolOptions::new().max_connections(size.max(1)).acquire_timeout(acquire).connect_lazy_with(options)
}
