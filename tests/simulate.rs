//! `latency-sentinel simulate` against moto's server, read back by the daemon: a Dev-only
//! Bedrock slowdown shows in Dev's stored events (X-Ray and logs alike) from the moment it
//! was injected, PROD stays normal, both environments have log and trace events, and every
//! REPORT joins its trace by TraceId and RequestId. `--follow` writes live traffic until
//! SIGINT; an endpoint off this machine is refused.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Runs `simulate` with the test credentials; returns its JSON summary.
pub fn simulate(moto: &Moto, flags: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1"])
        .args(flags)
        .envs(AWS_ENV.iter().copied())
        .output()
        .expect("run simulate");
    assert!(out.status.success(), "simulate failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Daemon sections for reading everything simulate wrote, quickly.
pub fn sections() -> String {
    fast_logs(&[]) + XRAY
}

const XRAY: &str = r#"[xray]
poll_interval = "1s"
settle_delay = "0s"
lookback = "10m"
start_lookback = "20m"
requests_per_second = 50.0
"#;

fn durations(db: &Path, sql: &str) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let mut v: Vec<f64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&mut conn).await.unwrap();
        v.sort_by(f64::total_cmp);
        v
    })
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty());
    sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1]
}

fn series_durations(db: &Path, env: &str, operation: &str, source: &str, extra: &str) -> Vec<f64> {
    durations(
        db,
        &format!(
            "SELECT duration_s FROM events WHERE env = '{env}' AND function = 'GenerateDynamicScenarioHandler' \
             AND operation = '{operation}' AND source = '{source}' {extra}"
        ),
    )
}

