//! A database written by the release before the compact event rows (the demo's, in
//! `tests/fixtures/release-0014/`) is converted in place when opened, and `report` and the
//! API answer on it as that release answered (its answers were recorded with its binary by
//! `record.sh`, on the same database). Floating-point means may differ in the last bits: a
//! sum depends on the order the rows are read in, and rows are now read in id order instead
//! of the report index's; every other value and every table and CSV line is identical.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/release-0014")
}

/// The fixture's database, unpacked into `dir`.
fn unpack(dir: &Path) -> PathBuf {
    let db = dir.join("db.sqlite");
    let out = Command::new("gzip").arg("-dc").arg(fixture().join("db.sqlite.gz")).output().expect("gzip (Debian's gzip package)");
    assert!(out.status.success(), "gzip: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&db, out.stdout).unwrap();
    db
}

/// (kind, rest) of each line of queries.txt, numbered as record.sh numbered the answers.
fn queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixture().join("queries.txt")).unwrap();
    let lines: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' ').map(|(k, r)| (k.to_string(), r.to_string())))
        .collect();
    // Reports first, then API calls, as record.sh ran them.
    let mut ordered: Vec<_> = lines.iter().filter(|(k, _)| k == "report").cloned().collect();
    ordered.extend(lines.iter().filter(|(k, _)| k == "api").cloned());
    ordered
}

fn expected(n: usize) -> String {
    std::fs::read_to_string(fixture().join(format!("expected/{n:02}.out"))).unwrap()
}

/// Equal, but for floating-point means within 1e-12 (relative), and for fields added since
/// (the JSON is stable: fields are only ever added; none may go).
fn same_json(a: &serde_json::Value, b: &serde_json::Value, path: &str, diffs: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if !x.keys().all(|k| y.contains_key(k)) {
                diffs.push(format!("{path}: keys {:?} vs {:?}", x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>()));
                return;
            }
            for (k, v) in x {
                same_json(v, &y[k], &format!("{path}.{k}"), diffs);
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                diffs.push(format!("{path}: {} vs {} items", x.len(), y.len()));
                return;
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same_json(v, w, &format!("{path}[{i}]"), diffs);
            }
        }
        (Value::Number(x), Value::Number(y)) if x != y => {
            let mean = path.ends_with(".mean") || path.ends_with(".avg");
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if !mean || (p - q).abs() > 1e-12 * p.abs().max(q.abs()) {
                diffs.push(format!("{path}: {x} vs {y}"));
            }
        }
        _ if a != b => diffs.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

fn compare(n: usize, query: &str, got: &str) {
    let want = expected(n);
    match (serde_json::from_str::<serde_json::Value>(&want), serde_json::from_str::<serde_json::Value>(got)) {
        (Ok(w), Ok(g)) => {
            let mut diffs = Vec::new();
            same_json(&w, &g, "", &mut diffs);
            assert!(diffs.is_empty(), "{query}: answers differ after the migration:\n{}", diffs.join("\n"));
        }
        // A table may gain a section after what it printed (`report top`'s linked operations).
        _ if got.starts_with(&want) && (got.len() == want.len() || got[want.len()..].starts_with('\n')) => {}
        _ => assert_eq!(got, want, "{query}: answers differ after the migration"),
    }
}

#[test]
fn a_database_of_the_previous_release_is_converted_and_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = unpack(dir.path());
    let before = query_scalar_i64(&db, "SELECT COUNT(*) FROM events");
    assert!(before > 9_000, "the fixture holds the demo's events: {before}");
    assert_eq!(query_scalar_i64(&db, "SELECT MAX(version) FROM _sqlx_migrations"), 20261127000014);

    let queries = queries();
    let mut n = 0;
    for (kind, rest) in queries.iter().filter(|(k, _)| k == "report") {
        n += 1;
        let out = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
            .arg(kind)
            .args(rest.split_whitespace())
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind} {rest}: {}", String::from_utf8_lossy(&out.stderr));
        compare(n, &format!("{kind} {rest}"), &String::from_utf8_lossy(&out.stdout));
    }

    // Converted by the first report (a reader converts too: no answer from half the rows).
    assert_eq!(query_scalar_i64(&db, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('events_v1', 'trace_attribution_v1')"), 0);
    assert_eq!(query_scalar_i64(&db, "SELECT COUNT(*) FROM event_rows"), before, "every event moved, none twice");
    assert_eq!(query_scalar_i64(&db, "SELECT COUNT(*) FROM events"), before, "and the view reads them all");

    let daemon = Daemon::start(
        dir.path(),
        &format!(
            "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n[storage]\npath = \"{}\"\n[http]\nlisten = \"{{LISTEN}}\"\n\
             [logs]\nenabled = false\n[xray]\nenabled = false\n",
            db.display()
        ),
    );
    for (_, path) in queries.iter().filter(|(k, _)| k == "api") {
        n += 1;
        let (status, body) = daemon.get(path).expect("daemon answers");
        assert_eq!(status, 200, "{path}: {body}");
        compare(n, path, &body);
    }
}
