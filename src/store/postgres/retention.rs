//! Retention on PostgreSQL: the SQLite store's bounds and batched deletes
//! (`store::retention`), rows named by `ctid`; events deleted by time in batches (the
//! block range index finds them).

use super::PgStore;
use crate::store::StoreError;
use crate::store::portable::Conn;
use crate::store::retention::{Purged, RetentionPlan, RowIds, delete_batches_in, purge_rest_in};

const POSTGRES_ROWS: RowIds = RowIds("ctid");

impl PgStore {
    /// Deletes events and rejected inputs with event time before `cutoff_ms`; returns how
    /// many rows went.
    pub async fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let c = &mut Conn::Postgres(&mut conn);
        let events = delete_batches_in(c, &POSTGRES_ROWS, "events", "time_ms < ?", cutoff_ms).await?;
        Ok(events + delete_batches_in(c, &POSTGRES_ROWS, "rejected", "time_ms < ? OR seen_ms < ?", cutoff_ms).await?)
    }

    /// One retention pass over every table the store bounds.
    pub async fn purge(&self, plan: &RetentionPlan) -> Result<Purged, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let c = &mut Conn::Postgres(&mut conn);
        let mut p = Purged { events: delete_batches_in(c, &POSTGRES_ROWS, "events", "time_ms < ?", plan.events_before_ms).await?, ..Purged::default() };
        purge_rest_in(c, &POSTGRES_ROWS, plan, &mut p).await?;
        Ok(p)
    }
}
