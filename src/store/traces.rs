//! X-Ray trace rows: which traces are still pending (and how often they were fetched), which
//! are done, and each complete trace's critical-path attribution.
//!
//! A poll step commits in two transactions: first the events and rejected documents
//! (`SqliteStore::commit`, idempotent by key), then the attributions (an idempotent upsert), the
//! trace states and the checkpoint together. A crash between the two leaves the checkpoint
//! and the trace states where they were, so the next poll fetches the same traces again and
//! re-inserting their events is a no-op: nothing is lost and nothing is stored twice.

use super::event_keys::trace_id_bytes;
use super::portable::{Conn, Stmt, Value};
use super::varint::encode_varints;
use super::{Batch, BatchOutcome, SqliteStore, StoreError};
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
const INSERT_SHAPE: &str = "INSERT INTO path_shapes (root_name, shape, envs, account, region) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
const SHAPE_ID: &str = "SELECT id FROM path_shapes WHERE root_name = ? AND shape = ? AND envs = ? AND account = ? AND region = ?";
/// A finished trace never goes back to pending (a stale fetch racing a newer one).
const UPSERT_TRACE: &str = "INSERT INTO xray_traces (trace_id, state, refetches, partial, first_seen_ms, updated_ms) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET state = excluded.state, \
     refetches = excluded.refetches, partial = excluded.partial, updated_ms = excluded.updated_ms \
     WHERE xray_traces.state = 'pending' OR excluded.state <> 'pending'";
/// Positions never move backwards (written without either engine's own `max`).
const UPSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (source, key, position_ms, state, updated_ms) VALUES (?, ?, ?, ?, ?) \
     ON CONFLICT (source, key) DO UPDATE SET position_ms = CASE WHEN excluded.position_ms > checkpoints.position_ms \
     THEN excluded.position_ms ELSE checkpoints.position_ms END, state = excluded.state, updated_ms = excluded.updated_ms";

/// How an engine keeps trace ids in `trace_attribution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceIds {
    /// X-Ray's form as its 16 bytes (else the text).
    Compact,
    Text,
}

/// The second half of an X-Ray poll step, in the caller's transaction on either engine:
/// critical paths (their shapes once each), trace states and the checkpoint.
pub(crate) async fn attributions_and_states_in(
    conn: &mut Conn<'_>,
    ids: TraceIds,
    origin: &crate::model::Origin,
    attributions: &[AttributionRow],
    updates: &[TraceUpdate],
    checkpoint: Option<&Checkpoint>,
    now: i64,
) -> Result<(), StoreError> {
    let (account, region) = (Value::Text(&origin.account), Value::Text(&origin.region));
    for a in attributions {
        let shape = [Value::Text(&a.root_name), Value::Text(&a.shape_json), Value::Text(&a.envs_json), account, region];
        conn.execute(&Stmt::new(INSERT_SHAPE, shape)).await?;
        let path: Vec<(i64,)> = conn.fetch_all(&Stmt::new(SHAPE_ID, shape)).await?;
        let path = path.first().map_or(0, |p| p.0);
        let bytes = if ids == TraceIds::Compact { trace_id_bytes(&a.trace_id) } else { None };
        let id = bytes.as_ref().map_or(Value::Text(&a.trace_id), |b| Value::Blob(b));
        let self_us = encode_varints(&a.self_us);
        conn.execute(&Stmt::new(UPSERT_ATTRIBUTION, [id, Value::Int(path), Value::Int(a.start_ms), Value::Float(a.total_s), Value::Blob(&self_us)])).await?;
    }
    for u in updates {
        let refetches = i64::from(u.record.refetches);
        conn.execute(&Stmt::new(
            UPSERT_TRACE,
            [Value::Text(&u.trace_id), Value::Text(u.record.state.as_str()), Value::Int(refetches), Value::Bool(u.record.partial), Value::Int(now), Value::Int(now)],
        ))
        .await?;
    }
    if let Some(c) = checkpoint {
        let values = [Value::Text(&c.source), Value::Text(&c.key), Value::Int(c.position_ms), Value::OptText(c.state.as_deref()), Value::Int(now)];
        conn.execute(&Stmt::new(UPSERT_CHECKPOINT, values)).await?;
    }
    Ok(())
}

