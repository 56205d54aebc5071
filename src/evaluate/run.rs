//! The evaluator task: reads newly stored events (by row id, so every stored event is seen
//! once, whatever its event time), keeps the windows, judges every (budget, env, function,
//! operation), steps each alert through `alert::step`, persists the changes, hands
//! transitions and the firing set to the alert sinks without waiting for them, and hands
//! each evaluation's [`Snapshot`] to the metrics exposition ([`Publish`]). In a fleet every
//! node evaluates (so any node's metrics show every series) but only the holder of the
//! evaluator's lease steps, persists (under its fence) and notifies alerts; the others show
//! the phases it stored.

use super::alert::step;
use super::budgets::match_budget;
use super::window::{SeriesKey, Windows};
use super::{BudgetStatus, Publish, Shared, Snapshot, WindowSummary};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::alert::{AlertEvent, AlertState, Notification, Phase, Target, Transition, alert_key, split_alert_key};
use crate::store::alerts::AlertRow;
use crate::store::{Store, StoreError};
use crate::clock::now_ms;
use crate::cluster::work::{Grant, Work};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Rows read per query when catching up.
const READ_CHUNK: i64 = 50_000;

pub struct Evaluator {
    store: Store,
    config: Arc<Config>,
    metrics: Metrics,
    shared: Shared,
    sink: Option<mpsc::Sender<Notification>>,
    publisher: Option<Arc<dyn Publish>>,
    windows: Windows,
    last_id: i64,
    phases: BTreeMap<String, Phase>,
    /// Durations read since the last evaluation, per series, for the next snapshot.
    observed: HashMap<SeriesKey, Vec<f64>>,
    /// In a fleet, only the holder of the evaluator's lease judges alerts (persists and
    /// notifies); the others follow the stored phases, so any node's metrics and API show
    /// the fleet's alerts.
    work: Work,
    /// Whether the last evaluation was the leader's (its phases are then this node's own).
    leading: bool,
}

