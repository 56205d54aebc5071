//! The write path: one `Batch` (events, late facts about them, rejected inputs, stream
//! states, checkpoints) committed in one transaction, so a checkpoint never moves past
//! events that are not stored, and re-ingesting the same AWS events is a no-op.

use super::{Store, StoreError, now_ms};
use crate::model::{Checkpoint, Rejection, Source, TimingEvent};
use sqlx::{QueryBuilder, Sqlite};

/// Rows per multi-row INSERT: 15 binds each, well under SQLite's variable limit.
const INSERT_CHUNK: usize = 256;

/// A fact learned after an invocation's events were stored (REPORT's trace id, a later
/// `Task timed out` line), applied to that request's events.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub function: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub error: bool,
    pub timeout: bool,
    /// The invocation turned out to be a cold start (an `Init Duration` seen after its lines).
    pub cold_start: bool,
}

/// Saved state of one log stream (the open invocation), as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStateRow {
    pub log_group: String,
    pub stream: String,
    pub state: String,
}

/// Everything one poll step commits together.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub events: Vec<TimingEvent>,
    pub annotations: Vec<Annotation>,
    pub rejections: Vec<Rejection>,
    pub stream_states: Vec<StreamStateRow>,
    pub checkpoints: Vec<Checkpoint>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.annotations.is_empty()
            && self.rejections.is_empty()
            && self.stream_states.is_empty()
            && self.checkpoints.is_empty()
    }
}

/// What a commit changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Newly stored events per source.
    pub inserted: Vec<(Source, u64)>,
    /// Events that were already stored (overlapping polls, re-ingested files).
    pub duplicates: u64,
    /// Rejected inputs newly recorded.
    pub rejected: u64,
    /// Newly stored `Lambda.Duration` events: what Lambda-level counters are derived from,
    /// so an overlapping re-read never counts a cold start twice.
    pub new_reports: Vec<NewReport>,
    /// (env, function) of each invocation newly marked as timed out by a later
    /// `Task timed out` line.
    pub timeouts_marked: Vec<(String, String)>,
}

/// A newly stored platform report.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    pub env: String,
    pub function: String,
    pub cold_start: bool,
    pub error: bool,
    pub timeout: bool,
    pub max_memory_mb: Option<u64>,
}

impl BatchOutcome {
    pub fn inserted_total(&self) -> u64 {
        self.inserted.iter().map(|(_, n)| n).sum()
    }
}

