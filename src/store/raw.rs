//! SQLite's C API on a pooled connection taken out of sqlx's hands, for the two paths that
//! move a million rows: the write path (`commit`) and the scans behind reports and rollups.
//!
//! Why: sqlx runs each connection on a worker thread and hands every statement and every
//! row across a channel; at tens of thousands of rows a second the thread wake-ups cost
//! more than SQLite itself (a profile of the ingest bench spent a third of its time in
//! futex wake-ups). Here statements are prepared once and stepped directly. sqlx documents
//! the escape hatch (`SqliteConnection::lock_handle`): while the handle is locked its
//! worker makes no call on the connection. The functions are those sqlx's bundled SQLite
//! already links in.
//!
//! Every statement is finalized when its [`Stmt`] drops; a transaction left open by an
//! error is rolled back, and a connection SQLite would not roll back is closed rather than
//! returned to the pool. The blocking part runs under `block_in_place` on a multi-threaded
//! runtime; parallel scans run on scoped threads, one connection each. On a request's view
//! of the store ([`SqliteStore::for_request`]) every statement is watched by its
//! [`Interrupt`](super::interrupt::Interrupt): past the deadline, or once the request is
//! gone, SQLite stops stepping and the read fails with [`StoreError::Interrupted`].

use super::interrupt::{CHECK_EVERY_STEPS, Interrupt, progress_handler};
use super::{SqliteStore, StoreError};
use sqlx::SqliteConnection;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;

const SQLITE_OK: c_int = 0;
/// The progress handler stopped the statement.
const SQLITE_INTERRUPT: c_int = 9;
const SQLITE_ROW: c_int = 100;
const SQLITE_DONE: c_int = 101;
/// Primary result codes that mean the disk (or the filesystem under it) refused a write.
const SQLITE_IOERR: c_int = 10;
const SQLITE_FULL: c_int = 13;
/// `SQLITE_STATIC`: SQLite reads bound text in place. Safe here because a statement is only
/// stepped inside the call that bound it, and its bindings are cleared before it returns.
const SQLITE_STATIC: isize = 0;

unsafe extern "C" {
    fn sqlite3_prepare_v2(db: *mut c_void, sql: *const c_char, n: c_int, stmt: *mut *mut c_void, tail: *mut *const c_char) -> c_int;
    fn sqlite3_bind_int64(stmt: *mut c_void, i: c_int, v: i64) -> c_int;
    fn sqlite3_bind_double(stmt: *mut c_void, i: c_int, v: f64) -> c_int;
    fn sqlite3_bind_text(stmt: *mut c_void, i: c_int, v: *const c_char, n: c_int, destructor: isize) -> c_int;
    fn sqlite3_bind_null(stmt: *mut c_void, i: c_int) -> c_int;
    fn sqlite3_bind_blob(stmt: *mut c_void, i: c_int, v: *const c_void, n: c_int, destructor: isize) -> c_int;
    fn sqlite3_step(stmt: *mut c_void) -> c_int;
    fn sqlite3_reset(stmt: *mut c_void) -> c_int;
    fn sqlite3_clear_bindings(stmt: *mut c_void) -> c_int;
    fn sqlite3_column_double(stmt: *mut c_void, i: c_int) -> f64;
    fn sqlite3_column_int64(stmt: *mut c_void, i: c_int) -> i64;
    fn sqlite3_column_type(stmt: *mut c_void, i: c_int) -> c_int;
    fn sqlite3_column_blob(stmt: *mut c_void, i: c_int) -> *const u8;
    fn sqlite3_column_bytes(stmt: *mut c_void, i: c_int) -> c_int;
    fn sqlite3_finalize(stmt: *mut c_void) -> c_int;
    fn sqlite3_errmsg(db: *mut c_void) -> *const c_char;
    fn sqlite3_changes(db: *mut c_void) -> c_int;
    fn sqlite3_get_autocommit(db: *mut c_void) -> c_int;
    fn sqlite3_progress_handler(db: *mut c_void, steps: c_int, handler: Option<extern "C" fn(*mut c_void) -> c_int>, ctx: *mut c_void);
}

/// A parameter of a statement (`?1`, `?2`, ... in order).
#[derive(Debug, Clone, PartialEq)]
pub enum Bind<'a> {
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
    Null,
}

impl<'a> Bind<'a> {
    pub fn opt_text(v: &'a Option<String>) -> Bind<'a> {
        v.as_deref().map_or(Bind::Null, Bind::Text)
    }

    pub fn flag(v: bool) -> Bind<'a> {
        Bind::Int(i64::from(v))
    }
}

