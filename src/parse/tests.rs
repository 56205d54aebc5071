//! The message classifier over every format, the fixtures, and arbitrary input.

use super::*;
use proptest::prelude::*;

/// Every example message in `tests/fixtures/logs/messages.json`, for mutation testing.
pub(crate) fn fixture_messages() -> Vec<String> {
    let raw = include_str!("../../tests/fixtures/logs/messages.json");
    let entries: Vec<Value> = serde_json::from_str(raw).expect("fixture file is JSON");
    entries
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn check_invariants(parsed: &Parsed) {
    if let Parsed::Timings { timings, .. } = parsed {
        assert!(!timings.is_empty());
        for (i, t) in timings.iter().enumerate() {
            assert!(t.seconds.is_finite() && t.seconds >= 0.0, "{t:?}");
            assert!(t.seconds.is_sign_positive(), "{t:?}");
            assert_eq!(t.index as usize, i);
            assert!(!t.operation.is_empty());
            assert!(matches!(t.source, Source::Logs | Source::Emf));
        }
    }
    if let Parsed::Report(r) = parsed {
        for x in [Some(r.duration_ms), r.billed_ms, r.init_ms, r.restore_ms]
            .into_iter()
            .flatten()
        {
            assert!(x.is_finite() && x >= 0.0, "{r:?}");
        }
    }
    if let Parsed::InitReport {
        init_ms: Some(x), ..
    } = parsed
    {
        assert!(x.is_finite() && *x >= 0.0);
    }
    if let Parsed::Timeout { after_s, .. } = parsed {
        assert!(after_s.is_finite() && *after_s >= 0.0);
    }
}

#[test]
fn too_large_is_rejected_before_any_parsing() {
    let mut line = String::from(
        r#"{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": 2.847, "pad": ""#,
    );
    line.push_str(&"x".repeat(300 * 1024));
    line.push_str("\"}");
    match parse_message(&line) {
        Parsed::Rejected { reason, .. } => assert_eq!(reason, "too_large"),
        other => panic!("{other:?}"),
    }
    let plain = "y".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        parse_message(&plain),
        Parsed::Rejected {
            reason: "too_large",
            ..
        }
    ));
    let at_limit = "y".repeat(MAX_MESSAGE_BYTES);
    assert_eq!(parse_message(&at_limit), Parsed::Ignored("not_timing"));
}

#[test]
fn blank_and_plain_text_are_ignored() {
    assert_eq!(parse_message(""), Parsed::Ignored("empty"));
    assert_eq!(parse_message(" \n\t"), Parsed::Ignored("empty"));
    for line in [
        "[AWS Parameters and Secrets Lambda Extension] 2024/04/11 10:00:00 PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL is info",
        "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code.",
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'lambda_handler': No module named 'x'\nTraceback (most recent call last):",
        "hello world",
        "[1, 2, 3]",
        "{not json at all",
        "{}",
        r#"{"level": "INFO", "message": "hello"}"#,
    ] {
        let parsed = parse_message(line);
        assert!(
            matches!(parsed, Parsed::Ignored(_)),
            "{line:?} -> {parsed:?}"
        );
    }
    assert_eq!(
        parse_message("Runtime.ExitError"),
        Parsed::Ignored("runtime_error_detail")
    );
    assert_eq!(
        parse_message("Runtime.ExitError\n"),
        Parsed::Ignored("runtime_error_detail")
    );
}

#[test]
fn trace_ids_are_normalised() {
    let want = Some("1-5d83c0ad-b8eb33a0b1de97d804fac890".to_owned());
    for raw in [
        "1-5d83c0ad-b8eb33a0b1de97d804fac890",
        " 1-5D83C0AD-B8EB33A0B1DE97D804FAC890 ",
        "Root=1-5d83c0ad-b8eb33a0b1de97d804fac890;Parent=31255c3b19bd3637;Sampled=1",
        "Parent=31255c3b19bd3637;Root=1-5d83c0ad-b8eb33a0b1de97d804fac890;Sampled=0;Lineage=a87bd80c:1",
        "5d83c0adb8eb33a0b1de97d804fac890",
    ] {
        assert_eq!(normalize_trace_id(raw), want, "{raw}");
    }
    for raw in [
        "",
        "1-5d83c0ad",
        "2-5d83c0ad-b8eb33a0b1de97d804fac890",
        "1-5d83c0ad-b8eb33a0b1de97d804fac89",
        "1-5d83c0ad-b8eb33a0b1de97d804fac890-00",
        "Parent=31255c3b19bd3637;Sampled=1",
        "1-zzzzzzzz-b8eb33a0b1de97d804fac890",
        "5d83c0adb8eb33a0b1de97d804fac89g",
    ] {
        assert_eq!(normalize_trace_id(raw), None, "{raw}");
    }
    assert_eq!(header_sampled("Root=1-a-b;Parent=c;Sampled=1"), Some(true));
    assert_eq!(header_sampled("Root=1-a-b;Sampled=0"), Some(false));
    assert_eq!(header_sampled("Root=1-a-b;Sampled=?"), None);
    assert_eq!(header_sampled("Root=1-a-b"), None);
}

