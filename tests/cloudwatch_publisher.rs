//! The CloudWatch publisher against moto's server: Lambda log lines written with boto3 are
//! tailed, stored and published as `OperationLatency`; boto3's GetMetricStatistics reads back
//! SampleCount and Sum per (Environment, FunctionName, Operation) equal to what was written.
//! Later rounds send nothing again, a restart resumes from the stored watermark, a late event
//! with an older event time is still published once, and gzip-compressed requests work.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const NAMESPACE: &str = "SentinelTest";

fn config(moto: &Moto) -> String {
    daemon_config(
        moto,
        &format!(
            r#"{}[xray]
enabled = false
[cloudwatch]
enabled = true
namespace = "{NAMESPACE}"
publish_interval = "1s"
"#,
            fast_logs(&[("ingestion_delay", "\"30m\"")])
        ),
    )
}

/// Writes text-format invocations (seed TIMING/END lines and a REPORT) of one function, one
/// invocation per minute, and prints {"env|function|operation": [count, sum]} of what a
/// correct publisher sends: every value rounded to 4 significant digits (the values are
/// chosen so that this changes nothing).
const WRITE: &str = r#"
sys.path.insert(0, 'tests/support')
import lambda_traffic as t
from collections import defaultdict
logs = client('logs'); lam = client('lambda'); iam = client('iam')
F = 'GenerateDynamicScenarioHandler'
def r4(v):
    return float('%.4g' % v)
def write(versions, plan, start):
    w = t.Writer(logs)
    exp = defaultdict(lambda: [0, 0.0])
    def add(env, op, v):
        exp[f'{env}|{F}|{op}'][0] += 1
        exp[f'{env}|{F}|{op}'][1] += r4(v)
    for env, bedrock, cold in plan:
        v = versions[env]
        s = t.stream_name(v)
        for i, b in enumerate(bedrock):
            first = cold and i == 0
            w.text_invocation(F, 'GDSH', env, v, s, start + i * 61_000, b, first)
            add(env, 'BedrockCallDuration', b)
            add(env, 'SecretsManagerDuration', 0.031)
            add(env, 'total_function_duration', b + 0.3)
            add(env, 'Lambda.Duration', round((b + 0.3) * 1000, 2) / 1000)
            if first:
                add(env, 'Lambda.InitDuration', 0.4125)
    print(json.dumps(exp))
"#;

/// Prints {"env|function|operation": [SampleCount, Sum]} for each key of EXPECTED (exactly
/// its three dimensions, 60 s periods over the last two hours), and the dimension sets
/// ListMetrics knows for OperationLatency.
const READ: &str = r#"
cw = client('cloudwatch')
now = time.time()
out = {}
for k in EXPECTED:
    env, fn, op = k.split('|')
    r = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName='OperationLatency',
        Dimensions=[{'Name': 'Environment', 'Value': env}, {'Name': 'FunctionName', 'Value': fn}, {'Name': 'Operation', 'Value': op}],
        StartTime=now - 7200, EndTime=now + 600, Period=60, Statistics=['SampleCount', 'Sum'])
    out[k] = [sum(p['SampleCount'] for p in r['Datapoints']), sum(p['Sum'] for p in r['Datapoints'])]
    assert all(p.get('Unit') in (None, 'Seconds') for p in r['Datapoints']), r['Datapoints']
known = set()
for m in cw.list_metrics(Namespace=NAMESPACE, MetricName='OperationLatency')['Metrics']:
    d = {x['Name']: x['Value'] for x in m['Dimensions']}
    known.add(f"{d['Environment']}|{d['FunctionName']}|{d['Operation']}")
print(json.dumps({'stats': out, 'known': sorted(known)}))
"#;

type Expected = BTreeMap<String, (i64, f64)>;

fn parse_expected(out: &str) -> Expected {
    let v: BTreeMap<String, (i64, f64)> = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    v
}

fn merge(a: &Expected, b: &Expected) -> Expected {
    let mut out = a.clone();
    for (k, (n, s)) in b {
        let e = out.entry(k.clone()).or_insert((0, 0.0));
        e.0 += n;
        e.1 += s;
    }
    out
}

/// What CloudWatch (moto) holds for each expected key, and the dimension sets it knows.
fn read_back(moto: &Moto, expected: &Expected) -> (Expected, Vec<String>) {
    let keys: Vec<&String> = expected.keys().collect();
    let out = moto.boto(&format!(
        "EXPECTED = json.loads({:?})\nNAMESPACE = {NAMESPACE:?}\n{READ}",
        serde_json::to_string(&keys).unwrap()
    ));
    #[derive(serde::Deserialize)]
    struct Read {
        stats: BTreeMap<String, (f64, f64)>,
        known: Vec<String>,
    }
    let r: Read = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    (r.stats.into_iter().map(|(k, (n, s))| (k, (n as i64, s))).collect(), r.known)
}

fn same(a: &Expected, b: &Expected) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, (na, sa)), (kb, (nb, sb)))| ka == kb && na == nb && (sa - sb).abs() < 1e-9)
}

fn stored_counts(db: &std::path::Path) -> BTreeMap<String, i64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT env || '|' || function || '|' || operation, COUNT(*) FROM events GROUP BY 1")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        rows.into_iter().collect()
    })
}