impl Evaluator {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        metrics: Metrics,
        shared: Shared,
        sink: Option<mpsc::Sender<Notification>>,
        publisher: Option<Arc<dyn Publish>>,
    ) -> Evaluator {
        Evaluator {
            store,
            config,
            metrics,
            shared,
            sink,
            publisher,
            windows: Windows::default(),
            last_id: 0,
            phases: BTreeMap::new(),
            observed: HashMap::new(),
            work: Work::solo(),
            leading: true,
        }
    }

    /// Judges alerts only while `work` holds the evaluator's lease (see [`Evaluator::work`]).
    pub fn under(mut self, work: Work) -> Evaluator {
        self.work = work;
        self
    }

    /// The longest window anything needs.
    fn horizon(&self) -> Duration {
        self.config
            .budgets
            .iter()
            .map(|b| b.window)
            .chain([self.config.metrics.quantile_window])
            .max()
            .unwrap_or(Duration::from_secs(300))
    }

    /// Loads alert phases and the events still inside the windows.
    pub async fn restore(&mut self, now: i64) -> Result<(), StoreError> {
        self.restore_phases().await?;
        self.reload_windows(now).await
    }

    async fn restore_phases(&mut self) -> Result<(), StoreError> {
        let (phases, unreadable) = self.store.alert_phases().await?;
        if !unreadable.is_empty() && self.leading {
            self.metrics.internal_errors.with_label_values(&["alert_phase_decode"]).inc_by(unreadable.len() as u64);
            tracing::warn!(alerts = ?unreadable, "Stored alert phases that no longer decode; those alerts start afresh.");
        }
        self.phases = phases.into_iter().collect();
        Ok(())
    }

    /// Refills the windows with the stored events inside the horizon and puts the watermark
    /// at the newest id read, so the next reads start exactly after them.
    async fn reload_windows(&mut self, now: i64) -> Result<(), StoreError> {
        let from = now - self.horizon().as_millis() as i64;
        let high_water = self.store.event_id_high_water().await?;
        // Only ids up to the high water read first: later ones are read as new events, once.
        let events = self.store.events_from(from, high_water).await?;
        self.windows = Windows::default();
        for e in events {
            self.windows.insert(SeriesKey { account: e.account, region: e.region, env: e.env, function: e.function, operation: e.operation, source: e.source }, e.time_ms, e.duration_s, e.error);
        }
        self.last_id = high_water;
        Ok(())
    }

    /// Reads events stored since the last call into the windows (and the next snapshot).
    async fn ingest_new(&mut self, now: i64) -> Result<usize, StoreError> {
        // Ids only grow; a watermark above every id ever handed out means the database was
        // replaced under us (a restored backup): start over from what it holds, loudly,
        // rather than wait for ids to pass the old watermark while alerts stay blind.
        let high_water = self.store.event_id_high_water().await?;
        if self.last_id > high_water {
            tracing::warn!(watermark = self.last_id, high_water, "The evaluator's event watermark is ahead of the database; reloading the windows.");
            self.metrics.watermark_resets.with_label_values(&["evaluator"]).inc();
            self.reload_windows(now).await?;
        }
        let mut total = 0;
        loop {
            let events = self.store.events_after(self.last_id, READ_CHUNK).await?;
            let n = events.len();
            for e in events {
                self.last_id = e.id;
                let (t, d, error) = (e.time_ms, e.duration_s, e.error);
                let key = SeriesKey { account: e.account, region: e.region, env: e.env, function: e.function, operation: e.operation, source: e.source };
                match self.observed.get_mut(&key) {
                    Some(durations) => durations.push(d),
                    None => {
                        self.observed.insert(key.clone(), vec![d]);
                    }
                }
                self.windows.insert(key, t, d, error);
            }
            total += n;
            if (n as i64) < READ_CHUNK {
                return Ok(total);
            }
        }
    }

    /// One evaluation at `now`: returns the budget statuses.
    pub async fn evaluate(&mut self, now: i64) -> Result<Vec<BudgetStatus>, StoreError> {
        let started = Instant::now();
        self.ingest_new(now).await?;
        self.windows.prune(now - self.horizon().as_millis() as i64);
        let grant = self.work.grant(crate::cluster::EVALUATOR);
        let leading = grant != Grant::NotHeld;
        if !leading || !self.leading {
            // A follower shows what the leader stored; a new leader takes over from it, so a
            // firing alert stays firing and is not notified again.
            self.restore_phases().await?;
        }
        self.leading = leading;
        let fence = match grant {
            Grant::Held(f) => Some(f),
            _ => None,
        };
        let read = started.elapsed();

        // Judge every operation seen, and every alert still active even if its events stopped.
        let mut targets: BTreeSet<Target> = self
            .windows
            .series
            .keys()
            .map(|k| Target {
                account: k.account.clone(),
                region: k.region.clone(),
                env: k.env.clone(),
                function: k.function.clone(),
                operation: k.operation.clone(),
            })
            .collect();
        for key in self.phases.keys() {
            if let Some((_, t)) = split_alert_key(key) {
                targets.insert(t);
            }
        }
        let mut statuses = Vec::new();
        let mut changed = Vec::new();
        let mut transitions: Vec<(i64, AlertRow, Transition)> = Vec::new();
        let mut current: BTreeSet<String> = BTreeSet::new();
        for t in &targets {
            let Some((_, budget)) = match_budget(&self.config.budgets, t) else { continue };
            let Some((quantile, threshold)) = budget.threshold() else { continue };
            let name = budget.display_name();
            let stats = self.windows.merged(t, now, budget.window.as_millis() as i64);
            let observed = (stats.count > 0).then(|| stats.quantile(quantile));
            let breached = stats.count >= budget.min_samples && observed.is_some_and(|v| v > threshold.as_secs_f64());
            let key = alert_key(&name, t);
            current.insert(key.clone());
            let prev = self.phases.get(&key).copied().unwrap_or(Phase::Inactive);
            let (next, transition) = if leading {
                step(prev, breached, now, budget.for_.as_millis() as i64, budget.keep_firing_for.as_millis() as i64)
            } else {
                (prev, None)
            };
            let row = AlertRow {
                key: key.clone(),
                budget: name.clone(),
                account: t.account.clone(),
                region: t.region.clone(),
                env: t.env.clone(),
                function: t.function.clone(),
                operation: t.operation.clone(),
                quantile,
                phase: next,
                value_s: observed,
                budget_s: threshold.as_secs_f64(),
                samples: stats.count,
                severity: budget.severity.clone(),
            };
            if next != prev || (next != Phase::Inactive && transition.is_none()) {
                changed.push(row.clone());
            }
            if let Some(tr) = transition {
                transitions.push((now, row.clone(), tr));
            }
            if next == Phase::Inactive {
                self.phases.remove(&key);
            } else {
                self.phases.insert(key, next);
            }
            statuses.push(BudgetStatus {
                budget: name,
                account: t.account.clone(),
                region: t.region.clone(),
                env: t.env.clone(),
                function: t.function.clone(),
                operation: t.operation.clone(),
                quantile,
                budget_s: threshold.as_secs_f64(),
                observed_s: observed,
                samples: stats.count,
                breached,
                state: next.state(),
                severity: budget.severity.clone(),
            });
        }
        // Alerts of budgets no longer configured: resolve them rather than keep them forever.
        let orphans: Vec<String> = if leading { self.phases.keys().filter(|k| !current.contains(*k)).cloned().collect() } else { Vec::new() };
        for key in orphans {
            if let (Some(Phase::Firing { .. } | Phase::Pending { .. }), Some((budget, t))) = (self.phases.remove(&key), split_alert_key(&key)) {
                let row = AlertRow {
                    key: key.clone(),
                    budget: budget.into(),
                    account: t.account,
                    region: t.region,
                    env: t.env,
                    function: t.function,
                    operation: t.operation,
                    quantile: 0.95,
                    phase: Phase::Inactive,
                    value_s: None,
                    budget_s: 0.0,
                    samples: 0,
                    severity: "warning".into(),
                };
                changed.push(row.clone());
                transitions.push((now, row, Transition::Resolved));
            }
        }

        let refs: Vec<(i64, &AlertRow, Transition)> = transitions.iter().map(|(t, r, tr)| (*t, r, *tr)).collect();
        if leading && (!changed.is_empty() || !refs.is_empty()) {
            if let Err(e) = self.store.save_alerts(&changed, &refs, now, fence.as_ref()).await {
                // Not saved, so not notified; the phases are read back from the store next time.
                self.leading = false;
                return Err(e);
            }
        }
        if leading {
            self.notify(&statuses, &transitions, now);
        }
        self.shared.set(statuses.clone());
        // The exposition is set and rendered here, once per evaluation, not per scrape.
        let rendering = Instant::now();
        let snapshot = self.snapshot(now, Arc::new(statuses.clone()));
        if let Some(publisher) = self.publisher.clone() {
            if let Err(e) = tokio::task::spawn_blocking(move || publisher.publish(&snapshot)).await {
                self.metrics.internal_errors.with_label_values(&["metrics_render"]).inc();
                tracing::warn!(error = %e, "Rendering the per-series metrics failed; scrapes keep the previous ones.");
            }
        }
        self.metrics.evaluation_seconds.with_label_values(&["render"]).set(rendering.elapsed().as_secs_f64());
        self.metrics.evaluation_seconds.with_label_values(&["read"]).set(read.as_secs_f64());
        self.metrics.evaluation_seconds.with_label_values(&["total"]).set(started.elapsed().as_secs_f64());
        self.metrics.evaluations.inc();
        Ok(statuses)
    }

    /// This evaluation's results for the exposition: the durations read since the last one,
    /// every series' `metrics.quantile_window`, and the judged budgets.
    fn snapshot(&mut self, now: i64, statuses: Arc<Vec<BudgetStatus>>) -> Snapshot {
        let window = self.config.metrics.quantile_window.as_millis() as i64;
        let windows = self
            .windows
            .series
            .iter()
            .map(|(key, series)| {
                let (values, errors) = series.window(now, window);
                let summary = (!values.is_empty()).then(|| {
                    let sum = values.iter().sum();
                    WindowSummary { stats: super::window::stats(values, errors), sum }
                });
                (key.clone(), summary)
            })
            .collect();
        Snapshot { observed: std::mem::take(&mut self.observed).into_iter().collect(), windows, statuses }
    }

    fn window_of(&self, budget: &str) -> Duration {
        self.config.budgets.iter().find(|b| b.display_name() == budget).map(|b| b.window).unwrap_or_default()
    }

    fn notify(&self, statuses: &[BudgetStatus], transitions: &[(i64, AlertRow, Transition)], now: i64) {
        let Some(sink) = &self.sink else { return };
        let event = |row: &AlertRow, state: Transition, started_ms: Option<i64>| AlertEvent {
            budget: row.budget.clone(),
            account: row.account.clone(),
            region: row.region.clone(),
            env: row.env.clone(),
            function: row.function.clone(),
            operation: row.operation.clone(),
            quantile: row.quantile,
            severity: row.severity.clone(),
            state,
            value_s: row.value_s,
            budget_s: row.budget_s,
            window: self.window_of(&row.budget),
            samples: row.samples,
            starts_at_ms: started_ms.unwrap_or(now),
            ends_at_ms: None,
        };
        let mut out = Vec::new();
        for (t, row, transition) in transitions {
            let started = match self.phases.get(&row.key) {
                Some(Phase::Firing { active_at, .. } | Phase::Pending { active_at }) => Some(*active_at),
                _ => None,
            };
            let mut e = event(row, *transition, started);
            if matches!(transition, Transition::Resolved | Transition::Cleared) {
                e.ends_at_ms = Some(*t);
            }
            out.push(Notification::Transition(e));
        }
        // Every evaluation re-sends the firing set, so Alertmanager never auto-resolves a live alert.
        let firing: Vec<AlertEvent> = statuses
            .iter()
            .filter(|s| s.state == AlertState::Firing)
            .filter_map(|s| {
                let t = Target {
                    account: s.account.clone(),
                    region: s.region.clone(),
                    env: s.env.clone(),
                    function: s.function.clone(),
                    operation: s.operation.clone(),
                };
                let key = alert_key(&s.budget, &t);
                let Some(Phase::Firing { fired_at, .. }) = self.phases.get(&key) else { return None };
                Some(AlertEvent {
                    budget: s.budget.clone(),
                    account: s.account.clone(),
                    region: s.region.clone(),
                    env: s.env.clone(),
                    function: s.function.clone(),
                    operation: s.operation.clone(),
                    quantile: s.quantile,
                    severity: s.severity.clone(),
                    state: Transition::Firing,
                    value_s: s.observed_s,
                    budget_s: s.budget_s,
                    window: self.window_of(&s.budget),
                    samples: s.samples,
                    starts_at_ms: *fired_at,
                    ends_at_ms: None,
                })
            })
            .collect();
        out.push(Notification::Firing(firing));
        for n in out {
            if sink.try_send(n).is_err() {
                self.metrics.alert_notifications.with_label_values(&["queue", "dropped"]).inc();
            }
        }
    }
}

