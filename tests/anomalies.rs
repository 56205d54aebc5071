//! Learned baselines and one alert per cause, judged by the daemon's own evaluator over a real
//! SQLite store holding days of history: a steady series that turns 2× slower fires after
//! `for` and resolves after it recovers; a nightly slowdown does not fire with hour-of-week
//! seasonality (and does against a trailing baseline, so the test can fail); noise over a day
//! of evaluations never fires; a baseline reset forgets the old past; and a slowed Bedrock call
//! timed by X-Ray and by the seed's TIMING line, with its invocation slower too, is told as one
//! alert with the other name's evidence and the invocation explained by it.

use latency_sentinel::config::{AnomalyConfig, Config};
use latency_sentinel::evaluate::run::Evaluator;
use latency_sentinel::evaluate::{AnomalyStatus, Shared};
use latency_sentinel::metrics::Metrics;
use latency_sentinel::model::alert::{AlertState, Notification, Transition};
use latency_sentinel::model::{Source, TimingEvent};
use latency_sentinel::report::anomalies::StoreBaselines;
use latency_sentinel::stats::significance::SplitMix64;
use latency_sentinel::store::{Batch, Store};
use std::sync::Arc;
use tokio::sync::mpsc;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// A Monday, 00:00 UTC (2026-11-16), far enough from "now" that nothing else interferes.
const T0: i64 = 1_763_251_200_000;
const GDSH: &str = "GenerateDynamicScenarioHandler";

fn event(op: &str, source: Source, t: i64, d: f64, i: u64) -> TimingEvent {
    TimingEvent {
        time_ms: t,
        env: "Dev".into(),
        function: GDSH.into(),
        operation: op.into(),
        source,
        duration_s: d,
        request_id: Some(format!("req-{i}")),
        trace_id: None,
        function_version: None,
        cold_start: false,
        error: false,
        idem_key: format!("{op}|{i}"),
        attributes: vec![],
    }
}

/// One event every `every_ms` over `[from, to)`, lognormal (σ 0.3) around `median(t)`.
fn series(op: &str, from: i64, to: i64, every_ms: i64, seed: u64, median: impl Fn(i64) -> f64) -> Vec<TimingEvent> {
    let mut rng = SplitMix64(seed);
    (0..)
        .map(|k| from + k * every_ms)
        .take_while(|t| *t < to)
        .enumerate()
        .map(|(i, t)| event(op, Source::Xray, t, ((median(t) * (0.3 * rng.normal()).exp()) * 1000.0).round() / 1000.0, seed << 32 | i as u64))
        .collect()
}

async fn store_with(events: Vec<TimingEvent>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), latency_sentinel::store::OpenMode::Writer, 4096).await.unwrap();
    for chunk in events.chunks(20_000) {
        store.commit(&Batch { events: chunk.to_vec(), ..Batch::default() }).await.unwrap();
    }
    (dir, store)
}

fn config(seasonality: &str) -> Arc<Config> {
    let mut c = Config::default();
    c.anomaly = AnomalyConfig { enabled: true, seasonality: seasonality.into(), ..AnomalyConfig::default() };
    Arc::new(c)
}

struct Run {
    evaluator: Evaluator,
    shared: Shared,
    rx: mpsc::Receiver<Notification>,
}

async fn evaluator(store: &Store, config: Arc<Config>, start: i64) -> Run {
    let shared = Shared::default();
    let (tx, rx) = mpsc::channel(100_000);
    let mut evaluator = Evaluator::new(store.clone(), config, Metrics::new(), shared.clone(), Some(tx), None)
        .with_baselines(Arc::new(StoreBaselines { store: store.clone() }));
    evaluator.restore(start).await.unwrap();
    Run { evaluator, shared, rx }
}

impl Run {
    /// Evaluates every minute over `[from, to)`; returns the regression transitions told.
    async fn sweep(&mut self, from: i64, to: i64) -> Vec<(i64, Transition, String)> {
        let mut told = Vec::new();
        let mut now = from;
        while now < to {
            self.evaluator.evaluate(now).await.unwrap();
            while let Ok(n) = self.rx.try_recv() {
                if let Notification::Transition(e) = n {
                    told.push((now, e.state, e.operation.clone()));
                }
            }
            now += MIN;
        }
        told
    }

    fn status(&self, op: &str) -> AnomalyStatus {
        self.shared.anomalies().iter().find(|a| a.operation == op).cloned().unwrap_or_else(|| panic!("{op} judged: {:?}", self.shared.anomalies()))
    }
}

