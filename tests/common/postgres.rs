//! A throwaway PostgreSQL cluster per test: `initdb` into a temp dir, a free loopback port,
//! stopped (immediately) when dropped. PostgreSQL refuses to run as root, and CI runs as
//! root: then the cluster belongs to `nobody` and every server command runs through
//! `runuser`. The binaries come from Debian's `postgresql` (`scripts/test-env.sh install`
//! puts them there; `pg-bindir` finds them).

use super::{free_port, repo, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// The unprivileged user the server runs as, when the tests run as root.
    user: Option<&'static str>,
}

/// The user and database every test cluster has.
pub const USER: &str = "sentinel";
pub const DATABASE: &str = "sentinel";

fn bindir() -> PathBuf {
    let out = Command::new("bash").arg(repo().join("scripts/test-env.sh")).arg("pg-bindir").output().expect("run scripts/test-env.sh");
    assert!(
        out.status.success(),
        "PostgreSQL's server binaries are missing (scripts/test-env.sh install installs Debian's postgresql): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// A new cluster with the database [`DATABASE`] owned by [`USER`] (trust auth on
    /// loopback: the tests' cluster holds nothing secret), listening on a free port.
    pub fn start() -> Postgres {
        let bindir = bindir();
        let dir = tempfile::tempdir().unwrap();
        let user = running_as_root().then_some("nobody");
        if let Some(u) = user {
            let ok = Command::new("chown").args(["-R", u]).arg(dir.path()).status().is_ok_and(|s| s.success());
            assert!(ok, "chown {} to {u}", dir.path().display());
        }
        let pg = Postgres { port: free_port(), dir, bindir, user };
        let data = pg.data();
        pg.run("initdb", &["-D", data.to_str().unwrap(), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
        pg.start_server();
        pg.run("createdb", &["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", USER, DATABASE]);
        pg
    }

    /// `postgres://sentinel@127.0.0.1:PORT/sentinel`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the cluster's binaries, run as its user from its directory (`nobody` cannot
    /// read the root-owned working directory of the test).
    fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        let mut cmd = match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs one of the cluster's binaries; panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Starts the server (again, after [`Postgres::stop`]) on the same port and data.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.data(), self.dir.path().join("server.log"));
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &options, "-w", "-t", "60", "start"]);
        wait_for("PostgreSQL accepting connections", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).ok().map(|_| ())
        });
    }

    /// Stops the server at once (connections cut, as a crash or an outage would).
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl").args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"]).output();
    }
}

impl Postgres {
    /// Stored events per `env|function|operation|source` (every account and region summed),
    /// read through the store's own PostgreSQL engine; empty before the first migration.
    pub fn event_counts(&self) -> std::collections::BTreeMap<String, i64> {
        use latency_sentinel::store::postgres::{PgStore, PgTarget};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _in_runtime = rt.enter();
        let url = self.url();
        let target = PgTarget { url: &url, password: "", pool_size: 1, rejected_max_bytes: 4096, connect_timeout: Duration::from_secs(5) };
        let store = PgStore::connect(target).unwrap();
        let all = rt.block_on(store.event_counts()).unwrap_or_default();
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in all {
            *out.entry(k.splitn(3, '|').nth(2).unwrap_or_default().to_string()).or_default() += v;
        }
        out
    }
}
