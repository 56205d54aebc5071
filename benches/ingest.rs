//! Ingest throughput on the daemon's real path — a file of 1 million mixed Lambda log lines
//! read, parsed, correlated per stream, attributed and committed to SQLite (WAL, on disk) —
//! next to a baseline measured in the same run: plain `serde_json` parsing of the same lines
//! plus a bare prepared-statement insert of one row per timing, in one transaction — once
//! through sqlx (the ratio the summary line's `ratio` reports) and once through SQLite's C API
//! (`c_api_ratio`), since the daemon's store itself uses the C API.

mod baseline;

use latency_sentinel::attribute::Attributor;
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::ingest::ingest_files;
use latency_sentinel::store::raw::{self, Bind};
use latency_sentinel::store::{OpenMode, Store};
use std::io::Write;
use std::time::Instant;

const LINES: usize = 1_000_000;

/// One invocation = 8 lines, 5 of them timings (3 seed lines, REPORT duration, and an init
/// duration on every 10th); interleaved with ordinary log lines.
fn write_file(path: &std::path::Path) -> usize {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut lines = 0;
    let mut inv = 0u64;
    let t0 = 1_795_341_600_000u64;
    while lines < LINES {
        let rid = format!("{:08x}-0b7e-4b8e-9a55-{:012x}", inv, inv);
        let ts = |k: u64| {
            let ms = t0 + inv * 50 + k;
            humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
        };
        let init = if inv % 10 == 0 { "\\tInit Duration: 412.50 ms" } else { "" };
        let block = [
            format!("{} START RequestId: {rid} Version: 12", ts(0)),
            format!("{} {{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": {}.{:03}}}", ts(1), inv % 9, inv % 1000),
            format!("[INFO]\t{}\t{rid}\t{{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"SecretsManagerDuration\", \"value_sec\": 0.031}}", ts(2)),
            format!("{} Processing lead {inv} for campaign spring-promo", ts(3)),
            format!("{} {{\"level\": \"INFO\", \"event_type\": \"END\", \"function_name\": \"GDSH\", \"message\": \"Function completed\", \"total_function_duration\": 3.125}}", ts(4)),
            format!("{} END RequestId: {rid}", ts(5)),
            format!("{} REPORT RequestId: {rid}\\tDuration: 3125.00 ms\\tBilled Duration: 3126 ms\\tMemory Size: 1024 MB\\tMax Memory Used: 102 MB{init}\\t", ts(6)),
            format!("{} {{\"level\": \"INFO\", \"message\": \"ok\"}}", ts(7)),
        ];
        for l in block {
            writeln!(f, "{l}").unwrap();
            lines += 1;
        }
        inv += 1;
    }
    lines
}

/// The baseline's parse: `serde_json` on the JSON part of a line; the operation and duration
/// of a timing line, or `None`.
fn baseline_row(line: &str) -> Option<(String, f64)> {
    let at = line.find('{')?;
    let v = serde_json::from_str::<serde_json::Value>(&line[at..]).ok()?;
    match (v.get("metric"), v.get("value_sec"), v.get("total_function_duration")) {
        (Some(m), Some(d), _) => Some((m.as_str().unwrap_or("").to_string(), d.as_f64().unwrap_or(0.0))),
        (_, _, Some(d)) => Some(("total_function_duration".to_string(), d.as_f64().unwrap_or(0.0))),
        _ => None,
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.log");
    let lines = write_file(&file);
    let mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    // The daemon's path, three times on fresh databases (this machine's timings vary by
    // 10–20 % from run to run); the median is the figure.
    let mut runs: Vec<(u64, f64)> = (0..3)
        .map(|i| {
            rt.block_on(async {
                let store = Store::open(&dir.path().join(format!("ours{i}.db")), OpenMode::Writer, 4096).await.unwrap();
                let attributor = Attributor::new(&EnvironmentsConfig::default());
                let t = Instant::now();
                let s = ingest_files(&store, &attributor, "/aws/lambda/GenerateDynamicScenarioHandler", std::slice::from_ref(&file))
                    .await
                    .unwrap();
                let elapsed = t.elapsed().as_secs_f64();
                store.close().await;
                (s.stored, elapsed)
            })
        })
        .collect();
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (events, ours) = runs[1];
    let eps = events as f64 / ours;
    println!(
        "ingest (parse → attribute → store): {events} events from {lines} lines ({mb:.0} MB) in {ours:.2} s = {eps:.0} events/s, {:.0} lines/s (median of 3; fastest {:.2} s, slowest {:.2} s)",
        lines as f64 / ours,
        runs[0].1,
        runs[2].1
    );

    // Second baseline: the same parsing, rows inserted through SQLite's C API with one
    // prepared statement (what the daemon's store does, minus its columns and indexes).
    let (raw_rows, raw) = rt.block_on(async {
        let store = Store::open(&dir.path().join("raw.db"), OpenMode::Writer, 4096).await.unwrap();
        sqlx::query("CREATE TABLE t (time_ms INTEGER, operation TEXT, duration_s REAL, k TEXT UNIQUE)").execute(store.pool()).await.unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let t = Instant::now();
        let rows = raw::with_conn(&store, |c| {
            c.transaction(|c| {
                let mut insert = c.prepare("INSERT INTO t (time_ms, operation, duration_s, k) VALUES (?1, ?2, ?3, ?4)")?;
                let mut rows = 0u64;
                for (i, line) in text.lines().enumerate() {
                    let Some((op, d)) = baseline_row(line) else { continue };
                    insert.execute(&[Bind::Int(i as i64), Bind::Text(&op), Bind::Real(d), Bind::Text(&i.to_string())])?;
                    rows += 1;
                }
                Ok(rows)
            })
        })
        .await
        .unwrap();
        (rows, t.elapsed().as_secs_f64())
    });
    let raw_eps = raw_rows as f64 / raw;
    println!("baseline (serde_json + bare insert through the C API): {raw_rows} rows in {raw:.2} s = {raw_eps:.0} rows/s");

    // Baseline: serde_json on the JSON part of each line, one bare insert per timing.
    let (base_rows, base) = rt.block_on(async {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut conn = baseline::connection(&dir.path().join("base.db"), "CREATE TABLE t (time_ms INTEGER, operation TEXT, duration_s REAL, k TEXT UNIQUE)").await;
        let t = Instant::now();
        let mut rows = 0u64;
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        for (i, line) in text.lines().enumerate() {
            let Some((op, d)) = baseline_row(line) else { continue };
            sqlx::query("INSERT INTO t (time_ms, operation, duration_s, k) VALUES (?, ?, ?, ?)")
                .bind(i as i64)
                .bind(op)
                .bind(d)
                .bind(i.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            rows += 1;
        }
        tx.commit().await.unwrap();
        (rows, t.elapsed().as_secs_f64())
    });

    let base_eps = base_rows as f64 / base;
    println!("baseline (serde_json + bare insert through sqlx): {base_rows} rows in {base:.2} s = {base_eps:.0} rows/s");
    println!(
        "ingest: events_per_sec={eps:.0} lines_per_sec={:.0} baseline_events_per_sec={base_eps:.0} ratio={:.2} c_api_baseline_events_per_sec={raw_eps:.0} c_api_ratio={:.2} events={events} lines={lines}",
        lines as f64 / ours,
        eps / base_eps,
        eps / raw_eps
    );
}
