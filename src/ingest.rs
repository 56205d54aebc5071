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

/// The events of a file: filter-log-events JSON when it looks like it, else text lines.
pub fn read_events(path: &Path, text: &str, default_stream: &str) -> Vec<PageEvent> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(events) = v.get("events").and_then(|e| e.as_array()) {
            return events
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
                .collect();
        }
    }
    let fallback_ms = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut last_ms = None;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            // Lines keep the time written in them (runtime prefixes carry one); others take
            // the previous line's, so keys stay stable when the file is ingested again.
            let t = leading_timestamp_ms(line).or(last_ms).unwrap_or(fallback_ms);
            last_ms = Some(t);
            PageEvent {
                stream: default_stream.to_string(),
                time_ms: t,
                event_id: format!("line{:08}", i + 1),
                // Escaped tabs/newlines are what copied console output holds.
                message: strip_export_timestamp(line).replace("\\t", "\t").replace("\\n", "\n"),
            }
        })
        .collect()
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

/// Ingests `paths` into the store as events of `log_group`.
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
        let events = read_events(path, &text, &stream);
        let mut streams: HashMap<String, StreamMemory> = HashMap::new();
        for chunk in events.chunks(CHUNK) {
            summary.lines += chunk.len() as u64;
            let (batch, stats) = process_page(log_group, chunk.to_vec(), &mut streams, attributor, &history);
            let outcome: BatchOutcome = store.commit(&batch).await?;
            summary.stored += outcome.inserted_total();
            summary.duplicates += outcome.duplicates;
            summary.rejected += stats.rejected.values().sum::<u64>();
            summary.ignored += stats.ignored.values().sum::<u64>();
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
