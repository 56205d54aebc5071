//! The per-log-stream assembler: turns a stream's [`Parsed`] messages, fed in stream order
//! (`timestamp`, then `eventId`), into timing events, late annotations, rejections and Lambda
//! self-metric signals.
//!
//! One execution environment runs one invocation at a time, so a line without a request id
//! (the seed's bare `print` output) belongs to the invocation the last `START` in the same
//! stream opened. [`StreamState`] carries that across polls; it is serialisable so a
//! checkpoint can hold it. Pure and deterministic: no clock, no I/O.
//!
//! Multi-concurrent Managed Instances break the positional rule; lines that carry their own
//! request id (runtime prefix, JSON-mode `requestId`, Powertools) always win over the state.

use serde::{Deserialize, Serialize};

use super::{LineContext, Parsed, Report};
use crate::lambda::{arn_qualifier, function_from_log_group, parse_stream_name};
use crate::model::{Rejection, Source, TimingEvent};

/// Operation name of the REPORT duration event.
pub const OP_DURATION: &str = "Lambda.Duration";
/// Operation name of the init duration (REPORT `Init Duration` or `INIT_REPORT`).
pub const OP_INIT: &str = "Lambda.InitDuration";
/// Operation name of the SnapStart restore duration.
pub const OP_RESTORE: &str = "Lambda.RestoreDuration";

/// What the assembler remembers about one log stream between messages (and polls).
#[derive(Default, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    /// The invocation the last `START` (or an explicit request id) opened.
    pub request_id: Option<String>,
    /// From `START ... Version:`; an environment runs one version, so it survives invocations.
    pub version: Option<String>,
    /// Whether the current invocation is a cold start, as far as known so far.
    pub cold_start: bool,
    /// The current invocation's Powertools `function_arn` (its qualifier is the alias).
    pub function_arn: Option<String>,
    /// The current invocation's trace id, when a line has told it.
    pub trace_id: Option<String>,
    /// Newest event time seen, epoch ms.
    pub last_time_ms: i64,
    /// `INIT_START`/`RESTORE_START` seen and no `START` since: the next invocation is cold.
    pub init_pending: bool,
    /// Between a `START` (or a line naming a new request) and its `REPORT`.
    pub in_invocation: bool,
    /// The request id `signalled_init` belongs to.
    pub signalled_for: Option<String>,
    /// `INIT_REPORT Phase: invoke` already produced the init event for `signalled_for`, so
    /// its REPORT's `Init Duration` does not produce a second one.
    pub signalled_init: bool,
}

/// One CloudWatch Logs event and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawLogEvent<'a> {
    pub log_group: &'a str,
    pub stream: &'a str,
    pub event_id: &'a str,
    pub time_ms: i64,
    pub message: &'a str,
}

/// What the assembler produces for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A timing event with env left empty; alias_hint = qualifier of a Powertools function_arn
    /// when present.
    Event {
        event: TimingEvent,
        alias_hint: Option<String>,
    },
    /// Facts learned after the invocation's events were emitted (REPORT's trace id, a later
    /// `Task timed out`, Powertools' `cold_start`): the store applies them to already-stored
    /// events of this request id. `cold_start: None` means "unchanged".
    Annotate {
        request_id: String,
        trace_id: Option<String>,
        error: bool,
        timeout: bool,
        cold_start: Option<bool>,
    },
    /// model::Rejection with source "logs", origin "<group>|<stream>|<eventId>", raw = message.
    Rejected(Rejection),
    Ignored(&'static str),
}