/// A connection's raw handle, usable while its sqlx lock is held.
pub struct RawConn {
    db: *mut c_void,
}

// SAFETY: a `RawConn` is used by one thread at a time (it is not `Sync`), while the sqlx
// lock keeps the connection's own worker away from it.
unsafe impl Send for RawConn {}

/// A prepared statement, finalized on drop.
pub struct Stmt<'c> {
    db: *mut c_void,
    stmt: *mut c_void,
    _conn: PhantomData<&'c RawConn>,
}

/// The current row of a query; valid only inside the callback.
pub struct Row<'s> {
    stmt: *mut c_void,
    _stmt: PhantomData<&'s ()>,
}

impl Row<'_> {
    /// A TEXT or BLOB column's bytes (empty for NULL).
    pub fn bytes(&self, i: usize) -> &[u8] {
        // SAFETY: the statement is positioned on a row for the callback's duration; blob is
        // called before bytes as SQLite requires; the pointer lives until the next step.
        unsafe {
            let p = sqlite3_column_blob(self.stmt, i as c_int);
            let n = sqlite3_column_bytes(self.stmt, i as c_int);
            if p.is_null() || n <= 0 { &[] } else { std::slice::from_raw_parts(p, n as usize) }
        }
    }

    /// A TEXT column (SQLite stores our text as UTF-8; anything else reads as lossy).
    pub fn text(&self, i: usize) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes(i))
    }

    pub fn f64(&self, i: usize) -> f64 {
        // SAFETY: as in `bytes`.
        unsafe { sqlite3_column_double(self.stmt, i as c_int) }
    }

    /// Whether the column holds an INTEGER (SQLite's storage class, not the declared type).
    pub fn is_int(&self, i: usize) -> bool {
        // SAFETY: as in `bytes`.
        unsafe { sqlite3_column_type(self.stmt, i as c_int) == 1 }
    }

    pub fn i64(&self, i: usize) -> i64 {
        // SAFETY: as in `bytes`.
        unsafe { sqlite3_column_int64(self.stmt, i as c_int) }
    }
}

