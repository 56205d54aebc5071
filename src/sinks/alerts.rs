//! Alert sinks: a structured log line per transition, a webhook (JSON per transition), and
//! Alertmanager's API v2 (the firing set re-sent every evaluation with `endsAt` a few
//! intervals ahead; a resolution sent once with `endsAt` = now). Each receiver has its own
//! task and queue, with retries and a timeout, so none can hold up evaluation or another.

use crate::clock::now_ms;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::alert::{AlertEvent, Notification, Transition, quantile_label};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Deliveries attempted per message.
const ATTEMPTS: u32 = 3;
/// Queue length per receiver; a full queue drops (and counts) rather than blocks.
const QUEUE: usize = 256;

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

impl AlertEvent {
    /// Whether it comes from a config without `[[accounts]]`.
    fn of_default_origin(&self) -> bool {
        let default = crate::model::Origin::default();
        self.account == default.account && self.region == default.region
    }

    /// The alert's labels: its identity in Alertmanager. `account` and `region` are there
    /// only when the config names accounts, so an alert of a config without them keeps the
    /// identity it had before accounts existed.
    pub fn labels(&self) -> Value {
        let mut labels = json!({
            "alertname": self.alertname(),
            "env": self.env,
            "function": self.function,
            "operation": self.operation,
            "quantile": quantile_label(self.quantile),
            "severity": self.severity,
        });
        // A regression is judged against no budget: its identity has none.
        if self.regression.is_none() {
            labels["budget"] = json!(self.budget);
        }
        if !self.of_default_origin() {
            labels["account"] = json!(self.account);
            labels["region"] = json!(self.region);
        }
        labels
    }

    pub fn summary(&self) -> String {
        let place = if self.of_default_origin() {
            self.env.clone()
        } else {
            format!("{}, {} {}", self.env, self.account, self.region)
        };
        if let Some(r) = &self.regression {
            return format!(
                "p95 of {} in {} ({}) is {}, {:.1}× its baseline of {:.3}s",
                self.operation,
                self.function,
                place,
                self.value_s.map(|v| format!("{v:.3}s")).unwrap_or_else(|| "unknown".into()),
                r.ratio,
                r.baseline_p95_s
            );
        }
        format!(
            "p{} of {} in {} ({}) is {} against a budget of {}",
            (self.quantile * 100.0).round(),
            self.operation,
            self.function,
            place,
            self.value_s.map(|v| format!("{v:.3}s")).unwrap_or_else(|| "unknown".into()),
            format_args!("{:.3}s", self.budget_s)
        )
    }

    fn report_url(&self, base: &str) -> String {
        format!(
            "{}/api/v1/operations?since={}&env={}&function={}",
            base.trim_end_matches('/'),
            humantime::format_duration(self.window),
            url_escape(&self.env),
            url_escape(&self.function)
        )
    }

    fn annotations(&self, base: &str) -> Value {
        let mut a = self.judgement_annotations(base);
        if !self.evidence.is_empty() {
            let each: Vec<String> = self
                .evidence
                .iter()
                .map(|e| format!("{} {} ({} samples{})", e.operation, e.state, e.samples, e.value_s.map(|v| format!(", {v:.3}s")).unwrap_or_default()))
                .collect();
            a["evidence"] = json!(each.join("; "));
        }
        if !self.explains.is_empty() {
            a["explains"] = json!(self.explains.join(", "));
        }
        a
    }

    fn judgement_annotations(&self, base: &str) -> Value {
        if let Some(r) = &self.regression {
            let range = format!(
                "{} .. {}{}",
                rfc3339(r.baseline_from_ms),
                rfc3339(r.baseline_to_ms),
                if r.seasonal { " (the same hours of past weeks)" } else { "" }
            );
            return json!({
                "summary": self.summary(),
                "description": format!(
                    "{} samples in the last {} against {} in the baseline; one-sided Mann-Whitney p = {:.2e}.",
                    self.samples,
                    humantime::format_duration(self.window),
                    r.baseline_samples,
                    r.p_value
                ),
                "value": self.value_s.map(|v| format!("{v:.3}")).unwrap_or_default(),
                "baseline": format!("{:.3}", r.baseline_p95_s),
                "ratio": format!("{:.2}", r.ratio),
                "p_value": format!("{:.2e}", r.p_value),
                "samples": self.samples.to_string(),
                "baseline_samples": r.baseline_samples.to_string(),
                "baseline_range": range,
                "report": self.report_url(base),
            });
        }
        json!({
            "summary": self.summary(),
            "description": format!(
                "{} samples in the last {}; budget {:.3}s at p{}.",
                self.samples,
                humantime::format_duration(self.window),
                self.budget_s,
                (self.quantile * 100.0).round()
            ),
            "value": self.value_s.map(|v| format!("{v:.3}")).unwrap_or_default(),
            "budget": format!("{:.3}", self.budget_s),
            "report": self.report_url(base),
        })
    }

