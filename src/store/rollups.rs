//! Rollups: per (env, function, operation, source) and hour, the count, sum, extremes,
//! error/cold-start/timeout counts and a mergeable quantile sketch (≤ 1 % relative error,
//! [`crate::sketch`]); each day whose 24 hours are rolled is merged into a day row too.
//! They outlive raw events (`storage.rollup_retention`, default 400 days) and let a report
//! over 90 days read a few thousand rows instead of millions of events.
//!
//! The rollup task ([`run_rollups`]) rolls every hour once it has closed, from raw events,
//! and rolls an hour again when events for it arrive late (found by row id: ids grow in
//! commit order), as long as raw retention still holds all of that hour. Rolling an hour
//! replaces its rows in one transaction, so it is idempotent and a crash only means the
//! hour is rolled again.

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, Store, StoreError};
use crate::clock::now_ms;
use crate::config::Config;
use crate::model::counts::Counts;
use crate::sketch::Sketch;
use super::raw::{Bind, scan};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// How often the rollup task looks for closed hours and late events.
pub const ROLLUP_INTERVAL: Duration = Duration::from_secs(60);
/// Rollup rows per INSERT (14 binds each).
const INSERT_CHUNK: usize = 64;

/// Which rollup rows a read selects (all of them with the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct RollupFilter<'a> {
    pub env: Option<&'a str>,
    pub function: Option<&'a str>,
    /// Only this account and region.
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    /// Only these operations (empty: all).
    pub operations: &'a [String],
}

/// The length of a rollup period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Hour,
    Day,
}

impl Resolution {
    pub fn seconds(self) -> i64 {
        self.ms() / 1000
    }

    pub fn ms(self) -> i64 {
        match self {
            Resolution::Hour => HOUR_MS,
            Resolution::Day => DAY_MS,
        }
    }

    pub fn from_seconds(s: i64) -> Option<Resolution> {
        [Resolution::Hour, Resolution::Day].into_iter().find(|r| r.seconds() == s)
    }
}

/// `t` rounded down to a multiple of `step` (epoch-aligned, also for negative times).
pub fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// `t` rounded up to a multiple of `step`.
pub fn ceil_to(t: i64, step: i64) -> i64 {
    -floor_to(-t, step)
}

/// One series over one period.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The account's name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region (empty without `[[accounts]]`).
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub source: String,
    pub counts: Counts,
    pub sketch: Sketch,
}

/// (account, region, env, function, operation, source).
type RollupKey = [String; 6];

impl RollupRow {
    /// An empty row for a series.
    pub fn new(env: &str, function: &str, operation: &str, source: &str) -> RollupRow {
        let origin = crate::model::Origin::default();
        RollupRow {
            account: origin.account,
            region: origin.region,
            env: env.to_string(),
            function: function.to_string(),
            operation: operation.to_string(),
            source: source.to_string(),
            counts: Counts::default(),
            sketch: Sketch::new(),
        }
    }

    /// Counts one event.
    pub fn add(&mut self, duration_s: f64, error: bool, cold_start: bool, timeout: bool) {
        self.counts.add(duration_s, error, cold_start, timeout);
        self.sketch.insert(duration_s);
    }

    /// Adds another period of the same series.
    pub fn merge(&mut self, o: &RollupRow) {
        self.counts.merge(&o.counts);
        self.sketch.merge(&o.sketch);
    }

    fn key(&self) -> RollupKey {
        [self.account.clone(), self.region.clone(), self.env.clone(), self.function.clone(), self.operation.clone(), self.source.clone()]
    }
}

/// Where the rollup task is (see the `rollup_state` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupState {
    /// Hours before this are rolled.
    pub closed_until_ms: i64,
    /// Events with a higher row id may need their hour rolled again.
    pub watermark_id: i64,
}

/// What one step of the rollup task did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepSummary {
    /// Hours rolled for the first time.
    pub new_hours: usize,
    /// Hours rolled again for late events.
    pub late_hours: usize,
    /// Days merged from their hours.
    pub days: usize,
    /// Rollup rows deleted by `rollup_retention`.
    pub purged: u64,
    /// The saved watermark was ahead of every event id (a replaced database) and was reset.
    pub watermark_reset: bool,
}

