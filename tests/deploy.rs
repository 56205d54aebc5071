//! The deployment files in `deploy/` checked with the tools that will read them: the IAM
//! policies grant exactly the AWS actions the code calls (found from the SDK crates' own
//! operation lists), the systemd unit passes `systemd-analyze verify`, the Prometheus config
//! and rules pass `promtool check` and their `promtool test rules` unit tests, the
//! Alertmanager config passes `amtool check-config` and routes as documented, and every
//! metric name the rules and dashboards use is one the daemon defines.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// IAM service prefix of each SDK crate whose operations our code calls. (The credential
/// chain's own crates, sso/ssooidc/sts, act on the caller's behalf and need no policy.)
const SERVICES: &[(&str, &str)] = &[
    ("aws-sdk-cloudwatchlogs", "logs"),
    ("aws-sdk-xray", "xray"),
    ("aws-sdk-lambda", "lambda"),
    ("aws-sdk-cloudwatch", "cloudwatch"),
    ("aws-sdk-iam", "iam"),
];

/// Every operation of every SDK crate in [`SERVICES`]: `snake_case op` → crate names. Read from
/// the crates' `src/operation/<op>/` directories, located with `cargo metadata`.
fn sdk_operations() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only the host's dependencies: a fresh cargo cache holds no other platform's crates
    // (windows-only ones such as anstyle-wincon), and `--offline` must not need them.
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--filter-platform", &host_triple(), "--manifest-path"])
        .arg(repo().join("Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        if !SERVICES.iter().any(|(c, _)| *c == name) {
            continue;
        }
        let dir = Path::new(p["manifest_path"].as_str().unwrap()).parent().unwrap().join("src/operation");
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                ops.entry(e.file_name().to_string_lossy().into_owned()).or_default().insert(name.to_string());
            }
        }
    }
    assert!(ops.contains_key("filter_log_events") && ops.contains_key("batch_get_traces"), "SDK operation lists not found");
    ops
}

/// The triple of the machine running the tests, as rustc names it.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc -vV prints the host triple").trim().to_string()
}

fn pascal(op: &str) -> String {
    op.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// The IAM actions the given files call: each `.operation()` fluent-builder call whose name
/// is an SDK operation, attributed to the SDK crate the file names when several have it.
fn actions_called(files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let ops = sdk_operations();
    let re = regex::Regex::new(r"\.([a-z][a-z0-9_]*)\(\)").unwrap();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Test files (a module's tests.rs) make no AWS calls.
    for f in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit tests inside the file make no AWS calls.
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for c in re.captures_iter(code) {
            let Some(crates) = ops.get(&c[1]) else { continue };
            let named: BTreeSet<&String> = crates.iter().filter(|k| code.contains(&k.replace('-', "_"))).collect();
            let candidates: Vec<&String> = if named.is_empty() { crates.iter().collect() } else { named.into_iter().collect() };
            assert_eq!(candidates.len(), 1, "{}: .{}() could be {candidates:?}; name the SDK crate in the file", f.display(), &c[1]);
            let prefix = SERVICES.iter().find(|(k, _)| k == candidates[0]).unwrap().1;
            found.entry(format!("{prefix}:{}", pascal(&c[1]))).or_default().insert(f.strip_prefix(repo()).unwrap().display().to_string());
        }
    }
    found
}

fn policy_actions(path: &str) -> BTreeSet<String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(repo().join(path)).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(doc["Version"], "2012-10-17", "{path}");
    let mut actions = BTreeSet::new();
    for s in doc["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow", "{path}: only Allow statements");
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none(), "{path}: NotAction/NotResource grant too much");
        let list: Vec<&Value> = match &s["Action"] {
            Value::String(_) => vec![&s["Action"]],
            Value::Array(a) => a.iter().collect(),
            other => panic!("{path}: Action {other}"),
        };
        for a in list {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "{path}: wildcard action {a}");
            actions.insert(a.to_string());
        }
        assert!(!s["Resource"].is_null(), "{path}: statement without Resource");
    }
    actions
}

