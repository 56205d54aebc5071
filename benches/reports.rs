//! Report latency: `report compare` over 90 days of hourly rollups (200 operations × 2 envs,
//! merged into daily rows as the daemon does) and `report top` over one hour of a million raw
//! events, each next to a baseline measured in the same run:
//!
//! - compare's baseline reads the same 90 days hour by hour through sqlx and merges the
//!   sketches per series (the straightforward design: no day rows, rows through sqlx);
//! - top's baseline is the previous `report top`: every row through sqlx, sorted by SQLite;
//!   the SQLite floor (one `SUM` over the same rows, inside SQLite) is printed for scale.
//!
//! `REPORTS_BENCH_PART=compare` or `=top` runs one half. Ends with a summary line
//! `reports: key=value ...`.

use latency_sentinel::model::{Source, TimingEvent};
use latency_sentinel::report::compare::{CompareQuery, Side};
use latency_sentinel::report::significance::SplitMix64;
use latency_sentinel::report::top::Filter;
use latency_sentinel::report::{compare, top};
use latency_sentinel::sketch::Sketch;
use latency_sentinel::store::rollups::{DAY_MS, HOUR_MS, Resolution, RollupRow, floor_to};
use latency_sentinel::store::{Batch, OpenMode, Store};
use latency_sentinel::clock::now_ms;
use std::collections::HashMap;
use std::time::Instant;

const OPERATIONS: usize = 200;
const ENVS: [&str; 2] = ["PROD", "Dev"];
const DAYS: i64 = 90;
/// Events each series counts per hour in the rollups.
const EVENTS_PER_HOUR: usize = 60;
const RAW_EVENTS: usize = 1_000_000;

fn median_s(op: usize) -> f64 {
    0.02 * 1.03f64.powi(op as i32)
}

