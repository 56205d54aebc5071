//! The X-Ray parser against real and generated documents (`tests/fixtures/xray/`); the
//! fixture readers are shared with the critical path's and the poller's tests.

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
    // 70 KB: over PutTraceSegments' 64 KiB, well within what BatchGetTraces may return.
    assert_eq!(by_name(&t, "Huge").len(), 1);
}

/// A Step Functions execution as BatchGetTraces assembles it: 515 states in one document
/// of about 64 KiB. Every state is kept; a document over the cap is refused whole.
#[test]
fn assembled_documents_up_to_a_mebibyte_are_parsed_and_larger_ones_counted() {
    let allow = AllowList::default();
    let trace_id = "1-66f0c580-0123456789abcdef01234567";
    let states: Vec<serde_json::Value> = (0..515)
        .map(|i| {
            let start = 1727000000.0 + i as f64 * 0.01;
            serde_json::json!({"id": format!("{i:016x}"), "name": format!("State{i}"), "start_time": start, "end_time": start + 0.005,
                "aws": {"function_arn": "arn:aws:lambda:us-east-1:123456789012:function:AtlasEngineStep:Dev"}})
        })
        .collect();
    let doc = serde_json::json!({"id": "f000000000000000", "name": "AtlasEngineWorkflow", "trace_id": trace_id,
        "origin": "AWS::StepFunctions::StateMachine", "start_time": 1727000000.0, "end_time": 1727000006.0, "subsegments": states})
    .to_string();
    assert!(doc.len() > 64 * 1024 && doc.len() < MAX_DOCUMENT_BYTES, "{} bytes", doc.len());
    let t = parse_trace(trace_id, &[("f000000000000000".into(), doc)], &allow);
    assert!(t.rejections.is_empty(), "{:?}", t.rejections.first());
    assert_eq!(t.spans.len(), 516);

    let huge = format!(r#"{{"id":"a","name":"n","start_time":1727000000,"end_time":1727000001,"metadata":{{"blob":"{}"}}}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
    let t = parse_trace(trace_id, &[("a".into(), huge)], &allow);
    assert!(t.spans.is_empty());
    assert_eq!(t.rejections.iter().map(|r| r.reason).collect::<Vec<_>>(), ["too_large"]);
}

/// Step Functions leaves states marked `in_progress` in executions that ended: such a
/// trace is finished once its segments ended a settle period ago; an open segment never is.
#[test]
fn open_subsegments_in_closed_segments_settle() {
    let allow = AllowList::default();
    let trace_id = "1-66f0c580-0123456789abcdef01234567";
    let closed = r#"{"id":"s1","name":"Workflow","origin":"AWS::StepFunctions::StateMachine","start_time":1727000000,"end_time":1727000002,
        "subsegments":[{"id":"x1","name":"Done","start_time":1727000000,"end_time":1727000001},
                       {"id":"x2","name":"StillOpen","start_time":1727000001,"in_progress":true}]}"#;
    let t = parse_trace(trace_id, &[("s1".into(), closed.into())], &allow);
    assert!(t.in_progress && !t.open_segments);
    assert!(!t.finished_by(1_727_000_001_999), "segments not yet ended a settle period ago");
    assert!(t.finished_by(1_727_000_002_000));
    let open = r#"{"id":"s2","name":"Workflow","origin":"AWS::StepFunctions::StateMachine","start_time":1727000000,"in_progress":true,
        "subsegments":[{"id":"y1","name":"Done","start_time":1727000000,"end_time":1727000001}]}"#;
    let t = parse_trace(trace_id, &[("s2".into(), open.into())], &allow);
    assert!(t.open_segments && !t.finished_by(i64::MAX));
    let done = parse_fixture("sdk_gdsh_cold_standalone.json");
    assert!(!done.in_progress && done.finished_by(0));
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
