//! The write path: one `Batch` (events, late facts about them, rejected inputs, stream
//! states, checkpoints) committed in one transaction, so a checkpoint never moves past
//! events that are not stored, and re-ingesting the same AWS events is a no-op.

use super::raw::{self, Bind, RawConn};
use super::{Store, StoreError};
use crate::clock::now_ms;
use crate::model::{Checkpoint, Rejection, Source, TimingEvent};

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

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO events (time_ms, env, function, operation, source, duration_s, request_id, \
     trace_id, function_version, cold_start, error, attributes, idem_key, ingested_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const ANNOTATE: &str = "UPDATE events SET trace_id = COALESCE(trace_id, ?1), error = (error OR ?2), cold_start = (cold_start OR ?3) \
     WHERE request_id = ?4 AND function = ?5";

const MARK_TIMEOUT: &str = "UPDATE events SET attributes = json_set(COALESCE(attributes, '{}'), '$.status', 'timeout') \
     WHERE request_id = ?1 AND function = ?2 AND operation = 'Lambda.Duration' \
     AND COALESCE(json_extract(attributes, '$.status'), '') <> 'timeout' RETURNING env, function";

const INSERT_REJECTED: &str =
    "INSERT OR IGNORE INTO rejected (seen_ms, time_ms, source, origin, reason, detail, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const UPSERT_STREAM_STATE: &str = "INSERT INTO stream_state (log_group, stream, state, updated_ms) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (log_group, stream) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms";

/// Positions never move backwards: a wall clock stepped back must not re-open windows
/// already covered, and a poll cut short resumes from at least the previous position minus
/// the source's overlap anyway.
const UPSERT_CHECKPOINT: &str = "INSERT INTO checkpoints (source, key, position_ms, state, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (source, key) DO UPDATE SET position_ms = MAX(checkpoints.position_ms, excluded.position_ms), \
     state = excluded.state, updated_ms = excluded.updated_ms";

impl Store {
    /// Commits a batch atomically. The rows go through SQLite's C API with statements
    /// prepared once per batch ([`super::raw`]): through sqlx each statement and row would
    /// cost a thread hand-off, which at ingest rates costs more than SQLite does.
    pub async fn commit(&self, batch: &Batch) -> Result<BatchOutcome, StoreError> {
        let now = now_ms();
        let rejected_max = self.rejected_max_bytes;
        let outcome = raw::with_conn(self, |conn| conn.transaction(|conn| write_batch(conn, batch, now, rejected_max))).await?;
        self.checkpoint_in_background();
        Ok(outcome)
    }
}

fn write_batch(conn: &mut RawConn, batch: &Batch, now: i64, rejected_max: usize) -> Result<BatchOutcome, StoreError> {
    let mut outcome = BatchOutcome::default();
    let mut offered = [0u64; Source::ALL.len()];
    let mut inserted = [0u64; Source::ALL.len()];
    {
        let mut insert = conn.prepare(INSERT_EVENT)?;
        for e in &batch.events {
            let attributes = attributes_json(&e.attributes);
            let n = insert.execute(&[
                Bind::Int(e.time_ms),
                Bind::Text(&e.env),
                Bind::Text(&e.function),
                Bind::Text(&e.operation),
                Bind::Text(e.source.as_str()),
                Bind::Real(e.duration_s),
                Bind::opt_text(&e.request_id),
                Bind::opt_text(&e.trace_id),
                Bind::opt_text(&e.function_version),
                Bind::flag(e.cold_start),
                Bind::flag(e.error),
                Bind::opt_text(&attributes),
                Bind::Text(&e.idem_key),
                Bind::Int(now),
            ])?;
            let s = e.source as usize;
            offered[s] += 1;
            inserted[s] += n;
            if n > 0 && e.source == Source::Report && e.operation == "Lambda.Duration" {
                let attr = |k: &str| e.attributes.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                outcome.new_reports.push(NewReport {
                    env: e.env.clone(),
                    function: e.function.clone(),
                    cold_start: e.cold_start,
                    error: e.error,
                    timeout: attr("status") == Some("timeout"),
                    max_memory_mb: attr("max_memory_mb").and_then(|v| v.parse().ok()),
                });
            }
        }
    }
    for source in Source::ALL {
        let s = source as usize;
        if offered[s] > 0 {
            outcome.duplicates += offered[s] - inserted[s];
            outcome.inserted.push((source, inserted[s]));
        }
    }

    {
        let mut annotate = conn.prepare(ANNOTATE)?;
        let mut mark_timeout = conn.prepare(MARK_TIMEOUT)?;
        for a in &batch.annotations {
            // Most REPORTs only confirm what their lines already said; an UPDATE per
            // invocation would then be pure cost.
            if a.trace_id.is_none() && !a.error && !a.timeout && !a.cold_start {
                continue;
            }
            annotate.execute(&[
                Bind::opt_text(&a.trace_id),
                Bind::flag(a.error || a.timeout),
                Bind::flag(a.cold_start),
                Bind::Text(&a.request_id),
                Bind::Text(&a.function),
            ])?;
            if a.timeout {
                mark_timeout.query(&[Bind::Text(&a.request_id), Bind::Text(&a.function)], |r| {
                    outcome.timeouts_marked.push((r.text(0).into_owned(), r.text(1).into_owned()))
                })?;
            }
        }
    }

    {
        let mut insert = conn.prepare(INSERT_REJECTED)?;
        for r in &batch.rejections {
            outcome.rejected += insert.execute(&[
                Bind::Int(now),
                Bind::Int(r.time_ms),
                Bind::Text(&r.source),
                Bind::Text(&r.origin),
                Bind::Text(r.reason),
                Bind::Text(cap_utf8(&r.detail, 1024)),
                Bind::Text(cap_utf8(&r.raw, rejected_max)),
            ])?;
        }
    }

    {
        let mut upsert = conn.prepare(UPSERT_STREAM_STATE)?;
        for s in &batch.stream_states {
            upsert.execute(&[Bind::Text(&s.log_group), Bind::Text(&s.stream), Bind::Text(&s.state), Bind::Int(now)])?;
        }
    }

    {
        let mut upsert = conn.prepare(UPSERT_CHECKPOINT)?;
        for c in &batch.checkpoints {
            upsert.execute(&[Bind::Text(&c.source), Bind::Text(&c.key), Bind::Int(c.position_ms), Bind::opt_text(&c.state), Bind::Int(now)])?;
        }
    }
    Ok(outcome)
}

/// Writes a checkpoint inside the caller's sqlx transaction (the X-Ray poller's path).
pub(super) async fn upsert_checkpoint(conn: &mut sqlx::SqliteConnection, c: &Checkpoint, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(UPSERT_CHECKPOINT).bind(&c.source).bind(&c.key).bind(c.position_ms).bind(&c.state).bind(now).execute(conn).await?;
    Ok(())
}

/// The attributes as a JSON object with sorted keys (the last value of a repeated key wins),
/// as `serde_json` would write it; by hand, because it runs for every event stored.
fn attributes_json(attrs: &[(String, String)]) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut sorted: Vec<(usize, &(String, String))> = attrs.iter().enumerate().collect();
    sorted.sort_by(|(i, a), (j, b)| a.0.cmp(&b.0).then(j.cmp(i)));
    sorted.dedup_by(|b, a| a.1.0 == b.1.0);
    let mut out = String::with_capacity(2 + attrs.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>());
    out.push('{');
    for (n, (_, (k, v))) in sorted.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_json_string(&mut out, k);
        out.push(':');
        push_json_string(&mut out, v);
    }
    out.push('}');
    Some(out)
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
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

    #[test]
    fn attributes_are_written_as_serde_json_writes_them() {
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let reference = |attrs: &[(String, String)]| {
            let map: serde_json::Map<String, serde_json::Value> =
                attrs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            serde_json::Value::Object(map).to_string()
        };
        assert_eq!(attributes_json(&[]), None);
        for attrs in [
            pairs(&[("status", "timeout"), ("max_memory_mb", "102")]),
            pairs(&[("k", "first"), ("a", "x"), ("k", "second")]),
            pairs(&[("q\"uote", "back\\slash\n\t\r\u{1}\u{8}\u{c}é✓")]),
        ] {
            assert_eq!(attributes_json(&attrs).unwrap(), reference(&attrs));
        }
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
