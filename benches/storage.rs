//! Bytes on disk per stored event, all tables and indexes included, on the daemon's real
//! write paths with a realistic mix: a Lambda function's log export (seed timing lines,
//! REPORTs with their trace ids, cold starts) through `ingest`, and distinct X-Ray traces
//! through the poller's step (events, trace states, critical-path attribution). Sizes from
//! SQLite's `dbstat` after the WAL is checkpointed back. Prints every table and index and
//! the summary line `storage: bytes_per_event=… events=…`.
//!
//! Next to it, in the same run, the schema of the release before the compact rows
//! (migrations up to 0014: names, ids and keys in every row, a covering report index, a
//! request index, whole critical paths) holding the same events, copied row for row, and
//! its line `storage_0014: bytes_per_event=…`. Then the reads that must not get slower,
//! each with the SQL that release ran on its schema and today's on the compact rows, on one
//! connection (median of 5): a report's scan of a range (all events, and the last 5
//! minutes), the evaluator's window load at start, and its read of new events by id.

mod baseline;

use baseline::workload::{export_order, traces, write_export};
use latency_sentinel::attribute::{AliasHistory, Attributor};
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::ingest::ingest_files;
use latency_sentinel::parse::xray::{AllowList, parse_trace};
use latency_sentinel::sources::xray::trace_output;
use latency_sentinel::store::traces::{TraceRecord, TraceState, TraceUpdate};
use latency_sentinel::store::events::{EventSelection, ScanColumns};
use latency_sentinel::store::raw::{self, Bind};
use latency_sentinel::store::traces::AttributionRow;
use latency_sentinel::store::{Batch, OpenMode, SqliteStore, Store};
use std::path::Path;
use std::time::Instant;

/// Log events in the export (half of them become timing events).
const LOG_EVENTS: usize = 400_000;
/// X-Ray traces (27 spans each).
const TRACES: usize = 8_000;
const GROUP: &str = "/aws/lambda/GenerateDynamicScenarioHandler";

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let export = dir.path().join("export.json");
    write_export(&export, &export_order(LOG_EVENTS));
    let traces = traces(TRACES);
    let mut stored_paths: Vec<AttributionRow> = Vec::new();
    // STORAGE_BENCH_DB keeps the database for a look with sqlite3.
    let db = std::env::var_os("STORAGE_BENCH_DB").map_or_else(|| dir.path().join("storage.db"), std::path::PathBuf::from);

    rt.block_on(async {
        let store = Store::open(&db, OpenMode::Writer, 4096).await.unwrap();
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let logs = ingest_files(&store, &attributor, GROUP, &[export.clone()]).await.unwrap();
        let allow = AllowList::default();
        let history = AliasHistory::default();
        for chunk in traces.chunks(500) {
            let mut batch = Batch::default();
            let (mut attributions, mut updates) = (Vec::new(), Vec::new());
            for (id, segs) in chunk {
                let parsed = parse_trace(id, segs, &allow);
                let (events, attribution) = trace_output(&parsed, true, &attributor, &history);
                batch.events.extend(events);
                attributions.extend(attribution);
                updates.push(TraceUpdate { trace_id: id.clone(), record: TraceRecord { state: TraceState::Complete, refetches: 0, partial: false } });
            }
            store.commit_traces(&batch, &attributions, &updates, None).await.unwrap();
            stored_paths.extend(attributions);
        }
        println!("stored: {} log timing events from {} log events; {TRACES} traces", logs.stored, logs.lines);
        store.close().await;
    });

    let old = dir.path().join("release-0014.db");
    rt.block_on(write_release_0014(&db, &old, &stored_paths));

    // Reopened, so every page is in the database file and none in the WAL.
    rt.block_on(async {
        let store = Store::open(&db, OpenMode::Reader, 4096).await.unwrap();
        let events = store.event_count().await.unwrap();
        let size = store.storage_size().await.unwrap();
        let objects = store.storage_by_object().await.unwrap();
        println!("{:<36} {:>10} {:>12}", "object", "MB", "bytes/event");
        for (name, bytes) in &objects {
            println!("{name:<36} {:>10.1} {:>12.1}", *bytes as f64 / 1e6, *bytes as f64 / events as f64);
        }
        let used = size.database - size.free;
        let per_event = used as f64 / events as f64;
        println!("{:<36} {:>10.1} {:>12.1}   (free pages {:.1} MB, WAL {:.1} MB)", "all", used as f64 / 1e6, per_event, size.free as f64 / 1e6, size.wal as f64 / 1e6);
        println!("storage: bytes_per_event={per_event:.0} events={events} database_mb={:.1}", used as f64 / 1e6);

        let before = SqliteStore::open_as_written(&old).await.unwrap();
        let mut old_events = 0i64;
        raw::scan(&before, "SELECT COUNT(*) FROM events", &[], |r| old_events = r.i64(0)).await.unwrap();
        assert_eq!(old_events as u64, events, "the same events in both schemas");
        let old_size = before.storage_size().await.unwrap();
        let old_used = old_size.database - old_size.free;
        println!(
            "storage_0014: bytes_per_event={:.0} events={old_events} database_mb={:.1}",
            old_used as f64 / old_events as f64,
            old_used as f64 / 1e6
        );
        timings(&before, &store).await;
    });
}