/// Runs the evaluator every `alerts.evaluation_interval` until shutdown.
pub async fn run(mut evaluator: Evaluator, shutdown: CancellationToken) -> anyhow::Result<()> {
    evaluator.restore(now_ms()).await?;
    let mut tick = tokio::time::interval(evaluator.config.alerts.evaluation_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = evaluator.evaluate(now_ms()).await {
            evaluator.metrics.store_errors.with_label_values(&[e.code()]).inc();
            tracing::warn!(error = %e, "Evaluation failed; retrying next interval.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BudgetConfig;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;

    fn ev(i: usize, env: &str, op: &str, d: f64, t: i64) -> TimingEvent {
        TimingEvent {
            time_ms: t,
            env: env.into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: op.into(),
            source: Source::Xray,
            duration_s: d,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: format!("{env}{op}{i}{t}"),
            attributes: vec![],
        }
    }

    fn config() -> Arc<Config> {
        let mut c = Config::default();
        c.budgets.push(BudgetConfig {
            operation: "Bedrock.InvokeModel".into(),
            p95: Some(Duration::from_secs(5)),
            window: Duration::from_secs(60),
            for_: Duration::from_secs(20),
            keep_firing_for: Duration::from_secs(10),
            min_samples: 10,
            ..BudgetConfig::default()
        });
        Arc::new(c)
    }

    /// Retention empties the table while the evaluator runs (a Dev account quiet for longer
    /// than `storage.retention`); the slow events that arrive next must still fire the alert.
    /// With reused ids they hid below the evaluator's watermark.
    #[tokio::test]
    async fn an_alert_fires_after_retention_emptied_the_table() {
        let store = Store::open_memory().await.unwrap();
        let t0 = 1_000_000_000;
        let old: Vec<TimingEvent> = (0..500).map(|i| ev(i, "Dev", "Bedrock.InvokeModel", 1.0, t0 + i as i64)).collect();
        store.commit(&Batch { events: old, ..Batch::default() }).await.unwrap();
        let metrics = Metrics::new();
        let mut e = Evaluator::new(store.clone(), config(), metrics.clone(), Shared::default(), None, None);
        e.restore(t0).await.unwrap();
        e.evaluate(t0 + 1_000).await.unwrap();
        assert_eq!(e.last_id, 500);
        assert_eq!(store.purge_before(i64::MAX).await.unwrap(), 500);
        assert_eq!(store.count_events(None).await.unwrap(), 0);

        let now = t0 + 10_000_000;
        let slow: Vec<TimingEvent> = (0..30).map(|i| ev(i, "Dev", "Bedrock.InvokeModel", 9.0, now - 30_000 + i as i64 * 1000)).collect();
        store.commit(&Batch { events: slow, ..Batch::default() }).await.unwrap();
        let s = e.evaluate(now).await.unwrap();
        let dev = s.iter().find(|s| s.env == "Dev").expect("the new events are judged");
        assert_eq!((dev.samples, dev.breached, dev.state), (30, true, AlertState::Pending), "{dev:?}");
        let s = e.evaluate(now + 20_000).await.unwrap();
        assert_eq!(s.iter().find(|s| s.env == "Dev").unwrap().state, AlertState::Firing);
    }

    /// A watermark above every id the database ever handed out (it was replaced) is noticed,
    /// counted, and the windows are reloaded from what the database holds.
    #[tokio::test]
    async fn a_watermark_ahead_of_the_database_reloads_the_windows() {
        let store = Store::open_memory().await.unwrap();
        let now = 2_000_000_000;
        let events: Vec<TimingEvent> = (0..20).map(|i| ev(i, "Dev", "Bedrock.InvokeModel", 9.0, now - 20_000 + i as i64 * 1000)).collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let metrics = Metrics::new();
        let mut e = Evaluator::new(store.clone(), config(), metrics.clone(), Shared::default(), None, None);
        e.last_id = 1_000_000;
        let s = e.evaluate(now).await.unwrap();
        assert_eq!(s.iter().find(|s| s.env == "Dev").map(|s| s.samples), Some(20));
        assert_eq!(e.last_id, 20);
        assert_eq!(metrics.watermark_resets.with_label_values(&["evaluator"]).get(), 1);
        // Counted once: the next evaluation reads on normally.
        e.evaluate(now + 1_000).await.unwrap();
        assert_eq!(metrics.watermark_resets.with_label_values(&["evaluator"]).get(), 1);
    }

}
