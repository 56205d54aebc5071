//! Rendering (pure): an execution as the CloudWatch Logs lines and X-Ray segment documents
//! the real application would write.

use super::*;

/// One CloudWatch Logs event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub group: String,
    pub stream: String,
    pub time_ms: i64,
    pub message: String,
}

/// `2020-06-09T15:02:26.150Z` (times before 1970 print as 1970).
fn iso(ms: i64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// `YYYY/MM/DD` (or with another separator) of an epoch-ms time, UTC.
pub(super) fn ymd(ms: i64, sep: char) -> String {
    iso(ms)[..10].replace('-', &sep.to_string())
}

/// A float as Python's `repr` prints it (`9.0`, `2.847`), which `json.dumps` uses.
pub(super) fn py_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || !v.is_finite() { s } else { format!("{s}.0") }
}

/// A JSON string literal.
pub(super) fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The seed's `print(json.dumps({...}))` line: keys in insertion order, `": "` and `", "`.
pub(super) fn seed_line(event_type: &str, abbr: &str, rest: &[(&str, String)]) -> String {
    let mut s = format!("{{\"level\": \"INFO\", \"event_type\": {}, \"function_name\": {}", js(event_type), js(abbr));
    for (k, v) in rest {
        let _ = write!(s, ", {}: {}", js(k), v);
    }
    s.push_str("}\n");
    s
}

