//! The collector's health (`/ui/health`, and the board's one line): every source's
//! readiness, last success and error, the log groups' lag, AWS calls and throttles by API,
//! rejected inputs by reason, and in a fleet this node's leases. Read from readiness and
//! the daemon's own metrics: nothing here touches the store.

use super::super::AppState;
use super::layout::{self, ago};
use crate::clock::now_ms;
use crate::health::is_ready;
use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use std::collections::BTreeMap;

/// What the board's health line says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub sources: usize,
    pub ready: usize,
    /// The largest poll lag of any key, seconds.
    pub max_lag_s: Option<f64>,
    pub aws_calls: f64,
    pub throttled: f64,
}

/// One sample of a metric family: its labels and value.
type Sample = (BTreeMap<String, String>, f64);

/// The samples of metric `name` (counters and gauges) among the daemon's gathered families.
fn samples(families: &[prometheus::proto::MetricFamily], name: &str) -> Vec<Sample> {
    families
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            let counter = f.get_field_type() == prometheus::proto::MetricType::COUNTER;
            f.get_metric()
                .iter()
                .map(|m| {
                    let labels = m.get_label().iter().map(|l| (l.name().to_string(), l.value().to_string())).collect();
                    let value = if counter { m.get_counter().get_value() } else { m.get_gauge().get_value() };
                    (labels, value)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn summary(state: &AppState, now: i64) -> Summary {
    summary_of(state, &state.metrics.registry.gather(), now)
}

fn summary_of(state: &AppState, families: &[prometheus::proto::MetricFamily], now: i64) -> Summary {
    let sources = state.health.snapshot();
    let lag = samples(families, "sentinel_poll_lag_seconds");
    let calls = samples(families, "sentinel_aws_requests_total");
    Summary {
        sources: sources.len(),
        ready: sources.values().filter(|h| is_ready(h, now)).count(),
        max_lag_s: lag.iter().map(|s| s.1).reduce(f64::max),
        // `+ 0.0`: an empty float sum is −0, which would print as "-0".
        aws_calls: calls.iter().map(|s| s.1).sum::<f64>() + 0.0,
        throttled: calls.iter().filter(|s| s.0.get("outcome").is_some_and(|o| o == "throttled")).map(|s| s.1).sum::<f64>() + 0.0,
    }
}

/// `Collector: 3/3 sources ready · lag ≤ 42s · 1,204 AWS calls, 0 throttled`.
pub fn line(s: &Summary) -> String {
    let lag = s.max_lag_s.map(|l| format!(" · lag ≤ {}", layout::secs(l))).unwrap_or_default();
    format!("Collector: {}/{} sources ready{lag} · {:.0} AWS calls, {:.0} throttled", s.ready, s.sources, s.aws_calls, s.throttled)
}

pub async fn page(State(state): State<AppState>) -> Response {
    let now = now_ms();
    let main = render(&state, now);
    super::respond(Ok(layout::page("Health", "/ui/health", &state, main)), "Health", &state)
}

fn render(state: &AppState, now: i64) -> Markup {
    let families = state.metrics.registry.gather();
    let sources = state.health.snapshot();
    let lag = samples(&families, "sentinel_poll_lag_seconds");
    let mut calls: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (labels, v) in samples(&families, "sentinel_aws_requests_total") {
        let api = labels.get("api").cloned().unwrap_or_default();
        let outcome = labels.get("outcome").cloned().unwrap_or_default();
        *calls.entry(api).or_default().entry(outcome).or_default() += v;
    }
    let rejected = samples(&families, "sentinel_inputs_rejected_total");
    let held = state.work.held();
    html! {
        h1 { "Collector health" }
        p { (line(&summary_of(state, &families, now))) }
        section aria-labelledby="sources" {
            h2 #sources { "Sources" }
            div.scroll { table {
                thead { tr { th scope="col" { "Source" } th scope="col" { "Ready" } th scope="col" { "Last success" } th scope="col" { "Error" } th scope="col" { "Keys with problems" } } }
                tbody {
                    @for (name, h) in &sources {
                        @let ok = is_ready(h, now);
                        tr data-source=(name) {
                            td { (name) }
                            td { span class=(if ok { "status ok" } else { "status firing" }) { (if ok { "ready" } else { "not ready" }) } }
                            td { @if h.last_success_ms > 0 { (ago(h.last_success_ms, now)) " ago" } @else { "never" } }
                            td { (h.last_error.clone().unwrap_or_default()) }
                            td {
                                @for (k, v) in h.details.iter().chain(h.failing.iter()) { div { code { (k) } ": " (v) } }
                            }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="lag" {
            h2 #lag { "Poll lag" }
            p.small { "Now minus the newest stored event, per log group (and X-Ray)." }
            div.scroll { table {
                thead { tr { th scope="col" { "Source" } th scope="col" { "Key" } th scope="col" { "Account / region" } th scope="col" { "Lag" } } }
                tbody {
                    @for (labels, v) in &lag {
                        tr {
                            td { (labels.get("source").cloned().unwrap_or_default()) }
                            td { code { (labels.get("key").cloned().unwrap_or_default()) } }
                            td { (labels.get("account").cloned().unwrap_or_default()) " " (labels.get("region").cloned().unwrap_or_default()) }
                            td.num { (layout::secs(*v)) }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="aws" {
            h2 #aws { "AWS calls" }
            div.scroll { table {
                thead { tr { th scope="col" { "API" } th scope="col" { "ok" } th scope="col" { "throttled" } th scope="col" { "error" } } }
                tbody {
                    @for (api, by) in &calls {
                        tr {
                            td { (api) }
                            @for o in ["ok", "throttled", "error"] { td.num { (format!("{:.0}", by.get(o).copied().unwrap_or(0.0))) } }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="rejected" {
            h2 #rejected { "Rejected inputs" }
            @if rejected.is_empty() { p { "None since the daemon started." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Source" } th scope="col" { "Reason" } th scope="col" { "Count" } } }
                    tbody {
                        @for (labels, v) in &rejected {
                            tr { td { (labels.get("source").cloned().unwrap_or_default()) } td { (labels.get("reason").cloned().unwrap_or_default()) } td.num { (format!("{v:.0}")) } }
                        }
                    }
                } }
            }
        }
        @if let Some(node) = state.work.node() {
            section aria-labelledby="leases" {
                h2 #leases { "Leases of " (node) }
                ul { @for (unit, epoch) in &held { li { code { (unit) } " (epoch " (epoch) ")" } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_line_says_what_matters() {
        let s = super::Summary { sources: 3, ready: 2, max_lag_s: Some(42.0), aws_calls: 1204.0, throttled: 3.0 };
        assert_eq!(super::line(&s), "Collector: 2/3 sources ready · lag ≤ 42.00s · 1204 AWS calls, 3 throttled");
    }
}
