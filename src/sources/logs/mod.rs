//! The CloudWatch Logs tailer: discovers log groups (names and prefixes, every page, this
//! shard's share), polls each with FilterLogEvents from `checkpoint − ingestion_delay` to
//! now through every page, and commits each page's events with the stream state, the last
//! page also with the checkpoint. Groups are polled concurrently under one account-wide
//! limiter, busy ones more often than idle ones; a deleted or denied group is reported and
//! skipped while the others go on, and a poll that panics is counted and its group polled
//! again after a backoff.
//!
//! Events CloudWatch takes in later than `ingestion_delay` after their time (an ingestion
//! stall) are behind every later poll: a reconciliation sweep re-reads each group's last
//! `reconcile_window` every `reconcile_interval` with the quota the polls leave spare, and
//! stores what is missing (idempotently; counted in `sentinel_log_events_recovered_total`).
//!
//! Only the streams a page holds have their state loaded, so a poll's cost does not grow
//! with the number of streams a group ever had (retention drops idle ones).
//!
//! In a fleet sharing PostgreSQL every node discovers the groups and offers them as units;
//! it polls only the groups whose leases it holds, each page committed under the group's
//! fence, and polls a group it takes over at once, from the checkpoint its last holder left.

pub mod process;
pub mod schedule;

use super::PollError;
use crate::services::Services;
use crate::attribute::Attributor;
use crate::aws::{AwsError, RateLimiter, call};
use crate::model::Checkpoint;
use crate::cluster::work::logs_unit;
use crate::store::{Store, StoreError};
use crate::clock::now_ms;
use process::{PageEvent, StreamMemory, process_page, stream_rows};
use schedule::{PollResult, next_interval};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Checkpoint source name.
pub const SOURCE: &str = "logs";
/// The longest a Lambda invocation runs: its lines can trail its START by this much.
pub const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);
/// Most pages one poll follows before it commits its checkpoint and yields; the next poll
/// resumes there (keeps one huge backlog from starving other groups).
const MAX_PAGES_PER_POLL: usize = 200;

struct GroupSchedule {
    next_due: Instant,
    interval: Duration,
    /// When the reconciliation sweep is next due.
    next_reconcile: Instant,
    /// Explicitly configured groups are kept even when discovery no longer lists them.
    explicit: bool,
    unavailable: Option<String>,
}

/// What a group's task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Poll,
    Reconcile,
}

/// Everything a poll needs, shared by the concurrent polls.
struct Shared {
    ctx: Services,
    client: aws_sdk_cloudwatchlogs::Client,
    limiter: RateLimiter,
    /// The same budget, for the reconciliation sweep: only what the polls leave.
    spare: RateLimiter,
    attributor: Attributor,
    aliases: super::aliases::AliasRefresher,
}

