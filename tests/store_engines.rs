//! The store's behaviour, written once and run on both engines: each test gets a fresh
//! SQLite file, then a fresh database on a throwaway PostgreSQL cluster, through the same
//! `Store` API the daemon, reports and API use. Idempotency and checkpoints, annotations,
//! the evaluator's reads and alert state, reports, CloudWatch watermarks, rollups and retention.
//! (What is particular to one engine — SQLite's compact rows and query plans, PostgreSQL's
//! fences and request limits — is tested next to it: `src/store/` and `tests/shared_store.rs`.)

mod common;

use common::postgres::Postgres;
use latency_sentinel::config::{BudgetConfig, Config};
use latency_sentinel::evaluate::run::Evaluator;
use latency_sentinel::metrics::Metrics;
use latency_sentinel::model::alert::{AlertState, Notification};
use latency_sentinel::model::{Checkpoint, Origin, Rejection, Source, TimingEvent};
use latency_sentinel::store::postgres::{PgStore, PgTarget};
use latency_sentinel::store::retention::RetentionPlan;
use latency_sentinel::store::rollups::{DAY_MS, HOUR_MS, Resolution, RollupFilter, RollupRow, RollupState, StepSummary, rollup_step};
use latency_sentinel::store::{Annotation, Batch, Destination, OpenMode, Store, StreamStateRow};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs `test` on a new SQLite file, then on a new PostgreSQL database (migrated as a
/// daemon migrates it); a failure names the engine.
fn on_both_engines<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let sqlite = Store::open(&dir.path().join("sentinel.db"), OpenMode::Writer, 4096).await.unwrap();
        run_named("sqlite", test(sqlite.clone())).await;
        sqlite.close().await;
        let url = pg.url();
        let target = PgTarget { url: &url, password: "", pool_size: 4, rejected_max_bytes: 4096, connect_timeout: Duration::from_secs(5) };
        let postgres = PgStore::connect(target).unwrap();
        postgres.migrate().await.unwrap();
        let postgres = Store::Postgres(postgres);
        run_named("postgres", test(postgres.clone())).await;
        postgres.close().await;
    });
}

async fn run_named(engine: &str, test: impl Future<Output = ()>) {
    use futures::FutureExt;
    if let Err(panic) = std::panic::AssertUnwindSafe(test).catch_unwind().await {
        eprintln!("failed on the {engine} engine");
        std::panic::resume_unwind(panic);
    }
}

fn timing(key: &str, time_ms: i64, env: &str, operation: &str, source: Source, duration_s: f64) -> TimingEvent {
    TimingEvent {
        time_ms,
        env: env.into(),
        function: "GenerateDynamicScenarioHandler".into(),
        operation: operation.into(),
        source,
        duration_s,
        request_id: None,
        trace_id: None,
        function_version: None,
        cold_start: false,
        error: false,
        idem_key: key.into(),
        attributes: vec![],
    }
}

// ---- Writes: idempotency, checkpoints, stream states, annotations ---------------------------

