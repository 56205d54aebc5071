//! Text files of log events, read line by line: plain log lines (one event per line, as
//! consoles and runtime captures hold them) and the output of `aws logs tail` (`detailed`,
//! `short` and `json` formats), where an event starts at a line that begins with its time
//! and the lines after it (a traceback, a REPORT's `XRAY` line, pretty-printed JSON) belong
//! to it. Lines and events are capped in size, so no file makes the reader hold more than
//! a few megabytes.

use super::export::{Record, UNNAMED_STREAM};
use super::keys::ContentIds;
use crate::sources::logs::process::PageEvent;
use std::io::BufRead;

/// The longest line kept whole; the rest of a longer line is dropped (CloudWatch events are
/// at most 1 MB, and such a line is rejected by the parser, kept capped with its reason).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// The longest `tail` event (its continuation lines joined); a longer one is handed on in
/// pieces, each rejected or parsed on its own.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// How a text file's lines make events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One event per line.
    Plain,
    /// `aws logs tail` output: an event per time-stamped line, continuation lines joined.
    Tail,
}

impl LineFormat {
    /// The format of a file whose first non-empty line is `first`.
    pub fn of_first_line(first: &str) -> LineFormat {
        if tail_header(first).is_some() { LineFormat::Tail } else { LineFormat::Plain }
    }
}

/// Reads `reader` to its end, handing each event to `sink` (false stops the read).
/// `fallback_ms` dates lines before any time is seen (the file's modification time, which
/// is not part of any key). Returns how many events were handed on.
pub fn read_lines<R: BufRead>(mut reader: R, format: LineFormat, fallback_ms: i64, sink: &mut dyn FnMut(Record) -> bool) -> std::io::Result<u64> {
    let mut events = LineEvents { fallback_ms, last_ms: None, ids: ContentIds::default(), pending: None, handed: 0 };
    let mut buf = Vec::with_capacity(8 << 10);
    loop {
        buf.clear();
        if !read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES)? {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        let more = match format {
            LineFormat::Plain => events.plain(line, sink),
            LineFormat::Tail => events.tail(line, sink),
        };
        if !more {
            return Ok(events.handed);
        }
    }
    events.flush(sink);
    Ok(events.handed)
}

