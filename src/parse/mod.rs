//! Log-message parsing: turns one CloudWatch Logs event message into a [`Parsed`] value.
//!
//! This module owns the public parse types, the classifier [`parse_message`] and the helpers
//! every format shares (lenient JSON, number checks, trace-id normalisation). Each format
//! lives in its own file; [`stream`] correlates a log stream's messages into timing events.
//! Everything here is pure: no I/O, no clock, no global state, and no panics on any input.
//!
//! Classification order, cheapest test first:
//! 1. over [`MAX_MESSAGE_BYTES`] → rejected `too_large`;
//! 2. starts with `{` → JSON: platform record, EMF, Powertools, JSON-mode app record, seed;
//! 3. starts with a platform keyword (`START`, `REPORT`, ...) → [`lambda_text`];
//! 4. `Task timed out`, `RequestId: ... Error:`, a runtime prefix (`[INFO]\t...`), OOM text;
//! 5. anything else → ignored `not_timing`.

pub mod emf;
pub mod lambda_json;
pub mod lambda_text;
pub mod powertools;
pub mod seed;
pub mod stream;
pub mod xray;

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::model::Source;

/// Longest message we parse; longer ones are rejected as `too_large` (Lambda truncates at 256 KB).
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// How deep a JSON-mode `message` string may nest another JSON document we still open.
/// Lambda double-encodes once; anything deeper is not a shape we know.
const MAX_NESTING: u8 = 2;

/// What one CloudWatch event message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// `START RequestId: ... Version: ...` or JSON `platform.start`.
    Start {
        request_id: String,
        version: Option<String>,
    },
    /// `END RequestId: ...` or JSON `platform.runtimeDone`.
    End { request_id: String },
    /// `REPORT ...` (with its optional `XRAY` suffix) or JSON `platform.report`.
    Report(Report),
    /// `INIT_START` / `RESTORE_START` or JSON `platform.initStart` / `platform.restoreStart`:
    /// a new execution environment is initialising, so the next invocation is probably cold.
    InitStart {
        /// `on-demand`, `provisioned-concurrency`, `snap-start`, ... when the record says so.
        initialization_type: Option<String>,
        runtime_version: Option<String>,
    },
    /// `INIT_REPORT ...` or JSON `platform.initReport`.
    InitReport {
        init_ms: Option<f64>,
        phase: Option<String>,
        status: Option<String>,
        error_type: Option<String>,
    },
    /// One or more application timings (seed TIMING / END total_function_duration, EMF time
    /// metrics, seed JSON inside a runtime prefix, inside JSON-mode `message` (string or
    /// object), or inside Powertools lines).
    Timings {
        ctx: LineContext,
        timings: Vec<AppTiming>,
    },
    /// A line with invocation context but no timing (Powertools log line, seed START line,
    /// runtime-prefixed app log with a request id, a lone `XRAY TraceId:` line).
    Context(LineContext),
    /// `<ts> <request id> Task timed out after 3.00 seconds`.
    Timeout {
        request_id: Option<String>,
        after_s: f64,
    },
    /// `RequestId: ... Error: Runtime exited ...`, or a line carrying a known out-of-memory text.
    RuntimeError {
        request_id: Option<String>,
        oom: bool,
    },
    /// Nothing timing-related (ordinary application log); reason is a short bounded code.
    Ignored(&'static str),
    /// Looked like timing but broken. reason: bounded code (`invalid_json`, `bad_value`,
    /// `negative_value`, `non_finite_value`, `too_large`, `bad_report`, ...).
    Rejected {
        reason: &'static str,
        detail: String,
    },
}

/// Invocation facts a single line carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineContext {
    pub request_id: Option<String>,
    /// Normalised to `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
    pub trace_id: Option<String>,
    /// The invoked ARN (Powertools `function_arn`); its qualifier is the alias.
    pub function_arn: Option<String>,
    pub cold_start: Option<bool>,
    /// The seed's `function_name`: an application abbreviation such as `GDSH`.
    pub app_function: Option<String>,
    /// The seed's `event_type: START` line.
    pub is_start: bool,
    /// Powertools `function_memory_size` (seen both as `"256"` and `256`).
    pub memory_size_mb: Option<u64>,
}

/// One application-reported duration found in a line.
#[derive(Debug, Clone, PartialEq)]
pub struct AppTiming {
    pub operation: String,
    /// Finite and non-negative.
    pub seconds: f64,
    /// [`Source::Logs`] or [`Source::Emf`].
    pub source: Source,
    /// Position within the line, for idempotency keys.
    pub index: u32,
}

