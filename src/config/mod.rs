//! The daemon's configuration: one documented struct per TOML section, every default in
//! one place (`impl Default`), durations as humantime strings. Loading reports every error
//! at once with its key path (`logs.poll_interval: expected a duration like "30s", got "fast"`);
//! `validate` adds the checks that span several keys.

mod duration;
mod load;
pub mod validate;

pub use load::{ConfigError, Purpose, load_file, load_file_for, load_str, load_str_for};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A value that must never appear in logs or `/metrics` (webhook URLs carry tokens).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() { f.write_str("\"\"") } else { f.write_str("\"<redacted>\"") }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub aws: AwsConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub logs: LogsConfig,
    pub xray: XrayConfig,
    pub cloudwatch: CloudWatchConfig,
    pub environments: EnvironmentsConfig,
    pub alerts: AlertsConfig,
    pub metrics: MetricsConfig,
    pub shard: ShardConfig,
    pub cluster: ClusterConfig,
    pub anomaly: AnomalyConfig,
    /// Latency budgets; an event is judged by the most specific budget that matches it.
    pub budgets: Vec<BudgetConfig>,
    /// AWS accounts to watch, each in one or more regions (none: the default credentials in
    /// `[aws] region`, as one account named "default").
    pub accounts: Vec<AccountConfig>,
    /// Operations that measure the same thing under other names (one alert, one compare
    /// row per cause).
    pub operations: Vec<OperationConfig>,
}

/// `[[operations]]`: an operation and the other names that measure the same thing (an X-Ray
/// subsegment and the TIMING line around the same call, say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationConfig {
    /// The name alerts and reports use for the cause (`Bedrock.InvokeModel`).
    pub name: String,
    /// Other operations measuring the same thing (`["BedrockCallDuration"]`).
    pub also: Vec<String>,
}

/// `[[accounts]]`: one AWS account the daemon watches, through a role it assumes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    /// The account's name: the `account` label of its events, series, alerts and metrics.
    pub name: String,
    /// Role to assume in the account (`arn:aws:iam::<id>:role/<name>`). Empty: the default
    /// credentials.
    pub role_arn: String,
    /// External id the role's trust policy requires (`"${VAR}"` reads it from the
    /// environment). A secret: never logged.
    pub external_id: Secret,
    /// Regions to watch. Empty: `[aws] region`.
    pub regions: Vec<String>,
    /// Env of this account's events that no qualifier or alias attributes (e.g. "PROD" for
    /// a production account). Empty: the name pattern and `[environments] default` decide.
    pub env: String,
    /// Session name of the assumed role (shown in the account's CloudTrail).
    pub session_name: String,
    /// This account's log groups, when not `[logs]`'s.
    pub logs: AccountLogsConfig,
    /// Whether this account's traces are read, when not as `[xray] enabled` says.
    pub xray: AccountXrayConfig,
}

/// `[accounts.logs]`: what an account tails differently from `[logs]` (unset: as `[logs]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountLogsConfig {
    /// Whether this account's log groups are tailed.
    pub enabled: Option<bool>,
    /// Exact log group names.
    pub log_groups: Option<Vec<String>>,
    /// Log group name prefixes.
    pub log_group_prefixes: Option<Vec<String>>,
}

/// `[accounts.xray]`: whether an account's traces are read (unset: as `[xray] enabled`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountXrayConfig {
    /// Whether this account's X-Ray traces are read.
    pub enabled: Option<bool>,
}

/// `[aws]`: how to reach AWS. The standard `AWS_REGION`, `AWS_ENDPOINT_URL`, credential and
/// profile variables work too; values set here win over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region (e.g. "us-west-2"). Empty: taken from the environment/profile.
    pub region: String,
    /// Endpoint override for every AWS API (an emulator such as moto's server). Empty: AWS.
    pub endpoint_url: String,
    /// Per-attempt timeout of an AWS API call.
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// Attempts per call before the poller gives up on this round (with jittered backoff).
    pub max_attempts: u32,
}

