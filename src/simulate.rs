//! `latency-sentinel simulate`: writes the seed's Atlas Engine application into an AWS
//! endpoint (moto's server for the demo and the tests), so the daemon has something real to
//! watch.
//!
//! The application: four Lambda functions (LexFulfillmentHandler, GenerateDynamicScenarioHandler,
//! InvokeOutboundCallHandler, UpdateLeadHandler) run one after the other by the
//! AtlasEngineWorkflow state machine, each published as a version behind a `PROD` and a `Dev`
//! alias. Every workflow execution produces what the real application would:
//! - in `/aws/lambda/<function>`, per invocation: `INIT_START` on a cold start, `START`, the
//!   seed's `print(json.dumps(...))` lines (START, one TIMING per call, END with
//!   `total_function_duration`), `END`, `REPORT` (text format, `Init Duration` on cold starts,
//!   `Status` on timeouts and errors, the `XRAY TraceId` suffix) and the `Task timed out`
//!   line, in streams `YYYY/MM/DD/[<version>]<32 hex>` (one per execution environment);
//! - one X-Ray trace: the state machine segment (a subsegment per state, each with the
//!   `Lambda` Invoke subsegment), then per invocation an `AWS::Lambda` segment whose
//!   `resource_arn` carries the alias and whose `aws.request_id` is the REPORT's RequestId,
//!   and an `AWS::Lambda::Function` segment (`Initialization` on cold starts, `Invocation`
//!   holding the seed's subsegments such as `Bedrock.InvokeModel`, `Overhead`).
//!
//! Layout: the pure part decides *what* to write (option parsing, [`Generator`], [`log_lines`],
//! [`trace_documents`]; unit-tested without I/O); [`run`] is the thin shell that creates the
//! functions, versions and aliases and writes logs and traces with the AWS SDK.

use crate::clock::now_ms;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// The application
// ---------------------------------------------------------------------------------------

/// One instrumented call inside a function.
#[derive(Debug, PartialEq)]
pub struct OpSpec {
    /// The X-Ray subsegment name (`Bedrock.InvokeModel`).
    pub name: &'static str,
    /// The seed's TIMING `metric` (`BedrockCallDuration`).
    pub metric: &'static str,
    /// Latency when nothing overrides it.
    pub default: Dist,
}

/// One Lambda function of the application.
#[derive(Debug, PartialEq)]
pub struct FunctionSpec {
    pub name: &'static str,
    /// The seed's `function_name` abbreviation.
    pub abbr: &'static str,
    /// The state machine state that invokes it.
    pub state: &'static str,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Typical `Max Memory Used` (MB).
    pub memory_used_mb: u32,
    /// The calls it makes, in order.
    pub ops: &'static [OpSpec],
    /// Exception type of a simulated failure.
    pub error_type: &'static str,
}

const fn ln(median: f64, sigma: f64) -> Dist {
    Dist::LogNormal { median, sigma }
}

/// The seed's application, in workflow order.
pub static ATLAS: [FunctionSpec; 4] = [
    FunctionSpec {
        name: "LexFulfillmentHandler",
        abbr: "LFH",
        state: "LexFulfillment",
        memory_mb: 512,
        timeout_s: 30,
        memory_used_mb: 118,
        ops: &[
            OpSpec { name: "Bedrock.InvokeModel", metric: "BedrockCallDuration", default: ln(0.6, 0.25) },
            OpSpec { name: "SecretsManager.GetSecret", metric: "SecretsManagerDuration", default: ln(0.035, 0.3) },
            OpSpec { name: "Salesforce.OAuth", metric: "SalesforceAuthDuration", default: ln(0.25, 0.3) },
        ],
        error_type: "botocore.exceptions.ClientError",
    },
    FunctionSpec {
        name: "GenerateDynamicScenarioHandler",
        abbr: "GDSH",
        state: "GenerateDynamicScenario",
        memory_mb: 1024,
        timeout_s: 60,
        memory_used_mb: 164,
        ops: &[OpSpec { name: "Bedrock.InvokeModel", metric: "BedrockCallDuration", default: ln(2.5, 0.2) }],
        error_type: "botocore.errorfactory.ThrottlingException",
    },
    FunctionSpec {
        name: "InvokeOutboundCallHandler",
        abbr: "IOCH",
        state: "InvokeOutboundCall",
        memory_mb: 256,
        timeout_s: 15,
        memory_used_mb: 92,
        ops: &[
            OpSpec { name: "DynamoDB.PutItem", metric: "DynamoDBPutDuration", default: ln(0.025, 0.3) },
            OpSpec { name: "Connect.StartOutboundCall", metric: "ConnectCallDuration", default: ln(1.0, 0.25) },
            OpSpec { name: "DynamoDB.UpdateItem", metric: "DynamoDBUpdateDuration", default: ln(0.02, 0.3) },
        ],
        error_type: "botocore.errorfactory.LimitExceededException",
    },
    FunctionSpec {
        name: "UpdateLeadHandler",
        abbr: "ULH",
        state: "UpdateLead",
        memory_mb: 256,
        timeout_s: 15,
        memory_used_mb: 86,
        ops: &[
            OpSpec { name: "Salesforce.Authenticate", metric: "SalesforceAuthDuration", default: ln(0.18, 0.3) },
            OpSpec { name: "Salesforce.UpdateLead", metric: "SalesforceUpdateDuration", default: ln(0.3, 0.25) },
        ],
        error_type: "simple_salesforce.exceptions.SalesforceGeneralError",
    },
];

/// The state machine's name.
pub const STATE_MACHINE: &str = "AtlasEngineWorkflow";
/// The seed's END line key, stored by the daemon as an operation of its own.
pub const TOTAL_METRIC: &str = "total_function_duration";
/// CloudWatch Logs refuses events older than 14 days; keep a margin for slow writes.
pub const MAX_HISTORY: Duration = Duration::from_secs(14 * 86_400 - 3_600);

/// The state machine name an environment's executions run under: the seed keeps
/// `AtlasEngineWorkflow` for PROD and suggests `AtlasEngineWorkflow-Dev` for the Dev aliases.
pub fn state_machine_name(env: &str) -> String {
    if env.eq_ignore_ascii_case("PROD") { STATE_MACHINE.to_string() } else { format!("{STATE_MACHINE}-{env}") }
}

