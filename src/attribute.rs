//! Deciding an event's environment from data, never from calls: an explicit qualifier
//! (Powertools `function_arn`, X-Ray `resource_arn`), the alias that pointed at the event's
//! version at the event's time (history kept from ListAliases), the function-name pattern,
//! `$LATEST`, then the configured default. The history is loaded by a task and read here
//! through a snapshot.

use crate::lambda::is_version;
use regex::Regex;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One period during which `alias` routed to `version` (with `weight`, 1.0 unless weighted).
#[derive(Debug, Clone, PartialEq)]
pub struct AliasSpan {
    pub alias: String,
    pub version: String,
    pub weight: f64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// Alias history per function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AliasHistory {
    pub by_function: HashMap<String, Vec<AliasSpan>>,
}

impl AliasHistory {
    /// Whether any alias of `function` has ever been seen routing to `version`.
    pub fn knows(&self, function: &str, version: &str) -> bool {
        self.by_function.get(function).is_some_and(|spans| spans.iter().any(|s| s.version == version))
    }

    /// The alias that pointed at `version` of `function` at `time_ms`.
    ///
    /// A span counts from its first sighting until the next change of that alias (the alias
    /// is assumed to have kept pointing there between refreshes). Before the first sighting,
    /// the earliest span stands in: events read back at first start predate our history.
    /// When two aliases route to one version at once (PROD promoted to Dev's version), the
    /// one that has pointed there longest wins: the code running is the same.
    pub fn resolve(&self, function: &str, version: &str, time_ms: i64) -> Option<&str> {
        let spans = self.by_function.get(function)?;
        let mut best: Option<&AliasSpan> = None;
        for s in spans.iter().filter(|s| s.version == version && s.weight > 0.0) {
            let until = spans
                .iter()
                .filter(|o| o.alias == s.alias && o.first_seen_ms > s.first_seen_ms)
                .map(|o| o.first_seen_ms)
                .min()
                .unwrap_or(i64::MAX);
            let earliest_of_alias = spans.iter().filter(|o| o.alias == s.alias).map(|o| o.first_seen_ms).min() == Some(s.first_seen_ms);
            let covers = (time_ms >= s.first_seen_ms || earliest_of_alias) && time_ms < until;
            if covers && best.is_none_or(|b| (s.first_seen_ms, &s.alias) < (b.first_seen_ms, &b.alias)) {
                best = Some(s);
            }
        }
        best.map(|s| s.alias.as_str())
    }
}

/// The rules, built once from config; the alias history is swapped in by the refresher.
#[derive(Clone)]
pub struct Attributor {
    use_aliases: bool,
    pattern: Option<Regex>,
    default: String,
    /// The env of the account the events come from (`[[accounts]] env`), empty: none.
    account_env: String,
    history: Arc<RwLock<Arc<AliasHistory>>>,
}

impl Attributor {
    pub fn new(cfg: &crate::config::EnvironmentsConfig) -> Attributor {
        Attributor {
            use_aliases: cfg.lambda_aliases,
            // Validation has compiled it already; an invalid pattern here just disables the rule.
            pattern: (!cfg.function_name_pattern.is_empty()).then(|| Regex::new(&cfg.function_name_pattern).ok()).flatten(),
            default: cfg.default.clone(),
            account_env: String::new(),
            history: Arc::new(RwLock::new(Arc::new(AliasHistory::default()))),
        }
    }

    /// The same rules for one account's events: its env comes after the alias history and
    /// before the name pattern.
    pub fn with_account_env(mut self, env: &str) -> Attributor {
        self.account_env = env.to_string();
        self
    }

    pub fn set_history(&self, h: AliasHistory) {
        if let Ok(mut slot) = self.history.write() {
            *slot = Arc::new(h);
        }
    }

