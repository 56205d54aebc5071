//! Lambda's JSON log format (`LoggingConfig.LogFormat=JSON`): the `{"time","type","record"}`
//! platform records (`platform.start`, `platform.report`, `platform.runtimeDone`,
//! `platform.initStart`, `platform.initReport`, ...) and the facts this module reads from
//! JSON-mode application records (`{"timestamp","level","message","requestId"}`).
//!
//! Every metric except `durationMs` is optional (Managed Instances report only that), numbers
//! may arrive as `12.0` or as strings, and unknown `type` values are ignored, not rejected.

use serde_json::{Map, Value};

use super::{
    Bad, Parsed, Report, header_sampled, json_str, json_u64, normalize_trace_id, number_value,
    rejected,
};

/// Parses a record whose `type` starts with `platform.`.
pub fn parse_platform(kind: &str, obj: &Map<String, Value>) -> Parsed {
    let record = obj.get("record").and_then(Value::as_object);
    match kind {
        "platform.start" => match record.and_then(|r| json_str(r, "requestId")) {
            Some(id) => Parsed::Start {
                request_id: id.to_owned(),
                version: record
                    .and_then(|r| json_str(r, "version"))
                    .map(str::to_owned),
            },
            None => missing_request_id(kind),
        },
        "platform.runtimeDone" => match record.and_then(|r| json_str(r, "requestId")) {
            Some(id) => Parsed::End {
                request_id: id.to_owned(),
            },
            None => missing_request_id(kind),
        },
        "platform.report" => match record {
            Some(record) => parse_report(record).unwrap_or_else(Parsed::from),
            None => rejected(
                "bad_report",
                "platform.report without a record object".to_owned(),
            ),
        },
        "platform.initStart" | "platform.restoreStart" => {
            let field = |k: &str| record.and_then(|r| json_str(r, k)).map(str::to_owned);
            Parsed::InitStart {
                initialization_type: field("initializationType")
                    .or_else(|| (kind == "platform.restoreStart").then(|| "snap-start".to_owned())),
                runtime_version: field("runtimeVersion"),
            }
        }
        "platform.initReport" => {
            let field = |k: &str| record.and_then(|r| json_str(r, k)).map(str::to_owned);
            let init_ms = record
                .and_then(|r| r.get("metrics"))
                .and_then(Value::as_object)
                .and_then(|m| m.get("durationMs"))
                .and_then(|v| number_value(v, "durationMs").ok());
            Parsed::InitReport {
                init_ms,
                phase: field("phase"),
                status: field("status"),
                error_type: field("errorType"),
            }
        }
        "platform.logsDropped" => Parsed::Ignored("logs_dropped"),
        _ => Parsed::Ignored("platform_other"),
    }
}

fn missing_request_id(kind: &str) -> Parsed {
    rejected(
        "bad_platform_line",
        format!("{kind} without record.requestId"),
    )
}

fn parse_report(record: &Map<String, Value>) -> Result<Parsed, Bad> {
    let request_id = json_str(record, "requestId").ok_or_else(|| Bad {
        reason: "bad_report",
        detail: "platform.report without record.requestId".to_owned(),
    })?;
    let metrics = record
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or_else(|| Bad {
            reason: "bad_report",
            detail: format!("platform.report {request_id} without record.metrics"),
        })?;
    let duration = metrics.get("durationMs").ok_or_else(|| Bad {
        reason: "bad_report",
        detail: format!("platform.report {request_id} without metrics.durationMs"),
    })?;
    let duration_ms = number_value(duration, "durationMs")?;
    // Optional metrics that are malformed are dropped; the required duration is what matters.
    let optional_ms = |k: &str| metrics.get(k).and_then(|v| number_value(v, k).ok());
    let tracing = record
        .get("tracing")
        .and_then(Value::as_object)
        .and_then(|t| json_str(t, "value"));
    Ok(Parsed::Report(Report {
        request_id: request_id.to_owned(),
        duration_ms,
        billed_ms: optional_ms("billedDurationMs"),
        memory_size_mb: metrics.get("memorySizeMB").and_then(json_u64),
        max_memory_mb: metrics.get("maxMemoryUsedMB").and_then(json_u64),
        init_ms: optional_ms("initDurationMs"),
        restore_ms: optional_ms("restoreDurationMs"),
        status: json_str(record, "status").map(str::to_owned),
        error_type: json_str(record, "errorType").map(str::to_owned),
        trace_id: tracing.and_then(normalize_trace_id),
        sampled: tracing.and_then(header_sampled),
    }))
}

