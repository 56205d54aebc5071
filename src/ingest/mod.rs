//! Offline ingest: feeds files through the same parser, attribution and store as the
//! tailer. Reads the JSON documents `aws logs filter-log-events` and `get-log-events` print,
//! `aws logs tail` output, and plain text files of log lines, any of them gzipped; each file
//! is streamed (memory stays bounded whatever its size): one thread reads, parses and
//! correlates records, and the calling task commits, so parsing and SQLite overlap. Keys
//! come from content, never from file names or positions: an exported event keeps
//! CloudWatch's own id (the key the tailer gives it, so the two never store it twice);
//! a record without one is keyed by its time and a hash of its text (and how many identical
//! records came before it at that time). Re-ingesting a file, or the same records under
//! another name, stores nothing new; another file with the same name is stored in full.

pub mod export;
pub mod input;
pub mod keys;
pub mod lines;

use crate::attribute::Attributor;
use crate::model::Rejection;
use crate::sources::logs::process::{PageEvent, StreamMemory, process_page};
use crate::store::{BatchOutcome, Store};
use export::Record;
use input::Format;
use std::collections::HashMap;
/// Records parsed, then committed, together.
const CHUNK: usize = 10_000;

/// A stream quiet for this long (event time) holds no open invocation: an invocation lasts
/// at most 15 minutes. Its memory is dropped, so a file with millions of streams over the
/// years stays in constant memory.
const STREAM_IDLE_MS: i64 = 15 * 60 * 1000 + 60_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source} (every event before that point was stored)")]
    Document { path: String, source: export::DocumentError },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("ingest interrupted: the runtime is shutting down")]
    Interrupted,
}

/// Totals of one ingest run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IngestSummary {
    /// Records read (lines, document elements, `tail` events).
    pub lines: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub ignored: u64,
}

/// Records read, handed to the parser a chunk at a time.
#[derive(Debug, Default)]
struct Chunk {
    events: Vec<PageEvent>,
    rejections: Vec<Rejection>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.events.len() + self.rejections.len()
    }
}

/// Reads `input` to its end on the calling thread, handing chunks to `send` (false: stop).
fn read_input(input: input::Input, origin: &str, send: &mut dyn FnMut(Chunk) -> bool) -> Result<(), IngestError> {
    let mut chunk = Chunk::default();
    let mut sink = |record: Record| {
        match record {
            Record::Event(e) => chunk.events.push(e),
            Record::Rejected(r) => chunk.rejections.push(r),
        }
        chunk.len() < CHUNK || send(std::mem::take(&mut chunk))
    };
    let read = match input.format {
        Format::Document => export::read_document(input.reader, origin, crate::clock::now_ms(), &mut sink)
            .map(drop)
            .map_err(|source| IngestError::Document { path: origin.to_string(), source }),
        Format::Lines(format) => lines::read_lines(std::io::BufReader::with_capacity(input::BUFFER_BYTES, input.reader), format, input.modified_ms, &mut sink)
            .map(drop)
            .map_err(|source| IngestError::Read { path: origin.to_string(), source }),
    };
    // What was read before an error is handed on (and stored) before the error is told.
    if chunk.len() > 0 {
        send(chunk);
    }
    read
}

/// Ingests `paths` into the store as events of `log_group`, file after file.
pub async fn ingest_files(
    store: &Store,
    attributor: &Attributor,
    log_group: &str,
    paths: &[std::path::PathBuf],
) -> Result<IngestSummary, IngestError> {
    let history = match store.alias_history().await {
        Ok(h) => {
            attributor.set_history(h);
            attributor.history()
        }
        Err(_) => attributor.history(),
    };
    let mut summary = IngestSummary::default();
    for path in paths {
        let origin = path.display().to_string();
        let input = input::open(path).map_err(|source| IngestError::Read { path: origin.clone(), source })?;
        // One hand-off: records are read and parsed on one thread (allocated and freed
        // there, so the allocator reuses their memory at once) and only the parsed batch
        // crosses to the commit; one batch in flight, whatever the file's size.
        let (batch_tx, mut batch_rx) = tokio::sync::mpsc::channel(1);
        let (group, attributor, history) = (log_group.to_string(), attributor.clone(), history.clone());
        let reader = tokio::task::spawn_blocking(move || {
            let mut streams: HashMap<String, StreamMemory> = HashMap::new();
            read_input(input, &origin, &mut |chunk| {
                let records = chunk.len() as u64;
                let (mut batch, mut stats) = process_page(&group, chunk.events, &mut streams, &attributor, &history, crate::clock::now_ms());
                for r in chunk.rejections {
                    *stats.rejected.entry(r.reason).or_default() += 1;
                    batch.rejections.push(r);
                }
                forget_idle_streams(&mut streams);
                // The receiver is gone when a commit failed: stop.
                batch_tx.blocking_send((batch, stats, records)).is_ok()
            })
        });
        let mut committed = Ok(());
        while let Some((batch, stats, records)) = batch_rx.recv().await {
            let outcome: BatchOutcome = match store.commit(&batch).await {
                Ok(o) => o,
                Err(e) => {
                    committed = Err(e);
                    break;
                }
            };
            summary.lines += records;
            summary.stored += outcome.inserted_total();
            summary.duplicates += outcome.duplicates;
            summary.rejected += stats.rejected.values().sum::<u64>();
            summary.ignored += stats.ignored.values().sum::<u64>();
        }
        drop(batch_rx);
        let read = joined(reader.await)?;
        committed?;
        read?;
    }
    Ok(summary)
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, IngestError> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(IngestError::Interrupted),
    }
}