#[test]
fn the_same_page_twice_stores_once_and_its_checkpoint_never_moves_back() {
    on_both_engines(|store| async move {
        let page = |position_ms| Batch {
            events: vec![
                timing("a", 1_000, "PROD", "BedrockCallDuration", Source::Logs, 2.8),
                timing("b", 1_000, "PROD", "Lambda.Duration", Source::Report, 3.1),
                timing("a", 1_000, "PROD", "BedrockCallDuration", Source::Logs, 2.8),
            ],
            checkpoints: vec![Checkpoint { source: "logs".into(), key: "/aws/lambda/x".into(), position_ms, state: None }],
            stream_states: vec![StreamStateRow { log_group: "/aws/lambda/x".into(), stream: "s1".into(), state: format!("{{\"at\":{position_ms}}}") }],
            ..Batch::default()
        };
        let first = store.commit(&page(5)).await.unwrap();
        assert_eq!(first.inserted_total(), 2, "the same event twice in one page is stored once: {first:?}");
        let again = store.commit(&page(5)).await.unwrap();
        assert_eq!((again.inserted_total(), again.duplicates), (0, 3));
        assert_eq!(store.count_events(None).await.unwrap(), 2);
        assert_eq!(store.count_events(Some("report")).await.unwrap(), 1);
        assert_eq!(store.checkpoint("logs", "/aws/lambda/x").await.unwrap().unwrap().position_ms, 5);
        // A stale page (an older position) never moves the checkpoint back.
        store.commit(&page(3)).await.unwrap();
        assert_eq!(store.checkpoint("logs", "/aws/lambda/x").await.unwrap().unwrap().position_ms, 5);
        store.commit(&page(9)).await.unwrap();
        assert_eq!(store.checkpoints("logs").await.unwrap().iter().map(|c| c.position_ms).collect::<Vec<_>>(), [9]);
        let states = store.stream_states_of("/aws/lambda/x", &["s1", "nope"]).await.unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(store.event_count().await.unwrap(), 2);
        // Ids follow commit order and the evaluator reads each event once.
        let all = store.events_after(0, 100).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(store.events_after(all[1].id, 100).await.unwrap().is_empty());
        assert!(store.event_id_high_water().await.unwrap() >= all[1].id, "no id above the high water");
    });
}

#[test]
fn an_annotation_marks_its_invocations_timeout_once_and_reaches_only_it() {
    on_both_engines(|store| async move {
        let mut events = Vec::new();
        for (i, t) in [(0, 1_000), (1, 3_600_000), (2, 3_601_000)] {
            let mut e = timing(&format!("k{i}"), t, "PROD", "BedrockCallDuration", Source::Logs, 1.0 + i as f64);
            e.request_id = Some("req-1".into());
            events.push(e);
        }
        let mut report = timing("r", 3_601_500, "PROD", "Lambda.Duration", Source::Report, 4.0);
        report.request_id = Some("req-1".into());
        events.push(report);
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let annotation = Annotation {
            function: "GenerateDynamicScenarioHandler".into(),
            request_id: "req-1".into(),
            trace_id: Some("1-5d83c0ad-b8eb33a0b1de97d804fac890".into()),
            error: false,
            timeout: true,
            cold_start: true,
            from_ms: 3_600_000,
            to_ms: 3_602_000,
            in_batch: false,
        };
        let first = store.commit(&Batch { annotations: vec![annotation.clone()], ..Batch::default() }).await.unwrap();
        assert_eq!(first.timeouts_marked, [("PROD".to_string(), "GenerateDynamicScenarioHandler".to_string())]);
        let again = store.commit(&Batch { annotations: vec![annotation], ..Batch::default() }).await.unwrap();
        assert!(again.timeouts_marked.is_empty(), "a timeout is counted once");
        let filter = latency_sentinel::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, account: None, region: None, operations: &[] };
        let rows = store.slowest_events(filter, 10).await.unwrap();
        assert_eq!(rows.len(), 4);
        for r in &rows {
            let annotated = r.time_ms >= 3_600_000;
            assert_eq!(r.trace_id.is_some(), annotated, "only the annotated invocation's events: {r:?}");
            assert_eq!(r.cold_start, annotated, "{r:?}");
        }
    });
}

// ---- Alert state ----------------------------------------------------------------------------

fn budget_config() -> Arc<Config> {
    let mut c = Config::default();
    c.budgets.push(BudgetConfig {
        operation: "Bedrock.InvokeModel".into(),
        p95: Some(Duration::from_secs(5)),
        window: Duration::from_secs(60),
        for_: Duration::from_secs(20),
        keep_firing_for: Duration::from_secs(10),
        min_samples: 10,
        ..BudgetConfig::default()
    });
    Arc::new(c)
}

fn transitions_sent(rx: &mut tokio::sync::mpsc::Receiver<Notification>) -> Vec<&'static str> {
    let mut out = Vec::new();
    while let Ok(n) = rx.try_recv() {
        if let Notification::Transition(t) = n {
            out.push(t.state.name());
        }
    }
    out
}

