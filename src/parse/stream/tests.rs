//! The stream assembler's cases: every Lambda log format, invocation by invocation.

use super::super::parse_message;
use super::*;
use proptest::prelude::*;

const GROUP: &str = "/aws/lambda/GenerateDynamicScenarioHandler";
const STREAM: &str = "2026/03/02/[7]d6c10ebbd9cb48dba94a7d9b874b49bb";
const RID: &str = "814ba7cb-071e-4181-9a09-fa41db5bccad";
const TRACE: &str = "1-5d83c0ad-b8eb33a0b1de97d804fac890";

/// Runs messages through parse + assemble the way the logs source does.
fn run(
    state: &mut StreamState,
    group: &str,
    stream: &str,
    messages: &[(i64, &str)],
) -> Vec<Output> {
    let mut out = Vec::new();
    for (i, (time_ms, message)) in messages.iter().enumerate() {
        let event_id = format!("e{i}");
        let ev = RawLogEvent {
            log_group: group,
            stream,
            event_id: &event_id,
            time_ms: *time_ms,
            message,
        };
        out.extend(assemble(state, &ev, parse_message(message)));
    }
    out
}

fn events(out: &[Output]) -> Vec<&TimingEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

fn attr<'a>(event: &'a TimingEvent, key: &str) -> Option<&'a str> {
    event
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn text_stream_with_seed_lines() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1000,
                "INIT_START Runtime Version: python:3.12.mainlinev2.v27\tRuntime Version ARN: arn:aws:lambda:us-west-2::runtime:abc\n",
            ),
            (
                1200,
                "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: 7\n",
            ),
            (
                1201,
                "{\"level\": \"INFO\", \"event_type\": \"START\", \"function_name\": \"GDSH\", \"message\": \"Function started\"}\n",
            ),
            (
                4048,
                "{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 2.847}\n",
            ),
            (
                4326,
                "{\"level\": \"INFO\", \"event_type\": \"END\", \"function_name\": \"GDSH\", \"message\": \"Function completed\", \"total_function_duration\": 3.125}\n",
            ),
            (
                4327,
                "END RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad\n",
            ),
            (
                4327,
                "REPORT RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad\tDuration: 3127.87 ms\tBilled Duration: 3300 ms\tMemory Size: 128 MB\tMax Memory Used: 98 MB\tInit Duration: 170.40 ms\t\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true\n",
            ),
        ],
    );
    let evs = events(&out);
    let summary: Vec<(&str, f64, Source, &str)> = evs
        .iter()
        .map(|e| {
            (
                e.operation.as_str(),
                e.duration_s,
                e.source,
                e.idem_key.as_str(),
            )
        })
        .collect();
    let key = |i: usize, s: &str| format!("{GROUP}|{STREAM}|e{i}|{s}");
    assert_eq!(summary.len(), 4);
    assert_eq!(
        summary[0],
        (
            "BedrockCallDuration",
            2.847,
            Source::Logs,
            key(3, "0").as_str()
        )
    );
    assert_eq!(
        summary[1],
        (
            "total_function_duration",
            3.125,
            Source::Logs,
            key(4, "0").as_str()
        )
    );
    assert_eq!(summary[2].0, OP_DURATION);
    assert!((summary[2].1 - 3.12787).abs() < 1e-12);
    assert_eq!(summary[2].3, key(6, "duration"));
    assert_eq!(summary[3].0, OP_INIT);
    assert!((summary[3].1 - 0.1704).abs() < 1e-12);
    assert_eq!(summary[3].3, key(6, "init"));

    for e in &evs {
        assert_eq!(e.function, "GenerateDynamicScenarioHandler");
        assert_eq!(e.env, "");
        assert_eq!(e.function_version.as_deref(), Some("7"));
        assert_eq!(e.request_id.as_deref(), Some(RID));
        assert!(e.cold_start, "{e:?}");
        assert!(!e.error);
    }
    // Seed events were emitted before the trace id was known; REPORT's comes as an annotation.
    assert_eq!(evs[0].trace_id, None);
    assert_eq!(evs[0].time_ms, 4048);
    assert_eq!(attr(evs[0], "app_function"), Some("GDSH"));
    assert_eq!(evs[2].trace_id.as_deref(), Some(TRACE));
    assert_eq!(attr(evs[2], "memory_size_mb"), Some("128"));
    assert_eq!(attr(evs[2], "max_memory_mb"), Some("98"));
    assert_eq!(attr(evs[2], "status"), None);
    assert!(out.contains(&Output::Annotate {
        request_id: RID.into(),
        trace_id: Some(TRACE.into()),
        error: false,
        timeout: false,
        cold_start: None,
    }));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Ignored(_) | Output::Rejected(_)))
    );

    // The next, warm invocation in the same environment.
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                9000,
                "START RequestId: 9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11 Version: 7\n",
            ),
            (
                9500,
                "{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 0.4}\n",
            ),
            (
                9600,
                "REPORT RequestId: 9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11\tDuration: 600.00 ms\tBilled Duration: 600 ms\tMemory Size: 128 MB\tMax Memory Used: 99 MB\t\n",
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| !e.cold_start && e.trace_id.is_none()));
    assert_eq!(
        evs[0].request_id.as_deref(),
        Some("9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11")
    );
    assert!(!out.iter().any(|o| matches!(o, Output::Annotate { .. })));
    assert_eq!(state.last_time_ms, 9600);
}

