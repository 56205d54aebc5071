//! Everything shared by the AWS callers: the SDK configuration (region, endpoint, timeouts,
//! the default credential chain), one retry policy with jittered backoff that classifies
//! throttling and outages, and rate limiters shared across tasks.

use crate::config::AwsConfig;
use crate::metrics::Metrics;
use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Loads the SDK configuration: the standard chain (env, profile incl. SSO, web identity,
/// ECS/EC2 roles) plus what the config file sets. SDK-level retries are off: `call` retries,
/// so that every attempt is counted and the backoff honours shutdown.
pub async fn sdk_config(cfg: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(cfg.call_timeout)
                .build(),
        );
    if !cfg.region.is_empty() {
        loader = loader.region(Region::new(cfg.region.clone()));
    }
    if !cfg.endpoint_url.is_empty() {
        loader = loader.endpoint_url(cfg.endpoint_url.clone());
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        tracing::warn!("No AWS region configured (aws.region, AWS_REGION or a profile); using us-east-1.");
        return sdk.into_builder().region(Region::new("us-east-1")).build();
    }
    sdk
}

/// The SDK configuration of one scope: its region, and when it names a role, credentials
/// from STS AssumeRole (the SDK's own provider, with the external id when given; the
/// clients' identity cache keeps them and renews them before they expire). The base
/// configuration's credentials sign the AssumeRole call. Build it once per scope and keep
/// its clients: each client caches its own credentials.
pub async fn scope_sdk_config(base: &SdkConfig, scope: &crate::scope::Scope) -> SdkConfig {
    let region = if scope.region.is_empty() { base.region().cloned() } else { Some(Region::new(scope.region.clone())) };
    let external_id = Some(scope.external_id.expose()).filter(|e| !e.is_empty());
    let role = Some(scope.role_arn.as_str()).filter(|r| !r.is_empty());
    assumed_sdk_config(base, role.map(|r| (r, scope.session_name.as_str(), external_id)), region).await
}

/// `base` in `region`, with credentials from STS AssumeRole of `(role ARN, session name,
/// external id)` when given (else `base`'s own credentials).
pub async fn assumed_sdk_config(base: &SdkConfig, role: Option<(&str, &str, Option<&str>)>, region: Option<Region>) -> SdkConfig {
    let mut builder = base.clone().into_builder();
    builder.set_region(region.clone());
    if let Some((arn, session, external_id)) = role {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(arn).session_name(session).configure(base);
        if let Some(region) = region {
            provider = provider.region(region);
        }
        if let Some(id) = external_id {
            provider = provider.external_id(id);
        }
        builder.set_credentials_provider(Some(aws_sdk_sts::config::SharedCredentialsProvider::new(provider.build().await)));
    }
    builder.build()
}

/// A failed AWS call, after retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{api} failed: {code}: {message}")]
pub struct AwsError {
    pub api: &'static str,
    /// AWS error code (`ResourceNotFoundException`) or a transport class (`timeout`, `dispatch`).
    pub code: String,
    pub message: String,
    /// Throttling, 5xx, timeouts and dropped connections; the others won't get better.
    pub retriable: bool,
    pub throttled: bool,
}

impl AwsError {
    pub fn is_not_found(&self) -> bool {
        self.code == "ResourceNotFoundException"
    }
    pub fn is_access_denied(&self) -> bool {
        self.code.contains("AccessDenied") || self.code == "UnauthorizedOperation"
    }
}

const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ThrottledException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
];

/// Classifies an SDK error (pure apart from reading the error).
pub fn classify<E, R>(api: &'static str, err: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let (code, message, retriable, throttled) = match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let throttled = THROTTLE_CODES.contains(&code.as_str());
            let raw = format!("{:?}", se.raw());
            let server_error = raw.contains("status: StatusCode(5") || code == "ServiceUnavailable" || code == "InternalFailure" || code.contains("ServiceUnavailable") || code.contains("InternalServer");
            (code, e.message().unwrap_or("").to_string(), throttled || server_error, throttled)
        }
        SdkError::TimeoutError(_) => ("timeout".into(), "call timed out".into(), true, false),
        SdkError::DispatchFailure(d) => ("dispatch".into(), format!("{:?}", d.as_connector_error()), true, false),
        SdkError::ResponseError(_) => ("response".into(), "malformed or cut response".into(), true, false),
        SdkError::ConstructionFailure(_) => ("construction".into(), format!("{err:?}"), false, false),
        _ => ("unknown".into(), format!("{err:?}"), true, false),
    };
    let message: String = message.chars().take(300).collect();
    AwsError { api, code, message, retriable, throttled }
}

