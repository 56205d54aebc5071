//! The simulator's pure parts, tested without I/O.

use super::*;
use crate::parse::{Parsed, parse_message};
use std::collections::HashMap;

const T0: i64 = 1_763_800_000_000; // 2025-11-22T08:26:40Z

fn deployment(envs: &[&str]) -> Deployment {
    let mut versions = BTreeMap::new();
    for f in &ATLAS {
        for (i, e) in envs.iter().enumerate() {
            versions.insert((f.name.to_string(), e.to_string()), (i + 1).to_string());
        }
    }
    Deployment { region: "us-west-2".into(), account: "123456789012".into(), versions }
}

fn settings(minutes: u64, rate: f64) -> Settings {
    Settings { duration: Duration::from_secs(minutes * 60), rate_per_s: rate, seed: 42, ..Settings::default() }
}

fn generate(s: Settings) -> Vec<Execution> {
    let envs: Vec<&str> = s.envs.iter().map(String::as_str).collect();
    Generator::new(s.clone(), deployment(&envs), T0).until(T0)
}

fn slow_rule(s: &str) -> SlowRule {
    SlowRule::parse(s).unwrap()
}

fn nearest_rank(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    crate::quantile::nearest_rank(&v, q).expect("values")
}

/// Durations of `op` calls in `function` and `env` for executions starting in [from, to).
fn durations(execs: &[Execution], function: &str, op: &str, env: &str, from_us: i64, to_us: i64) -> Vec<f64> {
    execs
        .iter()
        .filter(|e| e.env == env && e.start_us >= from_us && e.start_us < to_us)
        .flat_map(|e| e.invocations.iter())
        .filter(|i| i.function.name == function)
        .flat_map(|i| i.calls.iter())
        .filter(|c| c.op.name == op)
        .map(Call::seconds)
        .collect()
}

#[test]
fn seed_lines_have_the_seeds_exact_shape() {
    assert_eq!(
        timing_line("GDSH", "BedrockCallDuration", 2.847),
        "{\"level\": \"INFO\", \"event_type\": \"TIMING\", \"function_name\": \"GDSH\", \"metric\": \"BedrockCallDuration\", \"value_sec\": 2.847}\n"
    );
    assert_eq!(
        seed_line("START", "GDSH", &[("message", js("Function started"))]),
        "{\"level\": \"INFO\", \"event_type\": \"START\", \"function_name\": \"GDSH\", \"message\": \"Function started\"}\n"
    );
    assert_eq!(
        seed_line("END", "GDSH", &[("message", js("Function completed")), (TOTAL_METRIC, py_float(3.125))]),
        "{\"level\": \"INFO\", \"event_type\": \"END\", \"function_name\": \"GDSH\", \"message\": \"Function completed\", \"total_function_duration\": 3.125}\n"
    );
    assert_eq!(timing_line("GDSH", "BedrockCallDuration", 9.0), timing_line("GDSH", "BedrockCallDuration", 9.0004));
    assert!(timing_line("GDSH", "BedrockCallDuration", 9.0).contains("\"value_sec\": 9.0}"));
    assert_eq!(py_float(0.031), "0.031");
    assert_eq!(py_float(12.0), "12.0");
    let metrics: HashSet<&str> = ATLAS.iter().flat_map(|f| f.ops.iter().map(|o| o.metric)).collect();
    let want: HashSet<&str> = [
        "BedrockCallDuration",
        "SecretsManagerDuration",
        "SalesforceAuthDuration",
        "DynamoDBPutDuration",
        "ConnectCallDuration",
        "DynamoDBUpdateDuration",
        "SalesforceUpdateDuration",
    ]
    .into();
    assert_eq!(metrics, want);
}