/// The value of one sample line (`name{labels}` exactly as exposed) on `/metrics`.
fn metric(daemon: &Daemon, series: &str) -> Option<f64> {
    let (_, body) = daemon.get("/metrics")?;
    body.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

const DATA_PUBLISHED: &str = "sentinel_cloudwatch_data_published_total{metric=\"OperationLatency\"}";
const EVENTS_PUBLISHED: &str = "sentinel_cloudwatch_events_published_total";
const LAST_PUBLISH: &str = "sentinel_cloudwatch_last_publish_timestamp_seconds";

/// Waits until the stored events match `expected`'s counts, then until moto holds exactly
/// `expected`.
fn wait_published(moto: &Moto, daemon: &Daemon, expected: &Expected, what: &str) {
    let counts: BTreeMap<String, i64> = expected.iter().map(|(k, (n, _))| (k.clone(), *n)).collect();
    let db = daemon.db();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while stored_counts(&db) != counts {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: stored events never matched\nexpected {counts:?}\nstored {:?}\n{}",
            stored_counts(&db),
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (got, known) = read_back(moto, expected);
        if same(&got, expected) {
            assert_eq!(known, expected.keys().cloned().collect::<Vec<_>>(), "{what}: only the stored series are published");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: CloudWatch holds\n{got:?}\nexpected\n{expected:?}\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits for two more publish rounds, then checks that they sent nothing and that
/// CloudWatch still holds exactly `expected`.
fn assert_no_resend(moto: &Moto, daemon: &Daemon, expected: &Expected, what: &str) {
    let data = metric(daemon, DATA_PUBLISHED).expect("data published");
    let events = metric(daemon, EVENTS_PUBLISHED).expect("events published");
    let since = metric(daemon, LAST_PUBLISH).expect("a publish round finished");
    wait_for(&format!("{what}: two more publish rounds"), Duration::from_secs(30), || {
        metric(daemon, LAST_PUBLISH).filter(|t| *t >= since + 2.0).map(|_| ())
    });
    assert_eq!(metric(daemon, DATA_PUBLISHED), Some(data), "{what}: later rounds sent OperationLatency data again");
    assert_eq!(metric(daemon, EVENTS_PUBLISHED), Some(events), "{what}: later rounds sent events again");
    let (got, _) = read_back(moto, expected);
    assert!(same(&got, expected), "{what}: CloudWatch changed after later rounds:\n{got:?}\nexpected\n{expected:?}");
}

#[test]
fn operation_latency_reads_back_exact_counts_and_sums_and_is_never_sent_twice() {
    std::env::set_current_dir(repo()).unwrap();
    let moto = Moto::start();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let start = now_ms - 10 * 60_000;
    let vfile = moto.dir.path().join("versions.json");
    let phase1 = parse_expected(&moto.boto(&format!(
        "{WRITE}
versions = t.setup_function(lam, iam, F)
json.dump(versions, open({vfile:?}, 'w'))
write(versions, [('PROD', [1.5, 2.25, 3.125, 2.25], True), ('Dev', [0.75, 4.5, 1.5], True)], {start})
"
    )));
    assert_eq!(phase1.len(), 10, "{phase1:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config(&moto));
    wait_published(&moto, &daemon, &phase1, "first run");
    let total: i64 = phase1.values().map(|(n, _)| n).sum();
    assert_eq!(metric(&daemon, EVENTS_PUBLISHED), Some(total as f64));
    // One invocation a minute: a datum per series and minute (more if a round caught a minute half stored).
    let data = metric(&daemon, DATA_PUBLISHED).unwrap();
    assert!(data >= 30.0, "{data}");
    assert_no_resend(&moto, &daemon, &phase1, "first run");

    // Stop; a late invocation with an event time older than everything published so far;
    // restart with every PutMetricData gzip-compressed (the SDK's threshold lowered to 1 byte).
    daemon.proc.signal("TERM");
    assert!(daemon.proc.wait_exit(Duration::from_secs(10)).expect("stops on SIGTERM").success());
    let phase2 = parse_expected(&moto.boto(&format!(
        "{WRITE}
versions = json.load(open({vfile:?}))
write(versions, [('PROD', [5.5], False)], {late})
",
        late = start - 61_000,
    )));
    let expected = merge(&phase1, &phase2);
    let daemon = Daemon::start_with_env(dir.path(), &config(&moto), &[("AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES", "1")]);
    wait_published(&moto, &daemon, &expected, "after restart");
    // The restarted daemon sent only the late events: the watermark survived the restart.
    let late: i64 = phase2.values().map(|(n, _)| n).sum();
    assert_eq!(metric(&daemon, EVENTS_PUBLISHED), Some(late as f64));
    assert_no_resend(&moto, &daemon, &expected, "after restart");
    assert_eq!(query_scalar_i64(&daemon.db(), "SELECT last_event_id FROM cloudwatch_destinations"), query_scalar_i64(&daemon.db(), "SELECT MAX(id) FROM events"));
    let body = daemon.get("/metrics").unwrap().1;
    assert!(body.contains("sentinel_aws_requests_total{api=\"PutMetricData\",outcome=\"ok\"}"), "{body}");
    assert!(!body.contains("sentinel_cloudwatch_dropped_total{"), "nothing was dropped:\n{body}");
}
