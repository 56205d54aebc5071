//! Test harness: real servers on 127.0.0.1 (moto's server through our launcher, Prometheus,
//! Alertmanager), the daemon binary as a child process, and polling with deadlines instead of
//! sleeps. AWS clients get static credentials and never reach anything but loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
    Some((status, body))
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
