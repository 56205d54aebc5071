//! What `/readyz` reports: for each enabled source, when it last polled successfully, its
//! last error, and per-key details (a deleted log group, X-Ray sending spans elsewhere).
//! Sources write here; the HTTP handler reads a snapshot.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// State of one source, as shown by `/readyz`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SourceHealth {
    /// Unix ms of the last successful poll (0: never).
    pub last_success_ms: i64,
    /// The last poll's error, if it failed.
    pub last_error: Option<String>,
    /// How old `last_success_ms` may be before the daemon is not ready, in ms.
    pub stale_after_ms: i64,
    /// Problems with individual keys (log group → "deleted", ...), and notices.
    pub details: BTreeMap<String, String>,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<String, SourceHealth>>>,
}

impl Health {
    /// Declares an enabled source; it is not ready until its first successful poll.
    pub fn register(&self, source: &str, stale_after_ms: i64) {
        self.with(source, |h| h.stale_after_ms = stale_after_ms);
    }

    pub fn success(&self, source: &str, now_ms: i64) {
        self.with(source, |h| {
            h.last_success_ms = now_ms;
            h.last_error = None;
        });
    }

    pub fn failure(&self, source: &str, error: String) {
        self.with(source, |h| h.last_error = Some(error));
    }

    pub fn set_detail(&self, source: &str, key: &str, detail: Option<String>) {
        self.with(source, |h| match detail {
            Some(d) => {
                h.details.insert(key.to_string(), d);
            }
            None => {
                h.details.remove(key);
            }
        });
    }

    pub fn snapshot(&self) -> BTreeMap<String, SourceHealth> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn with(&self, source: &str, f: impl FnOnce(&mut SourceHealth)) {
        if let Ok(mut m) = self.inner.lock() {
            f(m.entry(source.to_string()).or_default());
        }
    }
}

/// Whether a source counts as ready at `now_ms` (pure, so it is tested without a clock).
/// A source is ready when it has succeeded recently and its latest attempt did not fail.
pub fn is_ready(h: &SourceHealth, now_ms: i64) -> bool {
    h.last_success_ms > 0 && h.last_error.is_none() && now_ms - h.last_success_ms <= h.stale_after_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_polled_is_not_ready_and_stale_is_not_ready() {
        let h = Health::default();
        h.register("logs", 60_000);
        assert!(!is_ready(&h.snapshot()["logs"], 1_000));
        h.success("logs", 10_000);
        assert!(is_ready(&h.snapshot()["logs"], 70_000));
        assert!(!is_ready(&h.snapshot()["logs"], 70_001));
        h.failure("logs", "endpoint unreachable".into());
        assert!(!is_ready(&h.snapshot()["logs"], 10_001));
    }
}
