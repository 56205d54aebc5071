//! Parse throughput: `parse_message` over a realistic mix of Lambda log lines, next to plain
//! `serde_json` parsing of the same lines (the JSON ones; text lines are counted as skipped by
//! the baseline), measured in the same run. Prints lines/s and MB/s and a summary line.

use latency_sentinel::parse::parse_message;
use std::hint::black_box;
use std::time::Instant;

fn lines(n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let rid = format!("{:08x}-0b7e-4b8e-9a55-1f7c0e2d{:04x}", i, i % 65536);
        let line = match i % 10 {
            0 => format!("START RequestId: {rid} Version: 12\n"),
            1 => r#"{"level": "INFO", "event_type": "START", "function_name": "GDSH", "message": "Function started"}"#.to_string(),
            2 => format!(r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": {}.{:03}}}"#, i % 9, i % 1000),
            3 => format!("[INFO]\t2026-11-22T10:00:00.000Z\t{rid}\t{{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"IOCH\", \"metric\": \"DynamoDBPutDuration\", \"value_sec\": 0.031}}"),
            4 => r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "message": "Function completed", "total_function_duration": 3.125}"#.to_string(),
            5 => format!("END RequestId: {rid}\n"),
            6 => format!("REPORT RequestId: {rid}\tDuration: 3125.00 ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true\n"),
            7 => format!(r#"{{"time":"2026-10-08T07:30:29.470Z","type":"platform.report","record":{{"requestId":"{rid}","metrics":{{"durationMs":1233.96,"billedDurationMs":1698,"memorySizeMB":256,"maxMemoryUsedMB":123}},"status":"success"}}}}"#),
            8 => r#"{"_aws":{"Timestamp":1714499115695,"CloudWatchMetrics":[{"Namespace":"Atlas","Dimensions":[["service"]],"Metrics":[{"Name":"SalesforceLatency","Unit":"Milliseconds"}]}]},"service":"atlas","SalesforceLatency":[120.0,135.5]}"#.to_string(),
            _ => "Processing lead 42 for campaign spring-promo: contact flow selected".to_string(),
        };
        out.push(line);
    }
    out
}

fn main() {
    let n = 500_000;
    let input = lines(n);
    let bytes: usize = input.iter().map(|l| l.len()).sum();
    let mb = bytes as f64 / 1e6;

    // Warm-up, then best of three for each side, alternating so both see the same machine.
    let mut ours = f64::MAX;
    let mut base = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for l in &input {
            black_box(parse_message(black_box(l)));
        }
        ours = ours.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for l in &input {
            if l.starts_with('{') {
                black_box(serde_json::from_str::<serde_json::Value>(black_box(l)).ok());
            }
        }
        base = base.min(t.elapsed().as_secs_f64());
    }
    let lps = n as f64 / ours;
    let base_lps = n as f64 / base;
    println!("parse_message:      {:>10.0} lines/s  {:>7.1} MB/s  ({n} lines, {mb:.1} MB)", lps, mb / ours);
    println!("serde_json baseline:{:>10.0} lines/s  {:>7.1} MB/s  (JSON lines parsed to Value, text lines skipped)", base_lps, mb / base);
    println!(
        "parse: lines_per_sec={lps:.0} mb_per_sec={:.1} baseline_lines_per_sec={base_lps:.0} baseline_mb_per_sec={:.1} ratio={:.2}",
        mb / ours,
        mb / base,
        lps / base_lps
    );
}
