//! The JSON documents the AWS CLI prints for `aws logs filter-log-events` and
//! `aws logs get-log-events` (`{"events": [...], ...}`), read event by event: the document is
//! never held in memory, whatever its size. Each element is parsed on its own, so one bad
//! element is a rejection kept with its text, not the end of the file; a document cut short
//! ends the read with an error after every event before the cut was handed on.

use super::keys::ContentIds;
use crate::model::{Rejection, Source};
use crate::sources::logs::process::PageEvent;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::io::Read;

/// The stream of records that name none (`get-log-events` is read one stream at a time and
/// its events do not repeat the name).
pub const UNNAMED_STREAM: &str = "ingest";

/// Keys a `filter-log-events` / `get-log-events` document may start with; anything else
/// that starts with `{` is a JSON log line, read as text.
pub const DOCUMENT_KEYS: [&str; 5] = ["events", "searchedLogStreams", "nextToken", "nextForwardToken", "nextBackwardToken"];

/// One element of `events`.
#[derive(Debug)]
pub enum Record {
    Event(PageEvent),
    Rejected(Rejection),
}

/// Why a document could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[error("not a filter-log-events/get-log-events document (line {line}, column {column}): {message}")]
pub struct DocumentError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// An element as exported: CloudWatch's names, the strings borrowed when they hold no escape.
#[derive(Deserialize)]
struct Element<'a> {
    #[serde(rename = "logStreamName", borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "eventId", borrow, default)]
    event_id: Option<Cow<'a, str>>,
}

/// Reads the document from `reader`, handing each element to `sink` in order; `sink`
/// returns false to stop early. `origin` names the file in rejections; `now_ms` dates them.
/// Returns how many elements were read.
pub fn read_document<R: Read>(reader: R, origin: &str, now_ms: i64, sink: &mut dyn FnMut(Record) -> bool) -> Result<u64, DocumentError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = Elements { sink, ids: ContentIds::default(), origin, now_ms, read: 0, stopped: false };
    let result = Document(&mut state).deserialize(&mut de).and_then(|()| if state.stopped { Ok(()) } else { de.end() });
    match result {
        Ok(()) => Ok(state.read),
        Err(_) if state.stopped => Ok(state.read),
        Err(e) => Err(DocumentError { line: e.line(), column: e.column(), message: e.to_string() }),
    }
}

struct Elements<'s> {
    sink: &'s mut dyn FnMut(Record) -> bool,
    ids: ContentIds,
    origin: &'s str,
    now_ms: i64,
    read: u64,
    stopped: bool,
}

impl Elements<'_> {
    /// Turns one element's text into a record and hands it on; false when the sink stopped.
    fn element(&mut self, raw: &RawValue) -> bool {
        self.read += 1;
        let record = match serde_json::from_str::<Element>(raw.get()) {
            Ok(Element { stream, timestamp: Some(time_ms), message: Some(message), event_id }) => {
                let stream = stream.map_or_else(|| UNNAMED_STREAM.to_string(), Cow::into_owned);
                let event_id = match event_id {
                    Some(id) => id.into_owned(),
                    // `get-log-events` carries no id: one from content, as text lines get.
                    None => self.ids.id(time_ms, &[stream.as_str(), &message].join("\n")),
                };
                Record::Event(PageEvent { stream, time_ms, event_id, message: message.into_owned() })
            }
            Ok(_) => self.rejected("export_event_incomplete", "an exported event without a numeric timestamp or a message".into(), raw),
            Err(e) => self.rejected("export_event_invalid", e.to_string(), raw),
        };
        let more = (self.sink)(record);
        self.stopped = !more;
        more
    }

    fn rejected(&self, reason: &'static str, detail: String, raw: &RawValue) -> Record {
        Record::Rejected(Rejection {
            time_ms: self.now_ms,
            source: Source::Logs.as_str().to_owned(),
            origin: format!("{}#{}", self.origin, self.read),
            reason,
            detail,
            raw: raw.get().to_owned(),
        })
    }
}

