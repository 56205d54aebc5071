//! Evaluation: rolling windows and quantiles per series, budget matching, judgement against
//! learned baselines, grouping alerts by cause, and the alert state machine. Pure decisions;
//! the evaluator task is a thin shell around them.

pub mod alert;
pub mod anomaly;
pub mod budgets;
pub mod group;
pub mod links;
pub mod window;

pub mod run;

use std::sync::Arc;
use tokio::sync::watch;

/// The evaluator's latest results, shared read-only with the HTTP API and the sinks.
#[derive(Clone)]
pub struct Shared {
    tx: Arc<watch::Sender<Arc<Vec<BudgetStatus>>>>,
    anomalies: Arc<watch::Sender<Arc<Vec<AnomalyStatus>>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { tx: Arc::new(watch::channel(Arc::new(Vec::new())).0), anomalies: Arc::new(watch::channel(Arc::new(Vec::new())).0) }
    }
}

impl Shared {
    pub fn set_anomalies(&self, anomalies: Arc<Vec<AnomalyStatus>>) {
        self.anomalies.send_replace(anomalies);
    }

    /// Every series' judgement against its learned baseline at the last evaluation (empty
    /// when `[anomaly]` is off).
    pub fn anomalies(&self) -> Arc<Vec<AnomalyStatus>> {
        self.anomalies.borrow().clone()
    }

    pub fn set(&self, statuses: Vec<BudgetStatus>) {
        self.tx.send_replace(Arc::new(statuses));
    }

    /// The budget statuses of the last evaluation.
    pub fn statuses(&self) -> Arc<Vec<BudgetStatus>> {
        self.tx.borrow().clone()
    }

    /// A receiver that sees every new evaluation (for sinks such as the CloudWatch publisher).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<BudgetStatus>>> {
        self.tx.subscribe()
    }
}

/// The judged state of one (budget, env, function, operation), published by the evaluator
/// after every evaluation (a `tokio::sync::watch` channel of `Arc<Vec<BudgetStatus>>`);
/// sinks such as the CloudWatch publisher read it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetStatus {
    /// The budget's display name.
    pub budget: String,
    /// The account's name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region (empty without `[[accounts]]`).
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    /// 0.5, 0.9, 0.95 or 0.99.
    pub quantile: f64,
    /// The budget, in seconds.
    pub budget_s: f64,
    /// The window's quantile, when the window has events.
    pub observed_s: Option<f64>,
    /// Events in the budget's window.
    pub samples: u64,
    /// Over budget with at least `min_samples` events.
    pub breached: bool,
    /// Inactive, pending or firing.
    pub state: crate::model::alert::AlertState,
    /// The budget's `severity` label.
    pub severity: String,
}

/// One series judged against its own past (`[anomaly]`), at the last evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnomalyStatus {
    /// The account's name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region (empty without `[[accounts]]`).
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    /// p95 of the recent window (None: no event in it).
    pub recent_p95_s: Option<f64>,
    /// p95 of the baseline (None: no baseline yet).
    pub baseline_p95_s: Option<f64>,
    pub ratio: Option<f64>,
    /// One-sided Mann–Whitney p (1 when not tested: cold, or under the ratio).
    pub p_value: f64,
    pub recent_samples: u64,
    pub baseline_samples: u64,
    /// The baseline's span (epoch ms), when it has one.
    pub baseline_from_ms: Option<i64>,
    pub baseline_to_ms: Option<i64>,
    /// `hour_of_week` (the same hours of past weeks) or `trailing`.
    pub baseline_kind: &'static str,
    /// `cold` (too few events on a side), `normal` or `regression`.
    pub verdict: &'static str,
    /// Inactive, pending or firing.
    pub state: crate::model::alert::AlertState,
    /// The cause it belongs to (itself unless linked).
    pub cause: String,
    /// The operation whose alert explains this function-level one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
}

/// What one evaluation hands the metrics exposition (the Prometheus sink).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Durations stored since the last evaluation, per series (for the histogram).
    pub observed: Vec<(window::SeriesKey, Vec<f64>)>,
    /// Every series the windows hold, with its `metrics.quantile_window` (None: no event in it).
    pub windows: Vec<(window::SeriesKey, Option<WindowSummary>)>,
    /// The judged budgets.
    pub statuses: Arc<Vec<BudgetStatus>>,
    /// Every series judged against its learned baseline.
    pub anomalies: Arc<Vec<AnomalyStatus>>,
}

/// One series' window over `metrics.quantile_window`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSummary {
    pub stats: window::WindowStats,
    pub sum: f64,
}

/// Where the evaluator hands each evaluation's results for exposition; called once per
/// evaluation, off the async threads.
pub trait Publish: Send + Sync {
    fn publish(&self, snapshot: &Snapshot);
}
