#![allow(dead_code)] // each bench uses the part it needs
//! What the benches' baselines share: a bare SQLite table written through SQLite's C API
//! (the strongest honest baseline for our store, which writes through it too), and whole
//! commands timed with their peak memory.

pub mod workload;

use latency_sentinel::store::{OpenMode, SqliteStore};
use std::io::Read;
use std::time::Instant;

/// A fresh database at `path` (WAL, as the daemon's) holding the one table `create` makes;
/// write to it with `latency_sentinel::store::raw::with_conn`.
pub async fn bare_store(path: &std::path::Path, create: &str) -> SqliteStore {
    let store = SqliteStore::open(path, OpenMode::Writer, 4096).await.unwrap();
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

/// Runs `cmd` to its end (it must succeed) and measures it. The peak is the child's own
/// high-water mark (`VmHWM`), read from `/proc` every 5 ms while it runs: the `ru_maxrss`
/// that `wait4` reports would include this bench's own peak, because a spawned child that
/// shares its parent's memory until `exec` inherits the parent's high-water mark there.
pub fn measure(cmd: &mut std::process::Command) -> Measured {
    let t = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak_kb = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = high_water_kb(pid) {
                    peak_kb = peak_kb.max(kb);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak_kb
        })
    };
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    let wall_s = t.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_kb = watcher.join().unwrap();
    assert!(status.success(), "{cmd:?} failed ({status}); stdout: {stdout}");
    assert!(peak_kb > 0, "no memory reading of {cmd:?}");
    Measured { wall_s, peak_rss_mb: peak_kb as f64 * 1024.0 / 1e6, stdout }
}

/// `VmHWM` of a running process, in kB (`None` once it has exited, or while it is still
/// this bench's image, before its `exec`).
fn high_water_kb(pid: u32) -> Option<u64> {
    if std::fs::read_link(format!("/proc/{pid}/exe")).ok()? == std::env::current_exe().ok()? {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The integer after `key=` in a command's output.
pub fn figure(stdout: &str, key: &str) -> u64 {
    let at = stdout.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {stdout:?}")) + key.len() + 1;
    stdout[at..].split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{key}= in {stdout:?}"))
}
