//! One daemon keeping its history in PostgreSQL (a throwaway cluster) while tailing moto's
//! server: what `simulate` wrote is stored exactly once, across a SIGKILL and a restart,
//! and `report` (given the config) and the API read it from PostgreSQL.

mod common;

use common::postgres::Postgres;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn a_daemon_on_postgresql_stores_exactly_once_and_reports_read_it() {
    let pg = Postgres::start();
    let moto = Moto::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "5m", "--rate", "12/m", "--seed", "3"])
        .args(["--error-rate", "0", "--timeout-rate", "0", "--malformed-rate", "0"])
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let invocations = summary["invocations"].as_i64().unwrap();
    assert!(invocations > 100, "{summary}");

    let dir = tempfile::tempdir().unwrap();
    let config = daemon_config(&moto, &format!("{}[xray]\nenabled = false\n", fast_logs(&[])))
        .replace("[storage]\n", &format!("[storage]\nurl = \"{}\"\n", pg.url()));
    let reports = |c: &BTreeMap<String, i64>| c.iter().filter(|(k, _)| k.contains("|Lambda.Duration|")).map(|(_, v)| v).sum::<i64>();
    let daemon = Daemon::start(dir.path(), &config);
    let first = wait_for("every REPORT stored in PostgreSQL", Duration::from_secs(90), || {
        let c = pg.event_counts();
        (reports(&c) == invocations).then_some(c)
    });
    assert!(first.len() > 20, "every operation of every function: {first:?}");
    assert!(!dir.path().join("sentinel.db").exists(), "no SQLite file when storage.url is set");

    // Killed and started again: it resumes from its checkpoints in PostgreSQL and re-reads
    // the overlap, storing nothing twice.
    daemon.proc.signal("KILL");
    drop(daemon);
    let restarted = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let daemon = Daemon::start(dir.path(), &config);
    wait_for("the restarted daemon polled each of the four groups again", Duration::from_secs(60), || {
        let m = daemon.get("/metrics")?.1;
        let polled = m
            .lines()
            .filter(|l| l.starts_with("sentinel_log_group_last_poll_timestamp_seconds{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .filter(|t| *t > restarted)
            .count();
        (polled >= 4).then_some(())
    });
    assert_eq!(pg.event_counts(), first, "{}", daemon.logs());

    // Reports given the config, and the API, read the history from PostgreSQL.
    let cfg = dir.path().join("config.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["report", "top", "--since", "1h", "--format", "json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let top: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let in_report: i64 = top["operations"].as_array().unwrap().iter().map(|r| r["count"].as_i64().unwrap()).sum();
    assert_eq!(in_report, first.values().sum::<i64>(), "{top}");
    let (status, body) = daemon.get("/api/v1/operations?since=1h").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Lambda.Duration"), "{body}");
    let (status, ready) = daemon.get("/readyz").unwrap();
    assert_eq!(status, 200, "{ready}");
}
