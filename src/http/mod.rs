//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (process up), `/readyz`
//! (store answers and every enabled source polled recently), and `/api/v1/*` behind an
//! optional bearer token. This module owns what every route shares (the state, the error,
//! the bounded runner); [`router::app`] builds the router (tests call it without a socket);
//! [`probes`] holds the health and metrics routes, [`api`] and [`reports`] the API's,
//! [`guards`] the token and the concurrency limit, [`console`] the built-in pages.
//!
//! No request can take the daemon down with it: `/api/*` runs at most
//! `http.max_concurrent_requests` at once and sheds the rest (503 + `Retry-After`); each
//! runs its work on a task of its own ([`run_bounded`]) against the store's read-only
//! connections, and its SQLite reads stop at `http.request_timeout` or as soon as the client
//! goes away. `/healthz`, `/readyz` and `/metrics` never wait behind API work.

pub mod api;
pub mod console;
pub mod guards;
pub mod probes;
pub mod reports;
pub mod router;
#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub store: Store,
    pub health: Health,
    /// The evaluator's latest budget statuses.
    pub evaluation: crate::evaluate::Shared,
    /// The per-series exposition the last evaluation rendered.
    pub exposition: crate::sinks::prometheus::PrometheusSink,
    /// Permits for `/api/*` requests in flight (`http.max_concurrent_requests`).
    pub(crate) api_permits: Arc<Semaphore>,
    /// This node's leases, in a fleet (for `/readyz`).
    pub work: crate::cluster::work::Work,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        metrics: Metrics,
        store: Store,
        health: Health,
        evaluation: crate::evaluate::Shared,
        exposition: crate::sinks::prometheus::PrometheusSink,
    ) -> AppState {
        let api_permits = Arc::new(Semaphore::new(config.http.max_concurrent_requests.max(1)));
        AppState { config, metrics, store, health, evaluation, exposition, api_permits, work: Default::default() }
    }

    /// The state of a node of a fleet: `/readyz` shows its leases and the fleet.
    pub fn with_work(mut self, work: crate::cluster::work::Work) -> AppState {
        self.work = work;
        self
    }
}

/// Errors a handler returns: bad input is shown to the caller, the rest is a 500.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Too busy, or out of time: try again later (503 with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::Interrupted => AppError::Unavailable(e.to_string()),
            e => AppError::Internal(e.into()),
        }
    }
}

/// Seconds a client is asked to wait before retrying a shed or timed-out request.
const RETRY_AFTER_S: &str = "1";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(e) => {
                tracing::error!(error = %e, "Request failed.");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, RETRY_AFTER_S)], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

/// Runs a request's work within `http.request_timeout`, on a thread of its own at a lower
/// priority, against a view of the store that reads through the read-only connections. The
/// connection's task stays free meanwhile, so it notices a client that goes away; when the
/// request ends early (its deadline, a disconnect: this future is dropped) the work's
/// SQLite statements are interrupted and the work stops at its next await, so nothing
/// keeps running for nobody.
pub async fn run_bounded<T, Fut>(state: &AppState, work: impl FnOnce(Store) -> Fut) -> Result<T, AppError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
{
    let timeout = state.config.http.request_timeout;
    let (store, cancel) = state.store.for_request(Instant::now() + timeout);
    // On a thread of its own at a lower priority, driving the work there: a report's
    // arithmetic (sorting, resampling) then never holds one of the runtime's workers, which
    // `/healthz`, the sources and the evaluator need. It stops at its next await when the
    // request goes away (the guard) and its reads stop at the deadline (`cancel`).
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let fut = work(store);
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new().name("request".into()).spawn(move || {
        crate::priority::deprioritize_this_thread();
        let r = runtime.block_on(async move {
            tokio::select! {
                r = fut => Some(r),
                _ = stop.cancelled() => None,
            }
        });
        let _ = tx.send(r);
    });
    if let Err(e) = spawned {
        state.metrics.api_requests.with_label_values(&["error"]).inc();
        return Err(AppError::Internal(anyhow::anyhow!("could not start the request's thread: {e}")));
    }
    let result = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => Err(AppError::Unavailable("the request was stopped".into())),
        // The thread ended without an answer: the work panicked (its message is on stderr).
        Ok(Err(_)) => Err(AppError::Internal(anyhow::anyhow!("request handler panicked"))),
        Err(_) => Err(AppError::Unavailable(format!(
            "the request took longer than http.request_timeout ({}); narrow its range or filters",
            humantime::format_duration(timeout)
        ))),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(AppError::Unavailable(_)) => "timeout",
        Err(AppError::BadRequest(_) | AppError::NotFound(_)) => "bad_request",
        Err(AppError::Internal(_)) => "error",
    };
    state.metrics.api_requests.with_label_values(&[outcome]).inc();
    if result.is_ok() {
        cancel.disarm();
    }
    result
}



