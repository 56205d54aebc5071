//! Retention: what each table keeps, and the deletes that enforce it, in small batches, each
//! its own short transaction, so ingestion is never blocked for long. The bounds (also in
//! the README, "State stays bounded"):
//!
//! - `events`: event time within `storage.retention`;
//! - `rejected`: arrival and event time within `storage.retention`, and the newest
//!   [`REJECTED_MAX_ROWS`] rows;
//! - `alert_transitions`: within `storage.rollup_retention`, and the newest
//!   [`TRANSITIONS_MAX_ROWS`];
//! - `alias_history`: spans last seen within `storage.retention` (a current alias is seen at
//!   every refresh, so only superseded spans and vanished aliases go);
//! - `stream_state`: streams written within the idle limit the caller computes (how far back
//!   any re-read reaches, plus the longest invocation);
//! - `checkpoints`: positions moved within `storage.retention` (a deleted log group's go).
//!
//! Rollups (`storage.rollup_retention`) and X-Ray trace states and attributions
//! (`storage.retention`, pending traces until their re-fetches run out) are purged by their
//! own tasks.

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, StoreError};

/// Rows deleted per statement.
const DELETE_BATCH: i64 = 5_000;
/// Most rejected inputs kept: enough to inspect any burst of bad lines, small on disk
/// (each holds at most `storage.rejected_max_bytes` of raw text).
pub const REJECTED_MAX_ROWS: i64 = 100_000;
/// Most alert transitions kept.
pub const TRANSITIONS_MAX_ROWS: i64 = 100_000;

/// The cutoffs of one retention pass, in epoch ms (rows older than these go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPlan {
    pub events_before_ms: i64,
    pub transitions_before_ms: i64,
    pub streams_idle_before_ms: i64,
    /// Row caps ([`REJECTED_MAX_ROWS`], [`TRANSITIONS_MAX_ROWS`] in the daemon).
    pub rejected_max_rows: i64,
    pub transitions_max_rows: i64,
}

/// Rows one pass deleted, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub rejected: u64,
    pub transitions: u64,
    pub aliases: u64,
    pub streams: u64,
    pub checkpoints: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.events + self.rejected + self.transitions + self.aliases + self.streams + self.checkpoints
    }

    /// (table, rows) for metrics.
    pub fn by_table(&self) -> [(&'static str, u64); 6] {
        [
            ("events", self.events),
            ("rejected", self.rejected),
            ("alert_transitions", self.transitions),
            ("alias_history", self.aliases),
            ("stream_state", self.streams),
            ("checkpoints", self.checkpoints),
        ]
    }
}

