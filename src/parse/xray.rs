//! X-Ray segment documents (`BatchGetTraces` → `Segments[].Document`) turned into spans and
//! timing events.
//!
//! Owns: parsing every document of one trace (AWS::Lambda service segments,
//! AWS::Lambda::Function segments, Step Functions state machine segments, any other
//! segment, nested subsegments and standalone `"type":"subsegment"` documents); the checks
//! that turn a bad document into a [`Rejection`] while the rest of the trace is kept; and
//! the propagation of the owning Lambda function, alias/version qualifier, RequestId and
//! cold start along `parent_id` links, across documents. [`trace_events`] turns the spans
//! into [`TimingEvent`]s; `crate::critical_path` reads the same spans.
//!
//! Pure: strings in, values out; no I/O, no clock. Shapes: `shared/reference/formats.md`
//! sections 5 and 6; fixtures in `tests/fixtures/xray/`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::lambda::{function_ref, is_version, lambda_arn};
use crate::model::{Rejection, Source, TimingEvent};

/// X-Ray's cap on one segment document; anything larger is rejected as `too_large`.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Deepest subsegment nesting kept inside one document (the segment itself is depth 0).
/// serde_json stops at 128 JSON levels, i.e. about 63 subsegment levels, so a limit well
/// below that keeps `too_deep` reachable and our own recursion short.
pub const MAX_DEPTH: usize = 32;
/// Earliest and latest accepted times (2000-01-01 and 2100-01-01, epoch seconds).
const MIN_EPOCH_S: f64 = 946_684_800.0;
const MAX_EPOCH_S: f64 = 4_102_444_800.0;
/// Longest accepted span: one day.
const MAX_DURATION_S: f64 = 86_400.0;
/// Attribute values and rejection details are cut to this many characters.
const MAX_VALUE_CHARS: usize = 256;
/// Ids longer than this are not X-Ray ids (16 hex) and are refused as `bad_value`.
const MAX_ID_CHARS: usize = 64;

/// Which annotation/metadata keys may be kept as attributes (empty by default: they can
/// hold personal data).
///
/// Annotations match on their key. Metadata matches on `namespace.key` or on a bare `key`
/// (any namespace). Kept values become attributes `annotation.<key>` and
/// `metadata.<namespace>.<key>`; non-string metadata is kept as compact JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Annotation keys to keep.
    pub annotations: Vec<String>,
    /// Metadata keys to keep, `namespace.key` or `key`.
    pub metadata: Vec<String>,
}

/// What kind of document or entity a span came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// `origin: AWS::Lambda`: the Lambda service's view of one invoke (holds the RequestId
    /// and the invoked, possibly qualified, ARN).
    Service,
    /// `origin: AWS::Lambda::Function`: the function's own segment (Initialization,
    /// Invocation, Overhead).
    Function,
    /// `origin: AWS::StepFunctions::StateMachine`: one execution, a subsegment per state.
    StateMachine,
    /// Any other top-level segment (API Gateway stage, an instrumented service...).
    OtherSegment,
    /// A nested subsegment, or a standalone `"type":"subsegment"` document.
    Subsegment,
}

/// All that could be read from one trace's documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTrace {
    /// The X-Ray trace id, as given to [`parse_trace`].
    pub trace_id: String,
    /// Every accepted segment and subsegment, documents in input order, each document
    /// depth-first; span ids are unique (later duplicates are dropped).
    pub spans: Vec<Span>,
    /// Documents or subsegments that could not be used (source `xray`, origin
    /// `<trace id>|<segment id>`).
    pub rejections: Vec<Rejection>,
    /// At least one span is still open (`in_progress: true`): re-fetch the trace later.
    pub in_progress: bool,
}

/// One segment or subsegment, with what it inherits from the Lambda segments that own it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The segment or subsegment id (16 hex digits in X-Ray's own documents).
    pub id: String,
    /// The parent's id (the enclosing entity for nested subsegments, `parent_id` otherwise).
    pub parent_id: Option<String>,
    /// The top-level document this span came from (its `BatchGetTraces` segment id).
    pub segment_id: String,
    /// The segment or subsegment name (function, state, `Bedrock.InvokeModel`, `dynamodb`).
    pub name: String,
    pub kind: SpanKind,
    /// `origin` of a top-level segment (`AWS::Lambda`, `AWS::ApiGateway::Stage`, ...).
    pub origin: Option<String>,
    /// `aws` (SDK call), `remote`, or `local` (the Python SDK's custom subsegments).
    pub namespace: Option<String>,
    /// `aws.operation` (`InvokeModel`, `PutItem`, `Invoke`...).
    pub aws_operation: Option<String>,
    /// Start, epoch seconds.
    pub start_s: f64,
    /// End, epoch seconds; `None` while the span is in progress.
    pub end_s: Option<f64>,
    /// The Lambda function that owns this span: the enclosing Function/Service segment
    /// (from its ARN, else its name). A Step Functions `Lambda` Invoke subsegment, which no
    /// function owns, names its target (`aws.function_name` without qualifier).
    pub function: Option<String>,
    /// Alias or version qualifier (`Dev`, `PROD`, `12`, `$LATEST`) from the invoked ARN or
    /// `aws.function_name`, propagated to the spans the Lambda segments own.
    pub qualifier: Option<String>,
    /// The Lambda RequestId (`aws.request_id` of the AWS::Lambda segment), propagated to
    /// the function segment's spans. An SDK subsegment's own `aws.request_id` (the called
    /// service's id) is never used here.
    pub request_id: Option<String>,
    /// `error`: a 4xx, or a client-side error.
    pub error: bool,
    /// `fault`: a 5xx, or an exception the SDK recorded.
    pub fault: bool,
    /// `throttle`: a 429.
    pub throttle: bool,
    /// Type of the first exception in `cause` (an exception-id `cause` is looked up in the
    /// trace).
    pub cause_type: Option<String>,
    /// The owning function segment has an `Initialization` subsegment.
    pub cold_start: bool,
    /// `aws.operation`, `namespace` and the allow-listed annotations/metadata only.
    pub attributes: Vec<(String, String)>,
}

impl Span {
    /// End − start rounded to microseconds; `None` while in progress.
    pub fn duration_s(&self) -> Option<f64> {
        self.end_s.map(|end| round_us(end - self.start_s))
    }
}

impl ParsedTrace {
    /// For each span, the index of its parent span in `spans` (`None` if the parent is
    /// not in the trace).
    pub fn parent_indices(&self) -> Vec<Option<usize>> {
        let index: HashMap<&str, usize> = self
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        self.spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parent_id
                    .as_deref()
                    .and_then(|p| index.get(p).copied())
                    .filter(|&p| p != i)
            })
            .collect()
    }

    /// For each span, who owns it for attribution: its Lambda `function`, else the name of
    /// the nearest enclosing top-level segment (a state machine's states get the state
    /// machine's name). `None` for a standalone subsegment whose parents are not (yet) in
    /// the trace.
    pub fn owner_names(&self) -> Vec<Option<&str>> {
        let parents = self.parent_indices();
        let n = self.spans.len();
        // Nearest top-level segment at or above each span, resolved along parent links.
        let mut top: Vec<Option<Option<usize>>> = vec![None; n];
        for i in 0..n {
            let mut chain = Vec::new();
            let mut cur = Some(i);
            let found = loop {
                match cur {
                    None => break None,
                    Some(c) => {
                        if let Some(known) = top[c] {
                            break known;
                        }
                        if self.spans[c].kind != SpanKind::Subsegment {
                            break Some(c);
                        }
                        if chain.len() > n {
                            break None; // a parent_id cycle
                        }
                        chain.push(c);
                        cur = parents[c];
                    }
                }
            };
            for c in chain {
                top[c] = Some(found);
            }
            if self.spans[i].kind != SpanKind::Subsegment {
                top[i] = Some(Some(i));
            }
        }
        self.spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.function
                    .as_deref()
                    .or_else(|| top[i].flatten().map(|t| self.spans[t].name.as_str()))
            })
            .collect()
    }
}