/// Runs the tailer until shutdown.
pub async fn run(ctx: Services, attributor: Attributor) -> anyhow::Result<()> {
    let cfg = ctx.config.logs.clone();
    let limiter = RateLimiter::new(cfg.requests_per_second);
    let shared = Arc::new(Shared {
        client: aws_sdk_cloudwatchlogs::Client::new(&ctx.sdk),
        // A sweep holds its group; it waits for spare quota at most a poll interval per
        // request, then gives up until its next turn rather than hold the group's polls.
        spare: limiter.spare(cfg.poll_interval),
        limiter,
        aliases: super::aliases::AliasRefresher::new(&ctx, attributor.clone()),
        attributor,
        ctx: ctx.clone(),
    });
    let aliases = &shared.aliases;
    aliases.load().await;

    let mut groups: BTreeMap<String, GroupSchedule> = BTreeMap::new();
    let mut next_discovery = Instant::now();
    let mut next_alias_refresh = Instant::now();
    let mut alias_refresh: Option<tokio::task::JoinHandle<()>> = None;
    let mut in_flight: JoinSet<(String, Job, Result<PollResult, PollError>)> = JoinSet::new();
    // Which group and job each task works on, to find them again when the task panics.
    let mut tasks: HashMap<tokio::task::Id, (String, Job)> = HashMap::new();
    let mut running: BTreeSet<String> = BTreeSet::new();
    // In a fleet, the groups whose leases this node holds (one daemon: every group).
    let mut mine: BTreeSet<String> = BTreeSet::new();
    let mut leases = ctx.work.subscribe();

    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let now = Instant::now();
        if now >= next_discovery {
            match discover(&shared).await {
                Ok(found) => {
                    merge_groups(&mut groups, found, &ctx.scope.log_groups, &ctx);
                    ctx.work.offer(&ctx.source_name(SOURCE), groups.keys().map(|g| logs_unit(&ctx.scope.key(g))));
                    ctx.health.success(&ctx.source_name(SOURCE), now_ms());
                }
                Err(e) if e.code == "cancelled" => break,
                Err(e) => {
                    tracing::warn!(error = %e, "Log group discovery failed; keeping the known groups.");
                    ctx.health.failure(&ctx.source_name(SOURCE), format!("discovery: {e}"));
                    if groups.is_empty() {
                        // Nothing else to do yet: retry discovery soon.
                        next_discovery = now + cfg.poll_interval;
                        sleep_or_cancel(&ctx, cfg.poll_interval.min(Duration::from_secs(5))).await;
                        continue;
                    }
                }
            }
            next_discovery = now + cfg.discovery_interval;
        }
        if ctx.config.environments.lambda_aliases && now >= next_alias_refresh && alias_refresh.as_ref().is_none_or(|h| h.is_finished()) {
            let functions: BTreeSet<String> = groups.keys().map(|g| crate::lambda::function_from_log_group(g)).collect();
            // In the background: at ListAliases' 5 calls/s, 200 functions take 40 s, during
            // which no poll would start (tests/scale.rs). A page naming a version not listed
            // yet has its function listed first (`ensure_versions_known`); a function whose
            // listing failed is listed again before its events are stored.
            let shared = shared.clone();
            alias_refresh = Some(ctx.tracker.spawn(async move {
                let _ = shared.aliases.refresh(&functions).await;
            }));
            next_alias_refresh = now + ctx.config.environments.alias_refresh_interval;
        }

        take_leased(&ctx, &mut groups, &mut mine, now);

        // Start every due group, up to the concurrency limit, most overdue first.
        let mut due: Vec<(&String, Instant)> = groups
            .iter()
            .filter(|(g, s)| s.next_due <= now && !running.contains(*g) && mine.contains(*g))
            .map(|(g, s)| (g, s.next_due))
            .collect();
        due.sort_by_key(|(_, t)| *t);
        let polls_due = !due.is_empty();
        let mut start = |group: &String, job: Job, running: &mut BTreeSet<String>| {
            let group = group.clone();
            running.insert(group.clone());
            let shared = shared.clone();
            let task = (group.clone(), job);
            let handle = in_flight.spawn(async move {
                let r = match job {
                    Job::Poll => poll_group(&shared, &group).await,
                    Job::Reconcile => reconcile_group(&shared, &group).await,
                };
                (group, job, r)
            });
            tasks.insert(handle.id(), task);
        };
        for (group, _) in due.into_iter().take(cfg.max_concurrency.saturating_sub(running.len())) {
            start(group, Job::Poll, &mut running);
        }
        // Sweeps only when no poll waits for a slot; their AWS calls use spare quota too.
        if !polls_due && !cfg.reconcile_window.is_zero() {
            let sweeps: Vec<&String> = groups
                .iter()
                .filter(|(g, s)| s.next_reconcile <= now && s.unavailable.is_none() && !running.contains(*g) && mine.contains(*g))
                .map(|(g, _)| g)
                .collect();
            for group in sweeps.into_iter().take(cfg.max_concurrency.saturating_sub(running.len()).min(1)) {
                start(group, Job::Reconcile, &mut running);
            }
        }

        let wake = groups
            .iter()
            .filter(|(g, _)| !running.contains(*g) && mine.contains(*g))
            .flat_map(|(_, s)| [s.next_due, if cfg.reconcile_window.is_zero() { s.next_due } else { s.next_reconcile }])
            .chain([next_discovery])
            .min()
            .unwrap_or(next_discovery);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let Some((group, job, result)) = settled(done, &mut tasks) else { continue };
                running.remove(&group);
                if matches!(result, Err(PollError::Panicked)) {
                    ctx.metrics.task_restarts.with_label_values(&["log_group_poll"]).inc();
                    tracing::error!(log_group = %group, ?job, "A log group task panicked; the group is polled again after a backoff.");
                    ctx.health.key_failure(&ctx.source_name(SOURCE), &group, format!("{group}: poll panicked"));
                }
                match job {
                    Job::Poll => finish_poll(&ctx, &mut groups, &group, result),
                    Job::Reconcile => finish_reconcile(&ctx, &mut groups, &group, result),
                }
                if !mine.contains(&group) {
                    // Its lease went while it ran (the database was away, say): how it
                    // failed is not this node's to report; the group's new holder answers.
                    ctx.health.forget_key(&ctx.source_name(SOURCE), &group);
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = leases.changed() => {}
        }
    }
    // Polls in flight see the cancelled token at their next AWS call and return; what they
    // committed is consistent (each page is one transaction).
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

