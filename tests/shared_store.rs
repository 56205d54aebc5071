//! The PostgreSQL store's write path against a real PostgreSQL: a batch is idempotent,
//! its checkpoint commits with its events and never moves back, later facts reach stored
//! events, and a batch written under a lease its node lost writes nothing.

mod common;

use common::postgres::Postgres;
use latency_sentinel::model::{Checkpoint, Origin, Rejection, Source, TimingEvent};
use latency_sentinel::store::postgres::write::Fence;
use latency_sentinel::store::postgres::{PgStore, PgTarget};
use latency_sentinel::store::{Annotation, Batch, StoreError};
use std::time::Duration;

fn store(pg: &Postgres) -> PgStore {
    let url = pg.url();
    PgStore::connect(PgTarget { url: &url, password: "", pool_size: 4, rejected_max_bytes: 16, connect_timeout: Duration::from_secs(5) })
        .unwrap()
}

fn event(i: i64, operation: &str, request_id: &str) -> TimingEvent {
    TimingEvent {
        time_ms: 1_795_000_000_000 + i * 1_000,
        env: "Dev".into(),
        function: "GenerateDynamicScenarioHandler".into(),
        operation: operation.into(),
        source: Source::Logs,
        duration_s: 1.0 + i as f64 / 100.0,
        request_id: Some(request_id.into()),
        trace_id: None,
        function_version: None,
        cold_start: false,
        error: false,
        idem_key: format!("logs|/aws/lambda/GDSH|stream|{i}|{operation}"),
        attributes: vec![("model".into(), "claude".into())],
    }
}

fn batch(events: Vec<TimingEvent>, position_ms: i64) -> Batch {
    Batch {
        origin: Origin { account: "prod".into(), region: "eu-west-1".into() },
        events,
        checkpoints: vec![Checkpoint { source: "logs".into(), key: "prod|eu-west-1|/aws/lambda/GDSH".into(), position_ms, state: None }],
        ..Batch::default()
    }
}

#[test]
fn batches_are_idempotent_checkpointed_annotated_and_fenced() {
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let s = store(&pg);
    rt.block_on(async {
        s.migrate().await.unwrap();
        let events: Vec<TimingEvent> = (0..500).map(|i| event(i, if i % 2 == 0 { "BedrockCallDuration" } else { "SecretsManagerDuration" }, &format!("req-{}", i / 2))).collect();
        let mut first = batch(events.clone(), 2_000);
        first.events.push(events[3].clone()); // the same event twice in one page
        first.rejections.push(Rejection {
            time_ms: 1,
            source: "logs".into(),
            origin: "/aws/lambda/GDSH stream 1".into(),
            reason: "bad_value",
            detail: "NaN".into(),
            raw: "x".repeat(100),
        });
        let out = s.commit(&first, None).await.unwrap();
        assert_eq!((out.inserted, out.duplicates, out.rejected), (vec![(Source::Logs, 500)], 1, 1));
        // The same page again (an overlap re-read, a restart): nothing new; the checkpoint
        // does not move back.
        let again = s.commit(&batch(events[..300].to_vec(), 1_000), None).await.unwrap();
        assert_eq!((again.inserted, again.duplicates), (vec![(Source::Logs, 0)], 300));
        assert_eq!(s.checkpoint("logs", "prod|eu-west-1|/aws/lambda/GDSH").await.unwrap().map(|c| c.position_ms), Some(2_000));
        let counts = s.event_counts().await.unwrap();
        assert_eq!(counts.get("prod|eu-west-1|Dev|GenerateDynamicScenarioHandler|BedrockCallDuration|logs"), Some(&250));
        assert_eq!(counts.values().sum::<i64>(), 500);

        // A REPORT seen later tells the trace id and a cold start of req-7's events.
        let late = Batch {
            annotations: vec![Annotation {
                function: "GenerateDynamicScenarioHandler".into(),
                request_id: "req-7".into(),
                trace_id: Some("1-5759e988-bd862e3fe1be46a994272793".into()),
                error: false,
                timeout: false,
                cold_start: true,
                from_ms: 1_795_000_000_000,
                to_ms: 1_795_000_100_000,
                in_batch: false,
            }],
            ..Batch::default()
        };
        s.commit(&late, None).await.unwrap();
        let traced = s.annotated("req-7").await.unwrap();
        assert_eq!(traced, vec![(Some("1-5759e988-bd862e3fe1be46a994272793".to_string()), 2); 2], "both of req-7's events, cold");

        // Under a lease: written while held; refused, with nothing written, once lost.
        s.lease_round("a", &["logs/prod/eu-west-1//aws/lambda/GDSH".to_string()], Duration::from_secs(5)).await.unwrap();
        let taken = s.take_leases("a", 1, Duration::from_secs(5)).await.unwrap();
        let fence = Fence { unit: taken[0].0.clone(), holder: "a".into(), epoch: taken[0].1 };
        let more: Vec<TimingEvent> = (500..510).map(|i| event(i, "BedrockCallDuration", "req-x")).collect();
        assert_eq!(s.commit(&batch(more.clone(), 3_000), Some(&fence)).await.unwrap().inserted, vec![(Source::Logs, 10)]);
        s.release_leases("a", &[fence.unit.clone()]).await.unwrap();
        let stale: Vec<TimingEvent> = (510..520).map(|i| event(i, "BedrockCallDuration", "req-y")).collect();
        match s.commit(&batch(stale, 4_000), Some(&fence)).await {
            Err(StoreError::LostLease(unit)) => assert_eq!(unit, fence.unit),
            other => panic!("expected LostLease, got {other:?}"),
        }
        assert_eq!(s.event_counts().await.unwrap().values().sum::<i64>(), 510, "nothing of the refused batch");
        assert_eq!(s.checkpoint("logs", "prod|eu-west-1|/aws/lambda/GDSH").await.unwrap().map(|c| c.position_ms), Some(3_000));
    });
}

