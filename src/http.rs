//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (process up), `/readyz`
//! (store answers and every enabled source polled recently), and `/api/v1/*` behind an
//! optional bearer token. `app(state)` builds the router so tests call it without a socket.
//!
//! No request can take the daemon down with it: `/api/*` runs at most
//! `http.max_concurrent_requests` at once and sheds the rest (503 + `Retry-After`); each
//! runs its work on a task of its own ([`run_bounded`]) against the store's read-only
//! connections, and its SQLite reads stop at `http.request_timeout` or as soon as the client
//! goes away. `/healthz`, `/readyz` and `/metrics` never wait behind API work.

use crate::config::Config;
use crate::health::{Health, is_ready};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::clock::now_ms;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
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
    /// Permits for `/api/*` requests in flight (`http.max_concurrent_requests`).
    api_permits: Arc<Semaphore>,
}

impl AppState {
    pub fn new(config: Arc<Config>, metrics: Metrics, store: Store, health: Health, evaluation: crate::evaluate::Shared) -> AppState {
        let api_permits = Arc::new(Semaphore::new(config.http.max_concurrent_requests.max(1)));
        AppState { config, metrics, store, health, evaluation, api_permits }
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

/// Runs a request's work within `http.request_timeout`, on a task of its own, against a
/// view of the store that reads through the read-only connections. The connection's task
/// stays free meanwhile, so it notices a client that goes away; when the request ends early
/// (its deadline, a disconnect: this future is dropped) the work's SQLite statements are
/// interrupted and the task is aborted, so nothing keeps running for nobody.
pub async fn run_bounded<T, Fut>(state: &AppState, work: impl FnOnce(Store) -> Fut) -> Result<T, AppError>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
{
    let timeout = state.config.http.request_timeout;
    let (store, cancel) = state.store.for_request(Instant::now() + timeout);
    let task = tokio::spawn(work(store));
    let _abort = AbortOnDrop(task.abort_handle());
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) if join.is_panic() => Err(AppError::Internal(anyhow::anyhow!("request handler panicked: {join}"))),
        Ok(Err(join)) => Err(AppError::Internal(anyhow::anyhow!("request handler stopped: {join}"))),
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

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The router with every route and the request limits.
pub fn app(state: AppState) -> Router {
    // The outer limit only catches what `run_bounded` does not cover (reading a request).
    let timeout = state.config.http.request_timeout + Duration::from_secs(1);
    let api = crate::api::routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_concurrency))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
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

/// Ready or not, per source, for anyone (load balancers, orchestrators); the details (AWS
/// error texts, which can name accounts and ARNs) only for callers the API would serve.
async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let store_ok = tokio::time::timeout(state.config.http.request_timeout, state.store.ping()).await.is_ok_and(|r| r.is_ok());
    let detailed = authorized(&state, &headers);
    let now = now_ms();
    let sources = state.health.snapshot();
    let mut ready = store_ok;
    let mut report = serde_json::Map::new();
    for (name, h) in &sources {
        let ok = is_ready(h, now);
        ready &= ok;
        let entry = if detailed {
            serde_json::json!({
                "ready": ok,
                "last_success_age_seconds": if h.last_success_ms > 0 { Some((now - h.last_success_ms) as f64 / 1000.0) } else { None },
                "last_error": h.last_error,
                "details": h.details,
            })
        } else {
            serde_json::json!({ "ready": ok })
        };
        report.insert(name.clone(), entry);
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "store": store_ok, "sources": report })))
}

/// Whether a request may see the API: no token is configured, or it carries the token as
/// `Authorization: Bearer <token>` (the scheme in any case).
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let token = state.config.http.api_token.expose();
    if token.is_empty() {
        return true;
    }
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer).unwrap_or("");
    token_matches(given.as_bytes(), token.as_bytes())
}

/// The credentials of a `Bearer` authorization (RFC 7235: the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// Rejects `/api/*` requests without `Authorization: Bearer <http.api_token>` when a token is set.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if authorized(&state, req.headers()) {
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

/// Lets at most `http.max_concurrent_requests` API requests run; the rest are answered at
/// once with 503 and `Retry-After` instead of queueing behind them.
async fn limit_concurrency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(_permit) = state.api_permits.clone().try_acquire_owned() else {
        state.metrics.api_requests.with_label_values(&["shed"]).inc();
        return AppError::Unavailable(format!(
            "too many API requests in flight (http.max_concurrent_requests = {}); retry shortly",
            state.config.http.max_concurrent_requests
        ))
        .into_response();
    };
    next.run(req).await
}

