//! The Prometheus exposition of the evaluator's results: the per-series families
//! (`sentinel_operation_duration_seconds`, `sentinel_operation_latency_seconds` with its
//! window count and sum, `sentinel_budget_seconds`, `sentinel_alerts`). The evaluator hands
//! each evaluation's [`Snapshot`] to [`PrometheusSink::publish`], which updates its table
//! of series and renders their text once; a scrape sends that text as it is (the daemon's
//! own metrics are rendered per scrape by `metrics`). Series are capped at
//! `metrics.max_series`; events of series beyond it are counted in
//! `sentinel_series_dropped_total`.
//!
//! The table is written straight to text, in the order and form the `prometheus` crate's
//! registry and text encoder give (families by name, series by label values, a summary per
//! label set): at 10,000 series, building the crate's families and gathering them took most
//! of an evaluation's exposition time. A test holds the two outputs byte for byte equal.

use crate::evaluate::window::SeriesKey;
use crate::evaluate::{AnomalyStatus, BudgetStatus, Publish, Snapshot};
use crate::exposition::{family_head, line, push_label};
use crate::metrics::Metrics;
use crate::model::alert::{ALERT_NAME, AlertState, QUANTILES, REGRESSION_ALERT_NAME, quantile_label};
use prometheus::IntCounter;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Histogram buckets that resolve both a 30 ms DynamoDB call and a 9 s Bedrock call.
pub const OPERATION_BUCKETS: [f64; 26] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 9.0, 10.0, 12.5,
    15.0, 20.0, 30.0, 60.0,
];

const DURATION: (&str, &str) =
    ("sentinel_operation_duration_seconds", "Durations of timing events as they are stored, by env, function, operation and source.");
const EVENTS: (&str, &str) = ("sentinel_operation_events", "Events of each series in metrics.quantile_window.");
const LATENCY: (&str, &str) = (
    "sentinel_operation_latency_seconds",
    "Exact quantiles of each series over metrics.quantile_window (by event time); _count and _sum cover the same window.",
);
const BUDGET: (&str, &str) = ("sentinel_budget_seconds", "The latency budget that applies to each operation, at its quantile.");
const ALERTS: (&str, &str) = ("sentinel_alerts", "1 for every pending or firing alert (like Prometheus's ALERTS).");
const BASELINE: (&str, &str) = ("sentinel_baseline_seconds", "The learned baseline each operation is judged against ([anomaly]), at its quantile.");

/// The per-series table and its rendered text; cheap to clone.
#[derive(Clone)]
pub struct PrometheusSink {
    inner: Arc<Inner>,
}

struct Inner {
    max_series: usize,
    series_dropped: IntCounter,
    table: Mutex<BTreeMap<SeriesKey, Series>>,
    text: RwLock<bytes::Bytes>,
    render_len: AtomicUsize,
}

/// One exported series: its histogram since the daemon started, and its current window.
struct Series {
    /// `env="…",function="…",operation="…",source="…"`, escaped once.
    labels: String,
    /// Observations per bucket (not cumulative); past the last bucket only `count` grows.
    buckets: [u64; OPERATION_BUCKETS.len()],
    count: u64,
    sum: f64,
    /// Set while the evaluation's windows hold the series: (events, sum, quantiles when the
    /// window has an event).
    window: Option<(u64, f64, Option<[f64; QUANTILES.len()]>)>,
}

impl Series {
    fn new(key: &SeriesKey) -> Series {
        // In name order, as the text format's reference encoder writes them.
        let labels = label_text(
            &["account", "env", "function", "operation", "region", "source"],
            &[&key.account, &key.env, &key.function, &key.operation, &key.region, &key.source],
        );
        Series { labels, buckets: [0; OPERATION_BUCKETS.len()], count: 0, sum: 0.0, window: None }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = OPERATION_BUCKETS.iter().position(|b| v <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }
}

impl PrometheusSink {
    /// An empty table; `metrics` counts the series dropped over `max_series`.
    pub fn new(max_series: usize, metrics: &Metrics) -> PrometheusSink {
        let inner = Inner {
            max_series,
            series_dropped: metrics.series_dropped.clone(),
            table: Mutex::default(),
            text: RwLock::default(),
            render_len: AtomicUsize::new(0),
        };
        PrometheusSink { inner: Arc::new(inner) }
    }

