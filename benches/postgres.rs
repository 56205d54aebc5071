//! Events per second into PostgreSQL through the store's write path (`PgStore::commit`:
//! series lookup, the events advisory lock, one `INSERT … SELECT FROM unnest(…)` with
//! `ON CONFLICT DO NOTHING`, the checkpoint, one transaction per batch of 10,000 events,
//! the most one FilterLogEvents page holds), next to the fastest way rows get into
//! PostgreSQL: a bare `COPY … FROM STDIN` of the same rows (written out as COPY text from
//! the same events, series numbers and keys) into a table with the same columns and
//! indexes, in the same run, on a throwaway cluster (Debian's server, default
//! settings). Pages wholly newer than what is stored (a catch-up) skip the duplicate check;
//! then, as tailing does, pages that each re-read half of the page before, through the
//! anti-join (new events per second). Prints `postgres: events_per_s=…
//! copy_events_per_s=… ratio=… overlapping_pages_new_events_per_s=…`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::postgres::Postgres;
use latency_sentinel::model::{Checkpoint, Origin, Source, TimingEvent};
use latency_sentinel::store::Batch;
use latency_sentinel::store::event_keys::event_key;
use latency_sentinel::store::postgres::{PgStore, PgTarget};
use sqlx::postgres::PgPoolCopyExt;
use std::time::{Duration, Instant};

const EVENTS: usize = 300_000;
const PAGE: usize = 10_000;
const OPERATIONS: [&str; 5] = ["BedrockCallDuration", "SecretsManagerDuration", "total_function_duration", "Lambda.Duration", "Lambda.InitDuration"];

/// The seed's mix: five operations per invocation, request ids, a model attribute.
fn events(first: usize) -> Vec<TimingEvent> {
    let t0 = 1_795_000_000_000i64;
    (first..first + EVENTS)
        .map(|i| {
            let inv = i / 5;
            let op = OPERATIONS[i % 5];
            TimingEvent {
                time_ms: t0 + (i as i64) * 7,
                env: if inv % 2 == 0 { "PROD" } else { "Dev" }.into(),
                function: format!("Function{}", inv % 4),
                operation: op.into(),
                source: if op.starts_with("Lambda.") { Source::Report } else { Source::Logs },
                duration_s: 0.05 + ((i * 7919) % 10_000) as f64 / 1_000.0,
                request_id: Some(format!("{:08x}-1c2d-4e5f-8a9b-{:012x}", inv, inv * 31)),
                trace_id: None,
                function_version: None,
                cold_start: false,
                error: false,
                idem_key: format!("logs|/aws/lambda/Function{}|2026/11/27/[1]abc|{i}|{op}", inv % 4),
                attributes: if op == "BedrockCallDuration" { vec![("model".into(), "anthropic.claude-3".into())] } else { vec![] },
            }
        })
        .collect()
}

/// COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(s) => {
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

fn main() {
    let pg = Postgres::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let _in_runtime = rt.enter();
    let url = pg.url();
    let store = PgStore::connect(PgTarget { url: &url, password: "", pool_size: 4, rejected_max_bytes: 4096, connect_timeout: Duration::from_secs(5) }).unwrap();
    let all = events(0);
    let origin = Origin { account: "prod".into(), region: "eu-west-1".into() };
    let batches: Vec<Batch> = all
        .chunks(PAGE)
        .enumerate()
        .map(|(n, page)| Batch {
            origin: origin.clone(),
            events: page.to_vec(),
            checkpoints: vec![Checkpoint { source: "logs".into(), key: "bench".into(), position_ms: n as i64, state: None }],
            ..Batch::default()
        })
        .collect();
    rt.block_on(async {
        store.migrate().await.unwrap();
        // The baseline: the same rows, as the write path stored them (series numbers and
        // keys included), copied into a table with the same columns and indexes. Page by
        // page, alternating with ours, so both tables grow alike under the same conditions.
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE events_copy (LIKE events INCLUDING ALL)").execute(&pool).await.unwrap();
        let mut series_of: std::collections::HashMap<(String, String, String, String), i64> = Default::default();
        let (mut ours, mut copied, mut stored) = (0.0, 0.0, 0);
        for (b, page) in batches.iter().zip(all.chunks(PAGE)) {
            let t = Instant::now();
            stored += store.commit(b, None).await.unwrap().inserted_total();
            ours += t.elapsed().as_secs_f64();
            if series_of.is_empty() {
                let series: Vec<(i64, String, String, String, String)> =
                    sqlx::query_as("SELECT id, env, function, operation, source FROM series").fetch_all(&pool).await.unwrap();
                series_of = series.into_iter().map(|(id, e, f, o, s)| ((e, f, o, s), id)).collect();
            }
            // Timed from the same events: the rows must be written out as COPY text too.
            let t = Instant::now();
            let mut s = String::with_capacity(page.len() * 120);
            for e in page {
                let series = series_of[&(e.env.clone(), e.function.clone(), e.operation.clone(), e.source.as_str().to_string())];
                s.push_str(&format!("{}\t{series}\t{}\t0\t{}\t", e.time_ms, e.duration_s, event_key(&e.idem_key)));
                copy_field(&mut s, e.request_id.as_deref());
                s.push('\t');
                copy_field(&mut s, e.trace_id.as_deref());
                s.push('\t');
                let attrs = (!e.attributes.is_empty()).then(|| format!("{{\"{}\":\"{}\"}}", e.attributes[0].0, e.attributes[0].1));
                copy_field(&mut s, attrs.as_deref());
                s.push('\n');
            }
            let mut copy = pool
                .copy_in_raw("COPY events_copy (time_ms, series, duration_s, flags, key, request_id, trace_id, attributes) FROM STDIN")
                .await
                .unwrap();
            copy.send(s.as_bytes()).await.unwrap();
            copy.finish().await.unwrap();
            copied += t.elapsed().as_secs_f64();
        }
        assert_eq!(stored as usize, EVENTS);
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events_copy").fetch_one(&pool).await.unwrap();
        assert_eq!(n as usize, EVENTS);
        let (ours_rate, copy_rate) = (EVENTS as f64 / ours, EVENTS as f64 / copied);
        // The tailing path: every page re-reads the last half of the one before (an
        // overlapping poll), so each insert skips stored events by the anti-join.
        let more = events(EVENTS);
        let overlapping: Vec<Batch> = (0..EVENTS / PAGE)
            .map(|n| {
                let start = n * PAGE;
                let mut page: Vec<TimingEvent> = if n == 0 { all[all.len() - PAGE / 2..].to_vec() } else { more[start - PAGE / 2..start].to_vec() };
                page.extend_from_slice(&more[start..start + PAGE / 2]);
                Batch { origin: origin.clone(), events: page, ..Batch::default() }
            })
            .collect();
        let t = Instant::now();
        let mut fresh = 0;
        for b in &overlapping {
            fresh += store.commit(b, None).await.unwrap().inserted_total();
        }
        let overlap_rate = fresh as f64 / t.elapsed().as_secs_f64();
        println!(
            "postgres: events_per_s={ours_rate:.0} copy_events_per_s={copy_rate:.0} ratio={:.2} events={EVENTS} batch={PAGE} \
             overlapping_pages_new_events_per_s={overlap_rate:.0}",
            ours_rate / copy_rate
        );
    });
}