/// Steady for 8 days (an event every 20 s), then 2× slower for 40 minutes, then back.
#[tokio::test]
async fn a_steady_series_twice_as_slow_fires_after_for_and_resolves_after_recovery() {
    let start = T0 + 8 * DAY;
    let (slow_from, slow_to) = (start + 30 * MIN, start + 70 * MIN);
    let median = |t: i64| if (slow_from..slow_to).contains(&t) { 2.0 } else { 1.0 };
    let (_dir, store) = store_with(series("Bedrock.InvokeModel", T0, start + 3 * HOUR, 20_000, 1, median)).await;
    let mut run = evaluator(&store, config("hour_of_week"), start).await;
    let told = run.sweep(start, start + 3 * HOUR).await;
    let at = |tr: Transition| told.iter().find(|x| x.1 == tr).map(|x| x.0).unwrap_or_else(|| panic!("no {tr:?} in {told:?}"));
    let (pending, firing, resolved) = (at(Transition::Pending), at(Transition::Firing), at(Transition::Resolved));
    assert!(pending > slow_from && pending <= slow_from + 10 * MIN, "pending {} min after the slowdown: {told:?}", (pending - slow_from) / MIN);
    assert_eq!(firing - pending, 5 * MIN, "fires after `for`");
    assert!(resolved > slow_to && resolved <= slow_to + 15 * MIN + 10 * MIN + MIN, "resolved {} min after recovery", (resolved - slow_to) / MIN);
    assert_eq!(told.iter().filter(|x| x.1 == Transition::Firing).count(), 1, "{told:?}");
    assert!(told.iter().all(|x| x.2 == "Bedrock.InvokeModel"));
    let s = run.status("Bedrock.InvokeModel");
    assert_eq!((s.verdict, s.state, s.baseline_kind), ("normal", AlertState::Inactive, "hour_of_week"), "{s:?}");
    assert!((s.baseline_p95_s.unwrap() - 1.64).abs() < 0.3, "baseline p95 of lognormal(1s, 0.3): {s:?}");
}

/// Slow every night from 02:00 to 04:00 (3×), for 15 days; tonight is as slow as usual.
#[tokio::test]
async fn a_nightly_slowdown_does_not_fire_against_the_same_hours_of_past_weeks() {
    let nightly = |t: i64| if (2 * HOUR..4 * HOUR).contains(&t.rem_euclid(DAY)) { 3.0 } else { 1.0 };
    let night = T0 + 15 * DAY + 2 * HOUR;
    let events = series("Bedrock.InvokeModel", T0, night + 2 * HOUR, 20_000, 2, nightly);
    let (_dir, store) = store_with(events).await;
    let mut seasonal = evaluator(&store, config("hour_of_week"), night - HOUR).await;
    let told = seasonal.sweep(night - HOUR, night + 90 * MIN).await;
    assert!(told.is_empty(), "hour_of_week: {told:?}");
    let s = seasonal.status("Bedrock.InvokeModel");
    assert_eq!((s.verdict, s.baseline_kind), ("normal", "hour_of_week"), "{s:?}");
    assert!(s.recent_p95_s.unwrap() > 4.0 && s.baseline_p95_s.unwrap() > 4.0, "both sides are nights: {s:?}");
    // The same nights against the trailing week (mostly days) do fire: the test can fail.
    let mut trailing = evaluator(&store, config("none"), night - HOUR).await;
    let told = trailing.sweep(night - HOUR, night + 90 * MIN).await;
    assert!(told.iter().any(|x| x.1 == Transition::Firing), "trailing baseline: {told:?}");
}

/// Three days of lognormal noise (σ 0.3), judged every minute of the last day: nothing fires,
/// nothing is even pending.
#[tokio::test]
async fn noise_over_days_never_fires() {
    let end = T0 + 3 * DAY;
    let (_dir, store) = store_with(series("Bedrock.InvokeModel", T0, end, 15_000, 3, |_| 2.5)).await;
    let mut run = evaluator(&store, config("hour_of_week"), end - DAY).await;
    let told = run.sweep(end - DAY, end).await;
    assert!(told.is_empty(), "{told:?}");
    assert_eq!(run.status("Bedrock.InvokeModel").verdict, "normal");
}

/// A deploy made the call slower for good: `baseline reset` makes the new level the
/// baseline at once (and the recent window is then judged against what came after it).
#[tokio::test]
async fn a_baseline_reset_forgets_the_old_past() {
    let start = T0 + 8 * DAY;
    let deploy = start - 2 * HOUR;
    let (_dir, store) = store_with(series("Bedrock.InvokeModel", T0, start + HOUR, 20_000, 4, |t| if t >= deploy { 2.5 } else { 1.0 })).await;
    let mut before = evaluator(&store, config("none"), start).await;
    before.sweep(start, start + MIN).await;
    assert_eq!(before.status("Bedrock.InvokeModel").verdict, "regression");
    store.reset_baseline(GDSH, "Bedrock.InvokeModel", deploy).await.unwrap();
    let mut after = evaluator(&store, config("none"), start).await;
    let told = after.sweep(start, start + 30 * MIN).await;
    // The pending alert the first judgement stored clears, and nothing more is told.
    assert_eq!(told.iter().map(|x| x.1).collect::<Vec<_>>(), [Transition::Cleared], "{told:?}");
    let s = after.status("Bedrock.InvokeModel");
    assert_eq!(s.verdict, "normal", "{s:?}");
    assert!(s.baseline_from_ms.unwrap() >= deploy, "{s:?}");
}