/// The same batches into the SQLite store and the PostgreSQL store: every read ported so far
/// answers the same. Ids are both in commit order but not the same numbers (SQLite's write
/// path spends ids on duplicates it skips), so events are compared without them.
#[test]
fn both_engines_answer_the_same() {
    use latency_sentinel::store::StreamStateRow;
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let p = store(&pg);
    rt.block_on(async {
        p.migrate().await.unwrap();
        let s = latency_sentinel::store::Store::open_memory().await.unwrap();
        let pages: Vec<Batch> = (0..4)
            .map(|n| {
                let events = (n * 100..n * 100 + 150).map(|i| event(i, "BedrockCallDuration", &format!("req-{i}"))).collect();
                let mut b = batch(events, 1_000 * (n + 1));
                b.stream_states.push(StreamStateRow { log_group: "/aws/lambda/GDSH".into(), stream: format!("s{n}"), state: format!("{{\"n\":{n}}}") });
                b
            })
            .collect();
        for b in &pages {
            let (a, c) = (s.commit(b).await.unwrap(), p.commit(b, None).await.unwrap());
            assert_eq!((a.inserted, a.duplicates), (c.inserted, c.duplicates));
        }
        assert_eq!(s.count_events(None).await.unwrap(), p.count_events(None).await.unwrap());
        assert_eq!(s.count_events(Some("logs")).await.unwrap(), 450);
        assert_eq!(p.count_events(Some("logs")).await.unwrap(), 450);
        let without_ids = |v: Vec<latency_sentinel::store::events::WindowEvent>| {
            assert!(v.windows(2).all(|w| w[0].id < w[1].id), "in id order");
            v.into_iter().map(|e| latency_sentinel::store::events::WindowEvent { id: 0, ..e }).collect::<Vec<_>>()
        };
        let (all_s, all_p) = (s.events_after(0, 10_000).await.unwrap(), p.events_after(0, 10_000).await.unwrap());
        assert!(s.event_id_high_water().await.unwrap() >= all_s.last().unwrap().id);
        assert_eq!(p.event_id_high_water().await.unwrap(), all_p.last().unwrap().id, "no gaps on PostgreSQL");
        assert_eq!(without_ids(all_s.clone()), without_ids(all_p.clone()));
        assert_eq!(s.checkpoints("logs").await.unwrap(), p.checkpoints("logs").await.unwrap());
        let streams = ["s0", "s2", "nope"];
        assert_eq!(s.stream_states_of("/aws/lambda/GDSH", &streams).await.unwrap(), p.stream_states_of("/aws/lambda/GDSH", &streams).await.unwrap());
        // The 101st to 150th event, and the events from a time on up to the 400th: the same.
        let (a, b) = (s.events_after(all_s[99].id, 50).await.unwrap(), p.events_after(all_p[99].id, 50).await.unwrap());
        assert_eq!(a.len(), 50);
        assert_eq!(without_ids(a), without_ids(b));
        let from = 1_795_000_000_000 + 300_000;
        let (a, b) = (s.events_from(from, all_s[399].id).await.unwrap(), p.events_from(from, all_p[399].id).await.unwrap());
        assert!(!a.is_empty());
        assert_eq!(without_ids(a), without_ids(b));

        // Alert state and transitions: the same statements on both engines.
        use latency_sentinel::model::alert::{Phase, Transition};
        use latency_sentinel::store::alerts::AlertRow;
        let firing = AlertRow {
            key: "bedrock-p95|prod|eu-west-1|Dev|GDSH|Bedrock.InvokeModel".into(),
            budget: "bedrock-p95".into(),
            account: "prod".into(),
            region: "eu-west-1".into(),
            env: "Dev".into(),
            function: "GDSH".into(),
            operation: "Bedrock.InvokeModel".into(),
            quantile: 0.95,
            phase: Phase::Firing { active_at: 1, fired_at: 2, last_breach: 3 },
            value_s: Some(9.5),
            budget_s: 5.0,
            samples: 42,
            severity: "warning".into(),
        };
        let pending = AlertRow { key: "other".into(), phase: Phase::Pending { active_at: 5 }, value_s: None, ..firing.clone() };
        let resolved = AlertRow { phase: Phase::Inactive, ..pending.clone() };
        for (changed, transitions, now) in [
            (vec![firing.clone(), pending.clone()], vec![(2, &firing, Transition::Firing), (5, &pending, Transition::Pending)], 5),
            (vec![resolved.clone()], vec![(9, &resolved, Transition::Resolved)], 9),
        ] {
            s.save_alerts(&changed, &transitions, now, None).await.unwrap();
            p.save_alerts(&changed, &transitions, now, None).await.unwrap();
        }
        let phases = s.alert_phases().await.unwrap();
        assert_eq!(phases, (vec![(firing.key.clone(), firing.phase)], vec![]));
        assert_eq!(p.alert_phases().await.unwrap(), phases);
        let transitions = s.alert_transitions(0, 10).await.unwrap();
        assert_eq!(transitions.iter().map(|t| t.transition.as_str()).collect::<Vec<_>>(), ["resolved", "pending", "firing"]);
        assert_eq!(p.alert_transitions(0, 10).await.unwrap(), transitions);

        // Alias history: unchanged routes extend a span, changed ones open one.
        let route = |a: &str, v: &str, w: f64| (a.to_string(), v.to_string(), w);
        for (routes, now) in [
            (vec![route("PROD", "3", 1.0), route("Dev", "4", 1.0)], 100),
            (vec![route("PROD", "3", 1.0), route("Dev", "4", 1.0)], 200),
            (vec![route("PROD", "3", 1.0), route("Dev", "5", 0.9), route("Dev", "4", 0.1)], 300),
        ] {
            s.record_aliases("prod|eu-west-1|GDSH", &routes, now).await.unwrap();
            p.record_aliases("prod|eu-west-1|GDSH", &routes, now).await.unwrap();
        }
        let history = s.alias_history_under("prod|eu-west-1|").await.unwrap();
        assert_eq!(history.by_function["GDSH"].len(), 4, "{history:?}");
        assert_eq!(format!("{:?}", p.alias_history_under("prod|eu-west-1|").await.unwrap()), format!("{history:?}"));

        // CloudWatch watermarks: the same events pending, the same moves.
        use latency_sentinel::store::Destination;
        let dest = Destination { name: "prod/eu-west-1", origin: Some(("prod", "eu-west-1")) };
        let (a, b) = (s.unpublished_events(dest, 100).await.unwrap(), p.unpublished_events(dest, 100).await.unwrap());
        assert_eq!((a.watermark, a.events.len(), b.watermark, b.events.len()), (0, 100, 0, 100));
        let strip = |v: Vec<latency_sentinel::store::published::PendingEvent>| v.into_iter().map(|e| (e.time_ms, e.operation, e.duration_s, e.account)).collect::<Vec<_>>();
        assert_eq!(strip(a.events.clone()), strip(b.events.clone()));
        assert!(s.advance_published(dest.name, 0, a.scanned_to).await.unwrap() && p.advance_published(dest.name, 0, b.scanned_to).await.unwrap());
        assert!(!p.advance_published(dest.name, 0, 5).await.unwrap(), "a stale `from` changes nothing");
        let (a, b) = (s.unpublished_events(dest, 1_000).await.unwrap(), p.unpublished_events(dest, 1_000).await.unwrap());
        assert_eq!(a.events.len(), 350);
        assert_eq!(strip(a.events), strip(b.events));

        // X-Ray poll steps: paths, trace states (a finished trace never goes back to
        // pending), the checkpoint; then the purge.
        use latency_sentinel::store::traces::{AttributionRow, TraceRecord, TraceState, TraceUpdate};
        let record = |state, refetches| TraceRecord { state, refetches, partial: false };
        let update = |id: &str, state, refetches| TraceUpdate { trace_id: id.into(), record: record(state, refetches) };
        let path = |id: &str| AttributionRow {
            trace_id: id.into(),
            root_name: "AtlasEngineWorkflow".into(),
            start_ms: 1_000,
            total_s: 12.5,
            shape_json: "[[\"GDSH\",\"Bedrock.InvokeModel\",0]]".into(),
            self_us: vec![9_000_000, 3_500_000],
            envs_json: "[[\"GDSH\",\"Dev\",1]]".into(),
        };
        let origin = Origin { account: "prod".into(), region: "eu-west-1".into() };
        let step = Batch { origin, ..Batch::default() };
        let checkpoint = Checkpoint { source: "xray".into(), key: "prod|eu-west-1|traces".into(), position_ms: 7_000, state: None };
        let ids = ["1-5759e988-bd862e3fe1be46a994272793", "1-5759e988-bd862e3fe1be46a994272794", "1-5759e988-bd862e3fe1be46a994272795"];
        let updates = [update(ids[0], TraceState::Complete, 0), update(ids[1], TraceState::Pending, 1), update(ids[2], TraceState::Pending, 0)];
        s.commit_traces(&step, &[path(ids[0])], &updates, Some(&checkpoint)).await.unwrap();
        p.commit_traces(&step, &[path(ids[0])], &updates, Some(&checkpoint), None).await.unwrap();
        // A stale fetch says pending again for the complete one: ignored.
        let stale = [update(ids[0], TraceState::Pending, 3)];
        s.commit_traces(&step, &[], &stale, None).await.unwrap();
        p.commit_traces(&step, &[], &stale, None, None).await.unwrap();
        let all: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        let records = s.trace_records(&all).await.unwrap();
        assert_eq!(records[ids[0]].state, TraceState::Complete);
        assert_eq!(p.trace_records(&all).await.unwrap(), records);
        assert_eq!(s.pending_traces_under("1-5759").await.unwrap(), p.pending_traces_under("1-5759").await.unwrap());
        assert_eq!((s.count_pending_traces().await.unwrap(), p.count_pending_traces().await.unwrap()), (2, 2));
        assert_eq!(s.checkpoint("xray", "prod|eu-west-1|traces").await.unwrap(), p.checkpoint("xray", "prod|eu-west-1|traces").await.unwrap());
        assert_eq!(s.purge_traces_before(i64::MAX).await.unwrap(), p.purge_traces_before(i64::MAX).await.unwrap(), "the path and the finished trace");

        // Rollups: the hours of the stored events, a day once its 24 hours are rolled, the
        // periods, the task's state, the purge.
        use latency_sentinel::store::rollups::{DAY_MS, HOUR_MS, Resolution, RollupFilter, RollupState, floor_to};
        let day = floor_to(1_795_000_000_000, DAY_MS);
        for h in 0..24 {
            assert_eq!(s.roll_hour(day + h * HOUR_MS).await.unwrap(), p.roll_hour(day + h * HOUR_MS).await.unwrap());
        }
        assert!(s.roll_day(day).await.unwrap() && p.roll_day(day).await.unwrap());
        let rows = |store_rows: &mut Vec<(i64, String, u64, f64, Option<f64>)>| store_rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for res in [Resolution::Hour, Resolution::Day] {
            s.scan_rollups(res, day, day + DAY_MS, &RollupFilter::default(), |t, r| a.push((t, r.operation.clone(), r.counts.count, r.counts.sum, r.sketch.quantile(0.95)))).await.unwrap();
            p.scan_rollups(res, day, day + DAY_MS, &RollupFilter::default(), |t, r| b.push((t, r.operation.clone(), r.counts.count, r.counts.sum, r.sketch.quantile(0.95)))).await.unwrap();
        }
        rows(&mut a);
        rows(&mut b);
        assert!(a.iter().any(|r| r.2 > 0), "{a:?}");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.0, &x.1, x.2, x.4), (y.0, &y.1, y.2, y.4));
            assert!((x.3 - y.3).abs() < 1e-9);
        }
        assert_eq!(s.rollup_periods(day, day + DAY_MS).await.unwrap(), p.rollup_periods(day, day + DAY_MS).await.unwrap());
        assert_eq!(s.raw_hour_complete(day).await.unwrap(), p.raw_hour_complete(day).await.unwrap());
        assert_eq!(s.oldest_event_ms().await.unwrap(), p.oldest_event_ms().await.unwrap());
        let state = RollupState { closed_until_ms: day + DAY_MS, watermark_id: 7 };
        p.save_rollup_state(state).await.unwrap();
        assert_eq!(p.rollup_state().await.unwrap(), Some(state));
        assert_eq!(s.purge_rollups_before(i64::MAX / 2).await.unwrap(), p.purge_rollups_before(i64::MAX / 2).await.unwrap());

        // Report reads: a range folded per series, and the slowest invocations.
        use latency_sentinel::store::events::{EventFilter, EventOrder, EventSelection, ScanColumns};
        let ops = vec!["BedrockCallDuration".to_string()];
        let sel = EventSelection { from_ms: 1_795_000_050_000, to_ms: 1_795_000_400_000, env: Some("Dev"), function: None, account: Some("prod"), region: None, operations: &ops };
        let fold = |m: &mut std::collections::BTreeMap<String, (u64, i64)>, e: &latency_sentinel::store::events::ScannedEvent<'_>| {
            let k = format!("{}|{}", String::from_utf8_lossy(e.account), String::from_utf8_lossy(e.operation));
            let v = m.entry(k).or_default();
            v.0 += 1;
            v.1 += (e.duration_s * 1e6).round() as i64 + e.time_ms;
        };
        let cols = ScanColumns { time: true, invocations: true };
        let merge = |parts: Vec<(std::collections::BTreeMap<String, (u64, i64)>, u64)>| {
            let mut all = std::collections::BTreeMap::new();
            for (m, _) in parts {
                for (k, (n, x)) in m {
                    let e: &mut (u64, i64) = all.entry(k).or_default();
                    e.0 += n;
                    e.1 += x;
                }
            }
            all
        };
        let a = merge(s.scan_events(&sel, cols, Default::default, fold).await.unwrap());
        let b = merge(p.scan_events(&sel, cols, Default::default, fold).await.unwrap());
        assert_eq!(a.values().map(|v| v.0).sum::<u64>(), 350, "{a:?}");
        assert_eq!(a, b);
        let filter = EventFilter { from_ms: 0, to_ms: i64::MAX, env: Some("Dev"), account: Some("prod"), operations: &["BedrockCallDuration"], ..EventFilter::default() };
        let (x, y) = (s.slowest_events(filter, 5).await.unwrap(), p.list_events(filter, EventOrder::Slowest, 5).await.unwrap());
        assert_eq!(x.len(), 5);
        assert_eq!(x, y);
        let (x, y) = (s.newest_invocation_events(filter, 5).await.unwrap(), p.list_events(filter, EventOrder::NewestOfInvocations, 5).await.unwrap());
        assert_eq!(x, y);

        // Bottleneck reads over critical paths of two workflows, with an env filter.
        use latency_sentinel::store::attribution::TraceRange;
        let paths: Vec<AttributionRow> = (0..12)
            .map(|i| AttributionRow {
                trace_id: format!("1-5759e9{i:02x}-bd862e3fe1be46a994272793"),
                root_name: if i % 3 == 0 { "Other" } else { "AtlasEngineWorkflow" }.into(),
                start_ms: 2_000 + i,
                total_s: 10.0 + i as f64,
                envs_json: if i % 2 == 0 { "[[\"GDSH\",\"Dev\",2]]" } else { "[[\"GDSH\",\"PROD\",1]]" }.into(),
                ..path(ids[0])
            })
            .collect();
        s.commit_traces(&step, &paths, &[], None).await.unwrap();
        p.commit_traces(&step, &paths, &[], None, None).await.unwrap();
        let range = TraceRange { from_ms: 0, to_ms: 10_000, env: Some("Dev"), account: Some("prod"), region: None };
        assert_eq!(s.attribution_roots(range, 5).await.unwrap(), p.attribution_roots(range, 5).await.unwrap());
        assert_eq!(s.attribution_count("AtlasEngineWorkflow", range).await.unwrap(), 4);
        assert_eq!(p.attribution_count("AtlasEngineWorkflow", range).await.unwrap(), 4);
        assert_eq!(s.slowest_attributions("AtlasEngineWorkflow", range, 3).await.unwrap(), p.slowest_attributions("AtlasEngineWorkflow", range, 3).await.unwrap());
        assert_eq!(s.attribution_total_at("AtlasEngineWorkflow", range, 1).await.unwrap(), p.attribution_total_at("AtlasEngineWorkflow", range, 1).await.unwrap());
        let some: Vec<&str> = paths.iter().take(4).map(|a| a.trace_id.as_str()).collect();
        let (mut e1, mut e2) = (s.trace_function_envs(&some).await.unwrap(), p.trace_function_envs(&some).await.unwrap());
        e1.sort();
        e2.sort();
        assert_eq!(e1, vec![("GDSH".to_string(), "Dev".to_string(), 4), ("GDSH".to_string(), "PROD".to_string(), 2)]);
        assert_eq!(e1, e2);
        assert_eq!(s.trace_attribution(&paths[5].trace_id).await.unwrap(), p.trace_attribution(&paths[5].trace_id).await.unwrap());

        // Retention: the same rows go from every table it bounds.
        use latency_sentinel::store::retention::RetentionPlan;
        let plan = RetentionPlan {
            events_before_ms: 1_795_000_200_000,
            transitions_before_ms: 6,
            streams_idle_before_ms: i64::MAX,
            rejected_max_rows: 10,
            transitions_max_rows: 1,
        };
        let (a, b) = (s.purge(&plan).await.unwrap(), p.purge(&plan).await.unwrap());
        assert_eq!(a.events, 200);
        assert_eq!(a, b);
        assert_eq!(s.count_events(None).await.unwrap(), p.count_events(None).await.unwrap());
        assert_eq!(p.event_count().await.unwrap(), s.event_count().await.unwrap());
        let size = p.storage_size().await.unwrap();
        let objects = p.storage_by_object().await.unwrap();
        assert!(objects.iter().any(|(n, b)| n == "events" && *b > 0), "{objects:?}");
        assert!(size.database > objects.iter().map(|o| o.1).sum::<u64>() / 2, "{size:?}");
        p.ping().await.unwrap();
        p.close().await;
    });
}

