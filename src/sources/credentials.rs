//! Whether a named account's credentials resolve: its role can be assumed (or its default
//! credentials load). The SDK only asks STS when a client first needs credentials, and a
//! failing AssumeRole would otherwise show as every call of that scope failing for a reason
//! a person has to dig out; this task asks on its own, names the account and role in
//! `/readyz` (`credentials:prod/eu-west-1`) and sets `sentinel_account_up{account,region}`.
//! The other scopes never wait for it.

use crate::clock::now_ms;
use crate::services::Services;
use aws_sdk_sts::config::ProvideCredentials;
use aws_sdk_sts::error::DisplayErrorContext;
use std::time::Duration;

pub const SOURCE: &str = "credentials";

/// How often credentials that resolved are asked for again (each ask of a role is one
/// AssumeRole call; the clients keep and renew their own copies).
pub const RECHECK: Duration = Duration::from_secs(300);
/// First wait after a failure; doubled up to [`RECHECK`].
const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 400;

/// The wait before the next check: [`RECHECK`] after a success, else doubling from
/// [`FIRST_RETRY`] with each failure in a row, never above [`RECHECK`].
pub fn next_check(failures_in_a_row: u32) -> Duration {
    if failures_in_a_row == 0 {
        return RECHECK;
    }
    FIRST_RETRY.saturating_mul(1u32 << failures_in_a_row.saturating_sub(1).min(16)).min(RECHECK)
}

/// Checks the scope's credentials until shutdown.
pub async fn run(ctx: Services) -> anyhow::Result<()> {
    let name = ctx.source_name(SOURCE);
    let labels = [ctx.scope.account.as_str(), ctx.scope.region.as_str()];
    let what = if ctx.scope.role_arn.is_empty() { "load the default credentials".to_string() } else { format!("assume {}", ctx.scope.role_arn) };
    let mut failures = 0u32;
    loop {
        let outcome = match ctx.sdk.credentials_provider() {
            None => Err("no credentials provider is configured".to_string()),
            Some(p) => match tokio::time::timeout(ctx.config.aws.call_timeout, p.provide_credentials()).await {
                Err(_) => Err("timed out".to_string()),
                Ok(Err(e)) => Err(DisplayErrorContext(&e).to_string()),
                Ok(Ok(_)) => Ok(()),
            },
        };
        match outcome {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(scope = %ctx.scope.label(), "The account's credentials resolve again.");
                }
                failures = 0;
                ctx.health.success(&name, now_ms());
                ctx.metrics.account_up.with_label_values(&labels).set(1);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let e: String = format!("cannot {what}: {e}").chars().take(MAX_ERROR_CHARS).collect();
                tracing::warn!(scope = %ctx.scope.label(), error = %e, "An account's credentials do not resolve; its sources fail until they do; the other accounts go on.");
                ctx.health.failure(&name, e);
                ctx.metrics.account_up.with_label_values(&labels).set(0);
            }
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(next_check(failures)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_after_failures_and_settle_after_success() {
        assert_eq!(next_check(0), RECHECK);
        assert_eq!(next_check(1), Duration::from_secs(5));
        assert_eq!(next_check(2), Duration::from_secs(10));
        assert_eq!(next_check(6), Duration::from_secs(160));
        assert_eq!(next_check(7), RECHECK);
        assert_eq!(next_check(u32::MAX), RECHECK, "no overflow");
    }
}
