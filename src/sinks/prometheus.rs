//! The Prometheus exposition of the evaluator's results: the per-series families
//! (`sentinel_operation_duration_seconds`, `sentinel_operation_latency_seconds` with its
//! window count and sum, `sentinel_budget_seconds`, `sentinel_alerts`). The evaluator hands
//! each evaluation's [`Snapshot`] to [`PrometheusSink::publish`], which sets the families
//! and renders their text once; a scrape sends that text as it is (the daemon's own metrics
//! are rendered per scrape by `metrics`). Series are capped at `metrics.max_series`; events
//! of series beyond it are counted in `sentinel_series_dropped_total`.

use crate::evaluate::window::SeriesKey;
use crate::evaluate::{Publish, Snapshot};
use crate::exposition::{render_registry, summary_family};
use crate::metrics::Metrics;
use crate::model::alert::{ALERT_NAME, AlertState, QUANTILES, quantile_label};
use prometheus::{GaugeVec, HistogramVec, IntCounter, Opts, Registry};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

/// Histogram buckets that resolve both a 30 ms DynamoDB call and a 9 s Bedrock call.
pub const OPERATION_BUCKETS: [f64; 26] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 9.0, 10.0, 12.5,
    15.0, 20.0, 30.0, 60.0,
];

/// The per-series families and their rendered text; cheap to clone.
#[derive(Clone)]
pub struct PrometheusSink {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    operation_duration: HistogramVec,
    operation_latency: GaugeVec,
    /// Events of each series' window (the latency summary's `_count`).
    operation_events: GaugeVec,
    /// Sum of each series' window (the latency summary's `_sum`; not exported on its own).
    operation_window_sum: GaugeVec,
    budget_seconds: GaugeVec,
    alerts: GaugeVec,
    max_series: usize,
    series_dropped: IntCounter,
    exported: Mutex<Exported>,
    text: RwLock<bytes::Bytes>,
    render_len: AtomicUsize,
}

/// Which series the families hold.
#[derive(Default)]
struct Exported {
    /// Series with a histogram (the first `max_series` seen).
    series: HashSet<SeriesKey>,
    /// Series whose window gauges are set.
    gauges: BTreeSet<SeriesKey>,
}

impl PrometheusSink {
    /// The families, empty; `metrics` counts the series dropped over `max_series`.
    pub fn new(max_series: usize, metrics: &Metrics) -> PrometheusSink {
        let registry = Registry::new();
        let labels = ["env", "function", "operation", "source"];
        let operation_events = GaugeVec::new(Opts::new("sentinel_operation_events", "Events of each series in metrics.quantile_window."), &labels)
            .expect("valid metric definition");
        registry.register(Box::new(operation_events.clone())).expect("metric registered once");
        let operation_window_sum =
            GaugeVec::new(Opts::new("sentinel_operation_window_sum_seconds", "Sum of durations in the window."), &labels).expect("valid metric definition");
        let operation_duration = HistogramVec::new(
            prometheus::HistogramOpts::new(
                "sentinel_operation_duration_seconds",
                "Durations of timing events as they are stored, by env, function, operation and source.",
            )
            .buckets(OPERATION_BUCKETS.to_vec()),
            &labels,
        )
        .expect("valid metric definition");
        registry.register(Box::new(operation_duration.clone())).expect("metric registered once");
        let inner = Inner {
            operation_latency: summary_family(
                &registry,
                "sentinel_operation_latency_seconds",
                "Exact quantiles of each series over metrics.quantile_window (by event time); _count and _sum cover the same window.",
                &["env", "function", "operation", "source", "quantile"],
                Some(operation_events.clone()),
                Some(operation_window_sum.clone()),
            ),
            budget_seconds: summary_family(
                &registry,
                "sentinel_budget_seconds",
                "The latency budget that applies to each operation, at its quantile.",
                &["env", "function", "operation", "quantile"],
                None,
                None,
            ),
            alerts: summary_family(
                &registry,
                "sentinel_alerts",
                "1 for every pending or firing alert (like Prometheus's ALERTS).",
                &["alertname", "alertstate", "env", "function", "operation", "quantile", "severity"],
                None,
                None,
            ),
            operation_duration,
            operation_events,
            operation_window_sum,
            registry,
            max_series,
            series_dropped: metrics.series_dropped.clone(),
            exported: Mutex::default(),
            text: RwLock::default(),
            render_len: AtomicUsize::new(0),
        };
        PrometheusSink { inner: Arc::new(inner) }
    }

