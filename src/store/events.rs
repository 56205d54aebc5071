//! Typed reads of single raw events (reports read aggregates through `report::data`): the
//! slowest invocations of a range (through the raw path, so a request's view interrupts
//! it), and the highest event id ever handed out, against which every reader that follows
//! events by id checks its watermark.

use super::raw::{Bind, scan};
use super::rollups::TIMEOUT_SQL;
use super::{Store, StoreError};

/// One stored event, as the slowest-invocations list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub time_ms: i64,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub duration_s: f64,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub cold_start: bool,
    pub timeout: bool,
    pub error: bool,
}

/// Which events: `operations` in `[from_ms, to_ms)`, optionally of one env and function.
#[derive(Debug, Clone, Copy)]
pub struct EventFilter<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<&'a str>,
    pub function: Option<&'a str>,
    pub operations: &'a [&'a str],
}

impl Store {
    /// The highest event id ever handed out (0 before the first event). Ids are never
    /// reused (`AUTOINCREMENT`), so a reader's watermark above this means the database is not
    /// the one the watermark was taken from (a restored backup, say): the reader starts over.
    pub async fn event_id_high_water(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)").fetch_one(&self.pool).await?)
    }

    /// The `limit` slowest events matching `f`, slowest first (earlier first among equals).
    pub async fn slowest_events(&self, f: EventFilter<'_>, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut binds: Vec<Bind<'_>> = vec![Bind::Int(f.from_ms), Bind::Int(f.to_ms)];
        let mut sql = format!(
            "SELECT time_ms, env, function, operation, duration_s, request_id, trace_id, cold_start, {TIMEOUT_SQL}, error \
             FROM events WHERE time_ms >= ?1 AND time_ms < ?2"
        );
        if !f.operations.is_empty() {
            let first = binds.len() + 1;
            let marks: Vec<String> = (first..first + f.operations.len()).map(|i| format!("?{i}")).collect();
            sql.push_str(&format!(" AND operation IN ({})", marks.join(", ")));
            binds.extend(f.operations.iter().map(|o| Bind::Text(o)));
        }
        if let Some(env) = f.env {
            binds.push(Bind::Text(env));
            sql.push_str(&format!(" AND env = ?{}", binds.len()));
        }
        if let Some(function) = f.function {
            binds.push(Bind::Text(function));
            sql.push_str(&format!(" AND function = ?{}", binds.len()));
        }
        binds.push(Bind::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" ORDER BY duration_s DESC, time_ms LIMIT ?{}", binds.len()));
        let opt = |b: &[u8]| (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned());
        let mut out = Vec::new();
        scan(self, &sql, &binds, |r| {
            out.push(EventRow {
                time_ms: r.i64(0),
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
    use crate::store::{OpenMode, Store};
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
        let store = Store::open(&path, OpenMode::Writer, 4096).await.unwrap();
        let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, idem_key FROM events ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(ids, [(3, "a".to_string()), (9, "b".to_string())]);
        assert_eq!(store.event_id_high_water().await.unwrap(), 40);
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
        store.commit(&crate::store::Batch { events: vec![e], ..Default::default() }).await.unwrap();
        let id: i64 = sqlx::query_scalar("SELECT id FROM events WHERE idem_key = 'c'").fetch_one(store.pool()).await.unwrap();
        assert_eq!(id, 41);
        // The report index survived the rebuild.
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as("EXPLAIN QUERY PLAN SELECT env, function, operation, source, duration_s, error FROM events WHERE time_ms >= 1 AND time_ms < 2")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert!(plan.iter().any(|r| r.3.contains("events_report")), "{plan:?}");
    }
}
