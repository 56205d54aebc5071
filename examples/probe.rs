use latency_sentinel::attribute::Attributor;
use latency_sentinel::config::EnvironmentsConfig;
use latency_sentinel::ingest::read_events;
use latency_sentinel::sources::logs::process::process_page;
use latency_sentinel::store::{OpenMode, Store};
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;
const LINES: usize = 1_000_000;
include!("/tmp/wf.rs");
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.log");
    write_file(&file);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = Store::open(&dir.path().join("ours.db"), OpenMode::Writer, 4096).await.unwrap();
        for ix in std::env::var("DROP").unwrap_or_default().split(',').filter(|s| !s.is_empty()) { sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {ix}"))).execute(store.pool()).await.unwrap(); }
        let a = Attributor::new(&EnvironmentsConfig::default());
        let h = a.history();
        let t0 = Instant::now();
        let text = std::fs::read_to_string(&file).unwrap();
        let events = read_events(&file, &text, "ingest/lines.log");
        let mut streams = HashMap::new();
        let mut batches = vec![];
        for c in events.chunks(10_000) {
            let b = process_page("/aws/lambda/G", c.to_vec(), &mut streams, &a, &h).0;
            if std::env::var("NOCOMMIT").is_err() { batches.push(b); }
        }
        eprintln!("parse {:?}", t0.elapsed());
        std::thread::sleep(std::time::Duration::from_secs(3));
        eprintln!("commit start");
        let t = Instant::now();
        let mut n = 0;
        for b in &batches { let mut b = b.clone(); if std::env::var("NOANN").is_ok() { b.annotations.clear(); } n += store.commit(&b).await.unwrap().inserted_total(); }
        println!("commit {:?} events {n} = {:.0}/s", t.elapsed(), n as f64 / t.elapsed().as_secs_f64());
    });
}
