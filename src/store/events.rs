//! Typed reads of raw events: a range scanned in parallel slices for reports, the events
//! after an id (the evaluator follows new events by id) and those inside its windows at
//! start, the slowest invocations of a range, and the highest event id ever handed out,
//! against which every reader that follows events by id checks its watermark. All through
//! the raw path, so a request's view interrupts them.

use super::raw::{self, Bind, scan};
use super::event_keys::{request_id_text_sql, trace_id_text_sql};
use super::pack::{self, DURATION_SQL, read_duration, time_range_sql};
use super::portable::Value;
use super::{SqliteStore, StoreError};
use std::sync::Arc;

/// Which raw events a report reads: `[from_ms, to_ms)`, optionally of one env and function,
/// and of some operations (empty: all).
#[derive(Debug, Clone, Copy)]
pub struct EventSelection<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<&'a str>,
    pub function: Option<&'a str>,
    /// Only this account and region.
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub operations: &'a [String],
}

impl EventSelection<'_> {
    /// The conditions on the series (plain `?` placeholders, numbered after any earlier
    /// ones), and their values: on the series number, so a scan compares one integer per
    /// row. The same on both engines.
    pub(crate) fn filters(&self) -> (String, Vec<Value<'_>>) {
        let mut sql = String::new();
        let mut values = Vec::new();
        for (column, value) in [("env", self.env), ("function", self.function), ("account", self.account), ("region", self.region)] {
            if let Some(v) = value {
                values.push(Value::Text(v));
                sql.push_str(&format!(" AND {column} = ?"));
            }
        }
        if !self.operations.is_empty() {
            sql.push_str(&format!(" AND operation IN ({})", vec!["?"; self.operations.len()].join(", ")));
            values.extend(self.operations.iter().map(|o| Value::Text(o)));
        }
        if sql.is_empty() {
            return (sql, values);
        }
        (format!(" AND e.series IN (SELECT id FROM series WHERE 1 = 1{sql})"), values)
    }
}

/// The conditions of an [`EventFilter`] beyond its time range, on `series s` (plain `?`
/// placeholders), and their values: the same on both engines.
pub(crate) fn event_filter_sql<'f>(f: &EventFilter<'f>) -> (String, Vec<Value<'f>>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    if !f.operations.is_empty() {
        sql.push_str(&format!(" AND s.operation IN ({})", vec!["?"; f.operations.len()].join(", ")));
        values.extend(f.operations.iter().map(|o| Value::Text(o)));
    }
    for (column, value) in [("env", f.env), ("function", f.function), ("account", f.account), ("region", f.region)] {
        if let Some(v) = value {
            values.push(Value::Text(v));
            sql.push_str(&format!(" AND s.{column} = ?"));
        }
    }
    (sql, values)
}

/// Values as the raw SQLite path binds them.
pub(super) fn binds<'a>(values: &[Value<'a>]) -> Vec<Bind<'a>> {
    values
        .iter()
        .map(|v| match *v {
            Value::Int(i) => Bind::Int(i),
            Value::Float(f) => Bind::Real(f),
            Value::Text(t) => Bind::Text(t),
            Value::Blob(b) => Bind::Blob(b),
            _ => Bind::Null,
        })
        .collect()
}

/// The series dictionary, indexed by number: (env, function, operation, source, account,
/// region).
pub(super) type SeriesNames = Vec<Option<[String; 6]>>;

/// The fields of one event a report groups by and counts, borrowed from SQLite's row.
#[derive(Debug, Clone, Copy)]
pub struct ScannedEvent<'r> {
    pub account: &'r [u8],
    pub region: &'r [u8],
    pub env: &'r [u8],
    pub function: &'r [u8],
    pub operation: &'r [u8],
    pub source: &'r [u8],
    pub duration_s: f64,
    pub error: bool,
    /// 0 unless asked for.
    pub time_ms: i64,
    /// false unless the invocation flags were asked for.
    pub cold_start: bool,
    pub timeout: bool,
}

/// What a scan reads beyond the series, duration and error flag.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanColumns {
    pub time: bool,
    /// Cold start and timeout.
    pub invocations: bool,
}

