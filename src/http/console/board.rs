//! The board (`/`): every (env, function, operation) seen in the last hour with its p95
//! against its budget, its status (firing, pending, over, ok, few samples, no budget) and a
//! sparkline of p95 over the last six hours; firing and pending alerts on top with since
//! when; the collector's health in one line. Filtered by env and function, sorted by the
//! column asked for, all in the URL.

use super::super::{AppError, AppState, run_bounded};
use super::super::reports::Params;
use super::layout::{self, ago, enc, operation_url, secs};
use super::{health, respond, svg};
use crate::clock::now_ms;
use crate::evaluate::BudgetStatus;
use crate::evaluate::budgets::match_budget;
use crate::model::alert::{AlertState, Phase, Target, alert_key};
use crate::report::data::{Agg, Selection, SeriesKey, load};
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// The window the board's p95 is over.
const WINDOW_MS: i64 = 3_600_000;
/// The sparklines' span and step.
const SPARK_MS: i64 = 6 * 3_600_000;
const SPARK_STEP_MS: i64 = 5 * 60_000;

/// One series of the board (every source of it merged).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub account: String,
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub count: u64,
    pub p95: f64,
    /// (quantile, threshold s) of the budget that judges it.
    pub budget: Option<(f64, f64)>,
    /// The budget's quantile over the window (None without a budget).
    pub observed: Option<f64>,
    pub status: Status,
    /// p95 per step over the last six hours: (step start s, p95 s).
    pub spark: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Firing,
    Pending,
    Over,
    Few,
    Ok,
    NoBudget,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Pending => "pending",
            Status::Over => "over",
            Status::Few => "few samples",
            Status::Ok => "ok",
            Status::NoBudget => "no budget",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Status::Few => "few",
            Status::NoBudget => "none",
            s => s.as_str(),
        }
    }
}

type Key = (String, String, String, String, String);

fn key_of(k: &SeriesKey) -> Key {
    (k.account.clone(), k.region.clone(), k.env.clone(), k.function.clone(), k.operation.clone())
}

/// The board's rows from the last hour's groups, the sparklines' groups, the evaluator's
/// statuses and the budgets (pure: the page is this over what the store returned).
pub fn rows(
    window: BTreeMap<SeriesKey, Agg>,
    spark: BTreeMap<SeriesKey, Agg>,
    statuses: &[BudgetStatus],
    budgets: &[crate::config::BudgetConfig],
) -> Vec<Row> {
    let mut merged: BTreeMap<Key, Agg> = BTreeMap::new();
    for (k, a) in window {
        merged.entry(key_of(&k)).or_default().merge(a);
    }
    let mut steps: BTreeMap<Key, BTreeMap<i64, Agg>> = BTreeMap::new();
    for (k, a) in spark {
        steps.entry(key_of(&k)).or_default().entry(k.bucket_ms).or_default().merge(a);
    }
    let judged: HashMap<Key, &BudgetStatus> = statuses
        .iter()
        .map(|s| ((s.account.clone(), s.region.clone(), s.env.clone(), s.function.clone(), s.operation.clone()), s))
        .collect();
    merged
        .into_iter()
        .map(|(key, mut agg)| {
            let (account, region, env, function, operation) = key.clone();
            let target = Target { account: account.clone(), region: region.clone(), env: env.clone(), function: function.clone(), operation: operation.clone() };
            let budget = match_budget(budgets, &target).and_then(|(_, b)| b.threshold().map(|(q, d)| (q, d.as_secs_f64(), b.min_samples)));
            let p95 = agg.quantiles(&[0.95])[0];
            let observed = budget.map(|(q, _, _)| agg.quantiles(&[q])[0]);
            let status = match (budget, judged.get(&key).map(|s| s.state)) {
                (None, _) => Status::NoBudget,
                (Some(_), Some(AlertState::Firing)) => Status::Firing,
                (Some(_), Some(AlertState::Pending)) => Status::Pending,
                (Some((_, _, min)), _) if agg.counts.count < min => Status::Few,
                (Some((_, t, _)), _) if observed.is_some_and(|o| o > t) => Status::Over,
                _ => Status::Ok,
            };
            let spark = steps
                .remove(&key)
                .unwrap_or_default()
                .into_iter()
                .map(|(t, mut a)| (t as f64 / 1000.0, a.quantiles(&[0.95])[0]))
                .collect();
            Row { account, region, env, function, operation, count: agg.counts.count, p95, budget: budget.map(|(q, t, _)| (q, t)), observed, status, spark }
        })
        .collect()
}

