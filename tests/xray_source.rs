//! The X-Ray poller against moto's server: Lambda service + function segments for two
//! aliases, nested subsegments, a standalone subsegment document, an in-progress trace that
//! completes later, a fault and a malformed document are stored with exact counts per
//! (env, function, operation) and exact durations, with one critical path per complete
//! trace; a SIGKILL and a restart duplicate nothing. A trace that never finishes is stored
//! as it is after `max_refetches`. An account sending segments to CloudWatch Logs is
//! reported on `/readyz` and in a metric while polling goes on.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn config(moto: &Moto, max_refetches: u32) -> String {
    config_with_lookback(moto, max_refetches, "10m")
}

fn config_with_lookback(moto: &Moto, max_refetches: u32, lookback: &str) -> String {
    daemon_config(
        moto,
        &format!(
            r#"
[logs]
enabled = false
[xray]
poll_interval = "1s"
settle_delay = "0s"
lookback = "{lookback}"
start_lookback = "10m"
requests_per_second = 50.0
max_refetches = {max_refetches}
"#
        ),
    )
}

/// Python helpers: `invocation(...)` builds the documents Lambda and the SDK send for one
/// invocation of GenerateDynamicScenarioHandler through an alias (times relative to now);
/// `put(docs)` sends them with `put_trace_segments`.
const PY: &str = r#"
import random
xr = client('xray')
NOW = time.time()
ACCOUNT = '123456789012'
FN = 'GenerateDynamicScenarioHandler'
rng = random.Random()

def hexid():
    return '%016x' % rng.getrandbits(64)

def put(docs):
    r = xr.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert not r.get('UnprocessedTraceSegments'), r

def invocation(t, qualifier, bedrock, cold=False, standalone_dynamo=False, fault=False,
               service_in_progress=False, malformed=False):
    t = round(t, 3)
    tid = '1-%08x-%024x' % (int(t), rng.getrandbits(96))
    svc, fn, inv = hexid(), hexid(), hexid()
    init = 0.5 if cold else 0.0
    f_start = t + 0.01
    inv_start = f_start + init
    b_start = inv_start + 0.02
    b_end = b_start + bedrock
    d_start = b_end + 0.01
    d_end = d_start + 0.125
    inv_end = d_end + 0.02
    f_end = inv_end + 0.01
    service = {'id': svc, 'name': FN, 'trace_id': tid, 'start_time': t, 'origin': 'AWS::Lambda',
               'resource_arn': f'arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}:{qualifier}',
               'aws': {'request_id': 'req-' + tid[-12:]}, 'end_time': f_end + 0.01}
    complete_service = dict(service)
    if service_in_progress:
        del service['end_time']
        service['in_progress'] = True
    bedrock_sub = {'id': hexid(), 'name': 'Bedrock.InvokeModel', 'start_time': b_start, 'end_time': b_end,
                   'subsegments': [{'id': hexid(), 'name': 'bedrock-runtime', 'namespace': 'aws',
                                    'start_time': b_start + 0.05, 'end_time': b_end - 0.05,
                                    'aws': {'operation': 'InvokeModel', 'region': 'us-east-1'}}]}
    dynamo = {'id': hexid(), 'name': 'DynamoDB.PutItem', 'start_time': d_start, 'end_time': d_end}
    if fault:
        dynamo['fault'] = True
        dynamo['cause'] = {'exceptions': [{'id': hexid(), 'type': 'ProvisionedThroughputExceededException',
                                           'message': 'Rate exceeded'}]}
    subs = []
    if cold:
        subs.append({'id': hexid(), 'name': 'Initialization', 'start_time': f_start, 'end_time': f_start + init})
    subs.append({'id': inv, 'name': 'Invocation', 'start_time': inv_start, 'end_time': inv_end,
                 'subsegments': [bedrock_sub] + ([] if standalone_dynamo else [dynamo])})
    subs.append({'id': hexid(), 'name': 'Overhead', 'start_time': inv_end, 'end_time': f_end})
    function = {'id': fn, 'name': FN, 'trace_id': tid, 'parent_id': svc, 'start_time': f_start,
                'end_time': f_end, 'origin': 'AWS::Lambda::Function',
                'aws': {'function_arn': f'arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FN}'},
                'subsegments': subs}
    if fault:
        function['fault'] = True
    docs = [service, function]
    if standalone_dynamo:
        docs.append(dict(dynamo, type='subsegment', trace_id=tid, parent_id=inv))
    if malformed:
        # Valid JSON that moto accepts, but it ends one second before it starts.
        docs.append({'id': hexid(), 'type': 'subsegment', 'name': 'Salesforce.UpdateLead', 'trace_id': tid,
                     'parent_id': inv, 'start_time': d_end, 'end_time': d_end - 1.0})
    return tid, docs, complete_service
