//! The daemon as a process on the edges a long-running collector meets: events CloudWatch
//! takes in twenty minutes late (the reconciliation sweep stores them), a REPORT with an
//! absurd `Max Memory Used` (the group keeps being polled), and retention emptying the
//! table while the daemon runs (new events still fire their alert). Every check is an exact
//! count of what `tests/support/lambda_traffic.py` wrote.

mod common;
use common::traffic::*;
use common::*;
use std::time::{Duration, Instant};

fn metrics(daemon: &Daemon) -> String {
    let (status, body) = daemon.get("/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    body
}

/// Twenty minutes of ingestion stall: events older than every later poll's re-read are
/// stored by the sweep and counted; an absurd REPORT line neither stops its group nor
/// restarts anything.
#[test]
fn late_events_and_absurd_numbers_lose_nothing() {
    let started = Instant::now();
    let moto = Moto::start();
    let mut expected = setup_and_write(&moto, 2);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &moto,
        "",
    )
    .replace("ingestion_delay = \"30s\"\n", "ingestion_delay = \"5s\"\nreconcile_window = \"1h\"\nreconcile_interval = \"2s\"\n");
    let daemon = Daemon::start(dir.path(), &cfg);
    wait_event_counts(&daemon.db(), &expected, Duration::from_secs(60), &daemon, "before the stall");

    // Written now with times twenty minutes back: behind every poll's re-read from here on.
    let late = expected_counts(&moto.boto(&format!(
        "{}
versions = json.load(open({:?}))
w = t.Writer(logs)
v = versions['GenerateDynamicScenarioHandler']['Dev']
s = t.stream_name(v)
start = int(time.time() * 1000) - 20 * 60 * 1000
for i in range(5):
    w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', 'Dev', v, s, start + i * 1000, 3.0, False)
print(json.dumps(dict(w.expected)))
",
        prelude(),
        versions_file(&moto).to_str().unwrap()
    )));
    let late_total: i64 = late.values().sum();
    merge(&mut expected, late);
    // A REPORT claiming 2^64 - 1 MB, then ordinary invocations in the same group.
    merge(
        &mut expected,
        expected_counts(&moto.boto(&format!(
            "{}
versions = json.load(open({:?}))
w = t.Writer(logs)
v = versions['InvokeOutboundCallHandler']['PROD']
s = t.stream_name(v)
now = int(time.time() * 1000)
rid = 'c0ffee00-0000-4000-8000-000000000001'
w.put('/aws/lambda/InvokeOutboundCallHandler', s, [
    'START RequestId: %s Version: %s\\n' % (rid, v),
    'REPORT RequestId: %s\\tDuration: 12.00 ms\\tBilled Duration: 12 ms\\tMemory Size: 128 MB\\tMax Memory Used: 18446744073709551615 MB\\t\\n' % rid,
], now - 2000)
w.expect('PROD', 'InvokeOutboundCallHandler', 'Lambda.Duration', 'report')
for i in range(3):
    w.powertools_and_emf('InvokeOutboundCallHandler', 'PROD', v, s, now - 1000 + i * 10)
print(json.dumps(dict(w.expected)))
",
            prelude(),
            versions_file(&moto).to_str().unwrap()
        ))),
    );
    wait_event_counts(&daemon.db(), &expected, Duration::from_secs(90), &daemon, "after a 20-minute stall and an absurd REPORT");
    let m = metrics(&daemon);
    assert_eq!(metric_sum(&m, "sentinel_log_events_recovered_total", &[]) as i64, late_total, "{m}");
    assert_eq!(metric_sum(&m, "sentinel_task_restarts_total", &[]), 0.0, "{m}");
    assert_eq!(
        metric_sum(&m, "sentinel_lambda_max_memory_used_bytes", &[("function", "InvokeOutboundCallHandler"), ("env", "PROD")]),
        90.0 * 1024.0 * 1024.0,
        "the later REPORTs' memory is reported (the absurd one saturated, then was overwritten): {m}"
    );
    eprintln!("late_events: {late_total} recovered, {:.1}s", started.elapsed().as_secs_f64());
}

/// A Dev account quiet for longer than `storage.retention`: retention empties the table
/// while the daemon runs; the slow Bedrock calls that come next fire the budget alert.
#[test]
fn an_alert_fires_after_retention_emptied_the_table() {
    let started = Instant::now();
    let moto = Moto::start();
    let old = expected_counts(&moto.boto(&format!(
        "{}
versions = {{f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler']}}
json.dump(versions, open({:?}, 'w'))
w = t.Writer(logs)
v = versions['GenerateDynamicScenarioHandler']['Dev']
s = t.stream_name(v)
start = int(time.time() * 1000) - 2 * 3600 * 1000
for i in range(40):
    w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', 'Dev', v, s, start + i * 1000, 1.0, False)
print(json.dumps(dict(w.expected)))
",
        prelude(),
        versions_file(&moto).to_str().unwrap()
    )));
    let old_total: i64 = old.values().sum();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &moto,
        r#"
[alerts]
evaluation_interval = "1s"
[[budgets]]
name = "bedrock"
operation = "BedrockCallDuration"
env = "Dev"
p95 = "5s"
window = "10m"
for = "0s"
keep_firing_for = "1m"
min_samples = 5
"#,
    )
    .replace("start_lookback = \"1h\"\n", "start_lookback = \"3h\"\n")
    // Retention's first pass runs at start (an empty table), its second 3 s later: the
    // evaluator (every second) reads the first poll's events in between, whatever the two
    // tasks' phases (at 1 s each, retention sometimes deleted them first).
    .replace("[storage]\n", "[storage]\nretention = \"1h\"\nretention_interval = \"3s\"\n");
    let daemon = Daemon::start(dir.path(), &cfg);
    // The evaluator reads the old events (its watermark passes their ids) ...
    wait_for("the evaluator to read the old events", Duration::from_secs(60), || {
        let m = metrics(&daemon);
        (metric_sum(&m, "sentinel_operation_duration_seconds_count", &[]) as i64 >= old_total).then_some(())
    });
    // ... and retention deletes every one of them.
    wait_for("retention to empty the table", Duration::from_secs(60), || (query_scalar_i64(&daemon.db(), "SELECT COUNT(*) FROM events") == 0).then_some(()));

    // Fewer new events than old ones: with reused ids every one would sit below the watermark.
    moto.boto(&format!(
        "{}
versions = json.load(open({:?}))
w = t.Writer(logs)
v = versions['GenerateDynamicScenarioHandler']['Dev']
s = t.stream_name(v)
now = int(time.time() * 1000) - 5000
for i in range(8):
    w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', 'Dev', v, s, now + i * 100, 9.0, False)
print(json.dumps(dict(w.expected)))
",
        prelude(),
        versions_file(&moto).to_str().unwrap()
    ));
    wait_for("the Bedrock budget alert to fire", Duration::from_secs(60), || {
        let m = metrics(&daemon);
        (metric_sum(&m, "sentinel_alerts", &[("alertstate", "firing"), ("env", "Dev"), ("operation", "BedrockCallDuration")]) == 1.0).then_some(())
    });
    let ids = query_scalar_i64(&daemon.db(), "SELECT MIN(id) FROM events");
    assert!(ids > old_total, "new events got new ids (lowest {ids}, {old_total} before)");
    eprintln!("retention_emptied: {:.1}s", started.elapsed().as_secs_f64());
}
