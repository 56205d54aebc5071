//! The daemon as a process against moto's server: it becomes ready, serves metrics that
//! promtool accepts, refuses a second instance on the same database, and on SIGTERM exits 0
//! within 10 s leaving a consistent database.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

pub fn base_config(moto: &Moto) -> String {
    daemon_config(moto, &format!("{}[xray]\nenabled = false\n", fast_logs(&[("ingestion_delay", "\"5s\"")])))
}

#[test]
fn starts_ready_serves_valid_metrics_and_stops_cleanly_on_sigterm() {
    let moto = Moto::start();
    moto.boto("logs = client('logs')\nlogs.create_log_group(logGroupName='/aws/lambda/Hello')\n");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &base_config(&moto));

    let body = wait_for("/readyz 200", Duration::from_secs(30), || {
        daemon.get("/readyz").filter(|(s, _)| *s == 200).map(|(_, b)| b)
    });
    assert!(body.contains("\"logs\""), "{body}");

    let metrics = wait_for("a completed poll of the group", Duration::from_secs(30), || {
        daemon.get("/metrics").map(|(_, b)| b).filter(|b| b.contains("sentinel_log_group_last_poll_timestamp_seconds{account=\"default\",log_group=\"/aws/lambda/Hello\",region=\"\"}"))
    });
    assert!(metrics.contains("sentinel_build_info"), "{metrics}");
    assert!(metrics.contains("sentinel_aws_requests_total{api=\"DescribeLogGroups\",outcome=\"ok\"}"), "{metrics}");
    // The store's size, from its first retention pass at start: the file's pages.
    let database = std::fs::metadata(daemon.db()).unwrap().len() as f64;
    let reported = metric_sum(&metrics, "sentinel_storage_bytes", &[("file", "database")]);
    assert!(reported >= 4096.0 && reported <= database.max(4096.0) * 4.0, "sentinel_storage_bytes {reported} vs a {database}-byte file:\n{metrics}");
    promtool_check_metrics(&metrics);

    // A second daemon on the same database refuses to start, with a clear message.
    let second_cfg = dir.path().join("second.toml");
    std::fs::write(
        &second_cfg,
        base_config(&moto)
            .replace("{DB}", daemon.db().to_str().unwrap())
            .replace("{LISTEN}", &format!("127.0.0.1:{}", free_port())),
    )
    .unwrap();
    let second = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["run", "--config"])
        .arg(&second_cfg)
        .envs(AWS_ENV.iter().copied())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another latency-sentinel"), "{stderr}");

    daemon.proc.signal("TERM");
    let status = daemon.proc.wait_exit(Duration::from_secs(10)).expect("exit within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", daemon.logs());

    // The database is consistent and no longer locked.
    assert_eq!(query_string(&daemon.db(), "PRAGMA integrity_check"), "ok");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = latency_sentinel::store::Store::open(&daemon.db(), latency_sentinel::store::OpenMode::Writer, 4096)
            .await
            .expect("lock released after exit");
        assert!(store.checkpoint("logs", "/aws/lambda/Hello").await.unwrap().is_some(), "the poll's checkpoint was committed");
    });
}

#[test]
fn check_config_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["check-config", "--config"])
        .arg(repo().join("config/example.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[logs]\nlog_groups = [\"/aws/lambda/a\"]\npoll_interval = \"fast\"\n[http]\nlisten = \"nowhere\"\n[alerts]\nalertmanager_url = \"ftp://x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel")).args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["logs.poll_interval:", "http.listen:", "alerts.alertmanager_url:"] {
        assert!(stderr.contains(key), "{key} missing in:\n{stderr}");
    }
    assert!(stderr.contains("3 error(s)"), "{stderr}");

    // Beyond loopback without a token the daemon does not start, and says why.
    let open = dir.path().join("open.toml");
    let db = dir.path().join("open.db");
    std::fs::write(&open, format!("[logs]\nlog_groups = [\"/aws/lambda/a\"]\n[storage]\npath = {:?}\n[http]\nlisten = \"0.0.0.0:0\"\n", db.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel")).args(["run", "--config"]).arg(&open).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("http.listen:") && stderr.contains("api_token") && stderr.contains("allow_unauthenticated"), "{stderr}");
    assert!(!db.exists(), "nothing was started");
}