/// How an engine names a row for a batched delete (SQLite's `rowid`, PostgreSQL's `ctid`).
pub(crate) struct RowIds(pub &'static str);

pub(crate) const SQLITE_ROWS: RowIds = RowIds("rowid");

/// Deletes the rows of `table` matching `cond` (its `?` all bound to `cutoff`) batch after
/// batch, each its own statement; returns how many went. Yields between batches. Either
/// engine.
pub(crate) async fn delete_batches_in(conn: &mut Conn<'_>, rows: &RowIds, table: &str, cond: &str, cutoff: i64) -> Result<u64, StoreError> {
    let id = rows.0;
    let sql = format!("DELETE FROM {table} WHERE {id} IN (SELECT {id} FROM {table} WHERE {cond} LIMIT ?)");
    let mut values = vec![Value::Int(cutoff); cond.matches('?').count()];
    values.push(Value::Int(DELETE_BATCH));
    let stmt = Stmt::new(sql, values);
    let mut total = 0;
    loop {
        let n = conn.execute(&stmt).await?;
        total += n;
        if n < DELETE_BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Deletes all but the newest `keep` rows of `table` (by its integer primary key `id`).
async fn keep_newest_in(conn: &mut Conn<'_>, rows: &RowIds, table: &'static str, keep: i64) -> Result<u64, StoreError> {
    let oldest: Vec<(i64,)> = conn.fetch_all(&Stmt::new(format!("SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?"), [Value::Int(keep - 1)])).await?;
    let Some(&(oldest_kept,)) = oldest.first() else {
        return Ok(0);
    };
    delete_batches_in(conn, rows, table, "id < ?", oldest_kept).await
}

/// One retention pass over every table this module bounds but the events (which the engine
/// purges its own way, `events` rows counted by the caller). Either engine.
pub(crate) async fn purge_rest_in(conn: &mut Conn<'_>, rows: &RowIds, plan: &RetentionPlan, p: &mut Purged) -> Result<(), StoreError> {
    p.rejected = delete_batches_in(conn, rows, "rejected", "time_ms < ? OR seen_ms < ?", plan.events_before_ms).await?;
    p.rejected += keep_newest_in(conn, rows, "rejected", plan.rejected_max_rows).await?;
    p.transitions = delete_batches_in(conn, rows, "alert_transitions", "time_ms < ?", plan.transitions_before_ms).await?;
    p.transitions += keep_newest_in(conn, rows, "alert_transitions", plan.transitions_max_rows).await?;
    p.aliases = delete_batches_in(conn, rows, "alias_history", "last_seen_ms < ?", plan.events_before_ms).await?;
    p.streams = delete_batches_in(conn, rows, "stream_state", "updated_ms < ?", plan.streams_idle_before_ms).await?;
    p.checkpoints = delete_batches_in(conn, rows, "checkpoints", "updated_ms < ?", plan.events_before_ms).await?;
    Ok(())
}

impl SqliteStore {
    /// Deletes `sql`'s rows (a `DELETE … WHERE rowid IN (SELECT … LIMIT ?2)` bound with
    /// `cutoff` as `?1`) batch after batch; returns how many went. Yields between batches.
    async fn delete_batches(&self, sql: &str, cutoff: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(cutoff).bind(DELETE_BATCH).execute(&self.pool).await?.rows_affected();
            total += n;
            if n < DELETE_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Deletes events with event time before `cutoff_ms`, through the blocks that hold them;
    /// then the blocks, invocations and attribute sets no event refers to any more. Returns
    /// how many events went.
    async fn purge_events(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let (tables, _) = super::pack::time_range_sql("e", 1, 1);
        let events = self
            .delete_batches(&format!("DELETE FROM event_rows WHERE id IN (SELECT e.id FROM {tables} WHERE b.min_ms < ?1 AND +e.time_ms < ?1 LIMIT ?2)"), cutoff_ms)
            .await?;
        if events == 0 {
            return Ok(0);
        }
        let shift = super::pack::BLOCK_SHIFT;
        sqlx::query("DELETE FROM event_blocks WHERE max_ms < ?").bind(cutoff_ms).execute(&self.pool).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE event_blocks SET min_ms = COALESCE((SELECT MIN(+time_ms) FROM event_rows \
             WHERE id BETWEEN (event_blocks.block << {shift}) AND (event_blocks.block << {shift}) + {last}), min_ms) WHERE min_ms < ?",
            last = (1i64 << shift) - 1
        )))
        .bind(cutoff_ms)
        .execute(&self.pool)
        .await?;
        // Every event of an invocation (or attribute set) whose last event id is below the
        // lowest id still stored is gone.
        let lowest: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT MIN(id) FROM event_rows), (SELECT seq FROM sqlite_sequence WHERE name = 'event_rows') + 1, 0)",
        )
        .fetch_one(&self.pool)
        .await?;
        self.delete_batches("DELETE FROM invocations WHERE id IN (SELECT id FROM invocations WHERE last_event < ?1 LIMIT ?2)", lowest).await?;
        self.delete_batches("DELETE FROM attribute_sets WHERE id IN (SELECT id FROM attribute_sets WHERE last_event < ?1 LIMIT ?2)", lowest)
            .await?;
        Ok(events)
    }

    /// Deletes events and rejected inputs with event time before `cutoff_ms`; returns how
    /// many rows went.
    pub async fn purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let events = self.purge_events(cutoff_ms).await?;
        let mut conn = self.pool.acquire().await?;
        let rejected = delete_batches_in(&mut Conn::Sqlite(&mut conn), &SQLITE_ROWS, "rejected", "time_ms < ? OR seen_ms < ?", cutoff_ms).await?;
        Ok(events + rejected)
    }

    /// One retention pass over every table this module bounds.
    pub async fn purge(&self, plan: &RetentionPlan) -> Result<Purged, StoreError> {
        let mut p = Purged { events: self.purge_events(plan.events_before_ms).await?, ..Purged::default() };
        let mut conn = self.pool.acquire().await?;
        purge_rest_in(&mut Conn::Sqlite(&mut conn), &SQLITE_ROWS, plan, &mut p).await?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Checkpoint, Rejection, Source, TimingEvent};
    use crate::store::{Batch, StreamStateRow};

    fn event(i: i64) -> TimingEvent {
        TimingEvent {
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
        }
    }

    /// What events share goes with the last event that refers to it: invocations and
    /// attribute sets of purged events, and blocks with no event left; a block the cutoff
    /// cuts through keeps the span of what it still holds.
    #[tokio::test]
    async fn purged_events_take_their_invocations_attribute_sets_and_blocks() {
        let store = SqliteStore::open_memory().await.unwrap();
        let events: Vec<TimingEvent> = (0..3_000)
            .map(|i| TimingEvent {
                request_id: Some(format!("req-{}", i / 3)),
                trace_id: (i % 2 == 0).then(|| format!("1-5f8a1b2c-{:024x}", i / 3)),
                attributes: vec![("max_memory_mb".into(), (i / 3).to_string())],
                ..event(i * 1_000)
            })
            .collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let pool = store.pool().clone();
        let count = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
        };
        assert_eq!(count("SELECT COUNT(*) FROM invocations").await, 2_000, "per request, with and without the trace id");
        assert_eq!(count("SELECT COUNT(*) FROM attribute_sets").await, 1_000);
        assert_eq!(count("SELECT COUNT(*) FROM event_blocks").await, 3);
        // Ids 1..=3000; the cutoff falls inside the second block (ids 1024..2047).
        assert_eq!(store.purge_before(1_500_000).await.unwrap(), 1_500);
        assert_eq!(count("SELECT COUNT(*) FROM event_rows").await, 1_500);
        assert_eq!(count("SELECT COUNT(*) FROM invocations").await, 1_000, "the purged requests' rows went");
        assert_eq!(count("SELECT COUNT(*) FROM attribute_sets").await, 500);
        assert_eq!(count("SELECT MIN(min_ms) FROM event_blocks").await, 1_500_000, "the cut block's span starts at what it still holds");
        assert_eq!(count("SELECT COUNT(*) FROM event_blocks").await, 2);
        let mut read = 0u64;
        let sel = crate::store::events::EventSelection { from_ms: 0, to_ms: i64::MAX / 2, env: None, function: None, account: None, region: None, operations: &[] };
        for (n, rows) in store.scan_events(&sel, Default::default(), || 0u64, |n, _| *n += 1).await.unwrap() {
            assert_eq!(n, rows);
            read += rows;
        }
        assert_eq!(read, 1_500, "a scan reads what is left, once");
        assert_eq!(store.purge_before(i64::MAX / 2).await.unwrap(), 1_500);
        for table in ["event_rows", "invocations", "attribute_sets", "event_blocks"] {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(store.pool()).await.unwrap();
            assert_eq!(n, 0, "{table}");
        }
    }

    #[tokio::test]
    async fn every_table_is_held_to_its_bound() {
        let store = SqliteStore::open_memory().await.unwrap();
        let now = crate::clock::now_ms();
        // Rejected inputs: one with an absurd future time (it still goes by arrival), and
        // more than the row cap.
        let rejection = |i: i64, time_ms: i64| Rejection {
            time_ms,
            source: "logs".into(),
            origin: format!("g|s|{i}"),
            reason: "invalid_json",
            detail: String::new(),
            raw: "x".into(),
        };
        let rejections: Vec<Rejection> = (0..110).map(|i| rejection(i, now)).collect();
        store.commit(&Batch { rejections, ..Batch::default() }).await.unwrap();
        sqlx::query("UPDATE rejected SET time_ms = 9000000000000000, seen_ms = ? WHERE id = (SELECT MAX(id) FROM rejected)")
            .bind(now - 10 * 86_400_000)
            .execute(store.pool())
            .await
            .unwrap();
        // Stream states: one written long ago, one just now.
        let state = |stream: &str| StreamStateRow { log_group: "/aws/lambda/f".into(), stream: stream.into(), state: "{}".into() };
        store.commit(&Batch { stream_states: vec![state("old"), state("new")], ..Batch::default() }).await.unwrap();
        sqlx::query("UPDATE stream_state SET updated_ms = ? WHERE stream = 'old'").bind(now - 3_600_000).execute(store.pool()).await.unwrap();
        // A checkpoint of a log group not polled for longer than retention.
        let cp = |key: &str| Checkpoint { source: "logs".into(), key: key.into(), position_ms: 1, state: None };
        store.commit(&Batch { checkpoints: vec![cp("/aws/lambda/gone"), cp("/aws/lambda/here")], ..Batch::default() }).await.unwrap();
        sqlx::query("UPDATE checkpoints SET updated_ms = ? WHERE key = '/aws/lambda/gone'").bind(now - 40 * 86_400_000).execute(store.pool()).await.unwrap();
        // Alias spans: a superseded one, last seen long ago, and the current one.
        sqlx::query("INSERT INTO alias_history VALUES ('f', 'Dev', '1', 1.0, 0, ?), ('f', 'Dev', '2', 1.0, ?, ?)")
            .bind(now - 40 * 86_400_000)
            .bind(now - 40 * 86_400_000)
            .bind(now)
            .execute(store.pool())
            .await
            .unwrap();

        // Alert transitions: one older than its retention, and more than the cap.
        for i in 0..105 {
            sqlx::query("INSERT INTO alert_transitions (time_ms, alert_key, budget, env, function, operation, quantile, transition, budget_s, samples, severity) VALUES (?, 'k', 'b', 'Dev', 'f', 'op', 0.95, 'firing', 1.0, 1, 'warning')")
                .bind(if i == 0 { now - 500 * 86_400_000 } else { now })
                .execute(store.pool())
                .await
                .unwrap();
        }
        let plan = RetentionPlan {
            events_before_ms: now - 86_400_000,
            transitions_before_ms: now - 400 * 86_400_000,
            streams_idle_before_ms: now - 1_800_000,
            rejected_max_rows: 100,
            transitions_max_rows: 100,
        };
        let p = store.purge(&plan).await.unwrap();
        assert_eq!((p.rejected, p.transitions, p.streams, p.checkpoints, p.aliases), (10, 5, 1, 1, 1), "{p:?}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rejected").fetch_one(store.pool()).await.unwrap();
        assert_eq!(n, 100);
        let far: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rejected WHERE time_ms > 1000000000000000").fetch_one(store.pool()).await.unwrap();
        assert_eq!(far, 0, "an absurd event time does not keep a row for ever");
        let streams: Vec<String> = sqlx::query_scalar("SELECT stream FROM stream_state").fetch_all(store.pool()).await.unwrap();
        assert_eq!(streams, ["new"]);
        let versions: Vec<String> = sqlx::query_scalar("SELECT version FROM alias_history").fetch_all(store.pool()).await.unwrap();
        assert_eq!(versions, ["2"]);
        assert!(store.checkpoint("logs", "/aws/lambda/gone").await.unwrap().is_none());
        assert!(store.checkpoint("logs", "/aws/lambda/here").await.unwrap().is_some());
        // A second pass finds nothing more.
        assert_eq!(store.purge(&plan).await.unwrap().total(), 0);
    }
}
