//! Keeping the alias history current: ListAliases for every watched function (every page,
//! weighted routing included), recorded with the time it was seen, and the attributor's
//! snapshot refreshed from the store. Functions Lambda doesn't know are skipped quietly.

use crate::services::Services;
use crate::attribute::Attributor;
use crate::aws::{AwsError, RateLimiter, call};
use crate::clock::now_ms;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A function whose events name a version no alias is known to route to is re-listed at
/// most this often (a version published and invoked between two scheduled refreshes).
const ON_DEMAND_MIN_INTERVAL: Duration = Duration::from_secs(30);

pub struct AliasRefresher {
    ctx: Services,
    client: aws_sdk_lambda::Client,
    limiter: RateLimiter,
    attributor: Attributor,
    last_listed: Mutex<HashMap<String, Instant>>,
}

impl AliasRefresher {
    pub fn new(ctx: &Services, attributor: Attributor) -> AliasRefresher {
        AliasRefresher {
            ctx: ctx.clone(),
            client: aws_sdk_lambda::Client::new(&ctx.sdk),
            // ListAliases shares Lambda's control-plane quota (15/s); stay well below it.
            limiter: RateLimiter::new(5.0),
            attributor,
            last_listed: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the stored history into the attributor.
    pub async fn load(&self) {
        // This scope's history only: the same function name in another account is another
        // function (stored under the scope's key).
        match self.ctx.store.alias_history_under(&self.ctx.scope.key("")).await {
            Ok(h) => self.attributor.set_history(h),
            Err(e) => tracing::warn!(error = %e, "Cannot load the alias history."),
        }
    }

    /// Before events of `function` with these versions are attributed: if a version has
    /// never been seen behind an alias, list the function's aliases now (rate-limited), so
    /// a freshly published version is not stored under the default env.
    ///
    /// Errs when that listing failed for a reason that passes (throttling, 5xx, timeouts) or
    /// was cut short by shutdown:
    /// the caller must not store the events yet, since an event stored under the default env
    /// stays there. A function Lambda doesn't know, or that we may not list, is no error.
    pub async fn ensure_known(&self, function: &str, versions: &BTreeSet<String>) -> Result<(), AwsError> {
        let history = self.attributor.history();
        if versions.iter().all(|v| v == "$LATEST" || history.knows(function, v)) {
            return Ok(());
        }
        let due = self
            .last_listed
            .lock()
            .map(|m| m.get(function).is_none_or(|t| t.elapsed() >= ON_DEMAND_MIN_INTERVAL))
            .unwrap_or(true);
        if due {
            return self.refresh(&BTreeSet::from([function.to_string()])).await;
        }
        Ok(())
    }

    /// Lists the aliases of each function, records them, and reloads the snapshot. Returns
    /// the last retriable listing error; such a function may be listed again at once.
    pub async fn refresh(&self, functions: &BTreeSet<String>) -> Result<(), AwsError> {
        let now = now_ms();
        let mut failed: Option<AwsError> = None;
        for function in functions {
            let mut retry_soon = false;
            let mut routes: Vec<(String, String, f64)> = Vec::new();
            let mut marker: Option<String> = None;
            let ok = loop {
                let resp = call("ListAliases", &self.ctx.metrics, Some(&self.limiter), self.ctx.config.aws.max_attempts, &self.ctx.shutdown, || {
                    self.client.list_aliases().function_name(function).set_marker(marker.clone()).send()
                })
                .await;
                match resp {
                    Ok(r) => {
                        for a in r.aliases() {
                            let (Some(name), Some(version)) = (a.name(), a.function_version()) else { continue };
                            let extra: f64 = a
                                .routing_config()
                                .and_then(|rc| rc.additional_version_weights())
                                .map(|w| w.values().sum())
                                .unwrap_or(0.0);
                            routes.push((name.to_string(), version.to_string(), 1.0 - extra));
                            if let Some(weights) = a.routing_config().and_then(|rc| rc.additional_version_weights()) {
                                for (v, w) in weights {
                                    routes.push((name.to_string(), v.clone(), *w));
                                }
                            }
                        }
                        match r.next_marker() {
                            Some(m) if Some(m) != marker.as_deref() => marker = Some(m.to_string()),
                            _ => break true,
                        }
                    }
                    Err(e) if e.is_not_found() => {
                        tracing::debug!(function = %function, "Not a Lambda function (no aliases).");
                        break false;
                    }
                    Err(e) => {
                        tracing::warn!(function = %function, error = %e, "ListAliases failed; keeping the last known aliases.");
                        if e.retriable || e.code == "cancelled" {
                            retry_soon = true;
                            failed = Some(e);
                        }
                        break false;
                    }
                }
            };
            if ok {
                routes.sort_by(|a, b| a.0.cmp(&b.0));
                if let Err(e) = self.ctx.store.record_aliases(&self.ctx.scope.key(function), &routes, now).await {
                    tracing::warn!(function = %function, error = %e, "Cannot record aliases.");
                }
                self.load().await;
            }
            // Marked as listed only now, with the snapshot reloaded: polls run while a refresh
            // goes through hundreds of functions, and one that found the function marked
            // earlier attributed its page with the history from before the listing.
            if let Ok(mut m) = self.last_listed.lock() {
                if retry_soon {
                    m.remove(function);
                } else {
                    m.insert(function.clone(), Instant::now());
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
