//! Reads of the stored critical paths (`trace_attribution`) for the bottleneck report: the
//! busiest workflows of a range, how many traces each has, the slowest of them with their
//! shares, and the env most of a trace set's events carry. Through the raw path, so a
//! request's view interrupts them like any scan.

use super::raw::{Bind, scan};
use super::{Store, StoreError};

/// Which attributions a read covers: one workflow's (or all) traces starting in
/// `[from_ms, to_ms)`, optionally only those with an event in `env`.
#[derive(Debug, Clone, Copy)]
pub struct TraceRange<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<&'a str>,
}

impl TraceRange<'_> {
    /// The conditions on `trace_attribution t` (placeholders numbered from `?{first}`), and
    /// their binds.
    fn clause(&self, first: usize) -> (String, Vec<Bind<'_>>) {
        let (a, b, c) = (first, first + 1, first + 2);
        let mut sql = format!("start_ms >= ?{a} AND start_ms < ?{b}");
        let mut binds = vec![Bind::Int(self.from_ms), Bind::Int(self.to_ms)];
        if let Some(env) = self.env {
            sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM events e WHERE e.trace_id = t.trace_id AND e.env = ?{c})"));
            binds.push(Bind::Text(env));
        }
        (sql, binds)
    }
}

/// One stored attribution: trace id, total seconds, and its shares as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowTrace {
    pub trace_id: String,
    pub total_s: f64,
    pub shares: String,
}

impl Store {
    /// The workflows (trace roots) with the most traces in the range, most first, at most `limit`.
    pub async fn attribution_roots(&self, r: TraceRange<'_>, limit: i64) -> Result<Vec<String>, StoreError> {
        let (clause, mut binds) = r.clause(1);
        binds.push(Bind::Int(limit));
        let sql = format!(
            "SELECT root_name FROM trace_attribution t WHERE {clause} GROUP BY root_name ORDER BY COUNT(*) DESC, root_name LIMIT ?{}",
            binds.len()
        );
        let mut out = Vec::new();
        scan(self, &sql, &binds, |row| out.push(row.text(0).into_owned())).await?;
        Ok(out)
    }

    /// How many traces of `root` the range holds.
    pub async fn attribution_count(&self, root: &str, r: TraceRange<'_>) -> Result<i64, StoreError> {
        let (clause, rest) = r.clause(2);
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        let mut n = 0;
        scan(self, &format!("SELECT COUNT(*) FROM trace_attribution t WHERE root_name = ?1 AND {clause}"), &binds, |row| n = row.i64(0)).await?;
        Ok(n)
    }

    /// The `limit` slowest traces of `root` in the range, slowest first.
    pub async fn slowest_attributions(&self, root: &str, r: TraceRange<'_>, limit: i64) -> Result<Vec<SlowTrace>, StoreError> {
        let (clause, rest) = r.clause(2);
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        binds.push(Bind::Int(limit));
        let sql = format!(
            "SELECT trace_id, total_s, shares FROM trace_attribution t WHERE root_name = ?1 AND {clause} ORDER BY total_s DESC, trace_id LIMIT ?{}",
            binds.len()
        );
        let mut out = Vec::new();
        scan(self, &sql, &binds, |row| {
            out.push(SlowTrace { trace_id: row.text(0).into_owned(), total_s: row.f64(1), shares: row.text(2).into_owned() })
        })
        .await?;
        Ok(out)
    }

    /// The total duration of `root`'s trace at 0-based position `offset` in ascending order.
    pub async fn attribution_total_at(&self, root: &str, r: TraceRange<'_>, offset: i64) -> Result<Option<f64>, StoreError> {
        let (clause, rest) = r.clause(2);
        let mut binds = vec![Bind::Text(root)];
        binds.extend(rest);
        binds.push(Bind::Int(offset));
        let sql = format!("SELECT total_s FROM trace_attribution t WHERE root_name = ?1 AND {clause} ORDER BY total_s LIMIT 1 OFFSET ?{}", binds.len());
        let mut out = None;
        scan(self, &sql, &binds, |row| out = Some(row.f64(0))).await?;
        Ok(out)
    }

    /// (function, env, events) of the stored events of these traces.
    pub async fn trace_function_envs(&self, trace_ids: &[&str]) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut out = Vec::new();
        for chunk in trace_ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let sql = format!("SELECT function, env, COUNT(*) FROM events WHERE trace_id IN ({}) GROUP BY function, env", marks.join(", "));
            let binds: Vec<Bind<'_>> = chunk.iter().map(|id| Bind::Text(id)).collect();
            scan(self, &sql, &binds, |row| out.push((row.text(0).into_owned(), row.text(1).into_owned(), row.i64(2)))).await?;
        }
        Ok(out)
    }
}