impl SqliteStore {
    /// Replaces the rows of one period with `rows` and records the period as rolled, in one
    /// transaction.
    pub async fn replace_rollups(&self, res: Resolution, start_ms: i64, rows: &[RollupRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        replace_rollups_in(&mut Conn::Sqlite(&mut tx), res, start_ms, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rolls the hour starting at `hour_ms` from raw events; returns the number of series.
    pub async fn roll_hour(&self, hour_ms: i64) -> Result<usize, StoreError> {
        let names = self.series_names().await?;
        let mut by_series: BTreeMap<i64, RollupRow> = BTreeMap::new();
        let (tables, range) = super::pack::time_range_sql("e", 1, 2);
        let sql = format!("SELECT e.series, e.duration, e.flags FROM {tables} WHERE {range}");
        scan(self, &sql, &[Bind::Int(hour_ms), Bind::Int(hour_ms + HOUR_MS)], |r| {
            let series = r.i64(0);
            let row = by_series.entry(series).or_insert_with(|| {
                let n = usize::try_from(series).ok().and_then(|i| names.get(i)).and_then(Option::as_ref);
                let name = |k: usize| n.map_or("", |n| n[k].as_str());
                RollupRow { account: name(4).into(), region: name(5).into(), ..RollupRow::new(name(0), name(1), name(2), name(3)) }
            });
            let flags = r.i64(2);
            row.add(super::pack::read_duration(r, 1), flags & super::pack::ERROR != 0, flags & super::pack::COLD_START != 0, flags & super::pack::TIMEOUT != 0);
        })
        .await?;
        // One row per named series (two ids never name the same series).
        let rows = merge_rows(by_series.into_values());
        self.replace_rollups(Resolution::Hour, hour_ms, &rows).await?;
        Ok(rows.len())
    }

    /// Merges the 24 hours of the day starting at `day_ms` into a day row. Returns false
    /// (and writes nothing) unless all 24 hours are rolled.
    pub async fn roll_day(&self, day_ms: i64) -> Result<bool, StoreError> {
        if !day_rolled_hours_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), day_ms).await? {
            return Ok(false);
        }
        let mut hours = Vec::new();
        let bad = self.scan_rollups(Resolution::Hour, day_ms, day_ms + DAY_MS, &RollupFilter::default(), |_, row| hours.push(row)).await?;
        if bad > 0 {
            tracing::warn!(day_ms, malformed = bad, "Skipped malformed rollup sketches while merging a day.");
        }
        let rows = merge_rows(hours);
        self.replace_rollups(Resolution::Day, day_ms, &rows).await?;
        Ok(true)
    }

    /// Calls `f` with the period start and the row for every rollup row of resolution `res`
    /// starting in `[from_ms, to_ms)` that `filter` selects (its time range is not used).
    /// Rows whose sketch does not decode are skipped; their number is returned.
    pub async fn scan_rollups(
        &self,
        res: Resolution,
        from_ms: i64,
        to_ms: i64,
        filter: &RollupFilter<'_>,
        mut f: impl FnMut(i64, RollupRow) + Send,
    ) -> Result<u64, StoreError> {
        let mut malformed = 0;
        let (sql, values) = scan_rollups_stmt(res, from_ms, to_ms, filter);
        let binds: Vec<Bind<'_>> = values.iter().map(|v| match *v {
            Value::Int(i) => Bind::Int(i),
            Value::Text(t) => Bind::Text(t),
            _ => Bind::Null,
        }).collect();
        scan(self, &sql, &binds, |r| {
            let names = [13, 14, 0, 1, 2, 3].map(|i| r.text(i).into_owned());
            match stored_row(names, [r.i64(4), r.i64(8), r.i64(9), r.i64(10), 0], r.f64(5), r.f64(6), r.f64(7), r.bytes(11)) {
                Some(row) => f(r.i64(12), row),
                None => malformed += 1,
            }
        })
        .await?;
        Ok(malformed)
    }

    /// The rolled periods starting in `[from_ms, to_ms)`.
    pub async fn rollup_periods(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(Resolution, i64)>, StoreError> {
        rollup_periods_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), from_ms, to_ms).await
    }

    /// Whether raw events still hold every event the rollup of `hour_ms` counted (false
    /// when retention cut into the hour).
    pub async fn raw_hour_complete(&self, hour_ms: i64) -> Result<bool, StoreError> {
        // A count over up to an hour of events: through the raw path, so a request's view
        // can interrupt it.
        let mut raw = 0;
        scan(self, "SELECT COUNT(*) FROM event_rows WHERE time_ms >= ?1 AND time_ms < ?2", &[Bind::Int(hour_ms), Bind::Int(hour_ms + HOUR_MS)], |r| {
            raw = r.i64(0)
        })
        .await?;
        let rolled: Option<i64> = sqlx::query_scalar("SELECT SUM(count) FROM rollups WHERE res_s = ? AND start_ms = ?")
            .bind(Resolution::Hour.seconds())
            .bind(hour_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(raw >= rolled.unwrap_or(0))
    }

    /// Event time of the oldest raw event, if any.
    pub async fn oldest_event_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MIN(time_ms) FROM event_rows").fetch_one(&self.pool).await?)
    }

    /// Deletes rollups (and their period records) of periods that ended at or before `cutoff_ms`.
    pub async fn purge_rollups_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        // Per resolution, so the primary key's (res_s, start_ms) prefix finds the rows.
        for res in [Resolution::Hour, Resolution::Day] {
            loop {
                let n = sqlx::query(
                    "DELETE FROM rollups WHERE rowid IN (SELECT rowid FROM rollups WHERE res_s = ? AND start_ms <= ? LIMIT 5000)",
                )
                .bind(res.seconds())
                .bind(cutoff_ms - res.ms())
                .execute(&self.pool)
                .await?
                .rows_affected();
                total += n;
                if n < 5000 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            sqlx::query("DELETE FROM rollup_periods WHERE res_s = ? AND start_ms <= ?")
                .bind(res.seconds())
                .bind(cutoff_ms - res.ms())
                .execute(&self.pool)
                .await?;
        }
        Ok(total)
    }

    /// The hours in `[from_ms, to_ms)` that events stored after id `after_id` fall in (late
    /// events: their hours are rolled again).
    pub async fn late_hours(&self, after_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT DISTINCT (time_ms / 3600000) * 3600000 FROM event_rows WHERE id > ? AND +time_ms >= ? AND +time_ms < ?")
            .bind(after_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn rollup_state(&self) -> Result<Option<RollupState>, StoreError> {
        rollup_state_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?)).await
    }

    pub async fn save_rollup_state(&self, s: RollupState) -> Result<(), StoreError> {
        save_rollup_state_in(&mut Conn::Sqlite(&mut *self.pool.acquire().await?), s).await
    }
}

