//! Evaluation: rolling windows and quantiles per series, budget matching, and the alert
//! state machine. Pure decisions; the evaluator task is a thin shell around them.

pub mod alert;
pub mod anomaly;
pub mod budgets;
pub mod window;

pub mod run;

use std::sync::Arc;
use tokio::sync::watch;

/// The evaluator's latest results, shared read-only with the HTTP API and the sinks.
#[derive(Clone)]
pub struct Shared {
    tx: Arc<watch::Sender<Arc<Vec<BudgetStatus>>>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { tx: Arc::new(watch::channel(Arc::new(Vec::new())).0) }
    }
}

impl Shared {
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

/// What one evaluation hands the metrics exposition (the Prometheus sink).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Durations stored since the last evaluation, per series (for the histogram).
    pub observed: Vec<(window::SeriesKey, Vec<f64>)>,
    /// Every series the windows hold, with its `metrics.quantile_window` (None: no event in it).
    pub windows: Vec<(window::SeriesKey, Option<WindowSummary>)>,
    /// The judged budgets.
    pub statuses: Arc<Vec<BudgetStatus>>,
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
