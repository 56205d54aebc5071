//! The built-in console: server-rendered pages over the same store, evaluator and health
//! the API reads, at `/` and `/ui/*`. Pages are HTML written with maud (checked by the
//! compiler, escaped by default); time series are drawn in the browser by uPlot, small
//! figures (sparklines, budget bullets, the bottleneck waterfall) are SVG made here. Every
//! byte comes from the binary (no external resource), under a Content-Security-Policy that
//! allows only this origin; pages refresh their `<main>` in place every 15 s.
//!
//! With `http.api_token` set, a page asks for the token once and keeps it in an HttpOnly,
//! SameSite=Strict cookie; without a token the console is open where the API is (loopback,
//! unless the config allows otherwise).

pub mod alerts;
pub mod assets;
pub mod auth;
pub mod board;
pub mod bottleneck;
pub mod compare;
pub mod health;
pub mod layout;
pub mod operation;
pub mod svg;

use super::{AppError, AppState};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The policy every console response carries: this origin only, no inline script or style
/// (uPlot sets styles through the DOM, which the policy allows), no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                       font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's routes (the board at `/`).
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(board::page))
        .route("/ui/operations/{function}/{operation}", get(operation::page))
        .route("/ui/compare", get(compare::page))
        .route("/ui/bottleneck", get(bottleneck::page))
        .route("/ui/alerts", get(alerts::page))
        .route("/ui/health", get(health::page))
        // Pages share the API's limit on requests in flight (each also runs bounded in time).
        .route_layer(middleware::from_fn_with_state(state.clone(), super::guards::limit_concurrency))
        .route_layer(middleware::from_fn_with_state(state, auth::require_session));
    Router::new()
        .merge(pages)
        .route("/ui/login", get(auth::login_form).post(auth::login))
        .route("/ui/assets/{file}", get(assets::serve))
        .route_layer(middleware::from_fn(headers))
}

/// Security headers on every console response.
async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// A page as a response; an error is shown as a page too (bad input names the parameter).
pub fn respond(result: Result<maud::Markup, AppError>, title: &str, state: &AppState) -> Response {
    match result {
        Ok(markup) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Html(markup.into_string()),
        )
            .into_response(),
        Err(e) => {
            let status = match &e {
                AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::warn!(error = %e, page = title, "A console page failed.");
            }
            let body = layout::page(title, "", state, maud::html! {
                section.error role="alert" {
                    h1 { (title) }
                    p { (e.to_string()) }
                }
            });
            (status, Html(body.into_string())).into_response()
        }
    }
}
