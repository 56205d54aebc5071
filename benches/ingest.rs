//! Ingest throughput on the paths users run, each next to the strongest honest baseline
//! measured in the same run:
//!
//! - **text**: a file of 1 million mixed Lambda log lines through `ingest_files` (read,
//!   parse, correlate per stream, attribute, commit to SQLite in WAL on disk); median of 3.
//! - **baseline**: the same lines parsed with `serde_json` and one row per timing inserted
//!   into a bare four-column table through SQLite's C API with one prepared statement, in
//!   one transaction. The headline `ratio` is text path / this.
//! - **json**: a 1,000,000-event `aws logs filter-log-events` export, as the AWS CLI prints
//!   it, through the `latency-sentinel ingest` command (the release binary a user runs),
//!   next to `benches/naive_ingest.py` (json.load + sqlite3 executemany) on the same file:
//!   wall time and peak memory of each process, best of 2; both must store the same count.
//! - **live**: the same 1,000,000 events as FilterLogEvents pages of 10,000 as the SDK
//!   returns them, through the poller's steps (convert, load stream states,
//!   `process_page`, commit; every 10th page with its stream states and checkpoint, as a
//!   poll's last page), one page after another.

mod baseline;

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use baseline::workload::{T0, export_event, export_order, rfc3339, write_export};
use baseline::{figure, measure};
use latency_sentinel::attribute::Attributor;
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::ingest::ingest_files;
use latency_sentinel::model::Checkpoint;
use latency_sentinel::sources::logs::process::{StreamMemory, process_page, stream_rows};
use latency_sentinel::sources::logs::{load_streams, page_events};
use latency_sentinel::store::raw::{self, Bind};
use latency_sentinel::store::{OpenMode, Store};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

const LINES: usize = 1_000_000;
const EXPORT_EVENTS: usize = 1_000_000;
const PAGE: usize = 10_000;
/// FilterLogEvents pages one live poll reads before it is caught up (a busy group).
const PAGES_PER_POLL: usize = 10;
const GROUP: &str = "/aws/lambda/GenerateDynamicScenarioHandler";

