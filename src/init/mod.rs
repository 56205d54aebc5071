//! `latency-sentinel init`: writes a first config from what the account holds. With the
//! caller's credentials it lists the Lambda functions, their aliases and log groups, asks
//! X-Ray which functions were traced in the last hour, reads a bounded sample of the last
//! 24 h (FilterLogEvents through the tailer's parser, and a few traces through the X-Ray
//! parser), and writes a commented config ([`render`]) with budgets proposed from the
//! observed p95s ([`propose`]). It never overwrites a file unless told to.
//!
//! The sample stays within the API budget: at most [`MAX_FUNCTIONS`] functions,
//! [`MAX_SAMPLED_GROUPS`] groups × [`PAGES_PER_GROUP`] FilterLogEvents pages, [`MAX_TRACES`]
//! traces; CloudWatch Logs and X-Ray calls at [`REQUESTS_PER_SECOND`] each (below
//! FilterLogEvents' 5/s account quota), Lambda's at [`LAMBDA_REQUESTS_PER_SECOND`] (its
//! control plane allows 15/s), so a thousand functions' aliases take two minutes, not four.

pub mod propose;
pub mod render;

use crate::attribute::{AliasHistory, AliasSpan, Attributor};
use crate::aws::{AwsError, RateLimiter, classify};
use crate::clock::now_ms;
use crate::sources::logs::page_events;
use crate::sources::logs::process::{StreamMemory, process_page};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use render::{Findings, Function};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

pub const MAX_FUNCTIONS: usize = 1000;
pub const MAX_SAMPLED_GROUPS: usize = 50;
pub const PAGES_PER_GROUP: usize = 3;
pub const MAX_TRACES: usize = 100;
pub const REQUESTS_PER_SECOND: f64 = 4.0;
pub const LAMBDA_REQUESTS_PER_SECOND: f64 = 8.0;
const DAY_MS: i64 = 86_400_000;

/// What `init` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub output: PathBuf,
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Looks at the account and writes the config; returns what was found.
pub async fn run(options: &Options) -> Result<Findings, InitError> {
    // Refused before a single call: a file the user has is never touched without --force.
    if options.output.exists() && !options.force {
        return Err(InitError::Exists(options.output.clone()));
    }
    let sdk = sdk(options).await;
    let findings = look(&sdk).await?;
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    write(&options.output, &render::render(&findings, &today[..10]), options.force)?;
    Ok(findings)
}

async fn sdk(options: &Options) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &options.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &options.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return sdk.into_builder().region(Region::new("us-east-1")).build();
    }
    sdk
}

fn write(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    use std::io::Write;
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut file = open.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => InitError::Exists(path.to_path_buf()),
        _ => InitError::Write { path: path.to_path_buf(), source },
    })?;
    file.write_all(text.as_bytes()).map_err(|source| InitError::Write { path: path.to_path_buf(), source })
}

async fn look(sdk: &SdkConfig) -> Result<Findings, InitError> {
    let limiter = RateLimiter::new(REQUESTS_PER_SECOND);
    let xray_limiter = RateLimiter::new(REQUESTS_PER_SECOND);
    let lambda_limiter = RateLimiter::new(LAMBDA_REQUESTS_PER_SECOND);
    let mut f = Findings { region: sdk.region().map(|r| r.to_string()).unwrap_or_default(), ..Findings::default() };
    f.identity = aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await.ok().and_then(|w| w.arn().map(str::to_string));

    let lambda = aws_sdk_lambda::Client::new(sdk);
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        lambda_limiter.acquire().await;
        let page = lambda.list_functions().set_marker(marker.clone()).send().await.map_err(|e| classify("ListFunctions", &e))?;
        names.extend(page.functions().iter().filter_map(|x| x.function_name().map(str::to_string)));
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() || names.len() >= MAX_FUNCTIONS {
            break;
        }
    }
    if names.len() >= MAX_FUNCTIONS {
        names.truncate(MAX_FUNCTIONS);
        f.notes.push(format!("only the first {MAX_FUNCTIONS} functions were looked at"));
    }
    names.sort();

    let groups = log_groups(sdk, &limiter).await?;
    let (listed, mut traced) = traced_functions(sdk, &xray_limiter).await?;
    f.traces_seen = listed > 0;
    let mut samples = Vec::new();
    // The traces' own spans name the functions traced in the last hour too (summaries may not).
    f.traces_read = sample_traces(sdk, &xray_limiter, &mut samples, &mut traced).await?;
    for name in &names {
        lambda_limiter.acquire().await;
        let aliases = match lambda.list_aliases().function_name(name).send().await {
            Ok(r) => r.aliases().iter().filter_map(|a| Some((a.name()?.to_string(), a.function_version()?.to_string()))).collect(),
            Err(e) => {
                let e = classify("ListAliases", &e);
                if e.is_access_denied() {
                    return Err(e.into());
                }
                Vec::new()
            }
        };
        let group = format!("/aws/lambda/{name}");
        f.functions.push(Function { name: name.clone(), aliases, log_group: groups.contains(&group).then_some(group), traced: traced.contains(name) });
    }
    f.env_pattern = propose::env_pattern(&names);

    f.events_read = sample_logs(sdk, &limiter, &f, &mut samples).await?;
    f.operations = propose::observe(samples);
    Ok(f)
}