impl Store {
    /// Commits a batch atomically.
    pub async fn commit(&self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut outcome = BatchOutcome::default();

        for source in Source::ALL {
            let events: Vec<&TimingEvent> = batch.events.iter().filter(|e| e.source == source).collect();
            let mut inserted = 0u64;
            for chunk in events.chunks(INSERT_CHUNK) {
                let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "INSERT OR IGNORE INTO events (time_ms, env, function, operation, source, duration_s, request_id, \
                     trace_id, function_version, cold_start, error, attributes, idem_key, ingested_ms) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.time_ms)
                        .push_bind(&e.env)
                        .push_bind(&e.function)
                        .push_bind(&e.operation)
                        .push_bind(e.source.as_str())
                        .push_bind(e.duration_s)
                        .push_bind(&e.request_id)
                        .push_bind(&e.trace_id)
                        .push_bind(&e.function_version)
                        .push_bind(e.cold_start)
                        .push_bind(e.error)
                        .push_bind(attributes_json(&e.attributes))
                        .push_bind(&e.idem_key)
                        .push_bind(now);
                });
                if source == Source::Report {
                    q.push(" RETURNING env, function, operation, cold_start, error, attributes");
                    let rows: Vec<(String, String, String, bool, bool, Option<String>)> =
                        q.build_query_as().fetch_all(&mut *tx).await?;
                    inserted += rows.len() as u64;
                    outcome.new_reports.extend(rows.into_iter().filter(|r| r.2 == "Lambda.Duration").map(
                        |(env, function, _, cold_start, error, attributes)| {
                            let attrs: serde_json::Value = attributes
                                .and_then(|a| serde_json::from_str(&a).ok())
                                .unwrap_or(serde_json::Value::Null);
                            NewReport {
                                env,
                                function,
                                cold_start,
                                error,
                                timeout: attrs.get("status").and_then(|v| v.as_str()) == Some("timeout"),
                                max_memory_mb: attrs.get("max_memory_mb").and_then(|v| v.as_str()).and_then(|v| v.parse().ok()),
                            }
                        },
                    ));
                } else {
                    inserted += q.build().execute(&mut *tx).await?.rows_affected();
                }
            }
            if !events.is_empty() {
                outcome.duplicates += events.len() as u64 - inserted;
                outcome.inserted.push((source, inserted));
            }
        }

        for a in &batch.annotations {
            // Most REPORTs only confirm what their lines already said; an UPDATE per
            // invocation would then be pure cost.
            if a.trace_id.is_none() && !a.error && !a.timeout && !a.cold_start {
                continue;
            }
            sqlx::query(
                "UPDATE events SET trace_id = COALESCE(trace_id, ?), error = (error OR ?), cold_start = (cold_start OR ?) \
                 WHERE request_id = ? AND function = ?",
            )
            .bind(&a.trace_id)
            .bind(a.error || a.timeout)
            .bind(a.cold_start)
            .bind(&a.request_id)
            .bind(&a.function)
            .execute(&mut *tx)
            .await?;
            if a.timeout {
                let marked: Vec<(String, String)> = sqlx::query_as(
                    "UPDATE events SET attributes = json_set(COALESCE(attributes, '{}'), '$.status', 'timeout') \
                     WHERE request_id = ? AND function = ? AND operation = 'Lambda.Duration' \
                     AND COALESCE(json_extract(attributes, '$.status'), '') <> 'timeout' RETURNING env, function",
                )
                .bind(&a.request_id)
                .bind(&a.function)
                .fetch_all(&mut *tx)
                .await?;
                outcome.timeouts_marked.extend(marked);
            }
        }

        for r in &batch.rejections {
            let raw = cap_utf8(&r.raw, self.rejected_max_bytes);
            let detail = cap_utf8(&r.detail, 1024);
            outcome.rejected += sqlx::query(
                "INSERT OR IGNORE INTO rejected (seen_ms, time_ms, source, origin, reason, detail, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(now)
            .bind(r.time_ms)
            .bind(&r.source)
            .bind(&r.origin)
            .bind(r.reason)
            .bind(detail)
            .bind(raw)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }

        for s in &batch.stream_states {
            sqlx::query(
                "INSERT INTO stream_state (log_group, stream, state, updated_ms) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (log_group, stream) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
            )
            .bind(&s.log_group)
            .bind(&s.stream)
            .bind(&s.state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        for c in &batch.checkpoints {
            upsert_checkpoint(&mut tx, c, now).await?;
        }

        tx.commit().await?;
        Ok(outcome)
    }
}

/// Writes a checkpoint inside the caller's transaction. Positions never move backwards: a
/// wall clock stepped back must not re-open windows already covered, and a poll cut short
/// resumes from at least the previous position minus the source's overlap anyway.
pub(super) async fn upsert_checkpoint(conn: &mut sqlx::SqliteConnection, c: &Checkpoint, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkpoints (source, key, position_ms, state, updated_ms) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (source, key) DO UPDATE SET position_ms = MAX(checkpoints.position_ms, excluded.position_ms), \
         state = excluded.state, updated_ms = excluded.updated_ms",
    )
    .bind(&c.source)
    .bind(&c.key)
    .bind(c.position_ms)
    .bind(&c.state)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn attributes_json(attrs: &[(String, String)]) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> =
        attrs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// The longest prefix of `s` that fits in `max` bytes without splitting a character.
pub(crate) fn cap_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str, source: Source) -> TimingEvent {
        TimingEvent {
            time_ms: 1_000,
            env: "PROD".into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: "BedrockCallDuration".into(),
            source,
            duration_s: 2.847,
            request_id: Some("req-1".into()),
            trace_id: None,
            function_version: Some("12".into()),
            cold_start: false,
            error: false,
            idem_key: key.into(),
            attributes: vec![("app_function".into(), "GDSH".into())],
        }
    }

    #[tokio::test]
    async fn same_batch_twice_stores_once_and_checkpoint_moves_with_it() {
        let store = Store::open_memory().await.unwrap();
        let batch = Batch {
            events: vec![event("a", Source::Logs), event("b", Source::Report)],
            checkpoints: vec![Checkpoint { source: "logs".into(), key: "/aws/lambda/x".into(), position_ms: 5, state: None }],
            ..Batch::default()
        };
        let first = store.commit(&batch).await.unwrap();
        assert_eq!(first.inserted_total(), 2);
        assert_eq!(first.duplicates, 0);
        let second = store.commit(&batch).await.unwrap();
        assert_eq!(second.inserted_total(), 0);
        assert_eq!(second.duplicates, 2);
        assert_eq!(store.count_events(None).await.unwrap(), 2);
        assert_eq!(store.checkpoint("logs", "/aws/lambda/x").await.unwrap().unwrap().position_ms, 5);
    }

    #[tokio::test]
    async fn annotation_fills_trace_id_and_marks_timeouts() {
        let store = Store::open_memory().await.unwrap();
        let mut report = event("r", Source::Report);
        report.operation = "Lambda.Duration".into();
        store.commit(&Batch { events: vec![event("a", Source::Logs), report], ..Batch::default() }).await.unwrap();
        let ann = Annotation {
            function: "GenerateDynamicScenarioHandler".into(),
            request_id: "req-1".into(),
            trace_id: Some("1-5d83c0ad-b8eb33a0b1de97d804fac890".into()),
            error: false,
            timeout: true,
            cold_start: false,
        };
        store.commit(&Batch { annotations: vec![ann], ..Batch::default() }).await.unwrap();
        let rows: Vec<(String, Option<String>, bool, Option<String>)> =
            sqlx::query_as("SELECT operation, trace_id, error, attributes FROM events ORDER BY operation")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(rows.iter().all(|r| r.1.as_deref() == Some("1-5d83c0ad-b8eb33a0b1de97d804fac890") && r.2));
        assert!(rows[1].3.as_deref().unwrap().contains("\"status\":\"timeout\""), "{rows:?}");
        assert!(!rows[0].3.as_deref().unwrap().contains("timeout"));
    }

    #[tokio::test]
    async fn rejected_raw_text_is_capped_and_not_duplicated() {
        let store = Store::open_memory().await.unwrap();
        let r = Rejection {
            time_ms: 1,
            source: "logs".into(),
            origin: "g|s|1".into(),
            reason: "invalid_json",
            detail: "truncated".into(),
            raw: "é".repeat(10_000),
        };
        let batch = Batch { rejections: vec![r.clone(), r], ..Batch::default() };
        assert_eq!(store.commit(&batch).await.unwrap().rejected, 1);
        let raw: String = sqlx::query_scalar("SELECT raw FROM rejected").fetch_one(store.pool()).await.unwrap();
        assert!(raw.len() <= 4096 && raw.len() > 4000);
    }
}
