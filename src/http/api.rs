//! `/api/v1/*`: JSON answers from the store. Each handler validates its query parameters
//! (a 400 names the bad one) and runs its reads through [`run_bounded`]: on the read-only
//! connections, interrupted at `http.request_timeout`.

use super::{AppError, AppState, run_bounded};
use crate::model::alert::AlertState;
use crate::report::{duration_ms, top};
use crate::clock::now_ms;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Longest range the live endpoints accept (reports over longer ranges use rollups).
const MAX_SINCE: Duration = Duration::from_secs(31 * 86_400);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/operations", get(operations))
        .route("/alerts", get(alerts))
        .route("/budgets", get(budgets))
        .route("/anomalies", get(anomalies))
}

/// Parses a `since`-style duration parameter, bounded by `MAX_SINCE`.
pub fn parse_since(name: &str, value: Option<&str>, default: Duration) -> Result<Duration, AppError> {
    let Some(v) = value else { return Ok(default) };
    let d = humantime::parse_duration(v.trim())
        .map_err(|_| AppError::BadRequest(format!("{name}: expected a duration like \"1h\", got {v:?}")))?;
    if d.is_zero() || d > MAX_SINCE {
        return Err(AppError::BadRequest(format!("{name}: must be between 1ms and {}", humantime::format_duration(MAX_SINCE))));
    }
    Ok(d)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationsQuery {
    since: Option<String>,
    env: Option<String>,
    function: Option<String>,
    account: Option<String>,
    region: Option<String>,
}

/// Count, quantiles, max, error rate and budget of every series in the range: the `top`
/// report (exact over raw events; ranges over 24 h partly from rollups, `approximate`).
async fn operations(State(state): State<AppState>, Query(q): Query<OperationsQuery>) -> Result<Json<serde_json::Value>, AppError> {
    let since = parse_since("since", q.since.as_deref(), Duration::from_secs(3600))?;
    let now = now_ms();
    let filter = top::Filter {
        from_ms: now - duration_ms(since),
        to_ms: now + 1,
        env: q.env.filter(|e| !e.is_empty()),
        function: q.function.filter(|f| !f.is_empty()),
        account: q.account.filter(|a| !a.is_empty()),
        region: q.region.filter(|r| !r.is_empty()),
    };
    let config = state.config.clone();
    let (from_ms, to_ms) = (filter.from_ms, filter.to_ms);
    let (report, links) = run_bounded(&state, move |store| async move {
        let report = top::report(&store, &filter, &config.budgets).await?;
        let links = crate::evaluate::links::read(&store, &config.operations, from_ms, to_ms).await?;
        Ok((report, links))
    })
    .await?;
    let out: Vec<serde_json::Value> = report
        .operations
        .into_iter()
        .map(|r| {
            let budget = r.budget.map(|b| json!({ "name": b.name, "quantile": b.quantile, "seconds": b.threshold_s }));
            let mut row = json!({
                "env": r.env, "function": r.function, "operation": r.operation, "source": r.source,
                "count": r.count, "p50": r.p50, "p90": r.p90, "p95": r.p95, "p99": r.p99,
                "max": r.max, "error_rate": r.error_rate, "budget": budget, "status": r.status,
            });
            // As `report top`: account and region only when not the default origin's.
            if crate::model::shows_origin([(r.account.as_str(), r.region.as_str())]) {
                row["account"] = json!(r.account);
                row["region"] = json!(r.region);
            }
            row
        })
        .collect();
    Ok(Json(json!({
        "since": humantime::format_duration(since).to_string(),
        "approximate": report.approximate,
        "operations": out,
        // Operations that time the same call: configured, and learned from the range's
        // invocations (confirm a learned one with `[[operations]] also`).
        "links": links.all(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnomaliesQuery {
    env: Option<String>,
    function: Option<String>,
    /// `regression`, `normal` or `cold`.
    verdict: Option<String>,
}

/// Every series judged against its learned baseline at the last evaluation (`[anomaly]`),
/// regressions first.
async fn anomalies(State(state): State<AppState>, Query(q): Query<AnomaliesQuery>) -> Result<Json<serde_json::Value>, AppError> {
    if let Some(v) = q.verdict.as_deref().filter(|v| !["regression", "normal", "cold"].contains(v)) {
        return Err(AppError::BadRequest(format!("verdict: expected regression, normal or cold, got {v:?}")));
    }
    let keep = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w.is_empty() || w == have);
    let mut rows: Vec<_> = state
        .evaluation
        .anomalies()
        .iter()
        .filter(|a| keep(&q.env, &a.env) && keep(&q.function, &a.function) && keep(&q.verdict, a.verdict))
        .cloned()
        .collect();
    use crate::evaluate::anomaly::verdict_rank;
    rows.sort_by(|a, b| verdict_rank(a.verdict).cmp(&verdict_rank(b.verdict)).then(b.ratio.unwrap_or(0.0).total_cmp(&a.ratio.unwrap_or(0.0))));
    let a = &state.config.anomaly;
    Ok(Json(json!({
        "enabled": a.enabled,
        "window": humantime::format_duration(a.window).to_string(),
        "baseline": humantime::format_duration(a.baseline).to_string(),
        "seasonality": a.seasonality,
        "anomalies": rows,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    since: Option<String>,
}

/// Active alerts (from the last evaluation) and transitions since `since` (default 24h).
async fn alerts(State(state): State<AppState>, Query(q): Query<AlertsQuery>) -> Result<Json<serde_json::Value>, AppError> {
    let since = parse_since("since", q.since.as_deref(), Duration::from_secs(86_400))?;
    let from = now_ms() - duration_ms(since);
    let transitions = run_bounded(&state, move |store| async move { Ok(store.alert_transitions(from, 1000).await?) }).await?;
    let active: Vec<_> = state.evaluation.statuses().iter().filter(|s| s.state != AlertState::Inactive).cloned().collect();
    let regressions: Vec<_> = state.evaluation.anomalies().iter().filter(|a| a.state != AlertState::Inactive).cloned().collect();
    Ok(Json(json!({ "active": active, "regressions": regressions, "transitions": transitions })))
}

/// Every configured budget, what it currently matches, and each match's status.
async fn budgets(State(state): State<AppState>) -> Json<serde_json::Value> {
    let statuses = state.evaluation.statuses();
    let out: Vec<serde_json::Value> = state
        .config
        .budgets
        .iter()
        .map(|b| {
            let name = b.display_name();
            let (quantile, seconds) = b.threshold().map(|(q, d)| (q, d.as_secs_f64())).unwrap_or((0.95, 0.0));
            let matches: Vec<_> = statuses.iter().filter(|s| s.budget == name).collect();
            json!({
                "name": name, "function": b.function, "operation": b.operation, "env": b.env,
                "quantile": quantile, "seconds": seconds,
                "window": humantime::format_duration(b.window).to_string(),
                "for": humantime::format_duration(b.for_).to_string(),
                "keep_firing_for": humantime::format_duration(b.keep_firing_for).to_string(),
                "min_samples": b.min_samples, "severity": b.severity,
                "status": if matches.iter().any(|s| s.state == AlertState::Firing) { "firing" } else if matches.iter().any(|s| s.breached) { "breached" } else { "ok" },
                "matches": matches,
            })
        })
        .collect();
    Json(json!({ "budgets": out }))
}

/// The daemon's view of itself: version, events stored, sources.
async fn status(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let events = run_bounded(&state, |store| async move { Ok(store.count_events(None).await?) }).await?;
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now_ms": now_ms(),
        "events_stored": events,
        "sources": state.health.snapshot(),
    })))
}