fn find_function(name: &str) -> Option<usize> {
    ATLAS.iter().position(|f| f.name == name || f.abbr.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------
// Options: distributions, rules, rates
// ---------------------------------------------------------------------------------------

/// A latency distribution, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this value.
    Fixed(f64),
    /// exp(N(ln median, sigma²)): the usual shape of a remote call's latency.
    LogNormal { median: f64, sigma: f64 },
    /// N(mean, sd²), cut at 1 ms.
    Normal { mean: f64, sd: f64 },
    /// Uniform between `lo` and `hi`.
    Uniform { lo: f64, hi: f64 },
}

/// Shortest and longest latency drawn (1 ms .. 15 min, Lambda's own limit).
const MIN_LATENCY_S: f64 = 0.001;
const MAX_LATENCY_S: f64 = 900.0;

impl Dist {
    /// One draw, in seconds, rounded to whole milliseconds (the seed prints 3 decimals, and
    /// the trace then shows exactly what the log line says).
    pub fn sample(&self, rng: &mut StdRng) -> f64 {
        let v = match *self {
            Dist::Fixed(v) => v,
            Dist::LogNormal { median, sigma } => median * (sigma * std_normal(rng)).exp(),
            Dist::Normal { mean, sd } => mean + sd * std_normal(rng),
            Dist::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
        };
        (v.clamp(MIN_LATENCY_S, MAX_LATENCY_S) * 1000.0).round() / 1000.0
    }

    /// The median of the distribution.
    pub fn median(&self) -> f64 {
        match *self {
            Dist::Fixed(v) => v,
            Dist::LogNormal { median, .. } => median,
            Dist::Normal { mean, .. } => mean,
            Dist::Uniform { lo, hi } => (lo + hi) / 2.0,
        }
    }

    /// The same shape moved so its median is `m` (spreads scale with it).
    pub fn with_median(&self, m: f64) -> Dist {
        let k = if self.median() > 0.0 { m / self.median() } else { 1.0 };
        match *self {
            Dist::Fixed(_) => Dist::Fixed(m),
            Dist::LogNormal { sigma, .. } => Dist::LogNormal { median: m, sigma },
            Dist::Normal { sd, .. } => Dist::Normal { mean: m, sd: sd * k },
            Dist::Uniform { lo, hi } => Dist::Uniform { lo: lo * k, hi: hi * k },
        }
    }

    /// Parses `lognormal(2.5s, 0.2)`, `normal(2.5s, 300ms)`, `uniform(1s, 2s)` or `fixed(9s)`.
    pub fn parse(s: &str) -> Result<Dist, String> {
        let s = s.trim();
        let (name, args) = s
            .strip_suffix(')')
            .and_then(|r| r.split_once('('))
            .ok_or_else(|| format!("expected a distribution like lognormal(2.5s, 0.2), got {s:?}"))?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let want = |n: usize| {
            if args.len() == n { Ok(()) } else { Err(format!("{name}(...) takes {n} argument(s), got {}", args.len())) }
        };
        let d = match name.trim().to_ascii_lowercase().as_str() {
            "fixed" => {
                want(1)?;
                Dist::Fixed(parse_secs(args[0])?)
            }
            "lognormal" => {
                want(2)?;
                let sigma: f64 = args[1].parse().map_err(|_| format!("lognormal sigma: expected a number like 0.2, got {:?}", args[1]))?;
                if !(0.0..=3.0).contains(&sigma) {
                    return Err(format!("lognormal sigma must be between 0 and 3, got {sigma}"));
                }
                Dist::LogNormal { median: parse_secs(args[0])?, sigma }
            }
            "normal" => {
                want(2)?;
                Dist::Normal { mean: parse_secs(args[0])?, sd: parse_secs(args[1])? }
            }
            "uniform" => {
                want(2)?;
                let (lo, hi) = (parse_secs(args[0])?, parse_secs(args[1])?);
                if lo > hi {
                    return Err(format!("uniform({}, {}): the low end is above the high end", args[0], args[1]));
                }
                Dist::Uniform { lo, hi }
            }
            other => return Err(format!("unknown distribution {other:?} (fixed, lognormal, normal, uniform)")),
        };
        Ok(d)
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Dist::Fixed(v) => write!(f, "fixed({v}s)"),
            Dist::LogNormal { median, sigma } => write!(f, "lognormal({median}s, {sigma})"),
            Dist::Normal { mean, sd } => write!(f, "normal({mean}s, {sd}s)"),
            Dist::Uniform { lo, hi } => write!(f, "uniform({lo}s, {hi}s)"),
        }
    }
}

/// A standard normal draw (Box–Muller; rand's distributions crate is not a dependency).
fn std_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Parses `2.5s`, `300ms`, `1.5m`, `2h` (a bare number is seconds) into seconds.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("expected a duration like 2.5s or 300ms, got {s:?}"))?;
    let k = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h, d)")),
    };
    let v = n * k;
    if !v.is_finite() {
        return Err(format!("{s:?} is not a finite duration"));
    }
    Ok(v)
}

/// Parses a rate: `2/s`, `30/m`, `100/h` or a bare number per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
    let n: f64 = n.trim().parse().map_err(|_| format!("expected a rate like 2/s, got {s:?}"))?;
    let per = match per.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown rate unit {other:?} in {s:?} (s, m, h)")),
    };
    let r = n / per;
    if !(r.is_finite() && r > 0.0 && r <= 1000.0) {
        return Err(format!("rate {s:?} must be above 0 and at most 1000/s"));
    }
    Ok(r)
}

/// Parses a time relative to the start of the command: `-3m` (before it) or `+2m` (after).
pub fn parse_relative(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => return Err(format!("expected a time relative to now like -3m or +2m, got {s:?}")),
    };
    Ok((sign * parse_secs(rest)? * 1e6).round() as i64)
}

/// Which calls a rule applies to: `[Function/]Operation[@Env]`. The function may be its
/// abbreviation (`GDSH`); the operation its subsegment name (`Bedrock.InvokeModel`) or its
/// TIMING metric (`BedrockCallDuration`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub function: Option<&'static str>,
    pub operation: String,
    pub env: Option<String>,
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let (rest, env) = match s.rsplit_once('@') {
            Some((r, e)) if !e.trim().is_empty() => (r, Some(e.trim().to_string())),
            Some(_) => return Err(format!("{s:?}: empty environment after '@'")),
            None => (s, None),
        };
        let (function, operation) = match rest.split_once('/') {
            Some((f, o)) => {
                let i = find_function(f.trim()).ok_or_else(|| {
                    format!(
                        "{s:?}: unknown function {:?} (one of {})",
                        f.trim(),
                        ATLAS.iter().map(|f| format!("{} ({})", f.name, f.abbr)).collect::<Vec<_>>().join(", ")
                    )
                })?;
                (Some(ATLAS[i].name), o.trim())
            }
            None => (None, rest.trim()),
        };
        let sel = Selector { function, operation: operation.to_string(), env };
        if !ATLAS.iter().any(|f| f.ops.iter().any(|o| sel.matches_op(f, o))) {
            let known: Vec<String> = ATLAS
                .iter()
                .filter(|f| function.is_none_or(|n| n == f.name))
                .flat_map(|f| f.ops.iter().map(move |o| format!("{}/{} ({})", f.name, o.name, o.metric)))
                .collect();
            return Err(format!("{s:?}: no such operation; known: {}", known.join(", ")));
        }
        Ok(sel)
    }

    /// 0 (operation only) to 2 (function and env given).
    fn specificity(&self) -> u8 {
        self.function.is_some() as u8 + self.env.is_some() as u8
    }

    fn matches_op(&self, f: &FunctionSpec, o: &OpSpec) -> bool {
        self.function.is_none_or(|n| n == f.name) && (self.operation == o.name || self.operation == o.metric)
    }

    fn matches(&self, f: &FunctionSpec, o: &OpSpec, env: &str) -> bool {
        self.matches_op(f, o) && self.env.as_deref().is_none_or(|e| e == env)
    }
}

