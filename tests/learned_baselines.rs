//! The daemon alerting without a single budget: a week of the seed application's history is
//! written straight into its store (`simulate --into-db`), then live traffic with Dev's Bedrock
//! call slowed goes through moto's server. The daemon, with `[anomaly]` on and no budget, tells
//! the webhook one `LatencyRegression` for the cause (the call, with the evidence of every name
//! it goes by and the whole-invocation rows it explains) and nothing for PROD; the API, the
//! exposition, `report anomalies` and `report compare` say the same.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const GDSH: &str = "GenerateDynamicScenarioHandler";

fn sentinel(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel")).args(args).envs(AWS_ENV.iter().copied()).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_slowed_call_is_one_regression_alert_with_its_evidence_against_a_week_of_history() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sentinel.db");
    // A week and two hours of normal traffic, so the same hours of last week exist.
    let history = sentinel(&["simulate", "--into-db", db.to_str().unwrap(), "--duration", "170h", "--rate", "3/m", "--seed", "3"]);
    let summary: Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert!(summary["log_events"].as_u64().unwrap() > 500_000, "{summary}");
    sentinel(&["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "10m", "--rate", "12/m", "--seed", "8", "--slow", &format!("{GDSH}/Bedrock.InvokeModel@Dev=9s,from=-6m")]);

    let (hook, got) = webhook_receiver();
    let config = daemon_config(
        &moto,
        &format!(
            "{}[xray]\npoll_interval = \"2s\"\nsettle_delay = \"0s\"\nlookback = \"15m\"\nstart_lookback = \"1h\"\nrequests_per_second = 20.0\n\
             [alerts]\nevaluation_interval = \"1s\"\nwebhook_url = \"http://127.0.0.1:{hook}/hook\"\n\
             [anomaly]\nenabled = true\nfor = \"1m\"\n",
            fast_logs(&[])
        ),
    );
    let daemon = Daemon::start(dir.path(), &config);
    let regressions = || -> Vec<Value> {
        got.lock().unwrap().iter().filter(|b| b["labels"]["alertname"] == "LatencyRegression" && b["state"] == "firing").cloned().collect()
    };
    wait_for("a LatencyRegression firing at the webhook", Duration::from_secs(240), || regressions().first().cloned());
    // The X-Ray side has arrived and been judged too: the call's name is the cause's.
    wait_for("Dev's Bedrock call judged from both sources", Duration::from_secs(120), || {
        let (_, body) = daemon.get("/api/v1/anomalies?env=Dev&function=GenerateDynamicScenarioHandler")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let rows = v["anomalies"].as_array()?;
        let verdict = |op: &str| rows.iter().find(|a| a["operation"] == op).map(|a| a["verdict"].clone());
        (verdict("BedrockCallDuration")? == "regression" && verdict("Bedrock.InvokeModel").is_some()).then_some(())
    });
    // A few more evaluations: anything else that was going to be told has been.
    let evaluations = |d: &Daemon| metric_sum(&d.get("/metrics").unwrap().1, "sentinel_evaluations_total", &[]);
    let seen = evaluations(&daemon);
    wait_for("five more evaluations", Duration::from_secs(30), || (evaluations(&daemon) >= seen + 5.0).then_some(()));

    let fired = regressions();
    let causes: Vec<(String, String, String)> = fired
        .iter()
        .map(|b| (b["labels"]["env"].as_str().unwrap().into(), b["labels"]["function"].as_str().unwrap().into(), b["labels"]["operation"].as_str().unwrap().into()))
        .collect();
    let unique: std::collections::BTreeSet<_> = causes.iter().cloned().collect();
    assert_eq!(unique.len(), causes.len(), "one notification per cause: {causes:?}");
    assert!(causes.iter().all(|(env, function, _)| env == "Dev" && function == GDSH), "only Dev's slowed function: {causes:?}");
    assert!(
        causes.iter().all(|(_, _, op)| !latency_sentinel::cause::is_function_level(op)),
        "the invocation's rows are explained, not told: {causes:?}"
    );
    let call = fired.iter().find(|b| b["labels"]["operation"] == "Bedrock.InvokeModel").unwrap_or_else(|| panic!("told as the call: {causes:?}"));
    let evidence: Vec<&str> = call["evidence"].as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert!(evidence.contains(&"BedrockCallDuration") && evidence.contains(&"Bedrock.InvokeModel"), "{call:#}");
    let explains: Vec<&str> = call["explains"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(explains.contains(&"Lambda.Duration"), "{call:#}");
    let a = &call["annotations"];
    assert!(a["ratio"].as_str().unwrap().parse::<f64>().unwrap() >= 1.5, "{call:#}");
    assert!(a["baseline_range"].as_str().unwrap().contains("past weeks"), "judged against last week's same hours: {call:#}");
    assert!(call["labels"].get("budget").is_none());

    // The learned link is shown for a person to confirm.
    let (_, body) = daemon.get("/api/v1/operations?since=15m&env=Dev").unwrap();
    let ops: Value = serde_json::from_str(&body).unwrap();
    let learned = ops["links"].as_array().unwrap();
    assert!(
        learned.iter().any(|l| l["name"] == "Bedrock.InvokeModel" && l["also"] == "BedrockCallDuration" && l["origin"] == "learned" && l["function"] == GDSH),
        "{learned:#?}"
    );
    let metrics = daemon.get("/metrics").unwrap().1;
    assert!(metric_sum(&metrics, "sentinel_baseline_seconds", &[("env", "PROD"), ("operation", "BedrockCallDuration"), ("function", GDSH)]) > 0.5, "{metrics}");
    assert!(metric_sum(&metrics, "sentinel_alerts", &[("alertname", "LatencyRegression"), ("env", "Dev")]) >= 1.0);
    promtool_check_metrics(&metrics);

    // The reports read the same from the store.
    let cfg = dir.path().join("config.toml");
    let cfg = cfg.to_str().unwrap();
    let report = sentinel(&["report", "anomalies", "--config", cfg, "--env", "Dev", "--function", GDSH, "--format", "json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let first = &report["operations"][0];
    assert_eq!(first["verdict"], "regression", "{report:#}");
    let compare = |extra: &[&str]| -> Value {
        let mut args = vec!["report", "compare", "--config", cfg, "--baseline", "PROD", "--candidate", "Dev", "--since", "6m", "--function", GDSH, "--format", "json"];
        args.extend(extra);
        serde_json::from_str(&sentinel(&args)).unwrap()
    };
    let grouped = compare(&[]);
    let flat = compare(&["--no-group"]);
    let regressions = |r: &Value| r["rows"].as_array().unwrap().iter().filter(|x| x["verdict"] == "regression").count();
    assert_eq!(regressions(&grouped), 1, "one row per cause: {grouped:#}");
    assert!(regressions(&flat) >= 4, "the flat view keeps every row: {flat:#}");
    let lead = grouped["rows"].as_array().unwrap().iter().find(|x| x["verdict"] == "regression").unwrap();
    assert_eq!(lead["operation"], "Bedrock.InvokeModel");
    assert!(lead["explains"].as_array().unwrap().iter().all(|x| x["explained_by"] == "Bedrock.InvokeModel"));
    drop(daemon);
}