/// Dev is slower for every 40th operation.
fn slowdown(env: &str, op: usize) -> f64 {
    if env == "Dev" && op % 40 == 7 { 1.6 } else { 1.0 }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn fill_rollups(store: &Store, end_ms: i64) -> (usize, f64) {
    let t = Instant::now();
    let first_day = floor_to(end_ms, DAY_MS) - DAYS * DAY_MS;
    let mut rng = SplitMix64(90);
    let mut rows = 0;
    let mut hour = first_day;
    let mut k = 0;
    while hour < end_ms {
        let mut hour_rows = Vec::with_capacity(OPERATIONS * ENVS.len());
        for op in 0..OPERATIONS {
            for env in ENVS {
                let mut r = RollupRow::new(env, &format!("Function{:02}", op % 20), &format!("Op{op:03}.Call"), "xray");
                for _ in 0..EVENTS_PER_HOUR {
                    r.add(median_s(op) * slowdown(env, op) * (0.3 * rng.normal()).exp(), false, false, false);
                }
                hour_rows.push(r);
            }
        }
        store.replace_rollups(Resolution::Hour, hour, &hour_rows).await.unwrap();
        rows += hour_rows.len();
        hour += HOUR_MS;
        k += 1;
        if k % 240 == 0 {
            eprintln!("  rollups: {} of {} hours", k, (end_ms - first_day) / HOUR_MS);
        }
    }
    let mut day = first_day;
    while day + DAY_MS <= end_ms {
        store.roll_day(day).await.unwrap();
        day += DAY_MS;
    }
    (rows, t.elapsed().as_secs_f64())
}

/// The straightforward compare read: every hourly row through sqlx, merged per series.
async fn compare_baseline(store: &Store, from_ms: i64, to_ms: i64) -> usize {
    let rows: Vec<(String, String, String, i64, Vec<u8>)> =
        sqlx::query_as("SELECT env, function, operation, count, sketch FROM rollups WHERE res_s = 3600 AND start_ms >= ? AND start_ms < ?")
            .bind(floor_to(from_ms, HOUR_MS) + HOUR_MS)
            .bind(to_ms)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut merged: HashMap<(String, String, String), Sketch> = HashMap::new();
    for (env, function, operation, _, blob) in rows {
        merged.entry((env, function, operation)).or_default().merge_encoded(&blob).unwrap();
    }
    merged.values().filter(|s| s.quantile(0.95).is_some()).count()
}

async fn fill_raw(store: &Store, hour: i64) -> f64 {
    let t = Instant::now();
    let mut rng = SplitMix64(1);
    let series = OPERATIONS * ENVS.len();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..RAW_EVENTS {
        let s = i % series;
        let (op, env) = (s / ENVS.len(), ENVS[s % ENVS.len()]);
        batch.push(TimingEvent {
            time_ms: hour + (i as i64 * HOUR_MS) / RAW_EVENTS as i64,
            env: env.into(),
            function: format!("Function{:02}", op % 20),
            operation: format!("Op{op:03}.Call"),
            source: Source::Xray,
            duration_s: ((median_s(op) * slowdown(env, op) * (0.3 * rng.normal()).exp()) * 1e6).round() / 1e6,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: i % 97 == 0,
            idem_key: format!("e{i}"),
            attributes: vec![],
        });
        if batch.len() == 10_000 {
            store.commit(&Batch { events: std::mem::take(&mut batch), ..Batch::default() }).await.unwrap();
            if (i + 1) % 200_000 == 0 {
                eprintln!("  raw events: {}", i + 1);
            }
        }
    }
    store.commit(&Batch { events: batch, ..Batch::default() }).await.unwrap();
    t.elapsed().as_secs_f64()
}

/// The previous `report top`: every row through sqlx, ordered by SQLite, grouped here.
async fn top_baseline(store: &Store, from_ms: i64, to_ms: i64) -> usize {
    let rows: Vec<(String, String, String, String, f64, bool)> = sqlx::query_as(
        "SELECT env, function, operation, source, duration_s, error FROM events WHERE time_ms >= ? AND time_ms < ? \
         ORDER BY env, function, operation, source, duration_s",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut groups = 0;
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j < rows.len() && (&rows[j].0, &rows[j].1, &rows[j].2, &rows[j].3) == (&rows[i].0, &rows[i].1, &rows[i].2, &rows[i].3) {
            j += 1;
        }
        let values: Vec<f64> = rows[i..j].iter().map(|r| r.4).collect();
        std::hint::black_box(latency_sentinel::quantile::nearest_rank(&values, 0.95));
        groups += 1;
        i = j;
    }
    groups
}

async fn best_of<F, Fut, T>(n: usize, mut f: F) -> (f64, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f().await;
        best = best.min(ms(t.elapsed()));
        out = Some(v);
    }
    (best, out.expect("n > 0"))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let now = now_ms();
        // REPORTS_BENCH_PART=compare or =top runs one half (for profiling one path).
        let part = std::env::var("REPORTS_BENCH_PART").unwrap_or_default();
        let (mut compare_ms, mut compare_base_ms, mut rollup_rows) = (f64::NAN, f64::NAN, 0);
        let (mut top_ms, mut top_base_ms, mut floor_ms) = (f64::NAN, f64::NAN, f64::NAN);

        // 1. compare over 90 days of rollups.
        if part != "top" {
        let store = Store::open(&dir.path().join("rollups.db"), OpenMode::Writer, 4096).await.unwrap();
        eprintln!("Filling {DAYS} days of hourly rollups for {OPERATIONS} operations × {} envs…", ENVS.len());
        let (rows, fill_s) = fill_rollups(&store, floor_to(now, HOUR_MS)).await;
        rollup_rows = rows;
        eprintln!("  {rollup_rows} hourly rows and their day rows in {fill_s:.1} s");
        let q = CompareQuery {
            baseline: Side { env: Some("PROD".into()), from_ms: now - DAYS * DAY_MS, to_ms: now },
            candidate: Side { env: Some("Dev".into()), from_ms: now - DAYS * DAY_MS, to_ms: now },
            function: None,
            account: None,
            region: None,
        };
        let report;
        (compare_ms, report) = best_of(3, || compare::report(&store, &q)).await;
        let report = report.unwrap();
        let regressions = report.rows.iter().filter(|r| r.verdict == compare::Verdict::Regression).count();
        assert!(report.baseline.approximate && report.rows.len() == OPERATIONS);
        let series;
        (compare_base_ms, series) = best_of(1, || compare_baseline(&store, now - DAYS * DAY_MS, now)).await;
        assert_eq!(series, OPERATIONS * ENVS.len());
        println!(
            "compare over {DAYS} days ({OPERATIONS} operations × 2 envs, {rollup_rows} hourly rows): {compare_ms:>8.1} ms  ({regressions} regressions found, {} expected)",
            OPERATIONS / 40
        );
        println!("  baseline: hourly rows through sqlx, merged:                           {compare_base_ms:>8.1} ms");
        store.close().await;
        }

        // 2. top over one hour of a million raw events.
        if part != "compare" {
        let store = Store::open(&dir.path().join("raw.db"), OpenMode::Writer, 4096).await.unwrap();
        let hour = floor_to(now, HOUR_MS) - HOUR_MS;
        eprintln!("Writing {RAW_EVENTS} raw events in one hour…");
        let raw_s = fill_raw(&store, hour).await;
        eprintln!("  in {raw_s:.1} s");
        let f = Filter { from_ms: hour, to_ms: hour + HOUR_MS, ..Filter::default() };
        let rows;
        (top_ms, rows) = best_of(3, || top::top(&store, &f)).await;
        let rows = rows.unwrap();
        assert_eq!(rows.len(), OPERATIONS * ENVS.len());
        assert_eq!(rows.iter().map(|r| r.count).sum::<usize>(), RAW_EVENTS);
        (floor_ms, _) = best_of(3, || async {
            let (tables, range) = latency_sentinel::store::pack::time_range_sql("e", 1, 2);
            let sql = format!("SELECT SUM({}) FROM {tables} WHERE {range}", latency_sentinel::store::pack::DURATION_SQL);
            let v: f64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(hour)
                .bind(hour + HOUR_MS)
                .fetch_one(store.pool())
                .await
                .unwrap();
            v
        })
        .await;
        let groups;
        (top_base_ms, groups) = best_of(1, || top_baseline(&store, hour, hour + HOUR_MS)).await;
        assert_eq!(groups, OPERATIONS * ENVS.len());
        println!("report top over 1 hour of {RAW_EVENTS} raw events (exact percentiles):      {top_ms:>8.1} ms");
        println!("  baseline: previous report top (rows through sqlx, SQL sort):          {top_base_ms:>8.1} ms");
        println!("  SQLite floor: one SUM over the same rows:                             {floor_ms:>8.1} ms");
        store.close().await;
        }
        println!(
            "reports: compare_90d_ms={compare_ms:.1} compare_baseline_ms={compare_base_ms:.1} compare_speedup={:.1} top_1h_ms={top_ms:.1} top_baseline_ms={top_base_ms:.1} top_speedup={:.1} scan_floor_ms={floor_ms:.1} rollup_rows={rollup_rows} raw_events={RAW_EVENTS}",
            compare_base_ms / compare_ms,
            top_base_ms / top_ms
        );
    });
}