/// A request's reads on PostgreSQL are bounded by the server: a read stuck behind a lock
/// (here a test session holding the events table) is cancelled at the request limit and
/// leaves no statement waiting behind it; a request's connection cannot write.
#[test]
fn a_requests_statement_is_cancelled_at_its_limit_and_cannot_write() {
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let s = store(&pg).limit_requests(Duration::from_millis(300));
    rt.block_on(async {
        s.migrate().await.unwrap();
        s.commit(&batch(vec![event(1, "BedrockCallDuration", "req-1")], 1), None).await.unwrap();
        let view = s.for_request();
        assert_eq!(view.count_events(None).await.unwrap(), 1);

        use sqlx::Connection;
        let mut locker = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
        let mut tx = locker.begin().await.unwrap();
        sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
        let started = std::time::Instant::now();
        let stuck = view.count_events(None).await;
        let took = started.elapsed();
        assert!(stuck.is_err(), "cancelled, not answered: {stuck:?}");
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "cancelled at the limit, took {took:?}");
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'latency-sentinel' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(waiting, 0, "no statement left waiting");
        tx.rollback().await.unwrap();

        let write = view.commit(&batch(vec![event(2, "BedrockCallDuration", "req-2")], 2), None).await;
        assert!(write.is_err(), "a request's connection is read-only: {write:?}");
        assert_eq!(s.count_events(None).await.unwrap(), 1);
    });
}
