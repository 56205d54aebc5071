//! Test harness: real servers on 127.0.0.1 (moto's server through our launcher, Prometheus,
//! Alertmanager), the daemon binary as a child process, and polling with deadlines instead of
//! sleeps. AWS clients get static credentials and never reach anything but loopback.
#![allow(dead_code)]

pub mod postgres;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Static test credentials and loopback-only settings for every AWS client we start.
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_SESSION_TOKEN", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("NO_PROXY", "127.0.0.1,localhost"),
];

/// The venv python with moto, boto3 and cbor2; installed once by `scripts/test-env.sh`.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/test-env.sh"))
            .arg("python")
            .output()
            .expect("run scripts/test-env.sh");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        if out.status.success() && path.exists() {
            return path;
        }
        let status = Command::new("bash")
            .arg(repo().join("scripts/test-env.sh"))
            .arg("install")
            .status()
            .expect("run scripts/test-env.sh install");
        assert!(status.success(), "scripts/test-env.sh install failed");
        let out = Command::new("bash").arg(repo().join("scripts/test-env.sh")).arg("python").output().unwrap();
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string())
    })
    .clone()
}

/// Polls `f` until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status();
    }
    /// Waits for exit; None if still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's server behind our protocol-fixing launcher, on a free loopback port.
pub struct Moto {
    pub proc: Proc,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with_env(&[])
    }

    /// Starts moto with extra environment variables (`MOTO_XRAY_DESTINATION`, ...).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(python())
            .arg(repo().join("scripts/moto_server.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--port-file"])
            .arg(&port_file)
            .envs(AWS_ENV.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto");
        let proc = Proc { child, name: "moto".into() };
        let port = wait_for("moto's port file", Duration::from_secs(60), || {
            std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok())
        });
        Moto { proc, port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a Python snippet with boto3; `ENDPOINT` is moto's URL. Returns stdout.
    pub fn boto(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3, json, time, sys\nENDPOINT = {:?}\ndef client(name):\n    return boto3.client(name, endpoint_url=ENDPOINT, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n",
            self.url()
        );
        let out = Command::new(python())
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .envs(AWS_ENV.iter().copied())
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto script failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The `[aws]`, `[storage]` and `[http]` sections every test daemon uses (moto's endpoint,
/// `{DB}` and `{LISTEN}` placeholders), followed by the test's own sections.
pub fn daemon_config(moto: &Moto, sections: &str) -> String {
    format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\nmax_attempts = 3\n[storage]\npath = \"{{DB}}\"\n[http]\nlisten = \"{{LISTEN}}\"\n{sections}",
        moto.url()
    )
}

/// The `[logs]` and `[environments]` sections of a daemon that reads quickly: every group
/// under `/aws/lambda/`, polled every second, aliases listed once. `overrides` replace keys
/// of `[logs]` (or add them), e.g. `&[("ingestion_delay", "\"5s\"")]`.
pub fn fast_logs(overrides: &[(&str, &str)]) -> String {
    let defaults = [
        ("log_group_prefixes", "[\"/aws/lambda/\"]"),
        ("poll_interval", "\"1s\""),
        ("idle_poll_interval", "\"2s\""),
        ("discovery_interval", "\"2s\""),
        ("ingestion_delay", "\"30s\""),
        ("start_lookback", "\"1h\""),
        ("requests_per_second", "20.0"),
    ];
    let mut out = String::from("[logs]\n");
    for (k, v) in defaults {
        let v = overrides.iter().find(|(o, _)| *o == k).map_or(v, |(_, v)| *v);
        out.push_str(&format!("{k} = {v}\n"));
    }
    for (k, v) in overrides.iter().filter(|(o, _)| !defaults.iter().any(|(d, _)| d == o)) {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out.push_str("[environments]\nlambda_aliases = true\nalias_refresh_interval = \"1h\"\n");
    out
}

/// A free loopback port (bound then released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The daemon binary running a config written into its own temp dir.
pub struct Daemon {
    pub proc: Proc,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `latency-sentinel run` with `config` (`{DB}` and `{LISTEN}` are substituted).
    pub fn start(dir: &Path, config: &str) -> Daemon {
        Self::start_with_env(dir, config, &[])
    }

    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let db = dir.join("sentinel.db");
        let text = config.replace("{DB}", db.to_str().unwrap()).replace("{LISTEN}", &format!("127.0.0.1:{port}"));
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, text).unwrap();
        let log = dir.join(format!("daemon-{}.log", Instant::now().elapsed().as_nanos() ^ port as u128));
        let child = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
            .args(["run", "--config"])
            .arg(&cfg)
            .envs(AWS_ENV.iter().copied())
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,latency_sentinel=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start daemon");
        let d = Daemon { proc: Proc { child, name: "daemon".into() }, port, dir: dir.to_path_buf(), log };
        wait_for("daemon /healthz", Duration::from_secs(30), || d.get("/healthz").filter(|(s, _)| *s == 200).map(|_| ()));
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// GET → (status, body); None if the connection failed.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&self.url(path))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("sentinel.db")
    }
}

/// Minimal blocking HTTP/1.1 GET over loopback (no client library needed in tests).
pub fn http_get(url: &str) -> Option<(u16, String)> {
    http_request("GET", url, None, &[])
}

pub fn http_request(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    http_exchange(method, url, body, headers).map(|(status, _, body)| (status, body))
}

/// One request → (status, response head, body).
pub fn http_exchange(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Some((status, head.to_string(), body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = s.split_once("\r\n") else { break };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A row count from the daemon's database through the sqlite3 CLI-free path: a fresh sqlx
/// connection (read-only use; WAL lets it read while the daemon writes).
pub fn query_scalar_i64(db: &Path, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .connect()
            .await
            .unwrap();
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap();
        v
    })
}

/// A single text value from the database.
pub fn query_string(db: &Path, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&mut conn).await.unwrap();
        v
    })
}