#[test]
fn late_cold_start_is_annotated() {
    // No INIT_START seen (earlier poll window), so the seed event is stamped warm first.
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: 7",
            ),
            (
                2,
                "{\"event_type\": \"TIMING\", \"metric\": \"M\", \"value_sec\": 1}",
            ),
            (
                3,
                "REPORT RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad\tDuration: 3.0 ms\tInit Duration: 1.0 ms",
            ),
        ],
    );
    assert!(!events(&out)[0].cold_start);
    assert!(out.contains(&Output::Annotate {
        request_id: RID.into(),
        trace_id: None,
        error: false,
        timeout: false,
        cold_start: Some(true),
    }));
}

#[test]
fn timeout_after_report() {
    let mut state = StreamState::default();
    let rid = "7c9567b5-107b-4a6c-8798-0157ac21db52";
    let out = run(
        &mut state,
        "/aws/lambda/timeout-fn",
        "2020/06/09/[$LATEST]b249865adaaf4fad80f95f8ad09725b8",
        &[
            (
                1591714943150,
                "START RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52 Version: $LATEST\n",
            ),
            (
                1591714946151,
                "END RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\n",
            ),
            (
                1591714946151,
                "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: 3003.16 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 48 MB\tInit Duration: 127.02 ms\t\n",
            ),
            (
                1591714946151,
                "2020-06-09T15:02:26.150Z 7c9567b5-107b-4a6c-8798-0157ac21db52 Task timed out after 3.00 seconds\n\n",
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| !e.error && e.function == "timeout-fn"));
    assert_eq!(evs[0].function_version.as_deref(), Some("$LATEST"));
    assert!(out.contains(&Output::Annotate {
        request_id: rid.into(),
        trace_id: None,
        error: true,
        timeout: true,
        cold_start: None,
    }));
}

#[test]
fn status_timeout_report_then_timeout_line_is_one_timed_out_event() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "REPORT RequestId: 13222b1e-f16b-4550-89df-869ab0a9806d\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 1024 MB\tMax Memory Used: 64 MB\tStatus: timeout",
            ),
            (
                1,
                "2024-01-01T00:00:03.000Z 13222b1e-f16b-4550-89df-869ab0a9806d Task timed out after 3.00 seconds",
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert!(evs[0].error);
    assert_eq!(attr(evs[0], "status"), Some("timeout"));
}