/// The stored state of each of `ids` the store knows (either engine).
pub(crate) async fn trace_records_in(conn: &mut Conn<'_>, ids: &[String]) -> Result<HashMap<String, TraceRecord>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT trace_id, state, refetches, partial FROM xray_traces WHERE trace_id IN ({marks})");
        let rows: Vec<(String, String, i64, bool)> = conn.fetch_all(&Stmt::new(sql, chunk.iter().map(|id| Value::Text(id)))).await?;
        out.extend(rows.into_iter().filter_map(|(id, state, refetches, partial)| {
            Some((id, TraceRecord { state: TraceState::parse(&state)?, refetches: u32::try_from(refetches.max(0)).unwrap_or(u32::MAX), partial }))
        }));
    }
    Ok(out)
}

/// The pending traces whose stored ids start with `prefix`, oldest first (either engine).
pub(crate) async fn pending_traces_in(conn: &mut Conn<'_>, prefix: &str) -> Result<Vec<(String, TraceRecord)>, StoreError> {
    let rows: Vec<(String, i64, bool)> = conn
        .fetch_all(&Stmt::new(
            "SELECT trace_id, refetches, partial FROM xray_traces WHERE state = 'pending' AND substr(trace_id, 1, length(?)) = ? \
             ORDER BY first_seen_ms, trace_id",
            [Value::Text(prefix), Value::Text(prefix)],
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, refetches, partial)| (id, TraceRecord { state: TraceState::Pending, refetches: u32::try_from(refetches.max(0)).unwrap_or(u32::MAX), partial }))
        .collect())
}

/// Pending traces (for the pending gauge), and the purge of old trace rows (either engine).
pub(crate) async fn count_pending_in(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let n: Vec<(i64,)> = conn.fetch_all(&Stmt::new("SELECT COUNT(*) FROM xray_traces WHERE state = 'pending'", [])).await?;
    Ok(n.first().map_or(0, |n| n.0))
}

/// Deletes attributions of traces that started before `cutoff_ms` (and the shapes no trace
/// uses any more) and finished trace states last written before it; pending ones stay
/// (their re-fetches are bounded). Either engine.
pub(crate) async fn purge_traces_in(conn: &mut Conn<'_>, cutoff_ms: i64) -> Result<u64, StoreError> {
    let a = conn.execute(&Stmt::new("DELETE FROM trace_attribution WHERE start_ms < ?", [Value::Int(cutoff_ms)])).await?;
    if a > 0 {
        conn.execute(&Stmt::new("DELETE FROM path_shapes WHERE id NOT IN (SELECT path FROM trace_attribution)", [])).await?;
    }
    let t = conn.execute(&Stmt::new("DELETE FROM xray_traces WHERE state <> 'pending' AND updated_ms < ?", [Value::Int(cutoff_ms)])).await?;
    Ok(a + t)
}

impl SqliteStore {
    /// The stored state of each of `ids` the store knows.
    pub async fn trace_records(&self, ids: &[String]) -> Result<HashMap<String, TraceRecord>, StoreError> {
        trace_records_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), ids).await
    }

    /// Every pending trace, oldest first.
    pub async fn pending_traces(&self) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        self.pending_traces_under("").await
    }

    /// The pending traces whose stored ids start with `prefix` (one scope's: see
    /// `crate::scope::Scope::key`).
    pub async fn pending_traces_under(&self, prefix: &str) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        pending_traces_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), prefix).await
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
        let mut tx = self.pool.begin().await?;
        attributions_and_states_in(&mut Conn::Sqlite(&mut tx), TraceIds::Compact, &batch.origin, attributions, updates, checkpoint, now_ms()).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Number of pending traces (for the pending gauge).
    pub async fn count_pending_traces(&self) -> Result<i64, StoreError> {
        count_pending_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?)).await
    }

    /// Deletes old attributions and finished trace states (see [`purge_traces_in`]).
    pub async fn purge_traces_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        purge_traces_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), cutoff_ms).await
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
        let store = SqliteStore::open_memory().await.unwrap();
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
        let store = SqliteStore::open_memory().await.unwrap();
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
