//! Report reads on PostgreSQL: a range of events folded row by row as they stream in (the
//! memory a report holds is its accumulator, not the rows), and the slowest invocations.
//! The selection's conditions are the SQLite store's (`store::events`).

use super::PgStore;
use crate::store::StoreError;
use crate::store::events::{EventFilter, EventOrder, EventRow, EventSelection, ScanColumns, ScannedEvent, event_filter_sql};
use crate::store::portable::{Value, bind_values, numbered};
use futures::TryStreamExt;
use sqlx::Row;
use std::collections::HashMap;

impl PgStore {
    /// Folds `sel`'s events into `init()` with `each`, as they stream from the database;
    /// one accumulator (PostgreSQL parallelises the scan itself) and its number of rows.
    pub async fn scan_events<T: Send>(
        &self,
        sel: &EventSelection<'_>,
        columns: ScanColumns,
        init: impl Fn() -> T + Sync,
        each: impl Fn(&mut T, &ScannedEvent<'_>) + Sync,
    ) -> Result<Vec<(T, u64)>, StoreError> {
        let names: HashMap<i64, [String; 6]> = sqlx::query_as::<_, (i64, String, String, String, String, String, String)>(
            "SELECT id, env, function, operation, source, account, region FROM series",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id, e, f, o, s, a, r)| (id, [e, f, o, s, a, r]))
        .collect();
        let (filter, values) = sel.filters();
        let sql = numbered(&format!("SELECT e.series, e.duration_s, e.flags, e.time_ms FROM events e WHERE e.time_ms >= ? AND e.time_ms < ?{filter}")).into_owned();
        let all = [Value::Int(sel.from_ms), Value::Int(sel.to_ms)].into_iter().chain(values).collect::<Vec<_>>();
        let q = bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), &all);
        let mut rows = q.fetch(&self.pool);
        let (mut acc, mut n) = (init(), 0u64);
        let unknown: [String; 6] = Default::default();
        while let Some(r) = rows.try_next().await? {
            let series: i64 = r.try_get(0)?;
            let name = names.get(&series).unwrap_or(&unknown);
            let flags: i16 = r.try_get(2)?;
            let e = ScannedEvent {
                account: name[4].as_bytes(),
                region: name[5].as_bytes(),
                env: name[0].as_bytes(),
                function: name[1].as_bytes(),
                operation: name[2].as_bytes(),
                source: name[3].as_bytes(),
                duration_s: r.try_get(1)?,
                error: flags & 1 != 0,
                time_ms: if columns.time { r.try_get(3)? } else { 0 },
                cold_start: columns.invocations && flags & 2 != 0,
                timeout: columns.invocations && flags & 4 != 0,
            };
            each(&mut acc, &e);
            n += 1;
        }
        Ok(vec![(acc, n)])
    }

    /// The first `limit` events matching `f` in `order`.
    pub async fn list_events(&self, f: EventFilter<'_>, order: EventOrder, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let (filter, values) = event_filter_sql(&f);
        let sql = numbered(&format!(
            "SELECT e.time_ms, s.env, s.function, s.operation, e.duration_s, e.request_id, e.trace_id, e.flags, s.account, s.region, s.source \
             FROM events e JOIN series s ON s.id = e.series WHERE e.time_ms >= ? AND e.time_ms < ?{filter}{} LIMIT ?",
            order.sql("e.duration_s", "COALESCE(e.request_id, e.trace_id)")
        ))
        .into_owned();
        let limit = Value::Int(i64::try_from(limit).unwrap_or(i64::MAX));
        let all = [Value::Int(f.from_ms), Value::Int(f.to_ms)].into_iter().chain(values).chain([limit]).collect::<Vec<_>>();
        type Slow = (i64, String, String, String, f64, Option<String>, Option<String>, i16, String, String, String);
        let rows: Vec<Slow> = bind_values!(sqlx::query_as::<_, Slow>(sqlx::AssertSqlSafe(sql)), &all).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(time_ms, env, function, operation, duration_s, request_id, trace_id, flags, account, region, source)| EventRow {
                time_ms,
                account,
                region,
                env,
                function,
                operation,
                source,
                duration_s,
                request_id,
                trace_id,
                cold_start: flags & 2 != 0,
                timeout: flags & 4 != 0,
                error: flags & 1 != 0,
            })
            .collect())
    }
}
