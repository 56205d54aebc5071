//! `latency-sentinel doctor`: checks a config against the account and the machine it will
//! run on, in the order a new user meets the problems: the config, the credentials (which
//! identity), each AWS API the config needs with a harmless call, the alert receivers, the
//! database path and the listen address. One line per check, ✓ or ✗, and for a ✗ the fix
//! (for an access denial: the IAM action and the statement of `deploy/iam/policy.json`
//! that grants it). With `[[accounts]]`, the credentials and calls are checked in every
//! account and region, through its role (`prod/eu-west-1 credentials`, ...; a denial there
//! names `deploy/iam/reader-role-policy.json`). Writes to AWS (PutMetricData) and to
//! receivers only when asked.
//!
//! What to check and how a result reads are pure ([`plan`], [`Check::line`]); the calls
//! are a thin shell around them.

use crate::aws::{AwsError, classify, sdk_config};
use crate::clock::now_ms;
use crate::config::Config;
use crate::model::alert::{AlertEvent, Transition};
use crate::scope::Scope;
use aws_config::SdkConfig;
use std::path::Path;
use std::time::Duration;

/// What `doctor` may do beyond reading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Call PutMetricData once (a `DoctorCheck` metric) when CloudWatch publishing is on.
    pub write: bool,
    /// Send a test notification to each configured receiver.
    pub notify: bool,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was checked (`config`, `credentials`, `logs:FilterLogEvents`, ...).
    pub name: String,
    pub ok: bool,
    /// What was found (an identity, a count, an error).
    pub detail: String,
    /// How to fix a failure.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Check {
        Check { name: name.to_string(), ok: true, detail: detail.into(), fix: None }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name: name.to_string(), ok: false, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// The line printed for the check.
    pub fn line(&self) -> String {
        let mark = if self.ok { "✓" } else { "✗" };
        match &self.fix {
            Some(fix) => format!("{mark} {}: {}\n    fix: {fix}", self.name, self.detail),
            None => format!("{mark} {}: {}", self.name, self.detail),
        }
    }
}

/// An AWS API the daemon calls: its IAM action and the policy statement that grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    pub action: &'static str,
    pub statement: &'static str,
}

pub const DESCRIBE_LOG_GROUPS: Api = Api { action: "logs:DescribeLogGroups", statement: "DiscoverLogGroups" };
pub const FILTER_LOG_EVENTS: Api = Api { action: "logs:FilterLogEvents", statement: "TailLambdaLogGroups" };
pub const LIST_ALIASES: Api = Api { action: "lambda:ListAliases", statement: "ResolveAliases" };
pub const GET_TRACE_SUMMARIES: Api = Api { action: "xray:GetTraceSummaries", statement: "ReadTraces" };
pub const GET_TRACE_SEGMENT_DESTINATION: Api = Api { action: "xray:GetTraceSegmentDestination", statement: "ReadTraces" };
pub const PUT_METRIC_DATA: Api = Api { action: "cloudwatch:PutMetricData", statement: "PublishLatencyMetrics" };

/// The AWS APIs `config` makes the daemon call in `scope`, in the order they are checked
/// (pure). PutMetricData is listed only when CloudWatch publishing is on.
pub fn plan(config: &Config, scope: &Scope) -> Vec<Api> {
    let mut apis = Vec::new();
    if scope.logs_enabled {
        if !scope.log_group_prefixes.is_empty() {
            apis.push(DESCRIBE_LOG_GROUPS);
        }
        apis.push(FILTER_LOG_EVENTS);
    }
    if config.environments.lambda_aliases {
        apis.push(LIST_ALIASES);
    }
    if scope.xray_enabled {
        apis.push(GET_TRACE_SUMMARIES);
        apis.push(GET_TRACE_SEGMENT_DESTINATION);
    }
    if config.cloudwatch.enabled {
        apis.push(PUT_METRIC_DATA);
    }
    apis
}

