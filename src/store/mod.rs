//! The only owner of SQLite: opening (WAL, busy timeout, a lock so two daemons never share a
//! database), migrations, and the writes every source makes: events, the facts learned about
//! them later, rejected inputs, stream state and checkpoints, all in one transaction.
//! Retention lives in `retention.rs`; reads for reports and evaluation in their own modules.
//!
//! Two pools: the daemon's own connections (ingestion, evaluation, rollups, retention) and
//! read-only ones for requests. A request works on [`SqliteStore::for_request`]'s view, which
//! reads only through the latter and is interrupted at its deadline ([`interrupt`]), so no
//! burst of API calls can take the connections the writer and the evaluator need.

pub(crate) mod aliases;
pub mod alerts;
pub mod baselines;
mod engine;
pub mod attribution;
mod convert;
pub mod event_keys;
pub mod events;
pub mod interrupt;
pub mod pack;
pub mod portable;
pub mod postgres;
pub mod published;
pub mod raw;
pub mod retention;
pub mod rollups;
pub mod size;
pub mod traces;
mod varint;
mod write;

pub use write::{Annotation, Batch, BatchOutcome, NewReport, StreamStateRow};
pub use published::Destination;
pub use engine::Store;

use crate::model::Checkpoint;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The daemon's own connections: the writer, the evaluator, rollups, retention, and a
/// background WAL checkpoint can each have one.
const OWN_CONNECTIONS: u32 = 5;
/// Read-only connections shared by requests (a report scans with up to one per core).
const READ_CONNECTIONS: u32 = 4;

/// WAL size (4 KiB pages) at which a commit checkpoints by itself.
const WAL_BACKSTOP_PAGES: u32 = 16_384;

/// Errors the store reports; callers decide whether to retry (a full disk, a busy database)
/// or give up (a locked or corrupt database).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path} is in use by another latency-sentinel (lock file {lock} is held); stop it or point storage.path elsewhere")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("no database at {0} (has the daemon run with this storage.path?)")]
    Missing(PathBuf),
    #[error("cannot open lock file {path}: {source}")]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database's disk is full: {0}")]
    DiskFull(sqlx::Error),
    #[error("database error: {0}")]
    Sql(sqlx::Error),
    #[error("the read was stopped: the request ran out of time or its client went away")]
    Interrupted,
    /// A batch written under a lease its node no longer holds: nothing was written.
    #[error("the lease on {0} was lost; nothing was written (another node holds it now)")]
    LostLease(String),
    /// Never echoes the URL: it may hold a password.
    #[error("storage.url is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)")]
    BadUrl,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let full = match &e {
            sqlx::Error::Database(d) => {
                d.code().as_deref() == Some("13") || d.message().contains("disk is full") || d.message().contains("disk I/O error")
            }
            _ => false,
        };
        if full { StoreError::DiskFull(e) } else { StoreError::Sql(e) }
    }
}

impl StoreError {
    /// A short, bounded code for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Locked { .. } | StoreError::LockFile { .. } => "locked",
            StoreError::Missing(_) => "missing",
            StoreError::Migrate(_) => "migrate",
            StoreError::DiskFull(_) => "disk_full",
            StoreError::Sql(_) => "sql",
            StoreError::Interrupted => "interrupted",
            StoreError::BadUrl => "bad_url",
            StoreError::LostLease(_) => "lost_lease",
        }
    }
}

/// A source's position under `key` (either engine).
pub(crate) async fn checkpoint_in(conn: &mut portable::Conn<'_>, source: &str, key: &str) -> Result<Option<Checkpoint>, StoreError> {
    let stmt = portable::Stmt::new("SELECT position_ms, state FROM checkpoints WHERE source = ? AND key = ?", [portable::Value::Text(source), portable::Value::Text(key)]);
    let rows: Vec<(i64, Option<String>)> = conn.fetch_all(&stmt).await?;
    Ok(rows.into_iter().next().map(|(position_ms, state)| Checkpoint { source: source.to_string(), key: key.to_string(), position_ms, state }))
}