/// `[storage]`: the embedded SQLite database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Path of the SQLite database file (created if missing, with a `.lock` file beside it).
    pub path: String,
    /// How long raw timing events (and rejected inputs) are kept.
    #[serde(with = "duration")]
    pub retention: Duration,
    /// How long hourly rollups are kept (long-range reports use them).
    #[serde(with = "duration")]
    pub rollup_retention: Duration,
    /// Raw text kept per rejected input, in bytes (the rest is cut).
    pub rejected_max_bytes: usize,
    /// How often retention runs.
    #[serde(with = "duration")]
    pub retention_interval: Duration,
    /// PostgreSQL to keep the history in, shared by every daemon given the same URL
    /// (`postgres://sentinel@db.internal:5432/sentinel`). Empty: the SQLite file at `path`.
    /// A secret (it may hold a password): `"${VAR}"` works.
    pub url: Secret,
    /// The database password when the URL has none (else `PGPASSWORD`): `"${VAR}"`.
    pub password: Secret,
    /// Connections to PostgreSQL this daemon keeps open at most.
    pub pool_size: u32,
}

/// `[http]`: the Prometheus, health and API endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Loopback by default: widen it deliberately.
    pub listen: String,
    /// Bearer token protecting `/api/*` (and `/readyz`'s details) when set. Use
    /// `"${ENV_VAR}"`, or leave empty and set `SENTINEL_API_TOKEN`.
    pub api_token: Secret,
    /// Serve the API without a token on an address other than loopback. Off: the daemon
    /// refuses to start listening beyond this machine without `api_token`.
    pub allow_unauthenticated: bool,
    /// Whether `/metrics` also requires the token.
    pub protect_metrics: bool,
    /// Time limit for one request; its database reads stop there.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// API requests served at once; more are answered 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
}

/// `[logs]`: tailing Lambda log groups in CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Whether the log tailer runs.
    pub enabled: bool,
    /// Log groups to tail by exact name (`/aws/lambda/GenerateDynamicScenarioHandler`).
    pub log_groups: Vec<String>,
    /// Log group name prefixes; every matching group is tailed (re-discovered periodically).
    pub log_group_prefixes: Vec<String>,
    /// How often a busy group is polled.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How far behind its checkpoint each poll re-reads, to pick up late-ingested events.
    #[serde(with = "duration")]
    pub ingestion_delay: Duration,
    /// On first start, how far back to read.
    #[serde(with = "duration")]
    pub start_lookback: Duration,
    /// Account-wide FilterLogEvents budget shared by all groups (the real quota is 5/s).
    pub requests_per_second: f64,
    /// How often prefixes are re-discovered.
    #[serde(with = "duration")]
    pub discovery_interval: Duration,
    /// Longest interval an idle group waits between polls (adaptive scheduling).
    #[serde(with = "duration")]
    pub idle_poll_interval: Duration,
    /// Groups polled at the same time.
    pub max_concurrency: usize,
    /// How far back the reconciliation sweep re-reads each group (events CloudWatch took in
    /// later than `ingestion_delay`, e.g. during an ingestion stall). "0s": no sweep.
    #[serde(with = "duration")]
    pub reconcile_window: Duration,
    /// How often each group is swept, with FilterLogEvents quota the polls leave spare.
    #[serde(with = "duration")]
    pub reconcile_interval: Duration,
}

/// `[xray]`: polling X-Ray traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XrayConfig {
    /// Whether the X-Ray poller runs.
    pub enabled: bool,
    /// How often traces are polled.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Traces younger than this are left for the next poll (segments still arriving).
    #[serde(with = "duration")]
    pub settle_delay: Duration,
    /// Overlap re-read behind the checkpoint each poll (late segments).
    #[serde(with = "duration")]
    pub lookback: Duration,
    /// On first start, how far back to read.
    #[serde(with = "duration")]
    pub start_lookback: Duration,
    /// X-Ray filter expression applied to GetTraceSummaries (empty: all traces).
    pub filter_expression: String,
    /// X-Ray API calls per second (its quotas are low).
    pub requests_per_second: f64,
    /// How many polls an in-progress or partial trace is re-fetched before it is stored as is.
    pub max_refetches: u32,
    /// Annotation keys kept as event attributes (empty: none; they can hold personal data).
    pub annotation_allow_list: Vec<String>,
    /// Metadata keys kept as event attributes (empty: none).
    pub metadata_allow_list: Vec<String>,
}

/// `[cloudwatch]`: publishing latency metrics back to CloudWatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// Whether metrics are published (PutMetricData costs money: off by default).
    pub enabled: bool,
    /// Metric namespace (must not start with `AWS/`).
    pub namespace: String,
    /// How often metrics are published.
    #[serde(with = "duration")]
    pub publish_interval: Duration,
    /// With `[[accounts]]`: the name of the one account every account's metrics go to (in
    /// its first region, with `Account` and `Region` dimensions added). Empty: each
    /// account's metrics go into that account and region, with today's dimensions.
    pub account: String,
}