    /// The webhook body of a transition.
    pub fn webhook_body(&self, base: &str) -> Value {
        json!({
            "version": "1",
            "status": self.state,
            "labels": self.labels(),
            "annotations": self.annotations(base),
            "state": self.state,
            "value": self.value_s,
            "budget": self.budget_s,
            "quantile": self.quantile,
            "window": humantime::format_duration(self.window).to_string(),
            "samples": self.samples,
            "startsAt": rfc3339(self.starts_at_ms),
            "endsAt": self.ends_at_ms.map(rfc3339),
            "reportUrl": self.report_url(base),
            "regression": self.regression,
            "evidence": self.evidence,
            "explains": self.explains,
        })
    }

    /// Alertmanager's postable alert.
    pub fn alertmanager_body(&self, base: &str, ends_at_ms: i64) -> Value {
        json!({
            "labels": self.labels(),
            "annotations": self.annotations(base),
            "startsAt": rfc3339(self.starts_at_ms),
            "endsAt": rfc3339(ends_at_ms),
            "generatorURL": self.report_url(base),
        })
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Starts every configured receiver; returns the evaluator's end of the queue.
pub fn spawn(config: Arc<Config>, metrics: Metrics, tracker: &TaskTracker, shutdown: CancellationToken) -> mpsc::Sender<Notification> {
    let (tx, mut rx) = mpsc::channel::<Notification>(QUEUE);
    let client = reqwest::Client::builder().timeout(config.alerts.send_timeout).build().unwrap_or_default();
    let webhook = (!config.alerts.webhook_url.is_empty()).then(|| {
        let (wtx, wrx) = mpsc::channel::<AlertEvent>(QUEUE);
        tracker.spawn(webhook_loop(client.clone(), config.clone(), metrics.clone(), wrx, shutdown.clone()));
        wtx
    });
    let alertmanager = (!config.alerts.alertmanager_url.is_empty()).then(|| {
        let (atx, arx) = mpsc::channel::<Vec<Value>>(QUEUE);
        tracker.spawn(alertmanager_loop(client.clone(), config.clone(), metrics.clone(), arx, shutdown.clone()));
        atx
    });
    let base = config.alerts.external_url.clone();
    let ahead_ms = 4 * config.alerts.evaluation_interval.as_millis().max(15_000) as i64;
    tracker.spawn(async move {
        loop {
            let n = tokio::select! {
                _ = shutdown.cancelled() => break,
                n = rx.recv() => match n { Some(n) => n, None => break },
            };
            match n {
                Notification::Transition(e) => {
                    log_transition(&e);
                    metrics.alert_notifications.with_label_values(&["log", "ok"]).inc();
                    if let Some(w) = &webhook {
                        if w.try_send(e.clone()).is_err() {
                            metrics.alert_notifications.with_label_values(&["webhook", "dropped"]).inc();
                        }
                    }
                    if let (Some(a), Transition::Resolved) = (&alertmanager, e.state) {
                        let body = vec![e.alertmanager_body(&base, e.ends_at_ms.unwrap_or_else(now_ms))];
                        if a.try_send(body).is_err() {
                            metrics.alert_notifications.with_label_values(&["alertmanager", "dropped"]).inc();
                        }
                    }
                }
                Notification::Firing(alerts) => {
                    if let Some(a) = &alertmanager {
                        if alerts.is_empty() {
                            continue;
                        }
                        let ends = now_ms() + ahead_ms;
                        let body: Vec<Value> = alerts.iter().map(|e| e.alertmanager_body(&base, ends)).collect();
                        if a.try_send(body).is_err() {
                            metrics.alert_notifications.with_label_values(&["alertmanager", "dropped"]).inc();
                        }
                    }
                }
            }
        }
    });
    tx
}

fn log_transition(e: &AlertEvent) {
    let value = e.value_s.unwrap_or(f64::NAN);
    match e.state {
        Transition::Firing => tracing::warn!(alert = e.alertname(), env = %e.env, function = %e.function, operation = %e.operation, quantile = e.quantile, value_s = value, budget_s = e.budget_s, samples = e.samples, "Latency budget exceeded: alert firing."),
        Transition::Resolved => tracing::info!(alert = e.alertname(), env = %e.env, function = %e.function, operation = %e.operation, budget_s = e.budget_s, "Latency back within budget: alert resolved."),
        other => tracing::info!(alert = e.alertname(), state = other.name(), env = %e.env, function = %e.function, operation = %e.operation, value_s = value, budget_s = e.budget_s, "Alert state changed."),
    }
}

/// POSTs `body` with retries; true when delivered.
async fn post(client: &reqwest::Client, url: &str, body: &Value, shutdown: &CancellationToken) -> bool {
    for attempt in 1..=ATTEMPTS {
        match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::debug!(status = r.status().as_u16(), attempt, "Alert delivery refused."),
            // The error can carry the URL, which may hold a secret: log only its kind.
            Err(e) => tracing::debug!(timeout = e.is_timeout(), connect = e.is_connect(), attempt, "Alert delivery failed."),
        }
        if attempt < ATTEMPTS {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))) => {}
            }
        }
    }
    false
}