/// Parses every document of one trace. `segments` are `BatchGetTraces` `(Id, Document)`
/// pairs. Never panics; every unusable document or subsegment becomes one rejection and
/// the rest of the trace is still used.
pub fn parse_trace(
    trace_id: &str,
    segments: &[(String, String)],
    allow: &AllowList,
) -> ParsedTrace {
    let mut b = Builder {
        trace_id,
        allow,
        fallback_ms: trace_id_epoch_ms(trace_id).unwrap_or(0),
        spans: Vec::new(),
        own: Vec::new(),
        rejections: Vec::new(),
        seen: HashMap::new(),
        exception_types: HashMap::new(),
        cause_refs: Vec::new(),
    };
    for (segment_id, document) in segments {
        b.document(segment_id, document);
    }
    b.finish()
}

/// Timing events for a trace: each complete subsegment → operation = its name; the
/// Function segment → `Lambda.Function`; other segments give none. `env` is left empty
/// (the caller attributes it from the returned qualifier hint); `idem_key` is
/// `"{trace_id}|{span id}"`; `time_ms` is the span's start; `error` = error || fault;
/// `function` is the owning Lambda function, or for spans no function owns the enclosing
/// segment's name (a state machine's states → the state machine). In-progress spans and
/// standalone subsegments whose owner is not in the trace are skipped.
pub fn trace_events(trace: &ParsedTrace) -> Vec<(TimingEvent, Option<String>)> {
    let owners = trace.owner_names();
    let mut out = Vec::new();
    for (span, owner) in trace.spans.iter().zip(owners) {
        let operation = match span.kind {
            SpanKind::Subsegment => span.name.clone(),
            SpanKind::Function => "Lambda.Function".to_string(),
            SpanKind::Service | SpanKind::StateMachine | SpanKind::OtherSegment => continue,
        };
        let (Some(duration_s), Some(function)) = (span.duration_s(), owner) else {
            continue;
        };
        let function_version = span.qualifier.clone().filter(|q| is_version(q));
        out.push((
            TimingEvent {
                time_ms: (span.start_s * 1000.0).floor() as i64,
                env: String::new(),
                function: function.to_string(),
                operation,
                source: Source::Xray,
                duration_s,
                request_id: span.request_id.clone(),
                trace_id: Some(trace.trace_id.clone()),
                function_version,
                cold_start: span.cold_start,
                error: span.error || span.fault,
                idem_key: format!("{}|{}", trace.trace_id, span.id),
                attributes: span.attributes.clone(),
            },
            span.qualifier.clone(),
        ));
    }
    out
}

/// Rounds seconds to whole microseconds (X-Ray times carry about that much precision).
pub fn round_us(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

/// Epoch ms encoded in an X-Ray trace id `1-<8 hex epoch seconds>-<24 hex>`.
fn trace_id_epoch_ms(trace_id: &str) -> Option<i64> {
    let mut parts = trace_id.split('-');
    let (_, hex) = (parts.next()?, parts.next()?);
    if hex.len() != 8 {
        return None;
    }
    i64::from_str_radix(hex, 16).ok().map(|s| s * 1000)
}

/// Cuts a string to at most `max` characters.
fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((pos, _)) => format!("{}…", &s[..pos]),
        None => s.to_string(),
    }
}

/// What a span states about itself, before inheritance.
#[derive(Default)]
struct Own {
    /// Function and qualifier from this segment's ARN or name (Service/Function only).
    function: Option<(String, Option<String>)>,
    /// Lambda RequestId stated by this segment.
    request_id: Option<String>,
    /// The target of a caller-side Lambda Invoke subsegment (`aws.function_name`).
    invoke_target: Option<(String, Option<String>)>,
    /// The `aws.request_id` of such an Invoke subsegment (the callee's RequestId).
    invoke_request_id: Option<String>,
    /// A Function segment with an `Initialization` subsegment.
    has_initialization: bool,
}

/// The checked core fields of one entity.
struct Core {
    id: String,
    name: String,
    start_s: f64,
    end_s: Option<f64>,
}

struct Builder<'a> {
    trace_id: &'a str,
    allow: &'a AllowList,
    fallback_ms: i64,
    spans: Vec<Span>,
    own: Vec<Own>,
    rejections: Vec<Rejection>,
    /// Span id → index, first occurrence wins.
    seen: HashMap<String, usize>,
    /// Exception id → type, for `cause` given as an exception id.
    exception_types: HashMap<String, String>,
    /// (span index, exception id) to look up once every document is read.
    cause_refs: Vec<(usize, String)>,
}

