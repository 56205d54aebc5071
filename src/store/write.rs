//! The write path: one `Batch` (events, late facts about them, rejected inputs, stream
//! states, checkpoints) committed in one transaction, so a checkpoint never moves past
//! events that are not stored, and re-ingesting the same AWS events is a no-op.

use super::event_keys::{event_key, request_id_bytes, trace_id_bytes};
use super::pack::{self, PackedEvent, Packer};
use super::raw::{self, Bind, RawConn};
use super::{SqliteStore, StoreError};
use crate::clock::now_ms;
use crate::model::{Checkpoint, Origin, Rejection, Source, TimingEvent};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A fact learned after an invocation's first events (REPORT's trace id, a later `Task
/// timed out` line), for that invocation's events: those in the same batch get it in memory
/// ([`Annotation::apply`]); the store gives it to stored ones through the invocation rows of
/// its request that began within the span: a trace id is set once on the invocation, flags on
/// its events within their id range, so the cost does not depend on how many rows share the
/// request id.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub function: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub error: bool,
    pub timeout: bool,
    /// The invocation turned out to be a cold start (an `Init Duration` seen after its lines).
    pub cold_start: bool,
    /// The invocation's span, epoch ms: from its START (or as far back as an invocation
    /// lasts, when the START was not seen) to the line that told the fact.
    pub from_ms: i64,
    pub to_ms: i64,
    /// The invocation's START is in this batch, so all its events are too and got the fact
    /// in memory; the store then needs to do nothing, unless some of them were stored before
    /// (an overlap re-read) and their insert was skipped.
    pub in_batch: bool,
}

/// The operation of a REPORT's duration: the event a timeout is marked on.
pub(super) const LAMBDA_DURATION: &str = "Lambda.Duration";

impl Annotation {
    /// Whether it tells anything (most REPORTs only confirm what their lines said).
    pub fn tells_something(&self) -> bool {
        self.trace_id.is_some() || self.error || self.timeout || self.cold_start
    }

    /// Gives the fact to the invocation's events among `events` (one stream's, in time
    /// order, oldest first).
    pub fn apply(&self, events: &mut [TimingEvent]) {
        if !self.tells_something() {
            return;
        }
        for e in events.iter_mut().rev() {
            if e.time_ms < self.from_ms {
                break;
            }
            if e.time_ms > self.to_ms || e.request_id.as_deref() != Some(self.request_id.as_str()) || e.function != self.function {
                continue;
            }
            if e.trace_id.is_none() {
                e.trace_id.clone_from(&self.trace_id);
            }
            e.error |= self.error || self.timeout;
            e.cold_start |= self.cold_start;
            if self.timeout
                && e.operation == LAMBDA_DURATION
                && e.attributes.iter().rev().find(|(k, _)| k == "status").map(|(_, v)| v.as_str()) != Some("timeout")
            {
                e.attributes.push(("status".to_owned(), "timeout".to_owned()));
            }
        }
    }
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
    /// Where every event of the batch came from.
    pub origin: Origin,
    pub events: Vec<TimingEvent>,
    pub annotations: Vec<Annotation>,
    pub rejections: Vec<Rejection>,
    pub stream_states: Vec<StreamStateRow>,
    pub checkpoints: Vec<Checkpoint>,
    /// The lease the batch is written under (a fleet on PostgreSQL): the commit is refused
    /// with `StoreError::LostLease` when the node no longer holds it. None: one daemon.
    pub fence: Option<crate::model::lease::Fence>,
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

const INSERT_SERIES: &str =
    "INSERT OR IGNORE INTO series (account, region, env, function, operation, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const SERIES_ID: &str =
    "SELECT id FROM series WHERE account = ?1 AND region = ?2 AND env = ?3 AND function = ?4 AND operation = ?5 AND source = ?6";

/// (env, function, operation, source) names of a series, within its origin.
pub(super) type SeriesKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The series number of each (env, function, operation, source) of `keys` in `origin`,
/// added to the dictionary when new.
pub(super) fn series_ids<'b>(
    conn: &mut RawConn,
    origin: &Origin,
    keys: impl Iterator<Item = SeriesKey<'b>>,
) -> Result<HashMap<SeriesKey<'b>, i64>, StoreError> {
    let mut ids = HashMap::new();
    for key in keys {
        if ids.contains_key(&key) {
            continue;
        }
        let binds =
            [Bind::Text(&origin.account), Bind::Text(&origin.region), Bind::Text(key.0), Bind::Text(key.1), Bind::Text(key.2), Bind::Text(key.3)];
        conn.execute(INSERT_SERIES, &binds)?;
        let mut id = 0;
        conn.query(SERIES_ID, &binds, |r| id = r.i64(0))?;
        ids.insert(key, id);
    }
    Ok(ids)
}

