//! `/api/v1` reports as JSON (the shapes `report … --format json` prints, documented in the
//! README's "Reports" section):
//!
//! - `GET /compare?baseline=PROD&candidate=Dev&since=7d` (or `baseline_range=14d..7d&
//!   candidate_range=7d..&env=PROD`; `function=` narrows);
//! - `GET /bottleneck?since=1h&workflow=AtlasEngineWorkflow&percentile=95&env=Dev`;
//! - `GET /operations/{function}/{operation}/history?since=30d&step=1h&env=Dev`.
//!
//! Every parameter is checked (an unknown one too) and a bad one is a 400 naming it. Work is
//! bounded: ranges reach back at most `storage.rollup_retention` (or raw retention if
//! longer), a history has at most 2000 points, a bottleneck reads at most 1000 traces per
//! workflow, and ranges over 24 h are answered from rollups.

use super::{AppError, AppState, run_bounded};
use crate::report::{ReportError, TimeRange, bottleneck, compare, duration_ms, history, parse_duration, parse_range};
use crate::clock::now_ms;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/compare", get(compare_handler))
        .route("/bottleneck", get(bottleneck_handler))
        .route("/operations/{function}/{operation}/history", get(history_handler))
}

impl From<ReportError> for AppError {
    fn from(e: ReportError) -> AppError {
        match e {
            ReportError::BadInput(msg) => AppError::BadRequest(msg),
            ReportError::Store(e) => e.into(),
        }
    }
}

/// Query parameters, checked against the names a handler knows (the API's and the console's).
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn new(q: HashMap<String, String>, known: &[&str]) -> Result<Params, AppError> {
        if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(AppError::BadRequest(format!("unknown parameter {k:?} (known: {})", known.join(", "))));
        }
        Ok(Params(q))
    }

    /// A parameter given non-empty, owned.
    fn owned(&self, k: &str) -> Option<String> {
        self.get(k).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A parameter given non-empty.
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The range of `since` (default `default_since`) or `from`/`to`, capped in length.
    fn range(&self, state: &AppState, default_since: &str, now: i64) -> Result<TimeRange, AppError> {
        let since = self.get("since").or(self.get("from").is_none().then_some(default_since));
        let range = parse_range(since, self.get("from"), self.get("to"), now)?;
        check_reach(state, range, now, "since")?;
        Ok(range)
    }
}

/// How far back a request may reach.
fn max_reach_ms(state: &AppState) -> i64 {
    let s = &state.config.storage;
    duration_ms(s.rollup_retention.max(s.retention))
}

fn check_reach(state: &AppState, r: TimeRange, now: i64, what: &str) -> Result<(), AppError> {
    let max = max_reach_ms(state);
    let slack = max.saturating_add(3_600_000);
    if r.from_ms < now.saturating_sub(slack) || r.span_ms() > slack {
        return Err(AppError::BadRequest(format!(
            "{what}: reaches back further than the {} kept (storage.rollup_retention)",
            humantime::format_duration(std::time::Duration::from_millis(max as u64))
        )));
    }
    Ok(())
}

async fn compare_handler(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<compare::CompareReport>, AppError> {
    let p = Params::new(q, &["baseline", "candidate", "since", "from", "to", "env", "function", "account", "region", "baseline_range", "candidate_range", "group"])?;
    let now = now_ms();
    let range = p.range(&state, "7d", now)?;
    let mut query = compare::build_query(
        p.get("baseline"),
        p.get("candidate"),
        p.get("env"),
        p.get("baseline_range"),
        p.get("candidate_range"),
        range,
        p.get("function"),
        now,
    )?;
    (query.account, query.region) = (p.owned("account"), p.owned("region"));
    query.group = match p.get("group") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(AppError::BadRequest(format!("group: expected true or false, got {other:?}"))),
    };
    query.operations = state.config.operations.clone();
    for (side, what) in [(&query.baseline, "baseline_range"), (&query.candidate, "candidate_range")] {
        check_reach(&state, TimeRange { from_ms: side.from_ms, to_ms: side.to_ms }, now, what)?;
    }
    Ok(Json(run_bounded(&state, move |store| async move { Ok(compare::report(&store, &query).await?) }).await?))
}

async fn bottleneck_handler(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<bottleneck::BottleneckReport>, AppError> {
    let p = Params::new(q, &["since", "from", "to", "workflow", "env", "account", "region", "percentile"])?;
    let range = p.range(&state, "1h", now_ms())?;
    let percentile = match p.get("percentile") {
        None => 95.0,
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0 && *v <= 100.0)
            .ok_or_else(|| AppError::BadRequest(format!("percentile: expected a number in (0, 100], got {s:?}")))?,
    };
    let query = bottleneck::BottleneckQuery {
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        workflow: p.get("workflow").map(str::to_string),
        env: p.get("env").map(str::to_string),
        account: p.owned("account"),
        region: p.owned("region"),
        percentile,
    };
    Ok(Json(run_bounded(&state, move |store| async move { Ok(bottleneck::report(&store, &query).await?) }).await?))
}

async fn history_handler(
    State(state): State<AppState>,
    Path((function, operation)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<history::History>, AppError> {
    let p = Params::new(q, &["since", "from", "to", "step", "env", "account", "region"])?;
    let range = p.range(&state, "24h", now_ms())?;
    let step = duration_ms(parse_duration("step", p.get("step").unwrap_or("1h"))?);
    let (env, account, region) = (p.owned("env"), p.owned("account"), p.owned("region"));
    let h = run_bounded(&state, move |store| async move {
        let only = history::Only { env: env.as_deref(), account: account.as_deref(), region: region.as_deref() };
        Ok(history::history(&store, &function, &operation, only, range, step).await?)
    })
    .await?;
    Ok(Json(h))
}
