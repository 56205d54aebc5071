//! How much disk the shared history takes, as PostgreSQL counts it: the database (its
//! tables, indexes and TOAST), and per table and index for measurements. PostgreSQL's
//! write-ahead log is the server's, shared by every database on it: not counted here.

use super::PgStore;
use crate::store::StoreError;
use crate::store::size::StorageSize;

impl PgStore {
    /// The database's size (`pg_database_size`); `free` and `wal` are 0 (space left by
    /// deletions is reused by the tables themselves; the WAL is the server's).
    pub async fn storage_size(&self) -> Result<StorageSize, StoreError> {
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&self.pool).await?;
        Ok(StorageSize { database: u64::try_from(bytes).unwrap_or(0), free: 0, wal: 0 })
    }

    /// Bytes per table and index of this schema, largest first.
    pub async fn storage_by_object(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') ORDER BY 2 DESC, 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(n, b)| (n, u64::try_from(b).unwrap_or(0))).collect())
    }

    /// Events stored (a count: for measurements, not a periodic metric).
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.count_events(None).await?).unwrap_or(0))
    }

}
