//! `/api/v1/*`: JSON answers from the store. Each handler validates its query parameters
//! (a 400 names the bad one) and bounds its work.

use crate::http::{AppError, AppState};
use crate::store::now_ms;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new().route("/status", get(status))
}

/// The daemon's view of itself: version, events stored, sources.
async fn status(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let events = state.store.count_events(None).await.map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now_ms": now_ms(),
        "events_stored": events,
        "sources": state.health.snapshot(),
    })))
}
