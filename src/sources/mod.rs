//! The sources: tasks that turn AWS pages into timing events and checkpoints and hand both
//! to the store in one call. They never decide percentiles or alerts.

pub mod aliases;
pub mod logs;
pub mod xray;

use crate::attribute::Attributor;
use crate::services::Services;
use crate::supervise::spawn_supervised;

/// Why one poll failed; the source keeps its committed position and retries.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The poll's task panicked; its group is polled again after a backoff.
    #[error("the poll panicked")]
    Panicked,
}

/// Spawns every enabled source; all share one attributor (and so one alias history).
pub fn spawn_all(ctx: &Services) {
    let attributor = Attributor::new(&ctx.config.environments);
    let cfg = &ctx.config;
    if cfg.logs.enabled {
        let stale = 3 * cfg.logs.idle_poll_interval.max(cfg.logs.discovery_interval).as_millis() as i64;
        ctx.health.register(logs::SOURCE, stale);
        let (c, a) = (ctx.clone(), attributor.clone());
        spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), "logs", move || logs::run(c.clone(), a.clone()));
    }
    if cfg.xray.enabled {
        // Polls can take a while under X-Ray's low rate limits: allow three intervals plus a minute.
        let stale = 3 * cfg.xray.poll_interval.as_millis() as i64 + 60_000;
        ctx.health.register(xray::SOURCE, stale);
        let (c, a) = (ctx.clone(), attributor.clone());
        spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), "xray", move || xray::run(c.clone(), a.clone()));
    }
}
