//! The routes probes and scrapers use: `/healthz` (the process answers), `/readyz` (the
//! store answers and every enabled source polled recently; details only for authorised
//! callers) and `/metrics`.

use super::AppState;
use super::guards::authorized;
use crate::clock::now_ms;
use crate::health::is_ready;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    // The daemon's own families are rendered now; the per-series ones (nearly all of the
    // bytes with thousands of series) were rendered by the last evaluation and are sent
    // as they are, without a copy.
    let series = state.exposition.text();
    let metrics = state.metrics.clone();
    let head = match tokio::task::spawn_blocking(move || state.metrics.render()).await {
        Ok(text) => text,
        Err(e) => {
            // Not silently empty: counted, logged, and the per-series part still goes out.
            metrics.internal_errors.with_label_values(&["metrics_render"]).inc();
            tracing::error!(error = %e, "Rendering the daemon's own metrics failed.");
            String::new()
        }
    };
    let chunks = [head.into(), series].map(Ok::<bytes::Bytes, std::convert::Infallible>);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], axum::body::Body::from_stream(futures::stream::iter(chunks)))
}

/// Ready or not, per source, for anyone (load balancers, orchestrators); the details (AWS
/// error texts, which can name accounts and ARNs) only for callers the API would serve.
pub async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
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
    let mut body = serde_json::json!({ "ready": ready, "store": store_ok, "sources": report });
    if let Some(node) = state.work.node() {
        body["cluster"] = cluster_view(&state, node, store_ok, detailed).await;
    }
    (status, Json(body))
}

/// A node of a fleet: its name and leases (by kind; each unit for authorised callers),
/// the fleet's nodes and who holds the evaluator, as the database says now.
async fn cluster_view(state: &AppState, node: &str, store_ok: bool, detailed: bool) -> serde_json::Value {
    let held = state.work.held();
    let mut view = serde_json::json!({
        "node": node,
        "leases": crate::cluster::status::by_kind(&held),
    });
    if detailed {
        view["units"] = serde_json::json!(held);
    }
    let crate::store::Store::Postgres(pg) = &state.store else { return view };
    if !store_ok {
        return view;
    }
    let limit = state.config.http.request_timeout;
    if let Ok(Ok(nodes)) = tokio::time::timeout(limit, pg.nodes()).await {
        view["nodes"] = nodes
            .into_iter()
            .map(|n| serde_json::json!({ "node": n.node_id, "live": n.live, "leases": n.leases }))
            .collect::<serde_json::Value>();
    }
    if let Ok(Ok(holder)) = tokio::time::timeout(limit, pg.holder(crate::cluster::EVALUATOR)).await {
        view["evaluator"] = serde_json::json!(holder);
    }
    view
}