/// Every log group under `/aws/lambda/`.
async fn log_groups(sdk: &SdkConfig, limiter: &RateLimiter) -> Result<BTreeSet<String>, InitError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let mut out = BTreeSet::new();
    let mut token: Option<String> = None;
    loop {
        limiter.acquire().await;
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix("/aws/lambda/")
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| classify("DescribeLogGroups", &e))?;
        out.extend(page.log_groups().iter().filter_map(|g| g.log_group_name().map(str::to_string)));
        token = page.next_token().map(str::to_string);
        if token.is_none() || out.len() >= MAX_FUNCTIONS {
            return Ok(out);
        }
    }
}

/// How many traces X-Ray lists for the last hour, and the names their summaries mention
/// (services and entry points).
async fn traced_functions(sdk: &SdkConfig, limiter: &RateLimiter) -> Result<(usize, BTreeSet<String>), InitError> {
    let xray = aws_sdk_xray::Client::new(sdk);
    let now = now_ms();
    let mut out = BTreeSet::new();
    let mut listed = 0;
    let mut token: Option<String> = None;
    for _ in 0..5 {
        limiter.acquire().await;
        let page = xray
            .get_trace_summaries()
            .start_time(aws_sdk_xray::primitives::DateTime::from_millis(now - 3_600_000))
            .end_time(aws_sdk_xray::primitives::DateTime::from_millis(now))
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| classify("GetTraceSummaries", &e))?;
        listed += page.trace_summaries().len();
        for s in page.trace_summaries() {
            out.extend(s.service_ids().iter().filter_map(|id| id.name().map(str::to_string)));
            out.extend(s.entry_point().and_then(|e| e.name()).map(str::to_string));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok((listed, out))
}

/// The last 24 h of each function's log group (bounded), through the tailer's parser; adds
/// (operation, seconds) samples and returns how many log events were read.
async fn sample_logs(sdk: &SdkConfig, limiter: &RateLimiter, f: &Findings, samples: &mut Vec<(String, f64)>) -> Result<usize, InitError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let attributor = Attributor::new(&crate::config::EnvironmentsConfig::default());
    let now = now_ms();
    let mut history = AliasHistory::default();
    for x in &f.functions {
        let spans = x.aliases.iter().map(|(a, v)| AliasSpan { alias: a.clone(), version: v.clone(), weight: 1.0, first_seen_ms: 0, last_seen_ms: now });
        history.by_function.insert(x.name.clone(), spans.collect());
    }
    let mut read = 0;
    for group in f.functions.iter().filter_map(|x| x.log_group.as_deref()).take(MAX_SAMPLED_GROUPS) {
        let mut streams: HashMap<String, StreamMemory> = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..PAGES_PER_GROUP {
            limiter.acquire().await;
            let page = logs
                .filter_log_events()
                .log_group_name(group)
                .start_time(now - DAY_MS)
                .end_time(now)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| classify("FilterLogEvents", &e))?;
            let events = page_events(page.events());
            read += events.len();
            let (batch, _) = process_page(group, events, &mut streams, &attributor, &history, now);
            samples.extend(batch.events.into_iter().map(|e| (e.operation, e.duration_s)));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(read)
}

/// Up to [`MAX_TRACES`] traces of the last 24 h, through the X-Ray parser (the spans the
/// logs do not show: `Bedrock.InvokeModel`, `DynamoDB.GetItem`, ...).
async fn sample_traces(
    sdk: &SdkConfig,
    limiter: &RateLimiter,
    samples: &mut Vec<(String, f64)>,
    functions: &mut BTreeSet<String>,
) -> Result<usize, InitError> {
    let xray = aws_sdk_xray::Client::new(sdk);
    let now = now_ms();
    limiter.acquire().await;
    // X-Ray lists at most 6 h per call: the most recent 6 h of the day are enough to sample.
    let summaries = xray
        .get_trace_summaries()
        .start_time(aws_sdk_xray::primitives::DateTime::from_millis(now - 6 * 3_600_000))
        .end_time(aws_sdk_xray::primitives::DateTime::from_millis(now))
        .send()
        .await
        .map_err(|e| classify("GetTraceSummaries", &e))?;
    let ids: Vec<String> = summaries.trace_summaries().iter().filter_map(|s| s.id().map(str::to_string)).take(MAX_TRACES).collect();
    let allow = crate::parse::xray::AllowList::default();
    let mut read = 0;
    for chunk in ids.chunks(5) {
        limiter.acquire().await;
        let r = xray.batch_get_traces().set_trace_ids(Some(chunk.to_vec())).send().await.map_err(|e| classify("BatchGetTraces", &e))?;
        for t in r.traces() {
            let Some(id) = t.id() else { continue };
            let docs: Vec<(String, String)> =
                t.segments().iter().filter_map(|s| Some((s.id()?.to_string(), s.document()?.to_string()))).collect();
            let parsed = crate::parse::xray::parse_trace(id, &docs, &allow);
            for (e, _) in crate::parse::xray::trace_events(&parsed) {
                if e.time_ms >= now - 3_600_000 {
                    functions.insert(e.function.clone());
                }
                samples.push((e.operation, e.duration_s));
            }
            read += 1;
        }
    }
    Ok(read)
}
