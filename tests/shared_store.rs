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
        assert_eq!(s.checkpoint("logs", "prod|eu-west-1|/aws/lambda/GDSH").await.unwrap(), Some((2_000, None)));
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
        assert_eq!(s.checkpoint("logs", "prod|eu-west-1|/aws/lambda/GDSH").await.unwrap(), Some((3_000, None)));
    });
}