/// Raw ranges shorter than this are scanned in one piece.
const MIN_SLICE_MS: i64 = 60_000;
/// Most slices (threads and connections) one range is scanned in.
const MAX_SLICES: usize = 4;

/// How many slices to ask for: one per core, at most [`MAX_SLICES`], none shorter than
/// [`MIN_SLICE_MS`].
fn wanted_slices(from_ms: i64, to_ms: i64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_length = usize::try_from((to_ms - from_ms) / MIN_SLICE_MS).unwrap_or(usize::MAX).max(1);
    cores.clamp(1, MAX_SLICES).min(by_length)
}

/// Slice `i` of `n` equal slices of `[from_ms, to_ms)`.
fn slice(from_ms: i64, to_ms: i64, i: usize, n: usize) -> (i64, i64) {
    let (i, n) = (i as i64, n.max(1) as i64);
    let step = (to_ms - from_ms) / n;
    (from_ms + i * step, if i == n - 1 { to_ms } else { from_ms + (i + 1) * step })
}

/// The id ranges that hold the events of `[from_ms, to_ms)`, in id order: `(first, last,
/// whole)`, `whole` when every event of the range's blocks lies inside (consecutive such
/// blocks merged into one range), else the range must be read with a time check.
fn id_ranges(conn: &raw::RawConn, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, i64, bool)>, StoreError> {
    let mut out: Vec<(i64, i64, bool)> = Vec::new();
    conn.query(
        "SELECT block, min_ms, max_ms FROM event_blocks WHERE max_ms >= ?1 AND min_ms < ?2 ORDER BY block",
        &[Bind::Int(from_ms), Bind::Int(to_ms)],
        |r| {
            let (block, min_ms, max_ms) = (r.i64(0), r.i64(1), r.i64(2));
            let (lo, hi) = (block << pack::BLOCK_SHIFT, ((block + 1) << pack::BLOCK_SHIFT) - 1);
            let whole = min_ms >= from_ms && max_ms < to_ms;
            match out.last_mut() {
                Some(last) if whole && last.2 && last.1 + 1 == lo => last.1 = hi,
                _ => out.push((lo, hi, whole)),
            }
        },
    )?;
    Ok(out)
}

/// One event as the evaluator keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowEvent {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub source: String,
    pub time_ms: i64,
    pub duration_s: f64,
    pub error: bool,
}

/// The columns of a [`WindowEvent`]; names come from the series dictionary, not a join per row.
const WINDOW_COLUMNS: &str = "e.id, e.series, e.time_ms, e.duration, e.flags";

fn window_event(r: &raw::Row<'_>, names: &SeriesNames) -> WindowEvent {
    let series = usize::try_from(r.i64(1)).ok().and_then(|i| names.get(i)).and_then(Option::as_ref);
    let name = |k: usize| series.map_or_else(String::new, |s| s[k].clone());
    WindowEvent {
        id: r.i64(0),
        account: name(4),
        region: name(5),
        env: name(0),
        function: name(1),
        operation: name(2),
        source: name(3),
        time_ms: r.i64(2),
        duration_s: read_duration(r, 3),
        error: r.i64(4) & pack::ERROR != 0,
    }
}

/// One stored event, as the slowest-invocations list shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRow {
    pub time_ms: i64,
    /// Where it came from; left out for the default origin (a config without accounts).
    #[serde(skip_serializing_if = "crate::model::is_default_account")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    /// `logs` or `xray`.
    pub source: String,
    pub duration_s: f64,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub cold_start: bool,
    pub timeout: bool,
    pub error: bool,
}

/// Which events a listing returns first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOrder {
    /// Slowest first (earlier first among equals).
    Slowest,
    /// Newest first, only events of a known invocation (a request or trace id): what
    /// learning which operations time the same call reads.
    NewestOfInvocations,
}

impl EventOrder {
    /// The condition and ordering it adds (`e` the events, `duration` the duration's SQL,
    /// `invocation` a column that is NULL without an invocation).
    pub fn sql(self, duration: &str, invocation: &str) -> String {
        match self {
            EventOrder::Slowest => format!(" ORDER BY {duration} DESC, e.time_ms"),
            EventOrder::NewestOfInvocations => format!(" AND {invocation} IS NOT NULL ORDER BY e.time_ms DESC"),
        }
    }
}

