//! The text-format platform lines and runtime prefixes, case by case.

use super::super::{LineContext, parse_message};
use super::*;

fn report(msg: &str) -> Report {
    match parse_message(msg) {
        Parsed::Report(r) => r,
        other => panic!("{msg:?} -> {other:?}"),
    }
}

fn base(request_id: &str, duration_ms: f64) -> Report {
    Report {
        request_id: request_id.to_owned(),
        duration_ms,
        billed_ms: None,
        memory_size_mb: None,
        max_memory_mb: None,
        init_ms: None,
        restore_ms: None,
        status: None,
        error_type: None,
        trace_id: None,
        sampled: None,
    }
}

#[test]
fn start_and_end_lines() {
    assert_eq!(
        parse_message(
            "START RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52 Version: $LATEST\n"
        ),
        Parsed::Start {
            request_id: "7c9567b5-107b-4a6c-8798-0157ac21db52".into(),
            version: Some("$LATEST".into())
        }
    );
    assert_eq!(
        parse_message("START RequestId: 9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11 Version: 12"),
        Parsed::Start {
            request_id: "9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11".into(),
            version: Some("12".into())
        }
    );
    assert_eq!(
        parse_message("START RequestId: 9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11"),
        Parsed::Start {
            request_id: "9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11".into(),
            version: None
        }
    );
    assert_eq!(
        parse_message("END RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\n"),
        Parsed::End {
            request_id: "7c9567b5-107b-4a6c-8798-0157ac21db52".into()
        }
    );
    assert!(matches!(
        parse_message("START RequestId:"),
        Parsed::Ignored("not_timing")
    ));
    assert_eq!(
        parse_message("START the engines"),
        Parsed::Ignored("not_timing")
    );
    assert_eq!(parse_message("END of file"), Parsed::Ignored("not_timing"));
    assert_eq!(
        parse_message("REPORT generated"),
        Parsed::Ignored("not_timing")
    );
}

#[test]
fn report_cold_with_init_duration() {
    let r = report(
        "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: 3003.16 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 48 MB\tInit Duration: 127.02 ms\t\n",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(3000.0),
            memory_size_mb: Some(128),
            max_memory_mb: Some(48),
            init_ms: Some(127.02),
            ..base("7c9567b5-107b-4a6c-8798-0157ac21db52", 3003.16)
        }
    );
}

#[test]
fn report_warm_published_version() {
    let r = report(
        "REPORT RequestId: 9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11\tDuration: 1204.11 ms\tBilled Duration: 1205 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(1205.0),
            memory_size_mb: Some(1024),
            max_memory_mb: Some(102),
            ..base("9c2d41f0-0b7e-4b8e-9a55-1f7c0e2d9a11", 1204.11)
        }
    );
}

#[test]
fn report_with_xray_suffix() {
    let r = report(
        "REPORT RequestId: 814ba7cb-071e-4181-9a09-fa41db5bccad\tDuration: 1711.87 ms\tBilled Duration: 1800 ms\tMemory Size: 128 MB\tMax Memory Used: 98 MB\t\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(1800.0),
            memory_size_mb: Some(128),
            max_memory_mb: Some(98),
            trace_id: Some("1-5d83c0ad-b8eb33a0b1de97d804fac890".into()),
            sampled: Some(true),
            ..base("814ba7cb-071e-4181-9a09-fa41db5bccad", 1711.87)
        }
    );
    // The 2024 capture: copied with double spaces, Init Duration right before the suffix.
    let r = report(
        "REPORT RequestId: 3d27ad41-a4a6-450c-8bca-3e251ab3259e  Duration: 412.20 ms  Billed Duration: 1142 ms  Memory Size: 256 MB  Max Memory Used: 80 MB  Init Duration: 729.86 ms\nXRAY TraceId: 1-66312e29-264cecca790badd378afa449  SegmentId: 29b2db393960f3d1  Sampled: false",
    );
    assert_eq!(r.init_ms, Some(729.86));
    assert_eq!(
        r.trace_id.as_deref(),
        Some("1-66312e29-264cecca790badd378afa449")
    );
    assert_eq!(r.sampled, Some(false));
}

