//! Query costs and memory, each next to a baseline measured in the same run:
//! - p95 (and p50/p90/p99/max) over a 15-minute window of 1 million events, against a full
//!   sort of the same values;
//! - `/metrics` with 10,000 series (histogram + quantiles + counts): what a scrape costs
//!   (the daemon's own families rendered, the per-series text the last evaluation rendered
//!   taken as is) and what the Prometheus sink costs the evaluator once per evaluation
//!   (updating its table of series from the snapshot and rendering it), against writing the same
//!   values with `format!` (the least any exposition must do);
//! - resident memory of the windows holding 10,000 series and 1 million events, against
//!   the raw size of those events.

use latency_sentinel::evaluate::window::{SeriesKey, WindowStats, Windows, stats};
use latency_sentinel::evaluate::{Snapshot, WindowSummary};
use latency_sentinel::metrics::Metrics;
use latency_sentinel::sinks::prometheus::PrometheusSink;
use std::fmt::Write;
use std::time::Instant;

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn main() {
    // 1) Memory (first, so the process peak is this section's own): 10,000 series, 1M events in the windows.
    let now = 1_795_341_600_000i64;
    let before = rss_kb("VmRSS:");
    let mut w = Windows::default();
    for i in 0..1_000_000i64 {
        let s = i % 10_000;
        let key = SeriesKey { account: "default".into(), region: String::new(), env: format!("env{}", s % 2), function: format!("Function{}", s / 50), operation: format!("Operation{}", s % 50), source: "xray".into() };
        w.insert(key, now - 900_000 + i, 1.0, false);
    }
    let after = rss_kb("VmRSS:");
    let peak = rss_kb("VmHWM:");
    let base_rss = before as f64 / 1024.0;
    let raw_mb = (1_000_000 * 24) as f64 / 1e6;
    let held_mb = after.saturating_sub(before) as f64 / 1024.0;
    println!("windows with 10000 series / {} events: +{held_mb:.1} MB resident, process peak {:.1} MB (baseline: raw events {raw_mb:.1} MB, process before {base_rss:.1} MB)", w.len(), peak as f64 / 1024.0);
    drop(w);

    // 2) p95 over a 15-minute window of 1M events.
    let mut w = Windows::default();
    let key = SeriesKey { account: "default".into(), region: String::new(), env: "Dev".into(), function: "GenerateDynamicScenarioHandler".into(), operation: "Bedrock.InvokeModel".into(), source: "xray".into() };
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..1_000_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d = 0.5 + (x % 10_000) as f64 / 1000.0;
        w.insert(key.clone(), now - 900_000 + i * 9 / 10, d, false);
    }
    let series = &w.series[&key];
    let (p95_s, st) = best_of(5, || {
        let (values, errors) = series.window(now, 900_000);
        stats(values, errors)
    });
    let (sort_s, sorted_p95) = best_of(5, || {
        let (mut values, _) = series.window(now, 900_000);
        values.sort_by(f64::total_cmp);
        values[((0.95 * values.len() as f64).ceil() as usize) - 1]
    });
    assert_eq!(st.p95, sorted_p95);
    println!("p95 over 15 min of {} events: {:.1} ms (baseline full sort: {:.1} ms)", st.count, p95_s * 1e3, sort_s * 1e3);

    // 3) /metrics with 10,000 series.
    let metrics = Metrics::new();
    let exposition = PrometheusSink::new(10_000, &metrics);
    let mut labels = Vec::new();
    let mut snapshot = Snapshot::default();
    for i in 0..10_000 {
        let l = [format!("env{}", i % 2), format!("Function{}", i / 50), format!("Operation{}", i % 50), "xray".to_string()];
        let key = SeriesKey { account: "default".into(), region: String::new(), env: l[0].clone(), function: l[1].clone(), operation: l[2].clone(), source: l[3].clone() };
        snapshot.observed.push((key.clone(), vec![0.03 * (i % 300) as f64]));
        let window = WindowStats { count: 100, p50: 1.5, p90: 1.5, p95: 1.5, p99: 1.5, max: 1.5, error_rate: 0.0 };
        snapshot.windows.push((key, Some(WindowSummary { stats: window, sum: 42.0 })));
        labels.push(l);
    }
    exposition.publish(&snapshot);
    // What the evaluator pays once per evaluation: updating the table and rendering it
    // (the durations are observed once, the rest set again).
    snapshot.observed.clear();
    let (refresh_s, ()) = best_of(5, || exposition.publish(&snapshot));
    let (render_s, (head, series)) = best_of(5, || (metrics.render(), exposition.text()));
    let text_len = head.len() + series.len();
    drop((head, series));
    let (fmt_s, plain) = best_of(5, || {
        let mut s = String::with_capacity(text_len);
        for l in &labels {
            for b in latency_sentinel::sinks::prometheus::OPERATION_BUCKETS {
                let _ = writeln!(s, "sentinel_operation_duration_seconds_bucket{{env=\"{}\",function=\"{}\",operation=\"{}\",source=\"{}\",le=\"{b}\"}} 1", l[0], l[1], l[2], l[3]);
            }
            for q in ["0.5", "0.9", "0.95", "0.99"] {
                let _ = writeln!(s, "sentinel_operation_latency_seconds{{env=\"{}\",function=\"{}\",operation=\"{}\",source=\"{}\",quantile=\"{q}\"}} 1.5", l[0], l[1], l[2], l[3]);
            }
        }
        s
    });
    println!(
        "/metrics with 10000 series: scrape {:.1} ms, {:.1} MB; rendered once per evaluation in {:.1} ms (baseline format!: {:.1} ms, {:.1} MB)",
        render_s * 1e3,
        text_len as f64 / 1e6,
        refresh_s * 1e3,
        fmt_s * 1e3,
        plain.len() as f64 / 1e6
    );
    drop(plain);

    println!(
        "queries: p95_1m_ms={:.1} baseline_sort_ms={:.1} metrics_10k_series_ms={:.1} metrics_render_per_evaluation_ms={:.1} baseline_format_ms={:.1} windows_rss_mb={held_mb:.1} peak_rss_mb={:.1} baseline_raw_mb={raw_mb:.1}",
        p95_s * 1e3,
        sort_s * 1e3,
        render_s * 1e3,
        refresh_s * 1e3,
        fmt_s * 1e3,
        peak as f64 / 1024.0
    );
}
