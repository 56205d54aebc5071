//! Lambda's TEXT log format: the platform lines (`START`, `END`, `REPORT` with its `XRAY`
//! suffix, `INIT_START`, `INIT_REPORT`, `RESTORE_*`), `Task timed out` lines, runtime exit
//! errors and out-of-memory texts, and the Python/Node runtime prefixes in front of app logs.
//!
//! Platform lines are tokenised into `Key: value [unit]` fields rather than matched with one
//! regex: separators are tabs in raw events but runs of spaces in copied text, fields come
//! and go between releases (`Status`, `Error Type`, `Restore Duration`), and a trailing space
//! (`100 ms \t`) must not matter.

use super::{Parsed, Report, check_duration, normalize_trace_id, rejected, text_u64, truncate};

/// Platform keywords that start a line, longest first where one prefixes another.
const KEYWORDS: [&str; 10] = [
    "START",
    "END",
    "REPORT",
    "INIT_START",
    "INIT_REPORT",
    "RESTORE_START",
    "RESTORE_REPORT",
    "XRAY",
    "EXTENSION",
    "TELEMETRY",
];

/// Texts that mean the runtime ran out of memory (DataDog's list, plus Lambda's own error type).
const OOM_MARKERS: [&str; 9] = [
    "fatal error: runtime: out of memory",
    "java.lang.OutOfMemoryError",
    "JavaScript heap out of memory",
    "signal: killed",
    "MemoryError",
    "failed to allocate memory (NoMemoryError)",
    "OutOfMemoryException",
    "Runtime.OutOfMemory",
    "Process out of memory",
];

/// Node's console levels as the runtime prints them.
const NODE_LEVELS: [&str; 6] = ["INFO", "WARN", "ERROR", "DEBUG", "TRACE", "FATAL"];

/// Parses a platform line; `None` when the message does not start with a platform keyword.
pub fn parse_platform(msg: &str) -> Option<Parsed> {
    let (keyword, rest) = split_word(msg);
    let keyword = KEYWORDS.iter().find(|k| **k == keyword)?;
    // `START`/`END` are ordinary words too; only the `RequestId:` form is Lambda's.
    let fields = fields(rest);
    Some(match *keyword {
        "START" | "END" | "REPORT" if !starts_with_key(&fields, "RequestId") => return None,
        "START" => match request_id(&fields) {
            Some(request_id) => Parsed::Start {
                request_id,
                version: field(&fields, "Version").map(str::to_owned),
            },
            None => bad_line("START"),
        },
        "END" => match request_id(&fields) {
            Some(request_id) => Parsed::End { request_id },
            None => bad_line("END"),
        },
        "REPORT" => parse_report(&fields),
        "INIT_START" => Parsed::InitStart {
            initialization_type: None,
            runtime_version: field(&fields, "Runtime Version").map(str::to_owned),
        },
        "RESTORE_START" => Parsed::InitStart {
            initialization_type: Some("snap-start".to_owned()),
            runtime_version: field(&fields, "Runtime Version").map(str::to_owned),
        },
        "INIT_REPORT" => Parsed::InitReport {
            init_ms: field(&fields, "Init Duration").and_then(|v| ms(v, "Init Duration").ok()),
            phase: field(&fields, "Phase").map(str::to_owned),
            status: field(&fields, "Status").map(str::to_owned),
            error_type: field(&fields, "Error Type").map(str::to_owned),
        },
        "RESTORE_REPORT" => Parsed::Ignored("restore_report"),
        "XRAY" => {
            let sampled = field(&fields, "Sampled").and_then(parse_bool);
            match field(&fields, "TraceId").and_then(normalize_trace_id) {
                Some(trace_id) if sampled != Some(false) => Parsed::Context(super::LineContext {
                    trace_id: Some(trace_id),
                    ..Default::default()
                }),
                _ => Parsed::Ignored("platform_other"),
            }
        }
        _ => Parsed::Ignored("platform_other"),
    })
}

fn bad_line(keyword: &str) -> Parsed {
    rejected(
        "bad_platform_line",
        format!("{keyword} line without a usable RequestId"),
    )
}

