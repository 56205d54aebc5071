//! The Grafana dashboards in `dashboards/`, tested without Grafana: the JSON is valid
//! dashboard JSON (schema version, unique panel ids, every panel on the `${datasource}`
//! Prometheus variable, every `$variable` defined), every PromQL expression parses
//! (`promtool check rules` on a rules file holding each expression as a recording rule, with
//! the template variables replaced by concrete values), and a real Prometheus scraping the
//! daemon, fed by `simulate`, returns data for every panel query and variable query.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Grafana's own variables, and what a 15 s scrape interval gives them.
const BUILTINS: &[(&str, &str)] = &[("__rate_interval", "1m"), ("__interval", "15s"), ("__range", "1h")];

/// Concrete values for the template variables (what a user picks for the demo's slowdown).
const VALUES: &[(&str, &str)] = &[
    ("env", "Dev"),
    ("function", "GenerateDynamicScenarioHandler"),
    ("operation", "Bedrock.InvokeModel"),
    ("source", ".*"),
    ("baseline", "PROD"),
    ("candidate", "Dev"),
    ("job", ".*"),
    // "All", as the account and region variables default to.
    ("account", ".*"),
    ("region", ".*"),
];

/// One query of one panel.
#[derive(Debug, Clone)]
struct Query {
    dashboard: String,
    panel_id: i64,
    panel: String,
    ref_id: String,
    expr: String,
}

impl Query {
    fn name(&self) -> String {
        format!("{} / panel {} {:?} / {}", self.dashboard, self.panel_id, self.panel, self.ref_id)
    }
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected the four dashboards, found {files:?}");
    files
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested.iter());
        }
    }
    out
}