#[test]
fn crash_and_oom() {
    let mut state = StreamState::default();
    let rid = "dde1acb5-7158-4518-9547-a5beae8996d2";
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: dde1acb5-7158-4518-9547-a5beae8996d2 Version: $LATEST",
            ),
            (
                2,
                "RequestId: dde1acb5-7158-4518-9547-a5beae8996d2 Error: Runtime exited with error: signal: killed",
            ),
            (2, "Runtime.ExitError"),
            (3, "END RequestId: dde1acb5-7158-4518-9547-a5beae8996d2"),
            (
                3,
                "REPORT RequestId: dde1acb5-7158-4518-9547-a5beae8996d2\tDuration: 35.50 ms\tBilled Duration: 36 ms\tMemory Size: 512 MB\tMax Memory Used: 512 MB\tStatus: error\tError Type: Runtime.OutOfMemory",
            ),
        ],
    );
    assert!(out.contains(&Output::Annotate {
        request_id: rid.into(),
        trace_id: None,
        error: true,
        timeout: false,
        cold_start: None,
    }));
    assert!(out.contains(&Output::Ignored("runtime_error_detail")));
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert!(evs[0].error);
    assert_eq!(attr(evs[0], "error_type"), Some("Runtime.OutOfMemory"));
    // The stream name says $LATEST, but START said so too; START wins either way.
    assert_eq!(evs[0].function_version.as_deref(), Some("$LATEST"));
}

#[test]
fn snapstart_and_init_report() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        "2024/01/01/[3]0123abcd",
        &[
            (
                1,
                "RESTORE_START Runtime Version: java:21.v20\tRuntime Version ARN: arn:x",
            ),
            (
                2,
                "START RequestId: 55bc566d-1e2c-11e7-93e6-6705ceb4c1cc Version: 3",
            ),
            (
                3,
                "REPORT RequestId: 55bc566d-1e2c-11e7-93e6-6705ceb4c1cc\tDuration: 469.40 ms\tBilled Duration: 500 ms\tMemory Size: 1024 MB\tMax Memory Used: 21 MB\tRestore Duration: 474.16 ms\tBilled Restore Duration: 75 ms",
            ),
        ],
    );
    let ops: Vec<(&str, &str)> = events(&out)
        .iter()
        .map(|e| {
            (
                e.operation.as_str(),
                e.idem_key.rsplit('|').next().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(ops, [(OP_DURATION, "duration"), (OP_RESTORE, "restore")]);
    assert!(events(&out).iter().all(|e| e.cold_start));
    assert!(!out.iter().any(|o| matches!(o, Output::Annotate { .. })));

    // Suppressed init that timed out inside an invocation; the REPORT does not repeat it.
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: a1b2c3d4-0000-4000-8000-000000000001 Version: 7",
            ),
            (
                2,
                "INIT_REPORT Init Duration: 45045.69 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown",
            ),
            (
                3,
                "REPORT RequestId: a1b2c3d4-0000-4000-8000-000000000001\tDuration: 45000.00 ms\tInit Duration: 45045.69 ms\tStatus: error\tError Type: Runtime.Unknown",
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.iter().filter(|e| e.operation == OP_INIT).count(), 1);
    assert_eq!(
        evs[0].request_id.as_deref(),
        Some("a1b2c3d4-0000-4000-8000-000000000001")
    );
    assert_eq!(attr(evs[0], "phase"), Some("invoke"));
    assert!(evs[0].error);

    // Init-phase failure: no request.
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[(
            1,
            "INIT_REPORT Init Duration: 10337.01 ms\tPhase: init\tStatus: timeout",
        )],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].request_id, None);
    assert!((evs[0].duration_s - 10.33701).abs() < 1e-9);
}

