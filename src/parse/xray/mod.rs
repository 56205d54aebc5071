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
//! sections 5 and 6; fixtures in `tests/fixtures/xray/`. This module holds the types and the
//! entry points; [`builder`] turns documents into spans, [`checks`] vets each entity.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::lambda::{function_ref, is_version, lambda_arn};
use crate::model::{Rejection, Source, TimingEvent};

mod builder;
mod checks;
#[cfg(test)]
pub(crate) mod tests;

use builder::Builder;

/// The largest segment document parsed; anything larger is rejected as `too_large`.
/// PutTraceSegments takes documents of up to 64 KiB, but BatchGetTraces returns segments
/// assembled from their subsegments, which can be larger (a Step Functions execution with
/// 515 states is about 64 KiB); the nesting cap ([`MAX_DEPTH`]) still applies.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
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
    /// A segment (not a subsegment) is still open: the trace is certainly not finished.
    pub open_segments: bool,
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
    /// Whether the trace is as finished as it will get, given the time `settled_ms` before
    /// which its segments must have ended: nothing open, or only subsegments open (Step
    /// Functions leaves states marked `in_progress` in closed executions) in segments that
    /// all ended a settle period ago.
    pub fn finished_by(&self, settled_ms: i64) -> bool {
        if !self.in_progress {
            return true;
        }
        if self.open_segments {
            return false;
        }
        let newest_end_s = self.spans.iter().filter_map(|s| s.end_s).fold(f64::NEG_INFINITY, f64::max);
        newest_end_s.is_finite() && newest_end_s * 1000.0 <= settled_ms as f64
    }

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
    let mut b = Builder::new(trace_id, allow);
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
