//! The JSON documents the AWS CLI prints for `aws logs filter-log-events` and
//! `aws logs get-log-events` (`{"events": [...], ...}`), read event by event: the document is
//! never held in memory, whatever its size. The file is read in blocks into a window;
//! `serde_json` parses each element from the window's bytes (its fast path, borrowing
//! strings without escapes), and the window slides on. Each element is parsed on its own,
//! so one bad element is a rejection kept with its text, not the end of the file; a
//! document cut short ends the read with an error after every event before the cut was
//! handed on.

use super::keys::ContentIds;
use crate::model::{Rejection, Source};
use crate::sources::logs::process::PageEvent;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;
use std::io::Read;

/// The stream of records that name none (`get-log-events` is read one stream at a time and
/// its events do not repeat the name).
pub const UNNAMED_STREAM: &str = "ingest";

/// Keys a `filter-log-events` / `get-log-events` document may start with; anything else
/// that starts with `{` is a JSON log line, read as text.
pub const DOCUMENT_KEYS: [&str; 5] = ["events", "searchedLogStreams", "nextToken", "nextForwardToken", "nextBackwardToken"];

/// The largest element of `events` (or other value) held: a CloudWatch event is at most
/// 1 MB, so anything this large is not an export, and holding it would break the memory
/// bound.
pub const MAX_ELEMENT_BYTES: usize = 64 << 20;

/// How much is read from the file at a time.
const BLOCK_BYTES: usize = 1 << 20;

/// One element of `events`.
#[derive(Debug)]
pub enum Record {
    Event(PageEvent),
    Rejected(Rejection),
}

/// Why a document could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not a filter-log-events/get-log-events document at byte {offset}: {message}")]
    Syntax { offset: u64, message: String },
    #[error("the document ends at byte {offset} before it is complete")]
    CutShort { offset: u64 },
    #[error("a value at byte {offset} is larger than {} MiB", MAX_ELEMENT_BYTES >> 20)]
    TooLarge { offset: u64 },
    #[error("cannot read the file at byte {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
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
    let mut w = Window { reader, data: Vec::with_capacity(2 * BLOCK_BYTES), pos: 0, base: 0, eof: false };
    let mut elements = Elements { sink, ids: ContentIds::default(), origin, now_ms, read: 0 };
    w.skip_ws()?;
    if w.data[w.pos..].starts_with(b"\xEF\xBB\xBF") {
        w.pos += 3;
    }
    w.expect(b'{')?;
    if w.peek_after_ws()? == Some(b'}') {
        w.pos += 1;
        return Ok(0);
    }
    loop {
        w.skip_ws()?;
        let key: String = w.value()?;
        w.expect(b':')?;
        if key == "events" {
            w.expect(b'[')?;
            if w.peek_after_ws()? == Some(b']') {
                w.pos += 1;
            } else {
                loop {
                    if !w.element(&mut elements)? {
                        return Ok(elements.read);
                    }
                    match w.peek_after_ws()? {
                        Some(b',') => w.pos += 1,
                        Some(b']') => {
                            w.pos += 1;
                            break;
                        }
                        _ => return Err(w.syntax("expected `,` or `]` after an event")),
                    }
                }
            }
        } else {
            w.skip_ws()?;
            w.value::<IgnoredAny>()?;
        }
        match w.peek_after_ws()? {
            Some(b',') => w.pos += 1,
            Some(b'}') => {
                w.pos += 1;
                break;
            }
            _ => return Err(w.syntax("expected `,` or `}` after a value")),
        }
    }
    match w.peek_after_ws()? {
        None => Ok(elements.read),
        Some(_) => Err(w.syntax("text after the document")),
    }
}

/// The part of the file being parsed: `data[pos..]` is what is left of it, `base` the file
/// offset of `data[0]`.
struct Window<R> {
    reader: R,
    data: Vec<u8>,
    pos: usize,
    base: u64,
    eof: bool,
}

