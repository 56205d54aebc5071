//! The application's own timing objects, as the seed prints them with `print(json.dumps(...))`:
//! `{"event_type": "TIMING", "metric": ..., "value_sec": ...}`, `{"event_type": "END", ...,
//! "total_function_duration": ...}` and `{"event_type": "START", ...}`.
//!
//! This module reads those keys from one JSON object wherever the object was found (a raw
//! line, behind a runtime prefix, inside a JSON-mode or Powertools `message`); finding the
//! object is [`super::parse_message`]'s job. Values drift in type (`"2.847"`, `3`, `null`,
//! `1e-3`, bare `NaN`), so every value goes through [`super::number_value`].

use serde_json::{Map, Value};

use super::{AppTiming, Bad, json_str, number_value, truncate};
use crate::model::Source;

/// The operation name an END line's total is stored under.
pub const TOTAL_OPERATION: &str = "total_function_duration";

/// Longest operation name accepted; longer ones are garbage, not metric names.
const MAX_OPERATION_LEN: usize = 200;

/// What [`collect`] saw besides timings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// `event_type` was `START`.
    pub is_start: bool,
    /// The `function_name` of an object that carried seed keys (an abbreviation like `GDSH`).
    pub app_function: Option<String>,
}

/// Appends the object's timings to `out` (numbering them by position in `out`).
///
/// Any object holding `value_sec` is a timing, with or without `event_type`, because
/// loggers given `extra=` keys drop or rename the surrounding fields.
pub(crate) fn collect(obj: &Map<String, Value>, out: &mut Vec<AppTiming>) -> Result<Found, Bad> {
    let event_type = json_str(obj, "event_type");
    let is = |want: &str| event_type.is_some_and(|t| t.eq_ignore_ascii_case(want));

    match obj.get("value_sec") {
        Some(value) => {
            let operation = operation_name(obj)?;
            let seconds = number_value(value, "value_sec")?;
            push(out, operation, seconds);
        }
        None if is("TIMING") => {
            return Err(Bad {
                reason: "bad_value",
                detail: "TIMING line without value_sec".to_owned(),
            });
        }
        None => {}
    }
    if let Some(value) = obj.get(TOTAL_OPERATION) {
        let seconds = number_value(value, TOTAL_OPERATION)?;
        push(out, TOTAL_OPERATION.to_owned(), seconds);
    }

    let has_seed_keys = event_type.is_some() || !out.is_empty();
    Ok(Found {
        is_start: is("START"),
        app_function: has_seed_keys
            .then(|| json_str(obj, "function_name").map(str::to_owned))
            .flatten(),
    })
}

fn operation_name(obj: &Map<String, Value>) -> Result<String, Bad> {
    match obj.get("metric") {
        Some(Value::String(name)) => {
            let name = name.trim();
            if name.is_empty()
                || name.len() > MAX_OPERATION_LEN
                || name.chars().any(char::is_control)
            {
                return Err(Bad {
                    reason: "bad_metric",
                    detail: format!("unusable metric name {:?}", truncate(name, 64)),
                });
            }
            Ok(name.to_owned())
        }
        Some(_) => Err(Bad {
            reason: "bad_metric",
            detail: "metric is not a string".to_owned(),
        }),
        None => Err(Bad {
            reason: "bad_metric",
            detail: "value_sec without metric".to_owned(),
        }),
    }
}

fn push(out: &mut Vec<AppTiming>, operation: String, seconds: f64) {
    // Lines hold a handful of timings; saturating keeps the index total without a panic path.
    let index = u32::try_from(out.len()).unwrap_or(u32::MAX);
    out.push(AppTiming {
        operation,
        seconds,
        source: Source::Logs,
        index,
    });
}

#[cfg(test)]
mod tests {
    use super::super::{LineContext, Parsed, parse_message};
    use super::*;

