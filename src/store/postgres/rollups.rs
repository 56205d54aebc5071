//! Rollups on PostgreSQL: the SQLite store's statements and decisions
//! (`crate::store::rollups`), with this engine's reads of raw events.

use super::PgStore;
use crate::store::StoreError;
use crate::store::portable::{Conn, Value};
use crate::store::rollups::{
    DAY_MS, HOUR_MS, Resolution, RollupFilter, RollupRow, RollupState, day_rolled_hours_in, merge_rows, replace_rollups_in,
    rollup_periods_in, rollup_state_in, save_rollup_state_in, scan_rollups_stmt, stored_row,
};

type StoredRollup = (String, String, String, String, i64, f64, f64, f64, i64, i64, i64, Vec<u8>, i64, String, String);

impl PgStore {
    /// Replaces the rows of one period and records the period as rolled, in one transaction.
    pub async fn replace_rollups(&self, res: Resolution, start_ms: i64, rows: &[RollupRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        replace_rollups_in(&mut Conn::Postgres(&mut tx), res, start_ms, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rolls the hour starting at `hour_ms` from raw events; returns the number of series.
    pub async fn roll_hour(&self, hour_ms: i64) -> Result<usize, StoreError> {
        let rows: Vec<(String, String, String, String, String, String, f64, i16)> = sqlx::query_as(
            "SELECT s.account, s.region, s.env, s.function, s.operation, s.source, e.duration_s, e.flags \
             FROM events e JOIN series s ON s.id = e.series WHERE e.time_ms >= $1 AND e.time_ms < $2",
        )
        .bind(hour_ms)
        .bind(hour_ms + HOUR_MS)
        .fetch_all(&self.pool)
        .await?;
        let mut by_series: std::collections::HashMap<[String; 6], RollupRow> = std::collections::HashMap::new();
        for (account, region, env, function, operation, source, d, flags) in rows {
            let row = by_series
                .entry([account, region, env, function, operation, source])
                .or_insert_with_key(|[a, r, e, f, o, s]| RollupRow { account: a.clone(), region: r.clone(), ..RollupRow::new(e, f, o, s) });
            row.add(d, flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
        }
        let rows = merge_rows(by_series.into_values());
        self.replace_rollups(Resolution::Hour, hour_ms, &rows).await?;
        Ok(rows.len())
    }

    /// Merges the 24 hours of the day starting at `day_ms` into a day row; false (nothing
    /// written) unless all 24 hours are rolled.
    pub async fn roll_day(&self, day_ms: i64) -> Result<bool, StoreError> {
        if !day_rolled_hours_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), day_ms).await? {
            return Ok(false);
        }
        let mut hours = Vec::new();
        let bad = self.scan_rollups(Resolution::Hour, day_ms, day_ms + DAY_MS, &RollupFilter::default(), |_, row| hours.push(row)).await?;
        if bad > 0 {
            tracing::warn!(day_ms, malformed = bad, "Skipped malformed rollup sketches while merging a day.");
        }
        self.replace_rollups(Resolution::Day, day_ms, &merge_rows(hours)).await?;
        Ok(true)
    }

    /// Calls `f` with the period start and the row of every selected rollup row; returns how
    /// many were skipped for a sketch that does not decode.
    pub async fn scan_rollups(
        &self,
        res: Resolution,
        from_ms: i64,
        to_ms: i64,
        filter: &RollupFilter<'_>,
        mut f: impl FnMut(i64, RollupRow) + Send,
    ) -> Result<u64, StoreError> {
        let (sql, values) = scan_rollups_stmt(res, from_ms, to_ms, filter);
        let sql = crate::store::portable::numbered(&sql).into_owned();
        let mut q = sqlx::query_as::<_, StoredRollup>(sqlx::AssertSqlSafe(sql));
        for v in &values {
            q = match *v {
                Value::Int(i) => q.bind(i),
                Value::Text(t) => q.bind(t),
                _ => q,
            };
        }
        let mut malformed = 0;
        for (env, function, operation, source, count, sum, min, max, errors, cold, timeouts, sketch, start_ms, account, region) in q.fetch_all(&self.pool).await? {
            match stored_row([account, region, env, function, operation, source], [count, errors, cold, timeouts, 0], sum, min, max, &sketch) {
                Some(row) => f(start_ms, row),
                None => malformed += 1,
            }
        }
        Ok(malformed)
    }

    /// The rolled periods starting in `[from_ms, to_ms)`.
    pub async fn rollup_periods(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(Resolution, i64)>, StoreError> {
        rollup_periods_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), from_ms, to_ms).await
    }

    /// Whether raw events still hold every event the rollup of `hour_ms` counted.
    pub async fn raw_hour_complete(&self, hour_ms: i64) -> Result<bool, StoreError> {
        let (raw, rolled): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE time_ms >= $1 AND time_ms < $2), \
                    (SELECT sum(count)::bigint FROM rollups WHERE res_s = $3 AND start_ms = $1)",
        )
        .bind(hour_ms)
        .bind(hour_ms + HOUR_MS)
        .bind(Resolution::Hour.seconds())
        .fetch_one(&self.pool)
        .await?;
        Ok(raw >= rolled.unwrap_or(0))
    }

    /// Event time of the oldest raw event, if any.
    pub async fn oldest_event_ms(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT min(time_ms) FROM events").fetch_one(&self.pool).await?)
    }

    /// Deletes rollups (and their period records) of periods that ended at or before `cutoff_ms`.
    pub async fn purge_rollups_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        for res in [Resolution::Hour, Resolution::Day] {
            let last_start = cutoff_ms - res.ms();
            total += sqlx::query("DELETE FROM rollups WHERE res_s = $1 AND start_ms <= $2").bind(res.seconds()).bind(last_start).execute(&self.pool).await?.rows_affected();
            sqlx::query("DELETE FROM rollup_periods WHERE res_s = $1 AND start_ms <= $2").bind(res.seconds()).bind(last_start).execute(&self.pool).await?;
        }
        Ok(total)
    }

    /// The hours in `[from_ms, to_ms)` that events stored after id `after_id` fall in.
    pub async fn late_hours(&self, after_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT DISTINCT (time_ms / 3600000) * 3600000 FROM events WHERE id > $1 AND time_ms >= $2 AND time_ms < $3")
            .bind(after_id)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Where the rollup task is.
    pub async fn rollup_state(&self) -> Result<Option<RollupState>, StoreError> {
        rollup_state_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?)).await
    }

    /// Saves where the rollup task is.
    pub async fn save_rollup_state(&self, s: RollupState) -> Result<(), StoreError> {
        save_rollup_state_in(&mut Conn::Postgres(&mut *self.pool.acquire().await?), s).await
    }
}