#[test]
fn powertools_context_gives_alias_and_trace() {
    let mut state = StreamState::default();
    let rid = "3d27ad41-a4a6-450c-8bca-3e251ab3259e";
    let out = run(
        &mut state,
        "/aws/lambda/pycon2024-InstrumentedFunction-hQQueiDV6k81",
        "2024/04/30/[$LATEST]0123456789abcdef0123456789abcdef",
        &[
            (
                1,
                "START RequestId: 3d27ad41-a4a6-450c-8bca-3e251ab3259e Version: $LATEST",
            ),
            (
                2,
                r#"{"level":"INFO","location":"handler:62","message":{"detail":"submit_user successful","user_id":"brian1"},"timestamp":"2024-04-30 17:45:15,695+0000","service":"instrumented-user-registration","cold_start":true,"function_name":"pycon2024-InstrumentedFunction-hQQueiDV6k81","function_memory_size":"256","function_arn":"arn:aws:lambda:us-east-1:408023262302:function:pycon2024-InstrumentedFunction-hQQueiDV6k81:Dev","function_request_id":"3d27ad41-a4a6-450c-8bca-3e251ab3259e","xray_trace_id":"1-66312e29-264cecca790badd378afa449"}"#,
            ),
            (
                3,
                r#"{"event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": 1.5}"#,
            ),
            (
                4,
                r#"{"_aws":{"Timestamp":4,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[["service"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"service":"s","Latency":[120,80]}"#,
            ),
            (
                5,
                "REPORT RequestId: 3d27ad41-a4a6-450c-8bca-3e251ab3259e\tDuration: 412.20 ms\tBilled Duration: 1142 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB\tInit Duration: 729.86 ms\nXRAY TraceId: 1-66312e29-264cecca790badd378afa449\tSegmentId: 29b2db393960f3d1\tSampled: true",
            ),
        ],
    );
    assert!(out.contains(&Output::Annotate {
        request_id: rid.into(),
        trace_id: Some("1-66312e29-264cecca790badd378afa449".into()),
        error: false,
        timeout: false,
        cold_start: Some(true),
    }));
    // REPORT repeats what Powertools said: no second annotation.
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Annotate { .. }))
            .count(),
        1
    );
    let hints: Vec<(&str, Option<&str>, Source, bool)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event { event, alias_hint } => Some((
                event.operation.as_str(),
                alias_hint.as_deref(),
                event.source,
                event.trace_id.is_some() && event.cold_start,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        hints,
        [
            ("BedrockCallDuration", Some("Dev"), Source::Logs, true),
            ("Latency", Some("Dev"), Source::Emf, true),
            ("Latency", Some("Dev"), Source::Emf, true),
            (OP_DURATION, Some("Dev"), Source::Report, true),
            (OP_INIT, Some("Dev"), Source::Report, true),
        ]
    );
    let keys: Vec<String> = events(&out).iter().map(|e| e.idem_key.clone()).collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "{keys:?}");
}

