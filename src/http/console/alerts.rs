//! The alerts' history (`/ui/alerts?since=7d`): every transition (pending, firing,
//! resolved, cleared) newest first, with the value and budget at that moment.

use super::super::{AppError, AppState, run_bounded};
use super::super::reports::Params;
use super::layout::{self, operation_url, secs, utc};
use super::respond;
use crate::clock::now_ms;
use crate::report::parse_duration;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use std::collections::HashMap;

/// Most transitions a page shows.
const LIMIT: i64 = 500;

pub async fn page(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    respond(render(&state, q).await, "Alerts", &state)
}

async fn render(state: &AppState, q: HashMap<String, String>) -> Result<Markup, AppError> {
    let p = Params::new(q, &["since"])?;
    let since = p.get("since").unwrap_or("7d");
    let span = parse_duration("since", since)?;
    let reach = state.config.storage.rollup_retention;
    if span > reach {
        return Err(AppError::BadRequest(format!("since: transitions are kept {}", humantime::format_duration(reach))));
    }
    let from = now_ms() - span.as_millis() as i64;
    let rows = run_bounded(state, move |store| async move { Ok(store.alert_transitions(from, LIMIT).await?) }).await?;
    Ok(layout::page("Alerts", "/ui/alerts", state, html! {
        h1 { "Alert history" }
        nav.ranges aria-label="Range" {
            @for r in ["24h", "7d", "30d", "90d"] {
                @if r == since { a href=(format!("/ui/alerts?since={r}")) aria-current="true" { (r) } } @else { a href=(format!("/ui/alerts?since={r}")) { (r) } }
            }
        }
        div.scroll { table.alerts {
            caption { "Transitions in the last " (since) ", newest first (at most " (LIMIT) ")" }
            thead { tr {
                th scope="col" { "Time" } th scope="col" { "Transition" } th scope="col" { "Env" }
                th scope="col" { "Function / operation" } th scope="col" { "Value" } th scope="col" { "Budget" } th scope="col" { "Samples" } th scope="col" { "Severity" }
            } }
            tbody {
                @for t in &rows {
                    tr data-transition=(t.transition) {
                        td { (utc(t.time_ms)) }
                        td { span class=(format!("status {}", t.transition)) { (t.transition) } }
                        td { (t.env) @if t.account != crate::model::DEFAULT_ACCOUNT { br; small { (t.account) " " (t.region) } } }
                        td { a href=(operation_url(&t.function, &t.operation)) { (t.function) " / " (t.operation) } }
                        td.num { (t.value_s.map(secs).unwrap_or_else(|| "–".into())) }
                        td.num { "p" (format!("{:.0}", t.quantile * 100.0)) " " (secs(t.budget_s)) }
                        td.num { (t.samples) }
                        td { (t.severity) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="8" { "No alert changed state in this range." } } }
            }
        } }
    }))
}