/// The same events in the schema of release 0014: its migrations, and each row as its write
/// path stored it (names, the Lambda request id as 16 bytes, the trace id as text, the
/// 16-byte key of time and hash, arrival time), in the same id order; the critical paths
/// whole, as that release encoded them.
async fn write_release_0014(today: &Path, old: &Path, paths: &[AttributionRow]) {
    use sqlx::ConnectOptions;
    let mut migrations = sqlx::migrate!();
    migrations.migrations = std::borrow::Cow::Owned(migrations.migrations.iter().filter(|m| m.version <= 20261127000014).cloned().collect());
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(old).create_if_missing(true).connect().await.unwrap();
    migrations.run(&mut conn).await.unwrap();
    let uuid = [8, 4, 4, 4, 12].map(|n| "[0-9a-f]".repeat(n)).join("-");
    let attach = format!("ATTACH DATABASE '{}' AS today", today.display());
    for sql in [
        attach.as_str(),
        "BEGIN",
        "INSERT INTO series SELECT id, env, function, operation, source FROM today.series",
        &format!(
            "INSERT INTO events (id, time_ms, env, function, operation, source, duration_s, request_id, trace_id, function_version, \
             cold_start, error, attributes, idem_key, ingested_ms, series) \
             SELECT v.id, v.time_ms, v.env, v.function, v.operation, v.source, v.duration_s, \
             CASE WHEN v.request_id GLOB '{uuid}' THEN unhex(replace(v.request_id, '-', '')) ELSE v.request_id END, v.trace_id, \
             CASE WHEN v.request_id IS NOT NULL THEN '12' END, v.cold_start, v.error, v.attributes, \
             unhex(printf('%016x%016x', v.time_ms, r.key << 17)), 1795000000000, v.series \
             FROM today.events v JOIN today.event_rows r ON r.id = v.id ORDER BY v.id"
        ),
        "INSERT INTO xray_traces SELECT * FROM today.xray_traces",
        "COMMIT",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap();
    }
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    for a in paths {
        let shares = latency_sentinel::critical_path::decode_path(&a.shape_json, &a.self_us).unwrap();
        sqlx::query("INSERT INTO trace_attribution (trace_id, root_name, start_ms, total_s, shares, envs, updated_ms) VALUES (?, ?, ?, ?, ?, ?, 1795000000000)")
            .bind(&a.trace_id)
            .bind(&a.root_name)
            .bind(a.start_ms)
            .bind(a.total_s)
            .bind(latency_sentinel::critical_path::encode_shares(&shares))
            .bind(&a.envs_json)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("DETACH DATABASE today").execute(&mut conn).await.unwrap();
    sqlx::query("VACUUM").execute(&mut conn).await.ok();
}

/// Median of 5 runs of `f`, in ms, and what it returned.
async fn median_ms<F: std::future::Future<Output = u64>>(mut f: impl FnMut() -> F) -> (f64, u64) {
    let mut times = Vec::new();
    let mut out = 0;
    for _ in 0..5 {
        let t = Instant::now();
        out = f().await;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[2], out)
}

/// Rows `sql` reads with `binds` on one connection, each decoded as the evaluator decodes
/// it (numbers read, the four names copied).
async fn read(store: &SqliteStore, sql: &str, binds: &[Bind<'_>]) -> u64 {
    let mut sum = 0.0;
    let mut owned = 0usize;
    let n = raw::scan(store, sql, binds, |r| {
        sum += r.f64(1);
        owned += (2..6).map(|c| r.text(c).into_owned().len()).sum::<usize>();
    })
    .await
    .unwrap();
    std::hint::black_box((sum, owned));
    n
}

async fn timings(before: &SqliteStore, today: &Store) {
    let (mut lo, mut hi, mut top) = (0, 0, 0);
    raw::scan(before, "SELECT MIN(time_ms), MAX(time_ms) + 1, MAX(id) FROM events", &[], |r| (lo, hi, top) = (r.i64(0), r.i64(1), r.i64(2))).await.unwrap();
    let recent = hi - 5 * 60_000;
    // A report's scan as each release runs it: the range in slices, one connection each
    // (0014: its SQL over its covering index; today: `Store::scan_events`).
    println!("{:<36} {:>10} {:>10} {:>10}", "read", "0014 ms", "today ms", "rows");
    for (what, from) in [("report scan, all events", lo), ("report scan, last 5 min", recent)] {
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(((hi - from) / 60_000).max(1) as usize);
        let (old_ms, old_rows) = median_ms(|| async {
            let sums = raw::parallel(before, parts, |i, n, conn| {
                let step = (hi - from) / n as i64;
                let (a, b) = (from + i as i64 * step, if i == n - 1 { hi } else { from + (i as i64 + 1) * step });
                let mut sum = 0.0;
                let rows = conn.query(
                    "SELECT series, duration_s, error, cold_start FROM events WHERE time_ms >= ?1 AND time_ms < ?2",
                    &[Bind::Int(a), Bind::Int(b)],
                    |r| sum += r.f64(1) + r.i64(0) as f64 + r.i64(2) as f64,
                )?;
                Ok((sum, rows))
            })
            .await
            .unwrap();
            sums.iter().map(|s| s.1).sum()
        })
        .await;
        let sel = EventSelection { from_ms: from, to_ms: hi, env: None, function: None, account: None, region: None, operations: &[] };
        let (new_ms, new_rows) = median_ms(|| async {
            let sums = today
                .scan_events(&sel, ScanColumns::default(), || 0.0, |sum: &mut f64, e| *sum += e.duration_s + f64::from(u8::from(e.error)))
                .await
                .unwrap();
            sums.iter().map(|s| s.1).sum()
        })
        .await;
        assert_eq!(old_rows, new_rows, "{what}: the same rows");
        println!("{what:<36} {old_ms:>10.1} {new_ms:>10.1} {new_rows:>10}   ({parts} slices)");
    }
    // The evaluator's reads: 0014's SQL on one connection; today's through the store.
    let old_window = "SELECT id, duration_s, env, function, operation, source, time_ms, error FROM events WHERE time_ms >= ?1 AND id <= ?3";
    let old_after = "SELECT id, duration_s, env, function, operation, source, time_ms, error FROM events WHERE id > ?1 ORDER BY id LIMIT 10000";
    for (what, old_sql, binds) in [
        ("window load at start, last 5 min", old_window, vec![Bind::Int(recent), Bind::Int(i64::MAX), Bind::Int(top)]),
        ("evaluator, 10,000 new events by id", old_after, vec![Bind::Int(top / 2)]),
    ] {
        let (old_ms, old_rows) = median_ms(|| read(before, old_sql, &binds)).await;
        let (new_ms, new_rows) = median_ms(|| async {
            let events = if binds.len() == 3 { today.events_from(recent, top).await } else { today.events_after(top / 2, 10_000).await };
            events.unwrap().len() as u64
        })
        .await;
        assert_eq!(old_rows, new_rows, "{what}: the same rows");
        println!("{what:<36} {old_ms:>10.1} {new_ms:>10.1} {new_rows:>10}");
    }
}