/// Folds one parsed message into the stream state and returns what it produced.
///
/// Lines that only move state (`START`, `END`, `INIT_START`, context lines that teach
/// nothing new) return an empty vector.
pub fn assemble(state: &mut StreamState, ev: &RawLogEvent, parsed: Parsed) -> Vec<Output> {
    state.last_time_ms = state.last_time_ms.max(ev.time_ms);
    let mut out = Vec::new();
    match parsed {
        Parsed::Start {
            request_id,
            version,
        } => {
            if version.is_some() {
                state.version = version;
            }
            state.request_id = Some(request_id);
            state.in_invocation = true;
            state.cold_start = std::mem::take(&mut state.init_pending);
            state.trace_id = None;
            state.function_arn = None;
        }
        Parsed::End { request_id } => {
            // END without START (stream rollover): later lines of this invocation still need it.
            if state.request_id.is_none() {
                state.request_id = Some(request_id);
            }
        }
        Parsed::InitStart {
            initialization_type,
            ..
        } => {
            // Provisioned and Managed Instances environments initialise ahead of traffic;
            // that is not a cold start of the request that eventually lands there.
            state.init_pending = !matches!(
                initialization_type.as_deref(),
                Some("provisioned-concurrency" | "lambda-managed-instances")
            );
        }
        Parsed::Report(report) => on_report(state, ev, report, &mut out),
        Parsed::InitReport {
            init_ms,
            phase,
            status,
            error_type,
        } => {
            on_init_report(state, ev, init_ms, phase, status, error_type, &mut out);
        }
        Parsed::Timings { ctx, timings } => {
            out.extend(absorb(state, &ctx));
            let base = Base::new(state, ev);
            let alias_hint = state
                .function_arn
                .as_deref()
                .and_then(arn_qualifier)
                .map(str::to_owned);
            for timing in timings {
                let mut event = base.event(
                    &timing.operation,
                    timing.source,
                    timing.seconds,
                    &timing.index.to_string(),
                );
                event.request_id = ctx.request_id.clone().or_else(|| state.request_id.clone());
                event.trace_id = ctx.trace_id.clone().or_else(|| state.trace_id.clone());
                event.cold_start = state.cold_start;
                if let Some(app) = &ctx.app_function {
                    event
                        .attributes
                        .push(("app_function".to_owned(), app.clone()));
                }
                out.push(Output::Event {
                    event,
                    alias_hint: alias_hint.clone(),
                });
            }
        }
        Parsed::Context(ctx) => out.extend(absorb(state, &ctx)),
        Parsed::Timeout { request_id, .. } => {
            let request_id = request_id.or_else(|| state.request_id.clone());
            if let Some(id) = &request_id {
                out.push(annotate(id, None, true, true, None));
            }
        }
        Parsed::RuntimeError { request_id, .. } => {
            let request_id = request_id.or_else(|| state.request_id.clone());
            if let Some(id) = &request_id {
                out.push(annotate(id, None, true, false, None));
            }
        }
        Parsed::Ignored(reason) => out.push(Output::Ignored(reason)),
        Parsed::Rejected { reason, detail } => out.push(Output::Rejected(Rejection {
            time_ms: ev.time_ms,
            source: Source::Logs.as_str().to_owned(),
            origin: origin(ev),
            reason,
            detail,
            raw: ev.message.to_owned(),
        })),
    }
    out
}

fn on_report(state: &mut StreamState, ev: &RawLogEvent, report: Report, out: &mut Vec<Output>) {
    let rid = report.request_id;
    if state.request_id.as_deref() != Some(rid.as_str()) {
        // REPORT without its START: nothing known about this invocation yet.
        state.request_id = Some(rid.clone());
        state.trace_id = None;
        state.function_arn = None;
        state.cold_start = false;
    }
    let status = report.status.as_deref().unwrap_or("").to_ascii_lowercase();
    let timeout = status == "timeout";
    let error = timeout || status == "error" || status == "failure";
    let cold = report.init_ms.is_some() || report.restore_ms.is_some();
    // `Sampled: false` means X-Ray kept no trace; joining on that id would find nothing.
    let new_trace = report
        .trace_id
        .filter(|_| report.sampled != Some(false))
        .filter(|t| state.trace_id.as_ref() != Some(t));
    let cold_changed = (cold != state.cold_start).then_some(cold);
    if new_trace.is_some() {
        state.trace_id.clone_from(&new_trace);
    }
    state.cold_start = cold;
    state.in_invocation = false;

    let base = Base::new(state, ev);
    let alias_hint = state
        .function_arn
        .as_deref()
        .and_then(arn_qualifier)
        .map(str::to_owned);
    let push = |operation: &str, ms: f64, suffix: &str, out: &mut Vec<Output>| {
        let mut event = base.event(operation, Source::Report, ms / 1000.0, suffix);
        event.request_id = Some(rid.clone());
        event.trace_id.clone_from(&state.trace_id);
        event.cold_start = cold;
        event.error = error;
        if let Some(mb) = report.memory_size_mb {
            event
                .attributes
                .push(("memory_size_mb".to_owned(), mb.to_string()));
        }
        if let Some(mb) = report.max_memory_mb {
            event
                .attributes
                .push(("max_memory_mb".to_owned(), mb.to_string()));
        }
        if let Some(status) = &report.status {
            event.attributes.push(("status".to_owned(), status.clone()));
        }
        if let Some(error_type) = &report.error_type {
            event
                .attributes
                .push(("error_type".to_owned(), error_type.clone()));
        }
        out.push(Output::Event {
            event,
            alias_hint: alias_hint.clone(),
        });
    };
    push(OP_DURATION, report.duration_ms, "duration", out);
    let init_already_sent =
        state.signalled_for.as_deref() == Some(rid.as_str()) && state.signalled_init;
    if let Some(ms) = report.init_ms.filter(|_| !init_already_sent) {
        push(OP_INIT, ms, "init", out);
    }
    if let Some(ms) = report.restore_ms {
        push(OP_RESTORE, ms, "restore", out);
    }

    if new_trace.is_some() || error || cold_changed.is_some() {
        out.push(annotate(&rid, new_trace, error, timeout, cold_changed));
    }
}

