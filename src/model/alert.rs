//! The alert vocabulary every stage shares: an alert's phase and state, its transitions, its
//! key, what the evaluator hands receivers, the alert name and the quantile labels. Data
//! only; the life cycle itself is `evaluate::alert::step`, rendering is the sinks'.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `alertname` of every budget alert.
pub const ALERT_NAME: &str = "LatencyBudgetExceeded";

/// `alertname` of a regression against an operation's own past (learned baseline); also
/// the `budget` column of its stored alert rows (no budget may take this name).
pub const REGRESSION_ALERT_NAME: &str = "LatencyRegression";

/// The quantiles budgets and the exposition name, with their label values.
pub const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")];

/// The label value of a quantile (`0.95`).
pub fn quantile_label(q: f64) -> &'static str {
    QUANTILES.iter().find(|(v, _)| (*v - q).abs() < 1e-9).map(|(_, l)| *l).unwrap_or("0.95")
}

/// Where an alert is, with the times its life cycle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Phase {
    Inactive,
    /// Over budget since `active_at`, waiting for `for`.
    Pending { active_at: i64 },
    /// Firing since `fired_at`; last over budget at `last_breach`.
    Firing { active_at: i64, fired_at: i64, last_breach: i64 },
}

impl Phase {
    pub fn state(&self) -> AlertState {
        match self {
            Phase::Inactive => AlertState::Inactive,
            Phase::Pending { .. } => AlertState::Pending,
            Phase::Firing { .. } => AlertState::Firing,
        }
    }

    pub fn name(&self) -> &'static str {
        self.state().as_str()
    }
}

/// An alert's state as receivers, metrics and the API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

impl std::fmt::Display for AlertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change worth telling receivers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// Inactive → pending.
    Pending,
    /// → firing.
    Firing,
    /// Firing → inactive.
    Resolved,
    /// Pending → inactive without firing.
    Cleared,
}

impl Transition {
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Pending => "pending",
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
            Transition::Cleared => "cleared",
        }
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Separates the parts of an alert key (never part of a name we accept).
const KEY_SEP: char = '\u{1f}';

/// What one budget judges: one operation of one function in one env, in one account and
/// region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
}

impl Target {
    /// A target of the default origin (a config without `[[accounts]]`).
    pub fn unscoped(env: &str, function: &str, operation: &str) -> Target {
        let o = super::Origin::default();
        Target { account: o.account, region: o.region, env: env.into(), function: function.into(), operation: operation.into() }
    }

    /// Whether it belongs to the default origin.
    pub fn is_unscoped(&self) -> bool {
        let o = super::Origin::default();
        self.account == o.account && self.region == o.region
    }
}

/// The key of one alert: (budget, env, function, operation), and account and region unless
/// they are the default origin's (so an alert firing before accounts existed is the same
/// alert after the upgrade).
pub fn alert_key(budget: &str, t: &Target) -> String {
    let base = format!("{budget}{KEY_SEP}{}{KEY_SEP}{}{KEY_SEP}{}", t.env, t.function, t.operation);
    if t.is_unscoped() { base } else { format!("{base}{KEY_SEP}{}{KEY_SEP}{}", t.account, t.region) }
}

/// The budget and target of an alert key.
pub fn split_alert_key(key: &str) -> Option<(&str, Target)> {
    let p: Vec<&str> = key.split(KEY_SEP).collect();
    match p.as_slice() {
        [budget, env, function, operation] => Some((budget, Target::unscoped(env, function, operation))),
        [budget, env, function, operation, account, region] => Some((
            budget,
            Target { account: account.to_string(), region: region.to_string(), env: env.to_string(), function: function.to_string(), operation: operation.to_string() },
        )),
        _ => None,
    }
}

/// What the evaluator hands the alert receivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// An alert changed state.
    Transition(AlertEvent),
    /// Every alert firing now (sent every evaluation).
    Firing(Vec<AlertEvent>),
}

/// One alert as receivers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub budget: String,
    /// The account's name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region (empty without `[[accounts]]`).
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub quantile: f64,
    pub severity: String,
    /// What happened: the transition (`firing` also for an alert re-sent while it fires).
    pub state: Transition,
    pub value_s: Option<f64>,
    pub budget_s: f64,
    pub window: Duration,
    pub samples: u64,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    /// What judged it: a budget, or the learned baseline.
    pub regression: Option<Regression>,
    /// Every alert folded into this one (linked operations measuring the same thing), with
    /// its own numbers; empty when it stands alone.
    pub evidence: Vec<Evidence>,
    /// Function-level operations of the same function whose alerts this one explains (they
    /// are not notified on their own).
    pub explains: Vec<String>,
}

impl AlertEvent {
    /// `LatencyBudgetExceeded` or `LatencyRegression`.
    pub fn alertname(&self) -> &'static str {
        if self.regression.is_some() { REGRESSION_ALERT_NAME } else { ALERT_NAME }
    }
}

/// A regression's numbers against the learned baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub baseline_p95_s: f64,
    pub ratio: f64,
    pub p_value: f64,
    pub baseline_samples: u64,
    /// The baseline's span: the earliest start and latest end of its ranges.
    pub baseline_from_ms: i64,
    pub baseline_to_ms: i64,
    /// Whether the baseline is the same hours of past weeks (else the trailing span).
    pub seasonal: bool,
}

/// One linked operation's side of a grouped alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub operation: String,
    pub state: AlertState,
    pub value_s: Option<f64>,
    pub samples: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_and_labels_name_quantiles() {
        let t = Target::unscoped("Dev", "GDSH", "Bedrock.InvokeModel");
        let k = alert_key("bedrock-p95", &t);
        assert_eq!(k, "bedrock-p95\u{1f}Dev\u{1f}GDSH\u{1f}Bedrock.InvokeModel", "the key alerts had before accounts");
        assert_eq!(split_alert_key(&k), Some(("bedrock-p95", t.clone())));
        let scoped = Target { account: "prod".into(), region: "eu-west-1".into(), ..t };
        let k = alert_key("bedrock-p95", &scoped);
        assert_eq!(split_alert_key(&k), Some(("bedrock-p95", scoped)));
        assert_eq!(split_alert_key("no separators"), None);
        assert_eq!(quantile_label(0.99), "0.99");
        assert_eq!(serde_json::to_string(&AlertState::Firing).unwrap(), "\"firing\"");
        assert_eq!(Phase::Pending { active_at: 1 }.state(), AlertState::Pending);
    }
}
