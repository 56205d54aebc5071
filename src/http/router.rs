//! The router: every route (the console at `/` and `/ui/*`), the token and concurrency
//! guards on `/api/*` (and on `/metrics` when `http.protect_metrics`), the body limit and
//! an outer timeout.

use super::AppState;
use super::guards::{limit_concurrency, require_token};
use super::probes::{healthz, metrics_handler, readyz};
use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The router with every route and the request limits.
pub fn app(state: AppState) -> Router {
    // The outer limit only catches what `run_bounded` does not cover (reading a request).
    let timeout = state.config.http.request_timeout + Duration::from_secs(1);
    let api = super::api::routes()
        .merge(super::reports::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_concurrency))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics = Router::new().route("/metrics", get(metrics_handler));
    let metrics = if state.config.http.protect_metrics {
        metrics.route_layer(middleware::from_fn_with_state(state.clone(), require_token))
    } else {
        metrics
    };
    Router::new()
        .merge(super::console::routes(state.clone()))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics)
        .nest("/api/v1", api)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .with_state(state)
}
