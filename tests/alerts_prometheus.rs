//! Budgets and alerts against real receivers: a real Prometheus scrapes the daemon and
//! returns the exact p95 the test computed; a real Alertmanager sees the alert for the
//! slowed-down operation (and nothing for the others) and sees it resolve; a webhook
//! receiver gets the same transitions.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn start_alertmanager(dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n").unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
        .spawn()
        .expect("prometheus-alertmanager (scripts/test-env.sh install)");
    let p = Proc { child, name: "alertmanager".into() };
    wait_for("alertmanager ready", Duration::from_secs(30), || {
        http_get(&format!("http://127.0.0.1:{port}/-/ready")).filter(|(s, _)| *s == 200).map(|_| ())
    });
    (p, port)
}

const PRELUDE: &str = "sys.path.insert(0, 'tests/support')\nimport lambda_traffic as t\nlogs = client('logs'); lam = client('lambda'); iam = client('iam')\n";

fn write_invocations(moto: &Moto, versions: &str, env: &str, values: &[f64]) {
    let list = values.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(", ");
    moto.boto(&format!(
        "{PRELUDE}versions = json.load(open({versions:?}))
w = t.Writer(logs)
v = versions['GenerateDynamicScenarioHandler']['{env}']
s = t.stream_name(v)
now = int(time.time() * 1000)
for i, b in enumerate([{list}]):
    w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', '{env}', v, s, now - 2000 + i * 10, b, False)
"
    ));
}

fn nearest_rank(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    latency_sentinel::quantile::nearest_rank(&v, q).expect("values")
}

