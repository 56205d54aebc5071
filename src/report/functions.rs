//! `report functions`: whole invocations per function (what the seed's second Logs Insights
//! query answers): the platform's `Lambda.Duration`, the application's
//! `total_function_duration` and X-Ray's `Lambda.Function`, each with its percentiles,
//! cold-start share and timeouts, and the slowest single invocations.

use super::data::{Selection, load};
use super::table::{Table, WIDTH};
use super::{csv_line, secs};
use crate::store::events::EventFilter;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// The operations that measure a whole invocation.
pub const INVOCATION_OPERATIONS: [&str; 3] = ["Lambda.Duration", "total_function_duration", "Lambda.Function"];

/// One (account, region, env, function, operation) of whole invocations.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionRow {
    /// Left out for the default origin (a config without accounts answers as before).
    #[serde(skip_serializing_if = "crate::model::is_default_account")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub cold_starts: u64,
    /// cold_starts / count.
    pub cold_start_share: f64,
    /// Invocations Lambda ended at their timeout (known from `Lambda.Duration`).
    pub timeouts: u64,
    pub errors: u64,
}

/// One invocation among the slowest (as the store reads it).
pub type Invocation = crate::store::events::EventRow;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionsReport {
    pub from_ms: i64,
    pub to_ms: i64,
    pub approximate: bool,
    /// Slowest first by p95.
    pub functions: Vec<FunctionRow>,
    /// The slowest single invocations still held as raw events, slowest first.
    pub slowest: Vec<Invocation>,
}

/// Builds the report over `sel`'s range, env and function (its operations are ignored).
pub async fn report(store: &Store, sel: &Selection, slowest: usize) -> Result<FunctionsReport, StoreError> {
    let sel = Selection {
        operations: INVOCATION_OPERATIONS.iter().map(|s| s.to_string()).collect(),
        step_ms: None,
        invocations: true,
        ..sel.clone()
    };
    let loaded = load(store, &sel).await?;
    let approximate = loaded.approximate();
    // Sources of one operation name are one measure here.
    let mut merged: std::collections::BTreeMap<(String, String, String, String, String), super::data::Agg> = Default::default();
    for (k, agg) in loaded.groups {
        merged.entry((k.account, k.region, k.env, k.function, k.operation)).or_default().merge(agg);
    }
    let mut functions: Vec<FunctionRow> = merged
        .into_iter()
        .map(|((account, region, env, function, operation), mut agg)| {
            let q = agg.quantiles(&[0.5, 0.95, 0.99]);
            FunctionRow {
                account,
                region,
                env,
                function,
                operation,
                count: agg.counts.count,
                mean: agg.counts.mean(),
                p50: q[0],
                p95: q[1],
                p99: q[2],
                max: agg.counts.max(),
                cold_starts: agg.counts.cold_starts,
                cold_start_share: agg.counts.cold_starts as f64 / agg.counts.count.max(1) as f64,
                timeouts: agg.counts.timeouts,
                errors: agg.counts.errors,
            }
        })
        .collect();
    functions.sort_by(|a, b| {
        b.p95
            .total_cmp(&a.p95)
            .then_with(|| (&a.function, &a.operation, &a.env, &a.account, &a.region).cmp(&(&b.function, &b.operation, &b.env, &b.account, &b.region)))
    });

    let filter = EventFilter {
        from_ms: sel.from_ms,
        to_ms: sel.to_ms,
        env: sel.env.as_deref(),
        function: sel.function.as_deref(),
        account: sel.account.as_deref(),
        region: sel.region.as_deref(),
        operations: &INVOCATION_OPERATIONS,
    };
    let slowest = store.slowest_events(filter, slowest).await?;
    Ok(FunctionsReport { from_ms: sel.from_ms, to_ms: sel.to_ms, approximate, functions, slowest })
}

/// `2026-11-22T10:00:00Z` for an epoch-ms time.
pub fn timestamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