#[test]
fn json_mode_stream() {
    let mut state = StreamState::default();
    let rid = "79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36";
    let out = run(
        &mut state,
        "/custom/shared-group",
        "2026/10/08/tenner-notifier[$LATEST]22be53a8cfde4e68b844f8ec293b2543",
        &[
            (
                1,
                r#"{"time":"2026-10-08T07:30:27.768Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"nodejs:22.mainline.v122","functionName":"tenner-notifier","functionVersion":"$LATEST"}}"#,
            ),
            (
                2,
                r#"{"time":"2026-10-08T07:30:28.235Z","type":"platform.start","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","functionArn":"arn:aws:lambda:eu-central-1:825765399535:function:tenner-notifier","version":"$LATEST"}}"#,
            ),
            (
                3,
                r#"{"timestamp":"2026-10-08T07:30:29.000Z","level":"INFO","requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","message":"{\"level\":\"INFO\",\"event_type\":\"TIMING\",\"function_name\":\"TN\",\"metric\":\"WidgetCall\",\"value_sec\":0.75}"}"#,
            ),
            (
                4,
                r#"{"time":"2026-10-08T07:30:29.469Z","type":"platform.runtimeDone","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","status":"success","metrics":{"durationMs":1233.0}}}"#,
            ),
            (
                5,
                r#"{"time":"2026-10-08T07:30:29.470Z","type":"platform.report","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","metrics":{"durationMs":1233.96,"billedDurationMs":1698,"memorySizeMB":256,"maxMemoryUsedMB":123,"initDurationMs":463.512},"status":"success","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1-6630daf6-0123456789abcdef01234567;Parent=1111111111111111;Sampled=0"}}}"#,
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 3);
    assert!(
        evs.iter()
            .all(|e| e.function == "tenner-notifier" && e.request_id.as_deref() == Some(rid))
    );
    assert!(evs.iter().all(|e| e.cold_start && e.trace_id.is_none()));
    assert_eq!(attr(evs[1], "status"), Some("success"));
    assert!(!evs[1].error);
    // Sampled=0: the trace id names no trace, so nothing to annotate.
    assert!(!out.iter().any(|o| matches!(o, Output::Annotate { .. })));
}

#[test]
fn lines_before_any_start_and_rejections() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "{\"event_type\": \"TIMING\", \"metric\": \"InitWork\", \"value_sec\": 0.2}",
            ),
            (
                2,
                "{\"event_type\": \"TIMING\", \"metric\": \"X\", \"value_sec\": \"abc\"}",
            ),
            (3, "just text"),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (
            evs[0].request_id.as_ref(),
            evs[0].function_version.as_deref()
        ),
        (None, Some("7"))
    );
    let rejection = out.iter().find_map(|o| match o {
        Output::Rejected(r) => Some(r),
        _ => None,
    });
    let r = rejection.expect("a rejection");
    assert_eq!(
        (r.reason, r.source.as_str(), r.time_ms),
        ("bad_value", "logs", 2)
    );
    assert_eq!(r.origin, format!("{GROUP}|{STREAM}|e1"));
    assert_eq!(
        r.raw,
        "{\"event_type\": \"TIMING\", \"metric\": \"X\", \"value_sec\": \"abc\"}"
    );
    assert!(out.contains(&Output::Ignored("not_timing")));
}

#[test]
fn prefixed_request_id_overrides_position() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: 7",
            ),
            (
                2,
                "[INFO]\t2024-01-01T00:00:00.002Z\t9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11\t{\"event_type\": \"TIMING\", \"metric\": \"M\", \"value_sec\": 1}",
            ),
            (
                3,
                "{\"event_type\": \"TIMING\", \"metric\": \"M\", \"value_sec\": 2}",
            ),
        ],
    );
    let rids: Vec<Option<&str>> = events(&out)
        .iter()
        .map(|e| e.request_id.as_deref())
        .collect();
    assert_eq!(rids, [Some("9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11"); 2]);
}

#[test]
fn init_report_outside_an_invocation_has_no_request() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: 7",
            ),
            (
                2,
                "REPORT RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad\tDuration: 3.0 ms",
            ),
            (
                3,
                "INIT_REPORT Init Duration: 45045.69 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown",
            ),
        ],
    );
    let evs = events(&out);
    assert_eq!(evs.len(), 2);
    assert_eq!(
        (evs[1].operation.as_str(), evs[1].request_id.as_ref()),
        (OP_INIT, None)
    );
}

#[test]
fn provisioned_and_managed_inits_are_not_cold_starts() {
    for kind in ["provisioned-concurrency", "lambda-managed-instances"] {
        let mut state = StreamState::default();
        let init = format!(
            r#"{{"time":"t","type":"platform.initStart","record":{{"initializationType":"{kind}"}}}}"#
        );
        let out = run(
            &mut state,
            GROUP,
            STREAM,
            &[
                (1, init.as_str()),
                (
                    2,
                    r#"{"time":"t","type":"platform.start","record":{"requestId":"814ba7cb-071e-4181-9a09-fa41db5bccad","version":"7"}}"#,
                ),
                (
                    3,
                    "{\"event_type\": \"TIMING\", \"metric\": \"M\", \"value_sec\": 1}",
                ),
            ],
        );
        assert!(!events(&out)[0].cold_start, "{kind}");
    }
}

