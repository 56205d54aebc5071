//! The frame every console page shares (head, navigation, the refreshed `<main>`) and the
//! small formatting rules its pages use for durations, times and ages.

use super::super::AppState;
use super::assets;
use maud::{DOCTYPE, Markup, html};

/// The navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Board"),
    ("/ui/compare", "Compare"),
    ("/ui/bottleneck", "Bottleneck"),
    ("/ui/alerts", "Alerts"),
    ("/ui/health", "Health"),
];

/// A whole page: `current` is the navigation entry to mark (a path of [`NAV`], or "").
pub fn page(title: &str, current: &str, state: &AppState, main: Markup) -> Markup {
    let node = state.work.node();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Latency Sentinel" }
                link rel="icon" type="image/svg+xml" href=(assets::url("icon.svg"));
                link rel="stylesheet" href=(assets::url("uPlot.min.css"));
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("uPlot.iife.min.js")) defer {}
                script src=(assets::url("console.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/" { "Latency Sentinel" }
                    nav aria-label="Pages" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    @if *path == current {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(n) = node {
                        span.node title="This daemon's name in the fleet" { "node " (n) }
                    }
                }
                main #main data-refresh="15" tabindex="-1" { (main) }
            }
        }
    }
}

/// A duration in seconds for people: `850ms`, `2.31s`, `1m 05s`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        return "–".into();
    }
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.2}s")
    } else {
        let whole = s.round() as i64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

/// How long ago `then_ms` was at `now_ms`: `45s`, `12m`, `3h 10m`, `2d 4h`.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = (now_ms.saturating_sub(then_ms) / 1000).max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// An epoch-ms time as UTC `2026-11-27 23:41:05`.
pub fn utc(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").trim_end_matches('Z').to_string() + " UTC"
}

/// A query string's value, percent-encoded.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The operation page of (function, operation).
pub fn operation_url(function: &str, operation: &str) -> String {
    format!("/ui/operations/{}/{}", enc(function), enc(operation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_times_and_urls_read_well() {
        assert_eq!(secs(0.8504), "850ms");
        assert_eq!(secs(2.3149), "2.31s");
        assert_eq!(secs(65.2), "1m 05s");
        assert_eq!(secs(f64::NAN), "–");
        assert_eq!(ago(0, 45_000), "45s");
        assert_eq!(ago(0, 3 * 3_600_000 + 600_000), "3h 10m");
        assert_eq!(ago(0, 2 * 86_400_000 + 4 * 3_600_000), "2d 4h");
        assert_eq!(utc(1_795_341_600_000), "2026-11-22 10:00:00 UTC");
        assert_eq!(operation_url("GDSH", "Bedrock.InvokeModel"), "/ui/operations/GDSH/Bedrock.InvokeModel");
        assert_eq!(enc("a b/c&d"), "a%20b%2Fc%26d");
    }
}
