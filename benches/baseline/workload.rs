//! The workloads the benches share, generated the same way each run: a Lambda function's
//! log events as `aws logs filter-log-events` prints them, and distinct X-Ray traces as
//! BatchGetTraces returns them.

use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// The first event's time in the generated export (2026-11-22T10:00:00Z).
pub const T0: i64 = 1_795_341_600_000;

pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// The export's events in CloudWatch's order (time, then id): a function at ~40
/// invocations/s, 128 execution environments (streams), each invocation 3.1 s and 8 events
/// (START, a seed TIMING line, a logging TIMING line, two plain lines, the seed's END,
/// END, REPORT with its XRAY line and an init duration on every 10th). Request ids are
/// unique. Returns (invocation, line) pairs.
pub fn export_order(events: usize) -> Vec<(i64, u32, u8)> {
    const OFFSETS: [i64; 8] = [0, 1, 2, 3, 2_900, 3_120, 3_121, 3_121];
    let invocations = events / OFFSETS.len();
    let mut order: Vec<(i64, u32, u8)> =
        (0..invocations as u32).flat_map(|inv| (0..8u8).map(move |k| (T0 + i64::from(inv) * 25 + OFFSETS[k as usize], inv, k))).collect();
    order.sort_unstable();
    order
}

/// (stream, time, eventId, message) of one export event; `seq` is its place in the export.
pub fn export_event(seq: usize, time_ms: i64, inv: u32, k: u8) -> (String, i64, String, String) {
    let rid = format!("{inv:08x}-0b7e-4b8e-9a55-{:012x}", u64::from(inv) * 7919);
    let stream = format!("2026/11/22/[12]{:032x}", (u128::from(inv % 128) + 1) * 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    let message = match k {
        0 => format!("START RequestId: {rid} Version: 12\n"),
        1 => format!(
            "{{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": {}.{:03}}}\n",
            inv % 9,
            inv % 1000
        ),
        2 => format!(
            "[INFO]\t{}\t{rid}\t{{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"SecretsManagerDuration\", \"value_sec\": 0.031}}\n",
            rfc3339(time_ms)
        ),
        3 => format!("Processing lead {inv} for campaign spring-promo\n"),
        4 => "{\"level\": \"INFO\", \"message\": \"ok\"}\n".to_string(),
        5 => "{\"level\": \"INFO\", \"event_type\": \"END\", \"function_name\": \"GDSH\", \"message\": \"Function completed\", \"total_function_duration\": 3.125}\n".to_string(),
        6 => format!("END RequestId: {rid}\n"),
        _ => format!(
            "REPORT RequestId: {rid}\tDuration: 3125.00 ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t{}\nXRAY TraceId: 1-{:08x}-{:024x}\tSegmentId: {:016x}\tSampled: true\t\n",
            if inv % 10 == 0 { "Init Duration: 412.50 ms\t" } else { "" },
            time_ms / 1000,
            u128::from(inv) * 104_729,
            u64::from(inv) * 15_485_863
        ),
    };
    (stream, time_ms, format!("{time_ms:032}{seq:024}"), message)
}

/// Writes the export as `aws logs filter-log-events` prints it (indent 4, CloudWatch's key
/// order). Returns its size in bytes.
pub fn write_export(path: &std::path::Path, order: &[(i64, u32, u8)]) -> u64 {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"{\n    \"events\": [\n").unwrap();
    for (seq, &(t, inv, k)) in order.iter().enumerate() {
        let (stream, time_ms, id, message) = export_event(seq, t, inv, k);
        let comma = if seq + 1 < order.len() { "," } else { "" };
        write!(
            f,
            "        {{\n            \"logStreamName\": \"{stream}\",\n            \"timestamp\": {time_ms},\n            \"message\": {},\n            \"ingestionTime\": {},\n            \"eventId\": \"{id}\"\n        }}{comma}\n",
            serde_json::to_string(&message).unwrap(),
            time_ms + 15_000
        )
        .unwrap();
    }
    f.write_all(b"    ],\n    \"searchedLogStreams\": []\n}\n").unwrap();
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

pub type Trace = (String, Vec<(String, String)>);

/// A 16-hex-digit id derived from the template's id and the trace's number.
fn derived_id(id: &str, n: usize) -> String {
    format!("{:016x}", latency_sentinel::hash::fnv1a(&format!("{n}/{id}")))
}

/// Rewrites one document for trace `n`: ids, trace id, and times moved to `t0` and stretched.
fn rewrite(v: &mut Value, n: usize, trace_id: &str, t0: f64, start: f64, stretch: f64) {
    let Value::Object(o) = v else { return };
    for key in ["id", "parent_id"] {
        if let Some(Value::String(id)) = o.get_mut(key) {
            *id = derived_id(id, n);
        }
    }
    if o.contains_key("trace_id") {
        o.insert("trace_id".into(), Value::String(trace_id.to_string()));
    }
    for key in ["start_time", "end_time"] {
        if let Some(t) = o.get(key).and_then(Value::as_f64) {
            o.insert(key.into(), serde_json::json!(((start + (t - t0) * stretch) * 1e6).round() / 1e6));
        }
    }
    if let Some(Value::Array(subs)) = o.get_mut("subsegments") {
        for s in subs {
            rewrite(s, n, trace_id, t0, start, stretch);
        }
    }
}

pub fn traces(count: usize) -> Vec<Trace> {
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/xray/atlas_workflow_dev.json").expect("run from the repo root")).unwrap();
    let template: Vec<Value> = fixture["Traces"][0]["Segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_str(s["Document"].as_str().unwrap()).unwrap())
        .collect();
    let t0 = template.iter().filter_map(|d| d["start_time"].as_f64()).fold(f64::INFINITY, f64::min);
    let now = latency_sentinel::clock::now_ms() as f64 / 1000.0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|n| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let stretch = 0.5 + (seed >> 11) as f64 / (1u64 << 53) as f64 * 1.5;
            // One trace every 0.2 s over the last hour or so, ending well before now.
            let start = now - 7200.0 + n as f64 * 0.2;
            let trace_id = format!("1-{:08x}-{:024x}", start as u64, seed as u128 & ((1u128 << 96) - 1));
            let docs = template
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    rewrite(&mut d, n, &trace_id, t0, start, stretch);
                    (d["id"].as_str().unwrap().to_string(), d.to_string())
                })
                .collect();
            (trace_id, docs)
        })
        .collect()
}
