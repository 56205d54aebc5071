//! X-Ray throughput on the daemon's real path — BatchGetTraces segment documents parsed,
//! turned into timing events (env attributed), given their critical path, and committed
//! with their trace states and attribution rows, as the poller does — next to a baseline
//! measured in the same run: `serde_json` parsing of the same documents and one bare insert
//! per (sub)segment through SQLite's C API, in one transaction.
//!
//! The traces are distinct: each is the Atlas workflow fixture with its own trace and span
//! ids, its own start, and its own pace (every time stretched by a factor of 0.5 to 2), so
//! nothing is a copy the store or the parser could treat as a repeat.

mod baseline;

use baseline::workload::traces;
use latency_sentinel::attribute::{AliasHistory, Attributor};
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::model::Checkpoint;
use latency_sentinel::parse::xray::{AllowList, parse_trace};
use latency_sentinel::sources::xray::trace_output;
use latency_sentinel::store::raw::{self, Bind};
use latency_sentinel::store::traces::{TraceRecord, TraceState, TraceUpdate};
use latency_sentinel::store::{Batch, OpenMode, Store};
use serde_json::Value;
use std::time::Instant;

const TRACES: usize = 20_000;
/// Traces per commit (the poller commits per BatchGetTraces chunk of a window).
const PER_COMMIT: usize = 500;

fn walk(v: &Value, out: &mut Vec<(String, String, f64)>) {
    if let (Some(id), Some(name), Some(s), Some(e)) = (v["id"].as_str(), v["name"].as_str(), v["start_time"].as_f64(), v["end_time"].as_f64()) {
        out.push((id.to_string(), name.to_string(), e - s));
    }
    if let Some(subs) = v["subsegments"].as_array() {
        for s in subs {
            walk(s, out);
        }
    }
}

fn main() {
    let traces = traces(TRACES);
    let documents: usize = traces.iter().map(|t| t.1.len()).sum();
    let bytes: usize = traces.iter().flat_map(|t| t.1.iter().map(|d| d.1.len())).sum();
    let distinct: std::collections::HashSet<&str> = traces.iter().flat_map(|t| t.1.iter().map(|d| d.1.as_str())).collect();
    assert_eq!(distinct.len(), documents, "every document is distinct");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    // --- ours: the poller's step and commit for each chunk of traces.
    let (events, attributed, ours) = rt.block_on(async {
        let store = Store::open(&dir.path().join("ours.db"), OpenMode::Writer, 4096).await.unwrap();
        let allow = AllowList::default();
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let history = AliasHistory::default();
        let t = Instant::now();
        let (mut events, mut attributed) = (0u64, 0usize);
        for (i, chunk) in traces.chunks(PER_COMMIT).enumerate() {
            let settled_ms = latency_sentinel::clock::now_ms() - 30_000;
            let mut batch = Batch::default();
            let mut attributions = Vec::new();
            let mut updates = Vec::new();
            for (id, segs) in chunk {
                let parsed = parse_trace(id, segs, &allow);
                let state = if parsed.finished_by(settled_ms) { TraceState::Complete } else { TraceState::Pending };
                let (trace_events, attribution) = trace_output(&parsed, state == TraceState::Complete, &attributor, &history);
                batch.events.extend(trace_events);
                attributions.extend(attribution);
                batch.rejections.extend(parsed.rejections);
                updates.push(TraceUpdate { trace_id: id.clone(), record: TraceRecord { state, refetches: 0, partial: false } });
            }
            attributed += attributions.len();
            let checkpoint = Checkpoint { source: "xray".into(), key: "traces".into(), position_ms: i as i64, state: None };
            events += store.commit_traces(&batch, &attributions, &updates, Some(&checkpoint)).await.unwrap().inserted_total();
        }
        let elapsed = t.elapsed().as_secs_f64();
        store.close().await;
        (events, attributed, elapsed)
    });
    assert_eq!(attributed, TRACES, "every trace complete, with its critical path");

    // --- baseline: serde_json and a bare insert per span through the C API.
    let (rows, base) = rt.block_on(async {
        let store = baseline::bare_store(&dir.path().join("base.db"), "CREATE TABLE t (k TEXT UNIQUE, operation TEXT, duration_s REAL)").await;
        let t = Instant::now();
        let rows = raw::with_conn(&store, |c| {
            c.transaction(|c| {
                let mut insert = c.prepare("INSERT INTO t (k, operation, duration_s) VALUES (?1, ?2, ?3)")?;
                let mut rows = 0u64;
                for (id, segs) in &traces {
                    for (_, doc) in segs {
                        let v: Value = serde_json::from_str(doc).unwrap();
                        let mut spans = Vec::new();
                        walk(&v, &mut spans);
                        for (span, name, d) in spans {
                            rows += insert.execute(&[Bind::Text(&format!("{id}|{span}")), Bind::Text(&name), Bind::Real(d)])?;
                        }
                    }
                }
                Ok(rows)
            })
        })
        .await
        .unwrap();
        (rows, t.elapsed().as_secs_f64())
    });

    let dps = documents as f64 / ours;
    let base_dps = documents as f64 / base;
    println!(
        "xray (parse → events → critical path → store with trace states): {TRACES} distinct traces, {documents} documents ({:.1} MB), {events} events in {ours:.2} s = {dps:.0} documents/s, {:.0} events/s",
        bytes as f64 / 1e6,
        events as f64 / ours
    );
    println!("baseline (serde_json + bare insert per span through the C API): {rows} rows in {base:.2} s = {base_dps:.0} documents/s");
    println!(
        "xray: documents_per_sec={dps:.0} events_per_sec={:.0} baseline_documents_per_sec={base_dps:.0} ratio={:.2} traces={TRACES}",
        events as f64 / ours,
        dps / base_dps
    );
}