/// `[environments]`: how an event is attributed to an environment (Dev, PROD, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvironmentsConfig {
    /// Resolve function versions to aliases through the Lambda API (ListAliases history).
    pub lambda_aliases: bool,
    /// Regex over the function name with a `(?P<env>...)` group, for teams that deploy
    /// `app-dev-worker` and `app-prod-worker` (empty: unused).
    pub function_name_pattern: String,
    /// Environment of events nothing else attributes.
    pub default: String,
    /// How often aliases are re-listed.
    #[serde(with = "duration")]
    pub alias_refresh_interval: Duration,
}

/// `[alerts]`: budget evaluation and where alerts go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often every budget is evaluated.
    #[serde(with = "duration")]
    pub evaluation_interval: Duration,
    /// Webhook receiving alert transitions as JSON (may hold a token: use `"${ENV_VAR}"` or
    /// `SENTINEL_WEBHOOK_URL`).
    pub webhook_url: Secret,
    /// Alertmanager base URL (`http://127.0.0.1:9093`); alerts go to `/api/v2/alerts`. A
    /// secret like `webhook_url` (it may carry basic-auth credentials): use `"${ENV_VAR}"` or
    /// `SENTINEL_ALERTMANAGER_URL`.
    pub alertmanager_url: Secret,
    /// Base URL of this daemon, used in alert links to the report.
    pub external_url: String,
    /// Timeout of one delivery attempt.
    #[serde(with = "duration")]
    pub send_timeout: Duration,
}

/// `[metrics]`: rolling windows and the Prometheus endpoint's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Window of the quantiles exported for every series.
    #[serde(with = "duration")]
    pub quantile_window: Duration,
    /// Most (env, function, operation, source) series exported; the rest are counted as dropped.
    pub max_series: usize,
}

/// `[shard]`: split log groups across several daemons by a stable hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardConfig {
    /// This instance's shard, from 0 to `count - 1`.
    pub index: u32,
    /// Number of instances sharing the log groups (1: no sharding).
    pub count: u32,
}

/// `[cluster]`: several daemons sharing one PostgreSQL history split the work by leases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This daemon's name among the nodes (empty: hostname and process id).
    pub node_id: String,
    /// Work held by a node that stops renewing its leases is taken over after this long.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
}

/// `[anomaly]`: alerts on a regression against an operation's own past (no budget needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Judge every operation against its own history.
    pub enabled: bool,
    /// The recent window judged.
    #[serde(with = "duration")]
    pub window: Duration,
    /// The history it is judged against.
    #[serde(with = "duration")]
    pub baseline: Duration,
    /// `hour_of_week`: the same hours of past weeks when that much history exists, else the
    /// trailing baseline; `none`: always the trailing baseline.
    pub seasonality: String,
    /// The recent p95 must be at least this many times the baseline's p95 …
    pub min_ratio: f64,
    /// … with at least this many events on both sides …
    pub min_samples: u64,
    /// … and significantly larger (one-sided Mann–Whitney p-value at most this).
    pub max_p_value: f64,
    /// How long a regression lasts before it fires.
    #[serde(rename = "for", with = "duration")]
    pub for_: Duration,
    /// How long a fired regression keeps firing after it recovers.
    #[serde(with = "duration")]
    pub keep_firing_for: Duration,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            enabled: false,
            window: Duration::from_secs(15 * 60),
            baseline: Duration::from_secs(7 * 86_400),
            seasonality: "hour_of_week".into(),
            min_ratio: 1.5,
            min_samples: 30,
            max_p_value: 0.01,
            for_: Duration::from_secs(5 * 60),
            keep_firing_for: Duration::from_secs(10 * 60),
        }
    }
}

