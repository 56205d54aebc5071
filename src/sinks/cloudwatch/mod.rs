//! The CloudWatch metrics publisher. Every `cloudwatch.publish_interval` it sends the
//! timing events stored since the last publish as `OperationLatency` (unit Seconds,
//! dimensions `Environment`, `FunctionName`, `Operation`; one datum per series and minute of
//! event time, as Values/Counts arrays so CloudWatch itself can compute p95), and the
//! evaluator's latest budget statuses as `BudgetBreached` (0/1, unit None, dimensions plus
//! `Budget`), to `cloudwatch.namespace`.
//!
//! What was published is a watermark over `events.id` in SQLite (`store::published`): an
//! event stored late with an old event time still gets a new id, so it is sent in the next
//! round. Requests are cut so that each covers a contiguous id range, and the watermark is
//! committed after each accepted request. Delivery is at least once at one boundary only: if
//! the process dies after CloudWatch accepted a request and before its watermark commit, that
//! one request (≤ 1,000 data) is sent again after the restart. Nothing else is sent twice.
//!
//! Limits kept (PutMetricData, see `formats.md` §6):
//! - ≤ 150 distinct values per datum: a series-minute with more becomes several data.
//! - ≤ 1,000 data and ≤ [`MAX_REQUEST_BYTES`] (estimated, uncompressed CBOR; AWS allows 1 MB)
//!   per request. The SDK gzips request bodies above `request_min_compression_size_bytes`
//!   (10 KiB by default; `AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES` and
//!   `AWS_DISABLE_REQUEST_COMPRESSION` are honoured through the SDK config).
//! - Values are rounded to 4 significant digits (relative error ≤ 0.05 %) so near-identical
//!   durations share one value and a datum holds more events; counts are whole numbers.
//! - Dropped and counted in `sentinel_cloudwatch_dropped_total{reason}`: NaN/±Inf or beyond
//!   ±2^360 (`invalid_value`), event times older than 14 days minus an hour (`too_old`) or
//!   more than 2 hours minus 5 minutes ahead (`too_far_future`), dimension values CloudWatch
//!   refuses (blank, non-ASCII, over 1024 characters: `invalid_dimension`).
//! - A request CloudWatch refuses as invalid (`InvalidParameter*`, `MissingParameter`) would
//!   be refused forever and stall every later event: its events are skipped, logged and
//!   counted (`rejected_by_cloudwatch`). Any other failure (throttling, outage, access
//!   denied) keeps the watermark; the next round retries.
//!
//! The dimensions carry no `source`: when two sources report the same operation name for one
//! function and environment, CloudWatch sees both. No final publish happens at shutdown;
//! the next start sends what is left.
//!
//! With `[[accounts]]`, each (account, region)'s events and budget statuses go into that
//! account and region (its assumed role, one publisher and watermark each), or, with
//! `[cloudwatch] account` set, every account's into that one account's first region with
//! `Account` and `Region` dimensions added ([`destinations`]).

mod plan;

pub use plan::*;

use crate::aws::{AwsError, RateLimiter, call};
use crate::clock::now_ms;
use crate::evaluate::BudgetStatus;
use crate::scope::Scope;
use crate::services::Services;
use crate::store::Destination;
use crate::supervise::{spawn_supervised, task_name};
use aws_sdk_cloudwatch::types::MetricDatum;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// One place metrics are published to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The watermark's name: "" for the daemon's own account without `[[accounts]]`.
    pub name: String,
    /// Whose credentials and region the requests use.
    pub scope: Scope,
    /// Only this (account, region)'s events and statuses; None: all of them.
    pub origin: Option<(String, String)>,
    /// Add the Account and Region dimensions (several accounts in one CloudWatch).
    pub origin_dimensions: bool,
}

/// Where metrics go (pure): without accounts the default credentials' account, as always;
/// with accounts each (account, region) into its own, or all into `[cloudwatch] account`'s
/// first region.
pub fn destinations(config: &crate::config::Config) -> Vec<Target> {
    let scopes = crate::scope::scopes(config);
    let central = &config.cloudwatch.account;
    if !central.is_empty() {
        return scopes
            .into_iter()
            .find(|s| &s.account == central)
            .map(|scope| Target { name: format!("account:{central}"), scope, origin: None, origin_dimensions: true })
            .into_iter()
            .collect();
    }
    scopes
        .into_iter()
        .map(|scope| {
            if scope.is_default() {
                Target { name: String::new(), scope, origin: None, origin_dimensions: false }
            } else {
                let origin = Some((scope.account.clone(), scope.region.clone()));
                Target { name: scope.label(), scope, origin, origin_dimensions: false }
            }
        })
        .collect()
}

