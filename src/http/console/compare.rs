//! Dev against PROD (`/ui/compare?baseline=PROD&candidate=Dev&since=24h`): the `report
//! compare` table with its verdicts, p-values and intervals, and a chart of each
//! operation's p95 change (regressions first).

use super::super::{AppError, AppState, run_bounded};
use super::super::reports::Params;
use super::layout::{self, operation_url, secs};
use super::respond;
use crate::clock::now_ms;
use crate::report::compare::{self, CompareRow, Verdict};
use crate::report::parse_range;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use std::collections::HashMap;

const KNOWN: &[&str] = &["baseline", "candidate", "since", "function"];

pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "regression",
        Verdict::Improvement => "improvement",
        Verdict::NoChange => "no change",
        Verdict::InsufficientData => "insufficient data",
    }
}

/// The chart's data: operation labels and p95 change in %, regressions first.
pub fn chart_data(rows: &[CompareRow]) -> serde_json::Value {
    let mut shown: Vec<&CompareRow> = rows.iter().filter(|r| r.change_pct.p95.is_some()).collect();
    shown.sort_by(|a, b| b.change_pct.p95.unwrap_or(0.0).total_cmp(&a.change_pct.p95.unwrap_or(0.0)));
    shown.truncate(30);
    serde_json::json!({
        "kind": "bars",
        "labels": shown.iter().map(|r| format!("{} / {}", r.function, r.operation)).collect::<Vec<_>>(),
        "values": shown.iter().map(|r| r.change_pct.p95).collect::<Vec<_>>(),
        "regression": shown.iter().map(|r| r.verdict == Verdict::Regression).collect::<Vec<_>>(),
        "title": "p95 change, %",
    })
}

/// JSON for a `<script type="application/json">` block: `<` escaped so the text can never
/// close the element.
pub fn json_block(v: &serde_json::Value) -> PreEscaped<String> {
    PreEscaped(v.to_string().replace('<', "\\u003c"))
}

pub async fn page(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    respond(render(&state, q).await, "Compare", &state)
}

async fn render(state: &AppState, q: HashMap<String, String>) -> Result<Markup, AppError> {
    let params = Params::new(q, KNOWN)?;
    let p = |k: &str| params.get(k);
    let (baseline, candidate) = (p("baseline").unwrap_or("PROD"), p("candidate").unwrap_or("Dev"));
    let since = p("since").unwrap_or("24h");
    let now = now_ms();
    let range = parse_range(Some(since), None, None, now)?;
    let reach = crate::report::duration_ms(state.config.storage.rollup_retention.max(state.config.storage.retention));
    if range.span_ms() > reach {
        return Err(AppError::BadRequest("since: reaches back further than the history kept (storage.rollup_retention)".into()));
    }
    let mut query = compare::build_query(Some(baseline), Some(candidate), None, None, None, range, p("function"), now)?;
    query.operations = state.config.operations.clone();
    let report = run_bounded(state, move |store| async move { Ok(compare::report(&store, &query).await?) }).await?;
    // Ordered by the report: regressions first, as the table and chart show them.
    let rows = report.rows.clone();
    let pct = |v: Option<f64>| v.map(|v| format!("{v:+.0}%")).unwrap_or_else(|| "–".into());
    Ok(layout::page("Compare", "/ui/compare", state, html! {
        h1 { (candidate) " against " (baseline) }
        form.filters method="get" action="/ui/compare" {
            label for="baseline" { "Baseline env" } input #baseline name="baseline" value=(baseline);
            label for="candidate" { "Candidate env" } input #candidate name="candidate" value=(candidate);
            label for="since" { "Range" }
            select #since name="since" {
                @for r in ["1h", "6h", "24h", "7d", "30d", "90d"] { option value=(r) selected[r == since] { (r) } }
            }
            button type="submit" { "Compare" }
        }
        p.small {
            "Mann–Whitney at α = " (report.alpha) ", at least " (report.min_samples) " events a side and a "
            (format!("{:.0}", report.min_change_pct)) "% change to call a regression"
            @if report.baseline.approximate || report.candidate.approximate { "; percentiles over 24 h come from rollups (within 1 %)" }
            "."
        }
        figure.chart {
            div.plot data-chart="compare" role="img" aria-label="p95 change per operation, candidate against baseline" {}
            script type="application/json" data-for="compare" { (json_block(&chart_data(&rows))) }
            figcaption { "p95 change per operation (" (candidate) " against " (baseline) "); red: regression" }
        }
        div.scroll { table.compare {
            thead { tr {
                th scope="col" { "Verdict" } th scope="col" { "Function / operation" } th scope="col" { "Events" }
                th scope="col" { (baseline) " p95" } th scope="col" { (candidate) " p95" } th scope="col" { "Change" }
                th scope="col" { "p-value" } th scope="col" { "p95 difference, 95% interval" }
            } }
            tbody {
                @for r in &rows {
                    tr data-operation=(r.operation) data-function=(r.function) data-verdict=(verdict(r.verdict)) {
                        td { span class=(format!("status {}", verdict(r.verdict).replace(' ', "-"))) { (verdict(r.verdict)) } }
                        td { a href=(operation_url(&r.function, &r.operation)) { (r.function) " / " (r.operation) } }
                        td.num { (r.baseline.count) " / " (r.candidate.count) }
                        td.num { (secs(r.baseline.p95)) }
                        td.num { (secs(r.candidate.p95)) }
                        td.num { (pct(r.change_pct.p95)) }
                        td.num { (r.mann_whitney.as_ref().map(|m| format!("{:.3}", m.p_value)).unwrap_or_else(|| "–".into())) }
                        td.num {
                            @if let Some(b) = &r.bootstrap_p95 { (secs(b.diff_s)) " [" (secs(b.low_s)) ", " (secs(b.high_s)) "]" } @else { "–" }
                        }
                    }
                    // The cause's other names, and the whole-invocation rows it explains.
                    @for (f, note) in r.linked.iter().map(|f| (f, "same call")).chain(r.explains.iter().map(|f| (f, "explained"))) {
                        tr.folded data-operation=(f.operation) data-function=(f.function) data-folded-under=(r.operation) {
                            td { span.small { (note) } }
                            td { "↳ " a href=(operation_url(&f.function, &f.operation)) { (f.operation) } }
                            td.num { (f.baseline.count) " / " (f.candidate.count) }
                            td.num { (secs(f.baseline.p95)) }
                            td.num { (secs(f.candidate.p95)) }
                            td.num { (pct(f.change_pct.p95)) }
                            td.num { (f.mann_whitney.as_ref().map(|m| format!("{:.3}", m.p_value)).unwrap_or_else(|| "–".into())) }
                            td.num { "–" }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="8" { "No operation has events in both envs in this range." } } }
            }
        } }
    }))
}