#[test]
fn lone_xray_line_and_latest_qualifier() {
    let mut state = StreamState::default();
    let out = run(
        &mut state,
        GROUP,
        STREAM,
        &[
            (
                1,
                "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: $LATEST",
            ),
            (
                2,
                r#"{"level":"INFO","location":"h:1","service":"s","message":"m","function_arn":"arn:aws:lambda:us-west-2:1:function:GenerateDynamicScenarioHandler:$LATEST"}"#,
            ),
            (
                3,
                "{\"event_type\": \"TIMING\", \"metric\": \"M\", \"value_sec\": 1}",
            ),
            (
                4,
                "XRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true",
            ),
            (
                5,
                r#"{"level": "INFO", "message": "ordinary JSON log", "user": "x"}"#,
            ),
        ],
    );
    let hints: Vec<Option<&str>> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event { alias_hint, .. } => Some(alias_hint.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(hints, [Some("$LATEST")]);
    assert!(out.contains(&Output::Annotate {
        request_id: RID.into(),
        trace_id: Some(TRACE.into()),
        error: false,
        timeout: false,
        cold_start: None,
    }));
    assert_eq!(out.last(), Some(&Output::Ignored("no_timing")));
}

#[test]
fn state_round_trips_through_json() {
    let mut state = StreamState::default();
    run(
        &mut state,
        GROUP,
        STREAM,
        &[(
            5,
            "START RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad Version: 7",
        )],
    );
    let text = serde_json::to_string(&state).expect("serialise");
    let back: StreamState = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, state);
    // Older checkpoints without the newer fields still load.
    let old: StreamState =
        serde_json::from_str(r#"{"request_id":"r-1","last_time_ms":3}"#).expect("old shape");
    assert_eq!(old.request_id.as_deref(), Some("r-1"));
    assert!(!old.init_pending);
}

#[test]
fn fixture_stream() {
    let raw = include_str!("../../../tests/fixtures/logs/stream_text_seed.json");
    let doc: serde_json::Value = serde_json::from_str(raw).expect("fixture is JSON");
    let group = doc["log_group"].as_str().unwrap_or_default();
    let stream = doc["log_stream"].as_str().unwrap_or_default();
    let mut state = StreamState::default();
    let mut out = Vec::new();
    for e in doc["events"].as_array().into_iter().flatten() {
        let ev = RawLogEvent {
            log_group: group,
            stream,
            event_id: e["eventId"].as_str().unwrap_or_default(),
            time_ms: e["timestamp"].as_i64().unwrap_or_default(),
            message: e["message"].as_str().unwrap_or_default(),
        };
        out.extend(assemble(&mut state, &ev, parse_message(ev.message)));
    }
    let evs = events(&out);
    let ops: Vec<&str> = evs.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "SecretsManagerDuration",
            "SalesforceAuthDuration",
            "BedrockCallDuration",
            "total_function_duration",
            OP_DURATION,
            OP_INIT,
            "SecretsManagerDuration",
            "BedrockCallDuration",
            "total_function_duration",
            OP_DURATION,
        ]
    );
    assert!(
        evs.iter().all(|e| e.function == "LexFulfillmentHandler"
            && e.function_version.as_deref() == Some("4"))
    );
    assert!(evs[..6].iter().all(|e| e.cold_start));
    assert!(evs[6..].iter().all(|e| !e.cold_start));
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Annotate { .. }))
            .count(),
        2
    );
}