/// Appends one line (with its newline) to `buf`, at most `max` bytes of it; the rest of a
/// longer line is consumed and dropped. False at the end of the input.
fn read_line_capped<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any);
        }
        any = true;
        let (take, done) = match memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        if done {
            return Ok(true);
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// A `tail` event whose continuation lines may still follow.
struct Pending {
    time_ms: i64,
    stream: String,
    message: String,
}

struct LineEvents {
    fallback_ms: i64,
    last_ms: Option<i64>,
    ids: ContentIds,
    pending: Option<Pending>,
    handed: u64,
}

impl LineEvents {
    fn hand(&mut self, stream: String, time_ms: i64, key_time: i64, message: String, sink: &mut dyn FnMut(Record) -> bool) -> bool {
        let text = if stream == UNNAMED_STREAM { message.clone() } else { [stream.as_str(), &message].join("\n") };
        let event_id = self.ids.id(key_time, &text);
        self.handed += 1;
        sink(Record::Event(PageEvent { stream, time_ms, event_id, message }))
    }

    fn plain(&mut self, line: &str, sink: &mut dyn FnMut(Record) -> bool) -> bool {
        if line.trim().is_empty() {
            return true;
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
        self.hand(UNNAMED_STREAM.to_string(), written.unwrap_or(self.fallback_ms), written.unwrap_or(0), message, sink)
    }

    fn tail(&mut self, line: &str, sink: &mut dyn FnMut(Record) -> bool) -> bool {
        if let Some(header) = tail_header(line) {
            let more = self.flush(sink);
            self.last_ms = Some(header.time_ms);
            self.pending = Some(Pending {
                time_ms: header.time_ms,
                stream: header.stream.unwrap_or(UNNAMED_STREAM).to_string(),
                message: header.message.to_string(),
            });
            return more;
        }
        match &mut self.pending {
            Some(p) if p.message.len() + line.len() < MAX_EVENT_BYTES => {
                // `--format json` starts a JSON message on the line after the header.
                if !p.message.is_empty() {
                    p.message.push('\n');
                }
                p.message.push_str(line);
                true
            }
            Some(p) => {
                let (time_ms, stream) = (p.time_ms, p.stream.clone());
                let more = self.flush(sink);
                self.pending = Some(Pending { time_ms, stream, message: line.to_string() });
                more
            }
            // Lines before the first header: plain lines.
            None => self.plain(line, sink),
        }
    }

    fn flush(&mut self, sink: &mut dyn FnMut(Record) -> bool) -> bool {
        match self.pending.take() {
            Some(p) if !p.message.trim().is_empty() => self.hand(p.stream, p.time_ms, p.time_ms, p.message, sink),
            _ => true,
        }
    }
}

/// The start of an event in `aws logs tail` output.
#[derive(Debug, PartialEq)]
struct TailHeader<'a> {
    time_ms: i64,
    stream: Option<&'a str>,
    message: &'a str,
}

/// `2026-11-22T10:00:00.123000+00:00 <stream> <message>` (`detailed`; `json` drops the
/// fraction when it is zero and puts a JSON message on the next lines) or
/// `2026-11-22T10:00:00 <message>` (`short`).
fn tail_header(line: &str) -> Option<TailHeader<'_>> {
    let b = line.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < shape.len() + 1
        || !shape.iter().zip(b).all(|(s, c)| if *s == b'd' { c.is_ascii_digit() } else { s == c })
    {
        return None;
    }
    let mut at = shape.len();
    if b[at] == b'.' {
        at += 1 + b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    let time = &line[..at];
    let rest = &line[at..];
    let time_ms = humantime::parse_rfc3339_weak(time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())?;
    if let Some(rest) = rest.strip_prefix("+00:00 ") {
        let (stream, message) = rest.split_once(' ').unwrap_or((rest, ""));
        if stream.is_empty() {
            return None;
        }
        return Some(TailHeader { time_ms, stream: Some(stream), message });
    }
    if at == shape.len() {
        if let Some(message) = rest.strip_prefix(' ') {
            return Some(TailHeader { time_ms, stream: None, message });
        }
    }
    None
}

/// Exported logs (`<timestamp> <message>`, as most consoles print them) carry the event
/// time before the message, separated by a space: the message is what follows. Runtime
/// lines that start with a time and a TAB (Node's prefix) are kept whole.
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
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<PageEvent> {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let mut out = Vec::new();
        read_lines(text.as_bytes(), LineFormat::of_first_line(first), 42, &mut |r| {
            match r {
                Record::Event(e) => out.push(e),
                Record::Rejected(r) => panic!("{r:?}"),
            }
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn tail_detailed_joins_continuation_lines_and_keeps_the_stream() {
        let text = "2026-11-22T10:00:00.001000+00:00 2026/11/22/[12]abc START RequestId: r1 Version: 12\n\
                    2026-11-22T10:00:03.125000+00:00 2026/11/22/[12]abc REPORT RequestId: r1\tDuration: 3125.00 ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t\n\
                    XRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true\n\
                    2026-11-22T10:00:04+00:00 2026/11/22/[12]def \n\
                    {\n    \"event_type\": \"TIMING\",\n    \"metric\": \"BedrockCallDuration\",\n    \"value_sec\": 2.5\n}\n";
        let evs = events(text);
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert_eq!(evs[0].stream, "2026/11/22/[12]abc");
        assert_eq!(evs[0].time_ms, 1_795_341_600_001);
        assert!(evs[1].message.ends_with("\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true"), "{:?}", evs[1].message);
        assert_eq!(evs[2].stream, "2026/11/22/[12]def");
        assert_eq!(evs[2].time_ms, 1_795_341_604_000);
        assert!(evs[2].message.starts_with("{\n    \"event_type\""), "{:?}", evs[2].message);
        let parsed: serde_json::Value = serde_json::from_str(&evs[2].message).unwrap();
        assert_eq!(parsed["value_sec"], 2.5);
    }

    #[test]
    fn tail_short_has_no_stream() {
        let evs = events("2026-11-22T10:00:00 first\n  continued\n2026-11-22T10:00:01 second\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].message, "first\n  continued");
        assert_eq!(evs[0].stream, UNNAMED_STREAM);
    }

    #[test]
    fn plain_lines_are_one_event_each() {
        let evs = events("[INFO]\t2026-11-22T10:00:00.000Z\tr1\tone\nnot timed\n2026-11-22T10:00:01.000Z two\n");
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1].time_ms, evs[0].time_ms, "an untimed line takes the previous line's time");
        assert_eq!(evs[2].message, "two");
    }

    #[test]
    fn an_overlong_line_is_capped_not_held() {
        let mut text = "x".repeat(MAX_LINE_BYTES + 1000);
        text.push_str("\nnext\n");
        let evs = events(&text);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].message.len(), MAX_LINE_BYTES);
        assert_eq!(evs[1].message, "next");
    }

    #[test]
    fn an_overlong_tail_event_is_handed_on_in_pieces() {
        let mut text = String::from("2026-11-22T10:00:00.000000+00:00 s first\n");
        let piece = "y".repeat(1 << 20);
        for _ in 0..6 {
            text.push_str(&piece);
            text.push('\n');
        }
        let evs = events(&text);
        assert!(evs.len() >= 2, "{}", evs.len());
        assert!(evs.iter().all(|e| e.message.len() <= MAX_EVENT_BYTES && e.stream == "s"));
        assert!(evs.iter().map(|e| e.message.len()).sum::<usize>() >= 6 << 20, "nothing dropped");
    }

    #[test]
    fn headers() {
        assert_eq!(
            tail_header("2026-11-22T10:00:00.250000+00:00 s m e s s"),
            Some(TailHeader { time_ms: 1_795_341_600_250, stream: Some("s"), message: "m e s s" })
        );
        assert_eq!(tail_header("2026-11-22T10:00:00 m"), Some(TailHeader { time_ms: 1_795_341_600_000, stream: None, message: "m" }));
        assert_eq!(tail_header("2026-11-22T10:00:00.000Z m"), None, "a console export line: plain");
        assert_eq!(tail_header("2026-11-22T10:00:00.000Z\tr1\tINFO\tnode"), None);
        assert_eq!(tail_header("2026-11-22"), None);
    }
}