/// The stored flags of an event.
pub(super) fn flags(e: &TimingEvent) -> i64 {
    // As reports always counted timeouts: on the REPORT's duration only.
    let timeout = e.operation == LAMBDA_DURATION
        && e.attributes.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case("status")).is_some_and(|(_, v)| v.eq_ignore_ascii_case("timeout"));
    (if e.error { pack::ERROR } else { 0 }) | (if e.cold_start { pack::COLD_START } else { 0 }) | (if timeout { pack::TIMEOUT } else { 0 })
}

/// The invocation rows of a request within an annotation's span (any trace id): their ids
/// and the range of their events' ids.
const ANNOTATED_INVOCATIONS: &str = "SELECT i.id, i.first_event, i.last_event FROM invocations i JOIN series s ON s.id = i.series \
     WHERE i.request_id = ?1 AND i.first_ms BETWEEN ?2 AND ?3 AND s.function = ?4";
const SET_TRACE: &str = "UPDATE invocations SET trace_id = ?2 WHERE id = ?1 AND trace_id IS NULL";
/// Sets flags `?4` on an invocation's events within the span that lack one of them.
const SET_FLAGS: &str = "UPDATE event_rows SET flags = flags | ?4 WHERE id BETWEEN ?1 AND ?2 AND invocation = ?3 \
     AND +time_ms BETWEEN ?5 AND ?6 AND (flags & ?4) <> ?4";
/// Marks the invocation's REPORT duration as timed out; returns its series when newly marked.
const MARK_TIMEOUT: &str = "UPDATE event_rows SET flags = flags | 5 WHERE id BETWEEN ?1 AND ?2 AND invocation = ?3 \
     AND +time_ms BETWEEN ?4 AND ?5 AND flags & 4 = 0 AND series IN (SELECT id FROM series WHERE operation = 'Lambda.Duration') \
     RETURNING series";
const SERIES_NAMES: &str = "SELECT env, function FROM series WHERE id = ?1";

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