/// Calls AWS with the shared retry policy: waits for the limiter before each attempt,
/// retries throttling/5xx/transport errors with full-jitter exponential backoff, counts every
/// attempt by outcome, and gives up early on shutdown.
pub async fn call<T, E, R, F, Fut>(
    api: &'static str,
    metrics: &Metrics,
    limiter: Option<&RateLimiter>,
    max_attempts: u32,
    shutdown: &CancellationToken,
    mut f: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let mut attempt = 0u32;
    loop {
        if let Some(l) = limiter {
            tokio::select! {
                _ = shutdown.cancelled() => return Err(cancelled(api)),
                got = l.acquire() => if !got {
                    return Err(AwsError { api, code: NO_SPARE_QUOTA.into(), message: "no spare request quota".into(), retriable: false, throttled: false });
                }
            }
        }
        let result = tokio::select! {
            _ = shutdown.cancelled() => return Err(cancelled(api)),
            r = f() => r,
        };
        match result {
            Ok(v) => {
                metrics.aws_requests.with_label_values(&[api, "ok"]).inc();
                return Ok(v);
            }
            Err(e) => {
                let err = classify(api, &e);
                let outcome = if err.throttled { "throttled" } else { "error" };
                metrics.aws_requests.with_label_values(&[api, outcome]).inc();
                attempt += 1;
                if !err.retriable || attempt >= max_attempts {
                    return Err(err);
                }
                let delay = backoff(attempt, rand::random::<f64>());
                tracing::debug!(api, code = %err.code, attempt, delay_ms = delay.as_millis() as u64, "AWS call failed; retrying.");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(cancelled(api)),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The code of a call a spare limiter gave up on (see [`RateLimiter::spare`]).
pub const NO_SPARE_QUOTA: &str = "no_spare_quota";

fn cancelled(api: &'static str) -> AwsError {
    AwsError { api, code: "cancelled".into(), message: "shutting down".into(), retriable: false, throttled: false }
}

/// Full-jitter exponential backoff: uniform in [0, min(20 s, 250 ms · 2^attempt)], never 0.
pub fn backoff(attempt: u32, unit_random: f64) -> Duration {
    let cap = 20_000f64.min(250.0 * 2f64.powi(attempt.min(16) as i32));
    Duration::from_millis((cap * unit_random.clamp(0.0, 1.0)).max(50.0) as u64)
}

/// A rate limiter shared by every task calling one API family: calls are spaced
/// `1 / rate` apart, first come first served. [`RateLimiter::spare`] gives a low-priority
/// view of the same budget for background work.
#[derive(Clone)]
pub struct RateLimiter {
    interval: Duration,
    next: std::sync::Arc<Mutex<Instant>>,
    /// Takes only slots nobody else has asked for, waiting at most this long (see `spare`).
    spare: Option<Duration>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> RateLimiter {
        let per_second = if per_second.is_finite() && per_second > 0.0 { per_second } else { 1.0 };
        RateLimiter { interval: Duration::from_secs_f64(1.0 / per_second), next: std::sync::Arc::new(Mutex::new(Instant::now())), spare: None }
    }

    /// The same budget for work that may only use what others leave: a call through it waits
    /// until no call is queued (so it never delays a regular caller by more than one slot),
    /// and gives up after `patience`.
    pub fn spare(&self, patience: Duration) -> RateLimiter {
        RateLimiter { spare: Some(patience), ..self.clone() }
    }

    /// Waits for this caller's slot; false when a spare view's patience ran out first.
    pub async fn acquire(&self) -> bool {
        let give_up = self.spare.map(|p| Instant::now() + p);
        loop {
            let slot = {
                let mut next = self.next.lock().await;
                let now = Instant::now();
                if self.spare.is_some() && *next > now {
                    // Someone holds the coming slots: look again once they are used.
                    Err(*next + self.interval)
                } else {
                    let slot = if *next > now { *next } else { now };
                    *next = slot + self.interval;
                    Ok(slot)
                }
            };
            match slot {
                Ok(slot) => {
                    tokio::time::sleep_until(slot).await;
                    return true;
                }
                Err(retry_at) if give_up.is_some_and(|g| retry_at > g) => return false,
                Err(retry_at) => tokio::time::sleep_until(retry_at).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(2000));
        assert_eq!(backoff(30, 1.0), Duration::from_millis(20_000));
        assert_eq!(backoff(3, 0.0), Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn spare_calls_only_take_slots_nobody_asked_for() {
        let l = RateLimiter::new(5.0);
        let spare = l.spare(Duration::from_secs(10));
        let start = Instant::now();
        // Ten regular calls queue up (2 s of slots); a spare call waits until they are used.
        let regular = {
            let l = l.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    l.acquire().await;
                }
                start.elapsed()
            })
        };
        tokio::task::yield_now().await;
        assert!(spare.acquire().await);
        let spare_at = start.elapsed();
        assert_eq!(regular.await.unwrap(), Duration::from_millis(1800));
        assert!(spare_at >= Duration::from_millis(1800), "{spare_at:?}");
        // With nothing queued it goes at once.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        assert!(spare.acquire().await);
        assert_eq!(t.elapsed(), Duration::ZERO);
        // Out of patience while regular calls keep the slots: it gives up instead of waiting.
        for _ in 0..20 {
            let l = l.clone();
            tokio::spawn(async move { l.acquire().await });
        }
        tokio::task::yield_now().await;
        let t = Instant::now();
        assert!(!l.spare(Duration::from_millis(500)).acquire().await);
        assert!(t.elapsed() <= Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls() {
        let l = RateLimiter::new(5.0);
        let start = Instant::now();
        for _ in 0..11 {
            l.acquire().await;
        }
        // The first call goes at once, the next ten each 200 ms apart.
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
    }
}