#[test]
fn report_snapstart_restore() {
    let r = report(
        "REPORT RequestId: 55bc566d-1e2c-11e7-93e6-6705ceb4c1cc\tDuration: 469.40 ms\tBilled Duration: 500 ms\tMemory Size: 1024 MB\tMax Memory Used: 21 MB\tRestore Duration: 474.16 ms\tBilled Restore Duration: 75 ms",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(500.0),
            memory_size_mb: Some(1024),
            max_memory_mb: Some(21),
            restore_ms: Some(474.16),
            ..base("55bc566d-1e2c-11e7-93e6-6705ceb4c1cc", 469.40)
        }
    );
}

#[test]
fn report_status_suffixes() {
    let r = report(
        "REPORT RequestId: 13222b1e-f16b-4550-89df-869ab0a9806d\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 1024 MB\tMax Memory Used: 64 MB\tStatus: timeout",
    );
    assert_eq!(r.status.as_deref(), Some("timeout"));
    assert_eq!(r.duration_ms, 3000.0);
    assert_eq!(r.error_type, None);

    let r = report(
        "REPORT RequestId: 276ff3b9-1609-4ee7-a288-db3752630767\tDuration: 10935.70 ms\tBilled Duration: 10936 ms\tMemory Size: 1024 MB\tMax Memory Used: 1024 MB\tStatus: error\tError Type: Runtime.OutOfMemory\nXRAY TraceId: 1-6ac7d556-032906e375c910cf42cb849e\tSegmentId: 90cbc97f4ee64a7f\tSampled: true",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(10936.0),
            memory_size_mb: Some(1024),
            max_memory_mb: Some(1024),
            status: Some("error".into()),
            error_type: Some("Runtime.OutOfMemory".into()),
            trace_id: Some("1-6ac7d556-032906e375c910cf42cb849e".into()),
            sampled: Some(true),
            ..base("276ff3b9-1609-4ee7-a288-db3752630767", 10935.70)
        }
    );

    let r = report(
        "REPORT RequestId: 13222b1e-f16b-4550-89df-869ab0a9806d\tDuration: 3000.00 ms\tBilled Duration: 3477 ms\tMemory Size: 1024 MB\tMax Memory Used: 64 MB\tInit Duration: 476.75 ms\tStatus: timeout",
    );
    assert_eq!(
        (r.init_ms, r.status.as_deref()),
        (Some(476.75), Some("timeout"))
    );
}

#[test]
fn report_with_stray_spaces_and_old_billing() {
    // FilterLogEvents sample: stray space in `100 ms \t`, trailing `\t\n`.
    let r = report(
        "REPORT RequestId: 69594c41-8463-4f69-b9b4-ff6c49813475\tDuration: 89.34 ms\tBilled Duration: 100 ms \tMemory Size: 128 MB\tMax Memory Used: 111 MB\t\n",
    );
    assert_eq!(
        r,
        Report {
            billed_ms: Some(100.0),
            memory_size_mb: Some(128),
            max_memory_mb: Some(111),
            ..base("69594c41-8463-4f69-b9b4-ff6c49813475", 89.34)
        }
    );
    let r = report(
        "REPORT RequestId: 0a1b2c3d-0000-4000-8000-000000000001 Duration: 2.37 ms  Billed Duration: 427 ms  Memory Size: 128 MB  Max Memory Used: 40 MB  Init Duration: 423.98 ms",
    );
    assert_eq!(
        (r.duration_ms, r.billed_ms, r.init_ms),
        (2.37, Some(427.0), Some(423.98))
    );
    let r = report(
        "REPORT RequestId: 0a1b2c3d-0000-4000-8000-000000000002 Duration: 0.62 ms Billed Duration: 100 ms Memory Size: 128 MB Max Memory Used: 18 MB",
    );
    assert_eq!((r.duration_ms, r.max_memory_mb), (0.62, Some(18)));
}