/// The evaluator over either engine: a slow operation fires after `for`, a restarted
/// evaluator remembers it (no second notification), and it resolves after the slow events
/// leave the window and `keep_firing_for` passes; the transitions are stored.
#[test]
fn a_slow_operation_fires_after_for_survives_a_restart_and_resolves() {
    on_both_engines(|store| async move {
        let t0 = 1_000_000_000;
        let mut events = Vec::new();
        for i in 0..20 {
            let t = t0 + i * 1000;
            events.push(timing(&format!("d{i}"), t, "Dev", "Bedrock.InvokeModel", Source::Xray, 9.0));
            events.push(timing(&format!("p{i}"), t, "PROD", "Bedrock.InvokeModel", Source::Xray, 2.0));
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let shared = latency_sentinel::evaluate::Shared::default();
        let mut e = Evaluator::new(store.clone(), budget_config(), Metrics::new(), shared.clone(), Some(tx), None);
        let now = t0 + 20_000;
        let s = e.evaluate(now).await.unwrap();
        let dev = s.iter().find(|s| s.env == "Dev").unwrap();
        assert!(dev.breached && dev.state == AlertState::Pending, "{dev:?}");
        assert!(!s.iter().find(|s| s.env == "PROD").unwrap().breached);
        let s = e.evaluate(now + 20_000).await.unwrap();
        assert_eq!(s.iter().find(|s| s.env == "Dev").unwrap().state, AlertState::Firing);
        assert_eq!(transitions_sent(&mut rx), ["pending", "firing"]);

        let (tx2, mut rx2) = tokio::sync::mpsc::channel(100);
        let mut again = Evaluator::new(store.clone(), budget_config(), Metrics::new(), shared, Some(tx2), None);
        again.restore(now + 25_000).await.unwrap();
        let s = again.evaluate(now + 25_000).await.unwrap();
        assert_eq!(s.iter().find(|s| s.env == "Dev").unwrap().state, AlertState::Firing);
        assert!(transitions_sent(&mut rx2).is_empty(), "remembered, not fired again");
        again.evaluate(now + 70_000).await.unwrap();
        let s = again.evaluate(now + 81_000).await.unwrap();
        assert_eq!(s.iter().find(|s| s.env == "Dev").unwrap().state, AlertState::Inactive);
        assert_eq!(transitions_sent(&mut rx2), ["resolved"]);
        let history = store.alert_transitions(0, 10).await.unwrap();
        assert_eq!(history.iter().rev().map(|t| t.transition.as_str()).collect::<Vec<_>>(), ["pending", "firing", "resolved"]);
        assert!(store.alert_phases().await.unwrap().0.is_empty(), "nothing active is left stored");
    });
}

// ---- Reports --------------------------------------------------------------------------------

/// `report top` and `report compare` read the same answers from either engine: Dev's
/// Bedrock call three times slower than PROD's, every count exact.
#[test]
fn reports_rank_and_compare_from_either_engine() {
    use latency_sentinel::report::compare::{CompareQuery, Side, report as compare};
    use latency_sentinel::report::top::{Filter, top};
    on_both_engines(|store| async move {
        let t0 = 1_795_000_000_000;
        let mut events = Vec::new();
        for i in 0..200 {
            let t = t0 + i * 1_000;
            let jitter = (i % 10) as f64 / 10.0;
            events.push(timing(&format!("p{i}"), t, "PROD", "Bedrock.InvokeModel", Source::Xray, 2.0 + jitter));
            events.push(timing(&format!("d{i}"), t, "Dev", "Bedrock.InvokeModel", Source::Xray, 6.0 + jitter));
            events.push(timing(&format!("s{i}"), t, "Dev", "SecretsManager.GetSecretValue", Source::Xray, 0.05));
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let range = Filter { from_ms: t0, to_ms: t0 + 200_000, ..Filter::default() };
        let rows = top(&store, &range).await.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].env.as_str(), rows[0].operation.as_str(), rows[0].count), ("Dev", "Bedrock.InvokeModel", 200));
        assert!((rows[0].p95 - 6.9).abs() < 0.1, "{:?}", rows[0]);
        assert_eq!(rows.iter().map(|r| r.count).sum::<usize>(), 600);
        let dev_only = top(&store, &Filter { env: Some("Dev".into()), ..range.clone() }).await.unwrap();
        assert_eq!(dev_only.len(), 2);

        let side = |env: &str| Side { env: Some(env.into()), from_ms: t0, to_ms: t0 + 200_000 };
        let q = CompareQuery { baseline: side("PROD"), candidate: side("Dev"), function: None, account: None, region: None, group: true, operations: vec![] };
        let r = compare(&store, &q).await.unwrap();
        let bedrock = r.rows.iter().find(|r| r.operation == "Bedrock.InvokeModel").unwrap();
        assert_eq!((bedrock.baseline.count, bedrock.candidate.count), (200, 200));
        assert!(bedrock.significant, "{bedrock:?}");
        assert!(bedrock.change_pct.p95.unwrap() > 100.0, "{bedrock:?}");
    });
}