/// Brings `mine` up to date with the groups this node may tail: every group for one daemon,
/// the leased ones in a fleet. A group just taken over is polled now, from the checkpoint
/// its last holder committed; a group given up is no longer this node's to report on.
fn take_leased(ctx: &Services, groups: &mut BTreeMap<String, GroupSchedule>, mine: &mut BTreeSet<String>, now: Instant) {
    let name = ctx.source_name(SOURCE);
    mine.retain(|g| {
        let keep = groups.contains_key(g) && ctx.work.holds(&logs_unit(&ctx.scope.key(g)));
        if !keep && groups.contains_key(g) {
            tracing::info!(log_group = %g, "Log group's lease gone; another node tails it.");
            ctx.health.forget_key(&name, g);
            ctx.health.set_detail(&name, g, None);
        }
        keep
    });
    for (g, s) in groups.iter_mut() {
        if !mine.contains(g) && ctx.work.holds(&logs_unit(&ctx.scope.key(g))) {
            if ctx.work.node().is_some() {
                tracing::info!(log_group = %g, "Log group's lease taken; tailing it from its checkpoint.");
                s.next_due = now;
            }
            mine.insert(g.clone());
        }
    }
    let [account, region] = ctx.origin_labels();
    ctx.metrics.log_groups_watched.with_label_values(&[&ctx.config.shard.index.to_string(), account, region]).set(mine.len() as i64);
}

/// A group task's outcome: (group, job, result). A task that panicked (a bug, or input
/// nothing anticipated) still names its group and job, with [`PollError::Panicked`], so
/// both are scheduled again after their backoff instead of the group staying marked
/// running and never polled.
fn settled(
    done: Result<(tokio::task::Id, (String, Job, Result<PollResult, PollError>)), tokio::task::JoinError>,
    tasks: &mut HashMap<tokio::task::Id, (String, Job)>,
) -> Option<(String, Job, Result<PollResult, PollError>)> {
    match done {
        Ok((id, outcome)) => {
            tasks.remove(&id);
            Some(outcome)
        }
        Err(e) => {
            let (group, job) = tasks.remove(&e.id())?;
            Some((group, job, Err(PollError::Panicked)))
        }
    }
}