/// A Lambda platform report. Only the request id and duration are required.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub request_id: String,
    pub duration_ms: f64,
    pub billed_ms: Option<f64>,
    pub memory_size_mb: Option<u64>,
    pub max_memory_mb: Option<u64>,
    /// Present ⇒ cold start.
    pub init_ms: Option<f64>,
    /// SnapStart restore; present ⇒ cold start.
    pub restore_ms: Option<f64>,
    /// `success`, `error`, `failure`, `timeout` as written.
    pub status: Option<String>,
    pub error_type: Option<String>,
    pub trace_id: Option<String>,
    /// `Sampled: false` means no trace exists for `trace_id`.
    pub sampled: Option<bool>,
}

impl LineContext {
    /// Fills every unset field from `other`; fields already set win.
    pub fn fill_from(&mut self, other: &LineContext) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        fill(&mut self.request_id, &other.request_id);
        fill(&mut self.trace_id, &other.trace_id);
        fill(&mut self.function_arn, &other.function_arn);
        fill(&mut self.cold_start, &other.cold_start);
        fill(&mut self.app_function, &other.app_function);
        fill(&mut self.memory_size_mb, &other.memory_size_mb);
        self.is_start |= other.is_start;
    }

    fn has_invocation_facts(&self) -> bool {
        self.request_id.is_some()
            || self.trace_id.is_some()
            || self.function_arn.is_some()
            || self.cold_start.is_some()
    }
}

/// Classifies and parses one CloudWatch event message.
pub fn parse_message(message: &str) -> Parsed {
    if message.len() > MAX_MESSAGE_BYTES {
        return rejected(
            "too_large",
            format!(
                "message is {} bytes; limit is {MAX_MESSAGE_BYTES}",
                message.len()
            ),
        );
    }
    let msg = message.trim();
    let Some(&first) = msg.as_bytes().first() else {
        return Parsed::Ignored("empty");
    };
    if first == b'{' {
        return parse_json_line(msg, &LineContext::default(), 0);
    }
    if let Some(parsed) = lambda_text::parse_platform(msg) {
        return parsed;
    }
    if let Some(parsed) = lambda_text::parse_timeout(msg) {
        return parsed;
    }
    if let Some(parsed) = lambda_text::parse_runtime_error(msg) {
        return parsed;
    }
    if let Some(prefix) = lambda_text::split_runtime_prefix(msg) {
        return parse_prefixed(prefix);
    }
    if lambda_text::is_oom(msg) {
        return Parsed::RuntimeError {
            request_id: None,
            oom: true,
        };
    }
    if msg == "Runtime.ExitError" {
        // The error type printed under `RequestId: ... Error: Runtime exited ...`; that
        // line already counted the failure.
        return Parsed::Ignored("runtime_error_detail");
    }
    Parsed::Ignored("not_timing")
}

/// The part of a runtime-prefixed line after `[LEVEL]\t<ts>\t<request id>\t`.
fn parse_prefixed(prefix: lambda_text::RuntimePrefix<'_>) -> Parsed {
    let outer = LineContext {
        request_id: prefix.request_id.map(str::to_owned),
        ..LineContext::default()
    };
    let body = prefix.message.trim();
    if body.starts_with('{') {
        return parse_json_line(body, &outer, 0);
    }
    if let Some(Parsed::Timeout {
        request_id,
        after_s,
    }) = lambda_text::parse_timeout(body)
    {
        return Parsed::Timeout {
            request_id: request_id.or(outer.request_id),
            after_s,
        };
    }
    if lambda_text::is_oom(body) {
        return Parsed::RuntimeError {
            request_id: outer.request_id,
            oom: true,
        };
    }
    if outer.request_id.is_some() {
        Parsed::Context(outer)
    } else {
        Parsed::Ignored("not_timing")
    }
}

/// Substrings without which a JSON line can only end up `no_timing` (or as a bare runtime
/// prefix context). One literal-set scan is much cheaper than building a `Value` for every
/// ordinary JSON application log. `None` only if the pattern failed to compile; then every
/// line is parsed.
static JSON_MARKERS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"event_type|value_sec|total_function_duration|_aws|platform\.",
        r"|cold_start|function_arn|function_request_id|xray_trace_id|lambda_request_id",
        r"|function_memory_size|Task timed out|MemoryError|OutOfMemory",
    ))
    .ok()
});

fn may_hold_anything(text: &str) -> bool {
    JSON_MARKERS.as_ref().is_none_or(|re| re.is_match(text))
}

