//! `/api/v1/*`: JSON answers from the store. Each handler validates its query parameters
//! (a 400 names the bad one) and bounds its work.

use crate::evaluate::budgets::match_budget;
use crate::evaluate::window::stats;
use crate::http::{AppError, AppState};
use crate::store::now_ms;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest range the live endpoints accept (reports over longer ranges use rollups).
const MAX_SINCE: Duration = Duration::from_secs(31 * 86_400);
/// Most raw events one request may read.
const MAX_ROWS: i64 = 2_000_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/operations", get(operations))
        .route("/alerts", get(alerts))
        .route("/budgets", get(budgets))
        .merge(crate::api_reports::routes())
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
}

/// Count, exact quantiles, max, error rate and budget of every series in the range.
async fn operations(State(state): State<AppState>, Query(q): Query<OperationsQuery>) -> Result<Json<serde_json::Value>, AppError> {
    let since = parse_since("since", q.since.as_deref(), Duration::from_secs(3600))?;
    let from = now_ms() - since.as_millis() as i64;
    let env = q.env.filter(|e| !e.is_empty());
    let function = q.function.filter(|f| !f.is_empty());
    let rows: Vec<(String, String, String, String, f64, bool)> = sqlx::query_as(
        "SELECT env, function, operation, source, duration_s, error FROM events WHERE time_ms >= ? \
         AND (? IS NULL OR env = ?) AND (? IS NULL OR function = ?) LIMIT ?",
    )
    .bind(from)
    .bind(&env)
    .bind(&env)
    .bind(&function)
    .bind(&function)
    .bind(MAX_ROWS + 1)
    .fetch_all(state.store.pool())
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    if rows.len() as i64 > MAX_ROWS {
        return Err(AppError::BadRequest(format!("more than {MAX_ROWS} events in range: narrow since, env or function")));
    }
    let mut series: BTreeMap<(String, String, String, String), (Vec<f64>, u64)> = BTreeMap::new();
    for (env, function, operation, source, d, e) in rows {
        let s = series.entry((env, function, operation, source)).or_default();
        s.0.push(d);
        s.1 += u64::from(e);
    }
    let mut out: Vec<serde_json::Value> = series
        .into_iter()
        .map(|((env, function, operation, source), (values, errors))| {
            let st = stats(values, errors);
            let budget = match_budget(&state.config.budgets, &env, &function, &operation)
                .and_then(|(_, b)| b.threshold().map(|(q, d)| json!({ "name": b.display_name(), "quantile": q, "seconds": d.as_secs_f64() })));
            json!({
                "env": env, "function": function, "operation": operation, "source": source,
                "count": st.count, "p50": st.p50, "p90": st.p90, "p95": st.p95, "p99": st.p99,
                "max": st.max, "error_rate": st.error_rate, "budget": budget,
            })
        })
        .collect();
    out.sort_by(|a, b| b["p95"].as_f64().unwrap_or(0.0).total_cmp(&a["p95"].as_f64().unwrap_or(0.0)));
    Ok(Json(json!({ "since": humantime::format_duration(since).to_string(), "operations": out })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    since: Option<String>,
}

/// Active alerts (from the last evaluation) and transitions since `since` (default 24h).
async fn alerts(State(state): State<AppState>, Query(q): Query<AlertsQuery>) -> Result<Json<serde_json::Value>, AppError> {
    let since = parse_since("since", q.since.as_deref(), Duration::from_secs(86_400))?;
    let transitions = state
        .store
        .alert_transitions(now_ms() - since.as_millis() as i64, 1000)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let active: Vec<_> = state.evaluation.statuses().iter().filter(|s| s.state != "inactive").cloned().collect();
    Ok(Json(json!({ "active": active, "transitions": transitions })))
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
                "status": if matches.iter().any(|s| s.state == "firing") { "firing" } else if matches.iter().any(|s| s.breached) { "breached" } else { "ok" },
                "matches": matches,
            })
        })
        .collect();
    Json(json!({ "budgets": out }))
}

/// The daemon's view of itself: version, events stored, sources.
async fn status(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let events = state.store.count_events(None).await.map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now_ms": now_ms(),
        "events_stored": events,
        "sources": state.health.snapshot(),
    })))
}
