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

mod plan;

pub use plan::*;

use crate::aws::{AwsError, RateLimiter, call};
use crate::clock::now_ms;
use crate::evaluate::BudgetStatus;
use crate::services::Services;
use crate::supervise::spawn_supervised;
use aws_sdk_cloudwatch::types::MetricDatum;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Starts the publisher when `cloudwatch.enabled`; `statuses` is the evaluator's channel.
pub fn spawn(ctx: &Services, statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>) {
    if !ctx.config.cloudwatch.enabled {
        return;
    }
    let c = ctx.clone();
    spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), "cloudwatch", move || {
        run(c.clone(), statuses.clone())
    });
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
    client: aws_sdk_cloudwatch::Client,
    limiter: RateLimiter,
    statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>,
}

async fn run(ctx: Services, statuses: watch::Receiver<Arc<Vec<BudgetStatus>>>) -> anyhow::Result<()> {
    let cfg = ctx.config.cloudwatch.clone();
    let p = Publisher {
        client: aws_sdk_cloudwatch::Client::new(&ctx.sdk),
        limiter: RateLimiter::new(REQUESTS_PER_SECOND),
        statuses,
        ctx,
    };
    tracing::info!(
        namespace = %cfg.namespace,
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

    /// Sends everything above the watermark, request by request.
    async fn publish_events(&self) -> Result<(), RoundError> {
        let (store, metrics) = (&self.ctx.store, &self.ctx.metrics);
        let (mut requests, mut data, mut events) = (0u64, 0u64, 0u64);
        'read: loop {
            let unpublished = store.unpublished_events(READ_CHUNK).await?;
            if let Some(ahead) = unpublished.reset_from {
                tracing::warn!(
                    watermark = ahead,
                    now_at = unpublished.watermark,
                    "The CloudWatch watermark was ahead of every event id (a replaced database); publishing resumes after the newest event."
                );
                metrics.watermark_resets.with_label_values(&["cloudwatch"]).inc();
            }
            let (mut watermark, pending) = (unpublished.watermark, unpublished.events);
            if pending.is_empty() {
                break;
            }
            let more = pending.len() as i64 == READ_CHUNK;
            for mut req in plan(&pending, now_ms()) {
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
                let advanced = store.advance_published(watermark, req.last_event_id).await?;
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
        let statuses = self.statuses.borrow().clone();
        if statuses.is_empty() {
            return Ok(());
        }
        let (data, invalid) = budget_data(&statuses, now_ms());
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