/// Runs `promtool check metrics` on an exposition; panics with promtool's complaints.
pub fn promtool_check_metrics(exposition: &str) {
    use std::io::Write;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test-env.sh install puts it there)");
    promtool.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A webhook receiver on loopback that records every POST body.
pub fn webhook_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Read headers, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                        .unwrap_or(0);
                    if body.len() >= len {
                        if let Ok(v) = serde_json::from_str(&body[..len]) {
                            sink.lock().unwrap().push(v);
                        }
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, got)
}


// ---- Fault injection and scale (tests/faults.rs, tests/scale.rs) ----------------------------

/// `tests/support/fault_proxy.py` between the daemon and moto: forwards every request, or
/// injects AWS throttling, 5xx, slow or stalled answers and dropped connections.
pub struct FaultProxy {
    pub proc: Option<Proc>,
    pub port: u16,
    upstream: String,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream`; `args` go to fault_proxy.py (`--fault-rate`, ...).
    pub fn start(upstream: &str, args: &[&str]) -> FaultProxy {
        let mut p = FaultProxy {
            proc: None,
            port: 0,
            upstream: upstream.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir().unwrap(),
        };
        p.spawn(0);
        p
    }

    fn spawn(&mut self, port: u16) {
        let port_file = self.dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("proxy.log")).unwrap();
        let child = Command::new(python())
            .arg(repo().join("tests/support/fault_proxy.py"))
            .args(["--upstream", &self.upstream, "--port", &port.to_string(), "--port-file"])
            .arg(&port_file)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fault_proxy.py");
        self.proc = Some(Proc { child, name: "fault-proxy".into() });
        self.port = wait_for("the fault proxy's port file", Duration::from_secs(30), || {
            std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok())
        });
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the proxy saw: `requests`, `faults` {api: {kind: n}}, `ok` {api: n},
    /// `filter_log_events` {log group: n}.
    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = http_get(&format!("{}/__proxy/stats", self.url())).expect("fault proxy answers");
        serde_json::from_str(&body).unwrap()
    }

    /// Changes `fault_rate`, `weights` or queues `force`d faults at run time.
    pub fn configure(&self, cfg: serde_json::Value) {
        let (status, _) = http_request("POST", &format!("{}/__proxy/config", self.url()), Some(&cfg.to_string()), &[]).expect("fault proxy answers");
        assert_eq!(status, 200);
    }

    /// Stops the proxy: its port refuses connections until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Starts it again on the same port (its counters start from zero).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn(port);
    }
}

/// A daemon config (from `daemon_config`) whose AWS endpoint is `endpoint` instead of moto.
pub fn via_endpoint(config: String, moto: &Moto, endpoint: &str) -> String {
    config.replace(&format!("endpoint_url = \"{}\"", moto.url()), &format!("endpoint_url = \"{endpoint}\""))
}

/// Sum of the samples of `name` whose labels include every `labels` pair.
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Stored events per "env|function|operation|source".
pub fn event_counts(db: &Path) -> std::collections::BTreeMap<String, i64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT env || '|' || function || '|' || operation || '|' || source, COUNT(*) FROM events GROUP BY 1")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        rows.into_iter().collect()
    })
}

/// The keys whose counts differ, one "key: expected e, stored s" line each.
pub fn count_diff(expected: &std::collections::BTreeMap<String, i64>, got: &std::collections::BTreeMap<String, i64>) -> String {
    let keys: std::collections::BTreeSet<&String> = expected.keys().chain(got.keys()).collect();
    let mut out = String::new();
    for k in keys {
        let (e, g) = (expected.get(k).copied().unwrap_or(0), got.get(k).copied().unwrap_or(0));
        if e != g {
            out.push_str(&format!("  {k}: expected {e}, stored {g}\n"));
        }
    }
    out
}

/// Waits until the stored counts equal `expected`; panics with the difference and the
/// daemon's log tail.
pub fn wait_event_counts(db: &Path, expected: &std::collections::BTreeMap<String, i64>, timeout: Duration, daemon: &Daemon, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = event_counts(db);
        if &got == expected {
            return;
        }
        if Instant::now() > deadline {
            let logs = daemon.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            panic!(
                "{what}: stored counts differ after {timeout:?}:\n{}\ndaemon log tail:\n{}",
                count_diff(expected, &got),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Parses the last stdout line of a traffic script: {"env|function|operation|source": n}.
pub fn expected_counts(stdout: &str) -> std::collections::BTreeMap<String, i64> {
    serde_json::from_str(stdout.trim().lines().last().unwrap_or("{}")).unwrap()
}

impl Moto {
    /// Starts a boto3 script (same prelude as `boto`) in the background; its stdout goes to
    /// `out`. For traffic that keeps flowing while the test does other things.
    pub fn boto_background(&self, script: &str, out: &Path) -> Proc {
        let prelude = format!(
            "import boto3, json, time, sys, os\nENDPOINT = {:?}\nsys.path.insert(0, {:?})\ndef client(name):\n    return boto3.client(name, endpoint_url=ENDPOINT, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n",
            self.url(),
            repo().join("tests/support").to_str().unwrap(),
        );
        let child = Command::new(python())
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .envs(AWS_ENV.iter().copied())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
            .spawn()
            .expect("run python");
        Proc { child, name: "traffic".into() }
    }
}

/// Percent-encodes a query parameter.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus on a free loopback port scraping `target_port` every second.
pub fn start_prometheus(dir: &std::path::Path, target_port: u16) -> (Proc, u16) {
    let port = free_port();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sentinel\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (scripts/test-env.sh install)");
    let p = Proc { child, name: "prometheus".into() };
    wait_for("prometheus ready", Duration::from_secs(30), || {
        http_get(&format!("http://127.0.0.1:{port}/-/ready")).filter(|(s, _)| *s == 200).map(|_| ())
    });
    (p, port)
}