/// The top-level object: `events` is streamed, every other key skipped.
struct Document<'a, 's>(&'a mut Elements<'s>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an `events` array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "events" {
                map.next_value_seed(EventsArray(&mut *self.0))?;
                if self.0.stopped {
                    return Err(serde::de::Error::custom("stopped"));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct EventsArray<'a, 's>(&'a mut Elements<'s>);

impl<'de> DeserializeSeed<'de> for EventsArray<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsArray<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of log events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            if !self.0.element(&raw) {
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Whether `head` (the first bytes of a file) starts a `filter-log-events` or
/// `get-log-events` document: `{` and one of [`DOCUMENT_KEYS`] as the first key.
pub fn looks_like_document(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let rest = trim_start(head);
    let Some(rest) = rest.strip_prefix(b"{") else { return false };
    let Some(rest) = trim_start(rest).strip_prefix(b"\"") else { return false };
    let Some(end) = rest.iter().position(|&b| b == b'"') else { return false };
    DOCUMENT_KEYS.iter().any(|k| k.as_bytes() == &rest[..end])
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Record>, Result<u64, DocumentError>) {
        let mut out = Vec::new();
        let result = read_document(text.as_bytes(), "f.json", 7, &mut |r| {
            out.push(r);
            true
        });
        (out, result)
    }

    #[test]
    fn filter_and_get_log_events_shapes() {
        let filter = r#"{
    "events": [
        {
            "logStreamName": "2026/11/22/[12]abc",
            "timestamp": 1795341600000,
            "message": "START RequestId: r1 Version: 12\n",
            "ingestionTime": 1795341615000,
            "eventId": "37000000000000000000000000000000000000000000000000000001"
        }
    ],
    "searchedLogStreams": []
}"#;
        let (records, n) = read(filter);
        assert_eq!(n.unwrap(), 1);
        let Record::Event(e) = &records[0] else { panic!("{records:?}") };
        assert_eq!((e.stream.as_str(), e.time_ms, e.message.as_str()), ("2026/11/22/[12]abc", 1_795_341_600_000, "START RequestId: r1 Version: 12\n"));
        assert_eq!(e.event_id, "37000000000000000000000000000000000000000000000000000001");

        // get-log-events: no stream name, no id, and the tokens around the events.
        let get = r#"{"nextForwardToken": "f/1", "events": [{"timestamp": 5, "message": "a", "ingestionTime": 6}, {"timestamp": 5, "message": "a", "ingestionTime": 6}], "nextBackwardToken": "b/1"}"#;
        let (records, n) = read(get);
        assert_eq!(n.unwrap(), 2);
        let ids: Vec<&str> = records.iter().map(|r| match r { Record::Event(e) => e.event_id.as_str(), _ => panic!() }).collect();
        assert_ne!(ids[0], ids[1], "two identical records are two events");
        assert!(records.iter().all(|r| matches!(r, Record::Event(e) if e.stream == UNNAMED_STREAM)));
    }

    #[test]
    fn a_bad_element_is_kept_and_the_rest_read() {
        let text = r#"{"events": [{"timestamp": "soon", "message": "x"}, {"message": "no time"}, 42, {"timestamp": 9, "message": "ok", "eventId": "1"}]}"#;
        let (records, n) = read(text);
        assert_eq!(n.unwrap(), 4);
        let reasons: Vec<&str> = records.iter().filter_map(|r| match r { Record::Rejected(x) => Some(x.reason), _ => None }).collect();
        assert_eq!(reasons, ["export_event_invalid", "export_event_incomplete", "export_event_invalid"]);
        let Record::Rejected(first) = &records[0] else { panic!() };
        assert_eq!(first.raw, r#"{"timestamp": "soon", "message": "x"}"#, "the element's own text is kept for inspection");
        assert!(matches!(&records[3], Record::Event(e) if e.message == "ok"));
    }

    #[test]
    fn a_document_cut_short_hands_on_what_came_before_and_says_where() {
        let (records, n) = read("{\"events\": [{\"timestamp\": 9, \"message\": \"ok\", \"eventId\": \"1\"},\n {\"timestamp\": 10, \"mess");
        assert_eq!(records.len(), 1);
        let e = n.unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn the_sink_can_stop_the_read() {
        let text = r#"{"events": [{"timestamp": 1, "message": "a"}, {"timestamp": 2, "message": "b"}, {"timestamp": 3, "message": "c"}]}"#;
        let mut seen = 0;
        let n = read_document(text.as_bytes(), "f", 0, &mut |_| {
            seen += 1;
            seen < 2
        });
        assert_eq!((n.unwrap(), seen), (2, 2));
    }

    #[test]
    fn documents_are_told_from_json_log_lines() {
        assert!(looks_like_document(b"{\n    \"events\": ["));
        assert!(looks_like_document(b"\xEF\xBB\xBF  {\"nextForwardToken\": \"x\", \"events\": []}"));
        assert!(!looks_like_document(br#"{"level": "INFO", "event_type": "TIMING"}"#));
        assert!(!looks_like_document(b"2026-11-22T10:00:00.000000+00:00 stream START"));
        assert!(!looks_like_document(b""));
    }
}
