//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (process up), `/readyz`
//! (store answers and every enabled source polled recently), and `/api/v1/*` behind an
//! optional bearer token. `app(state)` builds the router so tests call it without a socket.

use crate::config::Config;
use crate::health::{Health, is_ready};
use crate::metrics::Metrics;
use crate::store::{Store, now_ms};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Metrics,
    pub store: Store,
    pub health: Health,
    /// The evaluator's latest budget statuses.
    pub evaluation: crate::evaluate::Shared,
}

/// Errors a handler returns: bad input is shown to the caller, the rest is a 500.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Internal(e) => {
                tracing::error!(error = %e, "Request failed.");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// The router with every route and the request limits.
pub fn app(state: AppState) -> Router {
    let timeout = state.config.http.request_timeout;
    let api = crate::api::routes().route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics = Router::new().route("/metrics", get(metrics_handler));
    let metrics = if state.config.http.protect_metrics {
        metrics.route_layer(middleware::from_fn_with_state(state.clone(), require_token))
    } else {
        metrics
    };
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(metrics)
        .nest("/api/v1", api)
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .with_state(state)
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    // The daemon's own families are rendered now; the per-series ones (nearly all of the
    // bytes with thousands of series) were rendered by the last evaluation and are sent
    // as they are, without a copy.
    let (head, series) = tokio::task::spawn_blocking(move || state.metrics.render_parts()).await.unwrap_or_default();
    let chunks = [head.into(), series].map(Ok::<bytes::Bytes, std::convert::Infallible>);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], axum::body::Body::from_stream(futures::stream::iter(chunks)))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store_ok = state.store.ping().await.is_ok();
    let now = now_ms();
    let sources = state.health.snapshot();
    let mut ready = store_ok;
    let mut report = serde_json::Map::new();
    for (name, h) in &sources {
        let ok = is_ready(h, now);
        ready &= ok;
        report.insert(
            name.clone(),
            serde_json::json!({
                "ready": ok,
                "last_success_age_seconds": if h.last_success_ms > 0 { Some((now - h.last_success_ms) as f64 / 1000.0) } else { None },
                "last_error": h.last_error,
                "details": h.details,
            }),
        );
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "store": store_ok, "sources": report })))
}

/// Rejects `/api/*` requests without `Authorization: Bearer <http.api_token>` when a token is set.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let token = state.config.http.api_token.expose();
    if token.is_empty() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({ "error": "missing or wrong bearer token" })),
        )
            .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn state(token: &str) -> AppState {
        let mut config = Config::default();
        config.http.api_token.0 = token.into();
        AppState {
            config: Arc::new(config),
            metrics: Metrics::new(),
            store: Store::open_memory().await.unwrap(),
            health: Health::default(),
            evaluation: Default::default(),
        }
    }

    async fn get(app: Router, uri: &str, auth: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().uri(uri);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_waits_for_every_source() {
        let s = state("").await;
        s.health.register("logs", 60_000);
        let (status, body) = get(app(s.clone()), "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        s.health.success("logs", now_ms());
        let (status, body) = get(app(s), "/readyz", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn metrics_has_build_info_and_api_needs_token() {
        let s = state("s3cret").await;
        let (status, body) = get(app(s.clone()), "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("sentinel_build_info{version=\""), "{body}");
        assert!(!body.contains("s3cret"));
        let (status, _) = get(app(s.clone()), "/api/v1/status", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = get(app(s.clone()), "/api/v1/status", Some("Bearer wrong!")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = get(app(s), "/api/v1/status", Some("Bearer s3cret")).await;
        assert_eq!(status, StatusCode::OK);
    }
}
