//! The sources: tasks that turn AWS pages into timing events and checkpoints and hand both
//! to the store in one call. They never decide percentiles or alerts.

pub mod aliases;
pub mod credentials;
pub mod logs;
pub mod xray;

use crate::attribute::Attributor;
use crate::services::Services;
use crate::supervise::{spawn_supervised, task_name};

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

/// Spawns every enabled source of every scope (account and region): each with its own SDK
/// configuration (its assumed role), clients, limiters, readiness entry and attributor (so
/// one alias history per scope).
pub async fn spawn_all(base: &Services) {
    let cfg = &base.config;
    for scope in crate::scope::scopes(cfg) {
        let sdk = crate::aws::scope_sdk_config(&base.sdk, &scope).await;
        let (logs_on, xray_on) = (scope.logs_enabled, scope.xray_enabled);
        let ctx = base.for_scope(scope, sdk);
        let attributor = Attributor::new(&cfg.environments).with_account_env(&ctx.scope.env);
        if !ctx.scope.is_default() {
            let name = ctx.source_name(credentials::SOURCE);
            ctx.health.register(&name, 3 * credentials::RECHECK.as_millis() as i64 + 60_000);
            let c = ctx.clone();
            spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), task_name(name), move || credentials::run(c.clone()));
        }
        if logs_on {
            let stale = 3 * cfg.logs.idle_poll_interval.max(cfg.logs.discovery_interval).as_millis() as i64;
            let name = ctx.source_name(logs::SOURCE);
            ctx.health.register(&name, stale);
            let (c, a) = (ctx.clone(), attributor.clone());
            spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), task_name(name), move || logs::run(c.clone(), a.clone()));
        }
        if xray_on {
            // Polls can take a while under X-Ray's low rate limits: allow three intervals plus a minute.
            let stale = 3 * cfg.xray.poll_interval.as_millis() as i64 + 60_000;
            let name = ctx.source_name(xray::SOURCE);
            let (c, a) = (ctx.clone(), attributor.clone());
            spawn_supervised(&ctx.tracker, ctx.shutdown.clone(), ctx.metrics.clone(), task_name(name.clone()), move || {
                let (c, a, name) = (c.clone(), a.clone(), name.clone());
                // In a fleet, one node polls a scope's X-Ray: the holder of its lease.
                async move {
                    let unit = crate::cluster::work::xray_unit(&c.scope.label());
                    c.work
                        .while_held(&unit, &c.shutdown, |stop, _| {
                            c.health.register(&name, stale);
                            let (held, a, health, name) = (Services { shutdown: stop, ..c.clone() }, a.clone(), c.health.clone(), name.clone());
                            let fleet = c.work.node().is_some();
                            async move {
                                let r = xray::run(held, a).await;
                                if fleet {
                                    health.forget(&name);
                                }
                                r
                            }
                        })
                        .await
                }
            });
        }
    }
}
