//! `report top`: the slowest operations over a time range (what the seed's first Logs
//! Insights query answers), per (env, function, operation, source), with nearest-rank
//! percentiles and, given the config's budgets, the budget that judges each and whether the
//! range's quantile is over it.

use super::data::{Selection, load};
use super::table::{Table, WIDTH};
use super::{csv_line, secs};
use crate::config::BudgetConfig;
use crate::evaluate::budgets::match_budget;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// One row of `report top`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopRow {
    /// The account and region: shown only when they are not the default origin's (a
    /// config without `[[accounts]]` answers as before).
    #[serde(skip_serializing_if = "crate::model::is_default_account")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub source: String,
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub error_rate: f64,
    /// The budget that judges this series (the most specific match), if any.
    pub budget: Option<BudgetRef>,
    /// `ok`, `over` (the budget's quantile over this range is above it) or
    /// `insufficient_data` (fewer events than the budget's `min_samples`); null without a budget.
    pub status: Option<&'static str>,
}

/// A budget as `report top` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BudgetRef {
    pub name: String,
    /// 0.5, 0.9, 0.95 or 0.99.
    pub quantile: f64,
    pub threshold_s: f64,
    pub min_samples: u64,
}

/// Filters of a report.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<String>,
    pub function: Option<String>,
    /// Only this account and region.
    pub account: Option<String>,
    pub region: Option<String>,
}

/// `report top` with its range and provenance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopReport {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Some percentiles come from rollups (within 1 %) rather than every event.
    pub approximate: bool,
    pub operations: Vec<TopRow>,
    /// Operations that time the same call (configured, and learned from the range's
    /// invocations: confirm a learned one with `[[operations]] also`). Filled by callers
    /// that ask for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::cause::Link>,
}

/// The links as lines under the table.
pub fn links_text(links: &[crate::cause::Link]) -> String {
    if links.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nOperations timing the same call (one alert and one compare row per cause):\n");
    for l in links {
        let place = l.function.as_deref().map(|f| format!(" in {f}")).unwrap_or_default();
        let how = if l.origin == "learned" {
            format!("learned: {} shared invocations, {:.0} % near-equal; confirm with [[operations]] also", l.invocations, l.agreement * 100.0)
        } else {
            "configured".into()
        };
        out.push_str(&format!("  {} = {}{place} ({how})\n", l.also, l.name));
    }
    out
}

/// Rows sorted by p95, slowest first (no budgets).
pub async fn top(store: &Store, f: &Filter) -> Result<Vec<TopRow>, StoreError> {
    Ok(report(store, f, &[]).await?.operations)
}

/// Rows sorted by p95, slowest first, each judged by its budget from `budgets`.
pub async fn report(store: &Store, f: &Filter, budgets: &[BudgetConfig]) -> Result<TopReport, StoreError> {
    let sel = Selection {
        from_ms: f.from_ms,
        to_ms: f.to_ms,
        env: f.env.clone(),
        function: f.function.clone(),
        account: f.account.clone(),
        region: f.region.clone(),
        ..Selection::default()
    };
    let loaded = load(store, &sel).await?;
    let approximate = loaded.approximate();
    let mut out: Vec<TopRow> = loaded
        .groups
        .into_iter()
        .map(|(k, mut agg)| {
            let q = agg.quantiles(&[0.5, 0.9, 0.95, 0.99]);
            let target = crate::model::alert::Target {
                account: k.account.clone(),
                region: k.region.clone(),
                env: k.env.clone(),
                function: k.function.clone(),
                operation: k.operation.clone(),
            };
            let budget = match_budget(budgets, &target).and_then(|(_, b)| {
                let (quantile, threshold) = b.threshold()?;
                Some(BudgetRef { name: b.display_name(), quantile, threshold_s: threshold.as_secs_f64(), min_samples: b.min_samples })
            });
            let status = budget.as_ref().map(|b| {
                let observed = [(0.5, q[0]), (0.9, q[1]), (0.95, q[2]), (0.99, q[3])]
                    .into_iter()
                    .find(|(x, _)| *x == b.quantile)
                    .map_or(0.0, |(_, v)| v);
                if agg.counts.count < b.min_samples {
                    "insufficient_data"
                } else if observed > b.threshold_s {
                    "over"
                } else {
                    "ok"
                }
            });
            TopRow {
                count: agg.counts.count as usize,
                p50: q[0],
                p90: q[1],
                p95: q[2],
                p99: q[3],
                max: agg.counts.max(),
                error_rate: agg.counts.errors as f64 / agg.counts.count.max(1) as f64,
                budget,
                status,
                account: k.account,
                region: k.region,
                env: k.env,
                function: k.function,
                operation: k.operation,
                source: k.source,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.p95
            .total_cmp(&a.p95)
            .then_with(|| a.function.cmp(&b.function))
            .then_with(|| a.operation.cmp(&b.operation))
            .then_with(|| a.env.cmp(&b.env))
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| (&a.account, &a.region).cmp(&(&b.account, &b.region)))
    });
    Ok(TopReport { from_ms: f.from_ms, to_ms: f.to_ms, approximate, operations: out, links: Vec::new() })
}