fn compare(path: &str, called: &BTreeMap<String, BTreeSet<String>>, implied: &[(&str, &str)]) {
    let granted = policy_actions(path);
    let mut needed: BTreeSet<String> = called.keys().cloned().collect();
    for (action, because) in implied {
        if called.contains_key(*because) {
            needed.insert(action.to_string());
        }
    }
    let missing: Vec<String> = needed.difference(&granted).map(|a| format!("  {a} (called in {:?})", called.get(a))).collect();
    let extra: Vec<&String> = granted.difference(&needed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{path} does not match the code.\nCalled but not granted:\n{}\nGranted but never called: {extra:?}",
        missing.join("\n")
    );
}

#[test]
fn the_iam_policy_grants_exactly_the_aws_calls_the_daemon_makes() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    // simulate/ and init/ (run with a person's credentials) have their own policies;
    // endpoints.rs builds probe requests that are stopped before they are signed (never
    // sent, so they need no permission).
    files.retain(|f| !f.starts_with(repo().join("src/simulate")) && !f.starts_with(repo().join("src/init")) && !f.ends_with("src/endpoints.rs"));
    let called = actions_called(&files);
    for a in ["logs:FilterLogEvents", "logs:DescribeLogGroups", "lambda:ListAliases", "xray:GetTraceSummaries", "xray:BatchGetTraces"] {
        assert!(called.contains_key(a), "the scan misses {a}: {called:?}");
    }
    compare("deploy/iam/policy.json", &called, &[]);
}

/// Watching other accounts: the reader role there grants what the daemon calls (the same
/// reads as `policy.json`), its trust policy lets the daemon's role assume it only with the
/// external id, and the daemon's own extra policy is `sts:AssumeRole` on those roles, which
/// the SDK's assume-role provider calls (`src/aws.rs`).
#[test]
fn the_accounts_policies_grant_what_assuming_and_reading_need() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files.retain(|f| !f.starts_with(repo().join("src/simulate")) && !f.starts_with(repo().join("src/init")) && !f.ends_with("src/endpoints.rs"));
    compare("deploy/iam/reader-role-policy.json", &actions_called(&files), &[]);
    let aws = std::fs::read_to_string(repo().join("src/aws.rs")).unwrap();
    assert!(aws.contains("AssumeRoleProvider"), "the daemon assumes roles through the SDK's provider");
    assert_eq!(policy_actions("deploy/iam/accounts-policy.json"), ["sts:AssumeRole".to_string()].into_iter().collect());
    let trust: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/iam/reader-trust-policy.json")).unwrap()).unwrap();
    let s = &trust["Statement"][0];
    assert_eq!((s["Effect"].as_str(), s["Action"].as_str()), (Some("Allow"), Some("sts:AssumeRole")));
    assert!(s["Principal"]["AWS"].as_str().is_some_and(|p| p.starts_with("arn:aws:iam::")), "a named principal, not *");
    assert!(s["Condition"]["StringEquals"]["sts:ExternalId"].is_string(), "the external id is required");
}

#[test]
fn the_simulate_policy_grants_exactly_what_simulate_calls() {
    let mut files = Vec::new();
    rust_files(&repo().join("src/simulate"), &mut files);
    let called = actions_called(&files);
    // CreateFunction hands the execution role to Lambda, which IAM checks as iam:PassRole.
    compare("deploy/iam/simulate-policy.json", &called, &[("iam:PassRole", "lambda:CreateFunction")]);
}

#[test]
fn the_init_policy_grants_exactly_what_init_calls() {
    let mut files = Vec::new();
    rust_files(&repo().join("src/init"), &mut files);
    let called = actions_called(&files);
    assert!(called.contains_key("lambda:ListFunctions"), "the scan misses init's calls: {called:?}");
    compare("deploy/iam/init-policy.json", &called, &[]);
}

