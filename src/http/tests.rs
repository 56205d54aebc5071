//! The HTTP layer's tests, through the router (`oneshot`) and over real sockets.

use super::guards::{bearer, token_matches};
use super::router::app;
use super::*;
use crate::clock::now_ms;
use axum::extract::{Request, State};
use axum::Router;
use std::time::Duration;
use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The app's state over `store`, with fresh metrics and exposition.
fn state_over(config: Config, store: Store) -> AppState {
    let metrics = Metrics::new();
    let exposition = crate::sinks::prometheus::PrometheusSink::new(100, &metrics);
    AppState::new(Arc::new(config), metrics, store, Health::default(), Default::default(), exposition)
}

async fn state(token: &str) -> AppState {
    let mut config = Config::default();
    config.http.api_token.0 = token.into();
    state_over(config, Store::open_memory().await.unwrap())
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
    let s = state_over(config, store);
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
        let r = crate::store::raw::endless_read(store.sqlite().expect("a SQLite store")).await;
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
    let s = state_over(config, store);
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
                        let r = crate::store::raw::endless_read(store.sqlite().expect("a SQLite store")).await;
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
        "/api/v1/anomalies?verdict=slow",
        "/api/v1/anomalies?windw=15m",
        "/api/v1/compare?baseline=PROD&candidate=Dev&group=maybe",
    ] {
        let (status, body) = tokio::time::timeout(Duration::from_secs(2), get(app(s.clone()), uri, None)).await.expect(uri);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
}

/// The evaluator's latest judgements against learned baselines, filtered, regressions first.
#[tokio::test]
async fn anomalies_are_the_evaluators_latest_judgements() {
    let s = state("").await;
    let row = |op: &str, verdict: &'static str, ratio: f64| crate::evaluate::AnomalyStatus {
        account: "default".into(),
        region: String::new(),
        env: "Dev".into(),
        function: "GDSH".into(),
        operation: op.into(),
        recent_p95_s: Some(ratio),
        baseline_p95_s: Some(1.0),
        ratio: Some(ratio),
        p_value: 0.5,
        recent_samples: 40,
        baseline_samples: 400,
        baseline_from_ms: Some(0),
        baseline_to_ms: Some(1),
        baseline_kind: "trailing",
        verdict,
        state: crate::model::alert::AlertState::Inactive,
        cause: op.into(),
        explained_by: None,
    };
    let firing = crate::evaluate::AnomalyStatus { state: crate::model::alert::AlertState::Firing, ..row("C", "regression", 3.0) };
    s.evaluation.set_anomalies(std::sync::Arc::new(vec![row("A", "normal", 1.1), row("B", "regression", 2.0), firing]));
    // The console's board lists the firing regression with its baseline.
    let (status, board) = get(app(s.clone()), "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(board.contains("GDSH / C") && board.contains("3.0× its baseline of 1.00s"), "{board}");
    let (status, body) = get(app(s.clone()), "/api/v1/anomalies?env=Dev", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ops: Vec<&str> = v["anomalies"].as_array().unwrap().iter().map(|a| a["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["C", "B", "A"]);
    let (_, body) = get(app(s.clone()), "/api/v1/anomalies?verdict=regression&function=GDSH", None).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["anomalies"].as_array().unwrap().len(), 2);
    let (_, body) = get(app(s), "/api/v1/anomalies?env=PROD", None).await;
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["anomalies"].as_array().unwrap().is_empty());
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