/// What a rule sets: a whole distribution, or only the median (a bare `9s`: the default
/// shape moved to that median).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencySpec {
    Median(f64),
    Dist(Dist),
}

impl LatencySpec {
    pub fn parse(s: &str) -> Result<LatencySpec, String> {
        if s.contains('(') { Dist::parse(s).map(LatencySpec::Dist) } else { parse_secs(s).map(LatencySpec::Median) }
    }

    fn apply(&self, base: Dist) -> Dist {
        match *self {
            LatencySpec::Median(m) => base.with_median(m),
            LatencySpec::Dist(d) => d,
        }
    }
}

/// `--latency 'SELECTOR=SPEC'`: the normal latency of the calls it selects.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRule {
    pub selector: Selector,
    pub spec: LatencySpec,
}

impl LatencyRule {
    pub fn parse(s: &str) -> Result<LatencyRule, String> {
        let (sel, spec) = s.split_once('=').ok_or_else(|| format!("expected SELECTOR=LATENCY, got {s:?}"))?;
        Ok(LatencyRule { selector: Selector::parse(sel)?, spec: LatencySpec::parse(spec).map_err(|e| format!("{s:?}: {e}"))? })
    }
}

/// `--slow 'SELECTOR=SPEC[,from=-3m][,until=+5m]'`: a slowdown between two moments
/// (relative to the command's start; open-ended when not given).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowRule {
    pub selector: Selector,
    pub spec: LatencySpec,
    /// Offset from the start of the command, µs.
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl SlowRule {
    pub fn parse(s: &str) -> Result<SlowRule, String> {
        let (sel, rest) = s.split_once('=').ok_or_else(|| format!("expected SELECTOR=LATENCY[,from=-3m], got {s:?}"))?;
        // The latency may hold commas itself (`lognormal(9s, 0.1)`): split after its ')'.
        let (spec, opts) = match rest.find(')') {
            Some(p) => (&rest[..=p], rest[p + 1..].trim_start_matches(',')),
            None => rest.split_once(',').unwrap_or((rest, "")),
        };
        let mut rule = SlowRule {
            selector: Selector::parse(sel)?,
            spec: LatencySpec::parse(spec).map_err(|e| format!("{s:?}: {e}"))?,
            from: None,
            until: None,
        };
        for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("from", v)) => rule.from = Some(parse_relative(v).map_err(|e| format!("{s:?}: from: {e}"))?),
                Some(("until", v)) => rule.until = Some(parse_relative(v).map_err(|e| format!("{s:?}: until: {e}"))?),
                _ => return Err(format!("{s:?}: unknown option {opt:?} (from=-3m, until=+2m)")),
            }
        }
        if let (Some(a), Some(b)) = (rule.from, rule.until)
            && a >= b
        {
            return Err(format!("{s:?}: from must come before until"));
        }
        Ok(rule)
    }

    fn active(&self, offset_us: i64) -> bool {
        self.from.is_none_or(|f| offset_us >= f) && self.until.is_none_or(|u| offset_us < u)
    }
}

/// A TOML profile (`--profile FILE`); command-line flags win over it.
///
/// ```toml
/// rate = "2/s"                 # workflow executions per second, per environment
/// envs = ["PROD", "Dev"]
/// error_rate = 0.002           # share of invocations that raise
/// timeout_rate = 0.001         # share of invocations that hit the function timeout
/// malformed_rate = 0.001       # share of TIMING lines printed with "value_sec": NaN
/// slow = ["GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m"]
///
/// [latency]                    # SELECTOR = LATENCY; the more specific selector wins
/// "Bedrock.InvokeModel" = "lognormal(2.5s, 0.2)"
/// "LFH/Bedrock.InvokeModel" = "lognormal(600ms, 0.25)"
/// "Connect.StartOutboundCall@Dev" = "1.2s"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    pub rate: Option<String>,
    pub envs: Option<Vec<String>>,
    pub error_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
    pub malformed_rate: Option<f64>,
    pub slow: Vec<String>,
    /// `SELECTOR = LATENCY`; the more specific selectors (with a function, with an env) win.
    pub latency: toml::Table,
}

/// Everything that decides what is generated (no endpoints, no credentials).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Simulated history before the start of the command.
    pub duration: Duration,
    /// Executions per second, per environment.
    pub rate_per_s: f64,
    pub envs: Vec<String>,
    pub latency: Vec<LatencyRule>,
    pub slow: Vec<SlowRule>,
    pub seed: u64,
    pub error_rate: f64,
    pub timeout_rate: f64,
    pub malformed_rate: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            duration: Duration::from_secs(600),
            rate_per_s: 2.0,
            envs: vec!["PROD".into(), "Dev".into()],
            latency: Vec::new(),
            slow: Vec::new(),
            seed: 1,
            error_rate: 0.002,
            timeout_rate: 0.001,
            malformed_rate: 0.001,
        }
    }
}

impl Settings {
    /// The latency distribution of `op` of `f` in `env` at `offset_us` from the start.
    pub fn dist(&self, f: &FunctionSpec, op: &OpSpec, env: &str, offset_us: i64) -> Dist {
        let mut d = op.default;
        for r in self.latency.iter().filter(|r| r.selector.matches(f, op, env)) {
            d = r.spec.apply(d);
        }
        if let Some(r) = self.slow.iter().rev().find(|r| r.selector.matches(f, op, env) && r.active(offset_us)) {
            d = r.spec.apply(d);
        }
        d
    }
}

fn probability(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{name} must be between 0 and 1, got {v}")) }
}

// ---------------------------------------------------------------------------------------
// Generation (pure)
// ---------------------------------------------------------------------------------------

/// Where the functions live and which versions the aliases point at.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub region: String,
    pub account: String,
    /// `(function, env)` → published version number.
    pub versions: BTreeMap<(String, String), String>,
}

impl Deployment {
    fn version(&self, function: &str, env: &str) -> String {
        self.versions.get(&(function.to_string(), env.to_string())).cloned().unwrap_or_else(|| "$LATEST".into())
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// The last call raised; no TIMING for it.
    Error,
    /// The last call hung until the function timeout; no TIMING for it, no END line.
    Timeout,
}

/// One instrumented call; times in epoch µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub op: &'static OpSpec,
    pub id: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Its TIMING line is printed with `"value_sec": NaN`.
    pub malformed: bool,
}

impl Call {
    pub fn seconds(&self) -> f64 {
        (self.end_us - self.start_us) as f64 / 1e6
    }
}

