//! Checks that need more than one key or more than a type: addresses, regexes, URLs, limits,
//! and budgets that conflict with each other or can never match.

use super::{Config, ConfigError, Purpose};
use crate::glob;
use std::time::Duration;

/// Every semantic problem in `config` (empty when it is usable for `purpose`).
pub fn validate(c: &Config, purpose: Purpose) -> Vec<ConfigError> {
    let daemon = purpose == Purpose::Daemon;
    let mut e = Vec::new();
    let mut err = |k: &str, r: String| e.push(ConfigError::new(k, r));

    if !c.aws.endpoint_url.is_empty() && !is_http_url(&c.aws.endpoint_url) {
        err("aws.endpoint_url", format!("expected an http:// or https:// URL, got {:?}", c.aws.endpoint_url));
    }
    if c.aws.max_attempts == 0 {
        err("aws.max_attempts", "must be at least 1".into());
    }
    if c.storage.path.trim().is_empty() {
        err("storage.path", "must not be empty".into());
    }
    if c.storage.retention < Duration::from_secs(3600) {
        err("storage.retention", "must be at least 1h".into());
    }
    if c.storage.rollup_retention < c.storage.retention {
        err("storage.rollup_retention", "must be at least storage.retention".into());
    }
    // Ten years: durations turn into millisecond arithmetic on event times.
    const LONGEST_KEPT: Duration = Duration::from_secs(3_660 * 86_400);
    for (key, d) in [("storage.retention", c.storage.retention), ("storage.rollup_retention", c.storage.rollup_retention)] {
        if d > LONGEST_KEPT {
            err(key, "must be at most 3660d".into());
        }
    }
    if !(64..=1_048_576).contains(&c.storage.rejected_max_bytes) {
        err("storage.rejected_max_bytes", "must be between 64 and 1048576".into());
    }
    match c.http.listen.parse::<std::net::SocketAddr>() {
        Err(_) => err("http.listen", format!("expected an address like \"127.0.0.1:9750\", got {:?}", c.http.listen)),
        Ok(addr) if daemon && !addr.ip().is_loopback() && c.http.api_token.is_empty() && !c.http.allow_unauthenticated => err(
            "http.listen",
            format!(
                "{} is reachable from other machines and no http.api_token is set: set one (or SENTINEL_API_TOKEN), \
                 or http.allow_unauthenticated = true to serve the API to anyone who can reach it",
                c.http.listen
            ),
        ),
        Ok(_) => {}
    }
    if c.http.request_timeout < Duration::from_millis(100) || c.http.request_timeout > Duration::from_secs(600) {
        err("http.request_timeout", "must be between 100ms and 10m".into());
    }
    if !(1..=1024).contains(&c.http.max_concurrent_requests) {
        err("http.max_concurrent_requests", format!("must be between 1 and 1024, got {}", c.http.max_concurrent_requests));
    }
    if daemon && c.accounts.is_empty() && c.logs.enabled && c.logs.log_groups.is_empty() && c.logs.log_group_prefixes.is_empty() {
        err("logs.log_groups", "no log groups or prefixes to tail (set logs.enabled = false to turn the tailer off)".into());
    }
    for (i, p) in c.logs.log_group_prefixes.iter().enumerate() {
        if p.is_empty() {
            err(&format!("logs.log_group_prefixes[{i}]"), "must not be empty".into());
        }
    }
    if c.logs.poll_interval < Duration::from_secs(1) {
        err("logs.poll_interval", "must be at least 1s".into());
    }
    if c.logs.idle_poll_interval < c.logs.poll_interval {
        err("logs.idle_poll_interval", "must be at least logs.poll_interval".into());
    }
    if !(c.logs.requests_per_second > 0.0 && c.logs.requests_per_second <= 1000.0) {
        err("logs.requests_per_second", format!("must be in (0, 1000], got {}", c.logs.requests_per_second));
    }
    if c.logs.max_concurrency == 0 {
        err("logs.max_concurrency", "must be at least 1".into());
    }
    if c.logs.ingestion_delay > Duration::from_secs(86_400) {
        err("logs.ingestion_delay", "must be at most 1d".into());
    }
    if c.logs.start_lookback > Duration::from_secs(14 * 86_400) {
        err("logs.start_lookback", "must be at most 14d (CloudWatch Logs refuses older events)".into());
    }
    if !c.logs.reconcile_window.is_zero() {
        if c.logs.reconcile_window <= c.logs.ingestion_delay {
            err("logs.reconcile_window", "must be longer than logs.ingestion_delay (which every poll re-reads anyway), or \"0s\" for no sweep".into());
        } else if c.logs.reconcile_window > Duration::from_secs(86_400) {
            err("logs.reconcile_window", "must be at most 1d".into());
        }
        if c.logs.reconcile_interval < Duration::from_secs(1) {
            err("logs.reconcile_interval", "must be at least 1s".into());
        }
    }
    if c.xray.poll_interval < Duration::from_secs(1) {
        err("xray.poll_interval", "must be at least 1s".into());
    }
    if !(c.xray.requests_per_second > 0.0 && c.xray.requests_per_second <= 1000.0) {
        err("xray.requests_per_second", format!("must be in (0, 1000], got {}", c.xray.requests_per_second));
    }
    if c.xray.filter_expression.len() > 2000 {
        err("xray.filter_expression", "longer than X-Ray's 2000 characters".into());
    }
    let ns = &c.cloudwatch.namespace;
    if ns.is_empty() || ns.len() > 255 || ns.starts_with("AWS/") {
        err("cloudwatch.namespace", format!("must be 1-255 characters and not start with \"AWS/\", got {ns:?}"));
    }
    if c.cloudwatch.publish_interval < Duration::from_secs(1) {
        err("cloudwatch.publish_interval", "must be at least 1s".into());
    }
    let central = &c.cloudwatch.account;
    if !central.is_empty() && !c.accounts.iter().any(|a| &a.name == central) {
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        err("cloudwatch.account", format!("{central:?} is not the name of an [[accounts]] entry (names: {names:?})"));
    }
    if !c.environments.function_name_pattern.is_empty() {
        match regex::Regex::new(&c.environments.function_name_pattern) {
            Ok(re) if re.capture_names().flatten().any(|n| n == "env") => {}
            Ok(_) => err("environments.function_name_pattern", "must have a (?P<env>...) group".into()),
            Err(x) => err("environments.function_name_pattern", format!("invalid regex: {x}")),
        }
    }
    if c.environments.default.trim().is_empty() {
        err("environments.default", "must not be empty".into());
    }
    if c.alerts.evaluation_interval < Duration::from_secs(1) {
        err("alerts.evaluation_interval", "must be at least 1s".into());
    }
    if !c.alerts.webhook_url.is_empty() && !is_http_url(c.alerts.webhook_url.expose()) {
        // The value is a secret: describe it without echoing it.
        err("alerts.webhook_url", "expected an http:// or https:// URL".into());
    }
    if !c.alerts.alertmanager_url.is_empty() && !is_http_url(c.alerts.alertmanager_url.expose()) {
        // A secret too (basic-auth credentials in the URL): described, never echoed.
        err("alerts.alertmanager_url", "expected an http:// or https:// URL".into());
    }
    if c.metrics.quantile_window < Duration::from_secs(1) {
        err("metrics.quantile_window", "must be at least 1s".into());
    }
    if c.metrics.max_series == 0 {
        err("metrics.max_series", "must be at least 1".into());
    }
    if c.shard.count == 0 {
        err("shard.count", "must be at least 1".into());
    } else if c.shard.index >= c.shard.count {
        err("shard.index", format!("must be below shard.count ({})", c.shard.count));
    }
    let url = c.storage.url.expose();
    if !url.is_empty() {
        // Never echo the URL: it may hold a password.
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            err("storage.url", "expected postgres://USER@HOST:PORT/DATABASE (or empty for the SQLite file at storage.path)".into());
        }
        if !(1..=100).contains(&c.storage.pool_size) {
            err("storage.pool_size", format!("must be 1 to 100, got {}", c.storage.pool_size));
        }
        if c.shard.count > 1 {
            err("shard.count", "[shard] splits log groups between SQLite daemons; daemons sharing storage.url split the work by leases: remove [shard]".into());
        }
    }
    let ttl = c.cluster.lease_ttl;
    if !(Duration::from_secs(5)..=Duration::from_secs(600)).contains(&ttl) {
        err("cluster.lease_ttl", format!("must be 5s to 10m, got {}", humantime::format_duration(ttl)));
    }
    let id = &c.cluster.node_id;
    if id.len() > 128 || id.chars().any(|ch| !ch.is_ascii_graphic()) {
        err("cluster.node_id", format!("at most 128 printable characters without spaces, got {id:?}"));
    }
    let a = &c.anomaly;
    if !["hour_of_week", "none"].contains(&a.seasonality.as_str()) {
        err("anomaly.seasonality", format!("expected \"hour_of_week\" or \"none\", got {:?}", a.seasonality));
    }
    if !(a.min_ratio.is_finite() && a.min_ratio > 1.0 && a.min_ratio <= 100.0) {
        err("anomaly.min_ratio", format!("must be above 1 and at most 100, got {}", a.min_ratio));
    }
    if !(a.max_p_value > 0.0 && a.max_p_value < 1.0) {
        err("anomaly.max_p_value", format!("must be between 0 and 1, got {}", a.max_p_value));
    }
    if !(1..=1_000_000).contains(&a.min_samples) {
        err("anomaly.min_samples", format!("must be 1 to 1000000, got {}", a.min_samples));
    }
    if !(Duration::from_secs(60)..=Duration::from_secs(86_400)).contains(&a.window) {
        err("anomaly.window", format!("must be 1m to 24h, got {}", humantime::format_duration(a.window)));
    }
    if a.baseline < a.window * 4 || a.baseline > Duration::from_secs(90 * 86_400) {
        err("anomaly.baseline", format!("must be at least 4 windows and at most 90d, got {}", humantime::format_duration(a.baseline)));
    }
    validate_budgets(c, &mut e);
    validate_accounts(c, daemon, &mut e);
    validate_operations(c, &mut e);
    e
}

