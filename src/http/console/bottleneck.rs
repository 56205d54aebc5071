//! Where the slow workflows' time goes (`/ui/bottleneck?since=1h&env=Dev`): per workflow,
//! the critical path averaged over its slowest traces as a waterfall (state machine →
//! function → subsegments, bars to scale, the bottleneck marked), and the slowest trace
//! drawn from its own spans.

use super::super::{AppError, AppState, run_bounded};
use super::super::reports::Params;
use super::layout::{self, secs};
use super::{respond, svg};
use crate::clock::now_ms;
use crate::critical_path::{PathShare, decode_path, decode_shares};
use crate::report::bottleneck::{self, BottleneckQuery, Workflow};
use crate::report::parse_range;
use crate::store::attribution::StoredPath;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use std::collections::HashMap;

const KNOWN: &[&str] = &["since", "env", "workflow", "percentile"];

/// The averaged critical path of a workflow as waterfall bars.
pub fn workflow_bars(w: &Workflow) -> Vec<svg::Bar> {
    let nodes: Vec<(String, usize, f64, bool, bool)> = w
        .nodes
        .iter()
        .map(|n| {
            let bottleneck = w.bottleneck.as_ref().is_some_and(|b| b.path == n.path);
            (node_label(&n.function, &n.operation, n.depth), n.depth, n.self_s, bottleneck, n.gap)
        })
        .collect();
    svg::lay_out(&nodes)
}

/// One trace's path as waterfall bars.
pub fn trace_bars(path: &[PathShare]) -> Vec<svg::Bar> {
    let nodes: Vec<(String, usize, f64, bool, bool)> =
        path.iter().map(|n| (node_label(&n.function, &n.operation, n.depth), n.depth, n.self_s, false, n.gap)).collect();
    let mut bars = svg::lay_out(&nodes);
    // The bottleneck of one trace: its node with the most self time.
    if let Some(i) = path.iter().enumerate().filter(|(_, n)| !n.gap).max_by(|a, b| a.1.self_s.total_cmp(&b.1.self_s)).map(|(i, _)| i) {
        bars[i].bottleneck = true;
    }
    bars
}

fn node_label(function: &str, operation: &str, depth: usize) -> String {
    if depth == 0 || function == operation || function.is_empty() { operation.to_string() } else { format!("{function} · {operation}") }
}

pub async fn page(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    respond(render(&state, q).await, "Bottleneck", &state)
}

async fn render(state: &AppState, q: HashMap<String, String>) -> Result<Markup, AppError> {
    let params = Params::new(q, KNOWN)?;
    let p = |k: &str| params.get(k);
    let since = p("since").unwrap_or("1h");
    let range = parse_range(Some(since), None, None, now_ms())?;
    if range.span_ms() > crate::report::duration_ms(state.config.storage.retention) {
        return Err(AppError::BadRequest("since: traces are kept for storage.retention".into()));
    }
    let percentile = match p("percentile") {
        None => 95.0,
        Some(s) => s.parse::<f64>().ok().filter(|v| *v > 0.0 && *v <= 100.0).ok_or_else(|| AppError::BadRequest(format!("percentile: expected a number in (0, 100], got {s:?}")))?,
    };
    let query = BottleneckQuery {
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        workflow: p("workflow").map(str::to_string),
        env: p("env").map(str::to_string),
        account: None,
        region: None,
        percentile,
    };
    let (report, slowest) = run_bounded(state, move |store| async move {
        let report = bottleneck::report(&store, &query).await?;
        let mut slowest = HashMap::new();
        for w in &report.workflows {
            if let Some(id) = w.trace_ids.first() {
                if let Some((_, _, total, path)) = store.trace_attribution(id).await? {
                    let shares = match path {
                        StoredPath::Apart { shape, self_us } => decode_path(&shape, &self_us),
                        StoredPath::Whole(text) => decode_shares(&text),
                    };
                    if let Some(s) = shares {
                        slowest.insert(w.root.clone(), (id.clone(), total, s));
                    }
                }
            }
        }
        Ok((report, slowest))
    })
    .await?;
    let env = p("env");
    Ok(layout::page("Bottleneck", "/ui/bottleneck", state, html! {
        h1 { "Where the slow workflows' time goes" }
        form.filters method="get" action="/ui/bottleneck" {
            label for="since" { "Range" }
            select #since name="since" { @for r in ["15m", "1h", "6h", "24h"] { option value=(r) selected[r == since] { (r) } } }
            label for="env" { "Env" } input #env name="env" value=(env.unwrap_or("")) placeholder="all";
            label for="percentile" { "Slowest above percentile" } input #percentile name="percentile" inputmode="decimal" value=(percentile);
            button type="submit" { "Show" }
        }
        @if report.workflows.is_empty() { p { "No traces in this range" @if env.is_some() { " for this env" } "." } }
        @for w in &report.workflows {
            section.workflow data-workflow=(w.root) aria-labelledby=(format!("wf-{}", w.root)) {
                h2 id=(format!("wf-{}", w.root)) { (w.root) }
                p {
                    (w.traces) " traces at or above p" (percentile) " (" (secs(w.threshold_s)) ") of " (w.traces_in_range)
                    ", averaging " (secs(w.avg_total_s)) "."
                    @if let Some(b) = &w.bottleneck {
                        " Bottleneck: " strong.bottleneck data-operation=(b.operation) { (b.function) " · " (b.operation) }
                        " (" (format!("{:.0}", b.share * 100.0)) "% of the time, " (secs(b.self_s)) ")."
                    }
                }
                (svg::waterfall(&workflow_bars(w), w.avg_total_s, &format!("Critical path of {} averaged over its slowest traces", w.root)))
                @if let Some((id, total, path)) = slowest.get(&w.root) {
                    details {
                        summary { "The slowest trace, " code { (id) } ", " (secs(*total)) }
                        (svg::waterfall(&trace_bars(path), *total, &format!("Critical path of trace {id}")))
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_traces_bottleneck_is_its_longest_own_time() {
        let n = |f: &str, o: &str, depth: usize, self_s: f64, gap: bool| PathShare { function: f.into(), operation: o.into(), self_s, gap, depth, path: vec![] };
        let path = [n("Atlas", "Atlas", 0, 0.1, false), n("GDSH", "Lambda", 1, 0.2, false), n("GDSH", "gap", 2, 9.9, true), n("GDSH", "Bedrock.InvokeModel", 2, 9.0, false)];
        let bars = trace_bars(&path);
        assert_eq!(bars.iter().filter(|b| b.bottleneck).map(|b| b.label.as_str()).collect::<Vec<_>>(), ["GDSH · Bedrock.InvokeModel"]);
        assert_eq!(bars[0].label, "Atlas");
    }
}