#[test]
fn distributions_rates_and_times_parse() {
    assert_eq!(Dist::parse("lognormal(2.5s, 0.2)"), Ok(Dist::LogNormal { median: 2.5, sigma: 0.2 }));
    assert_eq!(Dist::parse("normal(300ms,50ms)"), Ok(Dist::Normal { mean: 0.3, sd: 0.05 }));
    assert_eq!(Dist::parse("uniform(1s, 2s)"), Ok(Dist::Uniform { lo: 1.0, hi: 2.0 }));
    assert_eq!(Dist::parse("fixed(1.5m)"), Ok(Dist::Fixed(90.0)));
    for bad in ["lognormal(2s)", "gamma(1s, 2)", "uniform(2s, 1s)", "lognormal(2s, x)", "fixed(3 parsecs)", "9s"] {
        assert!(Dist::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_rate("2/s"), Ok(2.0));
    assert_eq!(parse_rate("30/m"), Ok(0.5));
    assert_eq!(parse_rate("3"), Ok(3.0));
    assert!(parse_rate("0/s").is_err() && parse_rate("2/fortnight").is_err());
    assert_eq!(parse_relative("-3m"), Ok(-180_000_000));
    assert_eq!(parse_relative("+1.5s"), Ok(1_500_000));
    assert!(parse_relative("3m").is_err());
    assert_eq!(LatencySpec::parse("9s"), Ok(LatencySpec::Median(9.0)));
    assert_eq!(Dist::LogNormal { median: 2.5, sigma: 0.2 }.with_median(9.0), Dist::LogNormal { median: 9.0, sigma: 0.2 });
}

#[test]
fn rules_name_functions_operations_and_envs() {
    let r = slow_rule("GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m");
    assert_eq!(r.selector, Selector { function: Some("GenerateDynamicScenarioHandler"), operation: "Bedrock.InvokeModel".into(), env: Some("Dev".into()) });
    assert_eq!((r.spec, r.from, r.until), (LatencySpec::Median(9.0), Some(-180_000_000), None));
    let r = slow_rule("GDSH/BedrockCallDuration=lognormal(9s, 0.1),from=-3m,until=+1m");
    assert_eq!(r.selector.function, Some("GenerateDynamicScenarioHandler"));
    assert_eq!(r.spec, LatencySpec::Dist(Dist::LogNormal { median: 9.0, sigma: 0.1 }));
    assert_eq!(r.until, Some(60_000_000));
    let r = LatencyRule::parse("Bedrock.InvokeModel=lognormal(2.5s,0.2)").unwrap();
    assert_eq!(r.selector.function, None);
    for bad in [
        "NoSuchHandler/Bedrock.InvokeModel=9s",
        "GDSH/DynamoDB.PutItem=9s",
        "Bedrock.InvokeModel",
        "Bedrock.InvokeModel@=9s",
        "Bedrock.InvokeModel=9s,when=-3m",
        "Bedrock.InvokeModel=9s,from=-1m,until=-2m",
    ] {
        assert!(SlowRule::parse(bad).is_err(), "{bad}");
    }
    let err = LatencyRule::parse("GDSH/Connect.StartOutboundCall=1s").unwrap_err();
    assert!(err.contains("known: GenerateDynamicScenarioHandler/Bedrock.InvokeModel (BedrockCallDuration)"), "{err}");
}

#[test]
fn the_most_specific_latency_rule_wins_and_slowdowns_apply_in_their_window() {
    let mut s = Settings {
        latency: vec![
            LatencyRule::parse("LFH/Bedrock.InvokeModel@Dev=1s").unwrap(),
            LatencyRule::parse("Bedrock.InvokeModel=lognormal(2s, 0.1)").unwrap(),
        ],
        slow: vec![slow_rule("GDSH/Bedrock.InvokeModel@Dev=fixed(9s),from=-3m,until=+1m")],
        ..Settings::default()
    };
    s.latency.sort_by_key(|r| r.selector.specificity());
    let (lfh, gdsh) = (&ATLAS[0], &ATLAS[1]);
    assert_eq!(s.dist(lfh, &lfh.ops[0], "Dev", 0), Dist::LogNormal { median: 1.0, sigma: 0.1 });
    assert_eq!(s.dist(lfh, &lfh.ops[0], "PROD", 0), Dist::LogNormal { median: 2.0, sigma: 0.1 });
    assert_eq!(s.dist(gdsh, &gdsh.ops[0], "Dev", -180_000_001), Dist::LogNormal { median: 2.0, sigma: 0.1 });
    assert_eq!(s.dist(gdsh, &gdsh.ops[0], "Dev", -180_000_000), Dist::Fixed(9.0));
    assert_eq!(s.dist(gdsh, &gdsh.ops[0], "Dev", 60_000_000), Dist::LogNormal { median: 2.0, sigma: 0.1 });
    assert_eq!(s.dist(gdsh, &gdsh.ops[0], "PROD", 0), Dist::LogNormal { median: 2.0, sigma: 0.1 });
}

#[test]
fn every_log_line_parses_back_to_what_was_generated() {
    let mut s = settings(5, 1.0);
    s.malformed_rate = 0.0;
    let execs = generate(s);
    assert!(execs.len() > 400, "{}", execs.len());
    let (mut reports, mut timings, mut colds) = (0, 0, 0);
    for e in &execs {
        let lines = log_lines(e);
        for inv in &e.invocations {
            let mine: Vec<&LogLine> = lines.iter().filter(|l| l.stream == inv.log_stream && l.group.ends_with(inv.function.name)).collect();
            let mut seen_timings = Vec::new();
            let mut report = None;
            for l in mine.iter().filter(|l| l.time_ms >= ms(inv.function_start_us) && l.time_ms <= ms(inv.handler_end_us)) {
                match parse_message(&l.message) {
                    Parsed::Timings { ctx, timings } => {
                        assert_eq!(ctx.app_function.as_deref(), Some(inv.function.abbr));
                        seen_timings.extend(timings.into_iter().map(|t| (t.operation, t.seconds)));
                    }
                    Parsed::Report(r) if r.request_id == inv.request_id => report = Some(r),
                    Parsed::Start { request_id, version } if request_id == inv.request_id => {
                        assert_eq!(version.as_deref(), Some(inv.version.as_str()));
                    }
                    Parsed::Rejected { reason, detail } => panic!("{reason}: {detail}: {:?}", l.message),
                    _ => {}
                }
            }
            let mut want: Vec<(String, f64)> = inv.calls.iter().map(|c| (c.op.metric.to_string(), c.seconds())).collect();
            if inv.outcome == Outcome::Ok {
                want.push((TOTAL_METRIC.to_string(), round3(inv.duration_us() as f64 / 1e6)));
            }
            assert_eq!(seen_timings, want);
            timings += want.len();
            let r = report.expect("a REPORT for every invocation");
            reports += 1;
            assert_eq!(r.trace_id.as_deref(), Some(e.trace_id.as_str()));
            assert_eq!(r.init_ms.is_some(), inv.cold);
            colds += inv.cold as usize;
            assert!((r.duration_ms - inv.duration_us() as f64 / 1000.0).abs() < 0.006);
            assert_eq!(r.memory_size_mb, Some(inv.function.memory_mb as u64));
            assert_eq!(r.status.is_some(), inv.outcome != Outcome::Ok);
        }
    }
    assert!(reports > 1600 && timings > reports && colds > 8 && colds < reports / 10, "{reports} {timings} {colds}");
}

#[test]
fn traces_parse_back_with_aliases_request_ids_and_cold_starts() {
    let execs = generate(settings(3, 0.5));
    let d = deployment(&["PROD", "Dev"]);
    for e in &execs {
        let docs: Vec<(String, String)> = trace_documents(e, &d)
            .into_iter()
            .map(|doc| {
                assert!(doc.len() < 64 * 1024);
                let v: Value = serde_json::from_str(&doc).unwrap();
                (v["id"].as_str().unwrap().to_string(), doc)
            })
            .collect();
        assert_eq!(docs.len(), 1 + 2 * e.invocations.len());
        let trace = crate::parse::xray::parse_trace(&e.trace_id, &docs, &Default::default());
        assert!(trace.rejections.is_empty(), "{:?}", trace.rejections);
        assert!(!trace.in_progress);
        let events = crate::parse::xray::trace_events(&trace);
        for inv in &e.invocations {
            for c in &inv.calls {
                let (ev, qualifier) = events
                    .iter()
                    .find(|(ev, _)| ev.function == inv.function.name && ev.operation == c.op.name && ev.idem_key.ends_with(&c.id))
                    .unwrap_or_else(|| panic!("no event for {} {}", inv.function.name, c.op.name));
                assert_eq!(qualifier.as_deref(), Some(e.env.as_str()));
                assert_eq!(ev.request_id.as_deref(), Some(inv.request_id.as_str()));
                assert_eq!(ev.cold_start, inv.cold);
                assert!((ev.duration_s - c.seconds()).abs() < 1e-6, "{} vs {}", ev.duration_s, c.seconds());
            }
            let inits = events.iter().filter(|(ev, _)| ev.operation == "Initialization" && ev.request_id.as_deref() == Some(&inv.request_id)).count();
            assert_eq!(inits, inv.cold as usize);
        }
    }
}

#[test]
fn streams_hold_one_invocation_at_a_time_and_name_the_version() {
    let execs = generate(settings(10, 2.0));
    let re = regex::Regex::new(r"^\d{4}/\d{2}/\d{2}/\[(\d+)\][0-9a-f]{32}$").unwrap();
    let mut by_stream: HashMap<&str, Vec<(i64, i64, &str)>> = HashMap::new();
    for inv in execs.iter().flat_map(|e| e.invocations.iter()) {
        let caps = re.captures(&inv.log_stream).unwrap_or_else(|| panic!("{}", inv.log_stream));
        assert_eq!(&caps[1], if inv.env == "PROD" { "1" } else { "2" });
        by_stream.entry(&inv.log_stream).or_default().push((inv.function_start_us, inv.function_end_us, inv.function.name));
    }
    for (stream, mut spans) in by_stream {
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 < w[1].0 && w[0].2 == w[1].2), "{stream} overlaps");
    }
    let first = execs.first().unwrap().start_us / 1000;
    assert!(first >= T0 - 600_000, "older than the history");
    // Executions in flight at the start of the command end within a minute of it.
    assert!(execs.iter().all(|e| e.end_us / 1000 < T0 + 60_000));
}