pub fn table(r: &FunctionsReport) -> String {
    // Account and region columns only when some row is not the default origin's.
    let places = crate::model::shows_origin(
        r.functions.iter().map(|f| (f.account.as_str(), f.region.as_str())).chain(r.slowest.iter().map(|i| (i.account.as_str(), i.region.as_str()))),
    );
    let mut t = Table::new();
    if places {
        t = t.text("ACCOUNT", 4).text("REGION", 6);
    }
    let mut t = t.text("ENV", 4).text("FUNCTION", 14).text("OPERATION", 12).num("COUNT");
    t = t.num("P50").num("P95").num("P99").num("MAX").num("COLD").num("TIMEOUTS");
    for f in &r.functions {
        let mut cells = if places { vec![f.account.clone(), f.region.clone()] } else { Vec::new() };
        cells.extend([
            f.env.clone(),
            f.function.clone(),
            f.operation.clone(),
            f.count.to_string(),
            secs(f.p50),
            secs(f.p95),
            secs(f.p99),
            secs(f.max),
            format!("{:.0}%", f.cold_start_share * 100.0),
            f.timeouts.to_string(),
        ]);
        t.row(cells);
    }
    let mut out = if r.functions.is_empty() {
        format!("No invocation events ({}) in this range.\n", INVOCATION_OPERATIONS.join(", "))
    } else {
        t.render(WIDTH)
    };
    if !r.slowest.is_empty() {
        out.push_str("\nSlowest invocations:\n");
        let mut s = Table::new().num("TIME");
        if places {
            s = s.text("ACCOUNT", 4).text("REGION", 6);
        }
        let mut s = s
            .text("ENV", 4)
            .text("FUNCTION", 14)
            .text("OPERATION", 10)
            .num("DURATION")
            .text("NOTE", 4)
            .text("REQUEST", 8);
        for i in &r.slowest {
            let note = [(i.cold_start, "cold"), (i.timeout, "timeout"), (i.error && !i.timeout, "error")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, s)| *s)
                .collect::<Vec<_>>()
                .join(",");
            let mut cells = vec![timestamp(i.time_ms)];
            if places {
                cells.extend([i.account.clone(), i.region.clone()]);
            }
            cells.extend([
                i.env.clone(),
                i.function.clone(),
                i.operation.clone(),
                secs(i.duration_s),
                note,
                i.request_id.clone().unwrap_or_default(),
            ]);
            s.row(cells);
        }
        out.push_str(&s.render(WIDTH));
    }
    out
}

pub fn csv(r: &FunctionsReport) -> String {
    // Account and region go last, and only when needed (as in `report top`).
    let places = crate::model::shows_origin(r.functions.iter().map(|f| (f.account.as_str(), f.region.as_str())));
    let mut head = vec![
        "env",
        "function",
        "operation",
        "count",
        "mean",
        "p50",
        "p95",
        "p99",
        "max",
        "cold_starts",
        "cold_start_share",
        "timeouts",
        "errors",
    ];
    if places {
        head.extend(["account", "region"]);
    }
    let mut s = csv_line(&head);
    for f in &r.functions {
        let mut cells = vec![
            f.env.clone(),
            f.function.clone(),
            f.operation.clone(),
            f.count.to_string(),
            f.mean.to_string(),
            f.p50.to_string(),
            f.p95.to_string(),
            f.p99.to_string(),
            f.max.to_string(),
            f.cold_starts.to_string(),
            f.cold_start_share.to_string(),
            f.timeouts.to_string(),
            f.errors.to_string(),
        ];
        if places {
            cells.extend([f.account.clone(), f.region.clone()]);
        }
        s.push_str(&csv_line(&cells));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;

    #[tokio::test]
    async fn cold_starts_timeouts_and_the_slowest_invocations() {
        let store = Store::open_memory().await.unwrap();
        let mut events = Vec::new();
        for i in 0..20i64 {
            for (op, source, scale) in [
                ("Lambda.Duration", Source::Report, 1.0),
                ("total_function_duration", Source::Logs, 0.9),
                ("BedrockCallDuration", Source::Logs, 0.8),
            ] {
                events.push(TimingEvent {
                    time_ms: 1_000 + i,
                    env: "Dev".into(),
                    function: "GenerateDynamicScenarioHandler".into(),
                    operation: op.into(),
                    source,
                    duration_s: (i + 1) as f64 * scale,
                    request_id: Some(format!("req-{i}")),
                    trace_id: None,
                    function_version: None,
                    cold_start: i < 5,
                    error: i == 19,
                    idem_key: format!("{op}{i}"),
                    attributes: if i == 19 && op == "Lambda.Duration" { vec![("status".into(), "timeout".into())] } else { vec![] },
                });
            }
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let sel = Selection { from_ms: 0, to_ms: 10_000, ..Selection::default() };
        let r = report(&store, &sel, 3).await.unwrap();
        assert_eq!(r.functions.len(), 2, "BedrockCallDuration is not a whole invocation");
        let d = &r.functions[0];
        assert_eq!((d.operation.as_str(), d.count, d.cold_starts, d.timeouts, d.max), ("Lambda.Duration", 20, 5, 1, 20.0));
        assert_eq!(d.cold_start_share, 0.25);
        assert_eq!(r.slowest.len(), 3);
        assert_eq!((r.slowest[0].duration_s, r.slowest[0].timeout, r.slowest[0].request_id.as_deref()), (20.0, true, Some("req-19")));
        let text = table(&r);
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(text.contains("timeout") && text.contains("25%"), "{text}");
        assert_eq!(csv(&r).lines().count(), 3);
    }
}
