//! Config loading: the shipped example, defaults, and error reporting.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn example_config_parses() {
    let text = include_str!("../../config/example.toml");
    let c = load_str(text, &no_env).expect("example config is valid");
    assert_eq!(c.budgets.len(), 2);
    assert_eq!(c.budgets[0].threshold(), Some((0.95, Duration::from_secs(5))));
    assert_eq!(c.aws, Config::default().aws, "no emulator endpoint, no fixed region in a file meant to be copied");
}

/// The example is safe to copy to a real account: every key it sets equals the built-in
/// default unless its line says `# example:`, and it names every key there is (the
/// `[[budgets]]` are examples by nature).
#[test]
fn the_example_is_the_default_except_where_it_says_example() {
    let text = include_str!("../../config/example.toml");
    let default = Config::default();
    let mut section = String::new();
    let mut in_budgets = false;
    let mut named = std::collections::BTreeSet::new();
    let mut differ = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(array) = line.strip_prefix("[[") {
            // Arrays of tables ([[budgets]], [[accounts]]) are examples by nature.
            in_budgets = !array.is_empty();
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_end_matches(']').to_string();
            in_budgets = false;
            continue;
        }
        if line.is_empty() || line.starts_with('#') || in_budgets {
            continue;
        }
        let key = line.split('=').next().unwrap().trim().to_string();
        named.insert(format!("{section}.{key}"));
        // The key alone over the defaults: equal to them when its value is the default.
        let alone: Config = toml::from_str(&format!("[{section}]\n{line}")).unwrap_or_else(|e| panic!("{section}.{key}: {e}"));
        let marked = line.contains("# example:");
        if (alone != default) != marked {
            differ.push(format!("{section}.{key} ({})", if marked { "marked as an example but is the default" } else { "differs from the default without `# example:`" }));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
    let toml::Value::Table(sections) = toml::Value::try_from(&default).unwrap() else { unreachable!() };
    let mut missing = Vec::new();
    for (section, keys) in &sections {
        if let toml::Value::Table(keys) = keys {
            missing.extend(keys.keys().map(|k| format!("{section}.{k}")).filter(|k| !named.contains(k)));
        }
    }
    assert!(missing.is_empty(), "config/example.toml does not name: {missing:?}");
}

#[test]
fn the_demo_config_is_valid_and_points_at_the_emulator() {
    let c = load_str(include_str!("../../config/demo.toml"), &no_env).expect("demo config is valid");
    assert_eq!(c.aws.endpoint_url, "http://127.0.0.1:5000");
    assert!(!c.budgets.is_empty());
}

#[test]
fn defaults_round_trip_through_toml() {
    let mut c = Config::default();
    c.logs.log_groups = vec!["/aws/lambda/x".into()];
    c.budgets.push(BudgetConfig { p95: Some(Duration::from_secs(2)), ..BudgetConfig::default() });
    let text = toml::to_string(&c).unwrap();
    assert_eq!(load_str(&text, &no_env).unwrap(), c);
}

#[test]
fn three_mistakes_are_all_reported_with_key_paths() {
    let text = r#"
[logs]
log_groups = ["/aws/lambda/a"]
poll_interval = "fast"
[http]
listen = "everywhere"
[xray]
enabeld = true
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{shown:#?}");
    assert!(shown.contains(&"logs.poll_interval: expected a duration like \"30s\", got \"fast\"".to_string()), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with("http.listen: expected an address")), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with("xray.enabeld: unknown field `enabeld`")), "{shown:#?}");
}

#[test]
fn several_bad_keys_in_one_section_are_each_named() {
    let text = r#"
[logs]
log_groups = "not-a-list"
poll_interval = 30
ingestion_delay = "2 fortnights please"
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"logs.log_groups") && keys.contains(&"logs.poll_interval") && keys.contains(&"logs.ingestion_delay"), "{errors:?}");
}