/// The check of one API call's outcome in `scope` (pure): a denial names the action and
/// the statement of the policy that grants it (the daemon's own, or a member account's
/// reader role's).
pub fn judge(api: Api, scope: &Scope, outcome: Result<String, AwsError>) -> Check {
    let name = check_name(scope, api.action);
    let (who, policy) = if scope.role_arn.is_empty() {
        ("this identity".to_string(), "deploy/iam/policy.json")
    } else {
        (format!("the role {}", scope.role_arn), "deploy/iam/reader-role-policy.json")
    };
    match outcome {
        Ok(detail) => Check::pass(&name, detail),
        Err(e) if e.is_access_denied() => Check::fail(
            &name,
            format!("access denied ({})", e.code),
            format!("allow `{}` for {who}: {policy} grants it (statement `{}`); attach that policy or add the action", api.action, api.statement),
        ),
        Err(e) if e.code == "dispatch" || e.code == "timeout" => {
            Check::fail(&name, format!("{}: {}", e.code, e.message), "check the network path to AWS (and aws.endpoint_url, which is for emulators only)")
        }
        Err(e) => Check::fail(&name, format!("{}: {}", e.code, e.message), "see the error; the daemon makes this call"),
    }
}

/// `what`, or `prod/eu-west-1 what` for a named account's scope.
fn check_name(scope: &Scope, what: &str) -> String {
    if scope.is_default() { what.to_string() } else { format!("{} {what}", scope.label()) }
}

/// Runs every check for the config at `path`; the caller prints them and exits 0 only when
/// all passed.
pub async fn run(path: &Path, options: Options) -> Vec<Check> {
    let config = match crate::config::load_file_for(path, crate::config::Purpose::Daemon) {
        Ok(c) => c,
        Err(errors) => {
            let detail = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
            return vec![Check::fail("config", detail, format!("edit {} (`latency-sentinel check-config` lists every error)", path.display()))];
        }
    };
    let mut checks = vec![Check::pass("config", format!("{} is valid", path.display()))];
    let sdk = sdk_config(&config.aws).await;
    let identity = identity(&sdk).await;
    let have_credentials = identity.ok;
    checks.push(identity);
    if have_credentials {
        for scope in crate::scope::scopes(&config) {
            let sdk = if scope.is_default() { sdk.clone() } else { crate::aws::scope_sdk_config(&sdk, &scope).await };
            if !scope.is_default() {
                let who = scope_identity(&sdk, &scope).await;
                let ok = who.ok;
                checks.push(who);
                if !ok {
                    continue;
                }
            }
            let group = sample_group(&sdk, &scope).await;
            for api in plan(&config, &scope) {
                checks.push(judge(api, &scope, call(api, &sdk, &config, &scope, group.as_deref(), options).await));
            }
        }
    }
    checks.extend(receivers(&config, options).await);
    checks.push(database(Path::new(&config.storage.path)));
    checks.push(listen(&config.http.listen));
    checks
}

async fn identity(sdk: &SdkConfig) -> Check {
    match aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await {
        Ok(who) => Check::pass(
            "credentials",
            format!("{} (account {})", who.arn().unwrap_or("?"), who.account().unwrap_or("?")),
        ),
        Err(e) => {
            let e = classify("GetCallerIdentity", &e);
            Check::fail(
                "credentials",
                format!("{}: {}", e.code, e.message),
                "give the daemon credentials: an instance profile or task role, AWS_PROFILE (SSO works), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; and a region (aws.region or AWS_REGION)",
            )
        }
    }
}

/// A named account's credentials: its role assumed (the identity it acts as), or why not.
async fn scope_identity(sdk: &SdkConfig, scope: &Scope) -> Check {
    let name = check_name(scope, "credentials");
    match aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await {
        Ok(who) => Check::pass(&name, format!("{} (account {})", who.arn().unwrap_or("?"), who.account().unwrap_or("?"))),
        Err(e) => {
            let detail = aws_sdk_sts::error::DisplayErrorContext(&e).to_string().chars().take(400).collect::<String>();
            let fix = if scope.role_arn.is_empty() {
                "give the daemon credentials for this account".to_string()
            } else {
                format!(
                    "let the daemon assume {}: its own identity needs deploy/iam/accounts-policy.json (sts:AssumeRole), and the role's trust \
                     policy deploy/iam/reader-trust-policy.json naming the daemon's identity (and the external id, when one is set)",
                    scope.role_arn
                )
            };
            Check::fail(&name, detail, fix)
        }
    }
}