"#;

fn run_py(moto: &Moto, body: &str) -> Value {
    let out = moto.boto(&format!("{PY}\n{body}"));
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn count(db: &Path, sql: &str) -> i64 {
    query_scalar_i64(db, sql)
}

/// `env|function|operation|count` per series, sorted, joined by `;`.
fn series(db: &Path) -> String {
    query_string(
        db,
        "SELECT COALESCE(group_concat(s, ';'), '') FROM (SELECT env || '|' || function || '|' || operation || '|' || COUNT(*) AS s \
         FROM events WHERE source = 'xray' GROUP BY env, function, operation ORDER BY env, function, operation)",
    )
}

fn expected_series(dev: [i64; 7], prod: [i64; 7]) -> String {
    const OPS: [&str; 7] =
        ["Bedrock.InvokeModel", "DynamoDB.PutItem", "Initialization", "Invocation", "Lambda.Function", "Overhead", "bedrock-runtime"];
    let mut out = Vec::new();
    for (env, counts) in [("Dev", dev), ("PROD", prod)] {
        for (op, n) in OPS.iter().zip(counts) {
            if n > 0 {
                out.push(format!("{env}|GenerateDynamicScenarioHandler|{op}|{n}"));
            }
        }
    }
    out.join(";")
}

/// Duration of one operation of one trace, in whole microseconds.
fn duration_us(db: &Path, trace_id: &str, operation: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT CAST(ROUND(duration_s * 1e6) AS INTEGER) FROM events WHERE trace_id = '{trace_id}' AND operation = '{operation}'"
        ),
    )
}

/// The value of one sample in a Prometheus exposition (labels in any order).
fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.trim_end_matches('}')),
            None => (series, ""),
        };
        let wanted = labels.iter().all(|(k, v)| rest.split(',').any(|p| p == format!("{k}=\"{v}\"")));
        (n == name && wanted).then(|| value.parse().ok()).flatten()
    })
}

fn metrics(daemon: &Daemon) -> String {
    daemon.get("/metrics").map(|(_, b)| b).unwrap_or_default()
}

