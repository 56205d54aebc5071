//! The daemon's own metrics, all registered in one place on an owned `prometheus::Registry`
//! (a value in the app state, never a global, so each test can build its own). Labels come
//! only from bounded sets: sources, reason codes, API names, configured log groups.

use prometheus::{
    GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Exposes a gauge vector whose `quantile` label is part of our contract as a Prometheus
/// *summary*: promtool rejects a `quantile` label on any other type, and the text encoder
/// cannot write untyped families. Each label set's quantiles become one summary, with
/// `_count`/`_sum` from companion vectors when there are any (else 1 and the value's sum).
#[derive(Clone)]
struct AsSummary {
    values: GaugeVec,
    counts: Option<GaugeVec>,
    sums: Option<GaugeVec>,
}

impl prometheus::core::Collector for AsSummary {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.values.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use prometheus::proto::{LabelPair, Metric, MetricType, Quantile, Summary};
        let mut out = Vec::new();
        for mut family in self.values.collect() {
            let mut groups: std::collections::BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>> = Default::default();
            for m in family.get_metric() {
                let mut q = None;
                let mut others = Vec::new();
                for l in m.get_label() {
                    if l.name() == "quantile" {
                        q = l.value().parse::<f64>().ok();
                    } else {
                        others.push((l.name().to_string(), l.value().to_string()));
                    }
                }
                if let Some(q) = q {
                    groups.entry(others).or_default().push((q, m.get_gauge().get_value()));
                }
            }
            let lookup = |vec: &Option<GaugeVec>, labels: &[(String, String)]| -> Option<f64> {
                let map: std::collections::HashMap<&str, &str> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                vec.as_ref().and_then(|v| v.get_metric_with(&map).ok()).map(|g| g.get())
            };
            let metrics = groups
                .into_iter()
                .map(|(labels, mut quantiles)| {
                    quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let mut summary = Summary::default();
                    summary.set_sample_count(lookup(&self.counts, &labels).unwrap_or(1.0) as u64);
                    summary.set_sample_sum(lookup(&self.sums, &labels).unwrap_or_else(|| quantiles.iter().map(|q| q.1).sum()));
                    summary.set_quantile(
                        quantiles
                            .into_iter()
                            .map(|(q, v)| {
                                let mut x = Quantile::default();
                                x.set_quantile(q);
                                x.set_value(v);
                                x
                            })
                            .collect(),
                    );
                    let mut m = Metric::default();
                    m.set_label(
                        labels
                            .into_iter()
                            .map(|(k, v)| {
                                let mut l = LabelPair::default();
                                l.set_name(k);
                                l.set_value(v);
                                l
                            })
                            .collect(),
                    );
                    m.set_summary(summary);
                    m
                })
                .collect();
            family.set_field_type(MetricType::SUMMARY);
            family.set_metric(metrics);
            out.push(family);
        }
        out
    }
}

fn summary_family(reg: &Registry, name: &str, help: &str, labels: &[&str], counts: Option<GaugeVec>, sums: Option<GaugeVec>) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    reg.register(Box::new(AsSummary { values: g.clone(), counts, sums })).expect("metric registered once");
    g
}

/// Histogram buckets that resolve both a 30 ms DynamoDB call and a 9 s Bedrock call.
pub const OPERATION_BUCKETS: [f64; 26] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 9.0, 10.0, 12.5,
    15.0, 20.0, 30.0, 60.0,
];

