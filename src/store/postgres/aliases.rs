//! Alias history on PostgreSQL: the SQLite store's statements and decision
//! (`crate::store::aliases`), in a PostgreSQL transaction.

use super::PgStore;
use crate::attribute::AliasHistory;
use crate::store::StoreError;
use crate::store::aliases::{alias_history_in, record_aliases_in};
use crate::store::portable::Conn;

impl PgStore {
    /// Records one ListAliases observation of `function` at `now_ms`.
    pub async fn record_aliases(&self, function: &str, routes: &[(String, String, f64)], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One recorder per function at a time, as SQLite's write lock gives.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(function).execute(&mut *tx).await?;
        record_aliases_in(&mut Conn::Postgres(&mut tx), function, routes, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The alias history of the functions stored under `prefix`, the prefix taken off.
    pub async fn alias_history_under(&self, prefix: &str) -> Result<AliasHistory, StoreError> {
        let mut conn = self.pool.acquire().await?;
        alias_history_in(&mut Conn::Postgres(&mut conn), prefix).await
    }
}
