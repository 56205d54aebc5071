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
    /// Keys (log groups) whose latest poll failed, with the error: one key's success does
    /// not hide another's failure (a full disk fails only the groups with events to store).
    pub failing: BTreeMap<String, String>,
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

    /// A source-wide success: clears the last error unless a key is still failing.
    pub fn success(&self, source: &str, now_ms: i64) {
        self.with(source, |h| {
            h.last_success_ms = now_ms;
            h.last_error = h.failing.values().next().cloned();
        });
    }

    /// Drops a source's entry: a node of a fleet that no longer holds the source's lease
    /// does not answer for it (the holder does).
    pub fn forget(&self, source: &str) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).remove(source);
    }

    pub fn failure(&self, source: &str, error: String) {
        self.with(source, |h| h.last_error = Some(error));
    }

    /// One key's poll succeeded: that key no longer fails; the source stays failed while
    /// another key does.
    pub fn key_success(&self, source: &str, key: &str, now_ms: i64) {
        self.with(source, |h| {
            h.failing.remove(key);
            h.last_success_ms = now_ms;
            h.last_error = h.failing.values().next().cloned();
        });
    }

    /// One key's poll failed: the source is not ready until that key succeeds again (or
    /// is forgotten).
    pub fn key_failure(&self, source: &str, key: &str, error: String) {
        self.with(source, |h| {
            h.failing.insert(key.to_string(), error.clone());
            h.last_error = Some(error);
        });
    }

    /// A key no longer watched: its failure no longer counts.
    pub fn forget_key(&self, source: &str, key: &str) {
        self.with(source, |h| {
            h.details.remove(key);
            if h.failing.remove(key).is_some() && h.last_error.is_some() {
                h.last_error = h.failing.values().next().cloned();
            }
        });
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

    #[test]
    fn one_keys_success_does_not_hide_anothers_failure() {
        let h = Health::default();
        h.register("logs", 60_000);
        h.key_success("logs", "/a", 1_000);
        h.key_failure("logs", "/b", "/b: disk full".into());
        h.key_success("logs", "/a", 2_000);
        h.success("logs", 2_000);
        assert!(!is_ready(&h.snapshot()["logs"], 2_001), "{:?}", h.snapshot());
        assert_eq!(h.snapshot()["logs"].last_error.as_deref(), Some("/b: disk full"));
        h.key_success("logs", "/b", 3_000);
        assert!(is_ready(&h.snapshot()["logs"], 3_001));
        h.key_failure("logs", "/c", "/c: throttled".into());
        h.forget_key("logs", "/c");
        assert!(is_ready(&h.snapshot()["logs"], 3_001));
    }
}
