//! The evaluator task: reads newly stored events (by row id, so every stored event is seen
//! once, whatever its event time), keeps the windows, judges every (budget, env, function,
//! operation) and, with `[anomaly]`, every operation against its learned baseline (read
//! through [`Baselines`] every few minutes), steps each alert through `alert::step`,
//! persists the changes, tells the alert sinks one alert per cause (`group`: linked
//! operations folded, function-level ones explained) without waiting for them, and hands
//! each evaluation's [`Snapshot`] to the metrics exposition ([`Publish`]). In a fleet every
//! node evaluates (so any node's metrics show every series) but only the holder of the
//! evaluator's lease steps, persists (under its fence) and notifies alerts; the others show
//! the phases it stored.

use super::alert::step;
use super::anomaly::{BaselineSet, Baselines, Rule, Verdict, judge, load_baselines};
use super::budgets::match_budget;
use super::group::{Change, Group, Member, change, group};
use super::window::{SeriesKey, Windows};
use super::{AnomalyStatus, BudgetStatus, Publish, Shared, Snapshot, WindowSummary};
use crate::cause::{Links, is_cold_start};
use crate::stats::Dist;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::model::alert::{ALERT_NAME, AlertEvent, AlertState, Evidence, Notification, Phase, REGRESSION_ALERT_NAME, Regression, Target, Transition, alert_key, split_alert_key};
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
    /// `[anomaly]`'s rule when it is enabled.
    anomaly_rule: Option<Rule>,
    /// Where baselines are read from (the daemon hands the reports' reader in).
    baseline_source: Option<Arc<dyn Baselines>>,
    baselines: BaselineSet,
    /// Operations linked by config and learned from the data, and when they were learned.
    links: Links,
    links_ms: Option<i64>,
    /// What the receivers were last told per cause (None until the first notification:
    /// then what was active before counts as told).
    told: Option<HashMap<(&'static str, Target), (AlertState, AlertEvent)>>,
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
            anomaly_rule: config.anomaly.enabled.then(|| Rule::from_config(&config.anomaly)),
            baseline_source: None,
            baselines: BaselineSet::default(),
            links: Links::configured(&config.operations),
            links_ms: None,
            told: None,
            config,
        }
    }

    /// Reads learned baselines through `source` (`[anomaly]`).
    pub fn with_baselines(mut self, source: Arc<dyn Baselines>) -> Evaluator {
        self.baseline_source = Some(source);
        self
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
            .chain(self.config.anomaly.enabled.then_some(self.config.anomaly.window))
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
        if !leading {
            // What receivers were told is the leader's to know; on taking over, what was
            // active counts as told.
            self.told = None;
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
        let mut judged = Judged::default();
        let config = self.config.clone();
        for t in &targets {
            let Some((_, budget)) = match_budget(&config.budgets, t) else { continue };
            let Some((quantile, threshold)) = budget.threshold() else { continue };
            let name = budget.display_name();
            let stats = self.windows.merged(t, now, budget.window.as_millis() as i64);
            let observed = (stats.count > 0).then(|| stats.quantile(quantile));
            let breached = stats.count >= budget.min_samples && observed.is_some_and(|v| v > threshold.as_secs_f64());
            let row = AlertRow {
                key: alert_key(&name, t),
                budget: name.clone(),
                account: t.account.clone(),
                region: t.region.clone(),
                env: t.env.clone(),
                function: t.function.clone(),
                operation: t.operation.clone(),
                quantile,
                phase: Phase::Inactive,
                value_s: observed,
                budget_s: threshold.as_secs_f64(),
                samples: stats.count,
                severity: budget.severity.clone(),
            };
            let life = Life { for_: budget.for_, keep_firing_for: budget.keep_firing_for, window: budget.window };
            let next = self.advance(&mut judged, row, breached, leading, now, life, None);
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
        let mut anomalies = self.judge_anomalies(&targets, now, leading, &mut judged).await;
        // Alerts of budgets no longer configured (or of anomalies once `[anomaly]` is off):
        // resolve them rather than keep them forever.
        let orphans: Vec<String> = if leading { self.phases.keys().filter(|k| !judged.current.contains(*k)).cloned().collect() } else { Vec::new() };
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
                judged.changed.push(row.clone());
                judged.transitions.push((now, row, Transition::Resolved));
            }
        }

        let refs: Vec<(i64, &AlertRow, Transition)> = judged.transitions.iter().map(|(t, r, tr)| (*t, r, *tr)).collect();
        if leading && (!judged.changed.is_empty() || !refs.is_empty()) {
            if let Err(e) = self.store.save_alerts(&judged.changed, &refs, now, fence.as_ref()).await {
                // Not saved, so not notified; the phases are read back from the store next time.
                self.leading = false;
                return Err(e);
            }
        }
        let groups = group(&judged.alerts.iter().map(|a| a.member.clone()).collect::<Vec<_>>(), &self.links);
        for g in &groups {
            for &i in &g.members {
                let a = &judged.alerts[i];
                if let Some(s) = a.anomaly.and_then(|k| anomalies.get_mut(k)) {
                    s.cause = g.target.operation.clone();
                    s.explained_by = g.explained_by.clone();
                }
            }
        }
        if leading {
            self.notify(&judged, &groups, now);
        }
        self.shared.set(statuses.clone());
        let anomalies = Arc::new(anomalies);
        self.shared.set_anomalies(anomalies.clone());
        // The exposition is set and rendered here, once per evaluation, not per scrape.
        let rendering = Instant::now();
        let snapshot = self.snapshot(now, Arc::new(statuses.clone()), anomalies);
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

    /// Steps one alert through its life cycle (only the leader steps; a follower keeps the
    /// stored phase), records what must be saved and told, and returns its phase.
    fn advance(&mut self, j: &mut Judged, mut row: AlertRow, breached: bool, leading: bool, now: i64, life: Life, anomaly: Option<usize>) -> Phase {
        let key = row.key.clone();
        j.current.insert(key.clone());
        let prev = self.phases.get(&key).copied().unwrap_or(Phase::Inactive);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let (next, transition) = if leading { step(prev, breached, now, ms(life.for_), ms(life.keep_firing_for)) } else { (prev, None) };
        row.phase = next;
        if next != prev || (next != Phase::Inactive && transition.is_none()) {
            j.changed.push(row.clone());
        }
        if let Some(tr) = transition {
            j.transitions.push((now, row.clone(), tr));
        }
        if next == Phase::Inactive {
            self.phases.remove(&key);
        } else {
            self.phases.insert(key, next);
        }
        let alertname = if anomaly.is_some() { REGRESSION_ALERT_NAME } else { ALERT_NAME };
        let target = Target {
            account: row.account.clone(),
            region: row.region.clone(),
            env: row.env.clone(),
            function: row.function.clone(),
            operation: row.operation.clone(),
        };
        let member = Member { alertname, target, prev: prev.state(), next: next.state() };
        j.alerts.push(JudgedAlert { member, row, prev, window: life.window, regression: None, anomaly });
        next
    }

    /// Judges every target against its learned baseline (`[anomaly]`); cold-start
    /// operations are never judged.
    async fn judge_anomalies(&mut self, targets: &BTreeSet<Target>, now: i64, leading: bool, j: &mut Judged) -> Vec<AnomalyStatus> {
        let Some(rule) = self.anomaly_rule else { return Vec::new() };
        self.refresh_baselines(now, &rule).await;
        self.refresh_links(now).await;
        let a = &self.config.anomaly;
        let life = Life { for_: a.for_, keep_firing_for: a.keep_firing_for, window: a.window };
        let empty = Dist::default();
        let mut out = Vec::new();
        for t in targets {
            if is_cold_start(&t.operation) {
                continue;
            }
            let recent = Dist::of_values(&self.windows.merged_values(t, now, rule.window_ms));
            let (base, span) = match self.baselines.dists.get(t) {
                Some(d) => (d, self.baselines.span_of(&t.function, &t.operation)),
                None => (&empty, None),
            };
            let jd = judge(&recent, base, &rule);
            let base_n = base.n;
            let seasonal = self.baselines.seasonal_of(&t.function, &t.operation);
            let regression = Regression {
                baseline_p95_s: jd.baseline_p95,
                ratio: jd.ratio,
                p_value: jd.p_value,
                baseline_samples: jd.baseline_samples,
                baseline_from_ms: span.map_or(0, |s| s.0),
                baseline_to_ms: span.map_or(0, |s| s.1),
                seasonal,
            };
            let row = AlertRow {
                key: alert_key(REGRESSION_ALERT_NAME, t),
                budget: REGRESSION_ALERT_NAME.into(),
                account: t.account.clone(),
                region: t.region.clone(),
                env: t.env.clone(),
                function: t.function.clone(),
                operation: t.operation.clone(),
                quantile: 0.95,
                phase: Phase::Inactive,
                value_s: (recent.n > 0).then_some(jd.recent_p95),
                budget_s: jd.baseline_p95,
                samples: recent.n,
                severity: "warning".into(),
            };
            let breached = jd.verdict == Verdict::Regression;
            let next = self.advance(j, row, breached, leading, now, life, Some(out.len()));
            if let Some(last) = j.alerts.last_mut() {
                last.regression = Some(regression);
            }
            out.push(AnomalyStatus {
                account: t.account.clone(),
                region: t.region.clone(),
                env: t.env.clone(),
                function: t.function.clone(),
                operation: t.operation.clone(),
                recent_p95_s: (recent.n > 0).then_some(jd.recent_p95),
                baseline_p95_s: (base_n > 0).then_some(jd.baseline_p95),
                ratio: (recent.n > 0 && base_n > 0 && jd.baseline_p95 > 0.0).then_some(jd.ratio),
                p_value: jd.p_value,
                recent_samples: jd.recent_samples,
                baseline_samples: jd.baseline_samples,
                baseline_from_ms: span.map(|s| s.0),
                baseline_to_ms: span.map(|s| s.1),
                baseline_kind: if seasonal { "hour_of_week" } else { "trailing" },
                verdict: jd.verdict.as_str(),
                state: next.state(),
                cause: t.operation.clone(),
                explained_by: None,
            });
        }
        out
    }

    /// Reloads the baselines when they are older than a third of the window (at most every
    /// 5 minutes, at least every minute): they move slowly. A failed read keeps the previous
    /// ones (counted and logged).
    async fn refresh_baselines(&mut self, now: i64, rule: &Rule) {
        let every = (rule.window_ms / 3).clamp(60_000, 300_000);
        if self.baselines.loaded_ms.is_some_and(|t| now - t < every && now >= t) {
            return;
        }
        let Some(source) = self.baseline_source.clone() else { return };
        match load_baselines(&self.store, source.as_ref(), rule, now).await {
            Ok(b) => self.baselines = b,
            Err(e) => {
                self.metrics.store_errors.with_label_values(&[e.code()]).inc();
                tracing::warn!(error = %e, "Reading the learned baselines failed; judging against the previous ones.");
                // Retried at the next evaluation, not after a whole period.
            }
        }
    }

    /// Relearns which operations time the same call from the last hour's invocations, every
    /// minute.
    async fn refresh_links(&mut self, now: i64) {
        if self.links_ms.is_some_and(|t| now - t < LINKS_EVERY_MS && now >= t) {
            return;
        }
        self.links_ms = Some(now);
        match super::links::read(&self.store, &self.config.operations, now - 3_600_000, now.saturating_add(1)).await {
            Ok(links) => self.links = links,
            Err(e) => tracing::warn!(error = %e, "Reading invocations to learn linked operations failed; keeping the links known."),
        }
    }

    /// This evaluation's results for the exposition: the durations read since the last one,
    /// every series' `metrics.quantile_window`, and the judged budgets and baselines.
    fn snapshot(&mut self, now: i64, statuses: Arc<Vec<BudgetStatus>>, anomalies: Arc<Vec<AnomalyStatus>>) -> Snapshot {
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
        Snapshot { observed: std::mem::take(&mut self.observed).into_iter().collect(), windows, statuses, anomalies }
    }

    /// Tells the alert receivers, one alert per cause: each group's change against what
    /// they were last told (a function-level group explained by another cause is not told
    /// anything new), and the firing set.
    fn notify(&mut self, j: &Judged, groups: &[Group], now: i64) {
        let Some(sink) = self.sink.clone() else { return };
        let mut told = self.told.take().unwrap_or_else(|| {
            // After a start or a take-over: receivers know what was active before.
            groups
                .iter()
                .filter(|g| g.prev != AlertState::Inactive)
                .map(|g| {
                    let state = if g.prev == AlertState::Firing { Transition::Firing } else { Transition::Pending };
                    ((g.alertname, g.target.clone()), (g.prev, self.group_event(j, g, &g.target.operation, state, Vec::new(), now)))
                })
                .collect()
        });
        let mut out = Vec::new();
        let mut firing = Vec::new();
        let mut answered = std::collections::HashSet::new();
        for g in groups {
            // A cause told as firing under another of its names (a link learned since) keeps
            // that name: receivers see one alert from start to end.
            let own = (g.alertname, g.target.clone());
            let key = if told.contains_key(&own) {
                own
            } else {
                g.members
                    .iter()
                    .map(|&i| (g.alertname, j.alerts[i].member.target.clone()))
                    .find(|k| told.get(k).is_some_and(|(s, _)| *s == AlertState::Firing))
                    .unwrap_or(own)
            };
            answered.insert(key.clone());
            let was = told.get(&key).map_or(AlertState::Inactive, |(s, _)| *s);
            let silent = g.explained_by.is_some() && was != AlertState::Firing;
            let now_state = if silent { AlertState::Inactive } else { g.next };
            let explains: Vec<String> = groups
                .iter()
                .filter(|o| o.explained_by.as_deref() == Some(g.target.operation.as_str()) && same_place(&o.target, &g.target))
                .filter(|o| o.next != AlertState::Inactive)
                .map(|o| o.target.operation.clone())
                .collect();
            let event = |state: Transition| self.group_event(j, g, &key.1.operation, state, explains.clone(), now);
            match change(was, now_state) {
                Some(Change::Pending) => out.push(event(Transition::Pending)),
                Some(Change::Firing) => out.push(event(Transition::Firing)),
                Some(Change::Resolved) => out.push(event(Transition::Resolved)),
                Some(Change::Cleared) => out.push(event(Transition::Cleared)),
                None => {}
            }
            if now_state == AlertState::Firing {
                firing.push(event(Transition::Firing));
            }
            if now_state == AlertState::Inactive {
                told.remove(&key);
            } else {
                let last = event(if now_state == AlertState::Firing { Transition::Firing } else { Transition::Pending });
                told.insert(key, (now_state, last));
            }
        }
        // Causes told before that no group answers for any more (their alerts went, or a
        // pending one was folded into another cause): resolved, or cleared.
        let gone: Vec<_> = told.keys().filter(|k| !answered.contains(*k)).cloned().collect();
        for key in gone {
            if let Some((state, mut e)) = told.remove(&key) {
                e.state = if state == AlertState::Firing { Transition::Resolved } else { Transition::Cleared };
                e.ends_at_ms = Some(now);
                out.push(e);
            }
        }
        self.told = Some(told);
        let mut all: Vec<Notification> = out.into_iter().map(Notification::Transition).collect();
        // Every evaluation re-sends the firing set, so Alertmanager never auto-resolves a live alert.
        all.push(Notification::Firing(firing));
        for n in all {
            if sink.try_send(n).is_err() {
                self.metrics.alert_notifications.with_label_values(&["queue", "dropped"]).inc();
            }
        }
    }

    /// A group's notification: its lead's numbers under the cause's name, every member's
    /// evidence when there is more than one, and what it explains.
    fn group_event(&self, j: &Judged, g: &Group, name: &str, state: Transition, explains: Vec<String>, now: i64) -> AlertEvent {
        let lead = &j.alerts[g.members[0]];
        let row = &lead.row;
        let phase_of = |a: &JudgedAlert| if a.row.phase == Phase::Inactive { a.prev } else { a.row.phase };
        let starts = g
            .members
            .iter()
            .filter_map(|&i| match phase_of(&j.alerts[i]) {
                Phase::Firing { active_at, fired_at, .. } => Some(if state == Transition::Firing { fired_at } else { active_at }),
                Phase::Pending { active_at } => Some(active_at),
                Phase::Inactive => None,
            })
            .min()
            .unwrap_or(now);
        let evidence = if g.members.len() > 1 {
            g.members
                .iter()
                .map(|&i| {
                    let a = &j.alerts[i];
                    Evidence { operation: a.row.operation.clone(), state: a.member.next, value_s: a.row.value_s, samples: a.row.samples }
                })
                .collect()
        } else {
            Vec::new()
        };
        AlertEvent {
            budget: row.budget.clone(),
            account: row.account.clone(),
            region: row.region.clone(),
            env: row.env.clone(),
            function: row.function.clone(),
            operation: name.to_string(),
            quantile: row.quantile,
            severity: row.severity.clone(),
            state,
            value_s: row.value_s,
            budget_s: row.budget_s,
            window: lead.window,
            samples: row.samples,
            starts_at_ms: starts,
            ends_at_ms: matches!(state, Transition::Resolved | Transition::Cleared).then_some(now),
            regression: lead.regression.clone(),
            evidence,
            explains,
        }
    }
}

fn same_place(a: &Target, b: &Target) -> bool {
    a.account == b.account && a.region == b.region && a.env == b.env && a.function == b.function
}

/// How often links are relearned (a new operation's link is known within this).
const LINKS_EVERY_MS: i64 = 60_000;

/// An alert's timing: `for`, `keep_firing_for`, and the window it judges.
#[derive(Debug, Clone, Copy)]
struct Life {
    for_: Duration,
    keep_firing_for: Duration,
    window: Duration,
}

/// One evaluation's alerts: what to save, what changed, and every alert for grouping.
#[derive(Default)]
struct Judged {
    changed: Vec<AlertRow>,
    transitions: Vec<(i64, AlertRow, Transition)>,
    current: BTreeSet<String>,
    alerts: Vec<JudgedAlert>,
}

struct JudgedAlert {
    member: Member,
    row: AlertRow,
    prev: Phase,
    window: Duration,
    regression: Option<Regression>,
    /// Its index among the anomaly statuses (regression alerts).
    anomaly: Option<usize>,
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