#[test]
fn secrets_come_from_the_environment_and_are_redacted() {
    let text = r#"
[logs]
log_groups = ["/aws/lambda/a"]
[alerts]
webhook_url = "${HOOK}"
"#;
    let env = |k: &str| match k {
        "HOOK" => Some("https://hooks.example.test/T000/secret-token".to_string()),
        "SENTINEL_API_TOKEN" => Some("tok".to_string()),
        _ => None,
    };
    let c = load_str(text, &env).unwrap();
    assert_eq!(c.alerts.webhook_url.expose(), "https://hooks.example.test/T000/secret-token");
    assert_eq!(c.http.api_token.expose(), "tok");
    let debug = format!("{c:?}");
    assert!(!debug.contains("secret-token") && !debug.contains("\"tok\""), "{debug}");
    let missing = load_str(text, &no_env).unwrap_err();
    assert_eq!(missing[0].to_string(), "alerts.webhook_url: environment variable HOOK is not set");
}

#[test]
fn conflicting_and_unreachable_budgets_are_rejected() {
    let text = r#"
[logs]
log_groups = ["/aws/lambda/a"]
[[budgets]]
operation = "Bedrock.*"
p95 = "5s"
[[budgets]]
operation = "*k.Invoke*"
p95 = "3s"
[[budgets]]
operation = "Bedrock.*"
p99 = "9s"
[[budgets]]
operation = "DynamoDB.PutItem"
p95 = "1s"
p99 = "2s"
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(shown.iter().any(|s| s.starts_with("budgets[1]: conflicts with budgets[0]")), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with("budgets[2]: unreachable: same patterns as budgets[0]")), "{shown:#?}");
    assert!(shown.iter().any(|s| s.starts_with("budgets[3].p95: set exactly one")), "{shown:#?}");
    // More specific budgets don't conflict with general ones.
    let ok = r#"
[logs]
log_groups = ["/aws/lambda/a"]
[[budgets]]
p95 = "10s"
[[budgets]]
operation = "Bedrock.InvokeModel"
p95 = "5s"
[[budgets]]
operation = "Bedrock.InvokeModel"
env = "PROD"
p95 = "4s"
"#;
    load_str(ok, &no_env).unwrap();
}

#[test]
fn env_budget_unreachable_without_any_env_source() {
    let text = r#"
[logs]
log_groups = ["/aws/lambda/a"]
[environments]
lambda_aliases = false
[[budgets]]
env = "PROD"
p95 = "1s"
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    assert!(errors[0].to_string().starts_with("budgets[0].env: unreachable"), "{errors:?}");
}

#[test]
fn listening_beyond_loopback_needs_a_token_or_an_explicit_opt_out() {
    let base = "[logs]\nlog_groups = [\"/aws/lambda/a\"]\n[http]\n";
    let errors = load_str(&format!("{base}listen = \"0.0.0.0:9750\"\n"), &no_env).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "http.listen");
    assert!(errors[0].reason.contains("no http.api_token") && errors[0].reason.contains("allow_unauthenticated"), "{errors:?}");
    assert!(load_str(&format!("{base}listen = \"[::]:9750\"\n"), &no_env).is_err());
    // A token (in the file or SENTINEL_API_TOKEN), the explicit opt-out, or loopback: fine.
    load_str(&format!("{base}listen = \"0.0.0.0:9750\"\napi_token = \"t\"\n"), &no_env).unwrap();
    let token = |k: &str| (k == "SENTINEL_API_TOKEN").then(|| "t".to_string());
    load_str(&format!("{base}listen = \"0.0.0.0:9750\"\n"), &token).unwrap();
    load_str(&format!("{base}listen = \"0.0.0.0:9750\"\nallow_unauthenticated = true\n"), &no_env).unwrap();
    load_str(&format!("{base}listen = \"127.0.0.1:9750\"\n"), &no_env).unwrap();
    load_str(&format!("{base}listen = \"[::1]:9750\"\n"), &no_env).unwrap();
}