/// Builds a [`Report`] from a REPORT line's fields, including the `XRAY` suffix.
fn parse_report(fields: &[Field<'_>]) -> Parsed {
    let Some(request_id) = request_id(fields) else {
        return rejected("bad_report", "REPORT without a RequestId".to_owned());
    };
    let Some(duration) = field(fields, "Duration") else {
        return rejected(
            "bad_report",
            format!("REPORT {request_id} without Duration"),
        );
    };
    let duration_ms = match ms(duration, "Duration") {
        Ok(x) => x,
        Err(bad) => return bad.into(),
    };
    let optional_ms = |key: &str| field(fields, key).and_then(|v| ms(v, key).ok());
    Parsed::Report(Report {
        request_id,
        duration_ms,
        billed_ms: optional_ms("Billed Duration"),
        memory_size_mb: field(fields, "Memory Size").and_then(text_u64),
        max_memory_mb: field(fields, "Max Memory Used").and_then(text_u64),
        init_ms: optional_ms("Init Duration"),
        restore_ms: optional_ms("Restore Duration"),
        status: field(fields, "Status").map(str::to_owned),
        error_type: field(fields, "Error Type").map(str::to_owned),
        trace_id: field(fields, "TraceId").and_then(normalize_trace_id),
        sampled: field(fields, "Sampled").and_then(parse_bool),
    })
}

fn ms(text: &str, key: &str) -> Result<f64, super::Bad> {
    let x = text.parse::<f64>().map_err(|_| super::Bad {
        reason: "bad_report",
        detail: format!("{key} is not a number: {:?}", truncate(text, 64)),
    })?;
    check_duration(x, key)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => None,
    }
}

fn request_id(fields: &[Field<'_>]) -> Option<String> {
    field(fields, "RequestId")
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
}

/// One `Key: value [unit]` group of a platform line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Field<'a> {
    /// The key's words as written, e.g. `Max Memory Used`; the X-Ray suffix's `XRAY TraceId`
    /// is stored as `TraceId`.
    key: &'a str,
    /// The key is single-space separated, so plain equality compares it.
    plain: bool,
    value: &'a str,
}

/// Splits a platform line into fields: words up to one ending in `:` form the key, the next
/// word is the value, and an optional unit word (`ms`, `MB`) is skipped.
fn fields(text: &str) -> Vec<Field<'_>> {
    let words = words(text);
    let mut out = Vec::with_capacity(12);
    let mut key_start: Option<usize> = None;
    let mut i = 0;
    while i < words.len() {
        let (start, word) = words[i];
        let is_key_end = word.len() > 1 && word.ends_with(':');
        match (is_key_end, words.get(i + 1)) {
            (true, Some(&(_, value))) => {
                let from = key_start.take().unwrap_or(start);
                let key_end = start + word.len() - 1;
                let key = text.get(from..key_end).unwrap_or("");
                let key = match key.strip_prefix("XRAY") {
                    Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
                    _ => key,
                };
                let plain =
                    !key.contains("  ") && !key.contains(|c: char| c != ' ' && c.is_whitespace());
                out.push(Field { key, plain, value });
                i += 2;
                if words
                    .get(i)
                    .is_some_and(|(_, w)| matches!(*w, "ms" | "MB" | "GB" | "s"))
                {
                    i += 1;
                }
            }
            _ => {
                key_start.get_or_insert(start);
                i += 1;
            }
        }
    }
    out
}

/// Whitespace-separated words with their byte offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::with_capacity(24);
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

impl Field<'_> {
    /// Compares with a wanted key word by word, so copied text's `Billed  Duration` matches.
    fn key_is(&self, want: &str) -> bool {
        if self.plain {
            self.key == want
        } else {
            self.key.split_whitespace().eq(want.split(' '))
        }
    }
}

fn field<'a>(fields: &[Field<'a>], key: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.key_is(key)).map(|f| f.value)
}

fn starts_with_key(fields: &[Field<'_>], key: &str) -> bool {
    fields.first().is_some_and(|f| f.key_is(key))
}

/// First whitespace-separated word and the rest after it.
fn split_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    }
}

/// Parses `<ts> <request id> Task timed out after 3.00 seconds`; `None` when the line is not one.
pub fn parse_timeout(msg: &str) -> Option<Parsed> {
    const PHRASE: &str = "Task timed out after";
    let at = msg.find(PHRASE)?;
    let mut head = msg[..at].split_whitespace();
    let request_id = match (head.next(), head.next(), head.next()) {
        (None, _, _) => None,
        (Some(ts), None, _) if is_timestamp(ts) => None,
        (Some(ts), Some(id), None) if is_timestamp(ts) && is_request_id(id) => Some(id.to_owned()),
        // An application sentence that merely contains the phrase.
        _ => return None,
    };
    let mut tail = msg[at + PHRASE.len()..].split_whitespace();
    let (number, unit) = (tail.next()?, tail.next()?);
    if unit != "seconds" {
        return None;
    }
    Some(match number.parse::<f64>() {
        Ok(x) => match check_duration(x, "timeout") {
            Ok(after_s) => Parsed::Timeout {
                request_id,
                after_s,
            },
            Err(bad) => bad.into(),
        },
        Err(_) => rejected(
            "bad_value",
            format!("timeout is not a number: {:?}", truncate(number, 64)),
        ),
    })
}

