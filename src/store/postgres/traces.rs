//! X-Ray trace rows on PostgreSQL: the SQLite store's statements and decisions
//! (`crate::store::traces`); trace ids kept as text. A poll step commits its events first
//! (idempotent) and then its paths, trace states and checkpoint together, as on SQLite.

use super::PgStore;
use super::write::Fence;
use crate::model::Checkpoint;
use crate::store::portable::Conn;
use crate::store::traces::{
    AttributionRow, TraceIds, TraceRecord, TraceUpdate, attributions_and_states_in, count_pending_in, pending_traces_in, purge_traces_in,
    trace_records_in,
};
use crate::store::{Batch, BatchOutcome, StoreError};
use std::collections::HashMap;

impl PgStore {
    /// The stored state of each of `ids` the store knows.
    pub async fn trace_records(&self, ids: &[String]) -> Result<HashMap<String, TraceRecord>, StoreError> {
        trace_records_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), ids).await
    }

    /// The pending traces whose stored ids start with `prefix`, oldest first.
    pub async fn pending_traces_under(&self, prefix: &str) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        pending_traces_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), prefix).await
    }

    /// Commits one X-Ray poll step (under `fence` when given): the events first, then the
    /// paths, trace states and checkpoint in one transaction that checks the fence again.
    pub async fn commit_traces(
        &self,
        batch: &Batch,
        attributions: &[AttributionRow],
        updates: &[TraceUpdate],
        checkpoint: Option<&Checkpoint>,
        fence: Option<&Fence>,
    ) -> Result<BatchOutcome, StoreError> {
        let outcome = if batch.is_empty() { BatchOutcome::default() } else { self.commit(batch, fence).await? };
        if attributions.is_empty() && updates.is_empty() && checkpoint.is_none() {
            return Ok(outcome);
        }
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            super::write::check_fence(&mut tx, f).await?;
        }
        attributions_and_states_in(&mut Conn::Postgres(&mut tx), TraceIds::Text, &batch.origin, attributions, updates, checkpoint, crate::clock::now_ms())
            .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Number of pending traces.
    pub async fn count_pending_traces(&self) -> Result<i64, StoreError> {
        count_pending_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?)).await
    }

    /// Deletes old attributions and finished trace states.
    pub async fn purge_traces_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        purge_traces_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), cutoff_ms).await
    }
}