/// The query of [`SqliteStore::scan_rollups`] with plain `?` placeholders, and its values (only
/// integers and text): the same on both engines.
pub(crate) fn scan_rollups_stmt<'f>(res: Resolution, from_ms: i64, to_ms: i64, filter: &RollupFilter<'f>) -> (String, Vec<Value<'f>>) {
    let mut values = vec![Value::Int(res.seconds()), Value::Int(from_ms), Value::Int(to_ms)];
    let mut filter_sql = String::new();
    for (column, value) in [("env", filter.env), ("function", filter.function), ("account", filter.account), ("region", filter.region)] {
        if let Some(v) = value {
            values.push(Value::Text(v));
            filter_sql.push_str(&format!(" AND {column} = ?"));
        }
    }
    if !filter.operations.is_empty() {
        filter_sql.push_str(&format!(" AND operation IN ({})", vec!["?"; filter.operations.len()].join(", ")));
        values.extend(filter.operations.iter().map(|o| Value::Text(o)));
    }
    let sql = format!(
        "SELECT env, function, operation, source, count, sum, min, max, errors, cold_starts, timeouts, sketch, start_ms, account, region \
         FROM rollups WHERE res_s = ? AND start_ms >= ? AND start_ms < ?{filter_sql}"
    );
    (sql, values)
}

/// One row per series of `rows` (the same series met again is merged) (pure).
pub(crate) fn merge_rows(rows: impl IntoIterator<Item = RollupRow>) -> Vec<RollupRow> {
    let mut merged: BTreeMap<RollupKey, RollupRow> = BTreeMap::new();
    for row in rows {
        match merged.get_mut(&row.key()) {
            Some(m) => m.merge(&row),
            None => {
                merged.insert(row.key(), row);
            }
        }
    }
    merged.into_values().collect()
}

/// A rollup row from its stored columns; None when its sketch does not decode (pure).
#[allow(clippy::too_many_arguments)]
pub(crate) fn stored_row(names: [String; 6], counts: [i64; 5], sum: f64, min: f64, max: f64, sketch: &[u8]) -> Option<RollupRow> {
    let [account, region, env, function, operation, source] = names;
    let [count, errors, cold_starts, timeouts, _] = counts.map(|n| n.max(0) as u64);
    Some(RollupRow {
        account,
        region,
        env,
        function,
        operation,
        source,
        counts: Counts { count, sum, min, max, errors, cold_starts, timeouts },
        sketch: Sketch::decode(sketch).ok()?,
    })
}

