//! One operation (`/ui/operations/{function}/{operation}?range=6h`): p50/p95/p99 over time
//! for every env overlaid, the budget line, alert periods shaded, the distribution of its
//! durations per env, and its slowest recent invocations (request id, trace id, cold start,
//! timeout). Ranges from 1 h to 90 d; beyond 24 h the points come from hourly rollups, as
//! the reports' do.

use super::super::{AppError, AppState, run_bounded};
use super::super::reports::Params;
use super::compare::json_block;
use super::layout::{self, secs, utc};
use super::respond;
use crate::clock::now_ms;
use crate::evaluate::budgets::match_budget;
use crate::model::alert::Target;
use crate::report::TimeRange;
use crate::report::data::{Agg, Selection, load};
use crate::report::history::{self, EnvSeries, Only};
use crate::store::alerts::TransitionRow;
use crate::store::events::{EventFilter, EventRow};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The ranges offered, and the step of each (≤ 150 points; whole hours past 24 h).
pub const RANGES: &[(&str, i64, i64)] = &[
    ("1h", 3_600_000, 60_000),
    ("6h", 6 * 3_600_000, 5 * 60_000),
    ("24h", 86_400_000, 15 * 60_000),
    ("7d", 7 * 86_400_000, 3_600_000),
    ("30d", 30 * 86_400_000, 6 * 3_600_000),
    ("90d", 90 * 86_400_000, 86_400_000),
];

/// Upper bounds of the distribution's bins, seconds (log-spaced, 1 ms … 60 s and above).
const BINS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, f64::INFINITY];

/// The time chart's data: the union of the envs' steps, each env's p50/p95/p99 (null where
/// a step has no events), the budget as a flat line, and the alert periods.
pub fn chart_data(series: &[EnvSeries], budget: Option<(f64, f64)>, periods: &[(i64, i64)], title: &str) -> serde_json::Value {
    let steps: BTreeSet<i64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.t_ms)).collect();
    let xs: Vec<i64> = steps.into_iter().collect();
    let mut out = Vec::new();
    for s in series {
        let at: HashMap<i64, &history::Point> = s.points.iter().map(|p| (p.t_ms, p)).collect();
        for (name, pick) in [("p50", 0), ("p95", 1), ("p99", 2)] {
            let values: Vec<Option<f64>> = xs
                .iter()
                .map(|t| at.get(t).map(|p| [p.p50, p.p95, p.p99][pick]))
                .collect();
            out.push(serde_json::json!({ "label": format!("{} {name}", s.env), "env": s.env, "quantile": name, "values": values }));
        }
    }
    if let Some((q, t)) = budget {
        out.push(serde_json::json!({ "label": format!("budget (p{:.0} {})", q * 100.0, secs(t)), "budget": true, "values": vec![Some(t); xs.len()] }));
    }
    serde_json::json!({
        "kind": "lines",
        "title": title,
        "x": xs.iter().map(|t| *t as f64 / 1000.0).collect::<Vec<_>>(),
        "series": out,
        "bands": periods.iter().map(|(a, b)| [*a as f64 / 1000.0, *b as f64 / 1000.0]).collect::<Vec<_>>(),
    })
}