/// Dev's Bedrock call slows down: X-Ray's `Bedrock.InvokeModel`, the TIMING line's
/// `BedrockCallDuration` (the same invocations, near-equal durations: a learned link) and the
/// invocation's `Lambda.Duration` all regress. One alert is told, under the X-Ray name, with
/// both names' evidence; the invocation's is explained by it and not told.
#[tokio::test]
async fn one_cause_is_one_alert_with_every_names_evidence() {
    let start = T0 + 8 * DAY;
    let slow_from = start + 10 * MIN;
    let mut events = Vec::new();
    let mut rng = SplitMix64(5);
    let mut t = T0;
    let mut i = 0u64;
    while t < start + HOUR {
        let call = ((if t >= slow_from { 2.4 } else { 1.0 }) * (0.3 * rng.normal()).exp() * 1000.0).round() / 1000.0;
        events.push(event("Bedrock.InvokeModel", Source::Xray, t, call, i));
        events.push(event("BedrockCallDuration", Source::Logs, t + 1, call + 0.001, i));
        events.push(event("Lambda.Duration", Source::Logs, t + 2, call + 0.2, i));
        t += 20_000;
        i += 1;
    }
    let (_dir, store) = store_with(events).await;
    let mut run = evaluator(&store, config("hour_of_week"), start).await;
    let mut told = Vec::new();
    let mut now = start;
    while now < start + HOUR {
        run.evaluator.evaluate(now).await.unwrap();
        while let Ok(n) = run.rx.try_recv() {
            if let Notification::Transition(e) = n {
                told.push(e);
            }
        }
        now += MIN;
    }
    let firing: Vec<_> = told.iter().filter(|e| e.state == Transition::Firing).collect();
    assert_eq!(firing.len(), 1, "one cause, one alert: {:#?}", told.iter().map(|e| (&e.operation, e.state)).collect::<Vec<_>>());
    let e = firing[0];
    assert_eq!((e.alertname(), e.operation.as_str()), ("LatencyRegression", "Bedrock.InvokeModel"));
    let names: Vec<&str> = e.evidence.iter().map(|x| x.operation.as_str()).collect();
    assert!(names.contains(&"Bedrock.InvokeModel") && names.contains(&"BedrockCallDuration"), "{e:#?}");
    assert_eq!(e.explains, ["Lambda.Duration"], "{e:#?}");
    let body = e.webhook_body("http://127.0.0.1:9750");
    assert_eq!(body["labels"]["alertname"], "LatencyRegression");
    assert!(body["labels"].get("budget").is_none());
    assert!(body["annotations"]["evidence"].as_str().unwrap().contains("BedrockCallDuration"), "{body}");
    assert!(body["annotations"]["ratio"].as_str().unwrap().parse::<f64>().unwrap() > 1.5, "{body}");
    // Every series still has its own judgement, with its cause named.
    let timing = run.status("BedrockCallDuration");
    assert_eq!((timing.verdict, timing.cause.as_str()), ("regression", "Bedrock.InvokeModel"), "{timing:?}");
    let invocation = run.status("Lambda.Duration");
    assert_eq!(invocation.explained_by.as_deref(), Some("Bedrock.InvokeModel"), "{invocation:?}");
}

/// The TIMING line's regression fires before X-Ray's side of the call is seen; when the
/// link is learned later, the alert receivers know keeps its name: still one firing, never
/// resolved and re-fired under the other name.
#[tokio::test]
async fn a_link_learned_after_firing_keeps_the_alert_receivers_know() {
    let start = T0 + 8 * DAY;
    let (slow_from, xray_from) = (start, start + 20 * MIN);
    let mut events = Vec::new();
    let mut rng = SplitMix64(6);
    let (mut t, mut i) = (T0, 0u64);
    while t < start + HOUR {
        let call = ((if t >= slow_from { 2.4 } else { 1.0 }) * (0.3 * rng.normal()).exp() * 1000.0).round() / 1000.0;
        events.push(event("BedrockCallDuration", Source::Logs, t + 1, call + 0.001, i));
        if t >= xray_from {
            events.push(event("Bedrock.InvokeModel", Source::Xray, t, call, i));
        }
        t += 20_000;
        i += 1;
    }
    let (_dir, store) = store_with(events).await;
    let mut run = evaluator(&store, config("hour_of_week"), start).await;
    let told = run.sweep(start, start + HOUR).await;
    let firing: Vec<_> = told.iter().filter(|x| x.1 == Transition::Firing).collect();
    assert_eq!(firing.len(), 1, "{told:?}");
    assert!(firing[0].0 < xray_from && firing[0].2 == "BedrockCallDuration", "{told:?}");
    assert!(!told.iter().any(|x| x.1 == Transition::Resolved), "{told:?}");
    assert_eq!(run.status("BedrockCallDuration").cause, "Bedrock.InvokeModel", "the link was learned meanwhile");
}
