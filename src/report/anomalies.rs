//! Learned baselines read from the store, and `report anomalies`: every operation's recent
//! window judged against its own past exactly as the daemon judges it (`evaluate::anomaly`),
//! regressions first. [`StoreBaselines`] is the reader the daemon hands its evaluator (the
//! evaluator sits below the reports and cannot read rollups itself).

use super::data::{Agg, Selection, load};
use super::table::{Table, WIDTH};
use super::top::Filter;
use super::{csv_line, secs};
use crate::cause::is_cold_start;
use crate::evaluate::anomaly::{Baselines, Rule, judge, load_baselines, verdict_rank};
use crate::model::alert::Target;
use crate::stats::Dist;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;

/// Reads baselines from raw events and hourly rollups (the reports' own rule, [`load`]).
pub struct StoreBaselines {
    pub store: Store,
}

impl Baselines for StoreBaselines {
    fn load<'a>(
        &'a self,
        ranges: &'a [(i64, i64)],
        only: Option<(&'a str, &'a str)>,
    ) -> futures::future::BoxFuture<'a, Result<HashMap<Target, Dist>, StoreError>> {
        Box::pin(async move {
            let groups = read(&self.store, ranges, only.map(|(f, _)| f), only.map(|(_, o)| o), None).await?;
            Ok(groups.into_iter().map(|(t, agg)| (t, agg.dist())).collect())
        })
    }
}

/// The events of `ranges` per target (sources merged, cold-start operations left out).
async fn read(store: &Store, ranges: &[(i64, i64)], function: Option<&str>, operation: Option<&str>, f: Option<&Filter>) -> Result<HashMap<Target, Agg>, StoreError> {
    let mut out: HashMap<Target, Agg> = HashMap::new();
    for &(from_ms, to_ms) in ranges {
        let sel = Selection {
            from_ms,
            to_ms,
            env: f.and_then(|f| f.env.clone()),
            function: function.map(str::to_string).or_else(|| f.and_then(|f| f.function.clone())),
            account: f.and_then(|f| f.account.clone()),
            region: f.and_then(|f| f.region.clone()),
            operations: operation.map(|o| vec![o.to_string()]).unwrap_or_default(),
            ..Selection::default()
        };
        for (k, agg) in load(store, &sel).await?.groups {
            if is_cold_start(&k.operation) {
                continue;
            }
            let t = Target { account: k.account, region: k.region, env: k.env, function: k.function, operation: k.operation };
            out.entry(t).or_default().merge(agg);
        }
    }
    Ok(out)
}

/// One operation judged against its learned baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnomalyRow {
    #[serde(skip_serializing_if = "crate::model::is_default_account")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    /// `regression`, `normal` or `cold` (too few events on a side).
    pub verdict: &'static str,
    pub recent_p95_s: f64,
    pub baseline_p95_s: f64,
    pub ratio: f64,
    pub p_value: f64,
    pub recent_samples: u64,
    pub baseline_samples: u64,
    /// `hour_of_week` or `trailing`.
    pub baseline_kind: &'static str,
    pub baseline_from_ms: Option<i64>,
    pub baseline_to_ms: Option<i64>,
}

/// `report anomalies`: the recent window ending at `now` and its baselines.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AnomalyReport {
    pub now_ms: i64,
    pub window_s: f64,
    pub operations: Vec<AnomalyRow>,
}

/// Judges every operation with events in the window ending at `now` (filtered by `f`'s
/// env, function, account and region), regressions first, then by ratio.
pub async fn report(store: &Store, rule: &Rule, f: &Filter, now: i64) -> Result<AnomalyReport, StoreError> {
    let recent = read(store, &[(now - rule.window_ms, now)], None, None, Some(f)).await?;
    let source = StoreBaselines { store: store.clone() };
    let set = load_baselines(store, &source, rule, now).await?;
    let empty = Dist::default();
    let mut rows: Vec<AnomalyRow> = recent
        .into_iter()
        .map(|(t, agg)| {
            let r = agg.dist();
            let base = set.dists.get(&t).unwrap_or(&empty);
            let j = judge(&r, base, rule);
            let span = set.span_of(&t.function, &t.operation);
            AnomalyRow {
                verdict: j.verdict.as_str(),
                recent_p95_s: j.recent_p95,
                baseline_p95_s: j.baseline_p95,
                ratio: j.ratio,
                p_value: j.p_value,
                recent_samples: j.recent_samples,
                baseline_samples: j.baseline_samples,
                baseline_kind: if set.seasonal_of(&t.function, &t.operation) { "hour_of_week" } else { "trailing" },
                baseline_from_ms: span.map(|s| s.0),
                baseline_to_ms: span.map(|s| s.1),
                account: t.account,
                region: t.region,
                env: t.env,
                function: t.function,
                operation: t.operation,
            }
        })
        .collect();
    rows.sort_by(|a, b| verdict_rank(a.verdict).cmp(&verdict_rank(b.verdict)).then(b.ratio.total_cmp(&a.ratio)).then_with(|| (&a.env, &a.function, &a.operation).cmp(&(&b.env, &b.function, &b.operation))));
    Ok(AnomalyReport { now_ms: now, window_s: rule.window_ms as f64 / 1000.0, operations: rows })
}

pub fn table(r: &AnomalyReport) -> String {
    if r.operations.is_empty() {
        return "No events in the recent window.\n".into();
    }
    let mut t = Table::new().text("ENV", 4).text("FUNCTION", 14).text("OPERATION", 14).text("VERDICT", 7).num("P95");
    t = t.num("BASELINE").num("RATIO").num("P").num("N").num("BASE N");
    for a in &r.operations {
        t.row(vec![
            a.env.clone(),
            a.function.clone(),
            a.operation.clone(),
            a.verdict.into(),
            secs(a.recent_p95_s),
            secs(a.baseline_p95_s),
            format!("{:.2}", a.ratio),
            format!("{:.1e}", a.p_value),
            a.recent_samples.to_string(),
            a.baseline_samples.to_string(),
        ]);
    }
    t.render(WIDTH)
}

pub fn csv(r: &AnomalyReport) -> String {
    let mut s = csv_line(&[
        "account", "region", "env", "function", "operation", "verdict", "recent_p95_s", "baseline_p95_s", "ratio", "p_value", "recent_samples",
        "baseline_samples", "baseline_kind",
    ]);
    for a in &r.operations {
        s.push_str(&csv_line(&[
            a.account.as_str(),
            &a.region,
            &a.env,
            &a.function,
            &a.operation,
            a.verdict,
            &a.recent_p95_s.to_string(),
            &a.baseline_p95_s.to_string(),
            &a.ratio.to_string(),
            &a.p_value.to_string(),
            &a.recent_samples.to_string(),
            &a.baseline_samples.to_string(),
            a.baseline_kind,
        ]));
    }
    s
}