/// Replaces the rows of one period and records the period as rolled (in the caller's
/// transaction, on either engine).
pub(crate) async fn replace_rollups_in(conn: &mut Conn<'_>, res: Resolution, start_ms: i64, rows: &[RollupRow]) -> Result<(), StoreError> {
    conn.execute(&Stmt::new("DELETE FROM rollups WHERE res_s = ? AND start_ms = ?", [Value::Int(res.seconds()), Value::Int(start_ms)])).await?;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sketches: Vec<Vec<u8>> = chunk.iter().map(|r| r.sketch.encode()).collect();
        let mut values = Vec::with_capacity(chunk.len() * 16);
        for (r, sketch) in chunk.iter().zip(&sketches) {
            let n = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
            values.extend([Value::Int(res.seconds()), Value::Int(start_ms)]);
            values.extend([&r.account, &r.region, &r.env, &r.function, &r.operation, &r.source].map(|t| Value::Text(t)));
            values.extend([n(r.counts.count), Value::Float(r.counts.sum), Value::Float(r.counts.min()), Value::Float(r.counts.max())]);
            values.extend([n(r.counts.errors), n(r.counts.cold_starts), n(r.counts.timeouts), Value::Blob(sketch)]);
        }
        let row = format!("({})", vec!["?"; 16].join(", "));
        let sql = format!(
            "INSERT INTO rollups (res_s, start_ms, account, region, env, function, operation, source, count, sum, min, max, \
             errors, cold_starts, timeouts, sketch) VALUES {}",
            vec![row; chunk.len()].join(", ")
        );
        conn.execute(&Stmt::new(sql, values)).await?;
    }
    let series = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    conn.execute(&Stmt::new(
        "INSERT INTO rollup_periods (res_s, start_ms, series, computed_ms) VALUES (?, ?, ?, ?) \
         ON CONFLICT (res_s, start_ms) DO UPDATE SET series = excluded.series, computed_ms = excluded.computed_ms",
        [Value::Int(res.seconds()), Value::Int(start_ms), Value::Int(series), Value::Int(now_ms())],
    ))
    .await?;
    Ok(())
}

/// Whether all 24 hours of the day starting at `day_ms` are rolled (either engine).
pub(crate) async fn day_rolled_hours_in(conn: &mut Conn<'_>, day_ms: i64) -> Result<bool, StoreError> {
    let stmt = Stmt::new(
        "SELECT COUNT(*) FROM rollup_periods WHERE res_s = ? AND start_ms >= ? AND start_ms < ?",
        [Value::Int(Resolution::Hour.seconds()), Value::Int(day_ms), Value::Int(day_ms + DAY_MS)],
    );
    let n: Vec<(i64,)> = conn.fetch_all(&stmt).await?;
    Ok(n.first().is_some_and(|n| n.0 >= 24))
}

/// The rolled periods starting in `[from_ms, to_ms)` (either engine).
pub(crate) async fn rollup_periods_in(conn: &mut Conn<'_>, from_ms: i64, to_ms: i64) -> Result<Vec<(Resolution, i64)>, StoreError> {
    let stmt = Stmt::new("SELECT res_s, start_ms FROM rollup_periods WHERE start_ms >= ? AND start_ms < ? ORDER BY res_s, start_ms", [Value::Int(from_ms), Value::Int(to_ms)]);
    let rows: Vec<(i64, i64)> = conn.fetch_all(&stmt).await?;
    Ok(rows.into_iter().filter_map(|(res, start)| Some((Resolution::from_seconds(res)?, start))).collect())
}

/// Where the rollup task is, and saving it (either engine).
pub(crate) async fn rollup_state_in(conn: &mut Conn<'_>) -> Result<Option<RollupState>, StoreError> {
    let rows: Vec<(i64, i64)> = conn.fetch_all(&Stmt::new("SELECT closed_until_ms, watermark_id FROM rollup_state WHERE id = 1", [])).await?;
    Ok(rows.first().map(|&(closed_until_ms, watermark_id)| RollupState { closed_until_ms, watermark_id }))
}

