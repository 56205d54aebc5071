//! Baseline resets: from when an operation's learned baseline starts (`latency-sentinel
//! baseline reset`), per (function, operation), on either engine.

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, StoreError};

/// One reset: the operation of the function is judged only against events after `reset_ms`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaselineReset {
    pub function: String,
    pub operation: String,
    pub reset_ms: i64,
}

const UPSERT: &str = "INSERT INTO baseline_resets (function, operation, reset_ms) VALUES (?, ?, ?) \
                      ON CONFLICT (function, operation) DO UPDATE SET reset_ms = excluded.reset_ms";

pub(super) async fn reset_in(conn: &mut Conn<'_>, function: &str, operation: &str, at_ms: i64) -> Result<(), StoreError> {
    conn.execute(&Stmt::new(UPSERT, [Value::Text(function), Value::Text(operation), Value::Int(at_ms)])).await?;
    Ok(())
}

pub(super) async fn resets_in(conn: &mut Conn<'_>) -> Result<Vec<BaselineReset>, StoreError> {
    let rows: Vec<(String, String, i64)> = conn.fetch_all(&Stmt::new("SELECT function, operation, reset_ms FROM baseline_resets ORDER BY function, operation", [])).await?;
    Ok(rows.into_iter().map(|(function, operation, reset_ms)| BaselineReset { function, operation, reset_ms }).collect())
}

impl SqliteStore {
    pub async fn reset_baseline(&self, function: &str, operation: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        reset_in(&mut Conn::Sqlite(&mut conn), function, operation, at_ms).await
    }

    pub async fn baseline_resets(&self) -> Result<Vec<BaselineReset>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        resets_in(&mut Conn::Sqlite(&mut conn)).await
    }
}