#[test]
fn the_alertmanager_url_is_a_secret() {
    let text = "[logs]\nlog_groups = [\"/aws/lambda/a\"]\n[alerts]\nalertmanager_url = \"${AM}\"\n";
    let env = |k: &str| (k == "AM").then(|| "https://sentinel:hunter2@am.example.test".to_string());
    let c = load_str(text, &env).unwrap();
    assert_eq!(c.alerts.alertmanager_url.expose(), "https://sentinel:hunter2@am.example.test");
    assert!(!format!("{c:?}").contains("hunter2"));
    let fallback = |k: &str| (k == "SENTINEL_ALERTMANAGER_URL").then(|| "http://127.0.0.1:9093".to_string());
    let c = load_str("[logs]\nlog_groups = [\"/aws/lambda/a\"]\n", &fallback).unwrap();
    assert_eq!(c.alerts.alertmanager_url.expose(), "http://127.0.0.1:9093");
    // A bad value is named, never echoed.
    let errors = load_str("[logs]\nlog_groups = [\"/aws/lambda/a\"]\n[alerts]\nalertmanager_url = \"ftp://u:hunter2@x\"\n", &no_env).unwrap_err();
    assert_eq!(errors[0].key, "alerts.alertmanager_url");
    assert!(!errors[0].to_string().contains("hunter2"), "{errors:?}");
}

#[test]
fn offline_commands_need_only_what_they_use() {
    let text = "[storage]\npath = \"/tmp/x.db\"\n[http]\nlisten = \"0.0.0.0:9750\"\n";
    let daemon = load_str(text, &no_env).unwrap_err();
    let keys: Vec<&str> = daemon.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["http.listen", "logs.log_groups"], "{daemon:?}");
    let c = crate::config::load_str_for(text, &no_env, crate::config::Purpose::Offline).unwrap();
    assert_eq!(c.storage.path, "/tmp/x.db");
    // Wrong values are still wrong offline.
    let errors = crate::config::load_str_for("[storage]\nretention = \"1s\"\n", &no_env, crate::config::Purpose::Offline).unwrap_err();
    assert_eq!(errors[0].key, "storage.retention");
}

#[test]
fn accounts_parse_with_their_secret_from_the_environment() {
    let text = r#"
[aws]
region = "us-east-1"
[logs]
log_group_prefixes = ["/aws/lambda/"]
[[accounts]]
name = "prod"
role_arn = "arn:aws:iam::111111111111:role/latency-sentinel-reader"
external_id = "${PROD_EXTERNAL_ID}"
regions = ["us-east-1", "eu-west-1"]
env = "PROD"
[accounts.logs]
log_group_prefixes = ["/aws/lambda/prod-"]
[[accounts]]
name = "dev"
env = "Dev"
[accounts.xray]
enabled = false
"#;
    let env = |name: &str| (name == "PROD_EXTERNAL_ID").then(|| "s3cret-id".to_string());
    let c = load_str(text, &env).unwrap();
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(c.accounts[0].external_id.expose(), "s3cret-id");
    assert!(!format!("{:?}", c.accounts[0]).contains("s3cret-id"), "never shown");
    assert_eq!(c.accounts[0].logs.log_group_prefixes.as_deref(), Some(["/aws/lambda/prod-".to_string()].as_slice()));
    assert_eq!(c.accounts[1].xray.enabled, Some(false));
    let errors = load_str(text, &no_env).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].to_string(), "accounts[0].external_id: environment variable PROD_EXTERNAL_ID is not set");
}

