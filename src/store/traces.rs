//! X-Ray trace rows: which traces are still pending (and how often they were fetched), which
//! are done, and each complete trace's critical-path attribution.
//!
//! A poll step commits in two transactions: first the events and rejected documents
//! (`Store::commit`, idempotent by key), then the attributions (an idempotent upsert), the
//! trace states and the checkpoint together. A crash between the two leaves the checkpoint
//! and the trace states where they were, so the next poll fetches the same traces again and
//! re-inserting their events is a no-op: nothing is lost and nothing is stored twice.

use super::event_keys::trace_id_bytes;
use super::varint::encode_varints;
use super::{Batch, BatchOutcome, Store, StoreError};
use crate::clock::now_ms;
use crate::model::Checkpoint;
use std::collections::HashMap;

/// Where a trace is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceState {
    /// In progress, partial, or not yet returned by BatchGetTraces: fetched again later.
    Pending,
    /// Stored with every span closed (and its critical path).
    Complete,
    /// Stored as it was after the last allowed re-fetch, still in progress or partial.
    Incomplete,
    /// Never returned by BatchGetTraces within the allowed re-fetches; nothing stored.
    Missing,
}

impl TraceState {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceState::Pending => "pending",
            TraceState::Complete => "complete",
            TraceState::Incomplete => "incomplete",
            TraceState::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> Option<TraceState> {
        [TraceState::Pending, TraceState::Complete, TraceState::Incomplete, TraceState::Missing]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// What the store knows about one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceRecord {
    pub state: TraceState,
    /// Fetches after the first one that still found the trace unfinished.
    pub refetches: u32,
    /// The last GetTraceSummaries listing of the trace said `IsPartial`.
    pub partial: bool,
}

/// A trace state to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceUpdate {
    pub trace_id: String,
    pub record: TraceRecord,
}

/// One complete trace's critical path, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionRow {
    pub trace_id: String,
    /// Name of the root span (the state machine, or the first Lambda segment).
    pub root_name: String,
    /// Earliest span start, epoch ms.
    pub start_ms: i64,
    /// Root duration, seconds.
    pub total_s: f64,
    /// The critical path's shape (`crate::critical_path::encode_path`): shared by the
    /// traces that took the same path, stored once.
    pub shape_json: String,
    /// Each node's self time on the path, µs.
    pub self_us: Vec<u64>,
    /// The trace's events per (function, env): a JSON list of `[function, env, events]`.
    pub envs_json: String,
}

const UPSERT_ATTRIBUTION: &str = "INSERT INTO trace_attribution (trace_id, path, start_ms, total_s, self_us, shares) \
     VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (trace_id) DO UPDATE SET path = excluded.path, start_ms = excluded.start_ms, \
     total_s = excluded.total_s, self_us = excluded.self_us, shares = NULL";

