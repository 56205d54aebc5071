//! The store the daemon, reports and API use: the SQLite file (one daemon, nothing to run)
//! or the shared PostgreSQL history (several daemons), behind one API. Each method hands
//! the call to the engine's own; what the engines share is written once below them
//! (`portable`).

use super::alerts::{AlertRow, TransitionRow};
use super::attribution::{SlowTrace, StoredPath, TraceRange};
use super::events::{EventFilter, EventOrder, EventRow, EventSelection, ScanColumns, ScannedEvent, WindowEvent};
use super::postgres::PgStore;
use super::published::{Destination, Unpublished};
use super::retention::{Purged, RetentionPlan};
use super::rollups::{Resolution, RollupFilter, RollupRow, RollupState};
use super::size::StorageSize;
use super::traces::{AttributionRow, TraceRecord, TraceUpdate};
use super::{Batch, BatchOutcome, OpenMode, SqliteStore, StoreError, interrupt};
use crate::attribute::AliasHistory;
use crate::model::Checkpoint;
use crate::model::alert::{Phase, Transition};
use std::collections::HashMap;
use std::path::Path;

/// Either engine's store; cheap to clone (pools inside).
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The same call on whichever engine the store is.
macro_rules! either {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl From<SqliteStore> for Store {
    fn from(s: SqliteStore) -> Store {
        Store::Sqlite(s)
    }
}

impl Store {
    /// The store `storage` names: the shared PostgreSQL when `storage.url` is set (a writer
    /// applies the migrations, under their lock), else the SQLite file at `storage.path`.
    pub async fn connect(storage: &crate::config::StorageConfig, mode: OpenMode) -> Result<Store, StoreError> {
        if storage.url.is_empty() {
            return Store::open(Path::new(&storage.path), mode, storage.rejected_max_bytes).await;
        }
        let pg = PgStore::connect(super::postgres::PgTarget {
            url: storage.url.expose(),
            password: storage.password.expose(),
            pool_size: storage.pool_size,
            rejected_max_bytes: storage.rejected_max_bytes,
            connect_timeout: std::time::Duration::from_secs(10),
        })?;
        if mode == OpenMode::Writer {
            pg.migrate().await?;
        }
        Ok(Store::Postgres(pg))
    }

    /// The SQLite file at `path` (see [`SqliteStore::open`]).
    pub async fn open(path: &Path, mode: OpenMode, rejected_max_bytes: usize) -> Result<Store, StoreError> {
        Ok(Store::Sqlite(SqliteStore::open(path, mode, rejected_max_bytes).await?))
    }

    /// A file as an earlier release wrote it, unconverted (benches).
    pub async fn open_as_written(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::Sqlite(SqliteStore::open_as_written(path).await?))
    }

    /// An in-memory SQLite store (tests).
    pub async fn open_memory() -> Result<Store, StoreError> {
        Ok(Store::Sqlite(SqliteStore::open_memory().await?))
    }

    /// The SQLite store, when this is one (tests, benches and SQLite-only tools).
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Sqlite(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// The SQLite pool (tests and benches on the SQLite store only).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        self.sqlite().expect("pool(): only a SQLite store has a SQLite pool").pool()
    }

    /// A view for one request whose reads stop at `deadline`: on SQLite interrupted then;
    /// on PostgreSQL read-only connections whose statements the server cancels at the
    /// request time limit ([`Store::limit_requests`]).
    pub fn for_request(&self, deadline: std::time::Instant) -> (Store, interrupt::CancelOnDrop) {
        match self {
            Store::Sqlite(s) => {
                let (view, guard) = s.for_request(deadline);
                (Store::Sqlite(view), guard)
            }
            Store::Postgres(p) => (Store::Postgres(p.for_request()), interrupt::Interrupt::new(deadline).1),
        }
    }

    /// The longest a request's statement runs (PostgreSQL; SQLite interrupts at each
    /// request's own deadline).
    pub fn limit_requests(self, limit: std::time::Duration) -> Store {
        match self {
            Store::Postgres(p) => Store::Postgres(p.limit_requests(limit)),
            s => s,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        either!(self, s => s.ping().await)
    }
    pub async fn close(&self) {
        either!(self, s => s.close().await)
    }
    pub async fn commit(&self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        match self {
            Store::Sqlite(s) => s.commit(batch).await,
            Store::Postgres(p) => p.commit(batch, batch.fence.as_ref()).await,
        }
    }
    pub async fn commit_traces(
        &self,
        batch: &Batch,
        attributions: &[AttributionRow],
        updates: &[TraceUpdate],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<BatchOutcome, StoreError> {
        match self {
            Store::Sqlite(s) => s.commit_traces(batch, attributions, updates, checkpoint).await,
            Store::Postgres(p) => p.commit_traces(batch, attributions, updates, checkpoint, batch.fence.as_ref()).await,
        }
    }
    pub async fn checkpoint(&self, source: &str, key: &str) -> Result<Option<Checkpoint>, StoreError> {
        either!(self, s => s.checkpoint(source, key).await)
    }
    pub async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        either!(self, s => s.checkpoints(source).await)
    }
    pub async fn stream_states_of(&self, log_group: &str, streams: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        either!(self, s => s.stream_states_of(log_group, streams).await)
    }
    pub async fn count_events(&self, source: Option<&str>) -> Result<i64, StoreError> {
        either!(self, s => s.count_events(source).await)
    }
    pub async fn event_count(&self) -> Result<u64, StoreError> {
        either!(self, s => s.event_count().await)
    }
    pub async fn event_id_high_water(&self) -> Result<i64, StoreError> {
        either!(self, s => s.event_id_high_water().await)
    }
    pub async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<WindowEvent>, StoreError> {
        either!(self, s => s.events_after(after_id, limit).await)
    }
    pub async fn events_from(&self, from_ms: i64, up_to_id: i64) -> Result<Vec<WindowEvent>, StoreError> {
        either!(self, s => s.events_from(from_ms, up_to_id).await)
    }
    pub async fn scan_events<T: Send>(
        &self,
        sel: &EventSelection<'_>,
        columns: ScanColumns,
        init: impl Fn() -> T + Sync,
        each: impl Fn(&mut T, &ScannedEvent<'_>) + Sync,
    ) -> Result<Vec<(T, u64)>, StoreError> {
        either!(self, s => s.scan_events(sel, columns, init, each).await)
    }
    /// The `limit` slowest events matching `f`, slowest first (earlier first among equals).
    pub async fn slowest_events(&self, f: EventFilter<'_>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        either!(self, s => s.list_events(f, EventOrder::Slowest, limit).await)
    }
    /// The `limit` newest events matching `f` that belong to a known invocation.
    pub async fn newest_invocation_events(&self, f: EventFilter<'_>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        either!(self, s => s.list_events(f, EventOrder::NewestOfInvocations, limit).await)
    }
    /// Saves alert changes; on PostgreSQL under `fence` (the evaluator's lease), refused
    /// when another node evaluates now.
    pub async fn save_alerts(
        &self,
        changed: &[AlertRow],
        transitions: &[(i64, &AlertRow, Transition)],
        now_ms: i64,
        fence: Option<&crate::model::lease::Fence>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.save_alerts(changed, transitions, now_ms).await,
            Store::Postgres(p) => p.save_alerts(changed, transitions, now_ms, fence).await,
        }
    }
    pub async fn alert_phases(&self) -> Result<(Vec<(String, Phase)>, Vec<String>), StoreError> {
        either!(self, s => s.alert_phases().await)
    }
    pub async fn alert_transitions(&self, since_ms: i64, limit: i64) -> Result<Vec<TransitionRow>, StoreError> {
        either!(self, s => s.alert_transitions(since_ms, limit).await)
    }
    pub async fn record_aliases(&self, function: &str, routes: &[(String, String, f64)], now_ms: i64) -> Result<(), StoreError> {
        either!(self, s => s.record_aliases(function, routes, now_ms).await)
    }
    pub async fn alias_history(&self) -> Result<AliasHistory, StoreError> {
        self.alias_history_under("").await
    }
    pub async fn alias_history_under(&self, prefix: &str) -> Result<AliasHistory, StoreError> {
        either!(self, s => s.alias_history_under(prefix).await)
    }
    pub async fn unpublished_events(&self, dest: Destination<'_>, limit: i64) -> Result<Unpublished, StoreError> {
        either!(self, s => s.unpublished_events(dest, limit).await)
    }
    pub async fn advance_published(&self, destination: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        either!(self, s => s.advance_published(destination, from, to).await)
    }
    pub async fn trace_records(&self, ids: &[String]) -> Result<HashMap<String, TraceRecord>, StoreError> {
        either!(self, s => s.trace_records(ids).await)
    }
    pub async fn pending_traces(&self) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        self.pending_traces_under("").await
    }
    pub async fn pending_traces_under(&self, prefix: &str) -> Result<Vec<(String, TraceRecord)>, StoreError> {
        either!(self, s => s.pending_traces_under(prefix).await)
    }
    pub async fn count_pending_traces(&self) -> Result<i64, StoreError> {
        either!(self, s => s.count_pending_traces().await)
    }
    pub async fn purge_traces_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        either!(self, s => s.purge_traces_before(cutoff_ms).await)
    }
    pub async fn attribution_roots(&self, r: TraceRange<'_>, limit: i64) -> Result<Vec<String>, StoreError> {
        either!(self, s => s.attribution_roots(r, limit).await)
    }
    pub async fn attribution_count(&self, root: &str, r: TraceRange<'_>) -> Result<i64, StoreError> {
        either!(self, s => s.attribution_count(root, r).await)
    }
    pub async fn slowest_attributions(&self, root: &str, r: TraceRange<'_>, limit: i64) -> Result<Vec<SlowTrace>, StoreError> {
        either!(self, s => s.slowest_attributions(root, r, limit).await)
    }
    pub async fn attribution_total_at(&self, root: &str, r: TraceRange<'_>, offset: i64) -> Result<Option<f64>, StoreError> {
        either!(self, s => s.attribution_total_at(root, r, offset).await)
    }
    pub async fn trace_attribution(&self, trace_id: &str) -> Result<Option<(String, i64, f64, StoredPath)>, StoreError> {
        either!(self, s => s.trace_attribution(trace_id).await)
    }
    pub async fn trace_function_envs(&self, trace_ids: &[&str]) -> Result<Vec<(String, String, i64)>, StoreError> {
        either!(self, s => s.trace_function_envs(trace_ids).await)
    }
    pub async fn replace_rollups(&self, res: Resolution, start_ms: i64, rows: &[RollupRow]) -> Result<(), StoreError> {
        either!(self, s => s.replace_rollups(res, start_ms, rows).await)
    }
    pub async fn roll_hour(&self, hour_ms: i64) -> Result<usize, StoreError> {
        either!(self, s => s.roll_hour(hour_ms).await)
    }
    pub async fn roll_day(&self, day_ms: i64) -> Result<bool, StoreError> {
        either!(self, s => s.roll_day(day_ms).await)
    }
    pub async fn scan_rollups(
        &self,
        res: Resolution,
        from_ms: i64,
        to_ms: i64,
        filter: &RollupFilter<'_>,
        f: impl FnMut(i64, RollupRow) + Send,
    ) -> Result<u64, StoreError> {
        either!(self, s => s.scan_rollups(res, from_ms, to_ms, filter, f).await)
    }
    pub async fn rollup_periods(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(Resolution, i64)>, StoreError> {
        either!(self, s => s.rollup_periods(from_ms, to_ms).await)
    }
    pub async fn raw_hour_complete(&self, hour_ms: i64) -> Result<bool, StoreError> {
        either!(self, s => s.raw_hour_complete(hour_ms).await)
    }
    /// Judges `operation` of `function` only against events after `at_ms` from now on.
    pub async fn reset_baseline(&self, function: &str, operation: &str, at_ms: i64) -> Result<(), StoreError> {
        either!(self, s => s.reset_baseline(function, operation, at_ms).await)
    }
    pub async fn baseline_resets(&self) -> Result<Vec<super::baselines::BaselineReset>, StoreError> {
        either!(self, s => s.baseline_resets().await)
    }
    pub async fn oldest_event_ms(&self) -> Result<Option<i64>, StoreError> {
        either!(self, s => s.oldest_event_ms().await)
    }
    pub async fn purge_rollups_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        either!(self, s => s.purge_rollups_before(cutoff_ms).await)
    }
    pub async fn late_hours(&self, after_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<i64>, StoreError> {
        either!(self, s => s.late_hours(after_id, from_ms, to_ms).await)
    }
    pub async fn rollup_state(&self) -> Result<Option<RollupState>, StoreError> {
        either!(self, s => s.rollup_state().await)
    }
    pub async fn save_rollup_state(&self, state: RollupState) -> Result<(), StoreError> {
        either!(self, s => s.save_rollup_state(state).await)
    }
    pub async fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        either!(self, s => s.purge_before(cutoff_ms).await)
    }
    pub async fn purge(&self, plan: &RetentionPlan) -> Result<Purged, StoreError> {
        either!(self, s => s.purge(plan).await)
    }
    pub async fn storage_size(&self) -> Result<StorageSize, StoreError> {
        either!(self, s => s.storage_size().await)
    }
    pub async fn storage_by_object(&self) -> Result<Vec<(String, u64)>, StoreError> {
        either!(self, s => s.storage_by_object().await)
    }
}