/// One Lambda invocation through an alias; times in epoch µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: &'static FunctionSpec,
    pub env: String,
    pub version: String,
    pub request_id: String,
    pub log_stream: String,
    /// A new execution environment: `INIT_START`, `Init Duration`, `Initialization`.
    pub cold: bool,
    pub outcome: Outcome,
    pub memory_used_mb: u32,
    pub state_id: String,
    pub invoke_id: String,
    pub service_id: String,
    pub function_id: String,
    pub state_start_us: i64,
    pub invoke_start_us: i64,
    pub service_start_us: i64,
    pub function_start_us: i64,
    /// Start of the handler (after initialization on a cold start).
    pub handler_start_us: i64,
    pub handler_end_us: i64,
    pub function_end_us: i64,
    pub service_end_us: i64,
    pub invoke_end_us: i64,
    pub state_end_us: i64,
    /// Calls that completed (a failed or hung last call is not here).
    pub calls: Vec<Call>,
    /// The call that raised or hung.
    pub failed_call: Option<&'static OpSpec>,
}

impl Invocation {
    pub fn init_us(&self) -> i64 {
        self.handler_start_us - self.function_start_us
    }
    pub fn duration_us(&self) -> i64 {
        self.handler_end_us - self.handler_start_us
    }
}

/// One AtlasEngineWorkflow execution: its trace and its invocations.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub env: String,
    pub trace_id: String,
    pub segment_id: String,
    pub name: String,
    pub start_us: i64,
    pub end_us: i64,
    pub invocations: Vec<Invocation>,
    pub failed: bool,
}

/// One execution environment (a log stream).
#[derive(Debug, Clone)]
struct Sandbox {
    stream: String,
    busy_until_us: i64,
    last_end_us: i64,
    /// Reclaimed after this long idle.
    idle_limit_us: i64,
}

/// One environment's traffic: its own random stream (so a Dev-only slowdown changes nothing
/// in PROD), next arrival, and warm sandboxes per function.
struct EnvState {
    name: String,
    rng: StdRng,
    next_arrival_us: i64,
    sandboxes: Vec<Vec<Sandbox>>,
}

/// Produces executions in start order; `until` can be called repeatedly (`--follow`) and
/// yields the same executions however the time is cut.
pub struct Generator {
    settings: Settings,
    deployment: Deployment,
    /// The start of the command: `--slow` offsets are relative to it.
    t0_us: i64,
    envs: Vec<EnvState>,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn hex(rng: &mut StdRng, digits: usize) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        let _ = write!(s, "{:016x}", rng.random::<u64>());
    }
    s.truncate(digits);
    s
}

fn uuid4(rng: &mut StdRng) -> String {
    let h = hex(rng, 32);
    let variant = ["8", "9", "a", "b"][rng.random_range(0..4)];
    format!("{}-{}-4{}-{}{}-{}", &h[0..8], &h[8..12], &h[13..16], variant, &h[17..20], &h[20..32])
}

/// Draws from a log-normal around `median_us`, in whole µs.
fn jitter_us(rng: &mut StdRng, median_us: f64, sigma: f64) -> i64 {
    (median_us * (sigma * std_normal(rng)).exp()).round().max(1.0) as i64
}

impl Generator {
    /// Traffic starts `settings.duration` before `t0_ms` (the command's start).
    pub fn new(settings: Settings, deployment: Deployment, t0_ms: i64) -> Generator {
        let t0_us = t0_ms * 1000;
        let start = t0_us - settings.duration.as_micros() as i64;
        let envs = settings
            .envs
            .iter()
            .map(|e| {
                let mut rng = StdRng::seed_from_u64(settings.seed ^ fnv(e));
                let first = start + exp_gap_us(&mut rng, settings.rate_per_s);
                EnvState { name: e.clone(), rng, next_arrival_us: first, sandboxes: vec![Vec::new(); ATLAS.len()] }
            })
            .collect();
        Generator { settings, deployment, t0_us, envs }
    }

    /// Every execution starting before `t_ms` not yet returned, in start order.
    pub fn until(&mut self, t_ms: i64) -> Vec<Execution> {
        let t_us = t_ms * 1000;
        let mut out = Vec::new();
        while let Some(i) = (0..self.envs.len()).min_by_key(|&i| (self.envs[i].next_arrival_us, i)) {
            let start = self.envs[i].next_arrival_us;
            if start >= t_us {
                break;
            }
            out.push(self.execution(i, start));
            let rate = self.settings.rate_per_s;
            let env = &mut self.envs[i];
            env.next_arrival_us = start + exp_gap_us(&mut env.rng, rate);
        }
        out
    }

    fn execution(&mut self, env_idx: usize, start_us: i64) -> Execution {
        let settings = &self.settings;
        let t0_us = self.t0_us;
        let deployment = &self.deployment;
        let env = &mut self.envs[env_idx];
        let rng = &mut env.rng;
        let trace_id = format!("1-{:08x}-{}", start_us / 1_000_000, hex(rng, 24));
        let segment_id = hex(rng, 16);
        let name = uuid4(rng);
        let mut cursor = start_us + jitter_us(rng, 15_000.0, 0.3);
        let mut invocations = Vec::new();
        let mut failed = false;
        for (fi, f) in ATLAS.iter().enumerate() {
            let state_start = cursor;
            let invoke_start = state_start + jitter_us(rng, 1_500.0, 0.3);
            let service_start = invoke_start + jitter_us(rng, 6_000.0, 0.4);
            let function_start = service_start + jitter_us(rng, 400.0, 0.3);
            // A warm sandbox if one is free (the most recently used first), else a cold one.
            let pool = &mut env.sandboxes[fi];
            pool.retain(|s| s.busy_until_us > function_start || function_start - s.last_end_us < s.idle_limit_us);
            let warm = pool
                .iter()
                .enumerate()
                .filter(|(_, s)| s.busy_until_us <= function_start)
                .max_by_key(|(_, s)| s.last_end_us)
                .map(|(i, _)| i);
            let (sandbox, cold) = match warm {
                Some(i) => (i, false),
                None => {
                    let version = deployment.version(f.name, &env.name);
                    let stream = format!("{}/[{}]{}", ymd(function_start / 1000, '/'), version, hex(rng, 32));
                    let idle_limit_us = rng.random_range(300_000_000..900_000_000);
                    pool.push(Sandbox { stream, busy_until_us: i64::MAX, last_end_us: function_start, idle_limit_us });
                    (pool.len() - 1, true)
                }
            };
            let handler_start = function_start + if cold { jitter_us(rng, 420_000.0, 0.25) } else { 0 };
            let outcome = {
                let u: f64 = rng.random();
                if u < settings.timeout_rate {
                    Outcome::Timeout
                } else if u < settings.timeout_rate + settings.error_rate {
                    Outcome::Error
                } else {
                    Outcome::Ok
                }
            };
            let mut t = handler_start + jitter_us(rng, 2_000.0, 0.3);
            let mut calls = Vec::new();
            let mut failed_call = None;
            for (oi, op) in f.ops.iter().enumerate() {
                let last = oi + 1 == f.ops.len();
                let offset = t - t0_us;
                let secs = settings.dist(f, op, &env.name, offset).sample(rng);
                let start = t;
                let end = start + (secs * 1e6).round() as i64;
                let malformed = rng.random::<f64>() < settings.malformed_rate;
                let id = hex(rng, 16);
                if last && outcome == Outcome::Timeout {
                    failed_call = Some(op);
                    t = handler_start + f.timeout_s as i64 * 1_000_000;
                    break;
                }
                if last && outcome == Outcome::Error {
                    failed_call = Some(op);
                    t = end + jitter_us(rng, 3_000.0, 0.3);
                    break;
                }
                calls.push(Call { op, id, start_us: start, end_us: end, malformed });
                t = end + jitter_us(rng, 1_500.0, 0.4);
            }
            let handler_end = if outcome == Outcome::Timeout { t } else { t + 1_000 };
            let function_end = handler_end + jitter_us(rng, 400.0, 0.3);
            let service_end = function_end + jitter_us(rng, 800.0, 0.3);
            let invoke_end = service_end + jitter_us(rng, 5_000.0, 0.4);
            let state_end = invoke_end + jitter_us(rng, 1_000.0, 0.3);
            let sb = &mut pool[sandbox];
            sb.busy_until_us = function_end + 1_000;
            sb.last_end_us = function_end;
            let memory_used_mb = ((f.memory_used_mb as f64) * (1.0 + 0.05 * std_normal(rng)) + if cold { 0.0 } else { 4.0 })
                .round()
                .clamp(40.0, f.memory_mb as f64) as u32;
            invocations.push(Invocation {
                function: f,
                env: env.name.clone(),
                version: deployment.version(f.name, &env.name),
                request_id: uuid4(rng),
                log_stream: sb.stream.clone(),
                cold,
                outcome,
                memory_used_mb,
                state_id: hex(rng, 16),
                invoke_id: hex(rng, 16),
                service_id: hex(rng, 16),
                function_id: hex(rng, 16),
                state_start_us: state_start,
                invoke_start_us: invoke_start,
                service_start_us: service_start,
                function_start_us: function_start,
                handler_start_us: handler_start,
                handler_end_us: handler_end,
                function_end_us: function_end,
                service_end_us: service_end,
                invoke_end_us: invoke_end,
                state_end_us: state_end,
                calls,
                failed_call,
            });
            cursor = state_end + jitter_us(rng, 25_000.0, 0.4);
            if outcome != Outcome::Ok {
                failed = true;
                break;
            }
        }
        let end_us = cursor + jitter_us(rng, 5_000.0, 0.3);
        Execution { env: env.name.clone(), trace_id, segment_id, name, start_us, end_us, invocations, failed }
    }
}