async fn sleep_or_cancel(ctx: &Services, d: Duration) {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

fn merge_groups(groups: &mut BTreeMap<String, GroupSchedule>, found: BTreeSet<String>, explicit: &[String], ctx: &Services) {
    let shard = &ctx.config.shard;
    let wanted: BTreeSet<String> = found
        .into_iter()
        .chain(explicit.iter().cloned())
        .filter(|g| crate::shard::owns(g, shard.index, shard.count))
        .collect();
    groups.retain(|g, s| {
        let keep = wanted.contains(g) || s.explicit;
        if !keep {
            tracing::info!(log_group = %g, "Log group no longer discovered; stopped tailing it.");
            ctx.health.forget_key(&ctx.source_name(SOURCE), g);
            ctx.metrics.log_group_unavailable.with_label_values(&ctx.group_labels(g)).set(0);
        }
        keep
    });
    for g in wanted {
        groups.entry(g.clone()).or_insert_with(|| {
            tracing::info!(log_group = %g, "Tailing log group.");
            GroupSchedule {
                next_due: Instant::now(),
                interval: ctx.config.logs.poll_interval,
                next_reconcile: Instant::now() + ctx.config.logs.reconcile_interval,
                explicit: explicit.contains(&g),
                unavailable: None,
            }
        });
    }
}

fn finish_poll(ctx: &Services, groups: &mut BTreeMap<String, GroupSchedule>, group: &str, result: Result<PollResult, PollError>) {
    let cfg = &ctx.config.logs;
    let Some(s) = groups.get_mut(group) else { return };
    let outcome = match result {
        Ok(r) => {
            if s.unavailable.take().is_some() {
                tracing::info!(log_group = %group, "Log group is available again.");
                ctx.metrics.log_group_unavailable.with_label_values(&ctx.group_labels(group)).set(0);
                ctx.health.set_detail(&ctx.source_name(SOURCE), group, None);
            }
            ctx.health.key_success(&ctx.source_name(SOURCE), group, now_ms());
            r
        }
        Err(PollError::Aws(e)) if e.code == "cancelled" => return,
        // Another node took the group over; what this poll committed before stays.
        Err(PollError::Store(StoreError::LostLease(_))) => return,
        Err(PollError::Panicked) => PollResult::Failed,
        Err(PollError::Aws(e)) if e.is_not_found() || e.is_access_denied() => {
            let why = if e.is_not_found() { "deleted or not found" } else { "access denied" };
            if s.unavailable.is_none() {
                tracing::warn!(log_group = %group, reason = why, "Log group unavailable; skipping it until it returns.");
            }
            s.unavailable = Some(why.to_string());
            ctx.metrics.log_group_unavailable.with_label_values(&ctx.group_labels(group)).set(1);
            ctx.health.set_detail(&ctx.source_name(SOURCE), group, Some(why.to_string()));
            PollResult::Failed
        }
        Err(e) => {
            tracing::warn!(log_group = %group, error = %e, "Poll failed; the position is kept and the poll retried.");
            if let PollError::Store(se) = &e {
                ctx.metrics.store_errors.with_label_values(&[se.code()]).inc();
            }
            ctx.health.key_failure(&ctx.source_name(SOURCE), group, format!("{group}: {e}"));
            PollResult::Failed
        }
    };
    s.interval = next_interval(s.interval, outcome, cfg.poll_interval, cfg.idle_poll_interval);
    s.next_due = Instant::now() + s.interval;
}

fn finish_reconcile(ctx: &Services, groups: &mut BTreeMap<String, GroupSchedule>, group: &str, result: Result<PollResult, PollError>) {
    let Some(s) = groups.get_mut(group) else { return };
    s.next_reconcile = Instant::now() + ctx.config.logs.reconcile_interval;
    match result {
        Ok(_) => {}
        Err(PollError::Aws(e)) if e.code == "cancelled" => {}
        // A failed sweep is not a failed source: the polls carry on; the next sweep reads
        // the same window again.
        Err(PollError::Aws(e)) if e.code == crate::aws::NO_SPARE_QUOTA => {
            tracing::debug!(log_group = %group, "No spare FilterLogEvents quota for the reconciliation sweep; it tries again next time.")
        }
        Err(e) => tracing::warn!(log_group = %group, error = %e, "Reconciliation sweep failed; the next one re-reads its window."),
    }
}

/// Lists every log group under the configured prefixes (every page).
async fn discover(shared: &Shared) -> Result<BTreeSet<String>, AwsError> {
    let ctx = &shared.ctx;
    let mut found = BTreeSet::new();
    for prefix in &ctx.scope.log_group_prefixes {
        let mut token: Option<String> = None;
        loop {
            let resp = call("DescribeLogGroups", &ctx.metrics, Some(&shared.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
                shared
                    .client
                    .describe_log_groups()
                    .log_group_name_prefix(prefix)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            for g in resp.log_groups() {
                if let Some(name) = g.log_group_name() {
                    // Emulators may ignore the prefix: filter here too.
                    if name.starts_with(prefix.as_str()) {
                        found.insert(name.to_string());
                    }
                }
            }
            match resp.next_token() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(found)
}

/// Polls one group from its checkpoint to now; commits page by page.
async fn poll_group(shared: &Shared, group: &str) -> Result<PollResult, PollError> {
    let ctx = &shared.ctx;
    let cfg = &ctx.config.logs;
    let store: &Store = &ctx.store;
    let end = now_ms();
    // What the store keeps of this group (checkpoint, stream states, event keys) is the
    // scope's: the same group name in two accounts or regions is two groups.
    let stored_as = ctx.scope.key(group);
    let checkpoint = store.checkpoint(SOURCE, &stored_as).await?;
    let start = match &checkpoint {
        Some(c) => c.position_ms - cfg.ingestion_delay.as_millis() as i64,
        None => end - cfg.start_lookback.as_millis() as i64,
    };
    let mut streams: HashMap<String, StreamMemory> = HashMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let history = shared.attributor.history();
    let mut token: Option<String> = None;
    let mut stored = 0u64;
    let mut newest: Option<i64> = None;
    for page_no in 0.. {
        let resp = call("FilterLogEvents", &ctx.metrics, Some(&shared.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
            shared
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start)
                .end_time(end)
                .set_next_token(token.clone())
                .send()
        })
        .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                if e.throttled {
                    ctx.metrics.log_group_throttles.with_label_values(&ctx.group_labels(group)).inc();
                }
                return Err(e.into());
            }
        };
        let page = page_events(resp.events());
        let next = resp.next_token().filter(|t| Some(*t) != token.as_deref()).map(str::to_string);
        let history = if ctx.config.environments.lambda_aliases { ensure_versions_known(shared, group, &page).await? } else { history.clone() };
        load_page_streams(ctx, &stored_as, &page, &mut streams).await?;
        let (mut batch, stats) = process_page(group, page, &mut streams, &shared.attributor, &history, now_ms());
        ctx.scope_batch(&mut batch);
        touched.extend(stats.touched.iter().cloned());
        let last_page = next.is_none() || page_no + 1 >= MAX_PAGES_PER_POLL;
        if last_page {
            // A cut-short poll resumes from its last page's newest event, not from `end`.
            let position = if next.is_none() { end } else { stats.newest_event_ms.unwrap_or(start).max(start) };
            batch.checkpoints.push(Checkpoint { source: SOURCE.into(), key: stored_as.clone(), position_ms: position, state: None });
            // The streams' memories go with the checkpoint: a poll that stops half-way is
            // read again from the old position, with the old memories.
            batch.stream_states = stream_rows(&stored_as, &streams, &touched);
        }
        batch.fence = ctx.work.fence(&logs_unit(&stored_as))?;
        let outcome = store.commit(&batch).await?;
        record_page_metrics(ctx, group, &outcome, &stats);
        stored += outcome.inserted_total();
        newest = newest.max(stats.newest_event_ms);
        if last_page {
            break;
        }
        token = next;
    }
    let now = now_ms();
    ctx.metrics.log_group_last_poll.with_label_values(&ctx.group_labels(group)).set(now as f64 / 1000.0);
    ctx.metrics.source_last_success.with_label_values(&[ctx.source_name(SOURCE).as_str()]).set(now as f64 / 1000.0);
    if let Some(n) = newest {
        let [account, region] = ctx.origin_labels();
        ctx.metrics.poll_lag.with_label_values(&[SOURCE, group, account, region]).set((now.saturating_sub(n) as f64 / 1000.0).max(0.0));
    }
    if stored > 0 {
        tracing::debug!(log_group = %group, stored, "Poll stored events.");
    }
    Ok(if newest.is_some() { PollResult::Events } else { PollResult::Empty })
}

/// Loads the saved state of the streams `page` touches that `streams` does not hold yet
/// (only those: a group may have had a hundred thousand streams). Returns the streams whose
/// saved state no longer decodes: they start afresh (the state only helps correlate lines),
/// and the caller says so.
pub async fn load_streams(
    store: &Store,
    group: &str,
    page: &[PageEvent],
    streams: &mut HashMap<String, StreamMemory>,
) -> Result<Vec<String>, StoreError> {
    let mut wanted: Vec<&str> = page.iter().map(|e| e.stream.as_str()).filter(|s| !streams.contains_key(*s)).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut unreadable = Vec::new();
    if wanted.is_empty() {
        return Ok(unreadable);
    }
    for (stream, json) in store.stream_states_of(group, &wanted).await? {
        match serde_json::from_str(&json) {
            Ok(m) => {
                streams.insert(stream, m);
            }
            Err(_) => unreadable.push(stream),
        }
    }
    Ok(unreadable)
}

/// Loads a page's stream states, counting and logging any that no longer decode.
async fn load_page_streams(ctx: &Services, group: &str, page: &[PageEvent], streams: &mut HashMap<String, StreamMemory>) -> Result<(), StoreError> {
    let unreadable = load_streams(&ctx.store, group, page, streams).await?;
    if !unreadable.is_empty() {
        ctx.metrics.internal_errors.with_label_values(&["stream_state_decode"]).inc_by(unreadable.len() as u64);
        tracing::warn!(log_group = %group, streams = ?unreadable, "Saved stream states that no longer decode; those streams start afresh.");
    }
    Ok(())
}

/// The reconciliation sweep of one group: re-reads `[now − reconcile_window,
/// checkpoint − ingestion_delay)` (what the polls no longer re-read) with spare quota, and
/// stores the events CloudWatch took in too late for the polls. Idempotent; the checkpoint
/// does not move.
async fn reconcile_group(shared: &Shared, group: &str) -> Result<PollResult, PollError> {
    let ctx = &shared.ctx;
    let cfg = &ctx.config.logs;
    let store: &Store = &ctx.store;
    let stored_as = ctx.scope.key(group);
    let Some(checkpoint) = store.checkpoint(SOURCE, &stored_as).await? else { return Ok(PollResult::Empty) };
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let (start, end) = sweep_window(now_ms(), checkpoint.position_ms, ms(cfg.reconcile_window), ms(cfg.ingestion_delay));
    if start >= end {
        return Ok(PollResult::Empty);
    }
    let mut streams: HashMap<String, StreamMemory> = HashMap::new();
    let history = shared.attributor.history();
    let mut token: Option<String> = None;
    let mut recovered = 0u64;
    for _ in 0..MAX_PAGES_PER_POLL {
        let resp = call("FilterLogEvents", &ctx.metrics, Some(&shared.spare), ctx.config.aws.max_attempts, &ctx.shutdown, || {
            shared.client.filter_log_events().log_group_name(group).start_time(start).end_time(end).set_next_token(token.clone()).send()
        })
        .await?;
        let page = page_events(resp.events());
        let next = resp.next_token().filter(|t| Some(*t) != token.as_deref()).map(str::to_string);
        if !page.is_empty() {
            let history = if ctx.config.environments.lambda_aliases { ensure_versions_known(shared, group, &page).await? } else { history.clone() };
            load_page_streams(ctx, &stored_as, &page, &mut streams).await?;
            // The sweep reads the past: the streams' saved state stays what the polls made it.
            let (mut batch, stats) = process_page(group, page, &mut streams, &shared.attributor, &history, now_ms());
            ctx.scope_batch(&mut batch);
            batch.fence = ctx.work.fence(&logs_unit(&stored_as))?;
            let outcome = store.commit(&batch).await?;
            record_page_metrics(ctx, group, &outcome, &stats);
            recovered += outcome.inserted_total();
        }
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    if recovered > 0 {
        ctx.metrics.log_events_recovered.with_label_values(&ctx.group_labels(group)).inc_by(recovered);
        tracing::warn!(log_group = %group, recovered, "The reconciliation sweep stored events CloudWatch took in later than logs.ingestion_delay.");
    }
    Ok(if recovered > 0 { PollResult::Events } else { PollResult::Empty })
}

/// The window a sweep at `now` re-reads: back to `now − window`, up to where the polls'
/// re-reads begin (`checkpoint − ingestion_delay`). Saturating: the inputs are durations
/// and times, never wrapped.
pub fn sweep_window(now: i64, checkpoint_ms: i64, window_ms: i64, ingestion_delay_ms: i64) -> (i64, i64) {
    (now.saturating_sub(window_ms), checkpoint_ms.saturating_sub(ingestion_delay_ms).min(now))
}

/// A FilterLogEvents page as the processing step takes it (public for the `ingest` bench's
/// live path).
pub fn page_events(events: &[aws_sdk_cloudwatchlogs::types::FilteredLogEvent]) -> Vec<PageEvent> {
    events
        .iter()
        .filter_map(|e| {
            Some(PageEvent {
                stream: e.log_stream_name()?.to_string(),
                time_ms: e.timestamp()?,
                event_id: e.event_id()?.to_string(),
                message: e.message().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Makes sure the alias history covers the versions in this page's stream names; returns
/// the snapshot to attribute the page with, or the listing's error (throttled, 5xx, ...):
/// the poll then fails before this page is committed and keeps its position, rather than
/// store the events under the default env for good.
async fn ensure_versions_known(shared: &Shared, group: &str, page: &[PageEvent]) -> Result<Arc<crate::attribute::AliasHistory>, AwsError> {
    let mut by_function: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in page {
        if let Some(name) = crate::lambda::parse_stream_name(&e.stream) {
            let function = name.function.clone().unwrap_or_else(|| crate::lambda::function_from_log_group(group));
            by_function.entry(function).or_default().insert(name.version.clone());
        }
    }
    for (function, versions) in &by_function {
        shared.aliases.ensure_known(function, versions).await?;
    }
    Ok(shared.attributor.history())
}

fn record_page_metrics(ctx: &Services, group: &str, outcome: &crate::store::BatchOutcome, stats: &process::PageStats) {
    let m = &ctx.metrics;
    for (source, n) in &outcome.inserted {
        m.events_stored.with_label_values(&[source.as_str()]).inc_by(*n);
    }
    let [account, region] = ctx.origin_labels();
    m.log_group_events.with_label_values(&[group, account, region]).inc_by(outcome.inserted_total());
    if outcome.duplicates > 0 {
        m.events_duplicate.with_label_values(&[SOURCE]).inc_by(outcome.duplicates);
    }
    for (reason, n) in &stats.rejected {
        m.inputs_rejected.with_label_values(&[SOURCE, reason]).inc_by(*n);
    }
    for (reason, n) in &stats.ignored {
        m.lines_ignored.with_label_values(&[reason]).inc_by(*n);
    }
    for r in &outcome.new_reports {
        let labels = [account, region, r.env.as_str(), r.function.as_str()];
        if r.cold_start {
            m.lambda_cold_starts.with_label_values(&labels).inc();
        }
        if r.timeout {
            m.lambda_timeouts.with_label_values(&labels).inc();
        }
        if r.error {
            m.lambda_errors.with_label_values(&labels).inc();
        }
        if let Some(mb) = r.max_memory_mb {
            // From a log line: any number may be there.
            let bytes = i64::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
            m.lambda_max_memory_used.with_label_values(&labels).set(bytes);
        }
    }
    for (env, function) in &outcome.timeouts_marked {
        m.lambda_timeouts.with_label_values(&[account, region, env, function]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_poll_still_names_its_group() {
        let mut set: JoinSet<(String, Job, Result<PollResult, PollError>)> = JoinSet::new();
        let mut tasks = HashMap::new();
        let h = set.spawn(async { panic!("Max Memory Used overflowed") });
        tasks.insert(h.id(), ("/aws/lambda/a".to_string(), Job::Reconcile));
        let h = set.spawn(async { ("/aws/lambda/b".to_string(), Job::Poll, Ok(PollResult::Events)) });
        tasks.insert(h.id(), ("/aws/lambda/b".to_string(), Job::Poll));
        let mut seen = Vec::new();
        while let Some(done) = set.join_next_with_id().await {
            let (group, job, result) = settled(done, &mut tasks).expect("every task names its group");
            seen.push((group, job, matches!(result, Err(PollError::Panicked))));
        }
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(seen, [("/aws/lambda/a".to_string(), Job::Reconcile, true), ("/aws/lambda/b".to_string(), Job::Poll, false)]);
        assert!(tasks.is_empty());
    }

    #[test]
    fn the_sweep_reads_what_the_polls_no_longer_reread() {
        let now = 1_795_341_600_000;
        // Checkpoint a poll interval ago, 2 min ingestion delay, 1 h window.
        assert_eq!(sweep_window(now, now - 30_000, 3_600_000, 120_000), (now - 3_600_000, now - 150_000));
        // Absurd inputs saturate instead of wrapping.
        let (a, b) = sweep_window(now, i64::MIN, i64::MAX, i64::MAX);
        assert!(a <= now && b <= now);
    }

    #[tokio::test]
    async fn a_stream_state_that_no_longer_decodes_is_named_not_dropped_silently() {
        let store = Store::open_memory().await.unwrap();
        let row = |stream: &str, state: &str| crate::store::StreamStateRow { log_group: "g".into(), stream: stream.into(), state: state.into() };
        let good = serde_json::to_string(&StreamMemory::default()).unwrap();
        store.commit(&crate::store::Batch { stream_states: vec![row("ok", &good), row("bad", "{not json")], ..Default::default() }).await.unwrap();
        let page: Vec<PageEvent> = ["ok", "bad", "new"]
            .iter()
            .map(|s| PageEvent { stream: s.to_string(), time_ms: 1, event_id: "1".into(), message: String::new() })
            .collect();
        let mut streams = HashMap::new();
        assert_eq!(load_streams(&store, "g", &page, &mut streams).await.unwrap(), ["bad"]);
        assert_eq!(streams.keys().collect::<Vec<_>>(), ["ok"]);
    }

}