/// `[[operations]]`: names present, and each operation in at most one group (a name linked
/// to two causes would make "which cause" ambiguous).
fn validate_operations(c: &Config, e: &mut Vec<ConfigError>) {
    let mut owner: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, o) in c.operations.iter().enumerate() {
        let ok = |n: &str| !n.is_empty() && n.len() <= 256 && !n.chars().any(char::is_control);
        if !ok(&o.name) {
            e.push(ConfigError::new(format!("operations[{i}].name"), format!("expected an operation name (1 to 256 characters), got {:?}", o.name)));
        }
        if o.also.is_empty() {
            e.push(ConfigError::new(format!("operations[{i}].also"), "name at least one other operation measuring the same thing"));
        }
        for (j, n) in std::iter::once(&o.name).chain(&o.also).enumerate() {
            if j > 0 && !ok(n) {
                e.push(ConfigError::new(format!("operations[{i}].also"), format!("expected operation names (1 to 256 characters), got {n:?}")));
            } else if let Some(first) = owner.insert(n.as_str(), i) {
                e.push(ConfigError::new(format!("operations[{i}]"), format!("{n:?} is already linked by operations[{first}]")));
            }
        }
    }
}

/// `[[accounts]]`: names usable as labels and unique, roles that are IAM role ARNs, regions
/// that look like AWS regions (each at most once per account), session names STS accepts.
fn validate_accounts(c: &Config, daemon: bool, e: &mut Vec<ConfigError>) {
    let mut seen = std::collections::HashSet::new();
    for (i, a) in c.accounts.iter().enumerate() {
        let key = |k: &str| format!("accounts[{i}].{k}");
        if a.name.is_empty() || a.name.len() > 64 || !a.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
            e.push(ConfigError::new(key("name"), format!("expected 1 to 64 letters, digits, '-', '_' or '.', got {:?}", a.name)));
        } else if !seen.insert(a.name.as_str()) {
            e.push(ConfigError::new(key("name"), format!("{:?} names another account too", a.name)));
        }
        if !a.role_arn.is_empty() && !is_role_arn(&a.role_arn) {
            e.push(ConfigError::new(key("role_arn"), format!("expected arn:aws:iam::<12-digit account id>:role/<name>, got {:?}", a.role_arn)));
        }
        if !a.external_id.is_empty() && a.role_arn.is_empty() {
            e.push(ConfigError::new(key("external_id"), "only used with role_arn"));
        }
        let ext = a.external_id.expose();
        if !ext.is_empty() && !(2..=1224).contains(&ext.len()) {
            // A secret: described, never echoed.
            e.push(ConfigError::new(key("external_id"), "must be 2 to 1224 characters"));
        }
        let mut regions = std::collections::HashSet::new();
        for (j, r) in a.regions.iter().enumerate() {
            if !is_region(r) {
                e.push(ConfigError::new(format!("accounts[{i}].regions[{j}]"), format!("expected a region like \"us-east-1\", got {r:?}")));
            } else if !regions.insert(r.as_str()) {
                e.push(ConfigError::new(format!("accounts[{i}].regions[{j}]"), format!("{r:?} is listed twice")));
            }
        }
        if daemon && a.regions.is_empty() && c.aws.region.is_empty() {
            e.push(ConfigError::new(key("regions"), "empty, and [aws] region is not set either: name the regions"));
        }
        let logs_on = a.logs.enabled.unwrap_or(c.logs.enabled);
        let groups = a.logs.log_groups.as_ref().unwrap_or(&c.logs.log_groups);
        let prefixes = a.logs.log_group_prefixes.as_ref().unwrap_or(&c.logs.log_group_prefixes);
        if daemon && logs_on && groups.is_empty() && prefixes.is_empty() {
            e.push(ConfigError::new(
                key("logs"),
                "no log groups or prefixes to tail, here or in [logs] (set enabled = false to tail none of this account)",
            ));
        }
        let s = &a.session_name;
        if !s.is_empty() && (!(2..=64).contains(&s.len()) || !s.chars().all(|ch| ch.is_ascii_alphanumeric() || "+=,.@-_".contains(ch))) {
            e.push(ConfigError::new(key("session_name"), format!("expected 2 to 64 letters, digits or +=,.@-_, got {s:?}")));
        }
    }
}