#[test]
fn traces_are_stored_exactly_once_with_their_critical_paths_across_a_sigkill() {
    let moto = Moto::start();
    let ids = run_py(
        &moto,
        r#"
T = NOW - 240
ids, later = {}, {}
for key, t, kw in [
    ('dev_cold', T, dict(qualifier='Dev', bedrock=2.5, cold=True)),
    ('dev_standalone', T + 20, dict(qualifier='Dev', bedrock=1.25, standalone_dynamo=True)),
    ('prod', T + 40, dict(qualifier='PROD', bedrock=4.0)),
    ('prod_in_progress', T + 60, dict(qualifier='PROD', bedrock=3.0, service_in_progress=True)),
    ('dev_fault', T + 80, dict(qualifier='Dev', bedrock=0.5, fault=True)),
    ('dev_malformed', T + 100, dict(bedrock=0.75, qualifier='Dev', malformed=True)),
]:
    tid, docs, complete_service = invocation(t, **kw)
    put(docs)
    ids[key] = tid
    later[key] = complete_service
print(json.dumps({'ids': ids, 'reput': later['prod_in_progress']}))
"#,
    );
    let id = |k: &str| ids["ids"][k].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config(&moto, 1000));
    let db = daemon.db();

    // First polls: everything but the in-progress trace is stored; that one waits.
    let before_completion = expected_series([4, 4, 1, 4, 4, 4, 4], [1, 1, 0, 1, 1, 1, 1]);
    wait_for("the complete traces' events", DEADLINE, || (series(&db) == before_completion).then_some(()));
    wait_for("the in-progress trace pending", DEADLINE, || {
        (count(&db, &format!("SELECT COUNT(*) FROM xray_traces WHERE state = 'pending' AND trace_id = '{}'", id("prod_in_progress")))
            == 1)
            .then_some(())
    });
    assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM events WHERE trace_id = '{}'", id("prod_in_progress"))), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM trace_attribution"), 5);
    // It is fetched again on later polls while it stays in progress.
    wait_for("re-fetches of the pending trace", DEADLINE, || {
        (count(&db, &format!("SELECT COALESCE(MAX(refetches), -1) FROM xray_traces WHERE trace_id = '{}'", id("prod_in_progress")))
            >= 2)
            .then_some(())
    });

    // The service segment completes (sent again with the same id). Like AWS, moto (through
    // our launcher's fix) then keeps one document per segment id.
    let reput = ids["reput"].to_string();
    let check_one_copy = format!(
        "r = xr.batch_get_traces(TraceIds=[{:?}])\nseen = [s['Id'] for s in r['Traces'][0]['Segments']]\n\
         assert len(seen) == len(set(seen)), seen\n",
        id("prod_in_progress")
    );
    moto.boto(&format!("{PY}\nput([json.loads({reput:?})])\n{check_one_copy}"));
    let all = expected_series([4, 4, 1, 4, 4, 4, 4], [2, 2, 0, 2, 2, 2, 2]);
    wait_for("the completed trace's events", DEADLINE, || (series(&db) == all).then_some(()));
    wait_for("the completed trace marked complete", DEADLINE, || {
        (count(&db, "SELECT COUNT(*) FROM xray_traces WHERE state = 'complete'") == 6).then_some(())
    });
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events WHERE source = 'xray'"), 37);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM xray_traces WHERE state = 'pending'"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM trace_attribution"), 6);

    // Durations, exact to the microsecond.
    for (key, bedrock_us) in [
        ("dev_cold", 2_500_000),
        ("dev_standalone", 1_250_000),
        ("prod", 4_000_000),
        ("prod_in_progress", 3_000_000),
        ("dev_fault", 500_000),
        ("dev_malformed", 750_000),
    ] {
        assert_eq!(duration_us(&db, &id(key), "Bedrock.InvokeModel"), bedrock_us, "{key}");
        assert_eq!(duration_us(&db, &id(key), "bedrock-runtime"), bedrock_us - 100_000, "{key}");
        assert_eq!(duration_us(&db, &id(key), "DynamoDB.PutItem"), 125_000, "{key}");
        let init = if key == "dev_cold" { 500_000 } else { 0 };
        // Function segment: init + 20 ms + Bedrock + 10 ms + 125 ms + 20 ms + 10 ms (Overhead).
        assert_eq!(duration_us(&db, &id(key), "Lambda.Function"), init + bedrock_us + 185_000, "{key}");
        assert_eq!(duration_us(&db, &id(key), "Overhead"), 10_000, "{key}");
    }
    assert_eq!(duration_us(&db, &id("dev_cold"), "Initialization"), 500_000);

    // Cold start on every span of the cold invocation, and only there.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events WHERE cold_start = 1"), 7);
    assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM events WHERE cold_start = 1 AND trace_id = '{}'", id("dev_cold"))), 7);
    // The fault: the DynamoDB call and the function segment.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events WHERE error = 1"), 2);
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM events WHERE error = 1 AND trace_id = '{}' AND operation IN ('DynamoDB.PutItem', 'Lambda.Function')",
                id("dev_fault")
            )
        ),
        2
    );
    // The standalone subsegment document found its owner and alias through parent_id.
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT COUNT(*) FROM events WHERE trace_id = '{}' AND operation = 'DynamoDB.PutItem' AND env = 'Dev' \
                 AND function = 'GenerateDynamicScenarioHandler'",
                id("dev_standalone")
            )
        ),
        1
    );
    // The RequestId of the AWS::Lambda segment reaches the function's spans.
    assert_eq!(
        count(&db, &format!("SELECT COUNT(*) FROM events WHERE trace_id = '{0}' AND request_id = 'req-' || substr('{0}', -12)", id("prod"))),
        6
    );
    // The malformed document is kept as a rejection; the rest of its trace is used.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM rejected WHERE source = 'xray'"), 1);
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) FROM rejected WHERE reason = 'end_before_start' AND origin LIKE '{}|%'", id("dev_malformed"))
        ),
        1
    );
    assert_eq!(count(&db, &format!("SELECT COUNT(*) FROM events WHERE trace_id = '{}'", id("dev_malformed"))), 6);

    // Critical path: the root is the invoked function; Bedrock's SDK call dominates.
    let largest = |trace: &str| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let stored = rt.block_on(async {
            let store = latency_sentinel::store::Store::open_as_written(&db).await.unwrap();
            store.trace_attribution(trace).await.unwrap().expect("a stored path").3
        });
        let shares = match stored {
            latency_sentinel::store::attribution::StoredPath::Apart { shape, self_us } => latency_sentinel::critical_path::decode_path(&shape, &self_us),
            latency_sentinel::store::attribution::StoredPath::Whole(whole) => latency_sentinel::critical_path::decode_shares(&whole),
        }
        .expect("stored path decodes");
        shares.into_iter().fold(None::<latency_sentinel::critical_path::PathShare>, |best, s| match best {
            Some(b) if b.self_s >= s.self_s => Some(b),
            _ => Some(s),
        })
        .map(|s| s.operation)
        .unwrap_or_default()
    };
    assert_eq!(largest(&id("prod")), "bedrock-runtime");
    assert_eq!(largest(&id("prod_in_progress")), "bedrock-runtime");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM critical_paths WHERE root_name = 'GenerateDynamicScenarioHandler'"),
        6
    );
    assert_eq!(
        count(&db, &format!("SELECT CAST(ROUND(total_s * 1000) AS INTEGER) FROM critical_paths WHERE trace_id = '{}'", id("prod"))),
        4_205
    );

    let m = metrics(&daemon);
    assert_eq!(metric(&m, "sentinel_events_stored_total", &[("source", "xray")]), Some(37.0), "{m}");
    assert_eq!(metric(&m, "sentinel_inputs_rejected_total", &[("source", "xray"), ("reason", "end_before_start")]), Some(1.0));
    assert_eq!(metric(&m, "sentinel_xray_traces_stored_total", &[("state", "complete")]), Some(6.0));
    assert_eq!(metric(&m, "sentinel_xray_traces_pending", &[]), Some(0.0));
    assert_eq!(metric(&m, "sentinel_xray_destination_cloudwatch_logs", &[]), Some(0.0));
    assert!(metric(&m, "sentinel_source_last_success_timestamp_seconds", &[("source", "xray")]).is_some_and(|v| v > 0.0));
    assert!(metric(&m, "sentinel_aws_requests_total", &[("api", "GetTraceSegmentDestination"), ("outcome", "ok")]).is_some());
    let ready = wait_for("/readyz 200", DEADLINE, || daemon.get("/readyz").filter(|(s, _)| *s == 200).map(|(_, b)| b));
    assert!(ready.contains("\"xray\""), "{ready}");

    // SIGKILL, restart on the same database, one more trace, another poll.
    daemon.proc.signal("KILL");
    daemon.proc.wait_exit(Duration::from_secs(10)).expect("killed");
    let daemon = Daemon::start(dir.path(), &config(&moto, 1000));
    let ids2 = run_py(
        &moto,
        r#"
tid, docs, _ = invocation(NOW - 30, 'PROD', 0.25)
put(docs)
print(json.dumps({'id': tid}))
"#,
    );
    let new_trace = ids2["id"].as_str().unwrap().to_string();
    wait_for("the trace put after the restart", DEADLINE, || {
        (count(&db, &format!("SELECT COUNT(*) FROM events WHERE trace_id = '{new_trace}'")) == 6).then_some(())
    });
    let after = expected_series([4, 4, 1, 4, 4, 4, 4], [3, 3, 0, 3, 3, 3, 3]);
    assert_eq!(series(&db), after);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events WHERE source = 'xray'"), 43);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM trace_attribution"), 7);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM rejected"), 1);
    // The restarted daemon re-listed the old traces (lookback) but fetched only the new one.
    let m = wait_for("the restarted daemon's metrics", DEADLINE, || {
        let m = metrics(&daemon);
        metric(&m, "sentinel_events_stored_total", &[("source", "xray")]).map(|_| m)
    });
    assert_eq!(metric(&m, "sentinel_events_stored_total", &[("source", "xray")]), Some(6.0), "{m}");
    assert_eq!(metric(&m, "sentinel_xray_traces_fetched_total", &[]), Some(1.0), "{m}");
    assert_eq!(metric(&m, "sentinel_events_duplicate_total", &[("source", "xray")]), None, "{m}");
    assert_eq!(query_string(&db, "PRAGMA integrity_check"), "ok");
}