/// Which events: `operations` in `[from_ms, to_ms)`, optionally of one env, function,
/// account and region.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<&'a str>,
    pub function: Option<&'a str>,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub operations: &'a [&'a str],
}

impl SqliteStore {
    /// Reads `sel`'s events in equal time slices at once, each on its own connection and
    /// thread (SQLite decodes one row at a time per connection, and decoding is most of a
    /// large report's time): each slice folds its rows into its own `init()` with `each`.
    /// Returns every slice's accumulator and its number of rows.
    pub async fn scan_events<T: Send>(
        &self,
        sel: &EventSelection<'_>,
        columns: ScanColumns,
        init: impl Fn() -> T + Sync,
        each: impl Fn(&mut T, &ScannedEvent<'_>) + Sync,
    ) -> Result<Vec<(T, u64)>, StoreError> {
        // Raw columns: the duration's form and the flags' bits are read here, not by an SQL
        // expression per row.
        let mut list = String::from("e.series, e.duration, e.flags");
        if columns.time {
            list.push_str(", e.time_ms");
        }
        // Blocks wholly inside the range are read as id ranges without a time check per row;
        // the blocks that straddle an end of the range (or of a slice) with one.
        // Plain `?` after `?1`..`?4` take the next numbers.
        let (filter, values) = sel.filters();
        let (inner_filter, inner_binds) = (filter.clone(), binds(&values));
        let (edge_filter, edge_binds) = (filter, binds(&values));
        let inner_sql = format!("SELECT {list} FROM event_rows e WHERE e.id BETWEEN ?1 AND ?2{inner_filter}");
        let edge_sql = format!("SELECT {list} FROM event_rows e WHERE e.id BETWEEN ?1 AND ?2 AND +e.time_ms >= ?3 AND +e.time_ms < ?4{edge_filter}");
        let names = self.series_names().await?;
        let unknown: [Vec<u8>; 6] = Default::default();
        let (from_ms, to_ms) = (sel.from_ms, sel.to_ms);
        raw::parallel(self, wanted_slices(from_ms, to_ms), |i, n, conn| {
            let (from, to) = slice(from_ms, to_ms, i, n);
            let ranges = id_ranges(conn, from, to)?;
            let mut inner = conn.prepare(&inner_sql)?;
            let mut edge = conn.prepare(&edge_sql)?;
            let mut acc = init();
            let mut rows = 0;
            let mut fold = |r: &raw::Row<'_>| {
                let series = usize::try_from(r.i64(0)).ok().and_then(|i| names.get(i)).and_then(Option::as_ref);
                let name = |k: usize| series.map_or(unknown[k].as_slice(), |s| s[k].as_bytes());
                let flags = r.i64(2);
                let e = ScannedEvent {
                    account: name(4),
                    region: name(5),
                    env: name(0),
                    function: name(1),
                    operation: name(2),
                    source: name(3),
                    duration_s: read_duration(r, 1),
                    error: flags & pack::ERROR != 0,
                    time_ms: if columns.time { r.i64(3) } else { 0 },
                    cold_start: columns.invocations && flags & pack::COLD_START != 0,
                    timeout: columns.invocations && flags & pack::TIMEOUT != 0,
                };
                each(&mut acc, &e);
            };
            for &(lo, hi, whole) in &ranges {
                let mut binds = vec![Bind::Int(lo), Bind::Int(hi)];
                rows += if whole {
                    binds.extend_from_slice(&inner_binds);
                    inner.query(&binds, &mut fold)?
                } else {
                    binds.extend([Bind::Int(from), Bind::Int(to)]);
                    binds.extend_from_slice(&edge_binds);
                    edge.query(&binds, &mut fold)?
                };
            }
            Ok((acc, rows))
        })
        .await
    }