fn queries(path: &Path, dashboard: &Value) -> Vec<Query> {
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let name = name.clone();
            p["targets"].as_array().into_iter().flatten().map(move |t| Query {
                dashboard: name.clone(),
                panel_id: p["id"].as_i64().unwrap_or(-1),
                panel: p["title"].as_str().unwrap_or("").to_string(),
                ref_id: t["refId"].as_str().unwrap_or("").to_string(),
                expr: t["expr"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn variables(dashboard: &Value) -> Vec<&Value> {
    dashboard["templating"]["list"].as_array().map(|l| l.iter().collect()).unwrap_or_default()
}

/// `$name` and `${name}` references in a string.
fn references(s: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    re.captures_iter(s).map(|c| c[1].to_string()).collect()
}

/// Replaces template variables with [`VALUES`] and [`BUILTINS`] (longest names first).
fn substitute(s: &str) -> String {
    let mut all: Vec<(&str, &str)> = VALUES.iter().chain(BUILTINS).copied().collect();
    all.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = s.to_string();
    for (k, v) in all {
        out = out.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    assert!(!out.contains('$'), "unsubstituted variable in {out}");
    out
}

/// `label_values(selector, label)` as a PromQL query returning one series per value.
fn variable_query(definition: &str) -> String {
    let inner = definition.trim().strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')).unwrap_or_else(|| panic!("{definition}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    format!("group by ({}) ({})", label.trim(), selector.trim())
}

#[test]
fn dashboards_are_valid_grafana_json() {
    let mut uids = BTreeSet::new();
    let mut all_vars = BTreeSet::new();
    for path in dashboard_files() {
        let d = load(&path);
        let f = path.display();
        assert!(d["schemaVersion"].as_i64().unwrap_or(0) >= 39, "{f}: schemaVersion");
        assert!(!d["title"].as_str().unwrap_or("").is_empty(), "{f}: title");
        let uid = d["uid"].as_str().unwrap_or("");
        assert!(!uid.is_empty() && uid.len() <= 40, "{f}: uid {uid:?} (Grafana allows 40 characters)");
        assert!(uids.insert(uid.to_string()), "{f}: uid {uid} used twice");
        assert!(d.get("id").is_none_or(Value::is_null), "{f}: a provisioned dashboard has no numeric id");

        // The datasource variable and the variables built on it.
        let vars = variables(&d);
        let ds = vars.iter().find(|v| v["name"] == "datasource").unwrap_or_else(|| panic!("{f}: no datasource variable"));
        assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")), "{f}");
        let mut defined: BTreeSet<String> = BUILTINS.iter().map(|(k, _)| k.to_string()).collect();
        for v in &vars {
            let name = v["name"].as_str().unwrap();
            assert!(defined.insert(name.to_string()), "{f}: variable {name} defined twice");
            all_vars.insert(name.to_string());
            if v["type"] == "query" {
                assert_eq!(v["datasource"], serde_json::json!({"type": "prometheus", "uid": "${datasource}"}), "{f}: variable {name}");
                let def = v["definition"].as_str().unwrap();
                assert!(def.starts_with("label_values("), "{f}: variable {name} should come from label_values: {def}");
                assert_eq!(v["query"]["query"].as_str(), Some(def), "{f}: variable {name}: definition and query differ");
                for r in references(def) {
                    assert!(defined.contains(&r), "{f}: variable {name} uses ${r} before it is defined");
                }
            }
        }

        // Panels: unique ids, on the grid, on the datasource variable, variables defined.
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("");
            let id = p["id"].as_i64().unwrap_or_else(|| panic!("{f}: panel {title:?} has no id"));
            assert!(ids.insert(id), "{f}: panel id {id} used twice");
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_i64().unwrap(), g["w"].as_i64().unwrap());
            assert!(x >= 0 && w > 0 && x + w <= 24 && g["h"].as_i64().unwrap() > 0, "{f}: panel {id} gridPos {g}");
            if p["type"] == "row" {
                continue;
            }
            assert!(!title.is_empty(), "{f}: panel {id} has no title");
            assert_eq!(p["datasource"], serde_json::json!({"type": "prometheus", "uid": "${datasource}"}), "{f}: panel {id} datasource");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{f}: panel {id} has no targets"));
            assert!(!targets.is_empty(), "{f}: panel {id} has no targets");
            let mut refs = BTreeSet::new();
            for t in targets {
                assert!(refs.insert(t["refId"].as_str().unwrap()), "{f}: panel {id}: refId used twice");
                assert!(t["datasource"].is_null() || t["datasource"] == p["datasource"], "{f}: panel {id}: target datasource");
                assert!(!t["expr"].as_str().unwrap_or("").is_empty(), "{f}: panel {id}: empty expr");
                let text = format!("{} {} {}", t["expr"], t["legendFormat"], title);
                for r in references(&text) {
                    assert!(defined.contains(&r), "{f}: panel {id} uses undefined variable ${r}");
                }
            }
        }
    }
    for v in ["env", "function", "operation"] {
        assert!(all_vars.contains(v), "no dashboard has the {v} variable");
    }
    // The provisioning files point Grafana at a Prometheus datasource and at this folder.
    let ds = std::fs::read_to_string(repo().join("dashboards/provisioning/datasources/prometheus.yml")).unwrap();
    assert!(ds.contains("apiVersion: 1") && ds.contains("type: prometheus"), "{ds}");
    let prov = std::fs::read_to_string(repo().join("dashboards/provisioning/dashboards/latency-sentinel.yml")).unwrap();
    assert!(prov.contains("apiVersion: 1") && prov.contains("type: file") && prov.contains("path:"), "{prov}");
}

/// Every expression, as a recording rule per query, through `promtool check rules`.
#[test]
fn every_promql_expression_parses() {
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut names = Vec::new();
    for path in dashboard_files() {
        let d = load(&path);
        for q in queries(&path, &d) {
            names.push(q.name());
            rules.push_str(&format!("      - record: dashboard:query_{}\n        expr: {}\n", names.len(), serde_json::to_string(&substitute(&q.expr)).unwrap()));
        }
        for v in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            names.push(format!("{} / variable {}", path.display(), v["name"]));
            let expr = substitute(&variable_query(v["definition"].as_str().unwrap()));
            rules.push_str(&format!("      - record: dashboard:query_{}\n        expr: {}\n", names.len(), serde_json::to_string(&expr).unwrap()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new("promtool").args(["check", "rules"]).arg(&file).output().expect("promtool (scripts/test-env.sh install)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // Name the panels behind the rule numbers promtool reports.
        let re = regex::Regex::new(r"dashboard:query_(\d+)").unwrap();
        let named = re.replace_all(&text, |c: &regex::Captures| names[c[1].parse::<usize>().unwrap() - 1].clone());
        panic!("promtool check rules failed:\n{named}\n(the rules file:\n{rules})");
    }
    assert!(text.contains(&format!("{} rules found", names.len())), "{text}");
}

/// The number of series an instant query returns (an error is a panic: the expression was
/// checked by promtool, so Prometheus must accept it).
fn result_count(prom_port: u16, expr: &str) -> usize {
    let url = format!("http://127.0.0.1:{prom_port}/api/v1/query?query={}", pct(expr));
    let Some((status, body)) = http_get(&url) else { return 0 };
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!((status, v["status"].as_str()), (200, Some("success")), "{expr}: {body}");
    v["data"]["result"].as_array().map_or(0, Vec::len)
}

/// Daemon sections: both sources, quick polls, budgets (one the Dev slowdown breaches), fast
/// evaluation, CloudWatch publishing into moto.
fn sections() -> String {
    fast_logs(&[]) + SECTIONS
}

const SECTIONS: &str = r#"[xray]
poll_interval = "1s"
settle_delay = "0s"
lookback = "2m"
start_lookback = "20m"
requests_per_second = 50.0
[alerts]
evaluation_interval = "1s"
[metrics]
quantile_window = "10m"
[cloudwatch]
enabled = true
publish_interval = "2s"
[[budgets]]
name = "bedrock-p95"
operation = "Bedrock.InvokeModel"
p95 = "5s"
window = "10m"
for = "0s"
keep_firing_for = "1m"
min_samples = 5
severity = "page"
[[budgets]]
name = "everything-p95"
p95 = "60s"
window = "10m"
for = "0s"
min_samples = 5
"#;

#[test]
fn every_panel_query_returns_data_from_a_real_prometheus() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let simulate_log = dir.path().join("simulate.log");
    // History with a Dev slowdown, failures and broken lines, then live traffic.
    let child = Command::new(env!("CARGO_BIN_EXE_latency-sentinel"))
        .args(["simulate", "--endpoint-url", &moto.url(), "--region", "us-east-1", "--duration", "5m", "--rate", "1/s", "--seed", "21"])
        .args(["--slow", "GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-4m"])
        .args(["--error-rate", "0.01", "--timeout-rate", "0.01", "--malformed-rate", "0.01", "--follow"])
        .envs(AWS_ENV.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&simulate_log).unwrap())
        .spawn()
        .expect("start simulate");
    let _simulate = Proc { child, name: "simulate".into() };
    wait_for("simulate to write the history", Duration::from_secs(90), || {
        std::fs::read_to_string(&simulate_log).ok().filter(|l| l.contains("Wrote the simulated history")).map(|_| ())
    });
    let daemon = Daemon::start(dir.path(), &daemon_config(&moto, &sections()));
    let (_prom, prom_port) = start_prometheus(dir.path(), daemon.port);

    let mut checks: Vec<(String, String)> = Vec::new();
    for path in dashboard_files() {
        let d = load(&path);
        for q in queries(&path, &d) {
            checks.push((q.name(), substitute(&q.expr)));
        }
        for v in variables(&d).into_iter().filter(|v| v["type"] == "query") {
            checks.push((format!("{} / variable {}", path.display(), v["name"]), substitute(&variable_query(v["definition"].as_str().unwrap()))));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut empty: Vec<&(String, String)>;
    loop {
        empty = checks.iter().filter(|(_, expr)| result_count(prom_port, expr) == 0).collect();
        if empty.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    if !empty.is_empty() {
        // Which metric names do the empty queries use that Prometheus has never seen?
        let names_url = format!("http://127.0.0.1:{prom_port}/api/v1/label/__name__/values");
        let known: BTreeSet<String> = http_get(&names_url)
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| v["data"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect()))
            .unwrap_or_default();
        let re = regex::Regex::new(r"\b(sentinel_[a-z0-9_]+|up)\b").unwrap();
        let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, expr) in &empty {
            for m in re.captures_iter(expr).map(|c| c[1].to_string()) {
                if !known.contains(&m) {
                    missing.entry(m).or_default().push(name.clone());
                }
            }
        }
        let list: Vec<String> = empty.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
        let missing: Vec<String> = missing.iter().map(|(m, used)| format!("  {m} (used by {} queries)", used.len())).collect();
        let logs = daemon.logs();
        let tail: Vec<&str> = logs.lines().rev().take(20).collect();
        panic!(
            "{} of {} queries returned no data:\n{}\nmetrics not exported by the daemon (never scraped):\n{}\ndaemon log tail:\n{}",
            empty.len(),
            checks.len(),
            list.join("\n"),
            if missing.is_empty() { "  (none: the metrics exist, but not with these labels)".to_string() } else { missing.join("\n") },
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // The demo's question, answered by the overview: exactly the Dev Bedrock call is firing.
    let firing = result_count(prom_port, r#"sentinel_alerts{alertstate="firing", env="Dev", function="GenerateDynamicScenarioHandler", operation="Bedrock.InvokeModel"}"#);
    assert_eq!(firing, 1);
    assert_eq!(result_count(prom_port, r#"sentinel_alerts{alertstate="firing", env="PROD"}"#), 0);
}
