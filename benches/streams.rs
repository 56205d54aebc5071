//! A log group poll's cost against the number of streams the group has ever had: a page of
//! 1,000 events over 20 streams (10 known, 10 new), through the poller's own steps (load the
//! state of the streams the page touches, process the page, commit it with the streams'
//! state), with 1,000 and with 100,000 stream states stored. Flat is the goal. In the same
//! run, next to it: the same page when the poll loaded every stream state of the group (what
//! it did before), and the page with no stream state read at all (the floor).

use latency_sentinel::attribute::Attributor;
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::sources::logs::load_streams;
use latency_sentinel::sources::logs::process::{PageEvent, StreamMemory, process_page};
use latency_sentinel::store::{Batch, OpenMode, Store, StreamStateRow};
use latency_sentinel::clock::now_ms;
use std::collections::HashMap;
use std::time::Instant;

const GROUP: &str = "/aws/lambda/GenerateDynamicScenarioHandler";
const PAGES: usize = 30;

fn stream(i: usize) -> String {
    format!("2026/11/27/[12]{i:032x}")
}

/// Page `p`: 20 streams (10 of the stored ones, 10 new), 50 events each (one invocation:
/// START, seed lines, REPORT).
fn page(p: usize, known: usize, t0: i64) -> Vec<PageEvent> {
    let mut out = Vec::with_capacity(1_000);
    for s in 0..20 {
        let name = if s < 10 { stream((p * 10 + s) % known) } else { stream(known + p * 10 + s) };
        let t = t0 + (p * 20 + s) as i64 * 100;
        let req = format!("{p:08x}-{s:04x}-4000-8000-000000000000");
        let id = |k: usize| format!("{:056}", p * 100_000 + s * 100 + k);
        out.push(PageEvent { stream: name.clone(), time_ms: t, event_id: id(0), message: format!("START RequestId: {req} Version: 12\n") });
        for k in 1..49 {
            out.push(PageEvent {
                stream: name.clone(),
                time_ms: t + k as i64,
                event_id: id(k),
                message: format!(
                    r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": {}.{k:03}}}"#,
                    k % 9
                ),
            });
        }
        out.push(PageEvent {
            stream: name,
            time_ms: t + 49,
            event_id: id(49),
            message: format!("REPORT RequestId: {req}\tDuration: 3125.00 ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t\n"),
        });
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// The streams the page touches (the poller now).
    Touched,
    /// Every stream state of the group (the poller before).
    All,
    /// None (the floor).
    Nothing,
}

async fn run(known: usize, load: Load) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("streams.db"), OpenMode::Writer, 4096).await.unwrap();
    let state = serde_json::to_string(&StreamMemory::default()).unwrap();
    for chunk in (0..known).collect::<Vec<_>>().chunks(50_000) {
        let stream_states = chunk.iter().map(|i| StreamStateRow { log_group: GROUP.into(), stream: stream(*i), state: state.clone() }).collect();
        store.commit(&Batch { stream_states, ..Batch::default() }).await.unwrap();
    }
    let attributor = Attributor::new(&EnvironmentsConfig::default());
    let history = attributor.history();
    let t0 = now_ms() - 3_600_000;
    let mut times = Vec::with_capacity(PAGES);
    for p in 0..PAGES {
        let events = page(p, known, t0);
        let started = Instant::now();
        let mut streams: HashMap<String, StreamMemory> = HashMap::new();
        match load {
            Load::Touched => assert!(load_streams(&store, GROUP, &events, &mut streams).await.unwrap().is_empty()),
            Load::All => {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT stream, state FROM stream_state WHERE log_group = ?").bind(GROUP).fetch_all(store.pool()).await.unwrap();
                streams = rows.into_iter().filter_map(|(s, j)| serde_json::from_str(&j).ok().map(|m| (s, m))).collect();
            }
            Load::Nothing => {}
        }
        let (batch, _) = process_page(GROUP, events, &mut streams, &attributor, &history, now_ms());
        store.commit(&batch).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    store.close().await;
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let small = run(1_000, Load::Touched).await;
        let large = run(100_000, Load::Touched).await;
        let floor = run(100_000, Load::Nothing).await;
        let before = run(100_000, Load::All).await;
        println!("one page (1,000 events, 20 streams), median of {PAGES}:");
        println!("  1,000 known streams:   {small:.2} ms");
        println!("  100,000 known streams: {large:.2} ms  ({:.2}x the 1,000-stream page)", large / small);
        println!("  baselines with 100,000 known streams: no stream state read {floor:.2} ms; every state of the group read (the poll before) {before:.2} ms");
        println!("streams: page_1k_ms={small:.2} page_100k_ms={large:.2} growth={:.2} floor_ms={floor:.2} load_all_ms={before:.2}", large / small);
    });
}