fn which(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/latency-sentinel.service")).unwrap();
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=latency-sentinel",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "ExecStartPre=/usr/local/bin/latency-sentinel check-config --config %d/config.toml",
        "ExecStart=/usr/local/bin/latency-sentinel --log-format json run --config %d/config.toml",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l.trim() == line), "the unit lacks {line:?}");
    }
    assert!(which("systemd-analyze"), "systemd-analyze is missing: Debian's systemd package has it (scripts/test-env.sh install)");
    // verify checks that the executables exist: point the copy at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latency-sentinel.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/latency-sentinel", env!("CARGO_BIN_EXE_latency-sentinel"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("latency-sentinel")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify:\n{text}");
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_as_non_root_in_another() {
    let df = std::fs::read_to_string(repo().join("deploy/docker/Dockerfile")).unwrap();
    let froms: Vec<&str> = df.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(froms[0].ends_with(" AS build") && df.contains("cargo build --release --locked"));
    let runtime = df.split(froms[1]).nth(1).unwrap();
    let user = runtime.lines().find_map(|l| l.strip_prefix("USER ")).expect("the runtime stage sets USER");
    assert!(!user.starts_with('0') && !user.starts_with("root"), "USER {user}");
    assert!(runtime.contains("COPY --from=build") && !runtime.contains("cargo "), "the runtime stage only copies the binary");
    assert!(runtime.contains(r#"ENTRYPOINT ["/usr/local/bin/latency-sentinel""#));
    // Everything the build stage copies from the context is let through the ignore file.
    let ignore = std::fs::read_to_string(repo().join("deploy/docker/Dockerfile.dockerignore")).unwrap();
    for l in df.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        let parts: Vec<&str> = l.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(ignore.lines().any(|i| i.trim() == format!("!{src}")), "{src} is copied but ignored");
            assert!(repo().join(src).exists(), "{src} does not exist");
        }
    }
    // The commands the image and the unit run exist.
    let help = Command::new(env!("CARGO_BIN_EXE_latency-sentinel")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("run") && help.contains("check-config") && help.contains("--log-format"), "{help}");
}

fn run_ok(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).current_dir(repo()).output().unwrap_or_else(|e| panic!("{tool}: {e} (scripts/test-env.sh install)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{tool} {args:?}:\n{text}");
    text
}

#[test]
fn prometheus_config_and_rules_check_and_their_unit_tests_pass() {
    let text = run_ok("promtool", &["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(text.contains("SUCCESS"), "{text}");
    let mut tests: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/prometheus/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_test.yml"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no promtool unit tests in deploy/prometheus/rules");
    for t in tests {
        let text = run_ok("promtool", &["test", "rules", t.to_str().unwrap()]);
        assert!(text.contains("SUCCESS"), "{text}");
    }
}

#[test]
fn the_alertmanager_example_checks_and_routes_as_documented() {
    assert!(which("amtool"), "amtool is missing: Debian's prometheus-alertmanager package has it (scripts/test-env.sh install)");
    let cfg = "deploy/alertmanager/alertmanager.yml";
    let text = run_ok("amtool", &["check-config", cfg]);
    assert!(text.contains("SUCCESS"), "{text}");
    for (labels, receiver) in [
        ("alertname=LatencyBudgetExceeded env=PROD severity=page", "oncall-pager"),
        ("alertname=LatencyBudgetExceeded env=PROD severity=warning", "latency-team"),
        ("alertname=LatencyBudgetExceeded env=Dev severity=page", "latency-team"),
        ("alertname=LatencySentinelDown", "oncall-pager"),
        ("alertname=LatencySentinelPollLagHigh", "sentinel-operators"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file", cfg];
        args.extend(labels.split(' '));
        let out = run_ok("amtool", &args);
        assert_eq!(out.lines().next().map(str::trim), Some(receiver), "{labels}: {out}");
    }
}

/// Metric names the daemon defines (string literals `"sentinel_..."` in src/).
fn defined_metrics() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let re = regex::Regex::new(r#""(sentinel_[a-z0-9_]+)""#).unwrap();
    files.iter().flat_map(|f| re.captures_iter(&std::fs::read_to_string(f).unwrap()).map(|c| c[1].to_string()).collect::<Vec<_>>()).collect()
}

#[test]
fn rules_and_dashboards_use_only_metrics_the_daemon_defines() {
    let defined = defined_metrics();
    let re = regex::Regex::new(r"\b(sentinel_[a-z0-9_]+)").unwrap();
    let mut files = vec![repo().join("deploy/prometheus/rules/latency-sentinel.rules.yml")];
    for e in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            files.push(p);
        }
    }
    let mut unknown = BTreeSet::new();
    for f in &files {
        for c in re.captures_iter(&std::fs::read_to_string(f).unwrap()) {
            let name = &c[1];
            let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            if !defined.contains(name) && !defined.contains(base) {
                unknown.insert(format!("{name} in {}", f.strip_prefix(repo()).unwrap().display()));
            }
        }
    }
    assert!(unknown.is_empty(), "metrics the daemon does not define: {unknown:#?}");
}