    /// The per-series text as the last evaluation left it (empty before the first).
    pub fn text(&self) -> bytes::Bytes {
        self.inner.text.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Sets the families from one evaluation and renders their text.
    pub fn publish(&self, snapshot: &Snapshot) {
        let m = &*self.inner;
        {
            let Ok(mut exported) = m.exported.lock() else { return };
            let exported = &mut *exported;
            for (key, durations) in &snapshot.observed {
                if exported.series.contains(key) || exported.series.len() < m.max_series {
                    let h = m.operation_duration.with_label_values(&[&key.env, &key.function, &key.operation, &key.source]);
                    for d in durations {
                        h.observe(*d);
                    }
                    exported.series.insert(key.clone());
                } else {
                    m.series_dropped.inc_by(durations.len() as u64);
                }
            }
            let mut live = BTreeSet::new();
            let mut present = HashSet::new();
            for (key, window) in &snapshot.windows {
                present.insert(key);
                if !exported.series.contains(key) {
                    continue;
                }
                let labels = [key.env.as_str(), key.function.as_str(), key.operation.as_str(), key.source.as_str()];
                let (count, sum) = window.as_ref().map_or((0, 0.0), |w| (w.stats.count, w.sum));
                m.operation_events.with_label_values(&labels).set(count as f64);
                m.operation_window_sum.with_label_values(&labels).set(sum);
                match window {
                    None => {
                        for (_, q) in QUANTILES {
                            let _ = m.operation_latency.remove_label_values(&[labels[0], labels[1], labels[2], labels[3], q]);
                        }
                    }
                    Some(w) => {
                        for (q, label) in QUANTILES {
                            m.operation_latency.with_label_values(&[labels[0], labels[1], labels[2], labels[3], label]).set(w.stats.quantile(q));
                        }
                        live.insert(key.clone());
                    }
                }
            }
            // Series that left the windows entirely: stop exporting stale values.
            for gone in exported.gauges.difference(&live) {
                if !present.contains(gone) {
                    let labels = [gone.env.as_str(), gone.function.as_str(), gone.operation.as_str(), gone.source.as_str()];
                    let _ = m.operation_events.remove_label_values(&labels);
                    let _ = m.operation_window_sum.remove_label_values(&labels);
                    for (_, q) in QUANTILES {
                        let _ = m.operation_latency.remove_label_values(&[labels[0], labels[1], labels[2], labels[3], q]);
                    }
                }
            }
            exported.gauges = live;
        }
        m.alerts.reset();
        m.budget_seconds.reset();
        for s in snapshot.statuses.iter() {
            let q = quantile_label(s.quantile);
            m.budget_seconds.with_label_values(&[&s.env, &s.function, &s.operation, q]).set(s.budget_s);
            if s.state != AlertState::Inactive {
                m.alerts.with_label_values(&[ALERT_NAME, s.state.as_str(), &s.env, &s.function, &s.operation, q, &s.severity]).set(1.0);
            }
        }
        let text = bytes::Bytes::from(render_registry(&m.registry, &m.render_len));
        if let Ok(mut slot) = m.text.write() {
            *slot = text;
        }
    }
}

impl Publish for PrometheusSink {
    fn publish(&self, snapshot: &Snapshot) {
        PrometheusSink::publish(self, snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::window::stats;
    use crate::evaluate::{BudgetStatus, WindowSummary};
    use prometheus::Encoder;

    fn key(op: &str) -> SeriesKey {
        SeriesKey { env: "Dev".into(), function: "f".into(), operation: op.into(), source: "xray".into() }
    }

    #[test]
    fn the_text_is_the_reference_encoders_and_changes_only_when_published() {
        let metrics = Metrics::new();
        let sink = PrometheusSink::new(10, &metrics);
        assert!(sink.text().is_empty(), "nothing before the first evaluation");
        let window = |values: Vec<f64>| Some(WindowSummary { sum: values.iter().sum(), stats: stats(values, 0) });
        let status = BudgetStatus {
            budget: "b".into(),
            env: "Dev".into(),
            function: "f".into(),
            operation: "Bedrock.InvokeModel".into(),
            quantile: 0.95,
            budget_s: 5.0,
            observed_s: Some(9.25),
            samples: 3,
            breached: true,
            state: AlertState::Firing,
            severity: "page".into(),
        };
        let snapshot = Snapshot {
            observed: vec![(key("Bedrock.InvokeModel"), vec![9.2, 9.25, 9.0])],
            windows: vec![(key("Bedrock.InvokeModel"), window(vec![9.2, 9.25, 9.0])), (key("Idle"), None)],
            statuses: Arc::new(vec![status]),
        };
        sink.publish(&snapshot);
        let mut reference = Vec::new();
        prometheus::TextEncoder::new().encode(&sink.inner.registry.gather(), &mut reference).unwrap();
        let text = String::from_utf8(sink.text().to_vec()).unwrap();
        assert_eq!(text, String::from_utf8(reference).unwrap());
        assert!(text.contains("quantile=\"0.95\"} 9.25"), "{text}");
        assert!(text.contains("sentinel_alerts{alertname=\"LatencyBudgetExceeded\",alertstate=\"firing\",env=\"Dev\""), "{text}");
        assert!(text.contains("severity=\"page\""), "{text}");
        // A series past max_series is dropped and counted; one that left the windows goes.
        let small = PrometheusSink::new(1, &metrics);
        small.publish(&Snapshot {
            observed: vec![(key("a"), vec![1.0]), (key("b"), vec![1.0, 2.0])],
            windows: vec![(key("a"), window(vec![1.0]))],
            statuses: Arc::default(),
        });
        assert_eq!(metrics.series_dropped.get(), 2);
        assert!(String::from_utf8_lossy(&small.text()).contains("operation=\"a\""));
        small.publish(&Snapshot { observed: vec![], windows: vec![], statuses: Arc::default() });
        assert!(!String::from_utf8_lossy(&small.text()).contains("sentinel_operation_events{"), "a series gone from the windows is removed");
    }
}