/// Every self-metric the daemon exports.
#[derive(Clone)]
pub struct Metrics {
    /// The daemon's own metrics: few series, rendered on each scrape.
    pub registry: Registry,
    /// The per-series families (operation latency and histogram, budgets): up to
    /// `metrics.max_series` label sets, changed only by the evaluator, which renders them
    /// once per evaluation ([`Metrics::refresh_series`]) so a scrape copies nothing.
    pub per_series: Registry,
    series_text: std::sync::Arc<std::sync::RwLock<bytes::Bytes>>,
    /// Sizes of the last renders, to size the next buffers.
    series_render_len: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    last_render_len: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub build_info: IntGaugeVec,
    pub events_stored: IntCounterVec,
    pub events_duplicate: IntCounterVec,
    pub inputs_rejected: IntCounterVec,
    pub lines_ignored: IntCounterVec,
    pub aws_requests: IntCounterVec,
    pub task_restarts: IntCounterVec,
    pub api_requests: IntCounterVec,
    pub watermark_resets: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub retention_deleted: IntCounterVec,
    pub source_last_success: GaugeVec,
    pub source_up: IntGaugeVec,
    pub poll_lag: GaugeVec,
    pub log_group_events: IntCounterVec,
    pub log_group_last_poll: GaugeVec,
    pub log_group_throttles: IntCounterVec,
    pub log_group_unavailable: IntGaugeVec,
    pub log_events_recovered: IntCounterVec,
    pub log_groups_watched: IntGaugeVec,
    pub lambda_cold_starts: IntCounterVec,
    pub lambda_timeouts: IntCounterVec,
    pub lambda_errors: IntCounterVec,
    pub lambda_max_memory_used: IntGaugeVec,
    pub operation_duration: prometheus::HistogramVec,
    pub operation_latency: GaugeVec,
    /// Sum of each series' window (the latency summary's `_sum`; not exported on its own).
    pub operation_window_sum: GaugeVec,
    pub operation_events: GaugeVec,
    pub budget_seconds: GaugeVec,
    pub alerts: GaugeVec,
    pub series_dropped: IntCounter,
    pub alert_notifications: IntCounterVec,
    pub evaluation_seconds: GaugeVec,
    pub xray_traces_fetched: IntCounter,
    pub xray_traces_stored: IntCounterVec,
    pub xray_traces_pending: IntGauge,
    pub xray_destination_cloudwatch_logs: IntGauge,
    pub cloudwatch_data_published: IntCounterVec,
    pub cloudwatch_events_published: IntCounter,
    pub cloudwatch_dropped: IntCounterVec,
    pub cloudwatch_last_publish: prometheus::Gauge,
}

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    reg.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    reg.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn plain_counter(reg: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric definition");
    reg.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn plain_int_gauge(reg: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric definition");
    reg.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn int_gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    reg.register(Box::new(g.clone())).expect("metric registered once");
    g
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let retention_deleted = counter(&r, "sentinel_retention_deleted_rows_total", "Rows deleted by retention, per table.", &["table"]);
        let s = Registry::new();
        let operation_events = gauge(
            &s,
            "sentinel_operation_events",
            "Events of each series in metrics.quantile_window.",
            &["env", "function", "operation", "source"],
        );
        let operation_window_sum = GaugeVec::new(
            Opts::new("sentinel_operation_window_sum_seconds", "Sum of durations in the window."),
            &["env", "function", "operation", "source"],
        )
        .expect("valid metric definition");
        let m = Metrics {
            build_info: int_gauge(&r, "sentinel_build_info", "Build information; always 1.", &["version"]),
            events_stored: counter(&r, "sentinel_events_stored_total", "Timing events newly stored.", &["source"]),
            events_duplicate: counter(
                &r,
                "sentinel_events_duplicate_total",
                "Timing events skipped because they were already stored (overlapping polls).",
                &["source"],
            ),
            inputs_rejected: counter(
                &r,
                "sentinel_inputs_rejected_total",
                "Log lines or trace documents that could not be used, by reason.",
                &["source", "reason"],
            ),
            lines_ignored: counter(
                &r,
                "sentinel_log_lines_ignored_total",
                "Log lines with no timing in them (ordinary application logs).",
                &["reason"],
            ),
            aws_requests: counter(
                &r,
                "sentinel_aws_requests_total",
                "AWS API calls by API and outcome (ok, throttled, error).",
                &["api", "outcome"],
            ),
            task_restarts: counter(&r, "sentinel_task_restarts_total", "Background tasks restarted after a failure.", &["task"]),
            api_requests: counter(
                &r,
                "sentinel_api_requests_total",
                "API requests by outcome: ok, bad_request, shed (over http.max_concurrent_requests), \
                 timeout (stopped at http.request_timeout or when the client left), error.",
                &["outcome"],
            ),
            watermark_resets: counter(
                &r,
                "sentinel_watermark_resets_total",
                "Readers of stored events (evaluator, rollups, cloudwatch) whose id watermark was ahead of \
                 every id the database ever handed out (a replaced database) and started over.",
                &["reader"],
            ),
            store_errors: counter(&r, "sentinel_store_errors_total", "Database errors by kind.", &["kind"]),
            retention_deleted,
            source_last_success: gauge(
                &r,
                "sentinel_source_last_success_timestamp_seconds",
                "Unix time of the last successful poll of each source.",
                &["source"],
            ),
            source_up: int_gauge(&r, "sentinel_source_up", "1 when the source's last poll succeeded.", &["source"]),
            poll_lag: gauge(
                &r,
                "sentinel_poll_lag_seconds",
                "Now minus the newest committed event time, per source and position key.",
                &["source", "key"],
            ),
            log_group_events: counter(&r, "sentinel_log_group_events_total", "Timing events stored per log group.", &["log_group"]),
            log_group_last_poll: gauge(
                &r,
                "sentinel_log_group_last_poll_timestamp_seconds",
                "Unix time of the last successful poll of each log group.",
                &["log_group"],
            ),
            log_group_throttles: counter(
                &r,
                "sentinel_log_group_throttles_total",
                "FilterLogEvents calls throttled, per log group.",
                &["log_group"],
            ),
            log_group_unavailable: int_gauge(
                &r,
                "sentinel_log_group_unavailable",
                "1 when a log group is deleted or access is denied (skipped until it returns).",
                &["log_group"],
            ),
            log_events_recovered: counter(
                &r,
                "sentinel_log_events_recovered_total",
                "Timing events the reconciliation sweep stored: CloudWatch took them in later than logs.ingestion_delay.",
                &["log_group"],
            ),
            log_groups_watched: int_gauge(&r, "sentinel_log_groups_watched", "Log groups being tailed.", &["shard"]),
            lambda_cold_starts: counter(&r, "sentinel_lambda_cold_starts_total", "Lambda cold starts seen in REPORT lines.", &["env", "function"]),
            lambda_timeouts: counter(&r, "sentinel_lambda_timeouts_total", "Lambda invocations that timed out.", &["env", "function"]),
            lambda_errors: counter(&r, "sentinel_lambda_errors_total", "Lambda invocations that ended in an error.", &["env", "function"]),
            lambda_max_memory_used: int_gauge(
                &r,
                "sentinel_lambda_max_memory_used_bytes",
                "Max memory used by the latest invocation seen.",
                &["env", "function"],
            ),
            xray_traces_fetched: plain_counter(
                &r,
                "sentinel_xray_traces_fetched_total",
                "Traces returned by BatchGetTraces (re-fetches of unfinished traces included).",
            ),
            xray_traces_stored: counter(
                &r,
                "sentinel_xray_traces_stored_total",
                "Traces finished with: complete (every span closed), incomplete (stored as they were \
                 after xray.max_refetches re-fetches), missing (never returned by BatchGetTraces).",
                &["state"],
            ),
            xray_traces_pending: plain_int_gauge(
                &r,
                "sentinel_xray_traces_pending",
                "Traces in progress, partial or not yet returned, waiting for a later poll.",
            ),
            xray_destination_cloudwatch_logs: plain_int_gauge(
                &r,
                "sentinel_xray_destination_cloudwatch_logs",
                "1 when the account sends trace segments to CloudWatch Logs (Transaction Search): \
                 BatchGetTraces then finds almost nothing.",
            ),
            operation_duration: {
                let h = prometheus::HistogramVec::new(
                    prometheus::HistogramOpts::new(
                        "sentinel_operation_duration_seconds",
                        "Durations of timing events as they are stored, by env, function, operation and source.",
                    )
                    .buckets(OPERATION_BUCKETS.to_vec()),
                    &["env", "function", "operation", "source"],
                )
                .expect("valid metric definition");
                s.register(Box::new(h.clone())).expect("metric registered once");
                h
            },
            operation_events: operation_events.clone(),
            operation_window_sum: operation_window_sum.clone(),
            operation_latency: summary_family(
                &s,
                "sentinel_operation_latency_seconds",
                "Exact quantiles of each series over metrics.quantile_window (by event time); _count and _sum cover the same window.",
                &["env", "function", "operation", "source", "quantile"],
                Some(operation_events),
                Some(operation_window_sum),
            ),
            budget_seconds: summary_family(
                &s,
                "sentinel_budget_seconds",
                "The latency budget that applies to each operation, at its quantile.",
                &["env", "function", "operation", "quantile"],
                None,
                None,
            ),
            alerts: summary_family(
                &r,
                "sentinel_alerts",
                "1 for every pending or firing alert (like Prometheus's ALERTS).",
                &["alertname", "alertstate", "env", "function", "operation", "quantile", "severity"],
                None,
                None,
            ),
            series_dropped: {
                let c = IntCounter::new(
                    "sentinel_series_dropped_total",
                    "Events not exported per series because metrics.max_series was reached.",
                )
                .expect("valid");
                r.register(Box::new(c.clone())).expect("registered once");
                c
            },
            alert_notifications: counter(
                &r,
                "sentinel_alert_notifications_total",
                "Alert deliveries by sink (log, webhook, alertmanager) and outcome (ok, error, dropped).",
                &["sink", "outcome"],
            ),
            evaluation_seconds: gauge(&r, "sentinel_evaluation_duration_seconds", "Time the last evaluation took.", &["stage"]),
            cloudwatch_data_published: counter(
                &r,
                "sentinel_cloudwatch_data_published_total",
                "Metric data (one per MetricDatum) accepted by CloudWatch PutMetricData, by metric.",
                &["metric"],
            ),
            cloudwatch_events_published: plain_counter(
                &r,
                "sentinel_cloudwatch_events_published_total",
                "Timing events sent to CloudWatch as OperationLatency values.",
            ),
            cloudwatch_dropped: counter(
                &r,
                "sentinel_cloudwatch_dropped_total",
                "Timing events (and budget statuses) not sent to CloudWatch, by reason: too_old, \
                 too_far_future, invalid_value, invalid_dimension, rejected_by_cloudwatch.",
                &["reason"],
            ),
            cloudwatch_last_publish: {
                let g = prometheus::Gauge::new(
                    "sentinel_cloudwatch_last_publish_timestamp_seconds",
                    "Unix time of the last publish round that ended with everything stored sent.",
                )
                .expect("valid metric definition");
                r.register(Box::new(g.clone())).expect("metric registered once");
                g
            },
            last_render_len: Default::default(),
            registry: r,
            per_series: s,
            series_text: Default::default(),
            series_render_len: Default::default(),
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m
    }

    /// The Prometheus text exposition (format 0.0.4) of everything registered: the daemon's
    /// own metrics rendered now, then the per-series families as the last evaluation left
    /// them. The HTTP handler sends the two parts without joining them ([`Metrics::render_parts`]).
    pub fn render(&self) -> String {
        let (head, series) = self.render_parts();
        head + &String::from_utf8_lossy(&series)
    }

    /// The two parts of the exposition (families never span both).
    pub fn render_parts(&self) -> (String, bytes::Bytes) {
        let series = self.series_text.read().map(|t| t.clone()).unwrap_or_default();
        (render_registry(&self.registry, &self.last_render_len), series)
    }

    /// Renders the per-series families into the cache scrapes read; the evaluator calls it
    /// after each evaluation (the only writer of those families), off the async threads.
    pub fn refresh_series(&self) {
        let text = bytes::Bytes::from(render_registry(&self.per_series, &self.series_render_len));
        if let Ok(mut slot) = self.series_text.write() {
            *slot = text;
        }
    }
}

/// Renders one registry.
///
/// Written by hand rather than with `prometheus::TextEncoder`: with 10,000 series the
/// exposition is tens of megabytes, and building each label set once per metric (not once
/// per line) and writing into one pre-sized buffer makes it several times faster (see
/// `benches/queries.rs`). `promtool check metrics` checks the output in the tests.
fn render_registry(registry: &Registry, last_len: &std::sync::atomic::AtomicUsize) -> String {
    use prometheus::proto::MetricType;
    let families = registry.gather();
    let mut out = String::with_capacity(last_len.load(std::sync::atomic::Ordering::Relaxed) + 4096);
    for f in &families {
        let name = f.name();
        let kind = match f.get_field_type() {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape_into(&mut out, f.help(), false);
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(kind);
        out.push('\n');
        for m in f.get_metric() {
            let mut labels = String::new();
            for (i, l) in m.get_label().iter().enumerate() {
                if i > 0 {
                    labels.push(',');
                }
                labels.push_str(l.name());
                labels.push_str("=\"");
                escape_into(&mut labels, l.value(), true);
                labels.push('"');
            }
            match f.get_field_type() {
                MetricType::COUNTER => line(&mut out, name, "", &labels, None, m.get_counter().get_value()),
                MetricType::GAUGE => line(&mut out, name, "", &labels, None, m.get_gauge().get_value()),
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    for b in h.get_bucket() {
                        line(&mut out, name, "_bucket", &labels, Some(("le", b.upper_bound())), b.cumulative_count() as f64);
                    }
                    line(&mut out, name, "_bucket", &labels, Some(("le", f64::INFINITY)), h.get_sample_count() as f64);
                    line(&mut out, name, "_sum", &labels, None, h.get_sample_sum());
                    line(&mut out, name, "_count", &labels, None, h.get_sample_count() as f64);
                }
                MetricType::SUMMARY => {
                    let sm = m.get_summary();
                    for q in sm.get_quantile() {
                        line(&mut out, name, "", &labels, Some(("quantile", q.quantile())), q.value());
                    }
                    line(&mut out, name, "_sum", &labels, None, sm.sample_sum());
                    line(&mut out, name, "_count", &labels, None, sm.sample_count() as f64);
                }
            }
        }
    }
    last_len.store(out.len(), std::sync::atomic::Ordering::Relaxed);
    out
}

/// One sample line: `name[suffix]{labels[,extra="v"]} value`.
fn line(out: &mut String, name: &str, suffix: &str, labels: &str, extra: Option<(&str, f64)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            push_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

fn push_value(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Escapes `\\` and newlines (and `"` in label values), as the text format requires.
fn escape_into(out: &mut String, s: &str, quotes: bool) {
    if !s.contains(['\\', '\n', '"']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn hand_written_exposition_matches_the_reference_encoder() {
        let m = Metrics::new();
        m.events_stored.with_label_values(&["logs"]).inc_by(7);
        m.operation_duration.with_label_values(&["Dev", "f", "Bedrock.InvokeModel", "xray"]).observe(9.2);
        m.operation_events.with_label_values(&["Dev", "f", "Bedrock.InvokeModel", "xray"]).set(3.0);
        m.operation_window_sum.with_label_values(&["Dev", "f", "Bedrock.InvokeModel", "xray"]).set(27.5);
        m.operation_latency.with_label_values(&["Dev", "f", "Bedrock.InvokeModel", "xray", "0.95"]).set(9.25);
        m.log_group_unavailable.with_label_values(&["/aws/lambda/with \"quotes\" and \\"]).set(1);
        let mut reference = Vec::new();
        prometheus::TextEncoder::new().encode(&m.registry.gather(), &mut reference).unwrap();
        let mut series = Vec::new();
        prometheus::TextEncoder::new().encode(&m.per_series.gather(), &mut series).unwrap();
        let own = String::from_utf8(reference).unwrap();
        assert_eq!(m.render(), own, "per-series families appear once the evaluator renders them");
        m.refresh_series();
        assert_eq!(m.render(), own + &String::from_utf8(series).unwrap());
        m.operation_latency.with_label_values(&["Dev", "f", "Bedrock.InvokeModel", "xray", "0.95"]).set(1.0);
        assert!(m.render().contains("quantile=\"0.95\"} 9.25"), "until the next evaluation, scrapes see the last one");
    }
}
