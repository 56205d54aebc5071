//! `report top`: the slowest operations over a time range (what the seed's first Logs
//! Insights query answers), per (env, function, operation, source), with exact percentiles.

use super::nearest_rank;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// One row of `report top`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopRow {
    pub env: String,
    pub function: String,
    pub operation: String,
    pub source: String,
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub error_rate: f64,
}

/// Filters of a report.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<String>,
    pub function: Option<String>,
}

/// Rows sorted by p95, slowest first.
pub async fn top(store: &Store, f: &Filter) -> Result<Vec<TopRow>, StoreError> {
    let rows: Vec<(String, String, String, String, f64, bool)> = sqlx::query_as(
        "SELECT env, function, operation, source, duration_s, error FROM events \
         WHERE time_ms >= ? AND time_ms < ? AND (? IS NULL OR env = ?) AND (? IS NULL OR function = ?) \
         ORDER BY env, function, operation, source, duration_s",
    )
    .bind(f.from_ms)
    .bind(f.to_ms)
    .bind(&f.env)
    .bind(&f.env)
    .bind(&f.function)
    .bind(&f.function)
    .fetch_all(store.pool())
    .await?;
    let mut out: Vec<TopRow> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let key = (&rows[i].0, &rows[i].1, &rows[i].2, &rows[i].3);
        let mut j = i;
        while j < rows.len() && (&rows[j].0, &rows[j].1, &rows[j].2, &rows[j].3) == key {
            j += 1;
        }
        let values: Vec<f64> = rows[i..j].iter().map(|r| r.4).collect();
        let errors = rows[i..j].iter().filter(|r| r.5).count();
        out.push(TopRow {
            env: key.0.clone(),
            function: key.1.clone(),
            operation: key.2.clone(),
            source: key.3.clone(),
            count: values.len(),
            p50: nearest_rank(&values, 0.5).unwrap_or(0.0),
            p95: nearest_rank(&values, 0.95).unwrap_or(0.0),
            p99: nearest_rank(&values, 0.99).unwrap_or(0.0),
            max: *values.last().unwrap_or(&0.0),
            error_rate: errors as f64 / values.len() as f64,
        });
        i = j;
    }
    out.sort_by(|a, b| b.p95.total_cmp(&a.p95).then_with(|| a.function.cmp(&b.function)));
    Ok(out)
}

/// Renders rows as a table that fits 100 columns.
pub fn table(rows: &[TopRow]) -> String {
    let mut s = format!(
        "{:<7} {:<26} {:<22} {:>6} {:>8} {:>8} {:>8} {:>8}\n",
        "ENV", "FUNCTION", "OPERATION", "COUNT", "P50", "P95", "P99", "MAX"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<7} {:<26} {:<22} {:>6} {:>8} {:>8} {:>8} {:>8}\n",
            clip(&r.env, 7),
            clip(&r.function, 26),
            clip(&r.operation, 22),
            r.count,
            secs(r.p50),
            secs(r.p95),
            secs(r.p99),
            secs(r.max)
        ));
    }
    s
}

/// CSV with a header row.
pub fn csv(rows: &[TopRow]) -> String {
    let mut s = String::from("env,function,operation,source,count,p50,p95,p99,max,error_rate\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            quote(&r.env),
            quote(&r.function),
            quote(&r.operation),
            r.source,
            r.count,
            r.p50,
            r.p95,
            r.p99,
            r.max,
            r.error_rate
        ));
    }
    s
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

fn secs(v: f64) -> String {
    if v < 1.0 { format!("{:.0}ms", v * 1000.0) } else { format!("{v:.2}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;

    #[tokio::test]
    async fn exact_p95_per_series_slowest_first() {
        let store = Store::open_memory().await.unwrap();
        let mut events = Vec::new();
        for i in 1..=40 {
            for (env, scale) in [("PROD", 0.1), ("Dev", 1.0)] {
                events.push(TimingEvent {
                    time_ms: 1_000 + i,
                    env: env.into(),
                    function: "GenerateDynamicScenarioHandler".into(),
                    operation: "Bedrock.InvokeModel".into(),
                    source: Source::Xray,
                    duration_s: i as f64 * scale,
                    request_id: None,
                    trace_id: None,
                    function_version: None,
                    cold_start: false,
                    error: i == 40,
                    idem_key: format!("{env}{i}"),
                    attributes: vec![],
                });
            }
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let rows = top(&store, &Filter { from_ms: 0, to_ms: i64::MAX, ..Filter::default() }).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].env, "Dev");
        assert_eq!(rows[0].p95, 38.0, "⌈0.95·40⌉ = 38th smallest");
        assert_eq!(rows[0].max, 40.0);
        assert_eq!(rows[0].error_rate, 1.0 / 40.0);
        assert!(table(&rows).lines().all(|l| l.chars().count() <= 100));
        assert!(csv(&rows).starts_with("env,function,operation"));
    }
}