/// Alert periods from transitions (any order): from each firing to the resolve or clear that
/// follows it (or `now`, still firing), clipped to `from`.
pub fn alert_periods(transitions: &[TransitionRow], from: i64, now: i64) -> Vec<(i64, i64)> {
    let mut by_key: BTreeMap<&str, Vec<&TransitionRow>> = BTreeMap::new();
    for t in transitions {
        by_key.entry(&t.alert_key).or_default().push(t);
    }
    let mut out = Vec::new();
    for (_, mut ts) in by_key {
        ts.sort_by_key(|t| t.time_ms);
        let mut open: Option<i64> = None;
        for t in ts {
            match t.transition.as_str() {
                "firing" => open = open.or(Some(t.time_ms)),
                "resolved" | "cleared" => {
                    if let Some(start) = open.take() {
                        out.push((start.max(from), t.time_ms));
                    }
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            out.push((start.max(from), now));
        }
    }
    out.sort();
    out
}

/// Each env's durations by bin, from its percentiles (every 1 % of the events is placed at
/// its percentile's value): (bin upper bounds, env → events per bin).
pub fn distribution(mut per_env: BTreeMap<String, Agg>) -> serde_json::Value {
    let qs: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
    let series: Vec<serde_json::Value> = per_env
        .iter_mut()
        .map(|(env, agg)| {
            let n = agg.counts.count as f64;
            let mut bins = vec![0.0; BINS.len()];
            for v in agg.quantiles(&qs) {
                let i = BINS.iter().position(|b| v <= *b).unwrap_or(BINS.len() - 1);
                bins[i] += n / 100.0;
            }
            serde_json::json!({ "label": env, "values": bins.iter().map(|b| b.round()).collect::<Vec<_>>() })
        })
        .collect();
    serde_json::json!({
        "kind": "histogram",
        "title": "events per duration bin",
        "labels": BINS.iter().map(|b| if b.is_finite() { format!("≤ {}", secs(*b)) } else { "> 60s".to_string() }).collect::<Vec<_>>(),
        "series": series,
    })
}

pub async fn page(State(state): State<AppState>, Path((function, operation)): Path<(String, String)>, Query(q): Query<HashMap<String, String>>) -> Response {
    let title = format!("{function} / {operation}");
    respond(render(&state, function, operation, q).await, &title, &state)
}

async fn render(state: &AppState, function: String, operation: String, q: HashMap<String, String>) -> Result<Markup, AppError> {
    let p = Params::new(q, &["range"])?;
    let range_name = p.get("range").unwrap_or("6h");
    let &(_, span, step) = RANGES
        .iter()
        .find(|(n, _, _)| *n == range_name)
        .ok_or_else(|| AppError::BadRequest(format!("range: one of {}, got {range_name:?}", RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", "))))?;
    let reach = crate::report::duration_ms(state.config.storage.rollup_retention.max(state.config.storage.retention));
    if span > reach + 3_600_000 {
        return Err(AppError::BadRequest("range: reaches back further than the history kept (storage.rollup_retention)".into()));
    }
    let now = now_ms();
    let range = TimeRange { from_ms: now - span, to_ms: now };
    let (f, o) = (function.clone(), operation.clone());
    let (hist, per_env, transitions, slowest) = run_bounded(state, move |store| async move {
        let hist = history::history(&store, &f, &o, Only::default(), range, step).await?;
        let sel = Selection { from_ms: range.from_ms, to_ms: now, function: Some(f.clone()), operations: vec![o.clone()], ..Selection::default() };
        let mut per_env: BTreeMap<String, Agg> = BTreeMap::new();
        for (k, a) in load(&store, &sel).await?.groups {
            per_env.entry(k.env).or_default().merge(a);
        }
        let transitions: Vec<TransitionRow> =
            store.alert_transitions(range.from_ms, 10_000).await?.into_iter().filter(|t| t.function == f && t.operation == o).collect();
        // The slowest invocations of the last 24 h at most (raw events).
        let recent_from = now - span.min(86_400_000);
        let ops = [o.as_str()];
        let filter = EventFilter { from_ms: recent_from, to_ms: now, env: None, function: Some(&f), account: None, region: None, operations: &ops };
        let slowest: Vec<EventRow> = store.slowest_events(filter, 20).await?;
        Ok((hist, per_env, transitions, slowest))
    })
    .await?;
    let budget = hist.series.iter().find_map(|s| {
        let t = Target { account: s.account.clone(), region: s.region.clone(), env: s.env.clone(), function: function.clone(), operation: operation.clone() };
        match_budget(&state.config.budgets, &t).and_then(|(_, b)| b.threshold()).map(|(q, d)| (q, d.as_secs_f64()))
    });
    let periods = alert_periods(&transitions, range.from_ms, now);
    let envs: Vec<&str> = hist.series.iter().map(|s| s.env.as_str()).collect();
    let chart = chart_data(&hist.series, budget, &periods, &format!("{function} / {operation}"));
    let base = layout::operation_url(&function, &operation);
    Ok(layout::page(&format!("{function} / {operation}"), "", state, html! {
        h1 { (function) " / " (operation) }
        nav.ranges aria-label="Range" {
            @for (r, _, _) in RANGES {
                @if *r == range_name { a href=(format!("{base}?range={r}")) aria-current="true" { (r) } } @else { a href=(format!("{base}?range={r}")) { (r) } }
            }
        }
        p.small {
            "Envs: " (envs.join(", "))
            @if let Some((q, t)) = budget { " · budget p" (format!("{:.0}", q * 100.0)) " " (secs(t)) }
            " · " (periods.len()) " alert period(s) shaded"
            @if hist.approximate { " · from hourly rollups (percentiles within 1 %)" }
        }
        figure.chart {
            div.plot data-chart="latency" data-envs=(envs.join(",")) data-budget=(budget.map(|b| b.1.to_string()).unwrap_or_default())
                role="img" aria-label=(format!("p50, p95 and p99 of {operation} over {range_name} per env, with the budget")) {}
            script type="application/json" data-for="latency" { (json_block(&chart)) }
            figcaption { "p50 / p95 / p99 per " (secs(step as f64 / 1000.0)) " step; dashed: the budget; shaded: the alert was firing" }
        }
        figure.chart {
            div.plot data-chart="distribution" role="img" aria-label=(format!("Distribution of {operation}'s durations per env over {range_name}")) {}
            script type="application/json" data-for="distribution" { (json_block(&distribution(per_env))) }
            figcaption { "Events per duration bin over " (range_name) ", per env" }
        }
        section aria-labelledby="slowest" {
            h2 #slowest { "Slowest recent invocations" }
            div.scroll { table {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Env" } th scope="col" { "Duration" } th scope="col" { "Request id" }
                    th scope="col" { "Trace id" } th scope="col" { "Cold start" } th scope="col" { "Timeout" } th scope="col" { "Error" }
                } }
                tbody {
                    @for e in &slowest {
                        tr {
                            td { (utc(e.time_ms)) } td { (e.env) } td.num { (secs(e.duration_s)) }
                            td { code { (e.request_id.clone().unwrap_or_default()) } }
                            td { code { (e.trace_id.clone().unwrap_or_default()) } }
                            td { (if e.cold_start { "yes" } else { "" }) } td { (if e.timeout { "yes" } else { "" }) } td { (if e.error { "yes" } else { "" }) }
                        }
                    }
                    @if slowest.is_empty() { tr { td colspan="8" { "No invocation in this range." } } }
                }
            } }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str, time_ms: i64, transition: &str) -> TransitionRow {
        TransitionRow {
            time_ms,
            alert_key: key.into(),
            budget: "b".into(),
            account: "default".into(),
            region: String::new(),
            env: "Dev".into(),
            function: "f".into(),
            operation: "o".into(),
            quantile: 0.95,
            transition: transition.into(),
            value_s: None,
            budget_s: 5.0,
            samples: 1,
            severity: "warning".into(),
        }
    }

    #[test]
    fn alert_periods_run_from_firing_to_resolved_or_now() {
        let rows = [t("a", 10, "pending"), t("a", 20, "firing"), t("a", 50, "resolved"), t("b", 5, "firing"), t("a", 70, "firing")];
        assert_eq!(alert_periods(&rows, 8, 100), [(8, 100), (20, 50), (70, 100)]);
    }

    #[test]
    fn the_chart_aligns_envs_on_one_axis_and_draws_the_budget() {
        let p = |t_ms: i64, p95: f64| history::Point { t_ms, count: 1, errors: 0, avg: p95, p50: p95, p95, p99: p95, max: p95 };
        let s = |env: &str, points| EnvSeries { account: "default".into(), region: String::new(), env: env.into(), points };
        let c = chart_data(&[s("Dev", vec![p(0, 9.0), p(60_000, 9.5)]), s("PROD", vec![p(60_000, 2.0)])], Some((0.95, 5.0)), &[(0, 60_000)], "t");
        assert_eq!(c["x"], serde_json::json!([0.0, 60.0]));
        let series = c["series"].as_array().unwrap();
        assert_eq!(series.len(), 7);
        assert_eq!(series[4]["label"], "PROD p95");
        assert_eq!(series[4]["values"], serde_json::json!([null, 2.0]));
        assert_eq!(series[6]["budget"], true);
        assert_eq!(c["bands"], serde_json::json!([[0.0, 60.0]]));
    }

    #[test]
    fn the_distribution_places_every_percent_of_the_events() {
        let mut a = Agg::default();
        for i in 0..200 {
            a.push(if i < 100 { 0.02 } else { 3.0 }, false, false, false);
        }
        let d = distribution(BTreeMap::from([("Dev".to_string(), a)]));
        let v: Vec<f64> = d["series"][0]["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(v.iter().sum::<f64>(), 200.0);
        assert_eq!(v[4], 100.0, "≤ 25ms");
        assert_eq!(v[11], 100.0, "≤ 5s");
    }
}