#[test]
fn report_runtime_exit_example() {
    let r = report(
        "REPORT RequestId: dde1acb5-7158-4518-9547-a5beae8996d2\tDuration: 35.50 ms\tBilled Duration: 36 ms\tMemory Size: 512 MB\tMax Memory Used: 3 MB\t",
    );
    assert_eq!(
        (r.duration_ms, r.memory_size_mb, r.max_memory_mb),
        (35.5, Some(512), Some(3))
    );
}

#[test]
fn broken_reports_are_rejected() {
    for (line, reason) in [
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tBilled Duration: 3000 ms",
            "bad_report",
        ),
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: abc ms",
            "bad_report",
        ),
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: ms",
            "bad_report",
        ),
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: -3.0 ms",
            "negative_value",
        ),
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: NaN ms",
            "non_finite_value",
        ),
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: inf ms",
            "non_finite_value",
        ),
        // Truncated mid-field.
        (
            "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDurat",
            "bad_report",
        ),
    ] {
        match parse_message(line) {
            Parsed::Rejected { reason: got, .. } => assert_eq!(got, reason, "{line}"),
            other => panic!("{line:?} -> {other:?}"),
        }
    }
    // Optional fields that are garbage are dropped, the report is kept.
    let r = report(
        "REPORT RequestId: 7c9567b5-107b-4a6c-8798-0157ac21db52\tDuration: 3.0 ms\tBilled Duration: x ms\tMemory Size: big MB\tInit Duration: -1 ms",
    );
    assert_eq!(r, base("7c9567b5-107b-4a6c-8798-0157ac21db52", 3.0));
}

#[test]
fn init_lines() {
    assert_eq!(
        parse_message(
            "INIT_START Runtime Version: python:3.9.v18\tRuntime Version ARN: arn:aws:lambda:eu-central-1::runtime:edb5a058bfa782cb9cedc6d534ac8b8c193bc28e9a9879d9f5ebaaf619cd0fc0"
        ),
        Parsed::InitStart {
            initialization_type: None,
            runtime_version: Some("python:3.9.v18".into())
        }
    );
    assert_eq!(
        parse_message(
            "INIT_START Runtime Version: nodejs:22.mainline.v122\tRuntime Version ARN: arn:aws:lambda:eu-central-1::runtime:775dab0d"
        ),
        Parsed::InitStart {
            initialization_type: None,
            runtime_version: Some("nodejs:22.mainline.v122".into())
        }
    );
    assert_eq!(
        parse_message("INIT_REPORT Init Duration: 10337.01 ms\tPhase: init\tStatus: timeout"),
        Parsed::InitReport {
            init_ms: Some(10337.01),
            phase: Some("init".into()),
            status: Some("timeout".into()),
            error_type: None
        }
    );
    assert_eq!(
        parse_message(
            "INIT_REPORT Init Duration: 45045.69 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown"
        ),
        Parsed::InitReport {
            init_ms: Some(45045.69),
            phase: Some("invoke".into()),
            status: Some("error".into()),
            error_type: Some("Runtime.Unknown".into())
        }
    );
    assert!(matches!(
        parse_message("RESTORE_START Runtime Version: java:21.v20\tRuntime Version ARN: arn:x"),
        Parsed::InitStart {
            initialization_type: Some(_),
            ..
        }
    ));
    assert_eq!(
        parse_message("RESTORE_REPORT Restore Duration: 474.16 ms"),
        Parsed::Ignored("restore_report")
    );
    assert_eq!(
        parse_message(
            "EXTENSION\tName: AWSParametersAndSecretsLambdaExtension\tState: Ready\tEvents: [INVOKE,SHUTDOWN]"
        ),
        Parsed::Ignored("platform_other")
    );
}