    /// The series dictionary. Rows are only ever added, with ids above every earlier one
    /// (never changed or deleted), so the copy last read stays right while it covers the
    /// highest id: the evaluator's reads every second then cost one index lookup, not a
    /// read of the whole dictionary.
    pub(super) async fn series_names(&self) -> Result<Arc<SeriesNames>, StoreError> {
        let mut top = 0;
        scan(self, "SELECT COALESCE(MAX(id), 0) FROM series", &[], |r| top = r.i64(0)).await?;
        let cached = self.series.lock().ok().and_then(|c| c.clone());
        if let Some(names) = cached.filter(|n| usize::try_from(top).is_ok_and(|t| t < n.len())) {
            return Ok(names);
        }
        let mut names: SeriesNames = Vec::new();
        scan(self, "SELECT id, env, function, operation, source, account, region FROM series", &[], |r| {
            if let Ok(i) = usize::try_from(r.i64(0)) {
                if names.len() <= i {
                    names.resize(i + 1, None);
                }
                names[i] = Some(std::array::from_fn(|k| r.text(k + 1).into_owned()));
            }
        })
        .await?;
        let names = Arc::new(names);
        if let Ok(mut slot) = self.series.lock() {
            *slot = Some(names.clone());
        }
        Ok(names)
    }

    /// Up to `limit` events with ids above `after_id`, in id order (commit order).
    pub async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<WindowEvent>, StoreError> {
        let mut out = Vec::new();
        let names = self.series_names().await?;
        let sql = format!("SELECT {WINDOW_COLUMNS} FROM event_rows e WHERE e.id > ?1 ORDER BY e.id LIMIT ?2");
        scan(self, &sql, &[Bind::Int(after_id), Bind::Int(limit)], |r| out.push(window_event(r, &names))).await?;
        Ok(out)
    }

    /// The events with event time from `from_ms` on and ids up to `up_to_id`.
    pub async fn events_from(&self, from_ms: i64, up_to_id: i64) -> Result<Vec<WindowEvent>, StoreError> {
        let mut out = Vec::new();
        let (tables, range) = time_range_sql("e", 1, 2);
        let names = self.series_names().await?;
        let sql = format!("SELECT {WINDOW_COLUMNS} FROM {tables} WHERE {range} AND e.id <= ?3");
        scan(self, &sql, &[Bind::Int(from_ms), Bind::Int(i64::MAX), Bind::Int(up_to_id)], |r| out.push(window_event(r, &names))).await?;
        Ok(out)
    }

