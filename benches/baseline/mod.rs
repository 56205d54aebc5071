#![allow(dead_code)] // each bench uses the part it needs
//! What the benches' baselines share: a bare SQLite table written through SQLite's C API
//! (the strongest honest baseline for our store, which writes through it too), and whole
//! commands timed with their peak memory.

use latency_sentinel::store::{OpenMode, Store};
use std::io::Read;
use std::time::Instant;

/// A fresh database at `path` (WAL, as the daemon's) holding the one table `create` makes;
/// write to it with `latency_sentinel::store::raw::with_conn`.
pub async fn bare_store(path: &std::path::Path, create: &str) -> Store {
    let store = Store::open(path, OpenMode::Writer, 4096).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(store.pool()).await.unwrap();
    store
}

/// A command's wall time, peak resident memory and standard output.
#[derive(Debug, Clone)]
pub struct Measured {
    pub wall_s: f64,
    pub peak_rss_mb: f64,
    pub stdout: String,
}

/// Runs `cmd` to its end (it must succeed) and measures it: the peak is the child's own
/// `ru_maxrss`, read by `wait4` on its pid.
pub fn measure(cmd: &mut std::process::Command) -> Measured {
    let t = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct the call fills; `pid` is our own child, not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall_s = t.elapsed().as_secs_f64();
    assert_eq!(reaped, pid, "wait4 on {cmd:?}");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed ({status}); stdout: {stdout}");
    Measured { wall_s, peak_rss_mb: usage.ru_maxrss as f64 * 1024.0 / 1e6, stdout }
}

/// The integer after `key=` in a command's output.
pub fn figure(stdout: &str, key: &str) -> u64 {
    let at = stdout.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {stdout:?}")) + key.len() + 1;
    stdout[at..].split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{key}= in {stdout:?}"))
}
