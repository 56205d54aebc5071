//! The daemon's own metrics, all registered in one place on an owned `prometheus::Registry`
//! (a value in the app state, never a global, so each test can build its own). Labels come
//! only from bounded sets: sources, reason codes, API names, configured log groups. The
//! per-series families (operation latency, budgets, alerts) belong to the Prometheus sink
//! (`sinks::prometheus`), which the evaluator hands its results.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Every self-metric the daemon exports.
#[derive(Clone)]
pub struct Metrics {
    /// The daemon's own metrics: few series, rendered on each scrape.
    pub registry: Registry,
    /// Size of the last render, to size the next buffer.
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
    pub internal_errors: IntCounterVec,
    pub store_errors: IntCounterVec,
    pub retention_deleted: IntCounterVec,
    /// The store's files on disk, by `file` (`database`, `free` pages in it, `wal`).
    pub storage_bytes: IntGaugeVec,
    pub source_last_success: GaugeVec,
    pub source_up: IntGaugeVec,
    /// Per named account and region: 1 when its credentials (its assumed role) last resolved.
    pub account_up: IntGaugeVec,
    pub poll_lag: GaugeVec,
    pub log_group_events: IntCounterVec,
    pub log_group_last_poll: GaugeVec,
    pub log_group_throttles: IntCounterVec,
    pub log_group_unavailable: IntGaugeVec,
    pub log_events_recovered: IntCounterVec,
    pub log_groups_watched: IntGaugeVec,
    /// In a fleet: the units this node holds, by kind (logs, xray, evaluator, …).
    pub cluster_leases: IntGaugeVec,
    /// In a fleet: the nodes renewing their row, as the last lease round saw them.
    pub cluster_nodes: IntGauge,
    /// In a fleet: 1 for the node holding the evaluator, as this node last saw it.
    pub cluster_evaluator: IntGaugeVec,
    pub lambda_cold_starts: IntCounterVec,
    pub lambda_timeouts: IntCounterVec,
    pub lambda_errors: IntCounterVec,
    pub lambda_max_memory_used: IntGaugeVec,
    pub series_dropped: IntCounter,
    pub alert_notifications: IntCounterVec,
    pub evaluation_seconds: GaugeVec,
    pub evaluations: IntCounter,
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
        let m = Metrics {
            storage_bytes: int_gauge(
                &r,
                "sentinel_storage_bytes",
                "The store on disk: file=\"database\" (its pages), \"free\" (pages in it free for reuse), \"wal\" (the write-ahead log); updated every storage.retention_interval.",
                &["file"],
            ),
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
            internal_errors: counter(
                &r,
                "sentinel_internal_errors_total",
                "Failures the daemon works around rather than stops for, by what failed: a stored \
                 stream state or alert phase that no longer decodes (started afresh), a metrics render.",
                &["what"],
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
            account_up: int_gauge(
                &r,
                "sentinel_account_up",
                "Per named account and region: 1 when its credentials (its role, assumed through STS) last resolved.",
                &["account", "region"],
            ),
            poll_lag: gauge(
                &r,
                "sentinel_poll_lag_seconds",
                "Now minus the newest committed event time, per source and position key.",
                &["source", "key", "account", "region"],
            ),
            log_group_events: counter(&r, "sentinel_log_group_events_total", "Timing events stored per log group.", &["log_group", "account", "region"]),
            log_group_last_poll: gauge(
                &r,
                "sentinel_log_group_last_poll_timestamp_seconds",
                "Unix time of the last successful poll of each log group.",
                &["log_group", "account", "region"],
            ),
            log_group_throttles: counter(
                &r,
                "sentinel_log_group_throttles_total",
                "FilterLogEvents calls throttled, per log group.",
                &["log_group", "account", "region"],
            ),
            log_group_unavailable: int_gauge(
                &r,
                "sentinel_log_group_unavailable",
                "1 when a log group is deleted or access is denied (skipped until it returns).",
                &["log_group", "account", "region"],
            ),
            log_events_recovered: counter(
                &r,
                "sentinel_log_events_recovered_total",
                "Timing events the reconciliation sweep stored: CloudWatch took them in later than logs.ingestion_delay.",
                &["log_group", "account", "region"],
            ),
            cluster_leases: int_gauge(
                &r,
                "sentinel_cluster_leases",
                "Several daemons on PostgreSQL: units of work this node holds, by kind (logs, xray, evaluator, cloudwatch, rollups, retention).",
                &["kind"],
            ),
            cluster_nodes: plain_int_gauge(&r, "sentinel_cluster_nodes", "Several daemons on PostgreSQL: live nodes, as the last lease round saw them."),
            cluster_evaluator: int_gauge(
                &r,
                "sentinel_cluster_evaluator",
                "Several daemons on PostgreSQL: 1 for the node that holds the evaluator (and alert sinks), as this node last saw it.",
                &["node"],
            ),
            log_groups_watched: int_gauge(&r, "sentinel_log_groups_watched", "Log groups being tailed.", &["shard", "account", "region"]),
            lambda_cold_starts: counter(&r, "sentinel_lambda_cold_starts_total", "Lambda cold starts seen in REPORT lines.", &["account", "region", "env", "function"]),
            lambda_timeouts: counter(&r, "sentinel_lambda_timeouts_total", "Lambda invocations that timed out.", &["account", "region", "env", "function"]),
            lambda_errors: counter(&r, "sentinel_lambda_errors_total", "Lambda invocations that ended in an error.", &["account", "region", "env", "function"]),
            lambda_max_memory_used: int_gauge(
                &r,
                "sentinel_lambda_max_memory_used_bytes",
                "Max memory used by the latest invocation seen.",
                &["account", "region", "env", "function"],
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
            evaluations: plain_counter(
                &r,
                "sentinel_evaluations_total",
                "Budget evaluations completed (a rate of 0 means alerts are not being judged).",
            ),
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
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m
    }

    /// The Prometheus text exposition (format 0.0.4) of the daemon's own metrics, rendered
    /// now (a scrape appends the Prometheus sink's per-series text to it).
    pub fn render(&self) -> String {
        crate::exposition::render_registry(&self.registry, &self.last_render_len)
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
        m.log_group_unavailable.with_label_values(&["/aws/lambda/with \"quotes\" and \\", "default", ""]).set(1);
        let mut reference = Vec::new();
        prometheus::TextEncoder::new().encode(&m.registry.gather(), &mut reference).unwrap();
        assert_eq!(m.render(), String::from_utf8(reference).unwrap());
    }
}
