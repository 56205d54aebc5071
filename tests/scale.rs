//! Scale (issue 7): many log groups discovered under one prefix, traffic concentrated on a
//! few of them, and the account-wide FilterLogEvents budget of 5 requests/s. Every event is
//! stored exactly once, the p95 of "event written → stored" stays under 60 s, busy groups
//! are polled far more often than silent ones (FilterLogEvents counted per group by the
//! pass-through proxy), and the daemon stays within its request budget.
//!
//! CI runs a shortened scale (40 groups, 45 s of traffic); `SENTINEL_FULL_SCALE=1` runs the
//! issue's 200 groups for 3 minutes.

mod common;
use common::*;
use std::time::{Duration, Instant};

struct Scale {
    groups: usize,
    busy: usize,
    occasional: usize,
    run_secs: u64,
}

fn scale() -> Scale {
    if std::env::var("SENTINEL_FULL_SCALE").is_ok_and(|v| v == "1") {
        Scale { groups: 200, busy: 5, occasional: 10, run_secs: 180 }
    } else {
        Scale { groups: 40, busy: 3, occasional: 5, run_secs: 45 }
    }
}

fn quantile(sorted: &[i64], q: f64) -> i64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn many_groups_busy_polled_often_every_event_stored_within_a_minute() {
    let started = Instant::now();
    let s = scale();
    let moto = Moto::start();
    moto.boto(&format!(
        "logs = client('logs')\nfor i in range({}):\n    logs.create_log_group(logGroupName='/aws/lambda/scale-%03d' % i)\n",
        s.groups
    ));
    // Pass-through: no faults, FilterLogEvents counted per log group.
    let proxy = FaultProxy::start(&moto.url(), &[]);
    let config = via_endpoint(
        daemon_config(
            &moto,
            r#"
[logs]
log_group_prefixes = ["/aws/lambda/scale-"]
poll_interval = "5s"
idle_poll_interval = "60s"
discovery_interval = "60s"
ingestion_delay = "30s"
start_lookback = "10m"
requests_per_second = 5.0
[xray]
enabled = false
"#,
        ),
        &moto,
        &proxy.url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &config);
    let db = daemon.db();
    let t0 = Instant::now();
    let stats0 = proxy.stats();

    // Busy groups get 5 events a second each; a few others one event at a random moment;
    // the rest nothing. Each event's timestamp is the moment it was written.
    let out = dir.path().join("expected.json");
    let mut writer = moto.boto_background(
        &format!(
            "import lambda_traffic as t, random
logs = client('logs')
N, B, O, RUN = {groups}, {busy}, {occasional}, {run}
groups = ['/aws/lambda/scale-%03d' % i for i in range(N)]
busy, occasional = groups[:B], groups[B:B + O]
streams = {{}}
for g in busy + occasional:
    streams[g] = t.stream_name('1')
    logs.create_log_stream(logGroupName=g, logStreamName=streams[g])
w = t.Writer(logs)
def put(g, n, k):
    now = int(time.time() * 1000)
    lines = [t.seed('TIMING', 'S', metric='ScaleDuration', value_sec=0.05 + (k % 10) / 100) for _ in range(n)]
    logs.put_log_events(logGroupName=g, logStreamName=streams[g], logEvents=[{{'timestamp': now, 'message': m}} for m in lines])
    w.expect('default', g.rsplit('/', 1)[1], 'ScaleDuration', 'logs', n)
rng = random.Random(42)
start = time.time()
when = {{g: start + rng.uniform(0, RUN) for g in occasional}}
k = 0
while time.time() < start + RUN:
    tick = time.time()
    for g in busy:
        put(g, 5, k)
    for g in [g for g, at in when.items() if time.time() >= at]:
        put(g, 1, k)
        del when[g]
    k += 1
    time.sleep(max(0.0, 1.0 - (time.time() - tick)))
for g in when:
    put(g, 1, k)
print(json.dumps(dict(w.expected)))
",
            groups = s.groups,
            busy = s.busy,
            occasional = s.occasional,
            run = s.run_secs,
        ),
        &out,
    );
    // Written → stored, per event: `time_ms` is when the writer put it; the moment this test
    // first sees it in the database (polled every 250 ms from outside) is when it was stored.
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(s.run_secs + 60);
    let status = loop {
        seen.poll(&db);
        if let Some(status) = writer.wait_exit(Duration::from_millis(250)) {
            break status;
        }
        assert!(Instant::now() < deadline, "the traffic writer finishes");
    };
    assert!(status.success(), "traffic writer failed: {}", std::fs::read_to_string(out.with_extension("err")).unwrap_or_default());
    let expected = expected_counts(&std::fs::read_to_string(&out).unwrap());
    let written: i64 = expected.values().sum();
    let counted = Instant::now() + Duration::from_secs(120);
    while seen.lags.len() < written as usize && Instant::now() < counted {
        seen.poll(&db);
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_event_counts(&db, &expected, Duration::from_secs(5), &daemon, "every event of every group");
    let elapsed = t0.elapsed();
    let stats = proxy.stats();

    let mut lags = seen.lags;
    lags.sort_unstable();
    assert_eq!(lags.len() as i64, written);
    let (p50, p95, max) = (quantile(&lags, 0.5), quantile(&lags, 0.95), *lags.last().unwrap());

    // Polls per group, from the proxy's FilterLogEvents count.
    let polls = |i: usize| stats["filter_log_events"][format!("/aws/lambda/scale-{i:03}")].as_i64().unwrap_or(0);
    let busy: Vec<i64> = (0..s.busy).map(polls).collect();
    let silent: Vec<i64> = (s.busy + s.occasional..s.groups).map(polls).collect();
    let mean = |v: &[i64]| v.iter().sum::<i64>() as f64 / v.len() as f64;
    let requests = |st: &serde_json::Value| {
        ["FilterLogEvents", "DescribeLogGroups"].iter().map(|a| st["ok"][*a].as_i64().unwrap_or(0)).sum::<i64>()
    };
    let rate = (requests(&stats) - requests(&stats0)) as f64 / elapsed.as_secs_f64();
    eprintln!(
        "scale: groups={} busy={} events={written} p50_s={:.1} p95_s={:.1} max_s={:.1} busy_polls={busy:?} silent_polls_mean={:.1} silent_polls_max={} logs_requests_per_sec={rate:.2} elapsed_s={:.0} total_s={:.0}",
        s.groups,
        s.busy,
        p50 as f64 / 1000.0,
        p95 as f64 / 1000.0,
        max as f64 / 1000.0,
        mean(&silent),
        silent.iter().max().unwrap(),
        elapsed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(p95 < 60_000, "p95 of written → stored is {p95} ms");
    assert!(busy.iter().min() > silent.iter().max(), "a silent group was polled as often as a busy one: busy {busy:?}, silent {silent:?}");
    assert!(mean(&busy) >= 2.0 * mean(&silent), "busy {busy:?} vs silent mean {:.1}", mean(&silent));
    // The account-wide budget (DescribeLogGroups shares the limiter), with a little slack for
    // the measurement window's edges.
    assert!(rate <= 5.0 * 1.1, "{rate:.2} requests/s against a budget of 5");
}

/// The events seen in the database so far, by id, and each one's lag from its time to the
/// poll that first saw it.
#[derive(Default)]
struct Seen {
    last_id: i64,
    lags: Vec<i64>,
}

impl Seen {
    fn poll(&mut self, db: &std::path::Path) {
        if !db.exists() {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let rows: Vec<(i64, i64)> = rt.block_on(async {
            use sqlx::ConnectOptions;
            let Ok(mut conn) = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await else {
                return Vec::new();
            };
            sqlx::query_as("SELECT id, time_ms FROM event_rows WHERE id > ? ORDER BY id").bind(self.last_id).fetch_all(&mut conn).await.unwrap_or_default()
        });
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for (id, time_ms) in rows {
            self.last_id = id;
            self.lags.push(now - time_ms);
        }
    }
}
