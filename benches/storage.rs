//! Bytes on disk per stored event, all tables and indexes included, on the daemon's real
//! write paths with a realistic mix: a Lambda function's log export (seed timing lines,
//! REPORTs with their trace ids, cold starts) through `ingest`, and distinct X-Ray traces
//! through the poller's step (events, trace states, critical-path attribution). Sizes from
//! SQLite's `dbstat` after the WAL is checkpointed back. Prints every table and index and
//! the summary line `storage: bytes_per_event=… events=…`.

mod baseline;

use baseline::workload::{export_order, traces, write_export};
use latency_sentinel::attribute::{AliasHistory, Attributor};
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::ingest::ingest_files;
use latency_sentinel::parse::xray::{AllowList, parse_trace};
use latency_sentinel::sources::xray::trace_output;
use latency_sentinel::store::traces::{TraceRecord, TraceState, TraceUpdate};
use latency_sentinel::store::{Batch, OpenMode, Store};

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
        }
        println!("stored: {} log timing events from {} log events; {TRACES} traces", logs.stored, logs.lines);
        store.close().await;
    });

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
    });
}