/// Poisson arrivals: an exponential gap with mean 1/rate, in µs (at least 1).
fn exp_gap_us(rng: &mut StdRng, rate_per_s: f64) -> i64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    ((-u.ln() / rate_per_s) * 1e6).round().max(1.0) as i64
}

// ---------------------------------------------------------------------------------------
// Rendering (pure)
// ---------------------------------------------------------------------------------------

/// One CloudWatch Logs event to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub group: String,
    pub stream: String,
    pub time_ms: i64,
    pub message: String,
}

/// `YYYY/MM/DD` (or with another separator) of an epoch-ms time, UTC.
fn ymd(ms: i64, sep: char) -> String {
    let (y, m, d) = civil(ms.div_euclid(86_400_000));
    format!("{y:04}{sep}{m:02}{sep}{d:02}")
}

/// `2020-06-09T15:02:26.150Z`.
fn iso(ms: i64) -> String {
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        ymd(ms, '-'),
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A float as Python's `repr` prints it (`9.0`, `2.847`), which `json.dumps` uses.
fn py_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || !v.is_finite() { s } else { format!("{s}.0") }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The seed's `print(json.dumps({...}))` line: keys in insertion order, `": "` and `", "`.
fn seed_line(event_type: &str, abbr: &str, rest: &[(&str, String)]) -> String {
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

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn ms(us: i64) -> i64 {
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

// ---------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------

/// `latency-sentinel simulate`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = SIMULATE_HELP)]
pub struct Args {
    /// Daemon config file: only its [aws] region and endpoint_url are read.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// AWS endpoint (moto's server: http://127.0.0.1:PORT). Wins over --config.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// AWS region. Wins over --config.
    #[arg(long)]
    pub region: Option<String>,
    /// Simulated history ending now (at most 14 days: CloudWatch refuses older events).
    #[arg(long, default_value = "10m")]
    pub duration: String,
    /// Workflow executions per environment: `2/s`, `30/m`, `100/h`.
    #[arg(long)]
    pub rate: Option<String>,
    /// Environments (Lambda aliases), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub envs: Option<Vec<String>>,
    /// Normal latency of some calls: `[Function/]Operation[@Env]=LATENCY` (repeatable).
    #[arg(long = "latency")]
    pub latency: Vec<String>,
    /// A slowdown: `[Function/]Operation[@Env]=LATENCY[,from=-3m][,until=+1m]` (repeatable).
    #[arg(long = "slow")]
    pub slow: Vec<String>,
    /// TOML profile with rate, envs, rates of failures, [latency] and slow rules.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Random seed: the same seed, options and start time give the same traffic.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of invocations that raise (0..1).
    #[arg(long)]
    pub error_rate: Option<f64>,
    /// Share of invocations that hit their function timeout (0..1).
    #[arg(long)]
    pub timeout_rate: Option<f64>,
    /// Share of TIMING lines printed with `"value_sec": NaN` (0..1).
    #[arg(long)]
    pub malformed_rate: Option<f64>,
    /// After the history, keep writing live traffic until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Use this execution role instead of creating `atlas-engine-simulated-lambda-role`.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Allow an endpoint that is not on this machine (a real AWS account: it creates IAM
    /// roles and Lambda functions and writes logs and traces there).
    #[arg(long = "i-know-this-is-a-real-account")]
    pub real_account: bool,
}

const SIMULATE_HELP: &str = "LATENCY is a distribution, `lognormal(2.5s, 0.2)` (median, sigma), `normal(2.5s, 300ms)`,
`uniform(1s, 2s)` or `fixed(9s)`, or a bare duration `9s`: the default shape moved to that median.
Operations: LexFulfillmentHandler (LFH): Bedrock.InvokeModel, SecretsManager.GetSecret, Salesforce.OAuth;
GenerateDynamicScenarioHandler (GDSH): Bedrock.InvokeModel; InvokeOutboundCallHandler (IOCH):
DynamoDB.PutItem, Connect.StartOutboundCall, DynamoDB.UpdateItem; UpdateLeadHandler (ULH):
Salesforce.Authenticate, Salesforce.UpdateLead (or their TIMING metric names, e.g. BedrockCallDuration).

Examples:
  latency-sentinel simulate --endpoint-url http://127.0.0.1:5000 --region us-east-1 \\
      --slow 'GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m'
  latency-sentinel simulate --config config.toml --duration 1h --rate 30/m --seed 7 \\
      --latency 'Connect.StartOutboundCall=lognormal(1.5s, 0.4)' --follow
Credentials come from the standard AWS variables (AWS_ACCESS_KEY_ID, ... ; anything works with moto).";

impl Args {
    /// The settings the flags and the profile describe; every problem at once.
    pub fn settings(&self) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let profile = match &self.profile {
            None => Profile::default(),
            Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| toml::from_str::<Profile>(&t).map_err(|e| e.to_string())) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(format!("--profile {}: {e}", p.display()));
                    Profile::default()
                }
            },
        };
        let mut s = Settings::default();
        match humantime::parse_duration(&self.duration).map_err(|e| e.to_string()).or_else(|_| parse_secs(&self.duration).map(Duration::from_secs_f64)) {
            Ok(d) if d <= MAX_HISTORY => s.duration = d,
            Ok(_) => errors.push(format!("--duration {}: at most 14 days minus an hour (CloudWatch Logs refuses events older than 14 days)", self.duration)),
            Err(e) => errors.push(format!("--duration: {e}")),
        }
        if let Some(r) = self.rate.as_ref().or(profile.rate.as_ref()) {
            match parse_rate(r) {
                Ok(v) => s.rate_per_s = v,
                Err(e) => errors.push(format!("rate: {e}")),
            }
        }
        if let Some(envs) = self.envs.clone().or(profile.envs.clone()) {
            let envs: Vec<String> = envs.into_iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
            let valid = |e: &str| e.len() <= 128 && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') && !e.chars().all(|c| c.is_ascii_digit());
            if envs.is_empty() {
                errors.push("--envs: give at least one environment".into());
            } else if let Some(bad) = envs.iter().find(|e| !valid(e)) {
                errors.push(format!("--envs: {bad:?} is not a valid Lambda alias name (letters, digits, - and _; not all digits)"));
            } else if envs.iter().collect::<HashSet<_>>().len() != envs.len() {
                errors.push("--envs: an environment is listed twice".into());
            } else {
                s.envs = envs;
            }
        }
        for (k, v) in &profile.latency {
            match v.as_str().ok_or_else(|| format!("expected a string, got {v}")).and_then(|v| LatencyRule::parse(&format!("{k}={v}"))) {
                Ok(r) => s.latency.push(r),
                Err(e) => errors.push(format!("profile [latency] {k:?}: {e}")),
            }
        }
        for l in &self.latency {
            match LatencyRule::parse(l) {
                Ok(r) => s.latency.push(r),
                Err(e) => errors.push(format!("--latency: {e}")),
            }
        }
        // More specific rules apply last (so win); among equals, flags after the profile.
        s.latency.sort_by_key(|r| r.selector.specificity());
        for sl in profile.slow.iter().chain(&self.slow) {
            match SlowRule::parse(sl) {
                Ok(r) => s.slow.push(r),
                Err(e) => errors.push(format!("--slow: {e}")),
            }
        }
        let rules_envs = s.latency.iter().map(|r| &r.selector).chain(s.slow.iter().map(|r| &r.selector));
        for sel in rules_envs {
            if let Some(e) = &sel.env
                && !s.envs.contains(e)
            {
                errors.push(format!("rule for @{e}: {e} is not among the environments ({})", s.envs.join(",")));
            }
        }
        for (name, flag, prof, slot) in [
            ("--error-rate", self.error_rate, profile.error_rate, &mut s.error_rate),
            ("--timeout-rate", self.timeout_rate, profile.timeout_rate, &mut s.timeout_rate),
            ("--malformed-rate", self.malformed_rate, profile.malformed_rate, &mut s.malformed_rate),
        ] {
            if let Some(v) = flag.or(prof) {
                match probability(name, v) {
                    Ok(v) => *slot = v,
                    Err(e) => errors.push(e),
                }
            }
        }
        s.seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        if errors.is_empty() { Ok(s) } else { Err(errors) }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub region: String,
    pub account: String,
    /// `function` → `env` → version.
    pub versions: BTreeMap<String, BTreeMap<String, String>>,
    pub executions: BTreeMap<String, u64>,
    pub invocations: u64,
    pub cold_starts: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub malformed_lines: u64,
    pub log_events: u64,
    pub trace_documents: u64,
    pub traces: u64,
    pub unprocessed_trace_documents: u64,
    /// Time span of what was written, epoch ms.
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub seed: u64,
}