// ---- Retention ------------------------------------------------------------------------------

#[test]
fn retention_removes_only_what_is_past_its_bound() {
    on_both_engines(|store| async move {
        let events = (0..12_000).map(|i| timing(&format!("k{i}"), i, "PROD", "op", Source::Logs, 0.1)).collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        assert_eq!(store.purge_before(11_000).await.unwrap(), 11_000);
        assert_eq!(store.count_events(None).await.unwrap(), 1_000);
        assert_eq!(store.oldest_event_ms().await.unwrap(), Some(11_000));

        let now = latency_sentinel::clock::now_ms();
        let rejections: Vec<Rejection> = (0..110)
            .map(|i| Rejection { time_ms: now, source: "logs".into(), origin: format!("g|s|{i}"), reason: "invalid_json", detail: String::new(), raw: "x".into() })
            .collect();
        store.commit(&Batch { rejections, origin: Origin::default(), ..Batch::default() }).await.unwrap();
        let plan = RetentionPlan {
            events_before_ms: 11_500,
            transitions_before_ms: 0,
            streams_idle_before_ms: 0,
            rejected_max_rows: 100,
            transitions_max_rows: 100,
        };
        let p = store.purge(&plan).await.unwrap();
        assert_eq!((p.events, p.rejected), (500, 10), "{p:?}");
        assert_eq!(store.count_events(None).await.unwrap(), 500);
        assert_eq!(store.purge(&plan).await.unwrap().total(), 0, "a second pass finds nothing more");
    });
}

// ---- CloudWatch watermarks ------------------------------------------------------------------

const ALL: Destination<'static> = Destination { name: "", origin: None };

fn event(key: &str, time_ms: i64) -> TimingEvent {
    TimingEvent { function: "f".into(), ..timing(key, time_ms, "PROD", "op", Source::Logs, 0.25) }
}

async fn store_events(store: &Store, keys: &[(&str, i64)]) {
    let events = keys.iter().map(|(k, t)| event(k, *t)).collect();
    store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
}

#[test]
fn watermark_reads_only_newer_ids_and_moves_by_compare_and_set() {
    on_both_engines(|store| async move {
        store_events(&store, &[("a", 5_000), ("b", 6_000), ("c", 7_000)]).await;
        let u = store.unpublished_events(ALL, 2).await.unwrap();
        assert_eq!(u.watermark, 0);
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(store.advance_published("", 0, 2).await.unwrap());
        assert!(!store.advance_published("", 0, 3).await.unwrap(), "a stale `from` changes nothing");
        // A late event with an older time gets a newer id: still published.
        store_events(&store, &[("late", 1_000)]).await;
        let u = store.unpublished_events(ALL, 100).await.unwrap();
        assert_eq!(u.watermark, 2);
        assert_eq!(u.events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(3, 7_000), (4, 1_000)]);
    });
}