pub(crate) async fn save_rollup_state_in(conn: &mut Conn<'_>, s: RollupState) -> Result<(), StoreError> {
    conn.execute(&Stmt::new(
        "INSERT INTO rollup_state (id, closed_until_ms, watermark_id, updated_ms) VALUES (1, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET closed_until_ms = excluded.closed_until_ms, \
         watermark_id = excluded.watermark_id, updated_ms = excluded.updated_ms",
        [Value::Int(s.closed_until_ms), Value::Int(s.watermark_id), Value::Int(now_ms())],
    ))
    .await?;
    Ok(())
}

/// One pass of the rollup task at wall time `now`: rolls the hours that closed since the
/// last pass (all hours since the oldest event on the first pass), rolls again the hours
/// late events landed in (only while raw retention still holds the whole hour), merges the
/// days those hours complete, and applies `rollup_retention`. Progress is saved after each
/// new hour, so a pass cut short by `shutdown` resumes where it stopped.
pub async fn rollup_step(
    store: &Store,
    now: i64,
    retention: Duration,
    rollup_retention: Duration,
    shutdown: &CancellationToken,
) -> Result<StepSummary, StoreError> {
    let closed = floor_to(now, HOUR_MS);
    let rollup_cutoff = now - rollup_retention.as_millis() as i64;
    let raw_complete_from = ceil_to(now - retention.as_millis() as i64, HOUR_MS);
    // Read before the late events are looked for: whatever commits later has a higher id
    // (ids are never reused) and is found by the next step.
    let next_watermark = store.event_id_high_water().await?;
    let state = store.rollup_state().await?;
    let mut summary = StepSummary::default();
    let (from, late): (i64, BTreeSet<i64>) = match state {
        Some(s) => {
            // A watermark above every id ever handed out: the database was replaced (a
            // restored backup). Every event it holds may be new to the rollups.
            let watermark = if s.watermark_id > next_watermark {
                tracing::warn!(watermark = s.watermark_id, high_water = next_watermark, "The rollup watermark is ahead of the database; looking at every event again.");
                summary.watermark_reset = true;
                0
            } else {
                s.watermark_id
            };
            let late = store.late_hours(watermark, raw_complete_from.max(ceil_to(rollup_cutoff, HOUR_MS)), s.closed_until_ms.min(closed)).await?;
            (s.closed_until_ms, late.into_iter().collect())
        }
        None => (store.oldest_event_ms().await?.map_or(closed, |t| floor_to(t, HOUR_MS)), BTreeSet::new()),
    };
    // Hours retention would delete at once are not rolled.
    let from = from.max(ceil_to(rollup_cutoff, HOUR_MS));
    let mut days = BTreeSet::new();
    for &h in &late {
        if shutdown.is_cancelled() {
            return Ok(summary);
        }
        store.roll_hour(h).await?;
        summary.late_hours += 1;
        days.insert(floor_to(h, DAY_MS));
    }
    let mut h = from;
    while h < closed {
        if shutdown.is_cancelled() {
            return Ok(summary);
        }
        store.roll_hour(h).await?;
        summary.new_hours += 1;
        days.insert(floor_to(h, DAY_MS));
        h += HOUR_MS;
        // Late hours came first, so the new watermark already holds.
        store.save_rollup_state(RollupState { closed_until_ms: h, watermark_id: next_watermark }).await?;
    }
    store.save_rollup_state(RollupState { closed_until_ms: from.max(closed), watermark_id: next_watermark }).await?;
    for d in days {
        if d + DAY_MS <= closed && store.roll_day(d).await? {
            summary.days += 1;
        }
    }
    summary.purged = store.purge_rollups_before(rollup_cutoff).await?;
    Ok(summary)
}

/// The rollup task: a [`rollup_step`] every [`ROLLUP_INTERVAL`] until `shutdown`. A failed
/// step is logged and tried again at the next interval.
pub async fn run_rollups(store: Store, config: Arc<Config>, metrics: crate::metrics::Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        match rollup_step(&store, now_ms(), config.storage.retention, config.storage.rollup_retention, &shutdown).await {
            Ok(s) if s != StepSummary::default() => {
                if s.watermark_reset {
                    metrics.watermark_resets.with_label_values(&["rollups"]).inc();
                }
                tracing::info!(new_hours = s.new_hours, late_hours = s.late_hours, days = s.days, purged = s.purged, "Rollups written.")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Rollups failed; will retry."),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(ROLLUP_INTERVAL) => {}
        }
    }
}