/// A log group to try FilterLogEvents and ListAliases on: the first configured one, else
/// the first under the prefixes (no call is made when neither exists).
async fn sample_group(sdk: &SdkConfig, scope: &Scope) -> Option<String> {
    if let Some(g) = scope.log_groups.first() {
        return Some(g.clone());
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    for prefix in &scope.log_group_prefixes {
        if let Ok(page) = logs.describe_log_groups().log_group_name_prefix(prefix).limit(1).send().await {
            if let Some(name) = page.log_groups().first().and_then(|g| g.log_group_name()) {
                return Some(name.to_string());
            }
        }
    }
    None
}

/// One harmless call of `api`; what it found, or why it failed.
async fn call(api: Api, sdk: &SdkConfig, config: &Config, scope: &Scope, group: Option<&str>, options: Options) -> Result<String, AwsError> {
    let now = now_ms();
    match api.action {
        "logs:DescribeLogGroups" => {
            let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
            let mut found = 0;
            for prefix in &scope.log_group_prefixes {
                let page = logs.describe_log_groups().log_group_name_prefix(prefix).send().await.map_err(|e| classify("DescribeLogGroups", &e))?;
                found += page.log_groups().len();
            }
            Ok(match found {
                0 => format!("no log group under {:?} yet (the daemon finds new ones as they appear)", scope.log_group_prefixes),
                n => format!("{n}{} log group(s) under {:?}", if n >= 50 { "+" } else { "" }, scope.log_group_prefixes),
            })
        }
        "logs:FilterLogEvents" => {
            let Some(group) = group else { return Ok("skipped: no log group to read yet".into()) };
            aws_sdk_cloudwatchlogs::Client::new(sdk)
                .filter_log_events()
                .log_group_name(group)
                .start_time(now - 1000)
                .end_time(now)
                .limit(1)
                .send()
                .await
                .map_err(|e| classify("FilterLogEvents", &e))?;
            Ok(format!("read one second of {group}"))
        }
        "lambda:ListAliases" => {
            let Some(function) = group.and_then(|g| g.strip_prefix("/aws/lambda/")).filter(|f| !f.is_empty()) else {
                return Ok("skipped: no /aws/lambda/ log group to name a function".into());
            };
            match aws_sdk_lambda::Client::new(sdk).list_aliases().function_name(function).send().await {
                Ok(r) => Ok(format!("{function}: {} alias(es)", r.aliases().len())),
                // Allowed, the function is gone (a log group outlives its function).
                Err(e) if classify("ListAliases", &e).is_not_found() => Ok(format!("{function}: allowed (the function no longer exists)")),
                Err(e) => Err(classify("ListAliases", &e)),
            }
        }
        "xray:GetTraceSummaries" => {
            let end = aws_sdk_xray::primitives::DateTime::from_millis(now);
            let start = aws_sdk_xray::primitives::DateTime::from_millis(now - 60_000);
            let r = aws_sdk_xray::Client::new(sdk)
                .get_trace_summaries()
                .start_time(start)
                .end_time(end)
                .send()
                .await
                .map_err(|e| classify("GetTraceSummaries", &e))?;
            Ok(format!("{} trace(s) in the last minute", r.trace_summaries().len()))
        }
        "xray:GetTraceSegmentDestination" => {
            let r = aws_sdk_xray::Client::new(sdk)
                .get_trace_segment_destination()
                .send()
                .await
                .map_err(|e| classify("GetTraceSegmentDestination", &e))?;
            Ok(match r.destination() {
                Some(aws_sdk_xray::types::TraceSegmentDestination::CloudWatchLogs) => {
                    "spans go to CloudWatch Logs (Transaction Search): BatchGetTraces will find almost nothing".into()
                }
                _ => "spans go to X-Ray".into(),
            })
        }
        "cloudwatch:PutMetricData" => {
            if !options.write {
                return Ok("not called: pass --write to publish one test metric".into());
            }
            let datum = aws_sdk_cloudwatch::types::MetricDatum::builder().metric_name("DoctorCheck").value(1.0).build();
            aws_sdk_cloudwatch::Client::new(sdk)
                .put_metric_data()
                .namespace(&config.cloudwatch.namespace)
                .metric_data(datum)
                .send()
                .await
                .map_err(|e| classify("PutMetricData", &e))?;
            Ok(format!("published {}/DoctorCheck", config.cloudwatch.namespace))
        }
        other => Ok(format!("{other}: nothing to check")),
    }
}

/// The alert receivers: configured or not, and with `--notify` a test notification each.
/// Their URLs are secrets and are never printed.
async fn receivers(config: &Config, options: Options) -> Vec<Check> {
    let receivers = [("webhook", config.alerts.webhook_url.expose(), false), ("alertmanager", config.alerts.alertmanager_url.expose(), true)];
    let configured: Vec<_> = receivers.into_iter().filter(|r| !r.1.is_empty()).collect();
    if configured.is_empty() {
        return vec![Check::pass("alert receivers", "none configured: alerts go to the log and /api/v1/alerts only")];
    }
    let client = match reqwest::Client::builder().timeout(config.alerts.send_timeout).build() {
        Ok(c) => c,
        Err(e) => return vec![Check::fail("alert receivers", format!("no HTTP client: {e}"), "report this as a bug")],
    };
    let mut checks = Vec::new();
    for (name, url, alertmanager) in configured {
        if !options.notify {
            checks.push(Check::pass(name, "configured (pass --notify to send a test notification)"));
            continue;
        }
        let now = now_ms();
        let event = AlertEvent {
            account: crate::model::Origin::default().account,
            region: String::new(),
            budget: "doctor".into(),
            env: "doctor".into(),
            function: "latency-sentinel".into(),
            operation: "TestNotification".into(),
            quantile: 0.95,
            severity: "info".into(),
            state: Transition::Resolved,
            value_s: None,
            budget_s: 0.0,
            window: Duration::from_secs(60),
            samples: 0,
            starts_at_ms: now,
            ends_at_ms: Some(now),
            regression: None,
            evidence: Vec::new(),
            explains: Vec::new(),
        };
        let base = &config.alerts.external_url;
        let (target, body) = if alertmanager {
            (format!("{}/api/v2/alerts", url.trim_end_matches('/')), serde_json::json!([event.alertmanager_body(base, now)]))
        } else {
            (url.to_string(), event.webhook_body(base))
        };
        checks.push(match client.post(&target).json(&body).send().await {
            Ok(r) if r.status().is_success() => Check::pass(name, format!("test notification accepted (HTTP {})", r.status().as_u16())),
            Ok(r) => Check::fail(name, format!("test notification refused (HTTP {})", r.status().as_u16()), "check the receiver's URL and its authentication"),
            // reqwest's error text can carry the URL: only its kind is shown.
            Err(e) => Check::fail(
                name,
                format!("unreachable ({})", if e.is_timeout() { "timed out" } else if e.is_connect() { "connection failed" } else { "request failed" }),
                "check that the receiver runs and that this machine reaches it",
            ),
        });
    }
    checks
}

/// The database's folder is writable and has room.
fn database(path: &Path) -> Check {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = dir.join(format!(".latency-sentinel-doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        return Check::fail("database", format!("cannot write in {}: {e}", dir.display()), "create the folder and give the daemon's user write access (storage.path)");
    }
    let _ = std::fs::remove_file(&probe);
    match free_bytes(&dir) {
        Some(free) if free < 1 << 30 => Check::fail(
            "database",
            format!("{}: only {} MB free", path.display(), free >> 20),
            "free space or move storage.path: see the README's sizing (bytes per event × events/s × retention)",
        ),
        Some(free) => Check::pass("database", format!("{} writable, {} GB free", path.display(), free >> 30)),
        None => Check::pass("database", format!("{} writable", path.display())),
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a plain C struct statvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// The listen address can be bound (it is free: no other daemon holds it).
fn listen(address: &str) -> Check {
    match std::net::TcpListener::bind(address) {
        Ok(_) => Check::pass("http.listen", format!("{address} is free")),
        Err(e) => Check::fail(
            "http.listen",
            format!("cannot listen on {address}: {e}"),
            "stop what holds the port (another latency-sentinel?) or choose another http.listen",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str) -> AwsError {
        AwsError { api: "FilterLogEvents", code: code.into(), message: "no".into(), retriable: false, throttled: false }
    }

    #[test]
    fn the_plan_follows_the_config() {
        let mut c = Config::default();
        c.logs.log_group_prefixes = vec!["/aws/lambda/".into()];
        let actions = |c: &Config| plan(c, &crate::scope::scopes(c)[0]).iter().map(|a| a.action).collect::<Vec<_>>();
        assert_eq!(
            actions(&c),
            ["logs:DescribeLogGroups", "logs:FilterLogEvents", "lambda:ListAliases", "xray:GetTraceSummaries", "xray:GetTraceSegmentDestination"]
        );
        c.logs.log_group_prefixes.clear();
        c.logs.log_groups = vec!["/aws/lambda/a".into()];
        c.environments.lambda_aliases = false;
        c.xray.enabled = false;
        c.cloudwatch.enabled = true;
        assert_eq!(actions(&c), ["logs:FilterLogEvents", "cloudwatch:PutMetricData"]);
    }

    #[test]
    fn a_denial_names_the_action_and_the_statement_that_grants_it() {
        let own = &crate::scope::scopes(&Config::default())[0];
        let c = judge(FILTER_LOG_EVENTS, own, Err(error("AccessDeniedException")));
        assert!(!c.ok);
        let line = c.line();
        assert!(line.starts_with("✗ logs:FilterLogEvents: access denied"), "{line}");
        assert!(line.contains("deploy/iam/policy.json") && line.contains("TailLambdaLogGroups"), "{line}");
        assert!(judge(FILTER_LOG_EVENTS, own, Ok("read".into())).line().starts_with("✓ logs:FilterLogEvents: read"));
        assert!(!judge(FILTER_LOG_EVENTS, own, Err(error("dispatch"))).ok);
        // In a member account: named by account and region, fixed in the reader role's policy.
        let mut c = Config::default();
        c.accounts = vec![crate::config::AccountConfig {
            name: "prod".into(),
            role_arn: "arn:aws:iam::111111111111:role/latency-sentinel-reader".into(),
            regions: vec!["eu-west-1".into()],
            ..Default::default()
        }];
        let line = judge(FILTER_LOG_EVENTS, &crate::scope::scopes(&c)[0], Err(error("AccessDeniedException"))).line();
        assert!(line.starts_with("✗ prod/eu-west-1 logs:FilterLogEvents: access denied"), "{line}");
        assert!(line.contains("the role arn:aws:iam::111111111111:role/latency-sentinel-reader: deploy/iam/reader-role-policy.json"), "{line}");
    }

    /// Every statement named here exists in the shipped policy and grants its action.
    #[test]
    fn the_statements_named_are_in_the_policy() {
        for policy in [include_str!("../deploy/iam/policy.json"), include_str!("../deploy/iam/reader-role-policy.json")] {
            let policy: serde_json::Value = serde_json::from_str(policy).unwrap();
            for api in [DESCRIBE_LOG_GROUPS, FILTER_LOG_EVENTS, LIST_ALIASES, GET_TRACE_SUMMARIES, GET_TRACE_SEGMENT_DESTINATION, PUT_METRIC_DATA] {
                let statement = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == api.statement);
                let actions = statement.and_then(|s| s["Action"].as_array()).unwrap_or_else(|| panic!("no statement {}", api.statement));
                assert!(actions.iter().any(|a| a == api.action), "{} does not grant {}", api.statement, api.action);
            }
        }
    }

    #[test]
    fn a_bound_port_and_an_unwritable_folder_fail_with_their_fix() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = held.local_addr().unwrap().to_string();
        let c = listen(&address);
        assert!(!c.ok && c.fix.is_some(), "{c:?}");
        drop(held);
        assert!(listen(&address).ok);
        let dir = tempfile::tempdir().unwrap();
        assert!(database(&dir.path().join("s.db")).ok);
        assert!(!database(&dir.path().join("missing/s.db")).ok);
    }
}