#[test]
fn ids_are_never_reused_after_retention_and_a_watermark_ahead_is_reset() {
    on_both_engines(|store| async move {
        store_events(&store, &[("a", 100_000), ("b", 100_000), ("old", 1_000)]).await;
        assert!(store.advance_published("", 0, 3).await.unwrap());
        // Retention removes the highest id (an old event stored late), then the whole table:
        // the next event still gets a new id, above the watermark.
        store.purge_before(50_000).await.unwrap();
        store_events(&store, &[("new", 200_000)]).await;
        let u = store.unpublished_events(ALL, 100).await.unwrap();
        assert_eq!((u.watermark, u.reset_from), (3, None));
        assert_eq!(u.events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(4, 200_000)]);
        store.purge_before(i64::MAX).await.unwrap();
        store_events(&store, &[("after-empty", 300_000)]).await;
        let u = store.unpublished_events(ALL, 100).await.unwrap();
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5], "the emptied table's next id is new too");
        // A watermark above every id ever handed out (a replaced database) is moved down to
        // the newest id, and says so.
        assert!(store.advance_published("", 3, 1_000).await.unwrap());
        let u = store.unpublished_events(ALL, 100).await.unwrap();
        assert_eq!((u.watermark, u.reset_from, u.events.len()), (5, Some(1_000), 0));
        store_events(&store, &[("next", 400_000)]).await;
        let u = store.unpublished_events(ALL, 100).await.unwrap();
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![6]);
    });
}

#[test]
fn a_destination_reads_only_its_origins_events_and_moves_past_the_others() {
    on_both_engines(|store| async move {
        for (account, keys) in [("prod", ["p1", "p2"]), ("dev", ["d1", "d2"]), ("prod", ["p3", "p4"])] {
            let events = keys.iter().map(|k| event(k, 5_000)).collect();
            let origin = Origin { account: account.into(), region: "eu-west-1".into() };
            store.commit(&Batch { events, origin, ..Batch::default() }).await.unwrap();
        }
        let prod = Destination { name: "prod/eu-west-1", origin: Some(("prod", "eu-west-1")) };
        let u = store.unpublished_events(prod, 100).await.unwrap();
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 5, 6]);
        assert!(u.events.iter().all(|e| e.account == "prod" && e.region == "eu-west-1"));
        assert_eq!(u.scanned_to, 6);
        let dev = Destination { name: "dev/eu-west-1", origin: Some(("dev", "eu-west-1")) };
        let u = store.unpublished_events(dev, 1).await.unwrap();
        assert_eq!((u.events.len(), u.scanned_to), (1, 3), "a full read scanned only up to its last event");
        let u = store.unpublished_events(dev, 100).await.unwrap();
        assert_eq!(u.scanned_to, 6, "past prod's later events, which are not dev's to send");
        assert!(store.advance_published("dev/eu-west-1", 0, 6).await.unwrap());
        assert!(store.unpublished_events(dev, 100).await.unwrap().events.is_empty());
        assert_eq!(store.unpublished_events(ALL, 100).await.unwrap().events.len(), 6, "each destination keeps its own watermark");
    });
}

// ---- Rollups --------------------------------------------------------------------------------

fn rollup_event(key: &str, time_ms: i64, env: &str, op: &str, duration_s: f64) -> TimingEvent {
    TimingEvent {
        cold_start: key.ends_with('c'),
        attributes: if key.ends_with('t') { vec![("status".into(), "timeout".into())] } else { vec![] },
        ..timing(key, time_ms, env, op, Source::Report, duration_s)
    }
}

const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

async fn day_rows(store: &Store, day_ms: i64) -> Vec<RollupRow> {
    let mut rows = Vec::new();
    let bad = store.scan_rollups(Resolution::Day, day_ms, day_ms + 1, &RollupFilter::default(), |_, r| rows.push(r)).await.unwrap();
    assert_eq!(bad, 0);
    rows
}

