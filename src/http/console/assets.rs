//! The console's static files, compiled into the binary: its stylesheet and script, and
//! uPlot (1.6.32 from the npm registry's `uplot` package, MIT licence beside it). Served
//! with their content type and cached for an hour (the URL carries the version).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The version part of asset URLs: a new build is a new URL, so caches never serve a stale file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../../assets/console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/console/console.js")),
    ("icon.svg", "image/svg+xml", include_bytes!("../../../assets/console/icon.svg")),
    ("uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../../../assets/console/uplot/uPlot.min.css")),
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/console/uplot/uPlot.iife.min.js")),
];

/// An asset's URL.
pub fn url(name: &str) -> String {
    format!("/ui/assets/{name}?v={VERSION}")
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