fn arbitrary_parsed() -> impl Strategy<Value = Parsed> {
    let text = "[a-f0-9-]{0,12}";
    let opt = proptest::option::of(text);
    let ctx = (
        proptest::option::of(text),
        proptest::option::of(text),
        proptest::option::of("arn:aws:lambda:r:1:function:f(:[A-Za-z$]{0,6})?"),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(request_id, trace_id, function_arn, cold_start, is_start)| LineContext {
                request_id,
                trace_id,
                function_arn,
                cold_start,
                app_function: None,
                is_start,
                memory_size_mb: None,
            },
        );
    let timing =
        ("[A-Za-z]{1,8}", 0.0..1e6f64, any::<u32>()).prop_map(|(operation, seconds, index)| {
            super::super::AppTiming {
                operation,
                seconds,
                source: Source::Logs,
                index,
            }
        });
    prop_oneof![
        (text, opt.clone()).prop_map(|(request_id, version)| Parsed::Start {
            request_id,
            version
        }),
        text.prop_map(|request_id| Parsed::End { request_id }),
        (
            text,
            0.0..1e6f64,
            proptest::option::of(0.0..1e4f64),
            proptest::option::of(0.0..1e4f64),
            proptest::option::of("timeout|error|success|"),
            opt.clone(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(
                |(
                    request_id,
                    duration_ms,
                    init_ms,
                    restore_ms,
                    status,
                    trace_id,
                    sampled,
                    max_memory_mb,
                )| Parsed::Report(Report {
                    request_id,
                    duration_ms,
                    billed_ms: None,
                    memory_size_mb: None,
                    max_memory_mb,
                    init_ms,
                    restore_ms,
                    status,
                    error_type: None,
                    trace_id,
                    sampled,
                })
            ),
        (proptest::option::of("on-demand|provisioned-concurrency"),).prop_map(|(t,)| {
            Parsed::InitStart {
                initialization_type: t,
                runtime_version: None,
            }
        }),
        (
            proptest::option::of(0.0..1e6f64),
            proptest::option::of("init|invoke"),
            proptest::option::of("timeout|error")
        )
            .prop_map(|(init_ms, phase, status)| Parsed::InitReport {
                init_ms,
                phase,
                status,
                error_type: None
            }),
        (ctx.clone(), prop::collection::vec(timing, 0..4))
            .prop_map(|(ctx, timings)| Parsed::Timings { ctx, timings }),
        ctx.prop_map(Parsed::Context),
        (opt.clone(), 0.0..900.0f64).prop_map(|(request_id, after_s)| Parsed::Timeout {
            request_id,
            after_s
        }),
        (opt, any::<bool>())
            .prop_map(|(request_id, oom)| Parsed::RuntimeError { request_id, oom }),
        Just(Parsed::Ignored("not_timing")),
        ".{0,20}".prop_map(|detail| Parsed::Rejected {
            reason: "bad_value",
            detail
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn assemble_never_panics(
        steps in prop::collection::vec((any::<i64>(), arbitrary_parsed()), 0..40),
        group in ".{0,30}",
        stream in ".{0,40}",
    ) {
        let mut state = StreamState::default();
        for (i, (time_ms, parsed)) in steps.into_iter().enumerate() {
            let id = i.to_string();
            let ev = RawLogEvent { log_group: &group, stream: &stream, event_id: &id, time_ms, message: "m" };
            for o in assemble(&mut state, &ev, parsed) {
                if let Output::Event { event, .. } = o {
                    prop_assert!(event.duration_s.is_finite() && event.duration_s >= 0.0);
                    let prefix = format!("{group}|{stream}|{id}|");
                    prop_assert!(event.idem_key.starts_with(&prefix));
                }
            }
        }
    }

    #[test]
    fn assemble_never_panics_on_raw_lines(
        lines in prop::collection::vec(".{0,120}", 0..30),
        stream in prop_oneof![Just(STREAM.to_owned()), ".{0,40}"],
    ) {
        let mut state = StreamState::default();
        for (i, line) in lines.iter().enumerate() {
            let id = i.to_string();
            let ev = RawLogEvent { log_group: GROUP, stream: &stream, event_id: &id, time_ms: i as i64, message: line };
            let _ = assemble(&mut state, &ev, parse_message(line));
        }
    }

    #[test]
    fn stream_name_parser_never_panics(s in ".{0,80}") {
        let _ = parse_stream_name(&s);
        let _ = arn_qualifier(&s);
        let _ = function_from_log_group(&s);
    }
}
