//! Offline ingest: feeds files through the same parser, attribution and store as the
//! tailer. Reads the JSON that `aws logs filter-log-events` prints, or plain text files of
//! log lines (one event per line). Keys come from content, never from file names or
//! positions: an exported event keeps CloudWatch's own id (the key the tailer gives it, so
//! the two never store it twice); a text line is keyed by its time and a hash of its text
//! (and how many identical lines came before it at that time). Re-ingesting a file, or the
//! same lines under another name, stores nothing new; another file with the same name is
//! stored in full.

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

/// The stream text-file lines are read as: one, whatever the file's name, so that keys
/// depend on content only.
const TEXT_STREAM: &str = "ingest";

/// FNV-1a, 64 bits: a stable hash of a line's text for its key (not a defence against
/// crafted collisions: a collision only makes one of two lines look like a re-ingest).
fn content_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Event ids from content: `<time>-<hash>`, and `#n` for the n-th repeat of the same text at
/// the same time in one file.
#[derive(Debug, Default)]
struct ContentIds {
    seen: HashMap<(i64, u64), u32>,
}

impl ContentIds {
    fn id(&mut self, time_ms: i64, text: &str) -> String {
        let hash = content_hash(text);
        let n = self.seen.entry((time_ms, hash)).or_default();
        let id = if *n == 0 { format!("{time_ms}-{hash:016x}") } else { format!("{time_ms}-{hash:016x}#{n}") };
        *n += 1;
        id
    }
}

/// The events of a `filter-log-events` JSON document, if `text` is one. Events without an
/// `eventId` (other exports) get one from their content.
fn page_events(text: &str) -> Option<Vec<PageEvent>> {
    let v = serde_json::from_str::<serde_json::Value>(text).ok()?;
    let events = v.get("events")?.as_array()?;
    let mut ids = ContentIds::default();
    Some(
        events
            .iter()
            .filter_map(|e| {
                let stream = e.get("logStreamName")?.as_str()?.to_string();
                let time_ms = e.get("timestamp")?.as_i64()?;
                let message = e.get("message")?.as_str()?.to_string();
                let event_id = match e.get("eventId").and_then(|x| x.as_str()) {
                    Some(id) => id.to_string(),
                    None => ids.id(time_ms, &[stream.as_str(), message.as_str()].join("\n")),
                };
                Some(PageEvent { stream, time_ms, event_id, message })
            })
            .collect(),
    )
}

/// Turns a text file's lines into events, a run of whole lines at a time; carries what one
/// run leaves for the next (line numbers, the last time seen).
#[derive(Debug)]
struct LineEvents {
    fallback_ms: i64,
    last_ms: Option<i64>,
    ids: ContentIds,
}

impl LineEvents {
    fn new(path: &Path) -> LineEvents {
        let fallback_ms = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(0);
        LineEvents { fallback_ms, last_ms: None, ids: ContentIds::default() }
    }

    /// `text` must end at a line boundary.
    fn convert(&mut self, text: &str) -> Vec<PageEvent> {
        let mut out = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            // Lines keep the time written in them (runtime prefixes carry one); others take
            // the previous line's. A file whose first lines carry no time at all dates them
            // by its modification time, which is not part of their key: touching the file
            // does not make its lines new.
            let written = leading_timestamp_ms(line).or(self.last_ms);
            self.last_ms = written;
            let message = strip_export_timestamp(line);
            // Escaped tabs/newlines are what copied console output holds.
            let message = if message.contains('\\') { message.replace("\\t", "\t").replace("\\n", "\n") } else { message.to_string() };
            out.push(PageEvent {
                stream: TEXT_STREAM.to_string(),
                time_ms: written.unwrap_or(self.fallback_ms),
                event_id: self.ids.id(written.unwrap_or(0), &message),
                message,
            });
        }
        out
    }
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
    fn new(path: &Path, text: String) -> Feed {
        match page_events(&text) {
            Some(events) => Feed::Page(events.into_iter()),
            None => Feed::Lines { text, at: 0, reader: LineEvents::new(path) },
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
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let (path, group, attributor, history) = (path.clone(), log_group.to_string(), attributor.clone(), history.clone());
        let producer = tokio::task::spawn_blocking(move || {
            let mut feed = Feed::new(&path, text);
            let mut streams: HashMap<String, StreamMemory> = HashMap::new();
            while let Some(events) = feed.next_chunk() {
                let lines = events.len() as u64;
                let (batch, stats) = process_page(&group, events, &mut streams, &attributor, &history, crate::clock::now_ms());
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
        let time_of = |operations: &'static [&'static str]| {
            let filter = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, operations };
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