/// Starts one publisher per destination when `cloudwatch.enabled`; `statuses` is the
/// evaluator's channel.
pub fn spawn(ctx: &Services, statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>) {
    if !ctx.config.cloudwatch.enabled {
        return;
    }
    for target in destinations(&ctx.config) {
        let task = if target.name.is_empty() { "cloudwatch" } else { task_name(format!("cloudwatch:{}", target.name)) };
        let (c, statuses) = (ctx.clone(), statuses.clone());
        // In a fleet, one node publishes to a destination: the holder of its lease.
        spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), task, move || {
            let (c, target, statuses) = (c.clone(), target.clone(), statuses.clone());
            async move {
                let unit = crate::cluster::work::cloudwatch_unit(&target.name);
                c.work
                    .while_held(&unit, &c.shutdown, |stop, _| run(Services { shutdown: stop, ..c.clone() }, target.clone(), statuses.clone()))
                    .await
            }
        });
    }
}

/// Why a round stopped early; the next round starts from the committed watermark.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

struct Publisher {
    ctx: Services,
    target: Target,
    client: aws_sdk_cloudwatch::Client,
    limiter: RateLimiter,
    statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>,
}

async fn run(ctx: Services, target: Target, statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>) -> anyhow::Result<()> {
    let cfg = ctx.config.cloudwatch.clone();
    let sdk = if target.scope.is_default() { ctx.sdk.clone() } else { crate::aws::scope_sdk_config(&ctx.sdk, &target.scope).await };
    let p = Publisher {
        client: aws_sdk_cloudwatch::Client::new(&sdk),
        target,
        limiter: RateLimiter::new(REQUESTS_PER_SECOND),
        statuses,
        ctx,
    };
    tracing::info!(
        namespace = %cfg.namespace,
        into = %p.target.scope.label(),
        interval_ms = cfg.publish_interval.as_millis() as u64,
        "Publishing latency metrics to CloudWatch."
    );
    let mut ticker = tokio::time::interval(cfg.publish_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = p.ctx.shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        match p.round().await {
            Ok(()) => p.ctx.metrics.cloudwatch_last_publish.set(now_ms() as f64 / 1000.0),
            Err(RoundError::Aws(e)) if e.code == "cancelled" => return Ok(()),
            Err(e) => {
                if let RoundError::Store(se) = &e {
                    p.ctx.metrics.store_errors.with_label_values(&[se.code()]).inc();
                }
                tracing::warn!(error = %e, "CloudWatch publish failed; the unsent events are retried next round.");
            }
        }
    }
}

impl Publisher {
    async fn round(&self) -> Result<(), RoundError> {
        self.publish_events().await?;
        self.publish_budgets().await
    }