#[test]
fn the_same_seed_gives_the_same_traffic_however_time_is_cut() {
    let s = settings(4, 1.0);
    let whole: Vec<Vec<LogLine>> = generate(s.clone()).iter().map(log_lines).collect();
    let mut g = Generator::new(s.clone(), deployment(&["PROD", "Dev"]), T0);
    let mut cut = Vec::new();
    for k in (0..=24).rev() {
        cut.extend(g.until(T0 - k * 10_000).iter().map(log_lines));
    }
    assert_eq!(whole, cut);
    let other: Vec<Vec<LogLine>> = generate(Settings { seed: 43, ..s }).iter().map(log_lines).collect();
    assert_ne!(whole, other);
}

#[test]
fn a_slowdown_hits_its_env_operation_and_window_only() {
    let base = settings(10, 2.0);
    let slowed = Settings { slow: vec![slow_rule("GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m")], ..base.clone() };
    let (a, b) = (generate(base), generate(slowed));
    let from = (T0 - 180_000) * 1000 + 100_000; // executions reach GDSH ~1 s after they start
    let gdsh = "GenerateDynamicScenarioHandler";
    let dev_after = durations(&b, gdsh, "Bedrock.InvokeModel", "Dev", from, T0 * 1000);
    let dev_before = durations(&b, gdsh, "Bedrock.InvokeModel", "Dev", 0, from - 3_000_000);
    assert!(dev_after.len() > 200 && dev_before.len() > 500);
    assert!(nearest_rank(dev_after.clone(), 0.05) > 6.0, "p5 after {}", nearest_rank(dev_after.clone(), 0.05));
    assert!((nearest_rank(dev_after, 0.5) - 9.0).abs() < 0.5);
    assert!(nearest_rank(dev_before, 0.95) < 4.0);
    // PROD and the other operations are untouched: the same seed gives the same draws.
    let prod = |x: &[Execution]| x.iter().filter(|e| e.env == "PROD").map(log_lines).collect::<Vec<_>>();
    assert_eq!(prod(&a), prod(&b));
    let lfh = durations(&b, "LexFulfillmentHandler", "Bedrock.InvokeModel", "Dev", from, T0 * 1000);
    assert!(nearest_rank(lfh, 0.95) < 1.5);
}