impl Summary {
    fn count(&mut self, exec: &Execution) {
        *self.executions.entry(exec.env.clone()).or_default() += 1;
        self.traces += 1;
        for inv in &exec.invocations {
            self.invocations += 1;
            self.cold_starts += inv.cold as u64;
            self.errors += (inv.outcome == Outcome::Error) as u64;
            self.timeouts += (inv.outcome == Outcome::Timeout) as u64;
            self.malformed_lines += inv.calls.iter().filter(|c| c.malformed).count() as u64;
        }
    }
}

/// Runs the command: exit code 0 done, 1 AWS failure, 2 bad options or refused endpoint.
pub fn main(args: Args) -> std::process::ExitCode {
    use std::process::ExitCode;
    let settings = match args.settings() {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("simulate: {} error(s):", errors.len());
            for e in errors {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
    };
    let mut aws = crate::config::AwsConfig::default();
    if let Some(path) = &args.config {
        match crate::config::load_file_for(path, crate::config::Purpose::Offline) {
            Ok(c) => aws = c.aws,
            Err(errors) => {
                eprintln!("{}: {} error(s):", path.display(), errors.len());
                for e in &errors {
                    eprintln!("  {e}");
                }
                return ExitCode::from(2);
            }
        }
    }
    if let Some(e) = &args.endpoint_url {
        aws.endpoint_url = e.clone();
    }
    if let Some(r) = &args.region {
        aws.region = r.clone();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Where the SDK itself would send each call (flags, config, every standard variable and
    // profile setting, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS included).
    let endpoints = rt.block_on(async { crate::endpoints::resolved(&crate::aws::sdk_config(&aws).await).await });
    let remote: Vec<String> = endpoints
        .iter()
        .filter_map(|(service, url)| match url {
            Ok(u) if crate::endpoints::is_loopback(u) => None,
            Ok(u) => Some(format!("{service}: {u}")),
            Err(why) => Some(format!("{service}: unknown ({why})")),
        })
        .collect();
    if !remote.is_empty() {
        let target = remote.join(", ");
        if !args.real_account {
            eprintln!(
                "simulate: refusing to write to {target}: only endpoints on this machine (127.0.0.1, localhost, ::1) are allowed.\n\
                 Give --endpoint-url http://127.0.0.1:PORT for moto's server, or --i-know-this-is-a-real-account to write to a real account."
            );
            return ExitCode::from(2);
        }
        eprintln!("{}", "!".repeat(78));
        eprintln!("!! WARNING: writing SIMULATED traffic to {target}.");
        eprintln!("!! This creates an IAM role, four Lambda functions with PROD/Dev aliases, log groups,");
        eprintln!("!! log events and X-Ray traces in that account, which cost money and can be");
        eprintln!("!! mistaken for real data by anyone watching it. Ctrl-C within 10 seconds to stop.");
        eprintln!("{}", "!".repeat(78));
        std::thread::sleep(Duration::from_secs(10));
    }
    let follow = args.follow;
    let role = args.role_arn.clone();
    match rt.block_on(run(&aws, settings, role, follow, crate::app::shutdown_signal())) {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("simulate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The I/O shell: deploys the functions (or finds them), then writes the history, then
/// live traffic until `shutdown` when `follow`.
pub async fn run(
    aws: &crate::config::AwsConfig,
    settings: Settings,
    role_arn: Option<String>,
    follow: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Summary> {
    use anyhow::Context as _;
    let sdk = crate::aws::sdk_config(aws)
        .await
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
        .build();
    let w = Writer {
        logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
        xray: aws_sdk_xray::Client::new(&sdk),
        created_streams: HashSet::new(),
    };
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    let deployment = deploy(&sdk, &region, role_arn, &settings.envs).await.context("deploying the Atlas Engine functions")?;
    let mut summary = Summary { region: region.clone(), account: deployment.account.clone(), seed: settings.seed, ..Default::default() };
    for ((f, e), v) in &deployment.versions {
        summary.versions.entry(f.clone()).or_default().insert(e.clone(), v.clone());
    }
    tracing::info!(account = %deployment.account, region = %region, seed = settings.seed, "Functions, versions and aliases are in place.");
    for f in &ATLAS {
        w.ensure_group(&format!("/aws/lambda/{}", f.name)).await?;
    }
    let t0 = now_ms();
    let mut generator = Generator::new(settings.clone(), deployment.clone(), t0);
    let mut w = w;
    let mut pending: Vec<Execution> = generator.until(t0);
    // Only what has finished by now is written; the rest waits (or is dropped without --follow).
    let done: Vec<Execution> = take_finished(&mut pending, now_ms());
    // Oldest first, a time slice at a time, as CloudWatch would have received it: a daemon
    // already tailing sees history arrive in order, not stream by stream across the span.
    for slice in history_slices(&done, settings.duration) {
        w.write(slice, &deployment, &mut summary).await?;
    }
    tracing::info!(
        executions = done.len(),
        log_events = summary.log_events,
        trace_documents = summary.trace_documents,
        "Wrote the simulated history."
    );
    if follow {
        tracing::info!("Writing live traffic; Ctrl-C to stop.");
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            pending.extend(generator.until(now));
            let done = take_finished(&mut pending, now);
            if !done.is_empty() {
                w.write(&done, &deployment, &mut summary).await?;
            }
        }
        tracing::info!(log_events = summary.log_events, traces = summary.traces, "Stopped writing live traffic.");
    }
    Ok(summary)
}

/// Cuts executions (in start order) into consecutive time slices of at least 30 s, at most
/// about 200 of them.
pub fn history_slices(execs: &[Execution], duration: Duration) -> Vec<&[Execution]> {
    let width_us = (duration.as_micros() as i64 / 200).max(30_000_000);
    let mut out = Vec::new();
    let mut rest = execs;
    while let Some(first) = rest.first() {
        let end = first.start_us - first.start_us.rem_euclid(width_us) + width_us;
        let n = rest.iter().position(|e| e.start_us >= end).unwrap_or(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fn take_finished(pending: &mut Vec<Execution>, now_ms: i64) -> Vec<Execution> {
    let (done, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|e| e.end_us / 1000 <= now_ms);
    *pending = rest;
    done
}

/// The role name `simulate` creates when no `--role-arn` is given.
pub const ROLE_NAME: &str = "atlas-engine-simulated-lambda-role";

fn code_of<E: aws_sdk_lambda::error::ProvideErrorMetadata>(e: &E) -> &str {
    e.code().unwrap_or("")
}

/// Retries `f` while AWS says the resource is not ready yet (a role still propagating, a
/// function still being created or updated): real accounts need it, moto never does.
async fn patiently<T, E, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut waited = Duration::ZERO;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if matches!(code_of(&e), "ResourceConflictException" | "InvalidParameterValueException") && waited < Duration::from_secs(90) => {
                tracing::info!(what, code = code_of(&e), "Not ready yet; retrying in 3 s.");
                tokio::time::sleep(Duration::from_secs(3)).await;
                waited += Duration::from_secs(3);
            }
            Err(e) => return Err(anyhow::Error::new(e).context(what.to_string())),
        }
    }
}

/// A tiny `lambda_function.py` in a zip (stored, not deflated: no zip crate needed).
pub fn function_zip(function: &FunctionSpec, env: &str) -> Vec<u8> {
    let body = format!(
        "# Stand-in for the Atlas Engine's {name} ({env}), deployed by `latency-sentinel simulate`.\n\
         # The simulator writes this function's logs and traces itself; invoking it does nothing.\n\
         import json\n\n\ndef lambda_handler(event, context):\n    print(json.dumps({{\"level\": \"INFO\", \"event_type\": \"START\", \"function_name\": \"{abbr}\", \"message\": \"Function started\"}}))\n    return {{\"statusCode\": 200}}\n",
        name = function.name,
        abbr = function.abbr,
    );
    stored_zip("lambda_function.py", body.as_bytes())
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A one-file zip archive with the file stored uncompressed.
pub fn stored_zip(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let (n, len) = (name.len() as u16, data.len() as u32);
    // 1980-01-01 00:00: a fixed date keeps the archive (and the code hash) deterministic.
    let (time, date) = (0u16, (1u16 << 5) | 1); // DOS date: (year - 1980) << 9 | month << 5 | day
    let mut z = Vec::new();
    let le16 = |z: &mut Vec<u8>, v: u16| z.extend_from_slice(&v.to_le_bytes());
    let le32 = |z: &mut Vec<u8>, v: u32| z.extend_from_slice(&v.to_le_bytes());
    le32(&mut z, 0x0403_4b50);
    for v in [20, 0, 0, time, date] {
        le16(&mut z, v);
    }
    for v in [crc, len, len] {
        le32(&mut z, v);
    }
    le16(&mut z, n);
    le16(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    le32(&mut z, 0x0201_4b50);
    for v in [20, 20, 0, 0, time, date] {
        le16(&mut z, v);
    }
    for v in [crc, len, len] {
        le32(&mut z, v);
    }
    for v in [n, 0, 0, 0, 0] {
        le16(&mut z, v);
    }
    le32(&mut z, 0o100644 << 16);
    le32(&mut z, 0);
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    le32(&mut z, 0x0605_4b50);
    for v in [0, 0, 1, 1] {
        le16(&mut z, v);
    }
    le32(&mut z, central_len);
    le32(&mut z, central);
    le16(&mut z, 0);
    z
}

/// Creates (or finds) the role, the four functions, a published version per environment and
/// the aliases pointing at them. Running it again reuses what exists.
async fn deploy(sdk: &aws_config::SdkConfig, region: &str, role_arn: Option<String>, envs: &[String]) -> anyhow::Result<Deployment> {
    use anyhow::Context as _;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::types::{FunctionCode, Runtime, TracingConfig, TracingMode};
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let role = match role_arn {
        Some(r) => r,
        None => ensure_role(&aws_sdk_iam::Client::new(sdk)).await?,
    };
    let account = role.split(':').nth(4).filter(|a| !a.is_empty()).unwrap_or("123456789012").to_string();
    let mut versions = BTreeMap::new();
    for f in &ATLAS {
        match lambda.get_function().function_name(f.name).send().await {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceNotFoundException" => {
                patiently(&format!("CreateFunction {}", f.name), || {
                    lambda
                        .create_function()
                        .function_name(f.name)
                        .runtime(Runtime::Python312)
                        .role(&role)
                        .handler("lambda_function.lambda_handler")
                        .code(FunctionCode::builder().zip_file(Blob::new(function_zip(f, "initial"))).build())
                        .memory_size(f.memory_mb as i32)
                        .timeout(f.timeout_s as i32)
                        .tracing_config(TracingConfig::builder().mode(TracingMode::Active).build())
                        .description("Atlas Engine stand-in written by latency-sentinel simulate")
                        .send()
                })
                .await?;
                tracing::info!(function = f.name, "Created the function.");
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("GetFunction {}", f.name))),
        }
        for env in envs {
            let version = match lambda.get_alias().function_name(f.name).name(env).send().await {
                Ok(a) => a.function_version().unwrap_or("$LATEST").to_string(),
                Err(e) if code_of(&e) == "ResourceNotFoundException" => {
                    patiently(&format!("UpdateFunctionCode {}", f.name), || {
                        lambda.update_function_code().function_name(f.name).zip_file(Blob::new(function_zip(f, env))).send()
                    })
                    .await?;
                    let published = patiently(&format!("PublishVersion {}", f.name), || {
                        lambda.publish_version().function_name(f.name).description(format!("{env} build")).send()
                    })
                    .await?;
                    let v = published.version().unwrap_or("$LATEST").to_string();
                    lambda
                        .create_alias()
                        .function_name(f.name)
                        .name(env)
                        .function_version(&v)
                        .send()
                        .await
                        .with_context(|| format!("CreateAlias {}:{env}", f.name))?;
                    tracing::info!(function = f.name, env = %env, version = %v, "Published a version and pointed the alias at it.");
                    v
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("GetAlias {}:{env}", f.name))),
            };
            versions.insert((f.name.to_string(), env.clone()), version);
        }
    }
    Ok(Deployment { region: region.to_string(), account, versions })
}

async fn ensure_role(iam: &aws_sdk_iam::Client) -> anyhow::Result<String> {
    use anyhow::Context as _;
    match iam.get_role().role_name(ROLE_NAME).send().await {
        Ok(r) => return Ok(r.role().map(|r| r.arn().to_string()).unwrap_or_default()),
        Err(e) if code_of(&e) == "NoSuchEntity" => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("GetRole {ROLE_NAME}"))),
    }
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let r = iam
        .create_role()
        .role_name(ROLE_NAME)
        .assume_role_policy_document(trust.to_string())
        .description("Execution role of the Atlas Engine stand-ins created by latency-sentinel simulate")
        .send()
        .await
        .with_context(|| format!("CreateRole {ROLE_NAME}"))?;
    Ok(r.role().map(|r| r.arn().to_string()).unwrap_or_default())
}

/// PutLogEvents limits: 10,000 events, 1 MiB (each event counts 26 bytes more), 24 h.
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_000_000;
const MAX_BATCH_SPAN_MS: i64 = 24 * 3_600_000 - 60_000;
/// Segment documents per PutTraceSegments call.
const TRACE_BATCH: usize = 50;

struct Writer {
    logs: aws_sdk_cloudwatchlogs::Client,
    xray: aws_sdk_xray::Client,
    created_streams: HashSet<(String, String)>,
}

impl Writer {
    async fn ensure_group(&self, group: &str) -> anyhow::Result<()> {
        match self.logs.create_log_group().log_group_name(group).send().await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "ResourceAlreadyExistsException" => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("CreateLogGroup {group}"))),
        }
    }

    async fn ensure_stream(&mut self, group: &str, stream: &str) -> anyhow::Result<()> {
        let key = (group.to_string(), stream.to_string());
        if self.created_streams.contains(&key) {
            return Ok(());
        }
        match self.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceAlreadyExistsException" => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("CreateLogStream {group} {stream}"))),
        }
        self.created_streams.insert(key);
        Ok(())
    }

    /// Writes the executions' log events (per stream, in time order, in batches) and traces.
    async fn write(&mut self, execs: &[Execution], d: &Deployment, summary: &mut Summary) -> anyhow::Result<()> {
        use aws_sdk_cloudwatchlogs::types::InputLogEvent;
        use futures::StreamExt as _;
        // (group, stream) → (time, write order, message).
        type Streams = BTreeMap<(String, String), Vec<(i64, usize, String)>>;
        let mut streams: Streams = BTreeMap::new();
        let mut docs = Vec::new();
        let mut seq = 0usize;
        for exec in execs {
            summary.count(exec);
            for l in log_lines(exec) {
                summary.first_event_ms = Some(summary.first_event_ms.map_or(l.time_ms, |t| t.min(l.time_ms)));
                summary.last_event_ms = Some(summary.last_event_ms.map_or(l.time_ms, |t| t.max(l.time_ms)));
                streams.entry((l.group, l.stream)).or_default().push((l.time_ms, seq, l.message));
                seq += 1;
            }
            docs.extend(trace_documents(exec, d));
        }
        let mut batches = Vec::new();
        for ((group, stream), mut events) in streams {
            self.ensure_stream(&group, &stream).await?;
            events.sort();
            let mut batch: Vec<InputLogEvent> = Vec::new();
            let (mut bytes, mut first) = (0usize, 0i64);
            for (t, _, message) in events {
                let size = message.len() + 26;
                if !batch.is_empty() && (batch.len() >= MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES || t - first > MAX_BATCH_SPAN_MS) {
                    batches.push((group.clone(), stream.clone(), std::mem::take(&mut batch)));
                    bytes = 0;
                }
                if batch.is_empty() {
                    first = t;
                }
                bytes += size;
                batch.push(InputLogEvent::builder().timestamp(t).message(message).build()?);
            }
            if !batch.is_empty() {
                batches.push((group, stream, batch));
            }
        }
        let logs = &self.logs;
        let results: Vec<anyhow::Result<usize>> = futures::stream::iter(batches)
            .map(|(group, stream, batch)| async move {
                let n = batch.len();
                let out = logs
                    .put_log_events()
                    .log_group_name(&group)
                    .log_stream_name(&stream)
                    .set_log_events(Some(batch))
                    .send()
                    .await
                    .map_err(|e| anyhow::Error::new(e).context(format!("PutLogEvents {group} {stream}")))?;
                if let Some(r) = out.rejected_log_events_info() {
                    tracing::warn!(group = %group, stream = %stream, ?r, "Some log events were rejected.");
                }
                Ok(n)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for r in results {
            summary.log_events += r? as u64;
        }
        for chunk in docs.chunks(TRACE_BATCH) {
            let out = self
                .xray
                .put_trace_segments()
                .set_trace_segment_documents(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| anyhow::Error::new(e).context("PutTraceSegments"))?;
            let unprocessed = out.unprocessed_trace_segments().len();
            if unprocessed > 0 {
                tracing::warn!(unprocessed, "X-Ray did not take some segment documents.");
            }
            summary.unprocessed_trace_documents += unprocessed as u64;
            summary.trace_documents += (chunk.len() - unprocessed) as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
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
}