/// Parses a message (or a prefixed/embedded part of one) that starts with `{`.
fn parse_json_line(text: &str, outer: &LineContext, depth: u8) -> Parsed {
    if !may_hold_anything(text) {
        return without_timing(outer.clone(), false, outer, depth);
    }
    match parse_json_lenient(text) {
        Ok(Value::Object(obj)) => classify_object(&obj, outer, depth),
        Err(err) if looks_like_timing(text) => rejected("invalid_json", err.to_string()),
        Ok(_) | Err(_) => without_timing(outer.clone(), false, outer, depth),
    }
}

/// Substrings that make an unparseable `{...}` worth a rejection instead of a silent skip.
/// Kept narrower than [`JSON_MARKERS`]: a broken Powertools line is not a broken timing.
fn looks_like_timing(text: &str) -> bool {
    [
        "event_type",
        "_aws",
        "value_sec",
        "total_function_duration",
        "platform.",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Routes one JSON object to the format it belongs to.
fn classify_object(obj: &Map<String, Value>, outer: &LineContext, depth: u8) -> Parsed {
    if let Some(Value::String(kind)) = obj.get("type")
        && kind.starts_with("platform.")
    {
        return lambda_json::parse_platform(kind, obj);
    }

    let mut ctx = powertools::context(obj);
    if ctx.request_id.is_none() {
        ctx.request_id = lambda_json::record_request_id(obj);
    }
    ctx.fill_from(outer);

    if obj.contains_key("_aws") {
        return emf::parse(obj, ctx);
    }

    let is_powertools = powertools::is_powertools(obj);
    let mut timings = Vec::new();
    match seed::collect(obj, &mut timings) {
        Err(bad) => return bad.into(),
        Ok(found) => {
            ctx.is_start |= found.is_start;
            if found.app_function.is_some() {
                ctx.app_function = found.app_function;
            }
        }
    }

    if timings.is_empty() && !ctx.is_start {
        match obj.get("message") {
            Some(Value::Object(inner)) => match seed::collect(inner, &mut timings) {
                Err(bad) => return bad.into(),
                Ok(found) => {
                    ctx.is_start |= found.is_start;
                    if found.app_function.is_some() {
                        ctx.app_function = found.app_function;
                    }
                }
            },
            Some(Value::String(text)) => {
                let text = text.trim();
                if text.starts_with('{') && depth < MAX_NESTING {
                    let inner = parse_json_line(text, &ctx, depth + 1);
                    return match inner {
                        // The outer line decides what a message without timing means.
                        Parsed::Ignored(_) => without_timing(ctx, is_powertools, outer, depth),
                        other => other,
                    };
                }
                if let Some(Parsed::Timeout {
                    request_id,
                    after_s,
                }) = lambda_text::parse_timeout(text)
                {
                    return Parsed::Timeout {
                        request_id: request_id.or(ctx.request_id),
                        after_s,
                    };
                }
            }
            _ => {}
        }
    }

    if !timings.is_empty() {
        return Parsed::Timings { ctx, timings };
    }
    if lambda_json::is_oom_record(obj) {
        return Parsed::RuntimeError {
            request_id: ctx.request_id,
            oom: true,
        };
    }
    without_timing(ctx, is_powertools, outer, depth)
}

/// The result for a JSON object that holds no timing.
fn without_timing(ctx: LineContext, is_powertools: bool, outer: &LineContext, depth: u8) -> Parsed {
    if ctx.is_start || (is_powertools && ctx.has_invocation_facts()) {
        return Parsed::Context(ctx);
    }
    // A runtime prefix carried a request id: the line is an app log of that invocation.
    if outer.request_id.is_some() && depth == 0 {
        return Parsed::Context(ctx);
    }
    Parsed::Ignored("no_timing")
}

/// A value that looked like timing data but is unusable; becomes [`Parsed::Rejected`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bad {
    pub reason: &'static str,
    pub detail: String,
}

impl From<Bad> for Parsed {
    fn from(bad: Bad) -> Parsed {
        Parsed::Rejected {
            reason: bad.reason,
            detail: bad.detail,
        }
    }
}

pub(crate) fn rejected(reason: &'static str, detail: String) -> Parsed {
    Parsed::Rejected { reason, detail }
}

/// Parses JSON, accepting the bare `NaN`, `Infinity` and `-Infinity` tokens Python's
/// `json.dumps` writes. They become strings, which [`number_value`] then rejects as
/// `non_finite_value` instead of the whole line failing as `invalid_json`.
pub(crate) fn parse_json_lenient(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(err) => match quote_non_finite(text) {
            Some(fixed) => serde_json::from_str(&fixed),
            None => Err(err),
        },
    }
}