#[test]
fn history_is_written_in_time_slices() {
    let execs = generate(settings(10, 2.0));
    let slices = history_slices(&execs, Duration::from_secs(600));
    assert!((20..=22).contains(&slices.len()), "{}", slices.len());
    assert_eq!(slices.iter().map(|s| s.len()).sum::<usize>(), execs.len());
    for w in slices.windows(2) {
        assert!(w[0].last().unwrap().start_us < w[1][0].start_us);
        assert!(w[1][0].start_us - w[0][0].start_us <= 60_000_000);
    }
    assert_eq!(history_slices(&execs, Duration::from_secs(14 * 86_400)).len(), 1);
}

#[test]
fn arrivals_follow_the_rate_per_env() {
    let execs = generate(settings(10, 2.0));
    for env in ["PROD", "Dev"] {
        let n = execs.iter().filter(|e| e.env == env).count() as f64;
        assert!((n - 1200.0).abs() < 120.0, "{env}: {n}");
    }
    let mut starts: Vec<i64> = execs.iter().map(|e| e.start_us).collect();
    let sorted = { let mut s = starts.clone(); s.sort(); s };
    assert_eq!(starts, sorted, "executions come out in start order");
    starts.dedup();
}

#[test]
fn errors_and_timeouts_end_the_execution_with_status_lines() {
    let execs = generate(Settings { error_rate: 1.0, ..settings(2, 0.5) });
    for e in &execs {
        assert!(e.failed && e.invocations.len() == 1);
        let inv = &e.invocations[0];
        assert_eq!(inv.outcome, Outcome::Error);
        assert_eq!(inv.calls.len(), inv.function.ops.len() - 1);
        let report = log_lines(e).into_iter().find_map(|l| match parse_message(&l.message) {
            Parsed::Report(r) => Some(r),
            _ => None,
        });
        assert_eq!(report.unwrap().status.as_deref(), Some("error"));
    }
    let execs = generate(Settings { timeout_rate: 1.0, ..settings(2, 0.5) });
    for e in &execs {
        let inv = &e.invocations[0];
        assert_eq!(inv.duration_us(), inv.function.timeout_s as i64 * 1_000_000);
        let parsed: Vec<Parsed> = log_lines(e).iter().map(|l| parse_message(&l.message)).collect();
        assert!(parsed.iter().any(|p| matches!(p, Parsed::Report(r) if r.status.as_deref() == Some("timeout"))));
        assert!(parsed.iter().any(|p| matches!(p, Parsed::Timeout { request_id: Some(r), after_s } if *r == inv.request_id && *after_s == 30.0)));
        let docs = trace_documents(e, &deployment(&["PROD", "Dev"]));
        assert!(docs[0].contains("\"fault\":true"));
    }
    let execs = generate(Settings { malformed_rate: 1.0, ..settings(1, 0.5) });
    let line = log_lines(&execs[0]).into_iter().find(|l| l.message.contains("TIMING")).unwrap();
    assert!(line.message.ends_with("\"value_sec\": NaN}\n"));
    assert!(matches!(parse_message(&line.message), Parsed::Rejected { .. }));
}

    #[test]
