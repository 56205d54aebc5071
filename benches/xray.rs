//! X-Ray throughput on the daemon's real path — segment documents parsed, turned into timing
//! events, given their critical path, and committed — next to a baseline measured in the
//! same run: plain `serde_json` parsing of the same documents plus one bare prepared insert
//! per (sub)segment, in one transaction.

mod baseline;

use latency_sentinel::critical_path::critical_path;
use latency_sentinel::parse::xray::{AllowList, parse_trace, trace_events};
use latency_sentinel::store::{Batch, OpenMode, Store};
use std::time::Instant;

const TRACES: usize = 20_000;

fn walk(v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    if let (Some(name), Some(s), Some(e)) = (v["name"].as_str(), v["start_time"].as_f64(), v["end_time"].as_f64()) {
        out.push((name.to_string(), e - s));
    }
    if let Some(subs) = v["subsegments"].as_array() {
        for s in subs {
            walk(s, out);
        }
    }
}

fn main() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/xray/atlas_workflow_dev.json").expect("run from the repo root")).unwrap();
    let template = &fixture["Traces"][0];
    let template_id = template["Id"].as_str().unwrap().to_string();
    let docs: Vec<(String, String)> = template["Segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["Id"].as_str().unwrap().to_string(), s["Document"].as_str().unwrap().to_string()))
        .collect();
    let traces: Vec<(String, Vec<(String, String)>)> = (0..TRACES)
        .map(|i| {
            let id = format!("1-66efedc0-{:024x}", i);
            (id.clone(), docs.iter().map(|(sid, d)| (sid.clone(), d.replace(&template_id, &id))).collect())
        })
        .collect();
    let documents: usize = traces.iter().map(|t| t.1.len()).sum();
    let bytes: usize = traces.iter().flat_map(|t| t.1.iter().map(|d| d.1.len())).sum();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    let (events, ours) = rt.block_on(async {
        let store = Store::open(&dir.path().join("ours.db"), OpenMode::Writer, 4096).await.unwrap();
        let allow = AllowList::default();
        let t = Instant::now();
        let mut events = 0u64;
        let mut paths = 0usize;
        for chunk in traces.chunks(500) {
            let mut batch = Batch::default();
            for (id, segs) in chunk {
                let parsed = parse_trace(id, segs, &allow);
                paths += usize::from(critical_path(&parsed).is_some());
                batch.events.extend(trace_events(&parsed).into_iter().map(|(mut e, q)| {
                    e.env = q.unwrap_or_else(|| "default".into());
                    e
                }));
            }
            events += store.commit(&batch).await.unwrap().inserted_total();
        }
        assert_eq!(paths, TRACES);
        let elapsed = t.elapsed().as_secs_f64();
        store.close().await;
        (events, elapsed)
    });

    let (rows, base) = rt.block_on(async {
        let mut conn = baseline::connection(&dir.path().join("base.db"), "CREATE TABLE t (k TEXT UNIQUE, operation TEXT, duration_s REAL)").await;
        let t = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        let mut rows = 0u64;
        for (id, segs) in &traces {
            for (sid, doc) in segs {
                let v: serde_json::Value = serde_json::from_str(doc).unwrap();
                let mut spans = Vec::new();
                walk(&v, &mut spans);
                for (i, (name, d)) in spans.into_iter().enumerate() {
                    sqlx::query("INSERT INTO t (k, operation, duration_s) VALUES (?, ?, ?)")
                        .bind(format!("{id}|{sid}|{i}"))
                        .bind(name)
                        .bind(d)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    rows += 1;
                }
            }
        }
        tx.commit().await.unwrap();
        (rows, t.elapsed().as_secs_f64())
    });

    let dps = documents as f64 / ours;
    let base_dps = documents as f64 / base;
    println!(
        "xray (parse → events → critical path → store): {documents} documents ({:.1} MB), {events} events in {ours:.2} s = {dps:.0} documents/s, {:.0} events/s",
        bytes as f64 / 1e6,
        events as f64 / ours
    );
    println!("baseline (serde_json + bare insert per span): {rows} rows in {base:.2} s = {base_dps:.0} documents/s");
    println!(
        "xray: documents_per_sec={dps:.0} events_per_sec={:.0} baseline_documents_per_sec={base_dps:.0} ratio={:.2} traces={TRACES}",
        events as f64 / ours,
        dps / base_dps
    );
}