impl Builder<'_> {
    fn reject(
        &mut self,
        segment_id: &str,
        time_ms: Option<i64>,
        reason: &'static str,
        detail: String,
        raw: String,
    ) {
        self.rejections.push(Rejection {
            time_ms: time_ms.unwrap_or(self.fallback_ms),
            source: Source::Xray.as_str().to_string(),
            origin: format!("{}|{}", self.trace_id, segment_id),
            reason,
            detail: cap(&detail, MAX_VALUE_CHARS),
            raw,
        });
    }

    fn document(&mut self, segment_id: &str, document: &str) {
        if document.len() > MAX_DOCUMENT_BYTES {
            let detail = format!(
                "document is {} bytes, over the {} byte limit",
                document.len(),
                MAX_DOCUMENT_BYTES
            );
            self.reject(segment_id, None, "too_large", detail, document.to_string());
            return;
        }
        let value: Value = match serde_json::from_str(document) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let reason = if msg.contains("recursion limit") {
                    "too_deep"
                } else {
                    "invalid_json"
                };
                self.reject(segment_id, None, reason, msg, document.to_string());
                return;
            }
        };
        let Value::Object(obj) = &value else {
            self.reject(
                segment_id,
                None,
                "bad_value",
                "document is not a JSON object".into(),
                document.to_string(),
            );
            return;
        };
        let standalone = obj.get("type").and_then(Value::as_str) == Some("subsegment");
        let kind = if standalone {
            SpanKind::Subsegment
        } else {
            match obj.get("origin").and_then(Value::as_str) {
                Some("AWS::Lambda") => SpanKind::Service,
                Some("AWS::Lambda::Function") => SpanKind::Function,
                Some("AWS::StepFunctions::StateMachine") => SpanKind::StateMachine,
                _ => SpanKind::OtherSegment,
            }
        };
        let parent_id = obj
            .get("parent_id")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        self.entity(
            obj,
            kind,
            parent_id.map(str::to_string),
            segment_id,
            0,
            Some(document),
        );
    }

    /// Checks one entity, adds its span and walks its subsegments. `raw_doc` is the
    /// document string for a top-level entity (kept as the rejection's raw input).
    fn entity(
        &mut self,
        obj: &Map<String, Value>,
        kind: SpanKind,
        parent_id: Option<String>,
        segment_id: &str,
        depth: usize,
        raw_doc: Option<&str>,
    ) {
        let raw = || raw_doc.map_or_else(|| Value::Object(obj.clone()).to_string(), str::to_string);
        let what = || {
            if depth == 0 {
                String::new()
            } else {
                let id = obj.get("id").and_then(Value::as_str).unwrap_or("?");
                let name = obj.get("name").and_then(Value::as_str).unwrap_or("?");
                format!(
                    "subsegment {} '{}' at depth {}: ",
                    cap(id, MAX_ID_CHARS),
                    cap(name, 64),
                    depth
                )
            }
        };
        if depth > MAX_DEPTH {
            let detail = format!(
                "{}nested deeper than {} subsegments; subtree dropped",
                what(),
                MAX_DEPTH
            );
            self.reject(segment_id, None, "too_deep", detail, raw());
            return;
        }
        let core = match check_core(obj) {
            Ok(core) => core,
            Err((reason, detail, time_ms)) => {
                let detail = format!("{}{}", what(), detail);
                self.reject(segment_id, time_ms, reason, detail, raw());
                return;
            }
        };
        let id = core.id.clone();
        if !self.seen.contains_key(&id) {
            let index = self.spans.len();
            self.seen.insert(id.clone(), index);
            let (span, own) = self.span(obj, kind, parent_id, segment_id, core);
            self.spans.push(span);
            self.own.push(own);
            self.note_cause(index, obj.get("cause"));
        }
        // A duplicate (an entity both streamed and merged) adds no span, but its children
        // still attach to the first copy through the shared id.
        match obj.get("subsegments") {
            None | Some(Value::Null) => {}
            Some(Value::Array(children)) => {
                for child in children {
                    match child {
                        Value::Object(c) => self.entity(
                            c,
                            SpanKind::Subsegment,
                            Some(id.clone()),
                            segment_id,
                            depth + 1,
                            None,
                        ),
                        other => {
                            let detail = format!("{}a subsegment is not a JSON object", what());
                            self.reject(
                                segment_id,
                                None,
                                "bad_value",
                                detail,
                                cap(&other.to_string(), 4096),
                            );
                        }
                    }
                }
            }
            Some(other) => {
                let detail = format!("{}`subsegments` is not an array", what());
                self.reject(
                    segment_id,
                    None,
                    "bad_value",
                    detail,
                    cap(&other.to_string(), 4096),
                );
            }
        }
    }

    fn span(
        &self,
        obj: &Map<String, Value>,
        kind: SpanKind,
        parent_id: Option<String>,
        segment_id: &str,
        core: Core,
    ) -> (Span, Own) {
        let aws = obj.get("aws").and_then(Value::as_object);
        let aws_str = |key: &str| {
            aws.and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let flag = |key: &str| obj.get(key).and_then(Value::as_bool).unwrap_or(false);
        let namespace = obj
            .get("namespace")
            .and_then(Value::as_str)
            .map(|s| cap(s, MAX_VALUE_CHARS));
        let aws_operation = aws_str("operation").map(|s| cap(s, MAX_VALUE_CHARS));
        let resource_arn = obj.get("resource_arn").and_then(Value::as_str);

        let mut own = Own::default();
        match kind {
            SpanKind::Service => {
                own.function = resource_arn
                    .and_then(lambda_arn)
                    .or_else(|| Some((core.name.clone(), None)));
                own.request_id = aws_str("request_id").map(str::to_string);
            }
            SpanKind::Function => {
                own.function = aws_str("function_arn")
                    .and_then(lambda_arn)
                    .or_else(|| resource_arn.and_then(lambda_arn))
                    .or_else(|| Some((core.name.clone(), None)));
                own.request_id = aws_str("request_id").map(str::to_string);
                own.has_initialization = obj
                    .get("subsegments")
                    .and_then(Value::as_array)
                    .is_some_and(|subs| {
                        subs.iter().any(|s| {
                            s.get("name").and_then(Value::as_str) == Some("Initialization")
                        })
                    });
            }
            SpanKind::Subsegment => {
                let invoke = core.name.eq_ignore_ascii_case("lambda")
                    || namespace.as_deref() == Some("aws")
                        && aws_operation.as_deref() == Some("Invoke");
                if invoke {
                    own.invoke_target = aws_str("function_name").and_then(function_ref);
                    own.invoke_request_id = aws_str("request_id").map(str::to_string);
                }
            }
            SpanKind::StateMachine | SpanKind::OtherSegment => {}
        }

        let cause_type = obj
            .get("cause")
            .and_then(|c| c.get("exceptions"))
            .and_then(Value::as_array)
            .and_then(|exs| {
                exs.iter()
                    .find_map(|e| e.get("type").and_then(Value::as_str))
            })
            .map(|t| cap(t, MAX_VALUE_CHARS));

        let mut attributes = Vec::new();
        if let Some(op) = &aws_operation {
            attributes.push(("aws.operation".to_string(), op.clone()));
        }
        if let Some(ns) = &namespace {
            attributes.push(("namespace".to_string(), ns.clone()));
        }
        self.allowed_attributes(obj, &mut attributes);

        let origin = match kind {
            SpanKind::Subsegment => None,
            _ => obj
                .get("origin")
                .and_then(Value::as_str)
                .map(|s| cap(s, MAX_VALUE_CHARS)),
        };
        let span = Span {
            id: core.id,
            parent_id,
            segment_id: segment_id.to_string(),
            name: core.name,
            kind,
            origin,
            namespace,
            aws_operation,
            start_s: core.start_s,
            end_s: core.end_s,
            function: None,
            qualifier: None,
            request_id: None,
            error: flag("error"),
            fault: flag("fault"),
            throttle: flag("throttle"),
            cause_type,
            cold_start: false,
            attributes,
        };
        (span, own)
    }

    fn allowed_attributes(&self, obj: &Map<String, Value>, out: &mut Vec<(String, String)>) {
        if !self.allow.annotations.is_empty()
            && let Some(annotations) = obj.get("annotations").and_then(Value::as_object)
        {
            for (key, value) in annotations {
                if !self.allow.annotations.iter().any(|k| k == key) {
                    continue;
                }
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => continue, // X-Ray drops other annotation types too
                };
                out.push((format!("annotation.{key}"), cap(&text, MAX_VALUE_CHARS)));
            }
        }
        if !self.allow.metadata.is_empty()
            && let Some(metadata) = obj.get("metadata").and_then(Value::as_object)
        {
            for (namespace, entries) in metadata {
                let Some(entries) = entries.as_object() else {
                    continue;
                };
                for (key, value) in entries {
                    let allowed = self.allow.metadata.iter().any(|k| {
                        *k == *key
                            || k.strip_prefix(namespace.as_str())
                                .and_then(|r| r.strip_prefix('.'))
                                == Some(key)
                    });
                    if !allowed {
                        continue;
                    }
                    let text = match value {
                        Value::String(s) => cap(s, MAX_VALUE_CHARS),
                        other => cap(&other.to_string(), MAX_VALUE_CHARS),
                    };
                    out.push((format!("metadata.{namespace}.{key}"), text));
                }
            }
        }
    }

    /// Remembers exception types by id, and `cause` values that only name an exception id.
    fn note_cause(&mut self, index: usize, cause: Option<&Value>) {
        match cause {
            Some(Value::String(id)) => self.cause_refs.push((index, id.clone())),
            Some(Value::Object(c)) => {
                for ex in c
                    .get("exceptions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let (Some(id), Some(ty)) = (
                        ex.get("id").and_then(Value::as_str),
                        ex.get("type").and_then(Value::as_str),
                    ) {
                        self.exception_types
                            .entry(id.to_string())
                            .or_insert_with(|| cap(ty, MAX_VALUE_CHARS));
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(mut self) -> ParsedTrace {
        for (index, id) in std::mem::take(&mut self.cause_refs) {
            if self.spans[index].cause_type.is_none() {
                self.spans[index].cause_type = self.exception_types.get(&id).cloned();
            }
        }
        self.inherit();
        let in_progress = self.spans.iter().any(|s| s.end_s.is_none());
        ParsedTrace {
            trace_id: self.trace_id.to_string(),
            spans: self.spans,
            rejections: self.rejections,
            in_progress,
        }
    }

    /// Resolves function, qualifier, RequestId and cold start, parents before children.
    fn inherit(&mut self) {
        let n = self.spans.len();
        let parents: Vec<Option<usize>> = self
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parent_id
                    .as_deref()
                    .and_then(|p| self.seen.get(p).copied())
                    .filter(|&p| p != i)
            })
            .collect();
        // 0 = not visited, 1 = on the current chain, 2 = resolved.
        let mut state = vec![0u8; n];
        for start in 0..n {
            let mut chain = Vec::new();
            let mut cur = Some(start);
            while let Some(c) = cur {
                if state[c] != 0 {
                    break; // resolved already, or a parent_id cycle
                }
                state[c] = 1;
                chain.push(c);
                cur = parents[c];
            }
            for &c in chain.iter().rev() {
                let parent = parents[c].filter(|&p| state[p] == 2);
                self.resolve(c, parent);
                state[c] = 2;
            }
        }
    }

    fn resolve(&mut self, i: usize, parent: Option<usize>) {
        let own = &self.own[i];
        let p = parent.map(|p| &self.spans[p]);
        let p_own = parent.map(|p| &self.own[p]);
        let (function, qualifier, request_id, cold_start) = match self.spans[i].kind {
            SpanKind::Service => {
                let (name, qual) = own.function.clone().unzip();
                // A qualifier missing from resource_arn may still be on the caller's Invoke.
                let qual = qual.flatten().or_else(|| {
                    p_own
                        .and_then(|po| po.invoke_target.as_ref())
                        .filter(|(target, _)| Some(target) == name.as_ref())
                        .and_then(|(_, q)| q.clone())
                });
                (name, qual, own.request_id.clone(), false)
            }
            SpanKind::Function => {
                let (name, qual) = own.function.clone().unzip();
                let service = p.filter(|p| p.kind == SpanKind::Service && p.function == name);
                let qual = qual
                    .flatten()
                    .or_else(|| service.and_then(|s| s.qualifier.clone()));
                let request_id = own
                    .request_id
                    .clone()
                    .or_else(|| service.and_then(|s| s.request_id.clone()));
                (name, qual, request_id, own.has_initialization)
            }
            SpanKind::StateMachine | SpanKind::OtherSegment => (None, None, None, false),
            SpanKind::Subsegment => {
                let inherited = p.map(|p| {
                    (
                        p.function.clone(),
                        p.qualifier.clone(),
                        p.request_id.clone(),
                        p.cold_start,
                    )
                });
                let (function, qualifier, request_id, cold_start) = inherited.unwrap_or_default();
                match (&function, &own.invoke_target) {
                    // An Invoke that no function owns (a Step Functions state) names its target.
                    (None, Some((target, qual))) => (
                        Some(target.clone()),
                        qual.clone(),
                        own.invoke_request_id.clone(),
                        false,
                    ),
                    _ => (function, qualifier, request_id, cold_start),
                }
            }
        };
        let span = &mut self.spans[i];
        span.function = function;
        span.qualifier = qualifier;
        span.request_id = request_id;
        span.cold_start = cold_start;
    }
}

/// Reads and checks id, name and times. Errors are (reason, detail, event time if known).
fn check_core(obj: &Map<String, Value>) -> Result<Core, (&'static str, String, Option<i64>)> {
    let text = |key: &'static str| -> Result<String, (&'static str, String, Option<i64>)> {
        match obj.get(key) {
            None | Some(Value::Null) => Err(("missing_field", format!("no `{key}`"), None)),
            Some(Value::String(s)) if s.is_empty() => {
                Err(("missing_field", format!("empty `{key}`"), None))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(("bad_value", format!("`{key}` is not a string"), None)),
        }
    };
    let id = text("id")?;
    if id.chars().count() > MAX_ID_CHARS {
        return Err((
            "bad_value",
            format!("`id` longer than {MAX_ID_CHARS} characters"),
            None,
        ));
    }
    let name = text("name")?;
    let number = |key: &'static str| -> Result<Option<f64>, (&'static str, String, Option<i64>)> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(("bad_value", format!("`{key}` is not a number"), None)),
        }
    };
    let sane = |t: f64| t.is_finite() && (MIN_EPOCH_S..MAX_EPOCH_S).contains(&t);
    let start_s =
        number("start_time")?.ok_or(("missing_field", "no `start_time`".to_string(), None))?;
    if !sane(start_s) {
        return Err((
            "absurd_time",
            format!("start_time {start_s} is not between 2000 and 2100 (epoch seconds)"),
            None,
        ));
    }
    let time_ms = Some((start_s * 1000.0).floor() as i64);
    let in_progress = obj.get("in_progress").and_then(Value::as_bool) == Some(true);
    let end_s = if in_progress {
        None
    } else {
        let end = number("end_time")
            .map_err(|(r, d, _)| (r, d, time_ms))?
            .ok_or((
                "missing_field",
                "no `end_time` and not in_progress".to_string(),
                time_ms,
            ))?;
        if !sane(end) {
            return Err((
                "absurd_time",
                format!("end_time {end} is not between 2000 and 2100 (epoch seconds)"),
                time_ms,
            ));
        }
        if end < start_s {
            return Err((
                "end_before_start",
                format!("end_time {end} < start_time {start_s}"),
                time_ms,
            ));
        }
        if end - start_s > MAX_DURATION_S {
            return Err((
                "absurd_time",
                format!("lasts {:.0} s, over one day", end - start_s),
                time_ms,
            ));
        }
        Some(end)
    };
    Ok(Core {
        id,
        name,
        start_s,
        end_s,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads a BatchGetTraces-shaped fixture into `(trace id, [(segment id, document)])`.
    pub(crate) fn fixture(name: &str) -> Vec<(String, Vec<(String, String)>)> {
        let path = format!("{}/tests/fixtures/xray/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap();
        v["Traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let segs = t["Segments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        (
                            s["Id"].as_str().unwrap().to_string(),
                            s["Document"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                (t["Id"].as_str().unwrap().to_string(), segs)
            })
            .collect()
    }

    pub(crate) fn parse_fixture(name: &str) -> ParsedTrace {
        let traces = fixture(name);
        assert_eq!(traces.len(), 1, "{name} holds one trace");
        parse_trace(&traces[0].0, &traces[0].1, &AllowList::default())
    }

    pub(crate) const ALL_FIXTURES: &[&str] = &[
        "atlas_workflow_dev.json",
        "atlas_workflow_wait_gap.json",
        "fault_gdsh_timeout.json",
        "formats_md_examples.json",
        "in_progress.json",
        "malformed.json",
        "sdk_gdsh_cold_standalone.json",
        "sdk_ioch_merged.json",
        "sdk_lfh_throttle.json",
    ];

    fn by_name<'a>(t: &'a ParsedTrace, name: &str) -> Vec<&'a Span> {
        t.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one<'a>(t: &'a ParsedTrace, name: &str) -> &'a Span {
        let found = by_name(t, name);
        assert_eq!(found.len(), 1, "exactly one span named {name}");
        found[0]
    }

    #[test]
    fn trace_ids_carry_their_epoch() {
        assert_eq!(
            trace_id_epoch_ms("1-581cf771-a006649127e371903a2de979"),
            Some(1_478_293_361_000)
        );
        assert_eq!(trace_id_epoch_ms("garbage"), None);
    }

    #[test]
    fn formats_md_real_documents() {
        let traces = fixture("formats_md_examples.json");
        let allow = AllowList::default();

        // AWS::Lambda service segment (REAL, LambdaPulse).
        let t = parse_trace(&traces[0].0, &traces[0].1, &allow);
        assert!(t.rejections.is_empty());
        let svc = &t.spans[0];
        assert_eq!(svc.kind, SpanKind::Service);
        assert_eq!(svc.function.as_deref(), Some("todo-list-app-dev-postTask"));
        assert_eq!(
            svc.request_id.as_deref(),
            Some("04b18ae7-3d34-4c77-9382-60c2532fcdae")
        );
        assert_eq!(svc.qualifier, None);
        assert_eq!(svc.duration_s(), Some(0.058));
        assert!(
            trace_events(&t).is_empty(),
            "service segments give no events"
        );

        // AWS::Lambda::Function segment: cold start; the abridged DynamoDB subsegment has no
        // id/start_time and is the only thing rejected.
        let t = parse_trace(&traces[1].0, &traces[1].1, &allow);
        assert_eq!(t.rejections.len(), 1);
        let r = &t.rejections[0];
        assert_eq!((r.reason, r.source.as_str()), ("missing_field", "xray"));
        assert_eq!(
            r.origin,
            "1-64373507-1fa10d7929b63ad548165c89|64db57830f6fd454"
        );
        assert!(r.detail.contains("DynamoDB"), "{}", r.detail);
        let names: Vec<&str> = t.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "todo-list-app-dev-postTask",
                "Invocation",
                "Initialization",
                "Overhead"
            ]
        );
        assert!(
            t.spans.iter().all(
                |s| s.cold_start && s.function.as_deref() == Some("todo-list-app-dev-postTask")
            )
        );
        let f = &t.spans[0];
        assert_eq!(f.kind, SpanKind::Function);
        // 1.6813396574838803E9 − 1.6813396573927343E9 = 0.091146 s
        assert_eq!(f.duration_s(), Some(0.091146));
        let events = trace_events(&t);
        let ops: Vec<&str> = events.iter().map(|(e, _)| e.operation.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Lambda.Function",
                "Invocation",
                "Initialization",
                "Overhead"
            ]
        );
        let init = &events[2].0;
        assert_eq!(init.duration_s, 0.780113);
        assert_eq!(init.time_ms, 1_681_339_656_611);
        assert_eq!(
            init.idem_key,
            "1-64373507-1fa10d7929b63ad548165c89|6b1089d8bb667884"
        );
        assert!(init.cold_start && !init.error && init.env.is_empty());

        // The Step Functions shape: the state's Invoke names its Dev target.
        let t = parse_trace(&traces[2].0, &traces[2].1, &allow);
        let invoke = one(&t, "Lambda");
        assert_eq!(
            invoke.function.as_deref(),
            Some("GenerateDynamicScenarioHandler")
        );
        assert_eq!(invoke.qualifier.as_deref(), Some("Dev"));
        assert_eq!(invoke.aws_operation.as_deref(), Some("Invoke"));
        let state = one(&t, "GenerateDynamicScenario");
        assert_eq!(state.function, None);
        let events = trace_events(&t);
        let state_event = &events
            .iter()
            .find(|(e, _)| e.operation == "GenerateDynamicScenario")
            .unwrap()
            .0;
        assert_eq!(state_event.function, "AtlasEngineWorkflow");
        assert_eq!(state_event.duration_s, 9.2);

        // In progress, no end_time.
        let t = parse_trace(&traces[3].0, &traces[3].1, &allow);
        assert!(t.in_progress && t.rejections.is_empty());
        assert_eq!(t.spans[0].end_s, None);
    }

    #[test]
    fn workflow_trace_attributes_every_invocation() {
        let t = parse_fixture("atlas_workflow_dev.json");
        assert!(t.rejections.is_empty(), "{:?}", t.rejections);
        assert!(!t.in_progress);
        assert_eq!(
            by_name(&t, "AtlasEngineWorkflow")[0].kind,
            SpanKind::StateMachine
        );
        let bedrock = by_name(&t, "Bedrock.InvokeModel");
        assert_eq!(bedrock.len(), 2);
        let gdsh = bedrock
            .iter()
            .find(|s| s.function.as_deref() == Some("GenerateDynamicScenarioHandler"))
            .unwrap();
        assert_eq!(gdsh.duration_s(), Some(9.0));
        assert_eq!(gdsh.qualifier.as_deref(), Some("Dev"));
        assert!(gdsh.request_id.is_some());
        // The function segment without function_arn (2024 shape) still has its name,
        // qualifier and RequestId from the service segment.
        let services: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Service)
            .collect();
        let functions: Vec<&Span> = t
            .spans
            .iter()
            .filter(|s| s.kind == SpanKind::Function)
            .collect();
        assert_eq!((services.len(), functions.len()), (4, 4));
        for f in &functions {
            let svc = services
                .iter()
                .find(|s| Some(&s.id) == f.parent_id.as_ref())
                .unwrap();
            assert_eq!(f.function, svc.function);
            assert_eq!(f.request_id, svc.request_id);
            assert_eq!(f.qualifier.as_deref(), Some("Dev"));
        }
        // Only UpdateLeadHandler had an Initialization subsegment.
        for s in &t.spans {
            let cold = s.function.as_deref() == Some("UpdateLeadHandler")
                && !matches!(s.kind, SpanKind::Service)
                && s.name != "Lambda";
            assert_eq!(s.cold_start, cold, "{} {:?}", s.name, s.kind);
        }

        let events = trace_events(&t);
        let mut keys: Vec<&str> = events.iter().map(|(e, _)| e.idem_key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), events.len(), "idempotency keys are unique");
        let find = |function: &str, op: &str| {
            events
                .iter()
                .find(|(e, _)| e.function == function && e.operation == op)
                .unwrap_or_else(|| panic!("{function} {op}"))
        };
        let (e, hint) = find("GenerateDynamicScenarioHandler", "Bedrock.InvokeModel");
        assert_eq!(
            (e.duration_s, hint.as_deref(), e.function_version.as_deref()),
            (9.0, Some("Dev"), None)
        );
        assert_eq!(e.source, Source::Xray);
        assert_eq!(e.trace_id.as_deref(), Some(t.trace_id.as_str()));
        assert_eq!(
            find("GenerateDynamicScenarioHandler", "Lambda.Function")
                .0
                .duration_s,
            9.2
        );
        assert_eq!(
            find("InvokeOutboundCallHandler", "Connect.StartOutboundCall")
                .0
                .duration_s,
            1.0
        );
        assert_eq!(
            find("UpdateLeadHandler", "Salesforce.UpdateLead")
                .0
                .duration_s,
            0.3
        );
        assert!(find("UpdateLeadHandler", "Initialization").0.cold_start);
        assert_eq!(
            find("GenerateDynamicScenarioHandler", "Lambda")
                .1
                .as_deref(),
            Some("Dev")
        );
        assert_eq!(
            find("AtlasEngineWorkflow", "GenerateDynamicScenario")
                .0
                .duration_s,
            9.3
        );
        // 4 states + 4 invokes + 4 × (function, Invocation, Overhead) + 6 user subsegments + 1 Initialization
        assert_eq!(events.len(), 4 + 4 + 12 + 6 + 1);
        assert!(
            events
                .iter()
                .all(|(e, _)| e.duration_s.is_finite() && e.duration_s >= 0.0 && e.env.is_empty())
        );
    }

    #[test]
    fn python_sdk_standalone_subsegments_attach_by_parent_id() {
        let t = parse_fixture("sdk_gdsh_cold_standalone.json");
        assert!(t.rejections.is_empty(), "{:?}", t.rejections);
        let wrapper = one(&t, "Bedrock.InvokeModel");
        let call = one(&t, "bedrock-runtime");
        let invocation = one(&t, "Invocation");
        assert_eq!(call.parent_id.as_ref(), Some(&wrapper.id));
        assert_eq!(wrapper.parent_id.as_ref(), Some(&invocation.id));
        assert_eq!(
            call.segment_id, call.id,
            "a standalone document is its own segment"
        );
        for s in [wrapper, call] {
            assert_eq!(s.kind, SpanKind::Subsegment);
            assert_eq!(
                s.function.as_deref(),
                Some("GenerateDynamicScenarioHandler")
            );
            assert_eq!(s.qualifier.as_deref(), Some("Dev"));
            assert_eq!(
                s.request_id.as_deref(),
                Some("3f0c9a2e-1b4d-4e6f-8a7c-5d2e1f0a9b8c")
            );
            assert!(s.cold_start);
        }
        assert_eq!(call.namespace.as_deref(), Some("aws"));
        assert_eq!(call.aws_operation.as_deref(), Some("InvokeModel"));
        assert_eq!(wrapper.namespace.as_deref(), Some("local"));
        assert_eq!(call.duration_s(), Some(8.93));
        assert_eq!(
            call.attributes,
            [
                ("aws.operation".to_string(), "InvokeModel".to_string()),
                ("namespace".to_string(), "aws".to_string())
            ]
        );
        // Annotations and metadata stay out unless allow-listed.
        assert_eq!(
            wrapper.attributes,
            [("namespace".to_string(), "local".to_string())]
        );
        let traces = fixture("sdk_gdsh_cold_standalone.json");
        let allow = AllowList {
            annotations: vec!["model_id".into()],
            metadata: vec!["atlas.prompt_chars".into()],
        };
        let t2 = parse_trace(&traces[0].0, &traces[0].1, &allow);
        let w2 = one(&t2, "Bedrock.InvokeModel");
        assert!(w2.attributes.contains(&(
            "annotation.model_id".into(),
            "anthropic.claude-3-5-sonnet-20240620-v1:0".into()
        )));
        assert!(
            w2.attributes
                .contains(&("metadata.atlas.prompt_chars".into(), "18234".into()))
        );
        let allow = AllowList {
            annotations: vec![],
            metadata: vec!["prompt_chars".into()],
        };
        let t3 = parse_trace(&traces[0].0, &traces[0].1, &allow);
        assert_eq!(one(&t3, "Bedrock.InvokeModel").attributes.len(), 2);

        let events = trace_events(&t);
        let e = &events
            .iter()
            .find(|(e, _)| e.operation == "bedrock-runtime")
            .unwrap()
            .0;
        assert_eq!(
            (e.function.as_str(), e.duration_s, e.cold_start),
            ("GenerateDynamicScenarioHandler", 8.93, true)
        );
    }

    #[test]
    fn python_sdk_merged_subsegments_and_new_function_shape() {
        let t = parse_fixture("sdk_ioch_merged.json");
        assert!(t.rejections.is_empty(), "{:?}", t.rejections);
        let put = by_name(&t, "dynamodb");
        assert_eq!(put.len(), 2);
        assert!(
            put.iter().all(
                |s| s.function.as_deref() == Some("InvokeOutboundCallHandler") && !s.cold_start
            )
        );
        let ops: Vec<&str> = put
            .iter()
            .filter_map(|s| s.aws_operation.as_deref())
            .collect();
        assert_eq!(ops, ["PutItem", "UpdateItem"]);
        let connect = one(&t, "connect");
        assert_eq!(
            connect.parent_id.as_ref(),
            Some(&one(&t, "Connect.StartOutboundCall").id)
        );
        assert_eq!(connect.duration_s(), Some(0.995));
        let f = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Function)
            .unwrap();
        assert_eq!(
            (f.qualifier.as_deref(), f.function.as_deref()),
            (Some("Dev"), Some("InvokeOutboundCallHandler"))
        );
    }

    #[test]
    fn python_sdk_throttle_and_cause_by_exception_id() {
        let t = parse_fixture("sdk_lfh_throttle.json");
        let call = t
            .spans
            .iter()
            .find(|s| s.name == "bedrock-runtime")
            .unwrap();
        assert!(call.throttle && call.error && call.fault);
        assert_eq!(call.cause_type.as_deref(), Some("ThrottlingException"));
        // The SDK wrote the wrapper's cause as the exception id recorded on the call.
        let wrapper = one(&t, "Bedrock.InvokeModel");
        assert!(wrapper.fault && !wrapper.throttle);
        assert_eq!(wrapper.cause_type.as_deref(), Some("ThrottlingException"));
        assert_eq!(wrapper.qualifier.as_deref(), Some("12"));
        let events = trace_events(&t);
        let (e, hint) = events
            .iter()
            .find(|(e, _)| e.operation == "bedrock-runtime")
            .unwrap();
        assert!(e.error);
        assert_eq!(
            (e.function_version.as_deref(), hint.as_deref()),
            (Some("12"), Some("12"))
        );
        assert!(
            !events
                .iter()
                .find(|(e, _)| e.operation == "secretsmanager")
                .unwrap()
                .0
                .error
        );
    }

    #[test]
    fn fault_trace() {
        let t = parse_fixture("fault_gdsh_timeout.json");
        assert!(t.rejections.is_empty());
        let f = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Function)
            .unwrap();
        assert!(f.fault && !f.error);
        assert_eq!(f.cause_type.as_deref(), Some("ReadTimeoutError"));
        let wrapper = one(&t, "Bedrock.InvokeModel");
        assert_eq!(wrapper.cause_type.as_deref(), Some("ReadTimeoutError"));
        // botocore's patch records no exception for a non-ClientError on the call itself.
        let call = one(&t, "bedrock-runtime");
        assert!(!call.fault && call.cause_type.is_none());
        assert_eq!(call.duration_s(), Some(10.0));
        let events = trace_events(&t);
        assert!(
            events
                .iter()
                .find(|(e, _)| e.operation == "Lambda.Function")
                .unwrap()
                .0
                .error
        );
        assert!(
            events
                .iter()
                .find(|(e, _)| e.operation == "Bedrock.InvokeModel")
                .unwrap()
                .0
                .error
        );
    }

    #[test]
    fn in_progress_trace() {
        let t = parse_fixture("in_progress.json");
        assert!(t.in_progress);
        assert!(t.rejections.is_empty());
        let open: Vec<&str> = t
            .spans
            .iter()
            .filter(|s| s.end_s.is_none())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            open,
            [
                "AtlasEngineWorkflow",
                "GenerateDynamicScenario",
                "Lambda",
                "GenerateDynamicScenarioHandler",
                "Invocation",
                "Bedrock.InvokeModel"
            ]
        );
        let events = trace_events(&t);
        for (e, _) in &events {
            let span = t
                .spans
                .iter()
                .find(|s| e.idem_key.ends_with(&format!("|{}", s.id)))
                .unwrap();
            assert!(
                span.end_s.is_some(),
                "no event for the open span {}",
                span.name
            );
        }
        assert!(
            events
                .iter()
                .any(|(e, _)| e.function == "LexFulfillmentHandler"
                    && e.operation == "Bedrock.InvokeModel")
        );
        // The running function segment's service segment is not in the trace yet: no qualifier.
        let f = t
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Function && s.end_s.is_none())
            .unwrap();
        assert_eq!(
            (f.function.as_deref(), f.qualifier.as_deref()),
            (Some("GenerateDynamicScenarioHandler"), None)
        );
    }

    #[test]
    fn malformed_documents_are_rejected_and_the_rest_kept() {
        let t = parse_fixture("malformed.json");
        let mut reasons: Vec<&str> = t.rejections.iter().map(|r| r.reason).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                "absurd_time",
                "absurd_time",
                "bad_value",
                "bad_value",
                "end_before_start",
                "end_before_start",
                "invalid_json",
                "invalid_json",
                "missing_field",
                "missing_field",
                "too_deep",
                "too_large",
            ]
        );
        assert!(
            t.rejections
                .iter()
                .all(|r| r.source == "xray" && r.origin.starts_with(&t.trace_id))
        );
        // Rejection time: the document's start when readable, else the trace id's epoch.
        let trace_ms = trace_id_epoch_ms(&t.trace_id).unwrap();
        let json = t
            .rejections
            .iter()
            .find(|r| r.reason == "invalid_json")
            .unwrap();
        assert_eq!(json.time_ms, trace_ms);
        let backwards = t
            .rejections
            .iter()
            .find(|r| r.detail.contains("1727007000.5 < "))
            .unwrap();
        assert_eq!(backwards.time_ms, 1_727_007_001_500);
        // Kept: the good segment and its good state, and the deep document down to MAX_DEPTH.
        assert_eq!(one(&t, "AtlasEngineWorkflow").kind, SpanKind::StateMachine);
        one(&t, "LexFulfillment");
        assert!(by_name(&t, "BrokenState").is_empty());
        one(&t, "DeepService");
        one(&t, &format!("level{}", MAX_DEPTH - 1));
        assert!(by_name(&t, &format!("level{MAX_DEPTH}")).is_empty());
    }

    #[test]
    fn edge_documents() {
        let allow = AllowList::default();
        let doc = |d: &str| {
            parse_trace(
                "1-66f0c580-0123456789abcdef01234567",
                &[("s".into(), d.into())],
                &allow,
            )
        };
        // Exponent form and integer times.
        let t = doc(r#"{"id":"a","name":"n","start_time":1.7270000001E9,"end_time":1727000001}"#);
        assert_eq!(t.spans[0].duration_s(), Some(0.9));
        // in_progress wins over a stray end_time; `in_progress: false` is the SDK's normal.
        let t = doc(
            r#"{"id":"a","name":"n","start_time":1727000000,"end_time":1727000001,"in_progress":true}"#,
        );
        assert!(t.in_progress && t.spans[0].end_s.is_none());
        let t = doc(
            r#"{"id":"a","name":"n","start_time":1727000000,"end_time":1727000001,"in_progress":false}"#,
        );
        assert!(!t.in_progress);
        // Neither end_time nor in_progress.
        assert_eq!(
            doc(r#"{"id":"a","name":"n","start_time":1727000000}"#).rejections[0].reason,
            "missing_field"
        );
        // Before 2000, NaN-like, huge.
        assert_eq!(
            doc(r#"{"id":"a","name":"n","start_time":9.0E8,"end_time":9.0E8}"#).rejections[0]
                .reason,
            "absurd_time"
        );
        assert_eq!(
            doc(r#"{"id":"a","name":"n","start_time":NaN,"end_time":1}"#).rejections[0].reason,
            "invalid_json"
        );
        assert_eq!(doc("").rejections[0].reason, "invalid_json");
        // serde_json's own nesting limit is reported as too_deep, not as bad JSON.
        let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(doc(&nested).rejections[0].reason, "too_deep");
        assert_eq!(doc("null").rejections[0].reason, "bad_value");
        // Zero-length spans are fine.
        assert!(
            doc(r#"{"id":"a","name":"n","start_time":1727000000,"end_time":1727000000}"#)
                .rejections
                .is_empty()
        );
        // Duplicate ids: the first copy is kept, the second's children still attach.
        let segs = vec![
            ("a".to_string(), r#"{"id":"a","name":"n","start_time":1727000000,"end_time":1727000002}"#.to_string()),
            ("a".to_string(), r#"{"id":"a","name":"n2","start_time":1727000000,"end_time":1727000002,"subsegments":[{"id":"b","name":"c","start_time":1727000000.5,"end_time":1727000001}]}"#.to_string()),
        ];
        let t = parse_trace("1-66f0c580-0123456789abcdef01234567", &segs, &allow);
        assert_eq!(t.spans.len(), 2);
        assert_eq!(
            (t.spans[0].name.as_str(), t.spans[1].parent_id.as_deref()),
            ("n", Some("a"))
        );
        // parent_id cycles terminate.
        let segs = vec![
            ("x".to_string(), r#"{"id":"x","type":"subsegment","parent_id":"y","name":"x","start_time":1727000000,"end_time":1727000001}"#.to_string()),
            ("y".to_string(), r#"{"id":"y","type":"subsegment","parent_id":"x","name":"y","start_time":1727000000,"end_time":1727000001}"#.to_string()),
        ];
        let t = parse_trace("t", &segs, &allow);
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.owner_names(), [None, None]);
        assert!(trace_events(&t).is_empty(), "orphans have no owner");
        assert_eq!(t.rejections.len(), 0);
    }

    #[test]
    fn lambda_invoking_lambda_keeps_the_caller_as_owner() {
        let allow = AllowList::default();
        let caller = r#"{"id":"f1","name":"A","origin":"AWS::Lambda::Function","parent_id":"s1","start_time":1727000000,"end_time":1727000003,
            "subsegments":[{"id":"i1","name":"Invocation","start_time":1727000000,"end_time":1727000003,
              "subsegments":[{"id":"l1","name":"lambda","namespace":"aws","start_time":1727000001,"end_time":1727000002,
                "aws":{"operation":"Invoke","function_name":"B:PROD","request_id":"rid-B"}}]}]}"#;
        let svc_a = r#"{"id":"s1","name":"A","origin":"AWS::Lambda","start_time":1727000000,"end_time":1727000003,"resource_arn":"arn:aws:lambda:us-west-2:1:function:A:Dev","aws":{"request_id":"rid-A"}}"#;
        let svc_b = r#"{"id":"s2","name":"B","origin":"AWS::Lambda","parent_id":"l1","start_time":1727000001.1,"end_time":1727000001.9,"resource_arn":"arn:aws:lambda:us-west-2:1:function:B","aws":{"request_id":"rid-B"}}"#;
        let segs: Vec<(String, String)> = [("f1", caller), ("s1", svc_a), ("s2", svc_b)]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let t = parse_trace("t", &segs, &allow);
        let call = one(&t, "lambda");
        assert_eq!(
            (
                call.function.as_deref(),
                call.qualifier.as_deref(),
                call.request_id.as_deref()
            ),
            (Some("A"), Some("Dev"), Some("rid-A"))
        );
        // B's service segment takes the qualifier from the Invoke when resource_arn has none.
        let b = t.spans.iter().find(|s| s.id == "s2").unwrap();
        assert_eq!(
            (b.function.as_deref(), b.qualifier.as_deref()),
            (Some("B"), Some("PROD"))
        );
    }

    /// Mutations that keep a document string but break it in many small ways.
    fn mutate(doc: &str, op: u8, at: usize, arg: &str) -> String {
        let mut cut = at % (doc.len() + 1);
        while !doc.is_char_boundary(cut) {
            cut -= 1;
        }
        match op % 4 {
            0 => format!("{}{}", &doc[..cut], arg), // truncate and append
            1 => format!("{}{}{}", &doc[..cut], arg, &doc[cut..]), // insert
            2 => {
                let mut end = (cut + arg.len().max(1)).min(doc.len());
                while !doc.is_char_boundary(end) {
                    end += 1;
                }
                format!("{}{}", &doc[..cut], &doc[end..]) // delete a range
            }
            _ => doc.replacen(['1', '7', '.', '"', '}', ']'], arg, 1 + at % 3),
        }
    }

    fn all_documents() -> Vec<(String, Vec<(String, String)>)> {
        ALL_FIXTURES.iter().flat_map(|f| fixture(f)).collect()
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            (1.6e9f64..1.8e9).prop_map(|f| serde_json::json!(f)),
            any::<i64>().prop_map(|i| serde_json::json!(i)),
            ".{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "subsegment",
                "AWS::Lambda",
                "AWS::Lambda::Function",
                "Invocation",
                "Initialization",
                "Lambda"
            ])
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4).prop_map(
                    |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                ),
            ]
        })
    }

    const KEYS: &[&str] = &[
        "id",
        "name",
        "start_time",
        "end_time",
        "parent_id",
        "in_progress",
        "subsegments",
        "type",
        "origin",
        "aws",
        "cause",
        "exceptions",
        "function_name",
        "resource_arn",
        "annotations",
        "metadata",
        "error",
        "fault",
    ];

    /// Sets or removes one key somewhere in the document tree.
    fn mutate_value(v: &mut Value, path: &[usize], key: &str, new: Option<Value>) {
        if let Some((&step, rest)) = path.split_first() {
            match v {
                Value::Object(m) if m.get("subsegments").is_some_and(Value::is_array) => {
                    if let Some(subs) = m.get_mut("subsegments") {
                        return mutate_value(subs, rest, key, new);
                    }
                }
                Value::Array(a) if !a.is_empty() => {
                    let len = a.len();
                    return mutate_value(&mut a[step % len], rest, key, new);
                }
                _ => {}
            }
        }
        if let Value::Object(m) = v {
            match new {
                Some(n) => {
                    m.insert(key.to_string(), n);
                }
                None => {
                    m.remove(key);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_strings(docs in prop::collection::vec(".{0,200}", 0..4), tid in ".{0,40}") {
            let segs: Vec<(String, String)> = docs.into_iter().enumerate().map(|(i, d)| (i.to_string(), d)).collect();
            let t = parse_trace(&tid, &segs, &AllowList::default());
            prop_assert!(t.spans.len() <= segs.len() || segs.iter().any(|(_, d)| d.contains("subsegments")));
            let _ = trace_events(&t);
        }

        #[test]
        fn never_panics_on_arbitrary_json(v in json_value()) {
            let allow = AllowList { annotations: vec!["a".into()], metadata: vec!["m".into()] };
            let t = parse_trace("1-66f0c580-0123456789abcdef01234567", &[("s".into(), v.to_string())], &allow);
            for (e, _) in trace_events(&t) {
                prop_assert!(e.duration_s.is_finite() && e.duration_s >= 0.0);
            }
        }

        #[test]
        fn never_panics_on_mutated_fixture_documents(
            pick in any::<prop::sample::Index>(),
            seg in any::<prop::sample::Index>(),
            op in any::<u8>(),
            at in any::<usize>(),
            arg in ".{0,8}",
        ) {
            let traces = all_documents();
            let (tid, mut segs) = pick.get(&traces).clone();
            let i = seg.index(segs.len());
            segs[i].1 = mutate(&segs[i].1, op, at, &arg);
            let t = parse_trace(&tid, &segs, &AllowList::default());
            for (e, _) in trace_events(&t) {
                prop_assert!(e.duration_s.is_finite() && e.duration_s >= 0.0);
            }
        }

        #[test]
        fn never_panics_on_structurally_mutated_documents(
            pick in any::<prop::sample::Index>(),
            seg in any::<prop::sample::Index>(),
            path in prop::collection::vec(any::<usize>(), 0..6),
            key in prop::sample::select(KEYS.to_vec()),
            new in prop::option::of(json_value()),
        ) {
            let traces = all_documents();
            let (tid, mut segs) = pick.get(&traces).clone();
            let i = seg.index(segs.len());
            if let Ok(mut v) = serde_json::from_str::<Value>(&segs[i].1) {
                mutate_value(&mut v, &path, key, new);
                segs[i].1 = v.to_string();
            }
            let t = parse_trace(&tid, &segs, &AllowList::default());
            let events = trace_events(&t);
            let mut keys: Vec<&str> = events.iter().map(|(e, _)| e.idem_key.as_str()).collect();
            keys.sort();
            let n = keys.len();
            keys.dedup();
            prop_assert_eq!(n, keys.len());
        }
    }
}