    pub fn history(&self) -> Arc<AliasHistory> {
        self.history.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// The environment of an event of `function` at `time_ms`, given its resolved version
    /// and an explicit qualifier if the source had one.
    pub fn env(&self, function: &str, version: Option<&str>, qualifier: Option<&str>, time_ms: i64) -> String {
        self.env_with(&self.history(), function, version, qualifier, time_ms)
    }

    /// Same as `env`, with a history snapshot the caller holds for a whole batch.
    pub fn env_with(&self, history: &AliasHistory, function: &str, version: Option<&str>, qualifier: Option<&str>, time_ms: i64) -> String {
        let version = match qualifier {
            Some(q) if !is_version(q) => return q.to_string(),
            Some(q) => Some(q),
            None => version,
        };
        if self.use_aliases {
            if let Some(v) = version {
                if let Some(alias) = history.resolve(function, v, time_ms) {
                    return alias.to_string();
                }
            }
        }
        if !self.account_env.is_empty() {
            return self.account_env.clone();
        }
        if let Some(re) = &self.pattern {
            if let Some(env) = re.captures(function).and_then(|c| c.name("env")) {
                return env.as_str().to_string();
            }
        }
        if version == Some("$LATEST") {
            return "$LATEST".to_string();
        }
        self.default.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EnvironmentsConfig;

    fn span(alias: &str, version: &str, weight: f64, from: i64) -> AliasSpan {
        AliasSpan { alias: alias.into(), version: version.into(), weight, first_seen_ms: from, last_seen_ms: from }
    }

    fn history() -> AliasHistory {
        let mut h = AliasHistory::default();
        h.by_function.insert(
            "GDSH".into(),
            vec![
                span("PROD", "3", 1.0, 1_000),
                span("Dev", "4", 1.0, 1_000),
                // Dev moves to 5 at t=5000, with 10 % still on 4.
                span("Dev", "5", 0.9, 5_000),
                span("Dev", "4", 0.1, 5_000),
                // PROD promoted to 5 at t=9000.
                span("PROD", "5", 1.0, 9_000),
            ],
        );
        h
    }

    #[test]
    fn alias_at_event_time() {
        let h = history();
        assert_eq!(h.resolve("GDSH", "3", 2_000), Some("PROD"));
        assert_eq!(h.resolve("GDSH", "4", 2_000), Some("Dev"));
        assert_eq!(h.resolve("GDSH", "5", 6_000), Some("Dev"));
        assert_eq!(h.resolve("GDSH", "4", 6_000), Some("Dev"), "weighted routing");
        assert_eq!(h.resolve("GDSH", "3", 9_500), None, "PROD moved off 3");
        assert_eq!(h.resolve("GDSH", "5", 9_500), Some("Dev"), "both point at 5: the longer-standing alias");
        assert_eq!(h.resolve("GDSH", "3", 10), Some("PROD"), "before the first sighting");
        assert_eq!(h.resolve("other", "3", 2_000), None);
    }

    #[test]
    fn rules_in_order() {
        let cfg = EnvironmentsConfig { function_name_pattern: "^app-(?P<env>dev|prod)-".into(), ..EnvironmentsConfig::default() };
        let a = Attributor::new(&cfg);
        a.set_history(history());
        assert_eq!(a.env("GDSH", Some("3"), Some("Dev"), 2_000), "Dev", "an alias qualifier wins");
        assert_eq!(a.env("GDSH", Some("9"), Some("4"), 2_000), "Dev", "a version qualifier is resolved");
        assert_eq!(a.env("GDSH", Some("3"), None, 2_000), "PROD");
        assert_eq!(a.env("app-dev-worker", Some("1"), None, 2_000), "dev");
        assert_eq!(a.env("GDSH", Some("$LATEST"), None, 2_000), "$LATEST");
        assert_eq!(a.env("GDSH", Some("77"), None, 2_000), "default");
        // An account's env: after the qualifier and the alias history, before the pattern.
        let prod = Attributor::new(&cfg).with_account_env("PROD");
        prod.set_history(history());
        assert_eq!(prod.env("GDSH", Some("4"), None, 2_000), "Dev", "the alias history still wins");
        assert_eq!(prod.env("GDSH", Some("3"), Some("Dev"), 2_000), "Dev", "and the qualifier");
        assert_eq!(prod.env("app-dev-worker", Some("1"), None, 2_000), "PROD", "over the name pattern");
        assert_eq!(prod.env("GDSH", Some("$LATEST"), None, 2_000), "PROD", "over $LATEST");
    }
}
