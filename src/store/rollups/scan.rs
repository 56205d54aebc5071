//! Fast reads for reports and rollups: one prepared statement stepped through SQLite's C API
//! on a connection locked out of sqlx's worker thread, each row handed to a callback.
//!
//! Why: sqlx sends every row through a channel to the async side, which costs about a
//! microsecond a row; a report over an hour of a busy application reads a million events.
//! Stepping the statement here costs what SQLite costs. sqlx documents this escape hatch
//! (`SqliteConnection::lock_handle`): while the handle is locked its worker makes no call
//! on the connection. The functions are the ones sqlx's bundled SQLite already links in.
//!
//! The statement runs to completion (or to its first error) and is always finalized before
//! the lock is released. On a multi-threaded runtime the scan runs under `block_in_place`.

use super::super::{Store, StoreError};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;

const SQLITE_OK: c_int = 0;
const SQLITE_ROW: c_int = 100;
const SQLITE_DONE: c_int = 101;
/// `SQLITE_TRANSIENT`: SQLite copies bound text before `bind` returns.
const SQLITE_TRANSIENT: isize = -1;

unsafe extern "C" {
    fn sqlite3_prepare_v2(db: *mut c_void, sql: *const c_char, n: c_int, stmt: *mut *mut c_void, tail: *mut *const c_char) -> c_int;
    fn sqlite3_bind_int64(stmt: *mut c_void, i: c_int, v: i64) -> c_int;
    fn sqlite3_bind_double(stmt: *mut c_void, i: c_int, v: f64) -> c_int;
    fn sqlite3_bind_text(stmt: *mut c_void, i: c_int, v: *const c_char, n: c_int, destructor: isize) -> c_int;
    fn sqlite3_step(stmt: *mut c_void) -> c_int;
    fn sqlite3_column_double(stmt: *mut c_void, i: c_int) -> f64;
    fn sqlite3_column_int64(stmt: *mut c_void, i: c_int) -> i64;
    fn sqlite3_column_blob(stmt: *mut c_void, i: c_int) -> *const u8;
    fn sqlite3_column_bytes(stmt: *mut c_void, i: c_int) -> c_int;
    fn sqlite3_finalize(stmt: *mut c_void) -> c_int;
    fn sqlite3_errmsg(db: *mut c_void) -> *const c_char;
}

/// A parameter of a scan's statement (`?1`, `?2`, ... in order).
#[derive(Debug, Clone, PartialEq)]
pub enum Bind<'a> {
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// The current row of a scan; valid only inside the callback.
pub struct Row<'s> {
    stmt: *mut c_void,
    _scan: PhantomData<&'s ()>,
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

    pub fn i64(&self, i: usize) -> i64 {
        // SAFETY: as in `bytes`.
        unsafe { sqlite3_column_int64(self.stmt, i as c_int) }
    }
}

fn error(what: &str, db: *mut c_void, rc: c_int) -> StoreError {
    // SAFETY: errmsg returns a NUL-terminated string owned by the connection.
    let msg = unsafe { CStr::from_ptr(sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    StoreError::Sql(sqlx::Error::Protocol(format!("{what} failed (code {rc}): {msg}")))
}

/// Runs `sql` with `binds` and calls `f` on every row; returns the number of rows.
pub async fn scan(store: &Store, sql: &str, binds: &[Bind<'_>], mut f: impl FnMut(&Row<'_>)) -> Result<u64, StoreError> {
    let sql = CString::new(sql).map_err(|_| StoreError::Sql(sqlx::Error::Protocol("NUL in SQL".into())))?;
    let mut conn = store.pool().acquire().await?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr() as *mut c_void;
    let mut run = move || -> Result<u64, StoreError> {
        let mut stmt: *mut c_void = std::ptr::null_mut();
        // SAFETY: `db` is locked away from sqlx's worker for the whole closure; `stmt` is
        // finalized on every path below; bound text is copied (SQLITE_TRANSIENT).
        unsafe {
            let rc = sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut());
            if rc != SQLITE_OK {
                sqlite3_finalize(stmt);
                return Err(error("prepare", db, rc));
            }
            for (k, b) in binds.iter().enumerate() {
                let i = k as c_int + 1;
                let rc = match b {
                    Bind::Int(v) => sqlite3_bind_int64(stmt, i, *v),
                    Bind::Real(v) => sqlite3_bind_double(stmt, i, *v),
                    Bind::Text(s) => sqlite3_bind_text(stmt, i, s.as_ptr() as *const c_char, s.len() as c_int, SQLITE_TRANSIENT),
                };
                if rc != SQLITE_OK {
                    let e = error("bind", db, rc);
                    sqlite3_finalize(stmt);
                    return Err(e);
                }
            }
            let row = Row { stmt, _scan: PhantomData };
            let mut n = 0u64;
            loop {
                match sqlite3_step(stmt) {
                    SQLITE_ROW => {
                        f(&row);
                        n += 1;
                    }
                    SQLITE_DONE => break,
                    rc => {
                        let e = error("step", db, rc);
                        sqlite3_finalize(stmt);
                        return Err(e);
                    }
                }
            }
            sqlite3_finalize(stmt);
            Ok(n)
        }
    };
    let multi = matches!(tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()), Ok(tokio::runtime::RuntimeFlavor::MultiThread));
    if multi { tokio::task::block_in_place(run) } else { run() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_rows_binds_and_reports_errors() {
        let store = Store::open_memory().await.unwrap();
        let mut got = Vec::new();
        let n = scan(&store, "SELECT ?1 + 1, ?2 || 'x', ?3 * 2, NULL", &[Bind::Int(41), Bind::Text("é"), Bind::Real(1.5)], |r| {
            got.push((r.i64(0), r.text(1).into_owned(), r.f64(2), r.bytes(3).len()))
        })
        .await
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(got, [(42, "éx".to_string(), 3.0, 0)]);
        let e = scan(&store, "SELECT * FROM no_such_table", &[], |_| {}).await.unwrap_err();
        assert!(e.to_string().contains("no such table"), "{e}");
        // The connection is usable through sqlx afterwards.
        store.ping().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_on_a_multi_threaded_runtime() {
        let store = Store::open_memory().await.unwrap();
        let mut sum = 0;
        scan(&store, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c", &[], |r| {
            sum += r.i64(0)
        })
        .await
        .unwrap();
        assert_eq!(sum, 500_500);
    }
}