#[test]
fn lone_xray_line() {
    assert_eq!(
        parse_message(
            "XRAY TraceId: 1-6ac7d556-032906e375c910cf42cb849e\tSegmentId: 90cbc97f4ee64a7f\tSampled: true"
        ),
        Parsed::Context(LineContext {
            trace_id: Some("1-6ac7d556-032906e375c910cf42cb849e".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        parse_message(
            "XRAY TraceId: 1-6ac7d556-032906e375c910cf42cb849e\tSegmentId: 90cbc97f4ee64a7f\tSampled: false"
        ),
        Parsed::Ignored("platform_other")
    );
}

#[test]
fn timeout_lines() {
    assert_eq!(
        parse_message(
            "2020-06-09T15:02:26.150Z 7c9567b5-107b-4a6c-8798-0157ac21db52 Task timed out after 3.00 seconds\n\n"
        ),
        Parsed::Timeout {
            request_id: Some("7c9567b5-107b-4a6c-8798-0157ac21db52".into()),
            after_s: 3.0
        }
    );
    assert_eq!(
        parse_message(
            "2020-06-09T15:02:26.150Z\t7c9567b5-107b-4a6c-8798-0157ac21db52\tTask timed out after 900.10 seconds"
        ),
        Parsed::Timeout {
            request_id: Some("7c9567b5-107b-4a6c-8798-0157ac21db52".into()),
            after_s: 900.1
        }
    );
    assert_eq!(
        parse_message("Task timed out after 3.00 seconds"),
        Parsed::Timeout {
            request_id: None,
            after_s: 3.0
        }
    );
    assert_eq!(
        parse_message("Task timed out after 3 retries"),
        Parsed::Ignored("not_timing")
    );
    assert_eq!(
        parse_message("the upstream Task timed out after 3.00 seconds again"),
        Parsed::Ignored("not_timing")
    );
    assert!(matches!(
        parse_message(
            "2020-06-09T15:02:26.150Z 7c9567b5-107b-4a6c-8798-0157ac21db52 Task timed out after x seconds"
        ),
        Parsed::Rejected {
            reason: "bad_value",
            ..
        }
    ));
}

#[test]
fn runtime_errors_and_oom() {
    assert_eq!(
        parse_message(
            "RequestId: dde1acb5-7158-4518-9547-a5beae8996d2 Error: Runtime exited with error: exit status 106"
        ),
        Parsed::RuntimeError {
            request_id: Some("dde1acb5-7158-4518-9547-a5beae8996d2".into()),
            oom: false
        }
    );
    assert_eq!(
        parse_message(
            "RequestId: dde1acb5-7158-4518-9547-a5beae8996d2 Error: Runtime exited with error: signal: killed\nRuntime.ExitError"
        ),
        Parsed::RuntimeError {
            request_id: Some("dde1acb5-7158-4518-9547-a5beae8996d2".into()),
            oom: true
        }
    );
    assert_eq!(
        parse_message(
            "RequestId: 4b3f1c2a-1111-4222-8333-944455556666 Process exited before completing request"
        ),
        Parsed::RuntimeError {
            request_id: Some("4b3f1c2a-1111-4222-8333-944455556666".into()),
            oom: false
        }
    );
    for line in [
        "fatal error: runtime: out of memory",
        "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "[ERROR] MemoryError\nTraceback (most recent call last):",
        "failed to allocate memory (NoMemoryError)",
        "Unhandled exception. System.OutOfMemoryException: Insufficient memory",
    ] {
        assert_eq!(
            parse_message(line),
            Parsed::RuntimeError {
                request_id: None,
                oom: true
            },
            "{line}"
        );
    }
    assert_eq!(
        parse_message(
            "[ERROR]\t2024-01-29T16:40:40.116Z\t8a1c2d3e-0000-4000-8000-000000000001\tMemoryError: cannot allocate"
        ),
        Parsed::RuntimeError {
            request_id: Some("8a1c2d3e-0000-4000-8000-000000000001".into()),
            oom: true
        }
    );
    assert_eq!(
        parse_message("RequestId: nope Error: x"),
        Parsed::Ignored("not_timing")
    );
}

#[test]
fn runtime_prefixes() {
    let p = split_runtime_prefix(
        "[INFO]\t2020-01-31T22:12:58.534Z\t1c8df7d3-xmpl-46da-9778-518e6eca8125\t## EVENT",
    )
    .unwrap();
    assert_eq!(
        p,
        RuntimePrefix {
            request_id: Some("1c8df7d3-xmpl-46da-9778-518e6eca8125"),
            level: "INFO",
            message: "## EVENT"
        }
    );
    let p = split_runtime_prefix(
        "[WARNING]\t2024-01-29T16:40:40.116Z\t\tMatplotlib created a temporary cache directory",
    )
    .unwrap();
    assert_eq!(p.request_id, None);
    assert_eq!(p.level, "WARNING");
    assert_eq!(p.message, "Matplotlib created a temporary cache directory");
    // Copied with spaces: the missing id is simply absent.
    let p = split_runtime_prefix("[WARNING] 2024-01-29T16:40:40.116Z   Matplotlib created")
        .unwrap();
    assert_eq!((p.request_id, p.message), (None, "Matplotlib created"));
    let p = split_runtime_prefix("2019-06-05T19:30:03.173Z\t4ce9340a-b765-490f-ad8a-02ab3415e2bf\tINFO\tEVENT\r{\r  \"key\": \"value\"\r}\n").unwrap();
    assert_eq!(p.request_id, Some("4ce9340a-b765-490f-ad8a-02ab3415e2bf"));
    assert_eq!(p.level, "INFO");
    assert!(p.message.starts_with("EVENT\r{"));
    let p = split_runtime_prefix("2025-02-10T07:37:11.523Z\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"Runtime.UserCodeSyntaxError\"}").unwrap();
    assert_eq!((p.request_id, p.level), (None, "ERROR"));
    assert!(split_runtime_prefix("[INFO] hello").is_none());
    assert!(
        split_runtime_prefix(
            "2020-06-09T15:02:26.150Z 7c9567b5-107b-4a6c-8798-0157ac21db52 Task timed out"
        )
        .is_none()
    );
    assert!(split_runtime_prefix("[").is_none());
    assert!(split_runtime_prefix("[é]").is_none());

    assert_eq!(
        parse_message(
            "[INFO]\t2020-01-31T22:12:58.534Z\t1c8df7d3-xmpl-46da-9778-518e6eca8125\t## EVENT"
        ),
        Parsed::Context(LineContext {
            request_id: Some("1c8df7d3-xmpl-46da-9778-518e6eca8125".into()),
            ..Default::default()
        })
    );
    assert_eq!(
        parse_message(
            "[WARNING]\t2024-01-29T16:40:40.116Z\t\tMatplotlib created a temporary cache directory"
        ),
        Parsed::Ignored("not_timing")
    );
    assert!(matches!(
        parse_message(
            "2019-06-05T19:30:03.173Z\t4ce9340a-b765-490f-ad8a-02ab3415e2bf\tINFO\tEVENT\r{\r  \"key\": \"value\"\r}\n"
        ),
        Parsed::Context(LineContext {
            request_id: Some(_),
            ..
        })
    ));
    assert_eq!(
        parse_message(
            "2025-02-10T07:37:11.523Z\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"Runtime.UserCodeSyntaxError\",\"errorMessage\":\"SyntaxError: Unexpected token\"}"
        ),
        Parsed::Ignored("not_timing")
    );
}

#[test]
fn tokeniser() {
    let f = fields(
        "RequestId: abc\tDuration: 1.5 ms\tMax  Memory Used: 3 MB \t\nXRAY TraceId: t\tSampled: true",
    );
    let keys: Vec<&str> = f.iter().map(|f| f.key).collect();
    assert_eq!(
        keys,
        [
            "RequestId",
            "Duration",
            "Max  Memory Used",
            "TraceId",
            "Sampled"
        ]
    );
    assert_eq!(field(&f, "Max Memory Used"), Some("3"));
    assert_eq!(field(&f, "TraceId"), Some("t"));
    assert_eq!(field(&f, "Memory Used"), None);
    assert!(fields("").is_empty());
    assert!(fields("Duration:").is_empty());
    assert!(fields(": : :").len() <= 1);
}
