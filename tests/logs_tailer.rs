//! The log tailer against moto's server: every format, two aliases, junk lines; exact counts
//! per (env, function, operation, source); a SIGKILL mid-run and a restart duplicate and lose
//! nothing; late events within `ingestion_delay` are picked up; a deleted log group does not
//! stop the others.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn config(moto: &Moto) -> String {
    daemon_config(moto, &format!("{}[xray]\nenabled = false\n", fast_logs(&[("log_groups", "[\"/aws/lambda/Doomed\"]")])))
}

const PRELUDE: &str = r#"
sys.path.insert(0, 'tests/support')
import lambda_traffic as t
logs = client('logs'); lam = client('lambda'); iam = client('iam')
"#;

fn counts(db: &std::path::Path) -> BTreeMap<String, i64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT env || '|' || function || '|' || operation || '|' || source, COUNT(*) FROM events GROUP BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.into_iter().collect()
    })
}

fn wait_counts(db: &std::path::Path, expected: &BTreeMap<String, i64>, what: &str, daemon: &Daemon) -> BTreeMap<String, i64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let c = counts(db);
        if &c == expected {
            return c;
        }
        if std::time::Instant::now() > deadline {
            let mut diff = String::new();
            for k in expected.keys().chain(c.keys()).collect::<std::collections::BTreeSet<_>>() {
                let (e, g) = (expected.get(k).copied().unwrap_or(0), c.get(k).copied().unwrap_or(0));
                if e != g {
                    diff.push_str(&format!("  {k}: expected {e}, stored {g}\n"));
                }
            }
            let logs = daemon.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            panic!("{what}: counts differ:\n{diff}\ndaemon log tail:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn parse_expected(json: &str) -> BTreeMap<String, i64> {
    serde_json::from_str(json.trim().lines().last().unwrap()).unwrap()
}

fn merge(a: &mut BTreeMap<String, i64>, b: BTreeMap<String, i64>) {
    for (k, v) in b {
        *a.entry(k).or_default() += v;
    }
}

#[test]
fn every_format_is_stored_exactly_once_across_kill_and_restart() {
    std::env::set_current_dir(repo()).unwrap();
    let moto = Moto::start();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let phase1 = moto.boto(&format!(
        "{PRELUDE}
versions = {{f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler', 'InvokeOutboundCallHandler']}}
w = t.write_phase(logs, versions, {start}, 20)
rej = w.junk('GenerateDynamicScenarioHandler', t.stream_name(versions['GenerateDynamicScenarioHandler']['PROD']), {start} + 5000)
w.put('/aws/lambda/Doomed', t.stream_name('1'), [t.seed('TIMING', 'D', metric='X', value_sec=1.0)], {start})
w.expect('default', 'Doomed', 'X', 'logs')
json.dump(versions, open({vfile:?}, 'w'))
print(json.dumps(dict(w.expected)))
",
        start = now_ms - 120_000,
        vfile = moto.dir.path().join("versions.json").to_str().unwrap(),
    ));
    let mut expected = parse_expected(&phase1);
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config(&moto));
    let db = daemon.db();
    // Kill it as soon as it has stored something: mid-run, checkpoints partly advanced.
    wait_for("first events", Duration::from_secs(60), || (query_scalar_i64(&db, "SELECT COUNT(*) FROM events") > 0).then_some(()));
    daemon.proc.signal("KILL");
    daemon.proc.wait_exit(Duration::from_secs(5)).expect("killed");

    // More traffic while it is down, then a restart.
    let phase2 = moto.boto(&format!(
        "{PRELUDE}
versions = json.load(open({vfile:?}))
w = t.write_phase(logs, versions, int(time.time() * 1000) - 2000, 10, bedrock_s=9.0, cold=False)
print(json.dumps(dict(w.expected)))
",
        vfile = moto.dir.path().join("versions.json").to_str().unwrap(),
    ));
    merge(&mut expected, parse_expected(&phase2));
    let daemon = Daemon::start(dir.path(), &config(&moto));
    let got = wait_counts(&db, &expected, "after restart", &daemon);
    assert!(got.keys().any(|k| k.starts_with("Dev|GenerateDynamicScenarioHandler|BedrockCallDuration|logs")));
    assert!(got.keys().any(|k| k.starts_with("PROD|InvokeOutboundCallHandler|ConnectCallDuration|logs")));
    assert_eq!(query_scalar_i64(&db, "SELECT COUNT(*) FROM rejected WHERE source = 'logs'"), 4);

    // Seed lines carry their invocation's request id and (from the REPORT) trace id.
    assert_eq!(
        query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE operation = 'BedrockCallDuration' AND (request_id IS NULL OR trace_id IS NULL)"),
        0
    );
    // Cold starts: one per (function, env) text/JSON stream of phase 1.
    assert_eq!(query_scalar_i64(&db, "SELECT COUNT(*) FROM events WHERE operation = 'Lambda.Duration' AND cold_start = 1"), 3);

    // A late event: older than the checkpoint, within ingestion_delay.
    let late = moto.boto(&format!(
        "{PRELUDE}
versions = json.load(open({vfile:?}))
w = t.Writer(logs)
w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', 'PROD', versions['GenerateDynamicScenarioHandler']['PROD'], t.stream_name(versions['GenerateDynamicScenarioHandler']['PROD']), int(time.time() * 1000) - 10000, 1.0, False)
print(json.dumps(dict(w.expected)))
",
        vfile = moto.dir.path().join("versions.json").to_str().unwrap(),
    ));
    merge(&mut expected, parse_expected(&late));

    // Delete one group while it runs: the others go on, and it is reported.
    moto.boto("client('logs').delete_log_group(logGroupName='/aws/lambda/Doomed')\n");
    let after_delete = moto.boto(&format!(
        "{PRELUDE}
versions = json.load(open({vfile:?}))
w = t.Writer(logs)
v = versions['InvokeOutboundCallHandler']['Dev']
w.json_invocation('InvokeOutboundCallHandler', 'IOCH', 'Dev', v, t.stream_name(v), int(time.time() * 1000), False)
w.junk('InvokeOutboundCallHandler', t.stream_name(v), int(time.time() * 1000))
print(json.dumps(dict(w.expected)))
",
        vfile = moto.dir.path().join("versions.json").to_str().unwrap(),
    ));
    merge(&mut expected, parse_expected(&after_delete));
    wait_counts(&db, &expected, "late and post-delete events", &daemon);
    wait_for("the deleted group reported", Duration::from_secs(30), || {
        daemon.get("/metrics").map(|(_, b)| b).filter(|b| b.contains("sentinel_log_group_unavailable{account=\"default\",log_group=\"/aws/lambda/Doomed\",region=\"\"} 1"))
    });
    // The running process saw the second batch of junk (the first one went to the killed process).
    let metrics = wait_for("rejections counted", Duration::from_secs(30), || {
        daemon.get("/metrics").map(|(_, b)| b).filter(|b| b.contains("sentinel_inputs_rejected_total{reason=\"bad_value\",source=\"logs\"}"))
    });
    assert!(metrics.contains("sentinel_log_group_unavailable{account=\"default\",log_group=\"/aws/lambda/Doomed\",region=\"\"} 1"));
    // Both batches of junk kept (the counter above may come from a re-read of the first one,
    // when the killed process had not committed it: wait for the rows, do not assume them).
    wait_for("both batches of junk kept", Duration::from_secs(30), || {
        (query_scalar_i64(&db, "SELECT COUNT(*) FROM rejected WHERE source = 'logs'") == 8).then_some(())
    });
    let (_, ready) = daemon.get("/readyz").unwrap();
    assert!(ready.contains("/aws/lambda/Doomed") && ready.contains("deleted"), "{ready}");
}