impl Store {
    /// The stored state of each of `ids` the store knows.
    pub async fn trace_records(&self, ids: &[String]) -> Result<HashMap<String, TraceRecord>, StoreError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT trace_id, state, refetches, partial FROM xray_traces WHERE trace_id IN (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            q.push(")");
            let rows: Vec<(String, String, i64, bool)> = q.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().filter_map(|(id, state, refetches, partial)| {
                Some((id, TraceRecord { state: TraceState::parse(&state)?, refetches: refetches.max(0) as u32, partial }))
            }));
        }
        Ok(out)
    }

    /// Every pending trace, oldest first.
    pub async fn pending_traces(&self) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        self.pending_traces_under("").await
    }

    /// The pending traces whose stored ids start with `prefix` (one scope's: see
    /// `crate::scope::Scope::key`).
    pub async fn pending_traces_under(&self, prefix: &str) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT trace_id, refetches, partial FROM xray_traces WHERE state = 'pending' AND substr(trace_id, 1, length(?1)) = ?1 \
             ORDER BY first_seen_ms, trace_id",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, refetches, partial)| {
                (id, TraceRecord { state: TraceState::Pending, refetches: refetches.max(0) as u32, partial })
            })
            .collect())
    }

    /// Commits one X-Ray poll step: the batch's events and rejections first (idempotent),
    /// then attributions, trace states and the checkpoint in one transaction (see the
    /// module comment for why this order is lossless and duplicate-free). The batch must
    /// not carry checkpoints of its own: the checkpoint goes last.
    pub async fn commit_traces(
        &self,
        batch: &Batch,
        attributions: &[AttributionRow],
        updates: &[TraceUpdate],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome, StoreError> {
        debug_assert!(batch.checkpoints.is_empty(), "the checkpoint is written after the events");
        let outcome = if batch.is_empty() { BatchOutcome::default() } else { self.commit(batch).await? };
        if attributions.is_empty() && updates.is_empty() && checkpoint.is_none() {
            return Ok(outcome);
        }
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for a in attributions {
            let origin = &batch.origin;
            sqlx::query("INSERT OR IGNORE INTO path_shapes (root_name, shape, envs, account, region) VALUES (?, ?, ?, ?, ?)")
                .bind(&a.root_name)
                .bind(&a.shape_json)
                .bind(&a.envs_json)
                .bind(&origin.account)
                .bind(&origin.region)
                .execute(&mut *tx)
                .await?;
            let path: i64 =
                sqlx::query_scalar("SELECT id FROM path_shapes WHERE root_name = ? AND shape = ? AND envs = ? AND account = ? AND region = ?")
                    .bind(&a.root_name)
                    .bind(&a.shape_json)
                    .bind(&a.envs_json)
                    .bind(&origin.account)
                    .bind(&origin.region)
                    .fetch_one(&mut *tx)
                    .await?;
            let q = sqlx::query(UPSERT_ATTRIBUTION);
            let q = match trace_id_bytes(&a.trace_id) {
                Some(b) => q.bind(b.to_vec()),
                None => q.bind(a.trace_id.clone()),
            };
            q.bind(path).bind(a.start_ms).bind(a.total_s).bind(encode_varints(&a.self_us)).execute(&mut *tx).await?;
        }
        for u in updates {
            // A finished trace never goes back to pending (a stale fetch racing a newer one).
            sqlx::query(
                "INSERT INTO xray_traces (trace_id, state, refetches, partial, first_seen_ms, updated_ms) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET state = excluded.state, \
                 refetches = excluded.refetches, partial = excluded.partial, updated_ms = excluded.updated_ms \
                 WHERE xray_traces.state = 'pending' OR excluded.state <> 'pending'",
            )
            .bind(&u.trace_id)
            .bind(u.record.state.as_str())
            .bind(u.record.refetches as i64)
            .bind(u.record.partial)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(c) = checkpoint {
            super::write::upsert_checkpoint(&mut tx, c, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Number of pending traces (for the pending gauge).
    pub async fn count_pending_traces(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM xray_traces WHERE state = 'pending'").fetch_one(&self.pool).await?)
    }

    /// Deletes attributions of traces that started before `cutoff_ms` and finished trace
    /// states last written before it; pending ones stay (their re-fetches are bounded).
    pub async fn purge_traces_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let a = sqlx::query("DELETE FROM trace_attribution WHERE start_ms < ?").bind(cutoff_ms).execute(&self.pool).await?;
        if a.rows_affected() > 0 {
            sqlx::query("DELETE FROM path_shapes WHERE id NOT IN (SELECT path FROM trace_attribution)").execute(&self.pool).await?;
        }
        let t = sqlx::query("DELETE FROM xray_traces WHERE state <> 'pending' AND updated_ms < ?")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        Ok(a.rows_affected() + t.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Rejection, Source, TimingEvent};

    fn event(key: &str) -> TimingEvent {
        TimingEvent {
            time_ms: 1_000,
            env: "Dev".into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: "Bedrock.InvokeModel".into(),
            source: Source::Xray,
            duration_s: 9.0,
            request_id: None,
            trace_id: Some("1-66f7a1b2-0123456789abcdef01234567".into()),
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: key.into(),
            attributes: vec![],
        }
    }

    fn record(state: TraceState, refetches: u32) -> TraceRecord {
        TraceRecord { state, refetches, partial: false }
    }

    fn checkpoint(position_ms: i64) -> Checkpoint {
        Checkpoint { source: "xray".into(), key: "traces".into(), position_ms, state: None }
    }

    #[tokio::test]
    async fn a_step_committed_twice_stores_once_and_states_move_forward_only() {
        let store = Store::open_memory().await.unwrap();
        let batch = Batch {
            events: vec![event("t|a"), event("t|b")],
            rejections: vec![Rejection {
                time_ms: 1,
                source: "xray".into(),
                origin: "t|x".into(),
                reason: "end_before_start",
                detail: "d".into(),
                raw: "{}".into(),
            }],
            ..Batch::default()
        };
        let attribution = AttributionRow {
            trace_id: "t".into(),
            root_name: "AtlasEngineWorkflow".into(),
            start_ms: 1_000,
            total_s: 12.5,
            shape_json: "{}".into(),
            self_us: vec![],
            envs_json: "[]".into(),
        };
        let updates = vec![
            TraceUpdate { trace_id: "t".into(), record: record(TraceState::Complete, 0) },
            TraceUpdate { trace_id: "p".into(), record: record(TraceState::Pending, 2) },
        ];
        let first = store.commit_traces(&batch, std::slice::from_ref(&attribution), &updates, Some(&checkpoint(50))).await.unwrap();
        assert_eq!(first.inserted_total(), 2);
        let second = store.commit_traces(&batch, &[attribution], &updates, Some(&checkpoint(40))).await.unwrap();
        assert_eq!(second.inserted_total(), 0);
        assert_eq!(second.duplicates, 2);
        assert_eq!(store.count_events(Some("xray")).await.unwrap(), 2);
        assert_eq!(store.checkpoint("xray", "traces").await.unwrap().unwrap().position_ms, 50, "never backwards");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trace_attribution").fetch_one(store.pool()).await.unwrap();
        assert_eq!(n, 1);

        // A late pending write cannot reopen a finished trace.
        let stale = [TraceUpdate { trace_id: "t".into(), record: record(TraceState::Pending, 1) }];
        store.commit_traces(&Batch::default(), &[], &stale, None).await.unwrap();
        let known = store.trace_records(&["t".into(), "p".into(), "unknown".into()]).await.unwrap();
        assert_eq!(known.len(), 2);
        assert_eq!(known["t"].state, TraceState::Complete);
        assert_eq!(known["p"], record(TraceState::Pending, 2));
        assert_eq!(store.pending_traces().await.unwrap(), vec![("p".to_string(), record(TraceState::Pending, 2))]);
        assert_eq!(store.count_pending_traces().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn purge_keeps_pending_traces() {
        let store = Store::open_memory().await.unwrap();
        let updates = vec![
            TraceUpdate { trace_id: "done".into(), record: record(TraceState::Incomplete, 5) },
            TraceUpdate { trace_id: "wait".into(), record: record(TraceState::Pending, 0) },
        ];
        let row = AttributionRow { trace_id: "done".into(), root_name: "r".into(), start_ms: 10, total_s: 1.0, shape_json: "{}".into(), self_us: vec![], envs_json: "[]".into() };
        store.commit_traces(&Batch::default(), &[row], &updates, None).await.unwrap();
        assert_eq!(store.purge_traces_before(now_ms() + 1_000).await.unwrap(), 2);
        assert_eq!(store.count_pending_traces().await.unwrap(), 1);
    }
}
