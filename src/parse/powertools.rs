//! Powertools for AWS Lambda logger lines: recognising them and reading their invocation
//! context (`function_request_id`, `xray_trace_id`, `function_arn`, `cold_start`,
//! `function_memory_size`). Timings inside them are found by [`super::seed`]; the dispatch is
//! in [`super::parse_message`].
//!
//! Field shapes drift between releases and languages: `cold_start` and
//! `function_memory_size` come as booleans/numbers or strings, old releases used
//! `lambda_request_id`/`lambda_function_arn`, and `message` may be an object.

use serde_json::{Map, Value};

use super::{LineContext, clean_request_id, json_str, json_u64, normalize_trace_id};

/// Keys only Powertools (or a logger imitating it) writes.
const MARKERS: [&str; 7] = [
    "cold_start",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "lambda_request_id",
    "lambda_function_arn",
    "function_memory_size",
];

/// True when the object looks like a Powertools logger line.
pub fn is_powertools(obj: &Map<String, Value>) -> bool {
    MARKERS.iter().any(|k| obj.contains_key(*k))
        || (obj.contains_key("service") && obj.contains_key("location"))
}

/// Reads the invocation context a Powertools line carries; unknown or malformed fields are `None`.
pub fn context(obj: &Map<String, Value>) -> LineContext {
    LineContext {
        request_id: json_str(obj, "function_request_id")
            .or_else(|| json_str(obj, "lambda_request_id"))
            .and_then(clean_request_id),
        trace_id: json_str(obj, "xray_trace_id").and_then(normalize_trace_id),
        function_arn: json_str(obj, "function_arn")
            .or_else(|| json_str(obj, "lambda_function_arn"))
            .filter(|arn| arn.starts_with("arn:"))
            .map(str::to_owned),
        cold_start: obj.get("cold_start").and_then(bool_value),
        app_function: None,
        is_start: false,
        memory_size_mb: obj.get("function_memory_size").and_then(json_u64),
    }
}