async fn webhook_loop(client: reqwest::Client, config: Arc<Config>, metrics: Metrics, mut rx: mpsc::Receiver<AlertEvent>, shutdown: CancellationToken) {
    let url = config.alerts.webhook_url.expose().to_string();
    loop {
        let e = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = rx.recv() => match e { Some(e) => e, None => break },
        };
        let ok = post(&client, &url, &e.webhook_body(&config.alerts.external_url), &shutdown).await;
        metrics.alert_notifications.with_label_values(&["webhook", if ok { "ok" } else { "error" }]).inc();
        if !ok {
            tracing::warn!(env = %e.env, function = %e.function, operation = %e.operation, state = %e.state, "Webhook delivery failed after retries.");
        }
    }
}

async fn alertmanager_loop(client: reqwest::Client, config: Arc<Config>, metrics: Metrics, mut rx: mpsc::Receiver<Vec<Value>>, shutdown: CancellationToken) {
    // A secret (it may carry basic-auth credentials): never logged.
    let url = format!("{}/api/v2/alerts", config.alerts.alertmanager_url.expose().trim_end_matches('/'));
    loop {
        let body = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = rx.recv() => match b { Some(b) => b, None => break },
        };
        let n = body.len();
        let ok = post(&client, &url, &Value::Array(body), &shutdown).await;
        metrics.alert_notifications.with_label_values(&["alertmanager", if ok { "ok" } else { "error" }]).inc();
        if !ok {
            tracing::warn!(alerts = n, "Alertmanager did not accept alerts after retries.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AlertEvent {
        AlertEvent {
            budget: "bedrock-p95".into(),
            account: "default".into(),
            region: String::new(),
            env: "Dev".into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: "Bedrock.InvokeModel".into(),
            quantile: 0.95,
            severity: "warning".into(),
            state: Transition::Firing,
            value_s: Some(9.1),
            budget_s: 5.0,
            window: Duration::from_secs(300),
            samples: 42,
            starts_at_ms: 1_795_341_600_000,
            ends_at_ms: None,
            regression: None,
            evidence: Vec::new(),
            explains: Vec::new(),
        }
    }

    #[test]
    fn bodies_carry_labels_values_and_times() {
        let w = event().webhook_body("http://127.0.0.1:9750");
        assert_eq!(w["labels"]["alertname"], "LatencyBudgetExceeded");
        assert_eq!(w["labels"]["quantile"], "0.95");
        assert_eq!(w["samples"], 42);
        assert_eq!(w["startsAt"], "2026-11-22T10:00:00.000Z");
        assert!(w["endsAt"].is_null());
        assert!(w["annotations"]["summary"].as_str().unwrap().contains("9.100s against a budget of 5.000s"));
        let a = event().alertmanager_body("http://x", 1_795_341_660_000);
        assert_eq!(a["endsAt"], "2026-11-22T10:01:00.000Z");
        assert!(a["generatorURL"].as_str().unwrap().starts_with("http://x/api/v1/operations?since=5m&env=Dev"));
        assert!(a["labels"].get("account").is_none(), "no account label without [[accounts]]: the alert's identity is unchanged");
    }

    #[test]
    fn an_accounts_alert_names_its_account_and_region() {
        let e = AlertEvent { account: "prod".into(), region: "eu-west-1".into(), ..event() };
        let a = e.alertmanager_body("http://x", 1);
        assert_eq!((a["labels"]["account"].as_str(), a["labels"]["region"].as_str()), (Some("prod"), Some("eu-west-1")));
        assert!(e.summary().contains("(Dev, prod eu-west-1)"), "{}", e.summary());
    }
}