    const START: &str = r#"{"level": "INFO", "event_type": "START", "function_name": "GDSH", "message": "Function started"}"#;
    const TIMING: &str = r#"{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": 2.847}"#;
    const END: &str = r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "message": "Function completed", "total_function_duration": 3.125}"#;

    fn gdsh() -> LineContext {
        LineContext {
            app_function: Some("GDSH".into()),
            ..Default::default()
        }
    }

    fn one(operation: &str, seconds: f64) -> Vec<AppTiming> {
        vec![AppTiming {
            operation: operation.into(),
            seconds,
            source: Source::Logs,
            index: 0,
        }]
    }

    fn reason(msg: &str) -> &'static str {
        match parse_message(msg) {
            Parsed::Rejected { reason, .. } => reason,
            other => panic!("{msg} -> {other:?}"),
        }
    }

    #[test]
    fn the_seeds_three_lines() {
        assert_eq!(
            parse_message(START),
            Parsed::Context(LineContext {
                is_start: true,
                ..gdsh()
            })
        );
        assert_eq!(
            parse_message(TIMING),
            Parsed::Timings {
                ctx: gdsh(),
                timings: one("BedrockCallDuration", 2.847)
            }
        );
        assert_eq!(
            parse_message(END),
            Parsed::Timings {
                ctx: gdsh(),
                timings: one("total_function_duration", 3.125)
            }
        );
        assert_eq!(
            parse_message(
                r#"{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": 9.234}"#
            ),
            Parsed::Timings {
                ctx: gdsh(),
                timings: one("BedrockCallDuration", 9.234)
            }
        );
        // print() output keeps its newline; compact separators parse the same.
        assert_eq!(parse_message(&format!("{TIMING}\n")), parse_message(TIMING));
        assert_eq!(
            parse_message(
                r#"{"level":"INFO","event_type":"TIMING","function_name":"GDSH","metric":"BedrockCallDuration","value_sec":2.847}"#
            ),
            parse_message(TIMING)
        );
    }

    #[test]
    fn every_known_metric_name() {
        for (abbr, metric) in [
            ("LFH", "BedrockCallDuration"),
            ("LFH", "SecretsManagerDuration"),
            ("LFH", "SalesforceAuthDuration"),
            ("IOCH", "DynamoDBPutDuration"),
            ("IOCH", "ConnectCallDuration"),
            ("IOCH", "DynamoDBUpdateDuration"),
            ("ULH", "SalesforceUpdateDuration"),
        ] {
            let line = format!(
                r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "{abbr}", "metric": "{metric}", "value_sec": 0.5}}"#
            );
            assert_eq!(
                parse_message(&line),
                Parsed::Timings {
                    ctx: LineContext {
                        app_function: Some(abbr.into()),
                        ..Default::default()
                    },
                    timings: one(metric, 0.5)
                }
            );
        }
    }

    #[test]
    fn behind_runtime_prefixes() {
        let rid = "1c8df7d3-xmpl-46da-9778-518e6eca8125";
        let with_rid = LineContext {
            request_id: Some(rid.into()),
            ..gdsh()
        };
        assert_eq!(
            parse_message(&format!(
                "[INFO]\t2020-01-31T22:12:58.534Z\t{rid}\t{TIMING}\n"
            )),
            Parsed::Timings {
                ctx: with_rid.clone(),
                timings: one("BedrockCallDuration", 2.847)
            }
        );
        // Empty request id during INIT.
        assert_eq!(
            parse_message(&format!("[INFO]\t2020-01-31T22:12:58.534Z\t\t{TIMING}\n")),
            Parsed::Timings {
                ctx: gdsh(),
                timings: one("BedrockCallDuration", 2.847)
            }
        );
        // Copied with spaces.
        assert_eq!(
            parse_message(&format!("[INFO] 2020-01-31T22:12:58.534Z {rid} {END}")),
            Parsed::Timings {
                ctx: with_rid.clone(),
                timings: one("total_function_duration", 3.125)
            }
        );
        assert_eq!(
            parse_message(&format!(
                "2019-06-05T19:30:03.173Z\t{rid}\tINFO\t{TIMING}\n"
            )),
            Parsed::Timings {
                ctx: with_rid.clone(),
                timings: one("BedrockCallDuration", 2.847)
            }
        );
        assert_eq!(
            parse_message(&format!(
                "2019-06-05T19:30:03.173Z\tundefined\tINFO\t{TIMING}"
            )),
            Parsed::Timings {
                ctx: gdsh(),
                timings: one("BedrockCallDuration", 2.847)
            }
        );
        assert_eq!(
            parse_message(&format!("[INFO]\t2020-01-31T22:12:58.534Z\t{rid}\t{START}")),
            Parsed::Context(LineContext {
                is_start: true,
                ..with_rid.clone()
            })
        );
        assert_eq!(
            reason(&format!(
                "[INFO]\t2020-01-31T22:12:58.534Z\t{rid}\t{{\"event_type\": \"TIMING\", \"metric\": \"X\", \"value_sec\": 2."
            )),
            "invalid_json"
        );
        // A prefixed JSON line without timing still tells which invocation is running.
        assert_eq!(
            parse_message(&format!(
                "[INFO]\t2020-01-31T22:12:58.534Z\t{rid}\t{{\"status\": \"ok\"}}"
            )),
            Parsed::Context(LineContext {
                request_id: Some(rid.into()),
                ..Default::default()
            })
        );
    }

    #[test]
    fn type_drift() {
        let line = |v: &str| {
            format!(
                r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": {v}}}"#
            )
        };
        let ok = |v: &str| match parse_message(&line(v)) {
            Parsed::Timings { timings, .. } => timings[0].seconds,
            other => panic!("{v} -> {other:?}"),
        };
        assert_eq!(ok(r#""2.847""#), 2.847);
        assert_eq!(ok("3"), 3.0);
        assert_eq!(ok("0"), 0.0);
        assert_eq!(ok("1e-3"), 0.001);
        assert_eq!(ok("2.5E+1"), 25.0);
        assert_eq!(ok(r#"" 4.5 ""#), 4.5);
        assert_eq!(ok(r#""1e2""#), 100.0);
        for (v, want) in [
            ("null", "bad_value"),
            (r#""abc""#, "bad_value"),
            (r#""""#, "bad_value"),
            ("true", "bad_value"),
            ("[2.8]", "bad_value"),
            ("{}", "bad_value"),
            ("-1.0", "negative_value"),
            (r#""-0.5""#, "negative_value"),
            ("NaN", "non_finite_value"),
            ("Infinity", "non_finite_value"),
            ("-Infinity", "non_finite_value"),
            (r#""NaN""#, "non_finite_value"),
            (r#""inf""#, "non_finite_value"),
            ("1e999", "invalid_json"),
        ] {
            assert_eq!(reason(&line(v)), want, "{v}");
        }
        assert_eq!(
            reason(
                r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "message": "Function completed", "total_function_duration": NaN}"#
            ),
            "non_finite_value"
        );
        assert_eq!(
            reason(
                r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "total_function_duration": "slow"}"#
            ),
            "bad_value"
        );
    }

    #[test]
    fn missing_or_odd_keys() {
        assert_eq!(
            reason(
                r#"{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "value_sec": 1.0}"#
            ),
            "bad_metric"
        );
        assert_eq!(
            reason(r#"{"event_type": "TIMING", "metric": "", "value_sec": 1.0}"#),
            "bad_metric"
        );
        assert_eq!(
            reason(r#"{"event_type": "TIMING", "metric": 7, "value_sec": 1.0}"#),
            "bad_metric"
        );
        assert_eq!(
            reason(r#"{"event_type": "TIMING", "metric": "a\nb", "value_sec": 1.0}"#),
            "bad_metric"
        );
        assert_eq!(
            reason(r#"{"event_type": "TIMING", "function_name": "GDSH", "metric": "X"}"#),
            "bad_value"
        );
        // END without a total, or an unknown event type: JSON without timing.
        assert_eq!(
            parse_message(
                r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "message": "Function completed"}"#
            ),
            Parsed::Ignored("no_timing")
        );
        assert_eq!(
            parse_message(r#"{"level": "INFO", "event_type": "AUDIT", "function_name": "GDSH"}"#),
            Parsed::Ignored("no_timing")
        );
        // Lower-case event type and no event type at all still count.
        assert!(matches!(
            parse_message(r#"{"event_type": "timing", "metric": "X", "value_sec": 1}"#),
            Parsed::Timings { .. }
        ));
        assert_eq!(
            parse_message(r#"{"metric": "X", "value_sec": 1}"#),
            Parsed::Timings {
                ctx: LineContext::default(),
                timings: one("X", 1.0)
            }
        );
        // Both keys in one line: two timings, indices 0 and 1.
        match parse_message(
            r#"{"event_type": "END", "metric": "Last", "value_sec": 0.25, "total_function_duration": 3}"#,
        ) {
            Parsed::Timings { timings, .. } => {
                let got: Vec<(&str, f64, u32)> = timings
                    .iter()
                    .map(|t| (t.operation.as_str(), t.seconds, t.index))
                    .collect();
                assert_eq!(
                    got,
                    [("Last", 0.25, 0), ("total_function_duration", 3.0, 1)]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_lines() {
        for cut in [40, 80, TIMING.len() - 1] {
            assert_eq!(reason(&TIMING[..cut]), "invalid_json", "{}", &TIMING[..cut]);
        }
        assert_eq!(reason(&END[..END.len() - 8]), "invalid_json");
        // A cut before any marker key is not recognisable as timing.
        assert_eq!(parse_message(&TIMING[..20]), Parsed::Ignored("no_timing"));
        assert_eq!(
            reason(r#"{"_aws": {"Timestamp": 1714499115695, "CloudWatchMetr"#),
            "invalid_json"
        );
        // Trailing garbage after the object.
        assert_eq!(reason(&format!("{TIMING} extra")), "invalid_json");
    }
}