/// Compares a given token with the configured one in time that depends only on the
/// configured token's length: every byte is compared, whatever the given token's length or
/// contents, and a length mismatch is folded into the result rather than returned early.
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    let mut diff = given.len() ^ token.len();
    for (i, t) in token.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= usize::from(g ^ t);
    }
    diff == 0
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
        AppState::new(Arc::new(config), Metrics::new(), Store::open_memory().await.unwrap(), Health::default(), Default::default())
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

    #[test]
    fn tokens_compare_whole_and_the_scheme_ignores_case() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret!", b"S3cret", b"s3cret\0", b"\0\0\0\0\0\0"] {
            assert!(!token_matches(wrong, b"s3cret"), "{wrong:?}");
        }
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }

    #[tokio::test]
    async fn readyz_details_need_the_token() {
        let s = state("s3cret").await;
        s.health.register("logs", 60_000);
        s.health.failure("logs", "AccessDenied: arn:aws:iam::123456789012:role/reader is not authorized".into());
        let (status, body) = get(app(s.clone()), "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"ready\":false") && !body.contains("arn:") && !body.contains("123456789012"), "{body}");
        let (_, body) = get(app(s), "/readyz", Some("bearer s3cret")).await;
        assert!(body.contains("arn:aws:iam::123456789012"), "{body}");
    }

    #[tokio::test]
    async fn api_requests_over_the_limit_are_shed_with_retry_after() {
        let s = state("").await;
        let held = s.api_permits.clone().acquire_many_owned(s.config.http.max_concurrent_requests as u32).await.unwrap();
        let resp = app(s.clone()).oneshot(Request::builder().uri("/api/v1/budgets").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()), Some("1"));
        // Health and metrics never wait behind the API.
        assert_eq!(get(app(s.clone()), "/healthz", None).await.0, StatusCode::OK);
        assert_eq!(get(app(s.clone()), "/metrics", None).await.0, StatusCode::OK);
        drop(held);
        assert_eq!(get(app(s.clone()), "/api/v1/budgets", None).await.0, StatusCode::OK);
        let text = s.metrics.render();
        assert!(text.contains("sentinel_api_requests_total{outcome=\"shed\"} 1"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_past_its_timeout_is_answered_and_its_scan_stops() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let mut config = Config::default();
        config.http.request_timeout = Duration::from_millis(300);
        let s = AppState::new(Arc::new(config), Metrics::new(), store, Health::default(), Default::default());
        // (the scan's outcome if it returned, and whether the work has ended at all)
        let outcome: Arc<std::sync::Mutex<(Option<bool>, bool)>> = Arc::default();
        let seen = outcome.clone();
        let started = Instant::now();
        let r = run_bounded(&s, move |store| async move {
            struct Ended(Arc<std::sync::Mutex<(Option<bool>, bool)>>);
            impl Drop for Ended {
                fn drop(&mut self) {
                    self.0.lock().unwrap().1 = true;
                }
            }
            let ended = Ended(seen);
            let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000000) SELECT COUNT(*) FROM c";
            let r = crate::store::raw::scan(&store, endless, &[], |_| {}).await;
            ended.0.lock().unwrap().0 = Some(matches!(r, Err(StoreError::Interrupted)));
            Ok(r?)
        })
        .await;
        assert!(matches!(r, Err(AppError::Unavailable(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // The work itself stopped (it is not left running for nobody): its scan was
        // interrupted, or it never got that far.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !outcome.lock().unwrap().1 {
            assert!(Instant::now() < deadline, "the scan kept running after the request ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_ne!(outcome.lock().unwrap().0, Some(false), "a scan that ran was interrupted");
    }

    /// A client that gives up: hyper drops the request's future, and with it the guard that
    /// stops the work's SQLite scan, long before the request's own deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_disconnects_stops_its_scan() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.db"), crate::store::OpenMode::Writer, 4096).await.unwrap();
        let mut config = Config::default();
        config.http.request_timeout = Duration::from_secs(60);
        let s = AppState::new(Arc::new(config), Metrics::new(), store, Health::default(), Default::default());
        let stopped: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, begun) = (stopped.clone(), started.clone());
        let router = Router::new()
            .route(
                "/slow",
                axum::routing::get(move |State(state): State<AppState>| {
                    let (seen, begun) = (seen.clone(), begun.clone());
                    async move {
                        run_bounded(&state, move |store| async move {
                            // Records when the work ends, whether its scan returns or the
                            // task is aborted while it waits for a connection.
                            struct Ended(Arc<std::sync::Mutex<Option<Instant>>>);
                            impl Drop for Ended {
                                fn drop(&mut self) {
                                    *self.0.lock().unwrap() = Some(Instant::now());
                                }
                            }
                            let _ended = Ended(seen);
                            begun.store(true, std::sync::atomic::Ordering::SeqCst);
                            let endless =
                                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000000) SELECT COUNT(*) FROM c";
                            let r = crate::store::raw::scan(&store, endless, &[], |_| {}).await;
                            Ok(Json(r.map_err(AppError::from)?))
                        })
                        .await
                    }
                }),
            )
            .with_state(s);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !started.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the request never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(stopped.lock().unwrap().is_none(), "the scan runs while the client waits");
        let left = Instant::now();
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(at) = *stopped.lock().unwrap() {
                assert!(at.duration_since(left) < Duration::from_secs(5));
                break;
            }
            assert!(Instant::now() < deadline, "the scan kept running after its client left");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn an_instant_out_of_range_is_a_400_not_a_hang() {
        let s = state("").await;
        for uri in [
            "/api/v1/operations/f/o/history?to=9223372036854775807",
            "/api/v1/operations/f/o/history?from=0000000000001&to=9223372036854775807&step=1h",
            "/api/v1/compare?baseline=PROD&candidate=Dev&baseline_range=9223372036854775806..9223372036854775807&candidate_range=1h..",
            "/api/v1/bottleneck?from=1970-01-01T00:00:00Z",
            "/api/v1/operations/f/o/history?since=99999999999999999d",
        ] {
            let (status, body) = tokio::time::timeout(Duration::from_secs(2), get(app(s.clone()), uri, None)).await.expect(uri);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        }
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
        let (status, _) = get(app(s.clone()), "/api/v1/status", Some("Bearer s3cret")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = get(app(s), "/api/v1/status", Some("bEaReR s3cret")).await;
        assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");
    }
}
