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
//! Layout: the pure part decides *what* to write ([`app`] the application, [`options`] what
//! a run is asked to do, [`generate`] the executions, [`render`] their log lines and trace
//! documents; unit-tested without I/O); this module is the command, and [`run`] the thin
//! shell that creates the functions, versions and aliases ([`provision`]) and writes logs
//! and traces ([`write`]) with the AWS SDK; `--into-db` writes the history into a store
//! instead, through the tailer's parser ([`into_db`]).

use crate::clock::now_ms;
use crate::hash::fnv1a as fnv;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod app;
mod provision;
mod generate;
mod into_db;
mod options;
mod render;
mod write;
#[cfg(test)]
mod tests;

pub use app::*;
pub use provision::*;
pub use generate::*;
pub use into_db::write_into_db;
pub use options::*;
pub use render::*;
use write::*;

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
    /// Write into another account through this role (STS AssumeRole), as
    /// `ARN` (every environment) or `ARN@ENV[+ENV]` (only their traffic), repeatable: Dev's
    /// traffic in one account and PROD's in another.
    #[arg(long = "account-role")]
    pub account_roles: Vec<String>,
    /// Allow an endpoint that is not on this machine (a real AWS account: it creates IAM
    /// roles and Lambda functions and writes logs and traces there).
    #[arg(long = "i-know-this-is-a-real-account")]
    pub real_account: bool,
    /// Write the history straight into this database file (the daemon's storage.path) instead of an AWS endpoint: the log lines the functions would print, read by the same parser as the tailer (no X-Ray). Quick: days of history in seconds. No AWS call is made.
    #[arg(long)]
    pub into_db: Option<PathBuf>,
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
        for a in &self.account_roles {
            match AccountTarget::parse(a, &s.envs) {
                Ok(t) if s.accounts.iter().any(|o| o.account_id() == t.account_id()) => {
                    errors.push(format!("--account-role: account {} is given twice", t.account_id()))
                }
                Ok(t) => s.accounts.push(t),
                Err(e) => errors.push(format!("--account-role: {e}")),
            }
        }
        if !s.accounts.is_empty() && self.role_arn.is_some() {
            errors.push("--role-arn: not with --account-role (each account gets its own execution role)".into());
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

/// Runs the command: exit code 0 done, 1 AWS (or store) failure, 2 bad options or refused
/// endpoint.
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
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.into_db {
        if args.follow || !args.account_roles.is_empty() {
            eprintln!("simulate: --into-db writes history only: not with --follow or --account-role");
            return ExitCode::from(2);
        }
        return match rt.block_on(write_into_db(path, settings)) {
            Ok(summary) => {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("simulate: error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
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
        Ok(summaries) => {
            // One JSON line per account written into.
            for summary in summaries {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("simulate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The I/O shell: into the caller's account, or into each `--account-role` account at once
/// (its own deployment, environments and seed), deploys the functions (or finds them), then
/// writes the history, then live traffic until `shutdown` when `follow`. One summary per
/// account.
pub async fn run(
    aws: &crate::config::AwsConfig,
    settings: Settings,
    role_arn: Option<String>,
    follow: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Summary>> {
    let sdk = crate::aws::sdk_config(aws)
        .await
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6))
        .build();
    let mut targets = Vec::new();
    if settings.accounts.is_empty() {
        targets.push((sdk, settings));
    } else {
        for a in &settings.accounts {
            let assumed = crate::aws::assumed_sdk_config(&sdk, Some((&a.role_arn, "latency-sentinel-simulate", None)), sdk.region().cloned()).await;
            // Each account its own traffic (request and trace ids), reproducible from the seed.
            let own = Settings { envs: a.envs.clone(), seed: settings.seed ^ fnv(&a.role_arn), accounts: Vec::new(), ..settings.clone() };
            targets.push((assumed, own));
        }
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let finished = tokio_util::sync::CancellationToken::new();
    let runs = async {
        let runs = targets.into_iter().map(|(sdk, s)| run_account(sdk, s, role_arn.clone(), follow, stop.clone()));
        let results = futures::future::join_all(runs).await;
        finished.cancel();
        results
    };
    let watch = async {
        tokio::select! {
            _ = shutdown => stop.cancel(),
            _ = finished.cancelled() => {}
        }
    };
    let (results, ()) = tokio::join!(runs, watch);
    results.into_iter().collect()
}

/// One account's deployment, history and live traffic.
async fn run_account(
    sdk: aws_config::SdkConfig,
    settings: Settings,
    role_arn: Option<String>,
    follow: bool,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Summary> {
    use anyhow::Context as _;
    let w = Writer::new(&sdk);
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
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
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