#[test]
fn a_dev_bedrock_slowdown_is_what_the_daemon_stores() {
    let moto = Moto::start();
    let before = now_ms();
    let summary = simulate(
        &moto,
        &[
            "--duration", "5m", "--rate", "0.5/s", "--seed", "11",
            "--slow", "GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m",
        ],
    );
    let (traces, invocations) = (summary["traces"].as_i64().unwrap(), summary["invocations"].as_i64().unwrap());
    assert!(traces > 200 && invocations > 4 * traces - 20, "{summary}");
    assert_eq!(summary["unprocessed_trace_documents"], 0);
    assert_eq!(summary["versions"]["GenerateDynamicScenarioHandler"]["Dev"], "2");

    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path(), &daemon_config(&moto, &sections()));
    let db = daemon.db();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored_traces = query_scalar_i64(&db, "SELECT COUNT(DISTINCT trace_id) FROM events WHERE source = 'xray'");
        let reports = query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE source = 'report' AND operation = 'Lambda.Duration'");
        if stored_traces == traces && reports == invocations {
            break;
        }
        if Instant::now() > deadline {
            let tail: Vec<String> = daemon.logs().lines().rev().take(30).map(str::to_string).collect();
            panic!(
                "stored {stored_traces}/{traces} traces and {reports}/{invocations} REPORTs\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // Every event has a real environment: aliases from the X-Ray ARN or the version history.
    let envs = query_string(&db, "SELECT group_concat(DISTINCT env) FROM (SELECT env FROM events WHERE function != 'AtlasEngineWorkflow' AND function NOT LIKE 'AtlasEngineWorkflow-%' ORDER BY env)");
    assert_eq!(envs, "Dev,PROD");
    for env in ["PROD", "Dev"] {
        for source in ["logs", "report", "xray"] {
            let n = query_scalar_i64(&db, &format!("SELECT COUNT(*) FROM events WHERE env = '{env}' AND source = '{source}'"));
            assert!(n > 100, "{env} {source}: {n} events");
        }
    }

    // The slowdown, from both sources, in Dev only.
    for (operation, source) in [("Bedrock.InvokeModel", "xray"), ("BedrockCallDuration", "logs")] {
        let dev = series_durations(&db, "Dev", operation, source, "");
        let prod = series_durations(&db, "PROD", operation, source, "");
        let (dev_p95, prod_p95) = (quantile(&dev, 0.95), quantile(&prod, 0.95));
        assert!(dev_p95 >= 8.0, "Dev {operation} ({source}) p95 = {dev_p95}");
        assert!(prod_p95 < 5.0, "PROD {operation} ({source}) p95 = {prod_p95}");
        // Before `from=-3m` Dev was as fast as PROD.
        let early = series_durations(&db, "Dev", operation, source, &format!("AND time_ms < {}", before - 185_000));
        assert!(early.len() > 20 && quantile(&early, 0.95) < 5.0, "Dev before the slowdown: {early:?}");
        let late = series_durations(&db, "Dev", operation, source, &format!("AND time_ms > {}", before - 175_000));
        assert!(quantile(&late, 0.05) > 6.0, "Dev after the slowdown: {late:?}");
    }
    let other = durations(
        &db,
        "SELECT duration_s FROM events WHERE env = 'Dev' AND function = 'LexFulfillmentHandler' AND operation = 'Bedrock.InvokeModel'",
    );
    assert!(quantile(&other, 0.95) < 2.0, "LexFulfillmentHandler's Bedrock call is not slowed");

    // Every REPORT finds its trace: the XRAY TraceId, and the AWS::Lambda segment's RequestId.
    let orphans = query_scalar_i64(
        &db,
        "SELECT COUNT(*) FROM events r WHERE r.source = 'report' AND r.operation = 'Lambda.Duration' AND NOT EXISTS \
         (SELECT 1 FROM events x WHERE x.source = 'xray' AND x.trace_id = r.trace_id AND x.request_id = r.request_id)",
    );
    assert_eq!(orphans, 0, "REPORTs without their trace");
    let colds = query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE source = 'xray' AND operation = 'Initialization'");
    assert_eq!(colds, summary["cold_starts"].as_i64().unwrap());
    let bad = query_scalar_i64(&db, "SELECT COUNT(*) FROM rejected WHERE source = 'logs'");
    assert_eq!(bad, summary["malformed_lines"].as_i64().unwrap(), "the NaN TIMING lines are rejected, nothing else");

    // A second run reuses the functions and aliases.
    let again = simulate(&moto, &["--duration", "10s", "--rate", "1/s", "--seed", "12"]);
    assert_eq!(again["versions"], summary["versions"]);
}

#[test]
fn follow_writes_live_traffic_until_sigint() {
    let moto = Moto::start();
    let start = now_ms();
    let child = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "0s", "--rate", "4/s", "--seed", "5", "--follow"])
        .envs(AWS_ENV.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut proc = Proc { child, name: "simulate".into() };
    std::thread::sleep(Duration::from_secs(12));
    proc.signal("INT");
    let status = proc.wait_exit(Duration::from_secs(10)).expect("simulate stops on SIGINT");
    let mut stdout = String::new();
    use std::io::Read;
    proc.child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(status.success(), "{status:?}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(summary["traces"].as_i64().unwrap() >= 8, "{summary}");
    assert!(summary["first_event_ms"].as_i64().unwrap() >= start, "{summary}");
    let n: i64 = moto
        .boto("logs = client('logs')\nprint(sum(len(logs.filter_log_events(logGroupName=g)['events']) for g in ['/aws/lambda/GenerateDynamicScenarioHandler']))")
        .trim()
        .parse()
        .unwrap();
    assert!(n > 0);
}

#[test]
fn endpoints_off_this_machine_are_refused() {
    for endpoint in [Some("https://logs.us-east-1.amazonaws.com"), Some("http://10.1.2.3:4566"), None] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"));
        cmd.args(["simulate", "--region", "us-east-1", "--duration", "1m"]).envs(AWS_ENV.iter().copied()).env_remove("AWS_ENDPOINT_URL");
        if let Some(e) = endpoint {
            cmd.args(["--endpoint-url", e]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{endpoint:?}: {stderr}");
        assert!(stderr.contains("refusing to write") && stderr.contains("--i-know-this-is-a-real-account"), "{stderr}");
    }
    // The guard follows the SDK's own endpoint resolution: a loopback AWS_ENDPOINT_URL that
    // the SDK is told to ignore (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) means real AWS. The
    // guard stops its probe requests before they are signed, so nothing leaves the machine.
    for (ignore, per_service) in [("true", None), ("false", Some(("AWS_ENDPOINT_URL_LAMBDA", "https://lambda.us-east-1.amazonaws.com")))] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"));
        cmd.args(["simulate", "--region", "us-east-1", "--duration", "1m"])
            .envs(AWS_ENV.iter().copied())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ignore);
        if let Some((k, v)) = per_service {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "ignore={ignore}: {stderr}");
        assert!(stderr.contains("refusing to write") && stderr.contains("amazonaws.com"), "ignore={ignore}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", "http://127.0.0.1:9", "--duration", "20d", "--slow", "GDSH/Nope=9s"])
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 error(s)") && stderr.contains("--duration") && stderr.contains("GDSH/Nope"), "{stderr}");
}