/// Every checkpoint of a source, by key (either engine).
pub(crate) async fn checkpoints_in(conn: &mut portable::Conn<'_>, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
    let stmt = portable::Stmt::new("SELECT key, position_ms, state FROM checkpoints WHERE source = ? ORDER BY key", [portable::Value::Text(source)]);
    let rows: Vec<(String, i64, Option<String>)> = conn.fetch_all(&stmt).await?;
    Ok(rows.into_iter().map(|(key, position_ms, state)| Checkpoint { source: source.to_string(), key, position_ms, state }).collect())
}

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The daemon (and `ingest`): takes the exclusive lock and applies migrations.
    Writer,
    /// Reports: no lock; the database must exist (migrations bring an older one up to date).
    Reader,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    /// The connections this view reads and writes through: the daemon's own, or on a
    /// request's view ([`SqliteStore::for_request`]) the read-only ones.
    pool: SqlitePool,
    /// Read-only connections for requests (the same pool as `pool` where there is only one:
    /// in memory, or a report opening the file read-only).
    readers: SqlitePool,
    /// Set on a request's view: its reads stop at the deadline or when it is cancelled.
    interrupt: Option<interrupt::Interrupt>,
    /// Held for the store's life: the OS releases it if the process dies, even by SIGKILL.
    _lock: Option<Arc<File>>,
    rejected_max_bytes: usize,
    /// Set while a background WAL checkpoint runs (see [`SqliteStore::checkpoint_in_background`]).
    checkpointing: Arc<AtomicBool>,
    /// The database file (none in memory): its WAL is measured beside it.
    path: Option<PathBuf>,
    /// The series dictionary as last read (see `SqliteStore::series_names`).
    series: Arc<std::sync::Mutex<Option<Arc<events::SeriesNames>>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &Path, mode: OpenMode, rejected_max_bytes: usize) -> Result<SqliteStore, StoreError> {
        // A report must not leave an empty database behind a mistyped path.
        if mode == OpenMode::Reader && !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let lock = match mode {
            OpenMode::Writer => Some(Arc::new(take_lock(path)?)),
            OpenMode::Reader => None,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run beside the writer (`checkpoint_in_background`); this is only the
            // backstop for a WAL that grows past 64 MB without one, e.g. with no runtime.
            .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string());
        let readers_options = options.clone().create_if_missing(false).pragma("query_only", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(OWN_CONNECTIONS)
            .min_connections(1)
            // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, IOERR,
            // BUSY, NOMEM); the ROLLBACK sqlx sends when the `Transaction` drops then fails
            // silently and sqlx still counts the connection as inside a transaction. Its next
            // `begin()` opens a SAVEPOINT instead, which a later failure leaves open with the
            // write lock held: every other writer got "database is locked" for good, long after
            // the disk had space again (tests/faults.rs, disk full). Such a connection is closed
            // on release (the pool opens a fresh one) instead of being reused.
            .after_release(|conn, _| {
                Box::pin(async move {
                    // A round trip, so the rollback queued by the dropped transaction has run.
                    conn.ping().await?;
                    // A raw transaction cut short (see `raw`) is invisible to sqlx.
                    Ok(!conn.is_in_transaction() && !raw::transaction_left_open(conn).await)
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let readers = match mode {
            // After the migrations: a reader connection never changes the schema.
            OpenMode::Writer => SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(readers_options)
                .await?,
            OpenMode::Reader => pool.clone(),
        };
        let store = SqliteStore {
            pool,
            readers,
            interrupt: None,
            _lock: lock,
            rejected_max_bytes,
            checkpointing: Arc::default(),
            path: Some(path.to_path_buf()),
            series: Arc::default(),
        };
        // Readers too: a report must not answer from half the events.
        let converted = convert::convert_old_events(&store).await?;
        if converted > 0 {
            tracing::info!(converted, "Moved the events written by an earlier version into the compact rows (once).");
        }
        Ok(store)
    }

    /// A database file as it is, read-only, neither migrated nor converted: for benchmarks
    /// that compare the schema of an earlier release with today's on the same events.
    pub async fn open_as_written(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?.filename(path).read_only(true);
        let pool = SqlitePoolOptions::new().max_connections(OWN_CONNECTIONS).connect_with(options).await?;
        Ok(SqliteStore { readers: pool.clone(), pool, interrupt: None, _lock: None, rejected_max_bytes: 4096, checkpointing: Arc::default(), path: None, series: Arc::default() })
    }

    /// An in-memory store for tests and benchmarks (one connection, so one database).
    pub async fn open_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { readers: pool.clone(), pool, interrupt: None, _lock: None, rejected_max_bytes: 4096, checkpointing: Arc::default(), path: None, series: Arc::default() })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A view for one request: it reads through the read-only connections and its reads
    /// stop at `deadline`, or as soon as the returned guard is dropped (the request's future
    /// went away). Writes through this view fail (the connections are `query_only`).
    pub fn for_request(&self, deadline: std::time::Instant) -> (SqliteStore, interrupt::CancelOnDrop) {
        let (interrupt, guard) = interrupt::Interrupt::new(deadline);
        let view = SqliteStore { pool: self.readers.clone(), interrupt: Some(interrupt), ..self.clone() };
        (view, guard)
    }

    /// The interrupt of a request's view.
    pub(crate) fn interrupt(&self) -> Option<&interrupt::Interrupt> {
        self.interrupt.as_ref()
    }

    /// A cheap query proving the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A source's position under `key`, if it has one.
    pub async fn checkpoint(&self, source: &str, key: &str) -> Result<Option<Checkpoint>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        checkpoint_in(&mut portable::Conn::Sqlite(&mut conn), source, key).await
    }

    /// Every checkpoint of a source (for `/readyz` and resuming).
    pub async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        checkpoints_in(&mut portable::Conn::Sqlite(&mut conn), source).await
    }

    /// The saved states of these streams of one log group (those that have one), by name.
    pub async fn stream_states_of(&self, log_group: &str, streams: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        // Bound parameters per statement stay far below SQLite's limit.
        for chunk in streams.chunks(500) {
            let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("?{i}")).collect();
            let sql = format!("SELECT stream, state FROM stream_state WHERE log_group = ?1 AND stream IN ({})", marks.join(", "));
            let mut binds = vec![raw::Bind::Text(log_group)];
            binds.extend(chunk.iter().map(|s| raw::Bind::Text(s)));
            raw::scan(self, &sql, &binds, |r| out.push((r.text(0).into_owned(), r.text(1).into_owned()))).await?;
        }
        Ok(out)
    }

    /// Number of stored events (optionally of one source); used by tests and `/api/v1/status`.
    /// A full count: on a request's view it is interrupted like any scan.
    pub async fn count_events(&self, source: Option<&str>) -> Result<i64, StoreError> {
        let mut n = 0;
        match source {
            Some(s) => raw::scan(self, "SELECT COUNT(*) FROM event_rows WHERE series IN (SELECT id FROM series WHERE source = ?1)", &[raw::Bind::Text(s)], |r| n = r.i64(0)).await?,
            None => raw::scan(self, "SELECT COUNT(*) FROM event_rows", &[], |r| n = r.i64(0)).await?,
        };
        Ok(n)
    }

    /// Copies committed WAL frames into the database file on a pooled connection of its own,
    /// unless a checkpoint is already running. SQLite's automatic checkpoint would do this
    /// work inside the commit that crosses its threshold — a fifth of the write path's time
    /// under sustained ingest — while here it runs on another core. A PASSIVE checkpoint
    /// never waits for or blocks the writer.
    pub(crate) fn checkpoint_in_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        runtime.spawn(async move {
            if let Err(e) = raw::with_conn(&store, |c| c.execute("PRAGMA wal_checkpoint(PASSIVE)", &[])).await {
                tracing::debug!(error = %e, "Background WAL checkpoint failed; the next commit tries again.");
            }
            store.checkpointing.store(false, Ordering::Release);
        });
    }

    /// Closes the pool, checkpointing the WAL so the file on disk is complete.
    pub async fn close(&self) {
        self.readers.close().await;
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await;
        self.pool.close().await;
    }
}

fn take_lock(db: &Path) -> Result<File, StoreError> {
    let mut lock_path = db.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::LockFile { path: lock_path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: db.to_path_buf(), lock: lock_path }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::LockFile { path: lock_path, source }),
    }
}