#[test]
fn a_trace_that_never_finishes_is_stored_as_it_is_after_max_refetches() {
    let moto = Moto::start();
    let ids = run_py(
        &moto,
        r#"
tid, docs, _ = invocation(NOW - 120, 'PROD', 1.5, service_in_progress=True)
put(docs)
print(json.dumps({'id': tid}))
"#,
    );
    let trace = ids["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(&moto, 2));
    let db = daemon.db();
    wait_for("the trace stored as incomplete", DEADLINE, || {
        (count(&db, &format!("SELECT COUNT(*) FROM xray_traces WHERE trace_id = '{trace}' AND state = 'incomplete'")) == 1)
            .then_some(())
    });
    // Its closed spans are stored, attributed to the alias of the still-open service segment.
    assert_eq!(series(&db), expected_series([0; 7], [1, 1, 0, 1, 1, 1, 1]));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM trace_attribution"), 0, "no critical path for an incomplete trace");
    let m = metrics(&daemon);
    assert_eq!(metric(&m, "sentinel_xray_traces_stored_total", &[("state", "incomplete")]), Some(1.0), "{m}");
    // One fetch and two re-fetches.
    assert_eq!(metric(&m, "sentinel_xray_traces_fetched_total", &[]), Some(3.0), "{m}");
    assert_eq!(metric(&m, "sentinel_xray_traces_pending", &[]), Some(0.0), "{m}");
}

#[test]
fn pending_traces_survive_a_restart_and_keep_their_refetch_count() {
    let moto = Moto::start();
    let ids = run_py(
        &moto,
        r#"
tid, docs, _ = invocation(NOW - 120, 'Dev', 2.0, service_in_progress=True)
put(docs)
print(json.dumps({'id': tid}))
"#,
    );
    let trace = ids["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config(&moto, 1000));
    let db = daemon.db();
    wait_for("the trace re-fetched while pending", DEADLINE, || {
        (count(&db, &format!("SELECT COALESCE(MAX(refetches), -1) FROM xray_traces WHERE trace_id = '{trace}' AND state = 'pending'"))
            >= 1)
            .then_some(())
    });
    assert_eq!(count(&db, "SELECT COUNT(*) FROM events"), 0);
    daemon.proc.signal("KILL");
    daemon.proc.wait_exit(Duration::from_secs(10)).expect("killed");

    // After the restart no window reaches back to the trace (1 s lookback): only the stored
    // pending list brings it back, and its count goes on from where it was.
    let daemon = Daemon::start(dir.path(), &config_with_lookback(&moto, 2, "1s"));
    wait_for("the trace stored as incomplete", DEADLINE, || {
        (count(&db, &format!("SELECT COUNT(*) FROM xray_traces WHERE trace_id = '{trace}' AND state = 'incomplete'")) == 1)
            .then_some(())
    });
    assert_eq!(series(&db), expected_series([1, 1, 0, 1, 1, 1, 1], [0; 7]));
    let m = metrics(&daemon);
    assert_eq!(metric(&m, "sentinel_xray_traces_fetched_total", &[]), Some(1.0), "{m}");
    assert_eq!(metric(&m, "sentinel_xray_traces_stored_total", &[("state", "incomplete")]), Some(1.0), "{m}");
    assert_eq!(metric(&m, "sentinel_events_stored_total", &[("source", "xray")]), Some(6.0), "{m}");
}

#[test]
fn segments_sent_to_cloudwatch_logs_are_reported_loudly_and_polling_goes_on() {
    let moto = Moto::start_with_env(&[("MOTO_XRAY_DESTINATION", "CloudWatchLogs")]);
    let ids = run_py(
        &moto,
        r#"
tid, docs, _ = invocation(NOW - 60, 'Dev', 0.5)
put(docs)
print(json.dumps({'id': tid}))
"#,
    );
    let trace = ids["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config(&moto, 5));
    let ready = wait_for("/readyz with the destination detail", DEADLINE, || {
        daemon.get("/readyz").filter(|(s, b)| *s == 200 && b.contains("CloudWatchLogs")).map(|(_, b)| b)
    });
    let v: Value = serde_json::from_str(&ready).unwrap();
    let detail = v["sources"]["xray"]["details"]["destination"].as_str().unwrap_or_default();
    assert!(detail.contains("CloudWatchLogs") && detail.contains("BatchGetTraces"), "{ready}");
    let m = metrics(&daemon);
    assert_eq!(metric(&m, "sentinel_xray_destination_cloudwatch_logs", &[]), Some(1.0), "{m}");
    let logs = daemon.logs();
    assert!(logs.contains("WARN") && logs.contains("CLOUDWATCH LOGS"), "{logs}");
    // Polling goes on: the trace moto still holds is stored.
    let db = daemon.db();
    wait_for("the trace stored", DEADLINE, || {
        (count(&db, &format!("SELECT COUNT(*) FROM events WHERE trace_id = '{trace}'")) == 6).then_some(())
    });
}