#[test]
fn hours_roll_as_they_close_late_events_roll_again_and_days_merge() {
    on_both_engines(|store| async move {
        let token = CancellationToken::new();
        let day = Duration::from_secs(86_400);
        // 26 hours of events: one per 10 minutes, Lambda.Duration 1..=156 s.
        let events: Vec<TimingEvent> = (0..156)
            .map(|i| {
                let suffix = match i % 12 {
                    0 => "c",
                    1 => "t",
                    _ => "",
                };
                rollup_event(&format!("e{i}{suffix}"), T0 + i * 600_000, "PROD", "Lambda.Duration", (i + 1) as f64)
            })
            .collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        // 25h30m after T0 hours 0..=24 are closed.
        let now = T0 + 25 * HOUR_MS + 1_800_000;

        let s = rollup_step(&store, now, 30 * day, 400 * day, &token).await.unwrap();
        assert_eq!((s.new_hours, s.late_hours, s.days), (25, 0, 1));
        let periods = store.rollup_periods(T0, T0 + 2 * DAY_MS).await.unwrap();
        assert_eq!(periods.iter().filter(|p| p.0 == Resolution::Hour).count(), 25);
        assert_eq!(periods.iter().filter(|p| p.0 == Resolution::Day).collect::<Vec<_>>(), [&(Resolution::Day, T0)]);
        let rows = day_rows(&store, T0).await;
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.counts.count, r.counts.min, r.counts.max, r.counts.sum), (144, 1.0, 144.0, (1..=144).sum::<i64>() as f64));
        assert_eq!((r.counts.cold_starts, r.counts.timeouts), (12, 12));
        let p95 = r.sketch.quantile(0.95).unwrap();
        assert!((p95 - 137.0).abs() <= 1.37, "{p95}");

        // Nothing new: a second pass does nothing.
        let s = rollup_step(&store, now + 1_000, 30 * day, 400 * day, &token).await.unwrap();
        assert_eq!(s, StepSummary::default());

        // A late event for hour 3 arrives: hour 3 and its day are rolled again.
        store
            .commit(&Batch { events: vec![rollup_event("late", T0 + 3 * HOUR_MS + 5, "PROD", "Lambda.Duration", 1000.0)], ..Batch::default() })
            .await
            .unwrap();
        let s = rollup_step(&store, now + 120_000, 30 * day, 400 * day, &token).await.unwrap();
        assert_eq!((s.new_hours, s.late_hours, s.days), (0, 1, 1), "{s:?}");
        let rows = day_rows(&store, T0).await;
        assert_eq!((rows[0].counts.count, rows[0].counts.max), (145, 1000.0));

        // A day later with a one-day rollup retention: the next 24 hours are rolled, day 2
        // merged, and whole periods that ended a day ago are gone.
        let later = T0 + 2 * DAY_MS + HOUR_MS;
        let s = rollup_step(&store, later, 30 * day, day, &token).await.unwrap();
        assert_eq!((s.new_hours, s.days), (24, 1), "{s:?}");
        assert!(s.purged > 0);
        let left = store.rollup_periods(0, i64::MAX).await.unwrap();
        assert!(left.iter().all(|(res, start)| start + res.ms() > later - DAY_MS), "{left:?}");
        assert_eq!(day_rows(&store, T0 + DAY_MS).await[0].counts.count, 12);
    });
}

#[test]
fn an_empty_store_starts_at_the_current_hour() {
    on_both_engines(|store| async move {
        let token = CancellationToken::new();
        let s = rollup_step(&store, T0 + 1_000, Duration::from_secs(3600), Duration::from_secs(86_400), &token).await.unwrap();
        assert_eq!(s, StepSummary::default());
        assert_eq!(store.rollup_state().await.unwrap().unwrap().closed_until_ms, T0);
        let s = rollup_step(&store, T0 + HOUR_MS + 1_000, Duration::from_secs(3600), Duration::from_secs(86_400), &token).await.unwrap();
        assert_eq!(s.new_hours, 1);
        assert_eq!(store.rollup_periods(T0, T0 + 1).await.unwrap(), [(Resolution::Hour, T0)]);
    });
}