fn the_function_zip_is_a_valid_archive() {
    assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
    let z = function_zip(&ATLAS[1], "Dev");
    assert_eq!(&z[..4], b"PK\x03\x04");
    let end = z.len() - 22;
    assert_eq!(&z[end..end + 4], b"PK\x05\x06");
    assert!(String::from_utf8_lossy(&z).contains("def lambda_handler(event, context):"));
    assert_ne!(function_zip(&ATLAS[1], "PROD"), z, "each env publishes different code");
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn args(flags: &[&str]) -> Args {
    use clap::Parser as _;
    Cli::try_parse_from(std::iter::once("simulate").chain(flags.iter().copied())).unwrap().args
}

#[test]
fn flags_and_profile_make_settings_and_all_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.toml");
    std::fs::write(
        &profile,
        r#"
rate = "30/m"
envs = ["PROD", "Dev", "Staging"]
error_rate = 0.01
slow = ["GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m"]
[latency]
"LFH/Bedrock.InvokeModel" = "lognormal(600ms, 0.25)"
"Bedrock.InvokeModel" = "lognormal(2.5s, 0.2)"
"Connect.StartOutboundCall@Dev" = "1.2s"
"#,
    )
    .unwrap();
    let s = args(&["--profile", profile.to_str().unwrap(), "--rate", "1/s", "--seed", "9", "--duration", "1h"]).settings().unwrap();
    assert_eq!((s.rate_per_s, s.seed, s.duration, s.error_rate), (1.0, 9, Duration::from_secs(3600), 0.01));
    assert_eq!(s.envs, ["PROD", "Dev", "Staging"]);
    assert_eq!(s.slow.len(), 1);
    let lfh = &ATLAS[0];
    assert_eq!(s.dist(lfh, &lfh.ops[0], "PROD", 0), Dist::LogNormal { median: 0.6, sigma: 0.25 });
    let errors = args(&[
        "--duration", "15d", "--rate", "fast", "--slow", "GDSH/Bedrock.InvokeModel@QA=9s", "--error-rate", "2", "--envs", "PROD,PROD",
    ])
    .settings()
    .unwrap_err();
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[test]
fn account_roles_name_a_role_and_optionally_the_environments_written_there() {
    let s = args(&[
        "--account-role", "arn:aws:iam::111111111111:role/latency-sentinel-reader@PROD",
        "--account-role", "arn:aws:iam::222222222222:role/latency-sentinel-reader",
    ])
    .settings()
    .unwrap();
    assert_eq!(s.accounts.len(), 2);
    assert_eq!((s.accounts[0].account_id(), s.accounts[0].envs.clone()), ("111111111111", vec!["PROD".to_string()]));
    assert_eq!(s.accounts[1].envs, ["PROD", "Dev"], "every environment without @");
    let errors = args(&[
        "--account-role", "arn:aws:iam::111111111111:user/someone",
        "--account-role", "arn:aws:iam::222222222222:role/r@QA",
        "--account-role", "arn:aws:iam::333333333333:role/r@Dev+PROD",
        "--account-role", "arn:aws:iam::333333333333:role/other",
        "--role-arn", "arn:aws:iam::123456789012:role/exec",
    ])
    .settings()
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].contains("not an IAM role ARN") && errors[1].contains("\"QA\" is not among"), "{errors:#?}");
    assert!(errors[2].contains("333333333333 is given twice") && errors[3].starts_with("--role-arn"), "{errors:#?}");
}