/// Drops the memory of streams quiet for [`STREAM_IDLE_MS`] before the newest event seen.
fn forget_idle_streams(streams: &mut HashMap<String, StreamMemory>) {
    let newest = streams.values().map(|m| m.state.last_time_ms).max().unwrap_or(0);
    streams.retain(|_, m| m.state.last_time_ms >= newest.saturating_sub(STREAM_IDLE_MS));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvironmentsConfig;

    #[tokio::test]
    async fn both_formats_and_reingest_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("filter.json");
        std::fs::write(
            &json,
            r#"{"events":[
 {"logStreamName":"2026/11/22/[3]abc","timestamp":1763800000000,"message":"START RequestId: r1 Version: 3\n","ingestionTime":1,"eventId":"1"},
 {"logStreamName":"2026/11/22/[3]abc","timestamp":1763800000001,"message":"{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 2.847}","ingestionTime":1,"eventId":"2"},
 {"logStreamName":"2026/11/22/[3]abc","timestamp":1763800000002,"message":"REPORT RequestId: r1\tDuration: 3003.16 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 48 MB\t\n","ingestionTime":1,"eventId":"3"}
],"searchedLogStreams":[]}"#,
        )
        .unwrap();
        let txt = dir.path().join("lines.log");
        std::fs::write(
            &txt,
            "[INFO]\t2026-11-22T10:00:00.000Z\t1c8df7d3-a1b2-46da-9778-518e6eca8125\t{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 1.5}\nnot a timing line\n2026-11-22T10:00:01.000Z {\"event_type\": \"TIMING\", \"metric\": \"ConnectCallDuration\", \"value_sec\": 0.5}\n{\"event_type\": \"TIMING\", \"metric\": \"X\", \"value_sec\": \"abc\"}\n",
        )
        .unwrap();
        let store = Store::open_memory().await.unwrap();
        let a = Attributor::new(&EnvironmentsConfig::default());
        let paths = vec![json, txt];
        let first = ingest_files(&store, &a, "/aws/lambda/GenerateDynamicScenarioHandler", &paths).await.unwrap();
        assert_eq!(first.stored, 4, "{first:?}");
        assert_eq!(first.rejected, 1);
        let again = ingest_files(&store, &a, "/aws/lambda/GenerateDynamicScenarioHandler", &paths).await.unwrap();
        assert_eq!(again.stored, 0);
        assert_eq!(again.duplicates, 4);
        let time_of = |operations: &'static [&'static str]| {
            let filter = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, account: None, region: None, operations };
            let store = store.clone();
            async move { store.slowest_events(filter, 10).await.unwrap() }
        };
        let t = time_of(&["ConnectCallDuration"]).await[0].time_ms;
        assert_eq!(t, 1_795_341_601_000, "an exported line's timestamp is its time, and the rest its message");
        let t = time_of(&["BedrockCallDuration"]).await.iter().find(|e| e.duration_s == 1.5).unwrap().time_ms;
        assert_eq!(t, 1_795_341_600_000, "2026-11-22T10:00:00Z from the line itself");
    }

    /// Keys come from content: another file under the same name is stored in full; the same
    /// lines under another name, or repeated at the same time, are counted right.
    #[tokio::test]
    async fn keys_follow_content_not_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a_dir).unwrap();
        std::fs::create_dir_all(&b_dir).unwrap();
        let line = |t: &str, v: &str| format!("{t} {{\"event_type\": \"TIMING\", \"metric\": \"BedrockCallDuration\", \"value_sec\": {v}}}\n");
        // Two identical lines at the same time are two events.
        let first = [line("2026-11-22T10:00:00.000Z", "1.5"), line("2026-11-22T10:00:00.000Z", "1.5"), line("2026-11-22T10:00:01.000Z", "2.5")].concat();
        let second = [line("2026-11-22T11:00:00.000Z", "7.5"), line("2026-11-22T11:00:01.000Z", "8.5")].concat();
        std::fs::write(a_dir.join("gdsh.log"), &first).unwrap();
        std::fs::write(b_dir.join("gdsh.log"), &second).unwrap();
        std::fs::write(b_dir.join("renamed.log"), &first).unwrap();
        let store = Store::open_memory().await.unwrap();
        let a = Attributor::new(&EnvironmentsConfig::default());
        let g = "/aws/lambda/GenerateDynamicScenarioHandler";
        let s1 = ingest_files(&store, &a, g, &[a_dir.join("gdsh.log")]).await.unwrap();
        assert_eq!((s1.stored, s1.duplicates), (3, 0), "{s1:?}");
        let s2 = ingest_files(&store, &a, g, &[b_dir.join("gdsh.log")]).await.unwrap();
        assert_eq!((s2.stored, s2.duplicates), (2, 0), "another file with the same name: {s2:?}");
        let s3 = ingest_files(&store, &a, g, &[b_dir.join("renamed.log")]).await.unwrap();
        assert_eq!((s3.stored, s3.duplicates), (0, 3), "the same lines under another name: {s3:?}");
        assert_eq!(store.count_events(None).await.unwrap(), 5);
    }

}