/// The seed's TIMING line for a duration in seconds.
pub fn timing_line(abbr: &str, metric: &str, seconds: f64) -> String {
    seed_line("TIMING", abbr, &[("metric", js(metric)), ("value_sec", py_float(round3(seconds)))])
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub(super) fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// Every log event of one execution, per invocation in order (`group` = `/aws/lambda/<fn>`).
pub fn log_lines(exec: &Execution) -> Vec<LogLine> {
    let mut out = Vec::new();
    for inv in &exec.invocations {
        let f = inv.function;
        let group = format!("/aws/lambda/{}", f.name);
        let mut push = |time_us: i64, message: String| {
            out.push(LogLine { group: group.clone(), stream: inv.log_stream.clone(), time_ms: ms(time_us), message });
        };
        let rid = &inv.request_id;
        if inv.cold {
            push(
                inv.function_start_us,
                "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:us-west-2::runtime:7b620fc2e66107a1046b140b9d320295811af3ad5d4c6a011fad1fa65127e9e6\n".into(),
            );
        }
        push(inv.handler_start_us, format!("START RequestId: {rid} Version: {}\n", inv.version));
        push(inv.handler_start_us + 1_000, seed_line("START", f.abbr, &[("message", js("Function started"))]));
        for c in &inv.calls {
            let line = if c.malformed {
                // Python's json.dumps prints a NaN float bare: invalid JSON, as in real logs.
                seed_line("TIMING", f.abbr, &[("metric", js(c.op.metric)), ("value_sec", "NaN".into())])
            } else {
                timing_line(f.abbr, c.op.metric, c.seconds())
            };
            push(c.end_us, line);
        }
        let duration_ms = inv.duration_us() as f64 / 1000.0;
        match inv.outcome {
            Outcome::Ok => {
                let total = round3(inv.duration_us() as f64 / 1e6);
                push(
                    inv.handler_end_us - 1_000,
                    seed_line("END", f.abbr, &[("message", js("Function completed")), (TOTAL_METRIC, py_float(total))]),
                );
            }
            Outcome::Error => {
                let op = inv.failed_call.map_or("call", |o| o.name);
                push(
                    inv.handler_end_us - 1_000,
                    format!(
                        "[ERROR] {}: {op} failed: An error occurred (ServiceUnavailable) when calling the operation\nTraceback (most recent call last):\n  File \"/var/task/lambda_function.py\", line 87, in lambda_handler\n    result = call_with_timing(\"{op}\")\n",
                        f.error_type.rsplit('.').next().unwrap_or(f.error_type)
                    ),
                );
            }
            Outcome::Timeout => {}
        }
        push(inv.handler_end_us, format!("END RequestId: {rid}\n"));
        let init = inv.init_us() as f64 / 1000.0;
        let billed = (duration_ms + if inv.cold { init } else { 0.0 }).ceil() as i64;
        let mut report = format!(
            "REPORT RequestId: {rid}\tDuration: {duration_ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            f.memory_mb, inv.memory_used_mb
        );
        if inv.cold {
            let _ = write!(report, "Init Duration: {init:.2} ms\t");
        }
        match inv.outcome {
            Outcome::Ok => {}
            Outcome::Error => {
                let _ = write!(report, "Status: error\tError Type: {}", f.error_type.rsplit('.').next().unwrap_or(f.error_type));
            }
            Outcome::Timeout => report.push_str("Status: timeout"),
        }
        let _ = write!(report, "\nXRAY TraceId: {}\tSegmentId: {}\tSampled: true\n", exec.trace_id, inv.function_id);
        push(inv.handler_end_us, report);
        if inv.outcome == Outcome::Timeout {
            push(
                inv.handler_end_us,
                format!("{} {rid} Task timed out after {}.00 seconds\n\n", iso(ms(inv.handler_end_us)), f.timeout_s),
            );
        }
    }
    out
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

fn function_arn(d: &Deployment, function: &str, qualifier: Option<&str>) -> String {
    let base = format!("arn:aws:lambda:{}:{}:function:{function}", d.region, d.account);
    match qualifier {
        Some(q) => format!("{base}:{q}"),
        None => base,
    }
}

/// The X-Ray segment documents of one execution (JSON strings for PutTraceSegments): the
/// state machine segment, then per invocation the `AWS::Lambda` and `AWS::Lambda::Function`
/// segments.
pub fn trace_documents(exec: &Execution, d: &Deployment) -> Vec<String> {
    let tid = &exec.trace_id;
    let sm = state_machine_name(&exec.env);
    let states: Vec<Value> = exec
        .invocations
        .iter()
        .map(|inv| {
            let fault = inv.outcome != Outcome::Ok;
            json!({
                "id": inv.state_id, "name": inv.function.state,
                "start_time": secs(inv.state_start_us), "end_time": secs(inv.state_end_us),
                "fault": fault,
                "subsegments": [{
                    "id": inv.invoke_id, "name": "Lambda", "namespace": "aws",
                    "start_time": secs(inv.invoke_start_us), "end_time": secs(inv.invoke_end_us),
                    "http": {"response": {"status": 200}},
                    "aws": {"operation": "Invoke", "region": d.region,
                            "function_name": format!("{}:{}", inv.function.name, inv.env),
                            "request_id": inv.request_id, "retries": 0},
                }],
            })
        })
        .collect();
    let mut docs = vec![json!({
        "id": exec.segment_id, "name": sm, "trace_id": tid,
        "start_time": secs(exec.start_us), "end_time": secs(exec.end_us),
        "origin": "AWS::StepFunctions::StateMachine",
        "fault": exec.failed,
        "aws": {"execution_arn": format!("arn:aws:states:{}:{}:execution:{sm}:{}", d.region, d.account, exec.name)},
        "subsegments": states,
    })];
    for inv in &exec.invocations {
        let f = inv.function;
        docs.push(json!({
            "id": inv.service_id, "name": f.name, "trace_id": tid, "parent_id": inv.invoke_id,
            "start_time": secs(inv.service_start_us), "end_time": secs(inv.service_end_us),
            "origin": "AWS::Lambda",
            "resource_arn": function_arn(d, f.name, Some(&inv.env)),
            "http": {"response": {"status": 200}},
            "aws": {"request_id": inv.request_id},
        }));
        let mut calls: Vec<Value> = inv
            .calls
            .iter()
            .map(|c| json!({"id": c.id, "name": c.op.name, "start_time": secs(c.start_us), "end_time": secs(c.end_us)}))
            .collect();
        let mut cause = Value::Null;
        if inv.outcome == Outcome::Error
            && let Some(op) = inv.failed_call
        {
            let start = inv.calls.last().map_or(inv.handler_start_us, |c| c.end_us);
            let exception = json!({"id": format!("{:016x}", fnv(&inv.request_id)), "type": f.error_type,
                                   "message": format!("{} failed: ServiceUnavailable", op.name)});
            calls.push(json!({"id": format!("{:016x}", fnv(&inv.function_id)), "name": op.name,
                              "start_time": secs(start), "end_time": secs(inv.handler_end_us - 2_000),
                              "fault": true, "cause": {"exceptions": [exception.clone()]}}));
            cause = json!({"exceptions": [exception]});
        }
        if inv.outcome == Outcome::Timeout {
            cause = json!({"exceptions": [{"id": format!("{:016x}", fnv(&inv.request_id)), "type": "Sandbox.Timedout",
                                           "message": format!("Task timed out after {}.00 seconds", f.timeout_s)}]});
        }
        let fault = inv.outcome != Outcome::Ok;
        let mut invocation = json!({
            "id": format!("{:016x}", fnv(&format!("inv{}", inv.function_id))), "name": "Invocation",
            "start_time": secs(inv.handler_start_us), "end_time": secs(inv.handler_end_us),
            "fault": fault, "subsegments": calls,
        });
        if !cause.is_null() {
            invocation["cause"] = cause.clone();
        }
        let mut subsegments = Vec::new();
        if inv.cold {
            subsegments.push(json!({
                "id": format!("{:016x}", fnv(&format!("init{}", inv.function_id))), "name": "Initialization",
                "start_time": secs(inv.function_start_us), "end_time": secs(inv.handler_start_us),
            }));
        }
        subsegments.push(invocation);
        subsegments.push(json!({
            "id": format!("{:016x}", fnv(&format!("ovh{}", inv.function_id))), "name": "Overhead",
            "start_time": secs(inv.handler_end_us), "end_time": secs(inv.function_end_us),
        }));
        let mut function = json!({
            "id": inv.function_id, "name": f.name, "trace_id": tid, "parent_id": inv.service_id,
            "start_time": secs(inv.function_start_us), "end_time": secs(inv.function_end_us),
            "origin": "AWS::Lambda::Function", "fault": fault,
            "aws": {"account_id": d.account, "function_arn": function_arn(d, f.name, None),
                    "resource_names": [f.name],
                    "cloudwatch_logs": [{"log_group": format!("/aws/lambda/{}", f.name)}]},
            "subsegments": subsegments,
        });
        if !cause.is_null() {
            function["cause"] = cause;
        }
        docs.push(function);
    }
    docs.into_iter().map(|d| d.to_string()).collect()
}
