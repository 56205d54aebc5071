//! Reads of the stored critical paths (`trace_attribution`, each with its shape in
//! `path_shapes`) for the bottleneck report: the busiest workflows of a range, how many traces
//! each has, the slowest of them with their paths, one trace's path, and the env most of a
//! trace set's events carry (each path keeps its trace's events per function and env, so
//! nothing here looks events up by trace id). Through the raw path, so a request's view
//! interrupts them like any scan.

use super::event_keys::{trace_id_bytes, trace_id_text_sql};
use super::portable::Value;
use super::raw::{Bind, scan};
use super::varint::decode_varints;
use super::{SqliteStore, StoreError};

/// Which attributions a read covers: one workflow's (or all) traces starting in
/// `[from_ms, to_ms)`, optionally only those with an event in `env`, and of one account and
/// region.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceRange<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<&'a str>,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl TraceRange<'_> {
    /// The conditions on `trace_attribution t` and its `path_shapes p` (plain `?`
    /// placeholders), and their values. `envs` is how the engine lists a JSON array's
    /// elements as rows `v(value)` (SQLite's `json_each`, PostgreSQL's
    /// `jsonb_array_elements`).
    pub(crate) fn conditions(&self, envs: &str) -> (String, Vec<Value<'_>>) {
        let mut sql = "t.start_ms >= ? AND t.start_ms < ?".to_string();
        let mut values = vec![Value::Int(self.from_ms), Value::Int(self.to_ms)];
        if let Some(env) = self.env {
            sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM {envs} WHERE v.value ->> 1 = ?)"));
            values.push(Value::Text(env));
        }
        for (column, value) in [("account", self.account), ("region", self.region)] {
            if let Some(v) = value {
                values.push(Value::Text(v));
                sql.push_str(&format!(" AND p.{column} = ?"));
            }
        }
        (sql, values)
    }

    /// SQLite's: the conditions and their binds.
    fn clause(&self) -> (String, Vec<Bind<'_>>) {
        let (sql, values) = self.conditions(SQLITE_ENVS);
        (sql, super::events::binds(&values))
    }
}

/// How SQLite lists a path's envs as rows `v(value)`.
const SQLITE_ENVS: &str = "json_each(p.envs) AS v";

/// A stored critical path: apart (its shape, shared by the traces that took it, and each
/// node's self time in µs: `crate::critical_path::decode_path`), or whole as an earlier
/// release stored it (`crate::critical_path::decode_shares`).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredPath {
    Apart { shape: String, self_us: Vec<u64> },
    Whole(String),
}

impl StoredPath {
    pub(super) fn of(shape: String, self_us: Option<&[u8]>, shares: Option<String>) -> StoredPath {
        match shares {
            Some(whole) => StoredPath::Whole(whole),
            // Unreadable times read as none: the shape then does not fit, and the path is
            // skipped like any unreadable one.
            None => StoredPath::Apart { shape, self_us: self_us.and_then(decode_varints).unwrap_or_default() },
        }
    }
}

/// One stored attribution: trace id, total seconds, and its path.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowTrace {
    pub trace_id: String,
    pub total_s: f64,
    pub path: StoredPath,
}

pub(crate) const FROM: &str = "trace_attribution t JOIN path_shapes p ON p.id = t.path";

/// The (function, env, events) of `n` traces (plain `?` for their ids), from their paths'
/// envs listed by `envs` (either engine).
pub(crate) fn trace_envs_sql(envs: &str, n: usize) -> String {
    format!(
        "SELECT v.value ->> 0, v.value ->> 1, CAST(SUM(CAST(v.value ->> 2 AS BIGINT)) AS BIGINT) FROM {FROM}, {envs} WHERE t.trace_id IN ({}) GROUP BY 1, 2",
        vec!["?"; n].join(", ")
    )
}

impl SqliteStore {
    /// The workflows (trace roots) with the most traces in the range, most first, at most `limit`.
    pub async fn attribution_roots(&self, r: TraceRange<'_>, limit: i64) -> Result<Vec<String>, StoreError> {
        let (clause, mut binds) = r.clause();
        binds.push(Bind::Int(limit));
        let sql = format!("SELECT p.root_name FROM {FROM} WHERE {clause} GROUP BY p.root_name ORDER BY COUNT(*) DESC, p.root_name LIMIT ?");
        let mut out = Vec::new();
        scan(self, &sql, &binds, |row| out.push(row.text(0).into_owned())).await?;
        Ok(out)
    }

    /// How many traces of `root` the range holds.
    pub async fn attribution_count(&self, root: &str, r: TraceRange<'_>) -> Result<i64, StoreError> {
        let (clause, rest) = r.clause();
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        let mut n = 0;
        scan(self, &format!("SELECT COUNT(*) FROM {FROM} WHERE p.root_name = ? AND {clause}"), &binds, |row| n = row.i64(0)).await?;
        Ok(n)
    }