fn error(what: &str, db: *mut c_void, rc: c_int) -> StoreError {
    // SAFETY: errmsg returns a NUL-terminated string owned by the connection.
    let msg = unsafe { CStr::from_ptr(sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    let e = sqlx::Error::Protocol(format!("{what} failed (code {rc}): {msg}"));
    match rc & 0xff {
        SQLITE_INTERRUPT => StoreError::Interrupted,
        SQLITE_FULL | SQLITE_IOERR => StoreError::DiskFull(e),
        _ => StoreError::Sql(e),
    }
}

impl RawConn {
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>, StoreError> {
        let sql = CString::new(sql).map_err(|_| StoreError::Sql(sqlx::Error::Protocol("NUL in SQL".into())))?;
        let mut stmt: *mut c_void = std::ptr::null_mut();
        // SAFETY: `db` is an open connection this thread holds; on failure `stmt` is NULL or
        // a statement that must be finalized, which finalize accepts either way.
        let rc = unsafe { sqlite3_prepare_v2(self.db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
        if rc != SQLITE_OK {
            let e = error("prepare", self.db, rc);
            // SAFETY: as above.
            unsafe { sqlite3_finalize(stmt) };
            return Err(e);
        }
        Ok(Stmt { db: self.db, stmt, _conn: PhantomData })
    }

    /// Runs `sql` once; returns the rows it changed.
    pub fn execute(&self, sql: &str, binds: &[Bind<'_>]) -> Result<u64, StoreError> {
        self.prepare(sql)?.execute(binds)
    }

    /// Runs `sql` and calls `f` on every row; returns the number of rows.
    pub fn query(&self, sql: &str, binds: &[Bind<'_>], f: impl FnMut(&Row<'_>)) -> Result<u64, StoreError> {
        self.prepare(sql)?.query(binds, f)
    }

    pub fn in_transaction(&self) -> bool {
        // SAFETY: a plain read of the connection's state.
        unsafe { sqlite3_get_autocommit(self.db) == 0 }
    }

    /// Runs `f` inside `BEGIN IMMEDIATE` … `COMMIT` (the write lock is taken up front, so a
    /// busy database waits on the busy timeout instead of failing at the first write); rolls
    /// back on any error.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&mut RawConn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.execute("BEGIN IMMEDIATE", &[])?;
        let result = f(self).and_then(|v| self.execute("COMMIT", &[]).map(|_| v));
        if result.is_err() && self.in_transaction() {
            // SQLite may have rolled back already (SQLITE_FULL does); a failure here is
            // caught by the caller's `in_transaction` check.
            let _ = self.execute("ROLLBACK", &[]);
        }
        result
    }
}

impl Stmt<'_> {
    fn bind(&mut self, binds: &[Bind<'_>]) -> Result<(), StoreError> {
        // SAFETY: the statement is live; bound text outlives every step of this call (see
        // SQLITE_STATIC).
        unsafe {
            sqlite3_reset(self.stmt);
            sqlite3_clear_bindings(self.stmt);
            for (k, b) in binds.iter().enumerate() {
                let i = k as c_int + 1;
                let rc = match b {
                    Bind::Int(v) => sqlite3_bind_int64(self.stmt, i, *v),
                    Bind::Real(v) => sqlite3_bind_double(self.stmt, i, *v),
                    Bind::Text(s) => sqlite3_bind_text(self.stmt, i, s.as_ptr() as *const c_char, s.len() as c_int, SQLITE_STATIC),
                    Bind::Blob(b) => sqlite3_bind_blob(self.stmt, i, b.as_ptr() as *const c_void, b.len() as c_int, SQLITE_STATIC),
                    Bind::Null => sqlite3_bind_null(self.stmt, i),
                };
                if rc != SQLITE_OK {
                    let e = error("bind", self.db, rc);
                    self.release();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Binds and runs the statement to completion (rows it returns are skipped); returns
    /// the rows it changed. The statement can be run again with new parameters.
    pub fn execute(&mut self, binds: &[Bind<'_>]) -> Result<u64, StoreError> {
        self.query(binds, |_| {})?;
        // SAFETY: a plain read of the connection's state.
        Ok(unsafe { sqlite3_changes(self.db) }.max(0) as u64)
    }

    /// Binds, runs and calls `f` on every row; returns the number of rows.
    pub fn query(&mut self, binds: &[Bind<'_>], mut f: impl FnMut(&Row<'_>)) -> Result<u64, StoreError> {
        self.bind(binds)?;
        let row = Row { stmt: self.stmt, _stmt: PhantomData };
        let mut n = 0u64;
        loop {
            // SAFETY: the statement is live and bound.
            match unsafe { sqlite3_step(self.stmt) } {
                SQLITE_ROW => {
                    f(&row);
                    n += 1;
                }
                SQLITE_DONE => break,
                rc => {
                    let e = error("step", self.db, rc);
                    self.release();
                    return Err(e);
                }
            }
        }
        self.release();
        Ok(n)
    }

    /// Ends a run: releases the statement's read snapshot and drops its references to the
    /// caller's bound text.
    fn release(&mut self) {
        // SAFETY: the statement is live.
        unsafe {
            sqlite3_reset(self.stmt);
            sqlite3_clear_bindings(self.stmt);
        }
    }
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and dropped once.
        unsafe { sqlite3_finalize(self.stmt) };
    }
}

/// Runs a store view's blocking work: a request's on a thread of its own at a lower
/// priority (so a burst of reports never competes evenly with ingestion and `/healthz`),
/// the daemon's own in place.
fn blocking_for<T: Send>(store: &SqliteStore, f: impl FnOnce() -> T + Send) -> T {
    if store.interrupt().is_none() {
        return blocking(f);
    }
    blocking(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::priority::deprioritize_this_thread();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    })
}

/// Runs blocking work without stalling a multi-threaded runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    let multi = matches!(tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()), Ok(tokio::runtime::RuntimeFlavor::MultiThread));
    if multi { tokio::task::block_in_place(f) } else { f() }
}

/// A connection whose raw handle is locked out of sqlx.
async fn lock(conn: &mut SqliteConnection) -> Result<(sqlx::sqlite::LockedSqliteHandle<'_>, RawConn), StoreError> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr() as *mut c_void;
    Ok((handle, RawConn { db }))
}

/// Whether SQLite holds a transaction open on `conn` (one begun through the raw handle and
/// cut short, e.g. by a panic): such a connection must not go back to the pool.
pub(crate) async fn transaction_left_open(conn: &mut SqliteConnection) -> bool {
    lock(conn).await.map_or(true, |(_handle, raw)| raw.in_transaction())
}

/// A connection's statements watched by an interrupt until this drops.
struct Watch {
    db: *mut c_void,
    _interrupt: Interrupt,
}

impl Watch {
    fn install(raw: &RawConn, interrupt: &Interrupt) -> Watch {
        // SAFETY: `raw.db` is open and held by this thread; the context pointer stays valid
        // while the handler is installed, as `_interrupt` keeps the state alive until drop.
        unsafe { sqlite3_progress_handler(raw.db, CHECK_EVERY_STEPS, Some(progress_handler), interrupt.as_ctx()) };
        Watch { db: raw.db, _interrupt: interrupt.clone() }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: the connection outlives the watch (both live inside one call on the
        // thread holding it); the handler goes before the interrupt it points to.
        unsafe { sqlite3_progress_handler(self.db, 0, None, std::ptr::null_mut()) };
    }
}

/// Runs `f` on `raw`, watched by the store view's interrupt if it has one.
fn watched<T>(store: &SqliteStore, raw: &mut RawConn, f: impl FnOnce(&mut RawConn) -> Result<T, StoreError>) -> Result<T, StoreError> {
    match store.interrupt() {
        None => f(raw),
        Some(i) if i.fired() => Err(StoreError::Interrupted),
        Some(i) => {
            let _watch = Watch::install(raw, i);
            f(raw)
        }
    }
}

/// Runs `f` on one pooled connection's raw handle. A transaction `f` leaves open (one
/// SQLite would not roll back, or a panic) is caught by the pool's release check
/// ([`transaction_left_open`]), which closes the connection.
pub async fn with_conn<T: Send>(store: &SqliteStore, f: impl FnOnce(&mut RawConn) -> Result<T, StoreError> + Send) -> Result<T, StoreError> {
    let mut conn = store.pool().acquire().await?;
    let (_handle, mut raw) = lock(&mut conn).await?;
    blocking_for(store, || watched(store, &mut raw, f))
}

/// Runs `sql` with `binds` on a pooled connection and calls `f` on every row; returns the
/// number of rows.
pub async fn scan(store: &SqliteStore, sql: &str, binds: &[Bind<'_>], f: impl FnMut(&Row<'_>) + Send) -> Result<u64, StoreError> {
    with_conn(store, |c| c.query(sql, binds, f)).await
}

/// Runs one `f(i, conn)` per part on its own pooled connection and thread, for reads that
/// split into independent ranges; results in part order. Asks for up to `parts`
/// connections but waits only for the first: the others are those the pool has free, so
/// concurrent callers never hold some connections while waiting for more. Returns the
/// number of parts actually run through `f` (`f(i, …)` for `i < n`), and their results.
pub async fn parallel<T: Send>(
    store: &SqliteStore,
    parts: usize,
    f: impl Fn(usize, usize, &mut RawConn) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    // How long an extra connection is waited for: opening one takes a millisecond or so.
    const EXTRA_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
    let pool = store.pool();
    let mut conns = Vec::with_capacity(parts);
    conns.push(pool.acquire().await?);
    while conns.len() < parts {
        let room = pool.num_idle() > 0 || pool.size() < pool.options().get_max_connections();
        match tokio::time::timeout(EXTRA_WAIT, pool.acquire()).await {
            Ok(Ok(c)) if room => conns.push(c),
            _ => break,
        }
    }
    let n = conns.len();
    let mut locked = Vec::with_capacity(n);
    for c in &mut conns {
        locked.push(lock(c).await?);
    }
    let results: Vec<Result<T, StoreError>> = blocking(|| {
        std::thread::scope(|s| {
            let f = &f;
            let request = store.interrupt().is_some();
            let handles: Vec<_> = locked
                .iter_mut()
                .enumerate()
                .map(|(i, (_, raw))| {
                    s.spawn(move || {
                        if request {
                            crate::priority::deprioritize_this_thread();
                        }
                        watched(store, raw, |raw| f(i, n, raw))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(StoreError::Sql(sqlx::Error::Protocol("a scan thread panicked".into())))))
                .collect()
        })
    });
    drop(locked);
    results.into_iter().collect()
}

/// A read that would step for ever (a recursive count to 10^15), for tests of what stops
/// reads: it ends only when interrupted.
#[cfg(test)]
pub(crate) async fn endless_read(store: &SqliteStore) -> Result<u64, StoreError> {
    scan(store, ENDLESS, &[], |_| {}).await
}

#[cfg(test)]
const ENDLESS: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000000) SELECT COUNT(*) FROM c";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_rows_binds_and_reports_errors() {
        let store = SqliteStore::open_memory().await.unwrap();
        let mut got = Vec::new();
        let n = with_conn(&store, |c| {
            c.query("SELECT ?1 + 1, ?2 || 'x', ?3 * 2, ?4", &[Bind::Int(41), Bind::Text("é"), Bind::Real(1.5), Bind::Null], |r| {
                got.push((r.i64(0), r.text(1).into_owned(), r.f64(2), r.bytes(3).len()))
            })
        })
        .await
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(got, [(42, "éx".to_string(), 3.0, 0)]);
        let e = with_conn(&store, |c| c.query("SELECT * FROM no_such_table", &[], |_| {})).await.unwrap_err();
        assert!(e.to_string().contains("no such table"), "{e}");
        // The connection is usable through sqlx afterwards.
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_transaction_leaves_nothing_and_no_open_transaction() {
        let store = SqliteStore::open_memory().await.unwrap();
        let e = with_conn(&store, |c| {
            c.transaction(|c| {
                let mut stmt = c.prepare("INSERT INTO checkpoints (source, key, position_ms, updated_ms) VALUES (?1, ?2, 1, 1)")?;
                assert_eq!(stmt.execute(&[Bind::Text("logs"), Bind::Text("a")])?, 1);
                assert_eq!(stmt.execute(&[Bind::Text("logs"), Bind::Text("b")])?, 1);
                stmt.execute(&[Bind::Text("logs"), Bind::Text("a")])
            })
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("UNIQUE"), "{e}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkpoints").fetch_one(store.pool()).await.unwrap();
        assert_eq!(n, 0);
        let n = with_conn(&store, |c| c.transaction(|c| c.execute("INSERT INTO checkpoints VALUES ('x', 'y', 1, NULL, 1)", &[]))).await;
        assert_eq!(n.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_inside_a_raw_transaction_does_not_leak_it_into_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let s = store.clone();
        let r = tokio::spawn(async move {
            with_conn(&s, |c| -> Result<(), StoreError> {
                c.execute("BEGIN IMMEDIATE", &[])?;
                panic!("cut short");
            })
            .await
        })
        .await;
        assert!(r.is_err());
        // Every pooled connection can write again: none is inside a transaction or holds
        // the write lock (the busy timeout would turn that into an error).
        let checkpoint = |k: &str| crate::model::Checkpoint { source: "logs".into(), key: k.into(), position_ms: 1, state: None };
        for k in ["a", "b", "c", "d", "e"] {
            store.commit(&crate::store::Batch { checkpoints: vec![checkpoint(k)], ..Default::default() }).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_view_stops_reading_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("i.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let started = std::time::Instant::now();
        let (view, _guard) = store.for_request(started + std::time::Duration::from_millis(300));
        let e = scan(&view, ENDLESS, &[], |_| {}).await.unwrap_err();
        assert!(matches!(e, StoreError::Interrupted), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "stopped after {:?}", started.elapsed());
        // The same in parallel slices; and the connections are usable afterwards.
        let (view, _guard) = store.for_request(std::time::Instant::now() + std::time::Duration::from_millis(300));
        let e = parallel(&view, 2, |_, _, c| c.query(ENDLESS, &[], |_| {})).await.unwrap_err();
        assert!(matches!(e, StoreError::Interrupted), "{e}");
        let (view, _guard) = store.for_request(std::time::Instant::now() + std::time::Duration::from_secs(60));
        let mut n = 0;
        scan(&view, "SELECT 41 + 1", &[], |r| n = r.i64(0)).await.unwrap();
        assert_eq!(n, 42);
        // A view reads, never writes.
        let e = with_conn(&view, |c| c.execute("INSERT INTO checkpoints VALUES ('x', 'y', 1, NULL, 1)", &[])).await.unwrap_err();
        assert!(e.to_string().contains("readonly") || e.to_string().contains("read-only") || e.to_string().contains("query_only"), "{e}");
        // The daemon's own connections are not watched.
        let mut n = 0;
        scan(&store, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT COUNT(*) FROM c", &[], |r| {
            n = r.i64(0)
        })
        .await
        .unwrap();
        assert_eq!(n, 100_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_guard_stops_a_running_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("i.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let (view, guard) = store.for_request(std::time::Instant::now() + std::time::Duration::from_secs(600));
        let read = tokio::spawn(async move { scan(&view, ENDLESS, &[], |_| {}).await });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let dropped = std::time::Instant::now();
        drop(guard);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), read).await.expect("the read stops").unwrap().unwrap_err();
        assert!(matches!(e, StoreError::Interrupted), "{e}");
        assert!(dropped.elapsed() < std::time::Duration::from_secs(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_parts_on_a_multi_threaded_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let sums = parallel(&store, 2, |i, _, c| {
            let mut sum = 0;
            c.query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) SELECT x FROM c",
                &[Bind::Int(1000 * (i as i64 + 1))],
                |r| sum += r.i64(0),
            )?;
            Ok(sum)
        })
        .await
        .unwrap();
        assert_eq!(sums, [500_500, 2_001_000]);
    }
}