    fn destination(&self) -> Destination<'_> {
        Destination { name: &self.target.name, origin: self.target.origin.as_ref().map(|(a, r)| (a.as_str(), r.as_str())) }
    }

    /// Sends everything above the watermark, request by request.
    async fn publish_events(&self) -> Result<(), RoundError> {
        let (store, metrics) = (&self.ctx.store, &self.ctx.metrics);
        let (mut requests, mut data, mut events) = (0u64, 0u64, 0u64);
        let name = self.target.name.as_str();
        'read: loop {
            let unpublished = store.unpublished_events(self.destination(), READ_CHUNK).await?;
            if let Some(ahead) = unpublished.reset_from {
                tracing::warn!(
                    watermark = ahead,
                    now_at = unpublished.watermark,
                    "The CloudWatch watermark was ahead of every event id (a replaced database); publishing resumes after the newest event."
                );
                metrics.watermark_resets.with_label_values(&["cloudwatch"]).inc();
            }
            let (mut watermark, pending, scanned_to) = (unpublished.watermark, unpublished.events, unpublished.scanned_to);
            let more = pending.len() as i64 == READ_CHUNK;
            for mut req in plan(&pending, now_ms(), self.target.origin_dimensions) {
                if self.ctx.shutdown.is_cancelled() {
                    break 'read;
                }
                let mut sent = 0;
                if !req.data.is_empty() {
                    match self.put(&req.data).await {
                        Ok(()) => sent = req.events,
                        Err(e) if refused_as_invalid(&e) => {
                            tracing::error!(
                                error = %e,
                                events = req.events,
                                first_datum = ?req.data.first(),
                                "CloudWatch refused a request as invalid; its events are skipped."
                            );
                            *req.dropped.entry("rejected_by_cloudwatch").or_default() += req.events;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    requests += 1;
                }
                let advanced = store.advance_published(name, watermark, req.last_event_id).await?;
                if sent > 0 {
                    metrics.cloudwatch_data_published.with_label_values(&[LATENCY_METRIC]).inc_by(req.data.len() as u64);
                    metrics.cloudwatch_events_published.inc_by(sent);
                    data += req.data.len() as u64;
                    events += sent;
                }
                for (reason, n) in &req.dropped {
                    metrics.cloudwatch_dropped.with_label_values(&[reason]).inc_by(*n);
                }
                if !req.dropped.is_empty() {
                    tracing::debug!(dropped = ?req.dropped, "Events not sent to CloudWatch.");
                }
                if !advanced {
                    // The watermark was reset meanwhile: read again from where it is now.
                    continue 'read;
                }
                watermark = req.last_event_id;
            }
            if !more {
                // Past the other destinations' events up to where this read saw.
                if scanned_to > watermark && !self.ctx.shutdown.is_cancelled() {
                    store.advance_published(name, watermark, scanned_to).await?;
                }
                break;
            }
        }
        if requests > 0 {
            tracing::debug!(requests, data, events, "Published latency metrics to CloudWatch.");
        }
        Ok(())
    }

    /// Sends the evaluator's latest statuses, one datum each.
    async fn publish_budgets(&self) -> Result<(), RoundError> {
        let mut statuses = self.statuses.borrow().clone();
        if let Some((account, region)) = &self.target.origin {
            statuses = Arc::new(statuses.iter().filter(|s| &s.account == account && &s.region == region).cloned().collect());
        }
        if statuses.is_empty() {
            return Ok(());
        }
        let (data, invalid) = budget_data(&statuses, now_ms(), self.target.origin_dimensions);
        if invalid > 0 {
            self.ctx.metrics.cloudwatch_dropped.with_label_values(&["invalid_dimension"]).inc_by(invalid);
        }
        for chunk in split_requests(data) {
            self.put(&chunk).await?;
            self.ctx.metrics.cloudwatch_data_published.with_label_values(&[BUDGET_METRIC]).inc_by(chunk.len() as u64);
        }
        Ok(())
    }

    async fn put(&self, data: &[Datum]) -> Result<(), AwsError> {
        let ctx = &self.ctx;
        let namespace = &ctx.config.cloudwatch.namespace;
        let sdk: Vec<MetricDatum> = data.iter().map(Datum::to_sdk).collect();
        call("PutMetricData", &ctx.metrics, Some(&self.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
            self.client.put_metric_data().namespace(namespace).set_metric_data(Some(sdk.clone())).send()
        })
        .await
        .map(|_| ())
    }
}

/// CloudWatch's answers to a request that will never be accepted as it is.
fn refused_as_invalid(e: &AwsError) -> bool {
    !e.retriable && (e.code.starts_with("InvalidParameter") || e.code == "MissingParameter" || e.code == "MissingRequiredParameter")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_the_accounts_or_the_central_account() {
        use crate::config::{AccountConfig, Config};
        let mut c = Config::default();
        let own = destinations(&c);
        assert_eq!((own.len(), own[0].name.as_str(), own[0].origin.clone(), own[0].origin_dimensions), (1, "", None, false), "as before accounts");
        c.accounts = vec![
            AccountConfig { name: "prod".into(), regions: vec!["us-east-1".into(), "eu-west-1".into()], ..Default::default() },
            AccountConfig { name: "dev".into(), regions: vec!["eu-west-1".into()], ..Default::default() },
        ];
        let each: Vec<(String, Option<(String, String)>)> = destinations(&c).into_iter().map(|t| (t.name, t.origin)).collect();
        assert_eq!(each.len(), 3);
        assert_eq!(each[1], ("prod/eu-west-1".to_string(), Some(("prod".to_string(), "eu-west-1".to_string()))));
        c.cloudwatch.account = "dev".into();
        let central = destinations(&c);
        assert_eq!(central.len(), 1);
        assert_eq!((central[0].scope.account.as_str(), central[0].scope.region.as_str(), central[0].origin.clone()), ("dev", "eu-west-1", None));
        assert!(central[0].origin_dimensions);
    }

    #[test]
    fn only_invalid_requests_are_skipped_the_rest_retried() {
        let err = |code: &str, retriable: bool| AwsError {
            api: "PutMetricData",
            code: code.into(),
            message: String::new(),
            retriable,
            throttled: false,
        };
        assert!(refused_as_invalid(&err("InvalidParameterValue", false)));
        assert!(refused_as_invalid(&err("InvalidParameterCombination", false)));
        assert!(refused_as_invalid(&err("MissingParameter", false)));
        for (code, retriable) in [("Throttling", true), ("InternalServiceError", true), ("AccessDenied", false), ("timeout", true)] {
            assert!(!refused_as_invalid(&err(code, retriable)), "{code}");
        }
    }
}