impl SqliteStore {
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
    // Requests with an event already stored: their annotations go to the store even when
    // the batch gave the fact to its own copies.
    let mut stored_before: HashSet<(&str, &str)> = HashSet::new();
    let series = series_ids(conn, &batch.origin, batch.events.iter().map(|e| (e.env.as_str(), e.function.as_str(), e.operation.as_str(), e.source.as_str())))?;
    let attributes: Vec<Option<String>> = batch.events.iter().map(|e| attributes_json(&e.attributes)).collect();
    {
        let mut packer = Packer::new(conn)?;
        for (e, attributes) in batch.events.iter().zip(&attributes) {
            let stored = packer.insert(&PackedEvent {
                id: None,
                time_ms: e.time_ms,
                series: series[&(e.env.as_str(), e.function.as_str(), e.operation.as_str(), e.source.as_str())],
                function: &e.function,
                duration_s: e.duration_s,
                flags: flags(e),
                key: event_key(&e.idem_key),
                request_id: e.request_id.as_deref(),
                trace_id: e.trace_id.as_deref(),
                attributes: attributes.as_deref(),
            })?;
            let n = u64::from(stored.is_some());
            let s = e.source as usize;
            offered[s] += 1;
            inserted[s] += n;
            if n == 0 {
                if let Some(rid) = &e.request_id {
                    stored_before.insert((&e.function, rid));
                }
            }
            if n > 0 && e.source == Source::Report && e.operation == LAMBDA_DURATION {
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
        packer.finish()?;
    }
    for source in Source::ALL {
        let s = source as usize;
        if offered[s] > 0 {
            outcome.duplicates += offered[s] - inserted[s];
            outcome.inserted.push((source, inserted[s]));
        }
    }

    annotate(conn, &batch.annotations, &stored_before, &mut outcome)?;

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

/// Gives the batch's annotations to stored events: those not already given in memory to
/// all of their invocation's events, merged per invocation; each reaches the invocation rows
/// of its request that began within its span (an index read), then their events by id range.
fn annotate(
    conn: &mut RawConn,
    annotations: &[Annotation],
    stored_before: &HashSet<(&str, &str)>,
    outcome: &mut BatchOutcome,
) -> Result<(), StoreError> {
    // (function, request_id) → (trace_id, error, cold_start, timeout, from_ms, to_ms)
    type Facts<'a> = (Option<&'a str>, bool, bool, bool, i64, i64);
    let mut merged: BTreeMap<(&str, &str), Facts> = BTreeMap::new();
    for a in annotations {
        let key = (a.function.as_str(), a.request_id.as_str());
        if !a.tells_something() || (a.in_batch && !stored_before.contains(&key)) {
            continue;
        }
        let m = merged.entry(key).or_insert((None, false, false, false, a.from_ms, a.to_ms));
        m.0 = m.0.or(a.trace_id.as_deref());
        m.1 |= a.error || a.timeout;
        m.2 |= a.cold_start;
        m.3 |= a.timeout;
        m.4 = m.4.min(a.from_ms);
        m.5 = m.5.max(a.to_ms);
    }
    let mut find = conn.prepare(ANNOTATED_INVOCATIONS)?;
    let mut set_trace = conn.prepare(SET_TRACE)?;
    let mut set_flags = conn.prepare(SET_FLAGS)?;
    let mut mark = conn.prepare(MARK_TIMEOUT)?;
    let mut names = conn.prepare(SERIES_NAMES)?;
    for ((function, rid), &(trace_id, error, cold_start, timeout, from_ms, to_ms)) in &merged {
        let rid_bytes = request_id_bytes(rid);
        let rid_bind = rid_bytes.as_ref().map_or(Bind::Text(rid), |b| Bind::Blob(b));
        let mut invocations = Vec::new();
        find.query(&[rid_bind, Bind::Int(from_ms.saturating_sub(pack::INVOCATION_SPAN_MS)), Bind::Int(to_ms), Bind::Text(function)], |r| {
            invocations.push((r.i64(0), r.i64(1), r.i64(2)))
        })?;
        let bits = (if error { pack::ERROR } else { 0 }) | (if cold_start { pack::COLD_START } else { 0 });
        for (inv, first, last) in invocations {
            if let Some(tid) = trace_id {
                let bytes = trace_id_bytes(tid);
                set_trace.execute(&[Bind::Int(inv), bytes.as_ref().map_or(Bind::Text(tid), |b| Bind::Blob(b))])?;
            }
            let span = [Bind::Int(first), Bind::Int(last), Bind::Int(inv)];
            if bits != 0 {
                let mut binds = span.to_vec();
                binds.extend([Bind::Int(bits), Bind::Int(from_ms), Bind::Int(to_ms)]);
                set_flags.execute(&binds)?;
            }
            if timeout {
                let mut binds = span.to_vec();
                binds.extend([Bind::Int(from_ms), Bind::Int(to_ms)]);
                let mut marked = Vec::new();
                mark.query(&binds, |r| marked.push(r.i64(0)))?;
                for series in marked {
                    names.query(&[Bind::Int(series)], |r| outcome.timeouts_marked.push((r.text(0).into_owned(), r.text(1).into_owned())))?;
                }
            }
        }
    }
    Ok(())
}

/// The attributes as a JSON object with sorted keys (the last value of a repeated key wins),
/// as `serde_json` would write it; by hand, because it runs for every event stored.
pub(super) fn attributes_json(attrs: &[(String, String)]) -> Option<String> {
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
    async fn annotation_fills_trace_id_and_marks_timeouts() {
        let store = SqliteStore::open_memory().await.unwrap();
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
            from_ms: 0,
            to_ms: 2_000,
            in_batch: false,
        };
        let first = store.commit(&Batch { annotations: vec![ann.clone()], ..Batch::default() }).await.unwrap();
        assert_eq!(first.timeouts_marked, [("PROD".to_string(), "GenerateDynamicScenarioHandler".to_string())]);
        let again = store.commit(&Batch { annotations: vec![ann], ..Batch::default() }).await.unwrap();
        assert!(again.timeouts_marked.is_empty(), "a timeout is counted once");
        let rows: Vec<(String, Option<String>, bool, Option<String>)> =
            sqlx::query_as("SELECT operation, trace_id, error, attributes FROM events ORDER BY operation")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(rows.iter().all(|r| r.1.as_deref() == Some("1-5d83c0ad-b8eb33a0b1de97d804fac890") && r.2));
        assert!(rows[1].3.as_deref().unwrap().contains("\"status\":\"timeout\""), "{rows:?}");
        assert!(!rows[0].3.as_deref().unwrap().contains("timeout"));
    }

    /// A Lambda request id is stored in 16 bytes and still found by annotations from a later
    /// batch, and read back as text; another request id stays text.
    #[tokio::test]
    async fn lambda_request_ids_are_stored_compactly_and_still_annotated() {
        let store = SqliteStore::open_memory().await.unwrap();
        let rid = "1c8df7d3-a1b2-46da-9778-518e6eca8125";
        let mut report = event("r", Source::Report);
        report.operation = "Lambda.Duration".into();
        report.request_id = Some(rid.into());
        let mut line = event("a", Source::Logs);
        line.request_id = Some(rid.into());
        store.commit(&Batch { events: vec![line, report, event("other", Source::Logs)], ..Batch::default() }).await.unwrap();
        let stored: Vec<(String, i64)> =
            sqlx::query_as("SELECT typeof(request_id), length(request_id) FROM invocations ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(stored, [("blob".to_string(), 16), ("text".to_string(), 5)], "one row per invocation");
        let ann = Annotation { request_id: rid.into(), ..annotation(rid, 0, 2_000, false) };
        let outcome = store.commit(&Batch { annotations: vec![ann], ..Batch::default() }).await.unwrap();
        assert_eq!(outcome.timeouts_marked.len(), 1, "the REPORT stored with a compact id is found and marked");
        let marked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE trace_id IS NOT NULL AND cold_start").fetch_one(store.pool()).await.unwrap();
        assert_eq!(marked, 2, "both events of the invocation, not the other request's");
        let filter = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, account: None, region: None, operations: &[] };
        let mut read: Vec<Option<String>> = store.list_events(filter, crate::store::events::EventOrder::Slowest, 10).await.unwrap().into_iter().map(|e| e.request_id).collect();
        read.sort();
        assert_eq!(read, [Some(rid.to_string()), Some(rid.to_string()), Some("req-1".to_string())]);
    }

    fn annotation(request_id: &str, from_ms: i64, to_ms: i64, in_batch: bool) -> Annotation {
        Annotation {
            function: "GenerateDynamicScenarioHandler".into(),
            request_id: request_id.into(),
            trace_id: Some("1-5d83c0ad-b8eb33a0b1de97d804fac890".into()),
            error: false,
            timeout: true,
            cold_start: true,
            from_ms,
            to_ms,
            in_batch,
        }
    }

    async fn facts(store: &SqliteStore) -> Vec<(i64, Option<String>, bool, bool, Option<String>)> {
        sqlx::query_as("SELECT time_ms, trace_id, error, cold_start, attributes FROM events ORDER BY time_ms, id").fetch_all(store.pool()).await.unwrap()
    }

    /// A request id shared by other invocations (hours apart) is not a reason to touch their
    /// rows: the annotation reaches only its invocation's span, through the index.
    #[tokio::test]
    async fn an_annotation_reaches_only_its_invocation() {
        let store = SqliteStore::open_memory().await.unwrap();
        let mut events = Vec::new();
        for (i, t) in [(0, 1_000), (1, 3_600_000), (2, 3_601_000)] {
            let mut e = event(&format!("k{i}"), Source::Logs);
            e.time_ms = t;
            events.push(e);
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        store.commit(&Batch { annotations: vec![annotation("req-1", 3_600_000, 3_602_000, false)], ..Batch::default() }).await.unwrap();
        let rows = facts(&store).await;
        assert_eq!(rows[0].1, None, "an earlier invocation with the same request id is left alone: {rows:?}");
        assert!(rows[1..].iter().all(|r| r.1.is_some() && r.2 && r.3), "{rows:?}");

        let find = explain(&store, ANNOTATED_INVOCATIONS).await;
        assert!(find.contains("USING INDEX invocations_request (request_id=? AND first_ms>? AND first_ms<?)"), "{find}");
        let set = explain(&store, SET_FLAGS).await;
        assert!(set.contains("USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "an annotation reads its invocation's id range only: {set}");
    }

    async fn explain(store: &SqliteStore, sql: &str) -> String {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(store.pool()).await.unwrap();
        plan.into_iter().map(|p| p.3).collect::<Vec<_>>().join("; ")
    }

    /// Annotations whose invocation is wholly in the batch were applied in memory; the store
    /// writes them only for events it already held (an overlap re-read skipped their insert).
    #[tokio::test]
    async fn in_batch_annotations_reach_rows_stored_before() {
        let store = SqliteStore::open_memory().await.unwrap();
        let mut report = event("r", Source::Report);
        report.operation = LAMBDA_DURATION.into();
        let earlier = vec![event("a", Source::Logs), report.clone()];
        store.commit(&Batch { events: earlier.clone(), ..Batch::default() }).await.unwrap();
        // The re-read: the same events, given the REPORT's facts in memory, and a new one.
        let ann = annotation("req-1", 0, 2_000, true);
        let mut again = earlier;
        again.push(event("b", Source::Logs));
        ann.apply(&mut again);
        assert!(again.iter().all(|e| e.trace_id.is_some() && e.error && e.cold_start));
        assert!(again[1].attributes.contains(&("status".into(), "timeout".into())));
        let outcome = store.commit(&Batch { events: again, annotations: vec![ann.clone()], ..Batch::default() }).await.unwrap();
        assert_eq!(outcome.inserted_total(), 1);
        assert_eq!(outcome.timeouts_marked.len(), 1, "the stored REPORT is marked (and counted) once");
        assert!(facts(&store).await.iter().all(|r| r.1.is_some() && r.2 && r.3));

        // All new: the facts travelled with the rows, and the REPORT's timeout is in its row.
        let fresh = SqliteStore::open_memory().await.unwrap();
        let mut events = vec![event("a", Source::Logs), report];
        ann.apply(&mut events);
        let outcome = fresh.commit(&Batch { events, annotations: vec![ann], ..Batch::default() }).await.unwrap();
        assert!(outcome.timeouts_marked.is_empty());
        assert!(outcome.new_reports[0].timeout);
        assert!(facts(&fresh).await.iter().all(|r| r.1.is_some() && r.2 && r.3));
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
        let store = SqliteStore::open_memory().await.unwrap();
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

#[cfg(test)]
mod origin_tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::store::events::{EventSelection, ScanColumns};

    /// The same function and operation in two accounts (or regions) are two series, each
    /// read back with its origin; a batch without one is the default account's.
    #[tokio::test]
    async fn the_same_names_in_two_origins_are_two_series() {
        let store = SqliteStore::open_memory().await.unwrap();
        let event = |key: &str| TimingEvent {
            time_ms: 1_000,
            env: "PROD".into(),
            function: "f".into(),
            operation: "Bedrock.InvokeModel".into(),
            source: Source::Xray,
            duration_s: 1.0,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: key.into(),
            attributes: vec![],
        };
        let origins = [
            Origin { account: "prod".into(), region: "us-east-1".into() },
            Origin { account: "prod".into(), region: "eu-west-1".into() },
            Origin { account: "dev".into(), region: "us-east-1".into() },
            Origin::default(),
        ];
        for (i, origin) in origins.iter().enumerate() {
            store.commit(&Batch { origin: origin.clone(), events: vec![event(&format!("k{i}"))], ..Batch::default() }).await.unwrap();
        }
        let series: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM series").fetch_one(store.pool()).await.unwrap();
        assert_eq!(series, 4);
        let sel = EventSelection { from_ms: 0, to_ms: 2_000, env: None, function: None, account: None, region: None, operations: &[] };
        let mut seen: Vec<(String, String)> = store
            .scan_events(&sel, ScanColumns::default(), Vec::new, |v, e| {
                v.push((String::from_utf8_lossy(e.account).into_owned(), String::from_utf8_lossy(e.region).into_owned()))
            })
            .await
            .unwrap()
            .into_iter()
            .flat_map(|(v, _)| v)
            .collect();
        seen.sort();
        let want: Vec<(String, String)> =
            [("default", ""), ("dev", "us-east-1"), ("prod", "eu-west-1"), ("prod", "us-east-1")].iter().map(|(a, r)| (a.to_string(), r.to_string())).collect();
        assert_eq!(seen, want);
        let window: Vec<(String, String)> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| (e.account, e.region)).collect();
        assert_eq!(window.len(), 4);
        assert_eq!(window[0], ("prod".to_string(), "us-east-1".to_string()));

        // Rolled up, each origin keeps its own row.
        assert_eq!(store.roll_hour(0).await.unwrap(), 4);
        let mut rolled = Vec::new();
        let filter = crate::store::rollups::RollupFilter { env: None, function: None, account: None, region: None, operations: &[] };
        store.scan_rollups(crate::store::rollups::Resolution::Hour, 0, 3_600_000, &filter, |_, r| rolled.push((r.account, r.region, r.counts.count))).await.unwrap();
        rolled.sort();
        assert_eq!(rolled.len(), 4, "{rolled:?}");
        assert!(rolled.iter().all(|r| r.2 == 1), "{rolled:?}");
        assert_eq!(rolled[0], ("default".to_string(), String::new(), 1));
    }
}