    /// The `limit` slowest traces of `root` in the range, slowest first.
    pub async fn slowest_attributions(&self, root: &str, r: TraceRange<'_>, limit: i64) -> Result<Vec<SlowTrace>, StoreError> {
        let (clause, rest) = r.clause();
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        binds.push(Bind::Int(limit));
        let trace_id = trace_id_text_sql("t.trace_id");
        let sql = format!(
            "SELECT {trace_id}, t.total_s, p.shape, t.self_us, t.shares FROM {FROM} WHERE p.root_name = ? AND {clause} \
             ORDER BY t.total_s DESC, {trace_id} LIMIT ?"
        );
        let mut out = Vec::new();
        scan(self, &sql, &binds, |row| {
            let shares = (!row.bytes(4).is_empty()).then(|| row.text(4).into_owned());
            out.push(SlowTrace {
                trace_id: row.text(0).into_owned(),
                total_s: row.f64(1),
                path: StoredPath::of(row.text(2).into_owned(), Some(row.bytes(3)), shares),
            })
        })
        .await?;
        Ok(out)
    }

    /// The total duration of `root`'s trace at 0-based position `offset` in ascending order.
    pub async fn attribution_total_at(&self, root: &str, r: TraceRange<'_>, offset: i64) -> Result<Option<f64>, StoreError> {
        let (clause, rest) = r.clause();
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        binds.push(Bind::Int(offset));
        let sql = format!("SELECT t.total_s FROM {FROM} WHERE p.root_name = ? AND {clause} ORDER BY t.total_s LIMIT 1 OFFSET ?");
        let mut out = None;
        scan(self, &sql, &binds, |row| out = Some(row.f64(0))).await?;
        Ok(out)
    }

    /// A stored attribution: (root name, start ms, total s, its path).
    pub async fn trace_attribution(&self, trace_id: &str) -> Result<Option<(String, i64, f64, StoredPath)>, StoreError> {
        let q = sqlx::query_as::<_, (String, i64, f64, String, Option<Vec<u8>>, Option<String>)>(
            "SELECT p.root_name, t.start_ms, t.total_s, p.shape, t.self_us, t.shares FROM trace_attribution t \
             JOIN path_shapes p ON p.id = t.path WHERE t.trace_id = ?",
        );
        let q = match trace_id_bytes(trace_id) {
            Some(b) => q.bind(b.to_vec()),
            None => q.bind(trace_id.to_string()),
        };
        Ok(q.fetch_optional(&self.pool).await?.map(|(root, start, total, shape, self_us, shares)| {
            (root, start, total, StoredPath::of(shape, self_us.as_deref(), shares))
        }))
    }

    /// (function, env, events) of these traces, as their critical paths recorded them.
    pub async fn trace_function_envs(&self, trace_ids: &[&str]) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut out = Vec::new();
        for chunk in trace_ids.chunks(500) {
            let sql = trace_envs_sql(SQLITE_ENVS, chunk.len());
            let bytes: Vec<Option<[u8; 16]>> = chunk.iter().map(|id| trace_id_bytes(id)).collect();
            let binds: Vec<Bind<'_>> = chunk.iter().zip(&bytes).map(|(id, b)| b.as_ref().map_or(Bind::Text(id), |b| Bind::Blob(b))).collect();
            scan(self, &sql, &binds, |row| out.push((row.text(0).into_owned(), row.text(1).into_owned(), row.i64(2)))).await?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpenMode;
    use sqlx::ConnectOptions;

    /// Paths stored before each kept its trace's envs are filled from their events by the
    /// migration, and read as before; the index on events.trace_id is gone.
    #[tokio::test]
    async fn paths_stored_before_get_their_envs_from_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut old = sqlx::migrate!();
            old.migrations = std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < 20261127000012).cloned().collect());
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
            old.run(&mut conn).await.unwrap();
            for (i, (function, env)) in [("f", "Dev"), ("f", "Dev"), ("g", "PROD"), ("h", "Dev")].into_iter().enumerate() {
                let trace = if function == "h" { "t2" } else { "t1" };
                sqlx::query("INSERT INTO events (time_ms, env, function, operation, source, duration_s, trace_id, idem_key, ingested_ms) VALUES (1, ?, ?, 'op', 'xray', 0.5, ?, ?, 1)")
                    .bind(env)
                    .bind(function)
                    .bind(trace)
                    .bind(vec![i as u8; 16])
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            for trace in ["t1", "t2", "t3"] {
                sqlx::query("INSERT INTO trace_attribution (trace_id, root_name, start_ms, total_s, shares, updated_ms) VALUES (?, 'W', 10, 1.0, '[]', 1)")
                    .bind(trace)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let store = SqliteStore::open(&path, OpenMode::Writer, 4096).await.unwrap();
        let mut envs = store.trace_function_envs(&["t1", "t2", "t3"]).await.unwrap();
        envs.sort();
        assert_eq!(envs, [("f".into(), "Dev".into(), 2), ("g".into(), "PROD".into(), 1), ("h".into(), "Dev".into(), 1)]);
        let range = |env| TraceRange { from_ms: 0, to_ms: 100, env, ..TraceRange::default() };
        assert_eq!(store.attribution_count("W", range(None)).await.unwrap(), 3);
        assert_eq!(store.attribution_count("W", range(Some("Dev"))).await.unwrap(), 2, "t1 and t2 have Dev events; t3 none");
        assert_eq!(store.attribution_count("W", range(Some("PROD"))).await.unwrap(), 1);
        let index: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'events_trace'").fetch_optional(store.pool()).await.unwrap();
        assert_eq!(index, None);
    }
}