/// One invocation = 8 lines, 5 of them timings (3 seed lines, REPORT duration, and an init
/// duration on every 10th); interleaved with ordinary log lines.
fn write_text(path: &std::path::Path) -> usize {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut lines = 0;
    let mut inv = 0i64;
    while lines < LINES {
        let rid = format!("{:08x}-0b7e-4b8e-9a55-{:012x}", inv, inv);
        let ts = |k: i64| rfc3339(T0 + inv * 50 + k);
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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    // --- text: the daemon's path, three times on fresh databases; the median is the figure.
    let file = dir.path().join("lines.log");
    let lines = write_text(&file);
    let mb = std::fs::metadata(&file).unwrap().len() as f64 / 1e6;
    let mut runs: Vec<(u64, f64)> = (0..3)
        .map(|i| {
            rt.block_on(async {
                let store = Store::open(&dir.path().join(format!("ours{i}.db")), OpenMode::Writer, 4096).await.unwrap();
                let attributor = Attributor::new(&EnvironmentsConfig::default());
                let t = Instant::now();
                let s = ingest_files(&store, &attributor, GROUP, std::slice::from_ref(&file)).await.unwrap();
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
        "text (read → parse → correlate → attribute → store): {events} events from {lines} lines ({mb:.0} MB) in {ours:.2} s = {eps:.0} events/s (median of 3; fastest {:.2} s, slowest {:.2} s)",
        runs[0].1, runs[2].1
    );

    // --- baseline: the same lines, serde_json, a bare insert through SQLite's C API.
    let (raw_rows, raw) = rt.block_on(async {
        let store = baseline::bare_store(&dir.path().join("raw.db"), "CREATE TABLE t (time_ms INTEGER, operation TEXT, duration_s REAL, k TEXT UNIQUE)").await;
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

    // --- json: the export through the command a user runs, and the naive script.
    let order = export_order(EXPORT_EVENTS);
    let export = dir.path().join("export.json");
    let export_bytes = write_export(&export, &order);
    let binary = env!("CARGO_BIN_EXE_latency-sentinel");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/naive_ingest.py");
    let mut ours_json = Vec::new();
    let mut naive = Vec::new();
    for i in 0..2 {
        let db = dir.path().join(format!("json{i}.db"));
        let config = dir.path().join(format!("json{i}.toml"));
        std::fs::write(&config, format!("[storage]\npath = {:?}\n", db.display().to_string())).unwrap();
        let m = measure(std::process::Command::new(binary).arg("ingest").arg("--config").arg(&config).arg("--log-group").arg(GROUP).arg(&export));
        ours_json.push((figure(&m.stdout, "stored"), m));
        let m = measure(std::process::Command::new("python3").arg(script).arg(&export).arg(dir.path().join(format!("naive{i}.db"))));
        naive.push((figure(&m.stdout, "rows"), m));
    }
    let best = |runs: &[(u64, baseline::Measured)]| {
        let stored = runs[0].0;
        assert!(runs.iter().all(|r| r.0 == stored), "runs stored different counts: {:?}", runs.iter().map(|r| r.0).collect::<Vec<_>>());
        let wall = runs.iter().map(|r| r.1.wall_s).fold(f64::INFINITY, f64::min);
        let peak = runs.iter().map(|r| r.1.peak_rss_mb).fold(0.0, f64::max);
        (stored, wall, peak)
    };
    let (json_stored, json_wall, json_peak) = best(&ours_json);
    let (naive_stored, naive_wall, naive_peak) = best(&naive);
    assert_eq!(json_stored, naive_stored, "both must store the same events");
    let (json_eps, naive_eps) = (json_stored as f64 / json_wall, naive_stored as f64 / naive_wall);
    println!(
        "json (latency-sentinel ingest, {EXPORT_EVENTS} exported events, {:.0} MB): {json_stored} events stored in {json_wall:.2} s = {json_eps:.0} events/s, peak {json_peak:.0} MB (best of 2)",
        export_bytes as f64 / 1e6
    );
    println!("naive script (json.load + sqlite3 executemany): {naive_stored} rows in {naive_wall:.2} s = {naive_eps:.0} rows/s, peak {naive_peak:.0} MB (best of 2)");

    // --- live: FilterLogEvents pages through the poller's steps.
    let (live_events, live) = rt.block_on(async {
        let store = Store::open(&dir.path().join("live.db"), OpenMode::Writer, 4096).await.unwrap();
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let history = attributor.history();
        let mut streams: HashMap<String, StreamMemory> = HashMap::new();
        let mut busy = Duration::ZERO;
        let mut stored = 0u64;
        let mut touched = BTreeSet::new();
        let pages = order.len().div_ceil(PAGE);
        for (p, page) in order.chunks(PAGE).enumerate() {
            let sdk_page: Vec<FilteredLogEvent> = page
                .iter()
                .enumerate()
                .map(|(i, &(t, inv, k))| {
                    let (stream, time_ms, id, message) = export_event(p * PAGE + i, t, inv, k);
                    FilteredLogEvent::builder().log_stream_name(stream).timestamp(time_ms).message(message).ingestion_time(time_ms + 15_000).event_id(id).build()
                })
                .collect();
            let t = Instant::now();
            let events = page_events(&sdk_page);
            load_streams(&store, GROUP, &events, &mut streams).await.unwrap();
            let (mut batch, stats) = process_page(GROUP, events, &mut streams, &attributor, &history, latency_sentinel::clock::now_ms());
            touched.extend(stats.touched);
            // As the poller: a poll's last page carries its stream states and checkpoint.
            if (p + 1) % PAGES_PER_POLL == 0 || p + 1 == pages {
                batch.stream_states = stream_rows(GROUP, &streams, &std::mem::take(&mut touched));
                let position_ms = stats.newest_event_ms.unwrap_or(0);
                batch.checkpoints.push(Checkpoint { source: "logs".into(), key: GROUP.into(), position_ms, state: None });
            }
            stored += store.commit(&batch).await.unwrap().inserted_total();
            busy += t.elapsed();
        }
        store.close().await;
        (stored, busy.as_secs_f64())
    });
    assert_eq!(live_events, json_stored, "the live path stores what ingest stores");
    let live_eps = live_events as f64 / live;
    println!("live (FilterLogEvents pages of {PAGE} → page_events → load_streams → process_page → commit): {live_events} events in {live:.2} s = {live_eps:.0} events/s");

    println!(
        "ingest: events_per_sec={eps:.0} baseline_events_per_sec={raw_eps:.0} ratio={:.2} json_events_per_sec={json_eps:.0} naive_events_per_sec={naive_eps:.0} json_vs_naive={:.2} json_peak_rss_mb={json_peak:.0} naive_peak_rss_mb={naive_peak:.0} live_events_per_sec={live_eps:.0} live_ratio={:.2} events={events} lines={lines}",
        eps / raw_eps,
        json_eps / naive_eps,
        live_eps / raw_eps,
    );
}