fn bool_value(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" | "True" | "TRUE" | "1" => Some(true),
            "false" | "False" | "FALSE" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AppTiming, Parsed, parse_message};
    use super::*;
    use crate::model::Source;

    const PYCON: &str = r#"{"level":"INFO","location":"handler:62","message":{"detail":"submit_user successful","user_id":"brian1"},"timestamp":"2024-04-30 17:45:15,695+0000","service":"instrumented-user-registration","cold_start":true,"function_name":"pycon2024-InstrumentedFunction-hQQueiDV6k81","function_memory_size":"256","function_arn":"arn:aws:lambda:us-east-1:408023262302:function:pycon2024-InstrumentedFunction-hQQueiDV6k81","function_request_id":"3d27ad41-a4a6-450c-8bca-3e251ab3259e","xray_trace_id":"1-66312e29-264cecca790badd378afa449"}"#;

    fn pycon_ctx() -> LineContext {
        LineContext {
            request_id: Some("3d27ad41-a4a6-450c-8bca-3e251ab3259e".into()),
            trace_id: Some("1-66312e29-264cecca790badd378afa449".into()),
            function_arn: Some(
                "arn:aws:lambda:us-east-1:408023262302:function:pycon2024-InstrumentedFunction-hQQueiDV6k81".into(),
            ),
            cold_start: Some(true),
            app_function: None,
            is_start: false,
            memory_size_mb: Some(256),
        }
    }

    #[test]
    fn pycon_line_is_context() {
        assert_eq!(parse_message(PYCON), Parsed::Context(pycon_ctx()));
    }

    #[test]
    fn alias_arns_and_drifting_types() {
        let line = r#"{"level":"INFO","location":"finish:10","message":"done","timestamp":"2021-12-12T21:21:08.921Z","service":"biometrics","cold_start":"false","function_name":"mob-async-backend-finish-biometric-session","function_memory_size":512,"function_arn":"arn:aws:lambda:eu-west-1:123456789012:function:mob-async-backend-finish-biometric-session:live","function_request_id":"c6af9ac6-7b61-11e6-9a41-93e812345678"}"#;
        match parse_message(line) {
            Parsed::Context(ctx) => {
                assert_eq!(ctx.cold_start, Some(false));
                assert_eq!(ctx.memory_size_mb, Some(512));
                assert!(ctx.function_arn.unwrap().ends_with(":live"));
                assert_eq!(ctx.trace_id, None);
            }
            other => panic!("{other:?}"),
        }
        // Old key names, .NET level spelling.
        let line = r#"{"level":"Information","message":"hi","lambda_function_name":"f","lambda_function_arn":"arn:aws:lambda:us-east-1:1:function:f:featureDev","lambda_request_id":"c6af9ac6-7b61-11e6-9a41-93e812345678","cold_start":1}"#;
        match parse_message(line) {
            Parsed::Context(ctx) => {
                assert_eq!(
                    ctx.request_id.as_deref(),
                    Some("c6af9ac6-7b61-11e6-9a41-93e812345678")
                );
                assert_eq!(ctx.cold_start, Some(true));
                assert!(ctx.function_arn.unwrap().ends_with(":featureDev"));
            }
            other => panic!("{other:?}"),
        }
        // A trace id in header form, a bogus memory size.
        let line = r#"{"level":"INFO","location":"h:1","service":"s","message":"m","xray_trace_id":"Root=1-66312e29-264cecca790badd378afa449;Parent=29b2db393960f3d1;Sampled=1","function_memory_size":"lots"}"#;
        match parse_message(line) {
            Parsed::Context(ctx) => {
                assert_eq!(
                    ctx.trace_id.as_deref(),
                    Some("1-66312e29-264cecca790badd378afa449")
                );
                assert_eq!(ctx.memory_size_mb, None);
            }
            other => panic!("{other:?}"),
        }
        // Powertools without inject_lambda_context carries no invocation facts.
        assert_eq!(
            parse_message(
                r#"{"level":"INFO","location":"h:1","message":"m","timestamp":"2021-05-03 11:47:12,494+0200","service":"payment","sampling_rate":0.1}"#
            ),
            Parsed::Ignored("no_timing")
        );
    }

    #[test]
    fn timings_inside_powertools_lines() {
        let timing = vec![AppTiming {
            operation: "BedrockCallDuration".into(),
            seconds: 2.847,
            source: Source::Logs,
            index: 0,
        }];
        let want = |app: Option<&str>| Parsed::Timings {
            ctx: LineContext {
                app_function: app.map(str::to_owned),
                ..pycon_ctx()
            },
            timings: timing.clone(),
        };
        // message as an object holding the seed keys.
        let line = PYCON.replace(
            r#"{"detail":"submit_user successful","user_id":"brian1"}"#,
            r#"{"event_type":"TIMING","function_name":"GDSH","metric":"BedrockCallDuration","value_sec":2.847}"#,
        );
        assert_eq!(parse_message(&line), want(Some("GDSH")));
        // message as a JSON string (logger.info(json.dumps(...))).
        let line = PYCON.replace(
            r#"{"detail":"submit_user successful","user_id":"brian1"}"#,
            r#""{\"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 2.847}""#,
        );
        assert_eq!(parse_message(&line), want(Some("GDSH")));
        // extra= keys at the top level next to Powertools' own function_name.
        let line = PYCON.replace(
            r#""message":{"detail":"submit_user successful","user_id":"brian1"}"#,
            r#""message":"timing","metric":"BedrockCallDuration","value_sec":"2.847""#,
        );
        assert_eq!(
            parse_message(&line),
            want(Some("pycon2024-InstrumentedFunction-hQQueiDV6k81"))
        );
        // A non-timing JSON string message keeps the context.
        let line = PYCON.replace(
            r#"{"detail":"submit_user successful","user_id":"brian1"}"#,
            r#""{\"detail\": \"x\"}""#,
        );
        assert_eq!(parse_message(&line), Parsed::Context(pycon_ctx()));
    }
}