/// `arn:<partition>:iam::<12 digits>:role/<path and name>`.
fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| !n.is_empty())
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`: lowercase words and a number.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok_and(|n| n >= 1)
}

fn validate_budgets(c: &Config, e: &mut Vec<ConfigError>) {
    for (i, b) in c.budgets.iter().enumerate() {
        let key = |k: &str| format!("budgets[{i}].{k}");
        if b.name == crate::model::alert::REGRESSION_ALERT_NAME {
            e.push(ConfigError::new(key("name"), "LatencyRegression names the learned-baseline alerts ([anomaly]); choose another name"));
        }
        let set = [b.p50, b.p90, b.p95, b.p99].iter().filter(|d| d.is_some()).count();
        if set != 1 {
            e.push(ConfigError::new(key("p95"), format!("set exactly one of p50, p90, p95, p99 (found {set})")));
        }
        if let Some((_, d)) = b.threshold() {
            if d.is_zero() {
                e.push(ConfigError::new(key("p95"), "the budget must be above 0s"));
            }
        }
        for (k, v) in [("function", &b.function), ("operation", &b.operation), ("env", &b.env), ("account", &b.account), ("region", &b.region)] {
            if v.is_empty() {
                e.push(ConfigError::new(key(k), "must not be empty (use \"*\" to match all)"));
            }
        }
        if b.window < Duration::from_secs(1) {
            e.push(ConfigError::new(key("window"), "must be at least 1s"));
        }
        if b.min_samples == 0 {
            e.push(ConfigError::new(key("min_samples"), "must be at least 1"));
        }
        if b.severity.trim().is_empty() {
            e.push(ConfigError::new(key("severity"), "must not be empty"));
        }
        // With neither aliases nor a name pattern, every event is in the default env.
        if !c.environments.lambda_aliases
            && c.environments.function_name_pattern.is_empty()
            && !glob::matches(&b.env, &c.environments.default)
            && !glob::matches(&b.env, "$LATEST")
        {
            e.push(ConfigError::new(
                key("env"),
                format!(
                    "unreachable: {:?} can never match, since every event's env is {:?} (environments.lambda_aliases is off and no function_name_pattern is set)",
                    b.env, c.environments.default
                ),
            ));
        }
        for (j, other) in c.budgets.iter().enumerate().take(i) {
            if budget_specificity(b) == budget_specificity(other)
                && glob::intersects(&b.function, &other.function)
                && glob::intersects(&b.operation, &other.operation)
                && glob::intersects(&b.env, &other.env)
            {
                let what = if (&b.function, &b.operation, &b.env) == (&other.function, &other.operation, &other.env) {
                    "unreachable: same patterns as"
                } else {
                    "conflicts with"
                };
                e.push(ConfigError::new(
                    format!("budgets[{i}]"),
                    format!("{what} budgets[{j}]: both can match the same events and neither is more specific"),
                ));
            }
        }
    }
}

/// How specific a budget is; the most specific matching budget wins. Compared field by
/// field: operation first (a budget is mostly about an operation), then function, then env.
pub fn budget_specificity(b: &super::BudgetConfig) -> (usize, usize, usize) {
    (glob::specificity(&b.operation), glob::specificity(&b.function), glob::specificity(&b.env))
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len() && !s.contains(char::is_whitespace)
}