#[test]
fn a_watermark_ahead_of_the_database_is_reset_and_late_hours_still_roll() {
    on_both_engines(|store| async move {
        let token = CancellationToken::new();
        let day = Duration::from_secs(86_400);
        let now = T0 + 3 * HOUR_MS + 1_000;
        store.commit(&Batch { events: vec![rollup_event("a", T0 + 5, "PROD", "Lambda.Duration", 1.0)], ..Batch::default() }).await.unwrap();
        rollup_step(&store, now, 30 * day, 400 * day, &token).await.unwrap();
        // The database is swapped for one whose ids are behind the saved watermark.
        store.save_rollup_state(RollupState { closed_until_ms: T0 + 3 * HOUR_MS, watermark_id: 1_000 }).await.unwrap();
        store.commit(&Batch { events: vec![rollup_event("b", T0 + HOUR_MS + 5, "PROD", "Lambda.Duration", 7.0)], ..Batch::default() }).await.unwrap();
        let s = rollup_step(&store, now + 1_000, 30 * day, 400 * day, &token).await.unwrap();
        assert!(s.watermark_reset, "{s:?}");
        assert!(s.late_hours >= 1, "the hour of the event stored after the swap is rolled: {s:?}");
        let mut rows = Vec::new();
        store.scan_rollups(Resolution::Hour, T0 + HOUR_MS, T0 + 2 * HOUR_MS, &RollupFilter::default(), |_, r| rows.push(r)).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.counts.count).sum::<u64>(), 1);
        assert_eq!(store.rollup_state().await.unwrap().unwrap().watermark_id, 2);
        assert!(!rollup_step(&store, now + 2_000, 30 * day, 400 * day, &token).await.unwrap().watermark_reset);
    });
}

// ---- Learned baselines: resets, and the invocations links are learned from ------------------

/// A reset is kept per (function, operation) and a later one replaces it; the newest events
/// of known invocations come newest first, each with its source and request id, and events
/// without an invocation are left out.
#[test]
fn baseline_resets_and_invocation_events() {
    on_both_engines(|store| async move {
        assert!(store.baseline_resets().await.unwrap().is_empty());
        store.reset_baseline("GDSH", "Bedrock.InvokeModel", 1_000).await.unwrap();
        store.reset_baseline("GDSH", "Bedrock.InvokeModel", 2_000).await.unwrap();
        store.reset_baseline("ULH", "Salesforce.UpdateLead", 500).await.unwrap();
        let resets: Vec<(String, String, i64)> = store.baseline_resets().await.unwrap().into_iter().map(|r| (r.function, r.operation, r.reset_ms)).collect();
        assert_eq!(resets, [("GDSH".into(), "Bedrock.InvokeModel".into(), 2_000), ("ULH".into(), "Salesforce.UpdateLead".into(), 500)]);

        let mut events = Vec::new();
        for i in 0..5i64 {
            let mut x = timing(&format!("x{i}"), 10_000 + i * 1_000, "Dev", "Bedrock.InvokeModel", Source::Xray, 2.0);
            x.request_id = Some(format!("req-{i}"));
            let mut l = timing(&format!("l{i}"), 10_000 + i * 1_000 + 1, "Dev", "BedrockCallDuration", Source::Logs, 2.0);
            l.request_id = Some(format!("req-{i}"));
            events.extend([x, l]);
        }
        events.push(timing("alone", 20_000, "Dev", "Overhead", Source::Xray, 0.1));
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let filter = latency_sentinel::store::events::EventFilter { from_ms: 0, to_ms: 100_000, env: None, function: None, account: None, region: None, operations: &[] };
        let rows = store.newest_invocation_events(filter, 4).await.unwrap();
        let got: Vec<(i64, &str, &str, Option<&str>)> = rows.iter().map(|r| (r.time_ms, r.operation.as_str(), r.source.as_str(), r.request_id.as_deref())).collect();
        assert_eq!(
            got,
            [
                (14_001, "BedrockCallDuration", "logs", Some("req-4")),
                (14_000, "Bedrock.InvokeModel", "xray", Some("req-4")),
                (13_001, "BedrockCallDuration", "logs", Some("req-3")),
                (13_000, "Bedrock.InvokeModel", "xray", Some("req-3")),
            ]
        );
    });
}
