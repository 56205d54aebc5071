//! Typed reads of single raw events (reports read aggregates through `report::data`): the
//! slowest invocations of a range. Through the raw path, so a request's view interrupts it.

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