/// `[[budgets]]`: a latency budget for the operations it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Name used in alerts (default: derived from the patterns).
    pub name: String,
    /// Function glob (`*` matches all, `?` one character).
    pub function: String,
    /// Operation glob.
    pub operation: String,
    /// Environment glob.
    pub env: String,
    /// Account glob (`[[accounts]] name`; `default` without accounts).
    pub account: String,
    /// Region glob (empty without accounts: "*" matches it).
    pub region: String,
    /// Budget for the 50th percentile.
    #[serde(with = "duration::option")]
    pub p50: Option<Duration>,
    /// Budget for the 90th percentile.
    #[serde(with = "duration::option")]
    pub p90: Option<Duration>,
    /// Budget for the 95th percentile.
    #[serde(with = "duration::option")]
    pub p95: Option<Duration>,
    /// Budget for the 99th percentile.
    #[serde(with = "duration::option")]
    pub p99: Option<Duration>,
    /// Window the quantile is computed over (by event time).
    #[serde(with = "duration")]
    pub window: Duration,
    /// How long the budget must be exceeded before the alert fires.
    #[serde(rename = "for", with = "duration")]
    pub for_: Duration,
    /// How long the quantile must stay under budget before a firing alert resolves.
    #[serde(with = "duration")]
    pub keep_firing_for: Duration,
    /// Fewest events in the window for the budget to be judged.
    pub min_samples: u64,
    /// `severity` label of the alert.
    pub severity: String,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            region: String::new(),
            endpoint_url: String::new(),
            call_timeout: Duration::from_secs(30),
            max_attempts: 5,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: "latency-sentinel.db".into(),
            retention: Duration::from_secs(30 * 86_400),
            rollup_retention: Duration::from_secs(400 * 86_400),
            rejected_max_bytes: 4096,
            retention_interval: Duration::from_secs(600),
            url: Secret::default(),
            password: Secret::default(),
            pool_size: 8,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { node_id: String::new(), lease_ttl: Duration::from_secs(30) }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9750".into(),
            api_token: Secret::default(),
            allow_unauthenticated: false,
            protect_metrics: false,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 4,
        }
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            log_groups: Vec::new(),
            log_group_prefixes: Vec::new(),
            poll_interval: Duration::from_secs(30),
            ingestion_delay: Duration::from_secs(120),
            start_lookback: Duration::from_secs(3600),
            requests_per_second: 5.0,
            discovery_interval: Duration::from_secs(300),
            idle_poll_interval: Duration::from_secs(300),
            max_concurrency: 4,
            reconcile_window: Duration::from_secs(3600),
            reconcile_interval: Duration::from_secs(600),
        }
    }
}

impl Default for XrayConfig {
    fn default() -> Self {
        XrayConfig {
            enabled: true,
            poll_interval: Duration::from_secs(60),
            settle_delay: Duration::from_secs(30),
            lookback: Duration::from_secs(300),
            start_lookback: Duration::from_secs(3600),
            filter_expression: String::new(),
            requests_per_second: 2.0,
            max_refetches: 5,
            annotation_allow_list: Vec::new(),
            metadata_allow_list: Vec::new(),
        }
    }
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        CloudWatchConfig {
            enabled: false,
            namespace: "LatencySentinel".into(),
            publish_interval: Duration::from_secs(60),
            account: String::new(),
        }
    }
}

impl Default for EnvironmentsConfig {
    fn default() -> Self {
        EnvironmentsConfig {
            lambda_aliases: true,
            function_name_pattern: String::new(),
            default: "default".into(),
            alias_refresh_interval: Duration::from_secs(300),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluation_interval: Duration::from_secs(30),
            webhook_url: Secret::default(),
            alertmanager_url: Secret::default(),
            external_url: "http://127.0.0.1:9750".into(),
            send_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { quantile_window: Duration::from_secs(300), max_series: 10_000 }
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig { index: 0, count: 1 }
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            name: String::new(),
            function: "*".into(),
            operation: "*".into(),
            env: "*".into(),
            account: "*".into(),
            region: "*".into(),
            p50: None,
            p90: None,
            p95: None,
            p99: None,
            window: Duration::from_secs(300),
            for_: Duration::from_secs(60),
            keep_firing_for: Duration::from_secs(120),
            min_samples: 20,
            severity: "warning".into(),
        }
    }
}

impl BudgetConfig {
    /// The (quantile, threshold) this budget sets; validation guarantees exactly one.
    pub fn threshold(&self) -> Option<(f64, Duration)> {
        [(0.5, self.p50), (0.9, self.p90), (0.95, self.p95), (0.99, self.p99)]
            .into_iter()
            .find_map(|(q, d)| d.map(|d| (q, d)))
    }

    /// The budget's name, or one derived from its patterns.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            format!("{}/{}@{}", self.function, self.operation, self.env)
        } else {
            self.name.clone()
        }
    }
}

#[cfg(test)]
mod tests;