/// Rewrites bare non-finite tokens outside strings as JSON strings; `None` when there are none.
fn quote_non_finite(text: &str) -> Option<String> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied_to = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        // Tokens are ASCII and start at an ASCII byte, so every slice boundary below is a
        // char boundary.
        let rest = &bytes[i..];
        if let Some(token) = TOKENS.iter().find(|t| rest.starts_with(t.as_bytes())) {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len() + 8));
            buf.push_str(&text[copied_to..i]);
            buf.push('"');
            buf.push_str(token);
            buf.push('"');
            i += token.len();
            copied_to = i;
            continue;
        }
        i += 1;
    }
    let mut buf = out?;
    buf.push_str(&text[copied_to..]);
    Some(buf)
}

/// Reads a duration-like value: a number or a numeric string, finite and non-negative.
pub(crate) fn number_value(value: &Value, field: &str) -> Result<f64, Bad> {
    let x = match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| Bad {
            reason: "bad_value",
            detail: format!("{field} is not representable as f64"),
        })?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| Bad {
            reason: "bad_value",
            detail: format!("{field} is not a number: {:?}", truncate(s, 64)),
        })?,
        Value::Null => {
            return Err(Bad {
                reason: "bad_value",
                detail: format!("{field} is null"),
            });
        }
        other => {
            return Err(Bad {
                reason: "bad_value",
                detail: format!("{field} has type {}", json_type(other)),
            });
        }
    };
    check_duration(x, field)
}

/// Rejects NaN, infinities and negatives; folds `-0.0` into `0.0`.
pub(crate) fn check_duration(x: f64, field: &str) -> Result<f64, Bad> {
    if !x.is_finite() {
        return Err(Bad {
            reason: "non_finite_value",
            detail: format!("{field} is {x}"),
        });
    }
    if x < 0.0 {
        return Err(Bad {
            reason: "negative_value",
            detail: format!("{field} is {x}"),
        });
    }
    Ok(x + 0.0)
}

/// A memory size in MB, given as `256`, `256.0` or `"256"`.
pub(crate) fn json_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(f64_to_u64)),
        Value::String(s) => text_u64(s),
        _ => None,
    }
}

pub(crate) fn text_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().and_then(f64_to_u64))
}

fn f64_to_u64(x: f64) -> Option<u64> {
    // 2^53: beyond it f64 no longer holds every integer, and no memory size is that big.
    (x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9_007_199_254_740_992.0)
        .then_some(x as u64)
}

/// A non-empty, trimmed, bounded string field.
pub(crate) fn json_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) => {
            let s = s.trim();
            (!s.is_empty() && s.len() <= 512).then_some(s)
        }
        _ => None,
    }
}

/// A request id as found in app output: empty and Node's `undefined` mean "none".
pub(crate) fn clean_request_id(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "undefined" && s.len() <= 128).then(|| s.to_owned())
}

/// Normalises a trace id to the X-Ray form `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
///
/// Accepts the X-Ray form, a `Root=...;Parent=...;Sampled=...` header (fields in any order,
/// extra fields allowed) and a 32-hex W3C/OTel id. Anything else is `None`.
pub fn normalize_trace_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let id = if raw.contains('=') {
        raw.split(';').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            k.trim().eq_ignore_ascii_case("root").then_some(v.trim())
        })?
    } else {
        raw
    };
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut parts = id.split('-');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("1"), Some(epoch), Some(unique), None)
            if epoch.len() == 8 && unique.len() == 24 && is_hex(epoch) && is_hex(unique) =>
        {
            Some(format!(
                "1-{}-{}",
                epoch.to_ascii_lowercase(),
                unique.to_ascii_lowercase()
            ))
        }
        (Some(hex), None, None, None) if hex.len() == 32 && is_hex(hex) => {
            let hex = hex.to_ascii_lowercase();
            Some(format!("1-{}-{}", &hex[..8], &hex[8..]))
        }
        _ => None,
    }
}

/// Reads `Sampled=1|0` from an `X-Amzn-Trace-Id` header value.
pub(crate) fn header_sampled(header: &str) -> Option<bool> {
    header.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("sampled") {
            return None;
        }
        match v.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        }
    })
}

/// Caps text for a rejection detail without splitting a UTF-8 character.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
