//! Who may use the API and how many at once: the bearer token (compared in constant time,
//! the scheme in any case) and the concurrency limit that sheds the excess with 503.

use super::{AppError, AppState};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether a request may see the API: no token is configured, or it carries the token as
/// `Authorization: Bearer <token>` (the scheme in any case).
pub fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let token = state.config.http.api_token.expose();
    if token.is_empty() {
        return true;
    }
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer).unwrap_or("");
    token_matches(given.as_bytes(), token.as_bytes())
}

/// The credentials of a `Bearer` authorization (RFC 7235: the scheme is case-insensitive).
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// Rejects `/api/*` requests without `Authorization: Bearer <http.api_token>` when a token is set.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
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
pub async fn limit_concurrency(State(state): State<AppState>, req: Request, next: Next) -> Response {
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
pub(crate) fn token_matches(given: &[u8], token: &[u8]) -> bool {
    let mut diff = given.len() ^ token.len();
    for (i, t) in token.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= usize::from(g ^ t);
    }
    diff == 0
}
