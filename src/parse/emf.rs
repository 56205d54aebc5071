//! CloudWatch Embedded Metric Format (`{"_aws": {"CloudWatchMetrics": [...]}, ...}`): every
//! metric whose unit is a time unit becomes one timing per value, converted to seconds.
//!
//! Non-time units (`Count`, `Bytes`, none) are skipped. A metric named by several directives
//! (one per dimension set) refers to the same root value, so it is read once. One bad time
//! value rejects the whole record: EMF is at-least-once and a half-read record would hide
//! the breakage from the operator.

use serde_json::{Map, Value};

use super::{AppTiming, LineContext, Parsed, number_value, rejected, truncate};
use crate::model::Source;

/// Units per second for the EMF time units; `None` for every other unit. A divisor rather
/// than a factor, because `x / 1000.0` is correctly rounded and `x * 1e-3` is not.
fn units_per_second(unit: &str) -> Option<f64> {
    match unit {
        u if u.eq_ignore_ascii_case("Seconds") => Some(1.0),
        u if u.eq_ignore_ascii_case("Milliseconds") => Some(1e3),
        u if u.eq_ignore_ascii_case("Microseconds") => Some(1e6),
        _ => None,
    }
}

/// Parses an object that has an `_aws` key.
pub fn parse(obj: &Map<String, Value>, ctx: LineContext) -> Parsed {
    let Some(directives) = obj
        .get("_aws")
        .and_then(Value::as_object)
        .and_then(|aws| aws.get("CloudWatchMetrics"))
        .and_then(Value::as_array)
    else {
        return rejected(
            "bad_emf",
            "_aws.CloudWatchMetrics is missing or not an array".to_owned(),
        );
    };

    let mut seen: Vec<&str> = Vec::new();
    let mut timings = Vec::new();
    let definitions = directives
        .iter()
        .filter_map(|d| d.get("Metrics").and_then(Value::as_array))
        .flatten();
    for definition in definitions {
        let Some(name) = definition.get("Name").and_then(Value::as_str) else {
            continue;
        };
        let Some(divisor) = definition
            .get("Unit")
            .and_then(Value::as_str)
            .and_then(units_per_second)
        else {
            continue;
        };
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if name.trim().is_empty() || name.len() > 255 {
            return rejected(
                "bad_metric",
                format!("unusable EMF metric name {:?}", truncate(name, 64)),
            );
        }
        let values: &[Value] = match obj.get(name) {
            Some(Value::Array(values)) => values,
            Some(value) => std::slice::from_ref(value),
            None => return rejected("bad_value", format!("EMF metric {name:?} has no value")),
        };
        for value in values {
            let seconds = match number_value(value, name) {
                Ok(x) => x / divisor,
                Err(bad) => return bad.into(),
            };
            let index = u32::try_from(timings.len()).unwrap_or(u32::MAX);
            timings.push(AppTiming {
                operation: name.to_owned(),
                seconds,
                source: Source::Emf,
                index,
            });
        }
    }
    if timings.is_empty() {
        Parsed::Ignored("no_timing")
    } else {
        Parsed::Timings { ctx, timings }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_message;
    use super::*;

    fn timings(msg: &str) -> Vec<(String, f64, u32)> {
        match parse_message(msg) {
            Parsed::Timings { timings, .. } => {
                assert!(timings.iter().all(|t| t.source == Source::Emf));
                timings
                    .into_iter()
                    .map(|t| (t.operation, t.seconds, t.index))
                    .collect()
            }
            other => panic!("{msg} -> {other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn count_metrics_are_not_timings() {
        assert_eq!(
            parse_message(
                r#"{"_aws":{"Timestamp":1714499115695,"CloudWatchMetrics":[{"Namespace":"Pycon2024","Dimensions":[["service"]],"Metrics":[{"Name":"SuccessfulSubmission","Unit":"Count"}]}]},"service":"instrumented-user-registration","SuccessfulSubmission":[1.0]}"#
            ),
            Parsed::Ignored("no_timing")
        );
        assert_eq!(
            parse_message(
                r#"{"_aws":{"Timestamp":1714499115695,"CloudWatchMetrics":[{"Namespace":"Pycon2024","Dimensions":[["function_name","service"]],"Metrics":[{"Name":"ColdStart","Unit":"Count"}]}]},"function_name":"pycon2024-InstrumentedFunction-hQQueiDV6k81","service":"instrumented-user-registration","ColdStart":[1.0]}"#
            ),
            Parsed::Ignored("no_timing")
        );
    }

    #[test]
    fn arrays_and_units() {
        // Powertools' multi-value shape, with a time unit.
        let got = timings(
            r#"{"_aws":{"Timestamp":1656685750622,"CloudWatchMetrics":[{"Namespace":"ServerlessAirline","Dimensions":[["environment","service"]],"Metrics":[{"Name":"TurbineReads","Unit":"Milliseconds"}]}]},"environment":"dev","service":"booking","TurbineReads":[1.0,8.0]}"#,
        );
        assert_eq!(
            got,
            [
                ("TurbineReads".into(), 0.001, 0),
                ("TurbineReads".into(), 0.008, 1)
            ]
        );

        let got = timings(
            r#"{"_aws":{"Timestamp":1714499115695,"CloudWatchMetrics":[{"Namespace":"Atlas","Dimensions":[["service"]],"Metrics":[{"Name":"BedrockLatency","Unit":"Seconds"},{"Name":"Calls","Unit":"Count"},{"Name":"DdbLatency","Unit":"Microseconds","StorageResolution":1}]}]},"service":"gdsh","BedrockLatency":2.5,"Calls":3,"DdbLatency":[1500,"2500"]}"#,
        );
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].0.as_str(), got[0].1, got[0].2),
            ("BedrockLatency", 2.5, 0)
        );
        assert!(close(got[1].1, 0.0015) && got[1].2 == 1 && got[1].0 == "DdbLatency");
        assert!(close(got[2].1, 0.0025) && got[2].2 == 2);

        // The same metric in two directives is one value, read once.
        let got = timings(
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[["service"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]},{"Namespace":"A","Dimensions":[["service","route"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"service":"s","route":"/x","Latency":250}"#,
        );
        assert_eq!(got, [("Latency".into(), 0.25, 0)]);

        // Empty array: nothing to report.
        assert_eq!(
            parse_message(
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]},"Latency":[]}"#
            ),
            Parsed::Ignored("no_timing")
        );
    }

    #[test]
    fn context_and_prefix() {
        let emf = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[["service"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"service":"s","Latency":[120],"function_request_id":"3d27ad41-a4a6-450c-8bca-3e251ab3259e","xray_trace_id":"1-66312e29-264cecca790badd378afa449"}"#;
        match parse_message(emf) {
            Parsed::Timings { ctx, .. } => {
                assert_eq!(
                    ctx.request_id.as_deref(),
                    Some("3d27ad41-a4a6-450c-8bca-3e251ab3259e")
                );
                assert_eq!(
                    ctx.trace_id.as_deref(),
                    Some("1-66312e29-264cecca790badd378afa449")
                );
            }
            other => panic!("{other:?}"),
        }
        let emf = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[["service"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"service":"s","Latency":[120]}"#;
        let prefixed = format!(
            "2024-04-30T17:45:15.695Z\t3d27ad41-a4a6-450c-8bca-3e251ab3259e\tINFO\t{emf}\n"
        );
        match parse_message(&prefixed) {
            Parsed::Timings { ctx, timings } => {
                assert_eq!(
                    ctx.request_id.as_deref(),
                    Some("3d27ad41-a4a6-450c-8bca-3e251ab3259e")
                );
                assert!(close(timings[0].seconds, 0.12));
            }
            other => panic!("{other:?}"),
        }
        let prefixed = format!("[INFO]\t2024-04-30T17:45:15.695Z\t\t{emf}");
        assert_eq!(timings(&prefixed).len(), 1);
    }

    #[test]
    fn bad_records() {
        for (line, want) in [
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]},"Latency":"abc"}"#,
                "bad_value",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]},"Latency":[1.0,-2.0]}"#,
                "negative_value",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]},"Latency":[NaN]}"#,
                "non_finite_value",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]},"Latency":null}"#,
                "bad_value",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":"Latency","Unit":"Seconds"}]}]}}"#,
                "bad_value",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[],"Metrics":[{"Name":" ","Unit":"Seconds"}]}]}," ":1}"#,
                "bad_metric",
            ),
            (r#"{"_aws":{"Timestamp":1}}"#, "bad_emf"),
            (r#"{"_aws":[]}"#, "bad_emf"),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":{}}}"#,
                "bad_emf",
            ),
            (
                r#"{"_aws":{"Timestamp":1714499115695,"CloudWatchMetrics":[{"Namespace":"Pycon2024","Dimensions":[["service"]],"Metrics":[{"Name":"Latency","Unit":"Millis"#,
                "invalid_json",
            ),
        ] {
            match parse_message(line) {
                Parsed::Rejected { reason, .. } => assert_eq!(reason, want, "{line}"),
                other => panic!("{line} -> {other:?}"),
            }
        }
        // Directives or definitions of the wrong shape are skipped, not fatal.
        assert_eq!(
            parse_message(
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[7,{"Metrics":"x"},{"Metrics":[{"Unit":"Seconds"},{"Name":"L"}]}]},"L":1}"#
            ),
            Parsed::Ignored("no_timing")
        );
    }
}