/// Parses `RequestId: <id> Error: Runtime exited with error: ...` (and Node's
/// `RequestId: <id> Process exited before completing request`); `None` otherwise.
pub fn parse_runtime_error(msg: &str) -> Option<Parsed> {
    let rest = msg.strip_prefix("RequestId:")?;
    let mut words = rest.split_whitespace();
    let id = words.next()?;
    words.next()?;
    if !is_request_id(id) {
        return None;
    }
    Some(Parsed::RuntimeError {
        request_id: Some(id.to_owned()),
        oom: is_oom(rest),
    })
}

/// True when the text carries one of the known out-of-memory messages.
pub fn is_oom(text: &str) -> bool {
    OOM_MARKERS.iter().any(|m| text.contains(m))
}

/// The pieces of a runtime-prefixed application line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimePrefix<'a> {
    /// `None` when empty (Python during INIT) or `undefined` (Node during INIT).
    pub request_id: Option<&'a str>,
    pub level: &'a str,
    /// Everything after the prefix, untrimmed.
    pub message: &'a str,
}

/// Recognises Python's `[LEVEL]\t<ts>\t<request id>\t<msg>` and Node's
/// `<ts>\t<request id>\t<LEVEL>\t<msg>`; `None` when the line has neither prefix.
pub fn split_runtime_prefix(msg: &str) -> Option<RuntimePrefix<'_>> {
    if msg.starts_with('[') {
        python_prefix(msg)
    } else {
        node_prefix(msg)
    }
}

fn python_prefix(msg: &str) -> Option<RuntimePrefix<'_>> {
    // `[CRITICAL]` is the longest Python level name.
    let close = msg.bytes().take(13).position(|b| b == b']')?;
    let level = &msg[1..close];
    if level.is_empty() || !level.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let rest = skip_separator(&msg[close + 1..])?;
    let (ts, rest) = take_field(rest);
    if !is_timestamp(ts) {
        return None;
    }
    let rest = skip_separator(rest).unwrap_or("");
    // With tabs an empty request id shows as `\t\t`; in copied text it simply is not there.
    if let Some(message) = rest.strip_prefix('\t') {
        return Some(RuntimePrefix {
            request_id: None,
            level,
            message,
        });
    }
    let (id, after_id) = take_field(rest);
    if is_request_id(id) || id == "undefined" {
        let request_id = (id != "undefined").then_some(id);
        let message = skip_separator(after_id).unwrap_or("");
        return Some(RuntimePrefix {
            request_id,
            level,
            message,
        });
    }
    Some(RuntimePrefix {
        request_id: None,
        level,
        message: rest,
    })
}

fn node_prefix(msg: &str) -> Option<RuntimePrefix<'_>> {
    let (ts, rest) = take_field(msg);
    if !is_timestamp(ts) {
        return None;
    }
    let (id, rest) = take_field(skip_separator(rest)?);
    if !(is_request_id(id) || id == "undefined") {
        return None;
    }
    let (level, rest) = take_field(skip_separator(rest)?);
    if !NODE_LEVELS.contains(&level) {
        return None;
    }
    let request_id = (id != "undefined").then_some(id);
    Some(RuntimePrefix {
        request_id,
        level,
        message: skip_separator(rest).unwrap_or(""),
    })
}

/// Text up to the next space or tab, and the rest starting at that separator.
fn take_field(text: &str) -> (&str, &str) {
    match text.find([' ', '\t']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    }
}

/// Consumes one field separator: a single tab, or a run of spaces (copied text) optionally
/// followed by one tab. A single tab keeps `\t\t` meaning "empty field".
fn skip_separator(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix('\t') {
        return Some(rest);
    }
    let rest = text.trim_start_matches(' ');
    if rest.len() == text.len() {
        return None;
    }
    Some(rest.strip_prefix('\t').unwrap_or(rest))
}

/// `2020-01-31T22:12:58.534Z`-like: starts with `YYYY-`.
fn is_timestamp(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// A Lambda request id: a UUID in practice, though AWS's own docs show ones like
/// `1c8df7d3-xmpl-46da-...`, so any alphanumeric-and-dash word of plausible length.
pub(crate) fn is_request_id(word: &str) -> bool {
    (8..=64).contains(&word.len())
        && word.contains('-')
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests;
