//! Critical-path reads on PostgreSQL for the bottleneck report: the SQLite store's
//! conditions and statements (`store::attribution`) with this engine's way of listing a
//! path's envs; trace ids are text here.

use super::PgStore;
use crate::store::StoreError;
use crate::store::attribution::{FROM, SlowTrace, StoredPath, TraceRange, trace_envs_sql};
use crate::store::portable::{Value, bind_values, numbered};

/// How PostgreSQL lists a path's envs as rows `v(value)`.
const ENVS: &str = "jsonb_array_elements(p.envs::jsonb) AS v(value)";

/// `root`'s condition, the range's, and their values in placeholder order.
fn of_root<'a>(root: &'a str, r: &'a TraceRange<'a>) -> (String, Vec<Value<'a>>) {
    let (clause, rest) = r.conditions(ENVS);
    (format!("p.root_name = ? AND {clause}"), std::iter::once(Value::Text(root)).chain(rest).collect())
}

impl PgStore {
    /// The workflows with the most traces in the range, most first, at most `limit`.
    pub async fn attribution_roots(&self, r: TraceRange<'_>, limit: i64) -> Result<Vec<String>, StoreError> {
        let (clause, mut values) = r.conditions(ENVS);
        values.push(Value::Int(limit));
        let sql = numbered(&format!("SELECT p.root_name FROM {FROM} WHERE {clause} GROUP BY p.root_name ORDER BY count(*) DESC, p.root_name LIMIT ?")).into_owned();
        Ok(bind_values!(sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)), &values).fetch_all(&self.pool).await?)
    }

    /// How many traces of `root` the range holds.
    pub async fn attribution_count(&self, root: &str, r: TraceRange<'_>) -> Result<i64, StoreError> {
        let (cond, values) = of_root(root, &r);
        let sql = numbered(&format!("SELECT count(*) FROM {FROM} WHERE {cond}")).into_owned();
        Ok(bind_values!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)), &values).fetch_one(&self.pool).await?)
    }

    /// The `limit` slowest traces of `root` in the range, slowest first.
    pub async fn slowest_attributions(&self, root: &str, r: TraceRange<'_>, limit: i64) -> Result<Vec<SlowTrace>, StoreError> {
        let (cond, mut values) = of_root(root, &r);
        values.push(Value::Int(limit));
        let sql = numbered(&format!(
            "SELECT t.trace_id, t.total_s, p.shape, t.self_us, t.shares FROM {FROM} WHERE {cond} ORDER BY t.total_s DESC, t.trace_id LIMIT ?"
        ))
        .into_owned();
        type Row = (String, f64, String, Option<Vec<u8>>, Option<String>);
        let rows: Vec<Row> = bind_values!(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql)), &values).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|(trace_id, total_s, shape, self_us, shares)| SlowTrace { trace_id, total_s, path: StoredPath::of(shape, self_us.as_deref(), shares) })
            .collect())
    }

    /// The total duration of `root`'s trace at 0-based position `offset` in ascending order.
    pub async fn attribution_total_at(&self, root: &str, r: TraceRange<'_>, offset: i64) -> Result<Option<f64>, StoreError> {
        let (cond, mut values) = of_root(root, &r);
        values.push(Value::Int(offset));
        let sql = numbered(&format!("SELECT t.total_s FROM {FROM} WHERE {cond} ORDER BY t.total_s LIMIT 1 OFFSET ?")).into_owned();
        Ok(bind_values!(sqlx::query_scalar::<_, f64>(sqlx::AssertSqlSafe(sql)), &values).fetch_optional(&self.pool).await?)
    }

    /// A stored attribution: (root name, start ms, total s, its path).
    pub async fn trace_attribution(&self, trace_id: &str) -> Result<Option<(String, i64, f64, StoredPath)>, StoreError> {
        let row: Option<(String, i64, f64, String, Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
            "SELECT p.root_name, t.start_ms, t.total_s, p.shape, t.self_us, t.shares FROM trace_attribution t \
             JOIN path_shapes p ON p.id = t.path WHERE t.trace_id = $1",
        )
        .bind(trace_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(root, start, total, shape, self_us, shares)| (root, start, total, StoredPath::of(shape, self_us.as_deref(), shares))))
    }

    /// (function, env, events) of these traces, as their critical paths recorded them.
    pub async fn trace_function_envs(&self, trace_ids: &[&str]) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut out = Vec::new();
        for chunk in trace_ids.chunks(500) {
            let sql = numbered(&trace_envs_sql(ENVS, chunk.len())).into_owned();
            let values: Vec<Value<'_>> = chunk.iter().map(|id| Value::Text(id)).collect();
            out.extend(bind_values!(sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql)), &values).fetch_all(&self.pool).await?);
        }
        Ok(out)
    }
}
