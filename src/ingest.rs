//! Offline ingest: feeds files through the same parser, attribution and store as the
//! tailer. Reads the JSON that `aws logs filter-log-events` prints, or plain text files of
//! log lines (one event per line). Keys are derived from the file's content and position,
//! so re-ingesting a file stores nothing new.

use crate::attribute::Attributor;
use crate::sources::logs::process::{PageEvent, StreamMemory, process_page};
use crate::store::{BatchOutcome, Store};
use std::collections::HashMap;
use std::path::Path;

/// Lines handled per commit.
const CHUNK: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("ingest interrupted: the runtime is shutting down")]
    Interrupted,
}

/// Totals of one ingest run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IngestSummary {
    pub lines: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub ignored: u64,
}

/// The events of a `filter-log-events` JSON document, if `text` is one.
fn page_events(path: &Path, text: &str) -> Option<Vec<PageEvent>> {
    let v = serde_json::from_str::<serde_json::Value>(text).ok()?;
    let events = v.get("events")?.as_array()?;
    Some(
        events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                Some(PageEvent {
                    stream: e.get("logStreamName")?.as_str()?.to_string(),
                    time_ms: e.get("timestamp")?.as_i64()?,
                    event_id: e
                        .get("eventId")
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{}#{i}", path.display())),
                    message: e.get("message")?.as_str()?.to_string(),
                })
            })
            .collect(),
    )
}

/// Turns a text file's lines into events, a run of whole lines at a time; carries what one
/// run leaves for the next (line numbers, the last time seen).
#[derive(Debug, Clone)]
struct LineEvents {
    stream: String,
    fallback_ms: i64,
    last_ms: Option<i64>,
    lines_before: usize,
}

impl LineEvents {
    fn new(path: &Path, stream: &str) -> LineEvents {
        let fallback_ms = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        LineEvents { stream: stream.to_string(), fallback_ms, last_ms: None, lines_before: 0 }
    }

    /// `text` must end at a line boundary.
    fn convert(&mut self, text: &str) -> Vec<PageEvent> {
        let mut out = Vec::new();
        for line in text.lines() {
            self.lines_before += 1;
            if line.trim().is_empty() {
                continue;
            }
            // Lines keep the time written in them (runtime prefixes carry one); others take
            // the previous line's, so keys stay stable when the file is ingested again.
            let t = leading_timestamp_ms(line).or(self.last_ms).unwrap_or(self.fallback_ms);
            self.last_ms = Some(t);
            let message = strip_export_timestamp(line);
            out.push(PageEvent {
                stream: self.stream.clone(),
                time_ms: t,
                event_id: line_id(self.lines_before),
                // Escaped tabs/newlines are what copied console output holds.
                message: if message.contains('\\') { message.replace("\\t", "\t").replace("\\n", "\n") } else { message.to_string() },
            });
        }
        out
    }
}

/// `line00000042`: a line's event id (zero-padded so ids sort in file order).
fn line_id(n: usize) -> String {
    let digits = n.to_string();
    let mut id = String::with_capacity(12.max(digits.len() + 4));
    id.push_str("line");
    id.extend(std::iter::repeat_n('0', 8usize.saturating_sub(digits.len())));
    id.push_str(&digits);
    id
}

/// The byte offset just past the `n`th newline from `from` (or the end of `text`).
fn after_lines(text: &str, from: usize, n: usize) -> usize {
    let bytes = &text.as_bytes()[from..];
    let mut at = 0;
    for _ in 0..n {
        match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(i) => at += i + 1,
            None => return text.len(),
        }
    }
    from + at
}

/// Exported logs (`<timestamp> <message>`, as `aws logs tail` and most consoles print them)
/// carry the event time before the message, separated by a space: the message is what
/// follows. Runtime lines that start with a time and a TAB (Node's prefix) are kept whole.
fn strip_export_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((first, rest)) if !first.contains('\t') && leading_timestamp_ms(first).is_some() => rest,
        _ => line,
    }
}

/// An RFC 3339 time at the start of a line or after a `[LEVEL]\t` prefix.
fn leading_timestamp_ms(line: &str) -> Option<i64> {
    let rest = if line.starts_with('[') { line.split_once(['\t', ' ']).map(|(_, r)| r)? } else { line };
    let token = rest.split(['\t', ' ']).next()?;
    if token.len() < 20 || !token.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    humantime::parse_rfc3339_weak(token.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// A file's events, handed out a chunk at a time.
enum Feed {
    /// A `filter-log-events` document, already read.
    Page(std::vec::IntoIter<PageEvent>),
    /// Text lines, turned into events as they are handed out.
    Lines { text: String, at: usize, reader: LineEvents },
}

impl Feed {
    fn new(path: &Path, text: String, stream: &str) -> Feed {
        match page_events(path, &text) {
            Some(events) => Feed::Page(events.into_iter()),
            None => Feed::Lines { text, at: 0, reader: LineEvents::new(path, stream) },
        }
    }

    fn next_chunk(&mut self) -> Option<Vec<PageEvent>> {
        match self {
            Feed::Page(events) => {
                let chunk: Vec<PageEvent> = events.by_ref().take(CHUNK).collect();
                (!chunk.is_empty()).then_some(chunk)
            }
            Feed::Lines { text, at, reader } => {
                if *at >= text.len() {
                    return None;
                }
                let end = after_lines(text, *at, CHUNK);
                let events = reader.convert(&text[*at..end]);
                *at = end;
                Some(events)
            }
        }
    }
}

/// Ingests `paths` into the store as events of `log_group`. A blocking thread reads and
/// parses chunk after chunk while this task commits them, so parsing and SQLite each keep
/// a core busy; the channel between them holds two chunks, bounding memory.
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
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Read { path: path.display().to_string(), source })?;
        let stream = format!("ingest/{}", path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let (path, group, attributor, history) = (path.clone(), log_group.to_string(), attributor.clone(), history.clone());
        let producer = tokio::task::spawn_blocking(move || {
            let mut feed = Feed::new(&path, text, &stream);
            let mut streams: HashMap<String, StreamMemory> = HashMap::new();
            while let Some(events) = feed.next_chunk() {
                let lines = events.len() as u64;
                let (batch, stats) = process_page(&group, events, &mut streams, &attributor, &history);
                // The receiver is gone when a commit failed: stop.
                if tx.blocking_send((batch, stats, lines)).is_err() {
                    return;
                }
            }
        });
        while let Some((batch, stats, lines)) = rx.recv().await {
            let outcome: BatchOutcome = store.commit(&batch).await?;
            summary.lines += lines;
            summary.stored += outcome.inserted_total();
            summary.duplicates += outcome.duplicates;
            summary.rejected += stats.rejected.values().sum::<u64>();
            summary.ignored += stats.ignored.values().sum::<u64>();
        }
        match producer.await {
            Ok(()) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(IngestError::Interrupted),
        }
    }
    Ok(summary)
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
        let t: i64 = sqlx::query_scalar("SELECT time_ms FROM events WHERE operation = 'ConnectCallDuration'").fetch_one(store.pool()).await.unwrap();
        assert_eq!(t, 1_795_341_601_000, "an exported line's timestamp is its time, and the rest its message");
        let t: i64 = sqlx::query_scalar("SELECT time_ms FROM events WHERE duration_s = 1.5").fetch_one(store.pool()).await.unwrap();
        assert_eq!(t, 1_795_341_600_000, "2026-11-22T10:00:00Z from the line itself");
    }
}