#[test]
fn prometheus_sees_exact_p95_and_alertmanager_and_webhook_see_fire_and_resolve() {
    std::env::set_current_dir(repo()).unwrap();
    let moto = Moto::start();
    let versions = moto.dir.path().join("versions.json");
    moto.boto(&format!(
        "{PRELUDE}versions = {{f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler']}}\njson.dump(versions, open({:?}, 'w'))\n",
        versions.to_str().unwrap()
    ));
    let dir = tempfile::tempdir().unwrap();
    let (_am, am_port) = start_alertmanager(dir.path());
    let (hook_port, hooks) = webhook_receiver();
    let config = daemon_config(
        &moto,
        &format!(
            r#"{}[xray]
enabled = false
[alerts]
evaluation_interval = "1s"
webhook_url = "${{TEST_HOOK_URL}}"
alertmanager_url = "http://127.0.0.1:{am_port}"
[[budgets]]
name = "bedrock-p95"
operation = "BedrockCallDuration"
p95 = "5s"
window = "20s"
for = "0s"
keep_firing_for = "1s"
min_samples = 5
"#,
            fast_logs(&[("idle_poll_interval", "\"1s\""), ("discovery_interval", "\"1s\"")])
        ),
    );
    let secret_hook = format!("http://127.0.0.1:{hook_port}/hooks/T000SECRET");
    let daemon = Daemon::start_with_env(dir.path(), &config, &[("TEST_HOOK_URL", secret_hook.as_str())]);
    let (_prom, prom_port) = start_prometheus(dir.path(), daemon.port);

    // PROD fast, Dev slow.
    let prod: Vec<f64> = (0..30).map(|i| 1.0 + i as f64 * 0.05).collect();
    let dev: Vec<f64> = (0..30).map(|i| 8.5 + i as f64 * 0.02).collect();
    write_invocations(&moto, versions.to_str().unwrap(), "PROD", &prod);
    write_invocations(&moto, versions.to_str().unwrap(), "Dev", &dev);

    // Prometheus returns the exact p95 the test computes.
    let expected = nearest_rank(&prod, 0.95);
    let query = r#"sentinel_operation_latency_seconds{quantile="0.95",env="PROD",operation="BedrockCallDuration",source="logs"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let got = loop {
        let value = http_get(&format!("http://127.0.0.1:{prom_port}/api/v1/query?query={}", pct(query)))
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok()));
        if let Some(v) = value {
            break v;
        }
        if std::time::Instant::now() > deadline {
            let metrics = daemon.get("/metrics").map(|(_, b)| b).unwrap_or_default();
            let ours: Vec<&str> = metrics.lines().filter(|l| l.contains("latency_seconds{") || l.contains("events_stored")).collect();
            let targets = http_get(&format!("http://127.0.0.1:{prom_port}/api/v1/targets")).map(|(_, b)| b).unwrap_or_default();
            panic!("no PROD p95 in Prometheus.\ndaemon:\n{}\ntargets: {targets}\nlog tail: {}", ours.join("\n"), daemon.logs().lines().rev().take(15).collect::<Vec<_>>().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!((got - expected).abs() < 1e-9, "prometheus says {got}, the test computed {expected}");

    // Alertmanager sees exactly the Dev alert.
    let am_alerts = || -> Vec<serde_json::Value> {
        http_get(&format!("http://127.0.0.1:{am_port}/api/v2/alerts?active=true"))
            .and_then(|(_, b)| serde_json::from_str::<Vec<serde_json::Value>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["status"]["state"] == "active")
            .collect()
    };
    let firing = wait_for("the Dev alert in Alertmanager", Duration::from_secs(60), || {
        let a = am_alerts();
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(firing.len(), 1, "{firing:#?}");
    let labels = &firing[0]["labels"];
    assert_eq!(labels["alertname"], "LatencyBudgetExceeded");
    assert_eq!(labels["env"], "Dev");
    assert_eq!(labels["function"], "GenerateDynamicScenarioHandler");
    assert_eq!(labels["operation"], "BedrockCallDuration");
    assert_eq!(labels["quantile"], "0.95");
    // With every metric family populated (histogram, quantiles, budgets, alerts), the
    // exposition still passes promtool.
    let (_, exposition) = daemon.get("/metrics").unwrap();
    assert!(exposition.contains("sentinel_alerts{account=\"default\",alertname=\"LatencyBudgetExceeded\",alertstate=\"firing\",env=\"Dev\""), "{exposition}");
    assert!(exposition.contains("sentinel_operation_duration_seconds_bucket{"));
    promtool_check_metrics(&exposition);

    // The slowdown ends: fast Dev traffic; the slow events leave the 20 s window.
    write_invocations(&moto, versions.to_str().unwrap(), "Dev", &[1.0, 1.1, 1.2, 1.3, 1.4, 1.5]);
    wait_for("the alert resolved in Alertmanager", Duration::from_secs(90), || am_alerts().is_empty().then_some(()));

    let states = wait_for("webhook firing and resolved", Duration::from_secs(30), || {
        let got = hooks.lock().unwrap().clone();
        let states: Vec<(String, String)> =
            got.iter().map(|h| (h["labels"]["env"].as_str().unwrap_or("").to_string(), h["status"].as_str().unwrap_or("").to_string())).collect();
        states.iter().any(|(_, s)| s == "resolved").then_some(states)
    });
    assert_eq!(states, vec![("Dev".to_string(), "firing".to_string()), ("Dev".to_string(), "resolved".to_string())]);
    let first = hooks.lock().unwrap()[0].clone();
    assert_eq!(first["budget"], 5.0);
    assert!(first["value"].as_f64().unwrap() > 8.0 && first["samples"].as_u64().unwrap() >= 5, "{first}");

    // The API lists the transitions; the webhook's secret appears in neither logs nor metrics.
    let (_, alerts) = daemon.get("/api/v1/alerts?since=1h").unwrap();
    assert!(alerts.contains("\"transition\":\"firing\"") && alerts.contains("\"transition\":\"resolved\""), "{alerts}");
    let (_, metrics) = daemon.get("/metrics").unwrap();
    assert!(!metrics.contains("T000SECRET") && !daemon.logs().contains("T000SECRET"));
    let (status, _) = daemon.get("/api/v1/operations?since=fast").unwrap();
    assert_eq!(status, 400);
}
