//! Retention: raw events and rejected inputs older than `storage.retention` are deleted in
//! small batches, each its own short transaction, so ingestion is never blocked for long.

use super::{Store, StoreError};

/// Rows deleted per statement.
const DELETE_BATCH: i64 = 5_000;

impl Store {
    /// Deletes events and rejected inputs with event time before `cutoff_ms`; returns how
    /// many rows went. Yields between batches.
    pub async fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        for (table, column) in [("events", "time_ms"), ("rejected", "time_ms")] {
            let sql = format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < ? LIMIT {DELETE_BATCH})"
            );
            loop {
                let n = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(cutoff_ms).execute(&self.pool).await?.rows_affected();
                total += n;
                if n < DELETE_BATCH as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Source, TimingEvent};
    use crate::store::{Batch, Store};

    #[tokio::test]
    async fn purge_removes_only_old_events() {
        let store = Store::open_memory().await.unwrap();
        let events = (0..12_000)
            .map(|i| TimingEvent {
                time_ms: i,
                env: "PROD".into(),
                function: "f".into(),
                operation: "op".into(),
                source: Source::Logs,
                duration_s: 0.1,
                request_id: None,
                trace_id: None,
                function_version: None,
                cold_start: false,
                error: false,
                idem_key: format!("k{i}"),
                attributes: vec![],
            })
            .collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        assert_eq!(store.purge_before(11_000).await.unwrap(), 11_000);
        assert_eq!(store.count_events(None).await.unwrap(), 1_000);
    }
}