/// Renders rows as a table that fits 100 columns (budget columns when any row has one).
pub fn table(rows: &[TopRow]) -> String {
    let budgets = rows.iter().any(|r| r.budget.is_some());
    // Account and region columns only when some row is not the default origin's.
    let places = crate::model::shows_origin(rows.iter().map(|r| (r.account.as_str(), r.region.as_str())));
    let mut t = Table::new();
    if places {
        t = t.text("ACCOUNT", 4).text("REGION", 6);
    }
    let mut t = t.text("ENV", 4).text("FUNCTION", 14).text("OPERATION", 14).num("COUNT");
    t = t.num("P50").num("P95").num("P99").num("MAX");
    if budgets {
        t = t.num("BUDGET").text("STATUS", 4);
    }
    for r in rows {
        let mut cells = if places { vec![r.account.clone(), r.region.clone()] } else { Vec::new() };
        cells.extend([r.env.clone(), r.function.clone(), r.operation.clone(), r.count.to_string()]);
        cells.extend([secs(r.p50), secs(r.p95), secs(r.p99), secs(r.max)]);
        if budgets {
            cells.push(r.budget.as_ref().map_or(String::new(), |b| format!("p{} {}", (b.quantile * 100.0).round(), secs(b.threshold_s))));
            cells.push(match r.status {
                Some("over") => "OVER".into(),
                Some("insufficient_data") => "few".into(),
                Some(s) => s.into(),
                None => String::new(),
            });
        }
        t.row(cells);
    }
    t.render(WIDTH)
}

/// CSV with a header row (seconds as plain numbers).
pub fn csv(rows: &[TopRow]) -> String {
    // Account and region go last, and only when some row is not the default origin's: the
    // columns a config without `[[accounts]]` had stay where they were.
    let places = crate::model::shows_origin(rows.iter().map(|r| (r.account.as_str(), r.region.as_str())));
    let mut head = vec![
        "env", "function", "operation", "source", "count", "p50", "p90", "p95", "p99", "max", "error_rate", "budget", "budget_quantile",
        "budget_s", "status",
    ];
    if places {
        head.extend(["account", "region"]);
    }
    let mut s = csv_line(&head);
    for r in rows {
        let b = r.budget.as_ref();
        let mut cells = vec![
            r.env.clone(),
            r.function.clone(),
            r.operation.clone(),
            r.source.clone(),
            r.count.to_string(),
            r.p50.to_string(),
            r.p90.to_string(),
            r.p95.to_string(),
            r.p99.to_string(),
            r.max.to_string(),
            r.error_rate.to_string(),
            b.map_or(String::new(), |b| b.name.clone()),
            b.map_or(String::new(), |b| b.quantile.to_string()),
            b.map_or(String::new(), |b| b.threshold_s.to_string()),
            r.status.unwrap_or("").to_string(),
        ];
        if places {
            cells.extend([r.account.clone(), r.region.clone()]);
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
    use std::time::Duration;

    #[tokio::test]
    async fn exact_p95_per_series_slowest_first_with_budgets() {
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
        let f = Filter { from_ms: 0, to_ms: 10_000, ..Filter::default() };
        let rows = top(&store, &f).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].env, "Dev");
        assert_eq!(rows[0].p95, 38.0, "⌈0.95·40⌉ = 38th smallest");
        assert_eq!(rows[0].max, 40.0);
        assert_eq!(rows[0].error_rate, 1.0 / 40.0);
        assert!(rows[0].budget.is_none() && rows[0].status.is_none());
        assert!(table(&rows).lines().all(|l| l.chars().count() <= 100));
        assert!(csv(&rows).starts_with("env,function,operation"));

        let budgets = vec![
            BudgetConfig { operation: "Bedrock.*".into(), p95: Some(Duration::from_secs(5)), ..BudgetConfig::default() },
            BudgetConfig {
                env: "PROD".into(),
                operation: "Bedrock.*".into(),
                p95: Some(Duration::from_secs(5)),
                min_samples: 50,
                ..BudgetConfig::default()
            },
        ];
        let r = report(&store, &f, &budgets).await.unwrap();
        assert!(!r.approximate);
        let status: Vec<_> = r.operations.iter().map(|o| (o.env.as_str(), o.status)).collect();
        assert_eq!(status, [("Dev", Some("over")), ("PROD", Some("insufficient_data"))]);
        assert_eq!(r.operations[0].budget.as_ref().unwrap().threshold_s, 5.0);
        let text = table(&r.operations);
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(text.contains("OVER") && text.contains("p95 5.00s"), "{text}");
    }
}