#[test]
fn every_account_mistake_is_named_at_once() {
    let text = r#"
[[accounts]]
name = "prod account"
role_arn = "arn:aws:iam::1111:role/x"
regions = ["us-east-1", "Mars-1", "us-east-1"]
session_name = "x"
[[accounts]]
name = "dev"
external_id = "abc"
rgions = ["us-east-1"]
[[accounts]]
name = "dev"
regions = ["eu-west-1"]
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "accounts[0].name",
        "accounts[0].role_arn",
        "accounts[0].regions[1]",
        "accounts[0].regions[2]",
        "accounts[0].session_name",
        "accounts[1].rgions",
        "accounts[1].external_id",
        "accounts[2].name",
    ] {
        assert!(keys.contains(&k), "{k} not named in {shown:#?}");
    }
    assert!(shown.iter().any(|s| s.contains("[aws] region is not set")), "{shown:#?}");
    assert!(keys.contains(&"accounts[1].logs"), "no log groups for the account: {shown:#?}");
}

#[test]
fn shared_storage_and_cluster_mistakes_are_named_and_the_url_never_shown() {
    let text = r#"
[storage]
url = "mysql://root:hunter2@db/sentinel"
pool_size = 0
[shard]
index = 0
count = 2
[cluster]
lease_ttl = "1s"
node_id = "has space"
"#;
    let errors = load_str(text, &no_env).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in ["storage.url", "storage.pool_size", "shard.count", "cluster.lease_ttl", "cluster.node_id"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert!(errors.iter().all(|e| !e.to_string().contains("hunter2")), "the URL's password is never echoed: {errors:?}");
    let env = |k: &str| (k == "DB_URL").then(|| "postgres://sentinel:s3cret@127.0.0.1:5432/sentinel".to_string());
    let c = load_str("[storage]\nurl = \"${DB_URL}\"\n[cluster]\nnode_id = \"a\"\n[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n", &env).unwrap();
    assert!(c.storage.url.expose().starts_with("postgres://"));
    assert!(!format!("{c:?}").contains("s3cret"), "a secret in Debug output");
    assert_eq!((c.storage.pool_size, c.cluster.lease_ttl), (8, std::time::Duration::from_secs(30)));
}

#[test]
fn anomaly_settings_are_checked_all_at_once() {
    let no_env = |_: &str| None;
    let text = "[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n[anomaly]\nenabled = true\nseasonality = \"daily\"\nmin_ratio = 0.9\n\
                max_p_value = 1.5\nmin_samples = 0\nwindow = \"10s\"\nbaseline = \"20s\"\n";
    let errors = load_str(text, &no_env).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in ["anomaly.seasonality", "anomaly.min_ratio", "anomaly.max_p_value", "anomaly.min_samples", "anomaly.window", "anomaly.baseline"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    let c = load_str("[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n[anomaly]\nenabled = true\nfor = \"1m\"\n", &no_env).unwrap();
    assert!(c.anomaly.enabled);
    assert_eq!(c.anomaly.for_, std::time::Duration::from_secs(60));
    let rule = crate::evaluate::anomaly::Rule::from_config(&c.anomaly);
    assert_eq!((rule.window_ms, rule.min_samples), (900_000, 30));
    assert_eq!(rule.seasonality, crate::evaluate::anomaly::Seasonality::HourOfWeek);
}

#[test]
fn operation_links_are_checked_all_at_once() {
    let no_env = |_: &str| None;
    let text = "[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n\
                [[operations]]\nname = \"Bedrock.InvokeModel\"\nalso = [\"BedrockCallDuration\"]\n\
                [[operations]]\nname = \"\"\nalso = []\n\
                [[operations]]\nname = \"X\"\nalso = [\"BedrockCallDuration\"]\n\
                [[budgets]]\nname = \"LatencyRegression\"\noperation = \"*\"\np95 = \"1s\"\n";
    let errors = load_str(text, &no_env).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in ["operations[1].name", "operations[1].also", "operations[2]", "budgets[0].name"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    let c = load_str("[logs]\nlog_group_prefixes = [\"/aws/lambda/\"]\n[[operations]]\nname = \"A\"\nalso = [\"B\", \"C\"]\n", &no_env).unwrap();
    assert_eq!(c.operations[0].also, ["B", "C"]);
}