    /// The highest event id ever handed out (0 before the first event). Ids are never
    /// reused (`AUTOINCREMENT`), so a reader's watermark above this means the database is not
    /// the one the watermark was taken from (a restored backup, say): the reader starts over.
    pub async fn event_id_high_water(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'event_rows'), 0)").fetch_one(&self.pool).await?)
    }

    /// The first `limit` events matching `f` in `order`.
    pub async fn list_events(&self, f: EventFilter<'_>, order: EventOrder, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut binds: Vec<Bind<'_>> = vec![Bind::Int(f.from_ms), Bind::Int(f.to_ms)];
        let (tables, range) = time_range_sql("e", 1, 2);
        let mut sql = format!(
            "SELECT e.time_ms, s.env, s.function, s.operation, {DURATION_SQL}, {}, {}, (e.flags >> 1) & 1, (e.flags >> 2) & 1, e.flags & 1, s.account, s.region, s.source \
             FROM {tables} JOIN series s ON s.id = e.series LEFT JOIN invocations i ON i.id = e.invocation WHERE {range}",
            request_id_text_sql("i.request_id"),
            trace_id_text_sql("i.trace_id")
        );
        let (filter, values) = event_filter_sql(&f);
        sql.push_str(&filter);
        binds.extend(self::binds(&values));
        binds.push(Bind::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&order.sql(DURATION_SQL, "e.invocation"));
        sql.push_str(&format!(" LIMIT ?{}", binds.len()));
        let opt = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
        let mut out = Vec::new();
        scan(self, &sql, &binds, |r| {
            out.push(EventRow {
                time_ms: r.i64(0),
                account: r.text(10).into_owned(),
                region: r.text(11).into_owned(),
                source: r.text(12).into_owned(),
                env: r.text(1).into_owned(),
                function: r.text(2).into_owned(),
                operation: r.text(3).into_owned(),
                duration_s: r.f64(4),
                request_id: opt(r.bytes(5)),
                trace_id: opt(r.bytes(6)),
                cold_start: r.i64(7) != 0,
                timeout: r.i64(8) != 0,
                error: r.i64(9) != 0,
            })
        })
        .await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{OpenMode, SqliteStore};
    use super::{EventSelection, ScanColumns};
    use sqlx::ConnectOptions;

    /// A database from before ids were monotonic keeps its events and ids through the
    /// migration, and its id sequence starts above every watermark already taken.
    #[tokio::test]
    async fn the_migration_keeps_rows_and_starts_ids_above_every_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut old = sqlx::migrate!();
            old.migrations = std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < 20261127000008).cloned().collect());
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
            old.run(&mut conn).await.unwrap();
            for (id, key) in [(3, "a"), (9, "b")] {
                sqlx::query("INSERT INTO events (id, time_ms, env, function, operation, source, duration_s, idem_key, ingested_ms) VALUES (?, 1, 'PROD', 'f', 'op', 'logs', 0.5, ?, 1)")
                    .bind(id)
                    .bind(key)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            // The publisher had passed ids that retention later freed.
            sqlx::query("UPDATE cloudwatch_published SET last_event_id = 40").execute(&mut conn).await.unwrap();
        }
        let store = SqliteStore::open(&path, OpenMode::Writer, 4096).await.unwrap();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM event_rows ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(ids, [3, 9], "moved into the compact rows when the store opened, ids kept");
        let old: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_v1'").fetch_one(store.pool()).await.unwrap();
        assert_eq!(old, 0);
        assert_eq!(store.event_id_high_water().await.unwrap(), 40);
        let published: i64 = sqlx::query_scalar("SELECT last_event_id FROM cloudwatch_destinations WHERE destination = ''").fetch_one(store.pool()).await.unwrap();
        assert_eq!(published, 40, "the CloudWatch watermark is the default destination's");
        let e = crate::model::TimingEvent {
            time_ms: 2,
            env: "PROD".into(),
            function: "f".into(),
            operation: "op".into(),
            source: crate::model::Source::Logs,
            duration_s: 1.0,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: "c".into(),
            attributes: vec![],
        };
        // An event stored before the conversion is still known by its key.
        let old_b = crate::model::TimingEvent { time_ms: 1, idem_key: "b".into(), ..e.clone() };
        let outcome = store.commit(&crate::store::Batch { events: vec![old_b, e], ..Default::default() }).await.unwrap();
        assert_eq!((outcome.inserted_total(), outcome.duplicates), (1, 1));
        let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM events").fetch_one(store.pool()).await.unwrap();
        assert!(id > 40, "above every watermark: {id}");
    }

    /// A time range is read through the blocks that overlap it, each a range of row ids:
    /// neither a whole-table scan nor a lookup per event through the key index.
    #[tokio::test]
    async fn a_raw_range_is_read_by_blocks_of_row_ids() {
        let store = SqliteStore::open_memory().await.unwrap();
        let (tables, range) = crate::store::pack::time_range_sql("e", 1, 2);
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT e.series, e.duration, e.flags FROM {tables} WHERE {range} AND e.series IN (SELECT id FROM series WHERE 1 AND env = 'Dev')"
        );
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(1).bind(2).fetch_all(store.pool()).await.unwrap();
        let plan: Vec<String> = plan.into_iter().map(|p| p.3).collect();
        assert!(plan.iter().any(|p| p.contains("b USING INDEX event_blocks_max (max_ms>?)")), "{plan:?}");
        assert!(plan.iter().any(|p| p.contains("e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)")), "{plan:?}");
    }

    /// A database written before the series dictionary reads, once migrated, exactly as
    /// one written through today's path: every scanned event with its names, in every filter.
    #[tokio::test]
    async fn a_migrated_database_scans_as_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let rows: Vec<(i64, &str, &str, &str, &str, f64)> = (0..40)
            .map(|i| {
                let env = if i % 3 == 0 { "Dev" } else { "PROD" };
                let function = if i % 2 == 0 { "GenerateDynamicScenarioHandler" } else { "LexFulfillmentHandler" };
                let operation = ["Bedrock.InvokeModel", "BedrockCallDuration", "Lambda.Duration"][i % 3];
                let source = ["xray", "logs", "report"][i % 3];
                (1_000 + i as i64, env, function, operation, source, i as f64 / 10.0)
            })
            .collect();
        {
            let mut old = sqlx::migrate!();
            old.migrations = std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < 20261127000014).cloned().collect());
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
            old.run(&mut conn).await.unwrap();
            for (i, r) in rows.iter().enumerate() {
                sqlx::query("INSERT INTO events (time_ms, env, function, operation, source, duration_s, idem_key, ingested_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 1)")
                    .bind(r.0).bind(r.1).bind(r.2).bind(r.3).bind(r.4).bind(r.5).bind(vec![i as u8; 16])
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let migrated = SqliteStore::open(&path, OpenMode::Writer, 4096).await.unwrap();
        let native = SqliteStore::open_memory().await.unwrap();
        let source = |s: &str| crate::model::Source::ALL.into_iter().find(|x| x.as_str() == s).unwrap();
        let events: Vec<crate::model::TimingEvent> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| crate::model::TimingEvent {
                time_ms: r.0,
                env: r.1.into(),
                function: r.2.into(),
                operation: r.3.into(),
                source: source(r.4),
                duration_s: r.5,
                request_id: None,
                trace_id: None,
                function_version: None,
                cold_start: false,
                error: false,
                idem_key: format!("k{i}"),
                attributes: vec![],
            })
            .collect();
        native.commit(&crate::store::Batch { events, ..Default::default() }).await.unwrap();
        let ops = ["Bedrock.InvokeModel".to_string()];
        for (env, function, operations) in [(None, None, &[][..]), (Some("Dev"), None, &[][..]), (None, Some("LexFulfillmentHandler"), &ops[..]), (Some("PROD"), Some("GenerateDynamicScenarioHandler"), &[][..])] {
            let sel = EventSelection { from_ms: 0, to_ms: 10_000, env, function, account: None, region: None, operations };
            let read = |store: SqliteStore| {
                let sel = sel;
                async move {
                    let parts = store
                        .scan_events(&sel, ScanColumns { time: true, invocations: true }, Vec::new, |acc: &mut Vec<String>, e| {
                            acc.push(format!("{} {} {} {} {} {}", e.time_ms, String::from_utf8_lossy(e.env), String::from_utf8_lossy(e.function), String::from_utf8_lossy(e.operation), String::from_utf8_lossy(e.source), e.duration_s))
                        })
                        .await
                        .unwrap();
                    let mut all: Vec<String> = parts.into_iter().flat_map(|p| p.0).collect();
                    all.sort();
                    all
                }
            };
            let (a, b) = (read(migrated.clone()).await, read(native.clone()).await);
            assert!(!a.is_empty(), "{env:?} {function:?}");
            assert_eq!(a, b, "{env:?} {function:?} {operations:?}");
        }
    }
}

#[cfg(test)]
mod dictionary_tests {
    use crate::model::{Source, TimingEvent};
    use crate::store::{Batch, SqliteStore};

    fn event(key: &str, operation: &str) -> TimingEvent {
        TimingEvent {
            time_ms: 1_000,
            env: "Dev".into(),
            function: "f".into(),
            operation: operation.into(),
            source: Source::Logs,
            duration_s: 0.5,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: key.into(),
            attributes: vec![],
        }
    }

    /// The dictionary read once is read again when a series is added after it: a new
    /// series' events are named, and the earlier ones still are.
    #[tokio::test]
    async fn series_added_after_a_read_are_named() {
        let store = SqliteStore::open_memory().await.unwrap();
        store.commit(&Batch { events: vec![event("a", "First")], ..Batch::default() }).await.unwrap();
        let first: Vec<String> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| e.operation).collect();
        assert_eq!(first, ["First"]);
        store.commit(&Batch { events: vec![event("b", "Second")], ..Batch::default() }).await.unwrap();
        let both: Vec<String> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| e.operation).collect();
        assert_eq!(both, ["First", "Second"]);
    }
}