impl<R: Read> Window<R> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn syntax(&self, message: &str) -> DocumentError {
        DocumentError::Syntax { offset: self.offset(), message: message.to_string() }
    }

    /// Reads another block, dropping what was already parsed. False at the end of the file.
    fn fill(&mut self) -> Result<bool, DocumentError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.data.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.data.len() >= MAX_ELEMENT_BYTES {
            return Err(DocumentError::TooLarge { offset: self.offset() });
        }
        // A value longer than the window doubles it, so it is parsed a handful of times
        // rather than once per block.
        let start = self.data.len();
        self.data.resize(start + BLOCK_BYTES.max(start), 0);
        let mut filled = start;
        while filled < self.data.len() {
            match self.reader.read(&mut self.data[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    self.data.truncate(filled);
                    return Err(DocumentError::Io { offset: self.base + filled as u64, source });
                }
            }
        }
        self.data.truncate(filled);
        Ok(filled > start)
    }

    fn skip_ws(&mut self) -> Result<(), DocumentError> {
        loop {
            let n = self.data[self.pos..].iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.pos += n;
            if self.pos < self.data.len() || !self.fill()? {
                return Ok(());
            }
        }
    }

    /// The next byte that is not whitespace (not consumed), or `None` at the end.
    fn peek_after_ws(&mut self) -> Result<Option<u8>, DocumentError> {
        self.skip_ws()?;
        Ok(self.data.get(self.pos).copied())
    }

    fn expect(&mut self, byte: u8) -> Result<(), DocumentError> {
        match self.peek_after_ws()? {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.syntax(&format!("expected `{}`", byte as char))),
            None => Err(DocumentError::CutShort { offset: self.offset() }),
        }
    }

    /// Parses one owned value (a key, a skipped value) at the window's start, reading more
    /// of the file while the window holds only part of it.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, DocumentError> {
        loop {
            let rest = &self.data[self.pos..];
            let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
            match values.next() {
                Some(Ok(v)) if complete(values.byte_offset(), rest.len(), self.eof) => {
                    self.pos += values.byte_offset();
                    return Ok(v);
                }
                Some(Err(e)) if !e.is_eof() => return Err(self.syntax(&e.to_string())),
                _ => {}
            }
            if !self.fill()? {
                return Err(DocumentError::CutShort { offset: self.offset() });
            }
        }
    }

    /// Parses the next element of `events` into a record for `elements`' sink; false when
    /// the sink stopped the read.
    fn element(&mut self, elements: &mut Elements) -> Result<bool, DocumentError> {
        self.skip_ws()?;
        loop {
            let rest = &self.data[self.pos..];
            let mut typed = serde_json::Deserializer::from_slice(rest).into_iter::<Element>();
            let parsed = match typed.next() {
                Some(Ok(e)) if complete(typed.byte_offset(), rest.len(), self.eof) => Some((Ok(e), typed.byte_offset())),
                // Not an event (a wrong type, not an object): skipped whole, kept as a rejection.
                Some(Err(e)) if !e.is_eof() => {
                    let mut any = serde_json::Deserializer::from_slice(rest).into_iter::<IgnoredAny>();
                    match any.next() {
                        Some(Ok(_)) if complete(any.byte_offset(), rest.len(), self.eof) => Some((Err(e), any.byte_offset())),
                        Some(Err(syntax)) if !syntax.is_eof() => return Err(self.syntax(&syntax.to_string())),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((element, end)) = parsed {
                let more = elements.element(element, &rest[..end]);
                self.pos += end;
                return Ok(more);
            }
            if !self.fill()? {
                return Err(DocumentError::CutShort { offset: self.offset() });
            }
        }
    }
}

/// Whether a value that parsed to `end` in a window of `len` bytes is whole: a byte follows
/// it (a number cut by the window's end would parse short), or the file ended.
fn complete(end: usize, len: usize, eof: bool) -> bool {
    end < len || eof
}

struct Elements<'s> {
    sink: &'s mut dyn FnMut(Record) -> bool,
    ids: ContentIds,
    origin: &'s str,
    now_ms: i64,
    read: u64,
}

impl Elements<'_> {
    /// Turns one element into a record and hands it on; false when the sink stopped.
    fn element(&mut self, parsed: Result<Element, serde_json::Error>, raw: &[u8]) -> bool {
        self.read += 1;
        let record = match parsed {
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
        (self.sink)(record)
    }

    fn rejected(&self, reason: &'static str, detail: String, raw: &[u8]) -> Record {
        Record::Rejected(Rejection {
            time_ms: self.now_ms,
            source: Source::Logs.as_str().to_owned(),
            origin: format!("{}#{}", self.origin, self.read),
            reason,
            detail,
            raw: String::from_utf8_lossy(raw).into_owned(),
        })
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
        assert!(matches!(e, DocumentError::CutShort { offset: 64 }), "where the unfinished event starts: {e}");
        // A syntax error names where the value starts.
        let (records, n) = read(r#"{"events": [{"timestamp": 9, "message": "ok", "eventId": "1"}, {"timestamp": 10,, }]}"#);
        assert_eq!(records.len(), 1);
        assert!(matches!(n, Err(DocumentError::Syntax { offset: 63, .. })), "{n:?}");
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

    /// Elements cut by the window's edge at every possible byte parse as if read whole: a
    /// reader that hands out a few bytes at a time exercises every refill.
    #[test]
    fn block_edges_do_not_change_what_is_read() {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text = r#" {"nextToken": {"deep": [1, 2.5e3, "x\"y"]}, "events": [{"timestamp": 1234567, "message": "a\tb", "eventId": "9"}, 42, {"timestamp": 7, "message": "é"}], "searchedLogStreams": []} "#;
        let (whole, n) = read(text);
        n.unwrap();
        for step in 1..8 {
            let mut out = Vec::new();
            let n = read_document(Trickle(text.as_bytes(), step), "f.json", 7, &mut |r| {
                out.push(r);
                true
            });
            assert_eq!(n.unwrap(), 3);
            assert_eq!(format!("{out:?}"), format!("{whole:?}"), "read {step} bytes at a time");
        }
    }

    #[test]
    fn an_endless_element_fails_the_read_instead_of_filling_memory() {
        let endless = (&br#"{"events": [{"timestamp": 1, "message": "a", "eventId": "1"}, {"message": ""#[..]).chain(std::io::repeat(b'x'));
        let mut seen = 0;
        let n = read_document(endless, "f", 0, &mut |_| {
            seen += 1;
            true
        });
        assert!(matches!(n, Err(DocumentError::TooLarge { .. })), "{n:?}");
        assert_eq!(seen, 1, "what came before was handed on");
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