/// The `requestId` of a JSON-mode application record.
pub fn record_request_id(obj: &Map<String, Value>) -> Option<String> {
    json_str(obj, "requestId").and_then(super::clean_request_id)
}

/// A JSON-mode record of an uncaught out-of-memory error (`"errorType": "MemoryError"`).
pub fn is_oom_record(obj: &Map<String, Value>) -> bool {
    json_str(obj, "errorType").is_some_and(super::lambda_text::is_oom)
}

#[cfg(test)]
mod tests {
    use super::super::{AppTiming, LineContext, parse_message};
    use super::*;
    use crate::model::Source;

    fn report(msg: &str) -> Report {
        match parse_message(msg) {
            Parsed::Report(r) => r,
            other => panic!("{msg:?} -> {other:?}"),
        }
    }

    #[test]
    fn captured_2026_sequence() {
        assert_eq!(
            parse_message(
                r#"{"time":"2026-10-08T07:30:27.768Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"nodejs:22.mainline.v122","runtimeVersionArn":"arn:aws:lambda:eu-central-1::runtime:775dab0d...","functionName":"tenner-notifier","functionVersion":"$LATEST","instanceId":"2026/10/08/tenner-notifier[$LATEST]22be53a8cfde4e68b844f8ec293b2543","instanceMaxMemory":268435456}}"#
            ),
            Parsed::InitStart {
                initialization_type: Some("on-demand".into()),
                runtime_version: Some("nodejs:22.mainline.v122".into())
            }
        );
        assert_eq!(
            parse_message(
                r#"{"time":"2026-10-08T07:30:28.235Z","type":"platform.start","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","functionArn":"arn:aws:lambda:eu-central-1:825765399535:function:tenner-notifier","version":"$LATEST"}}"#
            ),
            Parsed::Start {
                request_id: "79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36".into(),
                version: Some("$LATEST".into())
            }
        );
        // The capture abbreviates the inner JSON with `...`, so it is not a timing and not JSON.
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2026-10-08T07:30:29.443Z","level":"ERROR","requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","message":"{\"level\":\"ERROR\",\"message\":\"Widget update failed\",...}"}"#
            ),
            Parsed::Ignored("no_timing")
        );
        assert_eq!(
            report(
                r#"{"time":"2026-10-08T07:30:29.470Z","type":"platform.report","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","metrics":{"durationMs":1233.96,"billedDurationMs":1698,"memorySizeMB":256,"maxMemoryUsedMB":123,"initDurationMs":463.512},"status":"success"}}"#
            ),
            Report {
                request_id: "79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36".into(),
                duration_ms: 1233.96,
                billed_ms: Some(1698.0),
                memory_size_mb: Some(256),
                max_memory_mb: Some(123),
                init_ms: Some(463.512),
                restore_ms: None,
                status: Some("success".into()),
                error_type: None,
                trace_id: None,
                sampled: None,
            }
        );
    }

    #[test]
    fn runtime_done_is_end() {
        assert_eq!(
            parse_message(
                r#"{"time":"2024-05-20T16:29:45.019Z","type":"platform.runtimeDone","record":{"requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","status":"success","spans":[{"name":"responseLatency","start":"2024-05-20T16:29:45.008Z","durationMs":2.215},{"name":"responseDuration","start":"2024-05-20T16:29:45.010Z","durationMs":0.056},{"name":"runtimeOverhead","start":"2024-05-20T16:29:45.010Z","durationMs":8.686}],"metrics":{"durationMs":11.185,"producedBytes":40}}}"#
            ),
            Parsed::End {
                request_id: "4b142fc3-17b8-4cdb-a46b-a8dbe7918715".into()
            }
        );
    }

    #[test]
    fn report_variants() {
        // Managed Instances: only durationMs, plus spans.
        let r = report(
            r#"{"time":"2025-12-01T10:00:00.000Z","type":"platform.report","record":{"requestId":"5e0c6a33-1b55-4a9a-9f0e-0c3f3b1e2d10","metrics":{"durationMs":52.3},"spans":[{"name":"responseLatency","start":"2025-12-01T10:00:00.000Z","durationMs":50.1}],"status":"success"}}"#,
        );
        assert_eq!(
            (r.duration_ms, r.billed_ms, r.memory_size_mb, r.init_ms),
            (52.3, None, None, None)
        );

        // billedDurationMs as 12.0, tracing header, timeout with errorType.
        let r = report(
            r#"{"time":"2024-01-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"a1b2c3d4-0000-4000-8000-000000000001","metrics":{"durationMs":3000.0,"billedDurationMs":12.0,"memorySizeMB":"1024","maxMemoryUsedMB":64.0},"tracing":{"spanId":"29b2db393960f3d1","type":"X-Amzn-Trace-Id","value":"Root=1-66312e29-264cecca790badd378afa449;Parent=29b2db393960f3d1;Sampled=1"},"status":"timeout","errorType":"Sandbox.Timedout"}}"#,
        );
        assert_eq!(r.billed_ms, Some(12.0));
        assert_eq!((r.memory_size_mb, r.max_memory_mb), (Some(1024), Some(64)));
        assert_eq!(
            r.trace_id.as_deref(),
            Some("1-66312e29-264cecca790badd378afa449")
        );
        assert_eq!(r.sampled, Some(true));
        assert_eq!(r.status.as_deref(), Some("timeout"));
        assert_eq!(r.error_type.as_deref(), Some("Sandbox.Timedout"));

        // SnapStart.
        let r = report(
            r#"{"time":"2024-01-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"55bc566d-1e2c-11e7-93e6-6705ceb4c1cc","metrics":{"durationMs":469.4,"billedDurationMs":500,"memorySizeMB":1024,"maxMemoryUsedMB":21,"restoreDurationMs":474.16,"billedRestoreDurationMs":75},"status":"error","errorType":"Runtime.OutOfMemory"}}"#,
        );
        assert_eq!(r.restore_ms, Some(474.16));
        assert_eq!(r.error_type.as_deref(), Some("Runtime.OutOfMemory"));

        // Optional garbage dropped; string duration accepted.
        let r = report(
            r#"{"type":"platform.report","record":{"requestId":"r-1-2-3-4-5","metrics":{"durationMs":"5.5","initDurationMs":-1,"billedDurationMs":"x"}}}"#,
        );
        assert_eq!((r.duration_ms, r.init_ms, r.billed_ms), (5.5, None, None));
    }

    #[test]
    fn broken_platform_records() {
        for (line, reason) in [
            (
                r#"{"type":"platform.report","record":{"requestId":"r-1","metrics":{"billedDurationMs":3}}}"#,
                "bad_report",
            ),
            (
                r#"{"type":"platform.report","record":{"requestId":"r-1"}}"#,
                "bad_report",
            ),
            (
                r#"{"type":"platform.report","record":{"metrics":{"durationMs":3}}}"#,
                "bad_report",
            ),
            (r#"{"type":"platform.report"}"#, "bad_report"),
            (
                r#"{"type":"platform.report","record":{"requestId":"r-1","metrics":{"durationMs":-3}}}"#,
                "negative_value",
            ),
            (
                r#"{"type":"platform.report","record":{"requestId":"r-1","metrics":{"durationMs":NaN}}}"#,
                "non_finite_value",
            ),
            (
                r#"{"type":"platform.report","record":{"requestId":"r-1","metrics":{"durationMs":"abc"}}}"#,
                "bad_value",
            ),
            (
                r#"{"type":"platform.start","record":{}}"#,
                "bad_platform_line",
            ),
            (r#"{"type":"platform.runtimeDone"}"#, "bad_platform_line"),
            (
                r#"{"time":"2026-10-08T07:30:29.470Z","type":"platform.report","record":{"requestId":"79b5e81f-9cdd-4145-b1f6-7c50ef8a2a36","metrics":{"durationMs":1233.96,"bill"#,
                "invalid_json",
            ),
        ] {
            match parse_message(line) {
                Parsed::Rejected { reason: got, .. } => assert_eq!(got, reason, "{line}"),
                other => panic!("{line} -> {other:?}"),
            }
        }
    }

    #[test]
    fn other_platform_types() {
        assert_eq!(
            parse_message(
                r#"{"time":"2024-05-20T16:29:45.019Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"timeout","metrics":{"durationMs":10001.2}}}"#
            ),
            Parsed::InitReport {
                init_ms: Some(10001.2),
                phase: Some("init".into()),
                status: Some("timeout".into()),
                error_type: None
            }
        );
        assert_eq!(
            parse_message(
                r#"{"time":"2024-05-20T16:29:45.019Z","type":"platform.logsDropped","record":{"reason":"Consumer seems to have fallen behind","droppedRecords":12,"droppedBytes":3400}}"#
            ),
            Parsed::Ignored("logs_dropped")
        );
        for kind in [
            "platform.initRuntimeDone",
            "platform.extension",
            "platform.telemetrySubscription",
            "platform.restoreReport",
            "platform.somethingNew",
        ] {
            let line =
                format!(r#"{{"time":"2024-05-20T16:29:45.019Z","type":"{kind}","record":{{}}}}"#);
            assert_eq!(
                parse_message(&line),
                Parsed::Ignored("platform_other"),
                "{kind}"
            );
        }
        assert!(matches!(
            parse_message(r#"{"time":"t","type":"platform.restoreStart","record":{}}"#),
            Parsed::InitStart {
                initialization_type: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn app_records() {
        // Python formatter record with no timing.
        assert_eq!(
            parse_message(
                r#"{"timestamp": "2024-05-20T16:29:45.009Z", "level": "INFO", "message": "Inside the handler", "logger": "root", "requestId": "4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#
            ),
            Parsed::Ignored("no_timing")
        );
        let want_ctx = LineContext {
            request_id: Some("4b142fc3-17b8-4cdb-a46b-a8dbe7918715".into()),
            app_function: Some("GDSH".into()),
            ..Default::default()
        };
        let want = Parsed::Timings {
            ctx: want_ctx.clone(),
            timings: vec![AppTiming {
                operation: "BedrockCallDuration".into(),
                seconds: 2.847,
                source: Source::Logs,
                index: 0,
            }],
        };
        // logging.info(json.dumps(...)) in JSON mode: double-encoded string.
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","message":"{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 2.847}","logger":"root","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#
            ),
            want
        );
        // Node console.log(JSON.stringify(...)) is the same shape without `logger`.
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715","message":"{\"level\":\"INFO\",\"event_type\":\"TIMING\",\"function_name\":\"GDSH\",\"metric\":\"BedrockCallDuration\",\"value_sec\":2.847}"}"#
            ),
            want
        );
        // message as an object.
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","message":{"level":"INFO","event_type":"TIMING","function_name":"GDSH","metric":"BedrockCallDuration","value_sec":2.847},"requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#
            ),
            want
        );
        // logging with extra= puts the keys at the top level.
        assert_eq!(
            parse_message(
                r#"{"timestamp": "2024-05-20T16:29:45.009Z", "level": "INFO", "message": "timing", "logger": "root", "requestId": "4b142fc3-17b8-4cdb-a46b-a8dbe7918715", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": 2.847}"#
            ),
            want
        );
        // END inside a message string.
        assert!(matches!(
            parse_message(r#"{"timestamp":"t","level":"INFO","message":"{\"level\": \"INFO\", \"event_type\": \"END\", \"function_name\": \"GDSH\", \"message\": \"Function completed\", \"total_function_duration\": 3.125}","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#),
            Parsed::Timings { ref timings, .. } if timings[0].operation == "total_function_duration" && timings[0].seconds == 3.125
        ));
        // START inside a message string.
        assert!(matches!(
            parse_message(
                r#"{"timestamp":"t","level":"INFO","message":"{\"level\": \"INFO\", \"event_type\": \"START\", \"function_name\": \"GDSH\", \"message\": \"Function started\"}","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#
            ),
            Parsed::Context(LineContext {
                is_start: true,
                request_id: Some(_),
                ..
            })
        ));
        // Truncated inner JSON that is clearly timing.
        assert!(matches!(
            parse_message(
                r#"{"timestamp":"t","level":"INFO","message":"{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"metric\": \"Bedr","requestId":"4b142fc3-17b8-4cdb-a46b-a8dbe7918715"}"#
            ),
            Parsed::Rejected {
                reason: "invalid_json",
                ..
            }
        ));
        // Bad value inside a message string.
        assert!(matches!(
            parse_message(
                r#"{"timestamp":"t","level":"INFO","message":"{\"event_type\": \"TIMING\", \"metric\": \"X\", \"value_sec\": \"abc\"}","requestId":"r-1-2"}"#
            ),
            Parsed::Rejected {
                reason: "bad_value",
                ..
            }
        ));
        // Timeout and OOM records.
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2024-01-01T00:00:03.001Z","level":"ERROR","requestId":"a1b2c3d4-0000-4000-8000-000000000001","message":"Task timed out after 3.00 seconds"}"#
            ),
            Parsed::Timeout {
                request_id: Some("a1b2c3d4-0000-4000-8000-000000000001".into()),
                after_s: 3.0
            }
        );
        assert_eq!(
            parse_message(
                r#"{"timestamp":"2024-01-01T00:00:03.001Z","level":"ERROR","message":"","errorType":"MemoryError","errorMessage":"","requestId":"a1b2c3d4-0000-4000-8000-000000000001","stackTrace":[]}"#
            ),
            Parsed::RuntimeError {
                request_id: Some("a1b2c3d4-0000-4000-8000-000000000001".into()),
                oom: true
            }
        );
    }
}