/// How the board is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Status,
    P95,
    Ratio,
    Name,
    Count,
}

impl Sort {
    fn parse(s: Option<&str>) -> Result<Sort, AppError> {
        Ok(match s.unwrap_or("status") {
            "status" => Sort::Status,
            "p95" => Sort::P95,
            "ratio" => Sort::Ratio,
            "name" => Sort::Name,
            "count" => Sort::Count,
            other => return Err(AppError::BadRequest(format!("sort: expected status, p95, ratio, name or count, got {other:?}"))),
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Sort::Status => "status",
            Sort::P95 => "p95",
            Sort::Ratio => "ratio",
            Sort::Name => "name",
            Sort::Count => "count",
        }
    }
}

fn ratio(r: &Row) -> f64 {
    match (r.observed, r.budget) {
        (Some(o), Some((_, t))) if t > 0.0 => o / t,
        _ => 0.0,
    }
}

/// Sorts rows: worst first for status, slowest first for p95, most over budget first for
/// ratio, busiest first for count, alphabetical for name.
pub fn sort(rows: &mut [Row], by: Sort) {
    let name = |r: &Row| (r.function.clone(), r.operation.clone(), r.env.clone(), r.account.clone(), r.region.clone());
    match by {
        Sort::Status => rows.sort_by(|a, b| a.status.cmp(&b.status).then(ratio(b).total_cmp(&ratio(a))).then(b.p95.total_cmp(&a.p95))),
        Sort::P95 => rows.sort_by(|a, b| b.p95.total_cmp(&a.p95)),
        Sort::Ratio => rows.sort_by(|a, b| ratio(b).total_cmp(&ratio(a))),
        Sort::Count => rows.sort_by(|a, b| b.count.cmp(&a.count)),
        Sort::Name => rows.sort_by_key(name),
    }
}

/// A firing or pending alert for the banner, with since when.
struct Active {
    status: &'static str,
    since_ms: i64,
    target: Target,
    /// What judged it: "p95 9.1s over 5s" or "p95 9.1s, 2.9× its baseline of 3.1s".
    what: String,
}

pub async fn page(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    respond(render(&state, q).await, "Board", &state)
}

async fn render(state: &AppState, q: HashMap<String, String>) -> Result<Markup, AppError> {
    let p = Params::new(q, &["env", "function", "sort"])?;
    let by = Sort::parse(p.get("sort"))?;
    let (env, function) = (p.get("env").map(str::to_string), p.get("function").map(str::to_string));
    let now = now_ms();
    let (window, spark, phases) = {
        let (env, function) = (env.clone(), function.clone());
        run_bounded(state, move |store| async move {
            let sel = |from_ms, step_ms| Selection { from_ms, to_ms: now, env: env.clone(), function: function.clone(), step_ms, ..Selection::default() };
            let window = load(&store, &sel(now - WINDOW_MS, None)).await?.groups;
            let spark = load(&store, &sel(now - SPARK_MS, Some(SPARK_STEP_MS))).await?.groups;
            let phases = store.alert_phases().await?.0;
            Ok((window, spark, phases))
        })
        .await?
    };
    let statuses = state.evaluation.statuses();
    let mut rows = rows(window, spark, &statuses, &state.config.budgets);
    sort(&mut rows, by);
    let phases: HashMap<String, Phase> = phases.into_iter().collect();
    // Since when an alert is active, from its stored phase (now when none is stored yet).
    let since = |key: String| match phases.get(&key) {
        Some(Phase::Firing { fired_at, .. }) => *fired_at,
        Some(Phase::Pending { active_at }) => *active_at,
        _ => now,
    };
    let mut active: Vec<Active> = statuses
        .iter()
        .filter(|s| s.state != AlertState::Inactive)
        .filter(|s| env.as_ref().is_none_or(|e| *e == s.env) && function.as_ref().is_none_or(|f| *f == s.function))
        .map(|s| {
            let target = Target { account: s.account.clone(), region: s.region.clone(), env: s.env.clone(), function: s.function.clone(), operation: s.operation.clone() };
            let since_ms = since(alert_key(&s.budget, &target));
            let what = format!("p{:.0} {} over {}", s.quantile * 100.0, s.observed_s.map(secs).unwrap_or_else(|| "–".into()), secs(s.budget_s));
            Active { status: s.state.as_str(), since_ms, target, what }
        })
        .collect();
    // Regressions against learned baselines ([anomaly]) as the evaluator last judged them,
    // one per cause (its most advanced name), those a cause explains left out.
    let anomalies = state.evaluation.anomalies();
    let mut causes: std::collections::BTreeMap<Target, &crate::evaluate::AnomalyStatus> = std::collections::BTreeMap::new();
    for a in anomalies.iter().filter(|a| a.state != AlertState::Inactive && a.explained_by.is_none()) {
        let cause = Target { account: a.account.clone(), region: a.region.clone(), env: a.env.clone(), function: a.function.clone(), operation: a.cause.clone() };
        let e = causes.entry(cause).or_insert(a);
        if a.state > e.state {
            *e = a;
        }
    }
    active.extend(
        causes
            .into_iter()
            .filter(|(t, _)| env.as_ref().is_none_or(|e| *e == t.env) && function.as_ref().is_none_or(|f| *f == t.function))
            .map(|(cause, a)| {
                let target = Target { operation: a.operation.clone(), ..cause.clone() };
                let since_ms = since(alert_key(crate::model::alert::REGRESSION_ALERT_NAME, &target));
                let what = format!(
                    "p95 {}, {:.1}× its baseline of {}",
                    a.recent_p95_s.map(secs).unwrap_or_else(|| "–".into()),
                    a.ratio.unwrap_or(0.0),
                    a.baseline_p95_s.map(secs).unwrap_or_else(|| "–".into())
                );
                Active { status: a.state.as_str(), since_ms, target: cause, what }
            }),
    );
    active.sort_by_key(|a| (a.status != "firing", a.since_ms));
    let collector = health::summary(state, now);
    let envs: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.env.as_str()).collect();
    let show_origin = rows.iter().any(|r| r.account != crate::model::DEFAULT_ACCOUNT);
    let link = |sort: Sort| {
        let mut parts = vec![format!("sort={}", sort.as_str())];
        if let Some(e) = &env {
            parts.push(format!("env={}", enc(e)));
        }
        if let Some(f) = &function {
            parts.push(format!("function={}", enc(f)));
        }
        format!("/?{}", parts.join("&"))
    };
    let th = |label: &str, s: Sort| {
        html! {
            th scope="col" aria-sort=(if by == s { "descending" } else { "none" }) { a href=(link(s)) { (label) } }
        }
    };
    let main = html! {
        h1 { "Budget board" }
        p.collector { (health::line(&collector)) " · " a href="/ui/health" { "health" } }
        @if !active.is_empty() {
            section.alerts aria-label="Active alerts" {
                h2 { "Active alerts" }
                ul {
                    @for a in &active {
                        li class=(a.status) {
                            strong { (a.status.to_uppercase()) } " "
                            a href=(operation_url(&a.target.function, &a.target.operation)) { (a.target.function) " / " (a.target.operation) }
                            " in " (a.target.env)
                            @if a.target.account != crate::model::DEFAULT_ACCOUNT { " (" (a.target.account) " " (a.target.region) ")" }
                            ": " (a.what) ", since " (ago(a.since_ms, now)) " ago"
                        }
                    }
                }
            }
        }
        form.filters method="get" action="/" {
            label for="env" { "Env" }
            select #env name="env" {
                option value="" { "all" }
                @for e in &envs {
                    option value=(e) selected[env.as_deref() == Some(*e)] { (e) }
                }
            }
            label for="function" { "Function" }
            input #function name="function" value=(function.clone().unwrap_or_default()) placeholder="all";
            input type="hidden" name="sort" value=(by.as_str());
            button type="submit" { "Filter" }
        }
        div.scroll {
            table.board {
                caption { "p95 over the last hour against each budget; sparkline: p95 per 5 minutes over 6 hours" }
                thead {
                    tr {
                        (th("Status", Sort::Status))
                        th scope="col" { "Env" }
                        (th("Function / operation", Sort::Name))
                        (th("p95", Sort::P95))
                        (th("vs budget", Sort::Ratio))
                        th scope="col" { "Last 6 h" }
                        (th("Events", Sort::Count))
                    }
                }
                tbody {
                    @for r in &rows {
                        tr data-env=(r.env) data-function=(r.function) data-operation=(r.operation) data-status=(r.status.class()) {
                            td { span class=(format!("status {}", r.status.class())) { (r.status.as_str()) } }
                            td { (r.env) @if show_origin { br; small { (r.account) " " (r.region) } } }
                            td { a href=(operation_url(&r.function, &r.operation)) { (r.function) " / " (r.operation) } }
                            td.num { (secs(r.p95)) }
                            td {
                                @match (r.observed, r.budget) {
                                    (Some(o), Some((q, t))) => {
                                        (svg::bullet(o, Some(t), o > t, 120.0, 12.0, &format!("p{:.0} {} against a budget of {}", q * 100.0, secs(o), secs(t))))
                                        " " span.small { (secs(o)) " / " (secs(t)) }
                                    }
                                    _ => { span.small { "no budget" } }
                                }
                            }
                            td { (svg::sparkline(&r.spark, r.budget.map(|b| b.1), 120.0, 24.0, &format!("p95 of {} / {} in {} over 6 hours", r.function, r.operation, r.env))) }
                            td.num { (r.count) }
                        }
                    }
                    @if rows.is_empty() {
                        tr { td colspan="7" { "No events in the last hour" @if env.is_some() || function.is_some() { " for this filter" } "." } }
                    }
                }
            }
        }
    };
    Ok(layout::page("Board", "/", state, main))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BudgetConfig;
    use std::time::Duration;

    fn key(env: &str, op: &str, source: &str, bucket_ms: i64) -> SeriesKey {
        SeriesKey {
            account: "default".into(),
            region: String::new(),
            env: env.into(),
            function: "GDSH".into(),
            operation: op.into(),
            source: source.into(),
            bucket_ms,
        }
    }

    fn agg(values: &[f64]) -> Agg {
        let mut a = Agg::default();
        for v in values {
            a.push(*v, false, false, false);
        }
        a
    }

    #[test]
    fn rows_merge_sources_judge_budgets_and_sort_worst_first() {
        let budgets = vec![BudgetConfig { operation: "Bedrock*".into(), p95: Some(Duration::from_secs(5)), min_samples: 3, ..BudgetConfig::default() }];
        let window = BTreeMap::from([
            (key("Dev", "Bedrock.InvokeModel", "xray", 0), agg(&[9.0, 9.5, 10.0])),
            (key("Dev", "Bedrock.InvokeModel", "logs", 0), agg(&[9.2])),
            (key("PROD", "Bedrock.InvokeModel", "xray", 0), agg(&[2.0, 2.1, 2.2])),
            (key("PROD", "BedrockCall", "logs", 0), agg(&[9.0])),
            (key("PROD", "DynamoDB.PutItem", "xray", 0), agg(&[0.04])),
        ]);
        let spark = BTreeMap::from([(key("Dev", "Bedrock.InvokeModel", "xray", 900_000), agg(&[9.0])), (key("Dev", "Bedrock.InvokeModel", "xray", 0), agg(&[2.0]))]);
        let status = BudgetStatus {
            budget: "b".into(),
            account: "default".into(),
            region: String::new(),
            env: "Dev".into(),
            function: "GDSH".into(),
            operation: "Bedrock.InvokeModel".into(),
            quantile: 0.95,
            budget_s: 5.0,
            observed_s: Some(10.0),
            samples: 4,
            breached: true,
            state: AlertState::Firing,
            severity: "warning".into(),
        };
        let mut rows = rows(window, spark, &[status], &budgets);
        sort(&mut rows, Sort::Status);
        let got: Vec<(&str, &str, Status, u64)> = rows.iter().map(|r| (r.env.as_str(), r.operation.as_str(), r.status, r.count)).collect();
        assert_eq!(
            got,
            [
                ("Dev", "Bedrock.InvokeModel", Status::Firing, 4),
                ("PROD", "BedrockCall", Status::Few, 1),
                ("PROD", "Bedrock.InvokeModel", Status::Ok, 3),
                ("PROD", "DynamoDB.PutItem", Status::NoBudget, 1),
            ]
        );
        assert_eq!(rows[0].spark, [(0.0, 2.0), (900.0, 9.0)]);
        assert_eq!(rows[0].budget, Some((0.95, 5.0)));
        sort(&mut rows, Sort::P95);
        assert_eq!(rows[0].p95, 10.0);
        sort(&mut rows, Sort::Name);
        assert_eq!(rows[0].operation, "Bedrock.InvokeModel");
        assert!(Sort::parse(Some("nope")).is_err());
    }
}