    /// The per-series text as the last evaluation left it (empty before the first).
    pub fn text(&self) -> bytes::Bytes {
        self.inner.text.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Updates the table from one evaluation and renders its text.
    pub fn publish(&self, snapshot: &Snapshot) {
        let m = &*self.inner;
        let Ok(mut table) = m.table.lock() else { return };
        for (key, durations) in &snapshot.observed {
            if !table.contains_key(key) {
                if table.len() >= m.max_series {
                    m.series_dropped.inc_by(durations.len() as u64);
                    continue;
                }
                table.insert(key.clone(), Series::new(key));
            }
            if let Some(series) = table.get_mut(key) {
                for d in durations {
                    series.observe(*d);
                }
            }
        }
        // The window gauges say what this evaluation's windows hold, nothing older.
        for series in table.values_mut() {
            series.window = None;
        }
        for (key, window) in &snapshot.windows {
            if let Some(series) = table.get_mut(key) {
                series.window = Some(match window {
                    None => (0, 0.0, None),
                    Some(w) => (w.stats.count, w.sum, Some(QUANTILES.map(|(q, _)| w.stats.quantile(q)))),
                });
            }
        }
        let text = render(&table, &snapshot.statuses, &snapshot.anomalies, m.render_len.load(Ordering::Relaxed));
        drop(table);
        m.render_len.store(text.len(), Ordering::Relaxed);
        if let Ok(mut slot) = m.text.write() {
            *slot = bytes::Bytes::from(text);
        }
    }
}

impl Publish for PrometheusSink {
    fn publish(&self, snapshot: &Snapshot) {
        PrometheusSink::publish(self, snapshot)
    }
}

/// The whole per-series text: families in name order, as a registry gathers them.
fn render(table: &BTreeMap<SeriesKey, Series>, statuses: &[BudgetStatus], anomalies: &[AnomalyStatus], size_hint: usize) -> String {
    let mut out = String::with_capacity(size_hint + 4096);

    // Alerts and budgets: one summary per label set without the quantile (the last status
    // of a label set and quantile wins, as setting a gauge twice would).
    let mut alerts: BTreeMap<[&str; 8], BTreeMap<u64, f64>> = BTreeMap::new();
    let mut budgets: BTreeMap<[&str; 5], BTreeMap<u64, f64>> = BTreeMap::new();
    for s in statuses {
        let q = quantile_key(s.quantile);
        budgets.entry([&s.account, &s.env, &s.function, &s.operation, &s.region]).or_default().insert(q, s.budget_s);
        if s.state != AlertState::Inactive {
            alerts
                .entry([&s.account, ALERT_NAME, s.state.as_str(), &s.env, &s.function, &s.operation, &s.region, &s.severity])
                .or_default()
                .insert(q, 1.0);
        }
    }
    for a in anomalies {
        if a.state != AlertState::Inactive {
            alerts
                .entry([&a.account, REGRESSION_ALERT_NAME, a.state.as_str(), &a.env, &a.function, &a.operation, &a.region, "warning"])
                .or_default()
                .insert(quantile_key(0.95), 1.0);
        }
    }
    // A registry leaves out families without a series; so does this.
    if !alerts.is_empty() {
        family_head(&mut out, ALERTS.0, ALERTS.1, "summary");
    }
    for (values, quantiles) in &alerts {
        let labels = label_text(&["account", "alertname", "alertstate", "env", "function", "operation", "region", "severity"], values);
        summary(&mut out, ALERTS.0, &labels, quantiles, 1, None);
    }
    // Baselines: a summary per series with one, at p95 (like the budgets beside them).
    let mut baselines: BTreeMap<[&str; 5], BTreeMap<u64, f64>> = BTreeMap::new();
    for a in anomalies {
        if let Some(v) = a.baseline_p95_s {
            baselines.entry([&a.account, &a.env, &a.function, &a.operation, &a.region]).or_default().insert(quantile_key(0.95), v);
        }
    }
    if !baselines.is_empty() {
        family_head(&mut out, BASELINE.0, BASELINE.1, "summary");
    }
    for (values, quantiles) in &baselines {
        let labels = label_text(&["account", "env", "function", "operation", "region"], values);
        summary(&mut out, BASELINE.0, &labels, quantiles, 1, None);
    }
    if !budgets.is_empty() {
        family_head(&mut out, BUDGET.0, BUDGET.1, "summary");
    }
    for (values, quantiles) in &budgets {
        let labels = label_text(&["account", "env", "function", "operation", "region"], values);
        summary(&mut out, BUDGET.0, &labels, quantiles, 1, None);
    }

    if !table.is_empty() {
        family_head(&mut out, DURATION.0, DURATION.1, "histogram");
    }
    for s in table.values() {
        let mut cumulative = 0;
        for (bound, n) in OPERATION_BUCKETS.iter().zip(s.buckets) {
            cumulative += n;
            line(&mut out, DURATION.0, "_bucket", &s.labels, Some(("le", *bound)), cumulative as f64);
        }
        line(&mut out, DURATION.0, "_bucket", &s.labels, Some(("le", f64::INFINITY)), s.count as f64);
        line(&mut out, DURATION.0, "_sum", &s.labels, None, s.sum);
        line(&mut out, DURATION.0, "_count", &s.labels, None, s.count as f64);
    }

    if table.values().any(|s| s.window.is_some()) {
        family_head(&mut out, EVENTS.0, EVENTS.1, "gauge");
    }
    for s in table.values() {
        if let Some((count, _, _)) = s.window {
            line(&mut out, EVENTS.0, "", &s.labels, None, count as f64);
        }
    }

    if table.values().any(|s| matches!(s.window, Some((_, _, Some(_))))) {
        family_head(&mut out, LATENCY.0, LATENCY.1, "summary");
    }
    for s in table.values() {
        if let Some((count, sum, Some(values))) = s.window {
            for ((q, _), v) in QUANTILES.iter().zip(values) {
                line(&mut out, LATENCY.0, "", &s.labels, Some(("quantile", *q)), v);
            }
            line(&mut out, LATENCY.0, "_sum", &s.labels, None, sum);
            line(&mut out, LATENCY.0, "_count", &s.labels, None, count as f64);
        }
    }
    out
}

/// A quantile as an orderable key (quantiles are in [0, 1], so their bits order as they do).
fn quantile_key(q: f64) -> u64 {
    quantile_label(q).parse::<f64>().unwrap_or(q).to_bits()
}

fn label_text(names: &[&str], values: &[&str]) -> String {
    let mut labels = String::new();
    for (name, value) in names.iter().zip(values) {
        push_label(&mut labels, name, value);
    }
    labels
}

/// One summary: its quantile lines in order, `_sum` (the values' sum unless given), `_count`.
fn summary(out: &mut String, name: &str, labels: &str, quantiles: &BTreeMap<u64, f64>, count: u64, sum: Option<f64>) {
    for (q, v) in quantiles {
        line(out, name, "", labels, Some(("quantile", f64::from_bits(*q))), *v);
    }
    line(out, name, "_sum", labels, None, sum.unwrap_or_else(|| quantiles.values().sum()));
    line(out, name, "_count", labels, None, count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::WindowSummary;
    use crate::evaluate::window::stats;
    use crate::exposition::summary_family;
    use prometheus::{Encoder, GaugeVec, HistogramVec, Opts, Registry};

    fn key(env: &str, op: &str) -> SeriesKey {
        SeriesKey { account: "default".into(), region: String::new(), env: env.into(), function: "f".into(), operation: op.into(), source: "xray".into() }
    }

    fn window(values: Vec<f64>) -> Option<WindowSummary> {
        Some(WindowSummary { sum: values.iter().sum(), stats: stats(values, 0) })
    }

    fn status(env: &str, op: &str, quantile: f64, state: AlertState) -> BudgetStatus {
        BudgetStatus {
            budget: "b".into(),
            account: "default".into(),
            region: String::new(),
            env: env.into(),
            function: "f".into(),
            operation: op.into(),
            quantile,
            budget_s: 5.0 + quantile,
            observed_s: Some(9.25),
            samples: 3,
            breached: state != AlertState::Inactive,
            state,
            severity: "page".into(),
        }
    }

    /// The same families built with the `prometheus` crate and written by its text encoder:
    /// what the direct rendering must equal byte for byte.
    struct Reference {
        registry: Registry,
        duration: HistogramVec,
        events: GaugeVec,
        sums: GaugeVec,
        latency: GaugeVec,
        budgets: GaugeVec,
        alerts: GaugeVec,
        exported: std::collections::HashSet<SeriesKey>,
        max_series: usize,
    }

    impl Reference {
        fn new(max_series: usize) -> Reference {
            let registry = Registry::new();
            let labels = ["account", "env", "function", "operation", "region", "source"];
            let events = GaugeVec::new(Opts::new(EVENTS.0, EVENTS.1), &labels).unwrap();
            registry.register(Box::new(events.clone())).unwrap();
            let sums = GaugeVec::new(Opts::new("window_sum", "not exported"), &labels).unwrap();
            let duration =
                HistogramVec::new(prometheus::HistogramOpts::new(DURATION.0, DURATION.1).buckets(OPERATION_BUCKETS.to_vec()), &labels).unwrap();
            registry.register(Box::new(duration.clone())).unwrap();
            let with_q = ["account", "env", "function", "operation", "region", "source", "quantile"];
            let latency = summary_family(&registry, LATENCY.0, LATENCY.1, &with_q, Some(events.clone()), Some(sums.clone()));
            let budgets = summary_family(&registry, BUDGET.0, BUDGET.1, &["account", "env", "function", "operation", "region", "quantile"], None, None);
            let alert_labels = ["account", "alertname", "alertstate", "env", "function", "operation", "region", "quantile", "severity"];
            let alerts = summary_family(&registry, ALERTS.0, ALERTS.1, &alert_labels, None, None);
            Reference { registry, duration, events, sums, latency, budgets, alerts, exported: Default::default(), max_series }
        }

        fn publish(&mut self, snapshot: &Snapshot) -> String {
            for (key, durations) in &snapshot.observed {
                if self.exported.contains(key) || self.exported.len() < self.max_series {
                    let h = self.duration.with_label_values(&[&key.account, &key.env, &key.function, &key.operation, &key.region, &key.source]);
                    durations.iter().for_each(|d| h.observe(*d));
                    self.exported.insert(key.clone());
                }
            }
            for v in [&self.events, &self.sums, &self.latency, &self.budgets, &self.alerts] {
                v.reset();
            }
            for (key, w) in &snapshot.windows {
                if !self.exported.contains(key) {
                    continue;
                }
                let l = [key.account.as_str(), &key.env, &key.function, &key.operation, &key.region, &key.source];
                let (count, sum) = w.as_ref().map_or((0, 0.0), |w| (w.stats.count, w.sum));
                self.events.with_label_values(&l).set(count as f64);
                self.sums.with_label_values(&l).set(sum);
                if let Some(w) = w {
                    for (q, label) in QUANTILES {
                        self.latency.with_label_values(&[l[0], l[1], l[2], l[3], l[4], l[5], label]).set(w.stats.quantile(q));
                    }
                }
            }
            for s in snapshot.statuses.iter() {
                let q = quantile_label(s.quantile);
                self.budgets.with_label_values(&[&s.account, &s.env, &s.function, &s.operation, &s.region, q]).set(s.budget_s);
                if s.state != AlertState::Inactive {
                    self.alerts
                        .with_label_values(&[&s.account, ALERT_NAME, s.state.as_str(), &s.env, &s.function, &s.operation, &s.region, q, &s.severity])
                        .set(1.0);
                }
            }
            let mut text = Vec::new();
            prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut text).unwrap();
            String::from_utf8(text).unwrap()
        }
    }

    #[test]
    fn the_text_is_the_reference_encoders_through_a_series_life() {
        let metrics = Metrics::new();
        let sink = PrometheusSink::new(3, &metrics);
        let mut reference = Reference::new(3);
        assert!(sink.text().is_empty(), "nothing before the first evaluation");
        let odd = key("Dev \"quoted\" \\ new\nline", "Bedrock.InvokeModel");
        let evaluations = vec![
            Snapshot::default(),
            Snapshot {
                observed: vec![(key("Dev", "Bedrock.InvokeModel"), vec![9.2, 9.25, 9.0, 0.005, 61.0]), (key("PROD", "dynamodb"), vec![0.03])],
                windows: vec![(key("Dev", "Bedrock.InvokeModel"), window(vec![9.2, 9.25, 9.0])), (key("PROD", "dynamodb"), None)],
                statuses: Arc::new(vec![
                    status("Dev", "Bedrock.InvokeModel", 0.95, AlertState::Firing),
                    status("Dev", "Bedrock.InvokeModel", 0.99, AlertState::Firing),
                    status("PROD", "dynamodb", 0.5, AlertState::Pending),
                    status("PROD", "Bedrock.InvokeModel", 0.95, AlertState::Inactive),
                ]),
                anomalies: Arc::default(),
            },
            // A new series with awkward labels, one past the cap (dropped), one gone from the windows.
            Snapshot {
                observed: vec![(odd.clone(), vec![0.1, 0.2]), (key("Z", "over"), vec![1.0]), (key("Dev", "Bedrock.InvokeModel"), vec![0.75])],
                windows: vec![(odd.clone(), window(vec![0.1, 0.2])), (key("Dev", "Bedrock.InvokeModel"), window(vec![0.75, 9.0]))],
                statuses: Arc::new(vec![status("Dev", "Bedrock.InvokeModel", 0.95, AlertState::Inactive)]),
                anomalies: Arc::default(),
            },
            Snapshot { observed: vec![], windows: vec![], statuses: Arc::default(), anomalies: Arc::default() },
        ];
        for (i, snapshot) in evaluations.iter().enumerate() {
            sink.publish(snapshot);
            let want = reference.publish(snapshot);
            let got = String::from_utf8(sink.text().to_vec()).unwrap();
            assert_eq!(got, want, "evaluation {i}");
        }
        assert_eq!(metrics.series_dropped.get(), 1, "the series past max_series is counted");
        let text = String::from_utf8(sink.text().to_vec()).unwrap();
        assert!(!text.contains("sentinel_operation_events{"), "a series gone from the windows is removed");
        assert!(
            text.contains(
                "sentinel_operation_duration_seconds_count{account=\"default\",env=\"Dev\",function=\"f\",operation=\"Bedrock.InvokeModel\",region=\"\",source=\"xray\"} 6"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_second_evaluation_shows_quantiles_budgets_and_alerts() {
        let metrics = Metrics::new();
        let sink = PrometheusSink::new(10, &metrics);
        sink.publish(&Snapshot {
            observed: vec![(key("Dev", "Bedrock.InvokeModel"), vec![9.2, 9.25, 9.0])],
            windows: vec![(key("Dev", "Bedrock.InvokeModel"), window(vec![9.2, 9.25, 9.0]))],
            statuses: Arc::new(vec![status("Dev", "Bedrock.InvokeModel", 0.95, AlertState::Firing)]),
            anomalies: Arc::new(vec![crate::evaluate::AnomalyStatus {
                account: "default".into(),
                region: String::new(),
                env: "Dev".into(),
                function: "f".into(),
                operation: "BedrockCallDuration".into(),
                recent_p95_s: Some(9.25),
                baseline_p95_s: Some(2.5),
                ratio: Some(3.7),
                p_value: 1e-9,
                recent_samples: 40,
                baseline_samples: 900,
                baseline_from_ms: Some(0),
                baseline_to_ms: Some(1),
                baseline_kind: "trailing",
                verdict: "regression",
                state: AlertState::Firing,
                cause: "Bedrock.InvokeModel".into(),
                explained_by: None,
            }]),
        });
        let text = String::from_utf8(sink.text().to_vec()).unwrap();
        assert!(text.contains("quantile=\"0.95\"} 9.25"), "{text}");
        assert!(text.contains("# TYPE sentinel_baseline_seconds summary\nsentinel_baseline_seconds{account=\"default\",env=\"Dev\",function=\"f\",operation=\"BedrockCallDuration\",region=\"\",quantile=\"0.95\"} 2.5\n"), "{text}");
        assert!(text.contains("sentinel_alerts{account=\"default\",alertname=\"LatencyRegression\",alertstate=\"firing\",env=\"Dev\",function=\"f\",operation=\"BedrockCallDuration\""), "{text}");
        assert!(text.contains("sentinel_alerts{account=\"default\",alertname=\"LatencyBudgetExceeded\",alertstate=\"firing\",env=\"Dev\""), "{text}");
        assert!(text.contains("severity=\"page\""), "{text}");
    }
}
