//! Building a trace's spans from its documents: every entity checked and turned into a
//! [`Span`], exceptions and causes resolved, and the owning Lambda function, qualifier,
//! RequestId and cold start propagated along `parent_id` links, across documents.

use super::checks::{Core, cap, check_core};
use super::*;

/// What a span states about itself, before inheritance.
#[derive(Default)]
pub(super) struct Own {
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

pub(super) struct Builder<'a> {
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

impl<'a> Builder<'a> {
    pub(super) fn new(trace_id: &'a str, allow: &'a AllowList) -> Builder<'a> {
        Builder {
            trace_id,
            allow,
            fallback_ms: trace_id_epoch_ms(trace_id).unwrap_or(0),
            spans: Vec::new(),
            own: Vec::new(),
            rejections: Vec::new(),
            seen: HashMap::new(),
            exception_types: HashMap::new(),
            cause_refs: Vec::new(),
        }
    }

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

    pub(super) fn document(&mut self, segment_id: &str, document: &str) {
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

    pub(super) fn finish(mut self) -> ParsedTrace {
        for (index, id) in std::mem::take(&mut self.cause_refs) {
            if self.spans[index].cause_type.is_none() {
                self.spans[index].cause_type = self.exception_types.get(&id).cloned();
            }
        }
        self.inherit();
        let in_progress = self.spans.iter().any(|s| s.end_s.is_none());
        let open_segments = self.spans.iter().any(|s| s.end_s.is_none() && s.kind != SpanKind::Subsegment);
        ParsedTrace {
            trace_id: self.trace_id.to_string(),
            spans: self.spans,
            rejections: self.rejections,
            in_progress,
            open_segments,
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