#[test]
fn lenient_json_quotes_only_bare_non_finite_tokens() {
    assert_eq!(quote_non_finite(r#"{"a": 1}"#), None);
    assert_eq!(
        quote_non_finite(r#"{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN Infinity"}"#)
            .as_deref(),
        Some(r#"{"a": "NaN", "b": ["Infinity", "-Infinity"], "c": "NaN Infinity"}"#)
    );
    assert_eq!(
        quote_non_finite(r#"{"s": "esc \" NaN", "v": NaN, "é": "ü"}"#).as_deref(),
        Some(r#"{"s": "esc \" NaN", "v": "NaN", "é": "ü"}"#)
    );
    assert!(parse_json_lenient(r#"{"v": NaN}"#).is_ok());
    assert!(parse_json_lenient(r#"{"v": NaN"#).is_err());
}

#[test]
fn number_values() {
    use serde_json::json;
    let ok = |v: Value| number_value(&v, "value_sec").map_err(|b| b.reason);
    assert_eq!(ok(json!(2.847)), Ok(2.847));
    assert_eq!(ok(json!(3)), Ok(3.0));
    assert_eq!(ok(json!("2.847")), Ok(2.847));
    assert_eq!(ok(json!(" 1e-3 ")), Ok(0.001));
    assert_eq!(ok(json!(-0.0)), Ok(0.0));
    assert!(ok(json!(-0.0)).unwrap().is_sign_positive());
    assert_eq!(ok(json!("abc")), Err("bad_value"));
    assert_eq!(ok(json!(null)), Err("bad_value"));
    assert_eq!(ok(json!(true)), Err("bad_value"));
    assert_eq!(ok(json!([1.0])), Err("bad_value"));
    assert_eq!(ok(json!(-1.5)), Err("negative_value"));
    assert_eq!(ok(json!("NaN")), Err("non_finite_value"));
    assert_eq!(ok(json!("-Infinity")), Err("non_finite_value"));
    assert_eq!(json_u64(&json!("256")), Some(256));
    assert_eq!(json_u64(&json!(256)), Some(256));
    assert_eq!(json_u64(&json!(12.0)), Some(12));
    assert_eq!(json_u64(&json!(12.5)), None);
    assert_eq!(json_u64(&json!(-1)), None);
    assert_eq!(truncate("héllo", 2), "h");
}

#[test]
fn every_fixture_parses_without_breaking_invariants() {
    let fixtures = fixture_messages();
    assert!(
        fixtures.len() >= 40,
        "fixture corpus too small: {}",
        fixtures.len()
    );
    for m in &fixtures {
        check_invariants(&parse_message(m));
    }
}

/// One edit applied to a fixture line.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    Truncate(usize),
}

fn apply(line: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for edit in edits {
        let len = chars.len();
        match *edit {
            Edit::Insert(at, c) => chars.insert(at % (len + 1), c),
            Edit::Delete(at) if len > 0 => {
                chars.remove(at % len);
            }
            Edit::Replace(at, c) if len > 0 => chars[at % len] = c,
            Edit::Truncate(at) => chars.truncate(at % (len + 1)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec![
            '{',
            '}',
            '[',
            ']',
            '"',
            '\\',
            ':',
            ',',
            '\t',
            '\n',
            '\r',
            ' ',
            '-',
            '.',
            'e',
            'E',
            '0',
            '9',
            'N',
            'I',
            '=',
            ';',
            'é',
            '\u{0}',
            '\u{1F600}'
        ]),
        any::<char>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), interesting_char()).prop_map(|(a, c)| Edit::Insert(a, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), interesting_char()).prop_map(|(a, c)| Edit::Replace(a, c)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        check_invariants(&parse_message(&s));
    }

    #[test]
    fn never_panics_on_json_ish_strings(s in r#"[{}\[\]":, 0-9a-zA-Z_.\-\t\n\\]{0,200}"#) {
        check_invariants(&parse_message(&s));
    }

    #[test]
    fn never_panics_on_mutated_fixtures(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let fixtures = fixture_messages();
        let line = &fixtures[pick.index(fixtures.len())];
        check_invariants(&parse_message(&apply(line, &edits)));
    }

    #[test]
    fn seed_timing_values_are_finite_and_non_negative(
        value in prop_oneof![
            any::<f64>().prop_map(|x| format!("{x}")),
            any::<f64>().prop_map(|x| format!("\"{x}\"")),
            any::<f64>().prop_map(|x| format!("{x:e}")),
            Just("NaN".to_owned()),
            Just("-Infinity".to_owned()),
            "[-+0-9.eE]{1,12}",
        ],
    ) {
        let line = format!(
            r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": {value}}}"#
        );
        let parsed = parse_message(&line);
        check_invariants(&parsed);
        prop_assert!(matches!(parsed, Parsed::Timings { .. } | Parsed::Rejected { .. }), "{parsed:?}");
    }
}