fn on_init_report(
    state: &mut StreamState,
    ev: &RawLogEvent,
    init_ms: Option<f64>,
    phase: Option<String>,
    status: Option<String>,
    error_type: Option<String>,
    out: &mut Vec<Output>,
) {
    // Only a suppressed init (`Phase: invoke`) runs inside an invocation, and only if its
    // START has been seen; `Phase: init` happens before any START and belongs to no request.
    let request_id = (phase.as_deref() == Some("invoke") && state.in_invocation)
        .then(|| state.request_id.clone())
        .flatten();
    let status_lc = status.as_deref().unwrap_or("").to_ascii_lowercase();
    let timeout = status_lc == "timeout";
    let error = timeout || status_lc == "error" || status_lc == "failure";
    if let Some(ms) = init_ms {
        let mut event =
            Base::new(state, ev).event(OP_INIT, Source::Report, ms / 1000.0, "init_report");
        event.request_id.clone_from(&request_id);
        event.trace_id = request_id.as_ref().and(state.trace_id.clone());
        event.cold_start = true;
        event.error = error;
        for (key, value) in [
            ("phase", phase),
            ("status", status),
            ("error_type", error_type),
        ] {
            if let Some(value) = value {
                event.attributes.push((key.to_owned(), value));
            }
        }
        let alias_hint = request_id
            .as_ref()
            .and(state.function_arn.as_deref())
            .and_then(arn_qualifier)
            .map(str::to_owned);
        out.push(Output::Event { event, alias_hint });
        if let Some(rid) = request_id {
            state.signalled_for = Some(rid);
            state.signalled_init = true;
        }
    }
}

/// Takes a line's context into the state; returns an annotation when it taught something
/// that events already stored for this request lack.
fn absorb(state: &mut StreamState, ctx: &LineContext) -> Option<Output> {
    if let Some(rid) = &ctx.request_id
        && state.request_id.as_ref() != Some(rid)
    {
        // A line naming another request means its START was missed (or the stream is
        // multi-concurrent): facts about the previous invocation no longer apply.
        state.request_id = Some(rid.clone());
        state.in_invocation = true;
        state.trace_id = None;
        state.function_arn = None;
        state.cold_start = false;
    }
    if let Some(arn) = &ctx.function_arn {
        state.function_arn = Some(arn.clone());
    }
    let new_trace = ctx
        .trace_id
        .clone()
        .filter(|t| state.trace_id.as_ref() != Some(t));
    if new_trace.is_some() {
        state.trace_id.clone_from(&new_trace);
    }
    let new_cold = ctx.cold_start.filter(|c| *c != state.cold_start);
    if let Some(cold) = new_cold {
        state.cold_start = cold;
    }
    if new_trace.is_none() && new_cold.is_none() {
        return None;
    }
    let rid = state.request_id.as_deref()?;
    Some(annotate(rid, new_trace, false, false, new_cold))
}

fn annotate(
    request_id: &str,
    trace_id: Option<String>,
    error: bool,
    timeout: bool,
    cold_start: Option<bool>,
) -> Output {
    Output::Annotate {
        request_id: request_id.to_owned(),
        trace_id,
        error,
        timeout,
        cold_start,
    }
}

fn origin(ev: &RawLogEvent) -> String {
    // `join` sizes the string once; `format!` costs several times more on this per-line path.
    [ev.log_group, ev.stream, ev.event_id].join("|")
}

/// The fields every event from one log event shares.
struct Base {
    time_ms: i64,
    function: String,
    version: Option<String>,
    key_prefix: String,
}

impl Base {
    fn new(state: &StreamState, ev: &RawLogEvent) -> Base {
        let name = parse_stream_name(ev.stream);
        // A custom log group can be shared by several functions; its stream names say which.
        let function = name
            .as_ref()
            .and_then(|n| n.function.clone())
            .unwrap_or_else(|| function_from_log_group(ev.log_group));
        let version = state.version.clone().or_else(|| name.map(|n| n.version));
        Base {
            time_ms: ev.time_ms,
            function,
            version,
            key_prefix: origin(ev),
        }
    }

    fn event(&self, operation: &str, source: Source, duration_s: f64, suffix: &str) -> TimingEvent {
        TimingEvent {
            time_ms: self.time_ms,
            env: String::new(),
            function: self.function.clone(),
            operation: operation.to_owned(),
            source,
            duration_s,
            request_id: None,
            trace_id: None,
            function_version: self.version.clone(),
            cold_start: false,
            error: false,
            idem_key: [self.key_prefix.as_str(), suffix].join("|"),
            attributes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
