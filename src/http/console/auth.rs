//! Who may see the console: anyone the API would serve (no token configured, or a bearer
//! token), or a browser holding the session cookie. `/ui/login` takes the token once from a
//! form and sets the cookie (HttpOnly: scripts cannot read it; SameSite=Strict: other
//! sites cannot send it); a page without it answers 401 with the form.

use super::super::AppState;
use super::super::guards::{authorized, token_matches};
use super::layout;
use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;

/// The session cookie's name.
pub const COOKIE: &str = "sentinel_console";

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Whether a request may see the console.
pub fn allowed(state: &AppState, headers: &HeaderMap) -> bool {
    if authorized(state, headers) {
        return true;
    }
    let token = state.config.http.api_token.expose();
    cookie(headers, COOKIE).is_some_and(|given| token_matches(given.as_bytes(), token.as_bytes()))
}

/// Pages without a session answer 401 with the token form (returning to the page after).
pub async fn require_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if allowed(&state, req.headers()) {
        return next.run(req).await;
    }
    let back = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    (StatusCode::UNAUTHORIZED, Html(form(&state, &back, false).into_string())).into_response()
}

/// Where to go after logging in: a path on this console only (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() <= 2048 => n.to_string(),
        _ => "/".to_string(),
    }
}

fn form(state: &AppState, next: &str, wrong: bool) -> maud::Markup {
    layout::page("Sign in", "", state, maud::html! {
        section.login {
            h1 { "Latency Sentinel" }
            p { "This console needs the daemon's API token (" code { "http.api_token" } ")." }
            @if wrong {
                p.error role="alert" { "That token is not right." }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="next" value=(next);
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Open the console" }
            }
        }
    })
}

pub async fn login_form(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    Html(form(&state, &next, false).into_string()).into_response()
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Checks the token; sets the session cookie and goes back to the page, or asks again (401).
pub async fn login(State(state): State<AppState>, Form(login): Form<Login>) -> Response {
    let next = safe_next(login.next.as_deref());
    let token = state.config.http.api_token.expose();
    if token.is_empty() {
        return Redirect::to(&next).into_response();
    }
    if !token_matches(login.token.as_bytes(), token.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, Html(form(&state, &next, true).into_string())).into_response();
    }
    // The token is the session: it never leaves the cookie jar for scripts, and changing
    // the configured token ends every session.
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut res = Redirect::to(&next).into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            res.headers_mut().insert(header::SET_COOKIE, v);
            res
        }
        // A token a cookie cannot carry (a control character): say so rather than loop.
        Err(_) => (StatusCode::BAD_REQUEST, "http.api_token holds characters a cookie cannot carry; use the API with a bearer token").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; sentinel_console=s3cret; b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("s3cret"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn login_only_returns_to_this_console() {
        assert_eq!(safe_next(Some("/ui/compare?baseline=PROD")), "/ui/compare?baseline=PROD");
        for bad in ["//evil.example/x", "https://evil.example/", "/\\evil", "ui/x"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
