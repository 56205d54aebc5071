//! The X-Ray poller: every `xray.poll_interval`, lists the traces updated in
//! `[checkpoint − lookback, now − settle_delay]` (GetTraceSummaries, `TimeRangeType` Event,
//! windows of at most 6 h, every page), fetches the ones not yet finished in the store
//! (BatchGetTraces, 5 ids a call, every page), and turns each into timing events (one per
//! span, env from the alias qualifier or the attribution rules) and, when complete, its
//! critical path. A trace still in progress, partial, or not yet processed by X-Ray waits in
//! the store and is fetched again on later polls, at most `xray.max_refetches` times, then
//! stored as it is; one whose segments all ended a `settle_delay` ago and whose only open
//! spans are subsegments (Step Functions states left `in_progress`) is stored at once. Each window's checkpoint is committed after the traces it covers.
//!
//! At start (and hourly) it asks GetTraceSegmentDestination: when the account sends spans
//! to CloudWatch Logs (Transaction Search) BatchGetTraces finds almost nothing, and that is
//! said loudly (a warning, a metric, a `/readyz` detail) instead of reporting zero traces.

use super::PollError;
use crate::services::Services;
use crate::attribute::{AliasHistory, Attributor};
use crate::aws::{AwsError, RateLimiter, call};
use crate::critical_path::critical_path;
use crate::model::{Checkpoint, Rejection, TimingEvent};
use crate::parse::xray::{AllowList, ParsedTrace, parse_trace, trace_events};
use crate::store::traces::{AttributionRow, TraceRecord, TraceState, TraceUpdate};
use crate::store::Batch;
use crate::clock::now_ms;
use aws_sdk_xray::primitives::DateTime;
use aws_sdk_xray::types::{TimeRangeType, TraceSegmentDestination};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// Health, metrics and checkpoint source name.
pub const SOURCE: &str = "xray";
/// Checkpoint key: one position for the whole account.
pub const CHECKPOINT_KEY: &str = "traces";
/// Longest GetTraceSummaries window (practitioners chunk to 6 h; longer ones are refused).
const MAX_WINDOW_MS: i64 = 6 * 3600 * 1000;
/// BatchGetTraces takes at most 5 ids.
const IDS_PER_CALL: usize = 5;
/// How often the segment destination is checked again.
const DESTINATION_RECHECK: Duration = Duration::from_secs(3600);
/// Health detail key for the segment destination.
const DESTINATION_DETAIL: &str = "destination";

struct Poller {
    ctx: Services,
    client: aws_sdk_xray::Client,
    limiter: RateLimiter,
    attributor: Attributor,
    allow: AllowList,
}

/// Runs the poller until shutdown.
pub async fn run(ctx: Services, attributor: Attributor) -> anyhow::Result<()> {
    let cfg = ctx.config.xray.clone();
    let poller = Poller {
        client: aws_sdk_xray::Client::new(&ctx.sdk),
        limiter: RateLimiter::new(cfg.requests_per_second),
        allow: AllowList { annotations: cfg.annotation_allow_list.clone(), metadata: cfg.metadata_allow_list.clone() },
        attributor,
        ctx: ctx.clone(),
    };
    if !ctx.config.logs.enabled {
        // The log tailer keeps the alias history current; without it, use what is stored.
        super::aliases::AliasRefresher::new(&ctx, poller.attributor.clone()).load().await;
    }
    let mut next_destination_check = Instant::now();
    loop {
        let started = Instant::now();
        if started >= next_destination_check {
            poller.check_destination().await;
            next_destination_check = started + DESTINATION_RECHECK;
        }
        if ctx.shutdown.is_cancelled() {
            break;
        }
        match poller.poll_once().await {
            Ok(()) => {
                let now = now_ms();
                ctx.health.success(&ctx.source_name(SOURCE), now);
                ctx.metrics.source_last_success.with_label_values(&[ctx.source_name(SOURCE).as_str()]).set(now as f64 / 1000.0);
                ctx.metrics.source_up.with_label_values(&[ctx.source_name(SOURCE).as_str()]).set(1);
            }
            Err(PollError::Aws(e)) if e.code == "cancelled" => break,
            Err(e) => {
                tracing::warn!(error = %e, "X-Ray poll failed; the position is kept and the poll retried.");
                if let PollError::Store(se) = &e {
                    ctx.metrics.store_errors.with_label_values(&[se.code()]).inc();
                }
                ctx.health.failure(&ctx.source_name(SOURCE), e.to_string());
                ctx.metrics.source_up.with_label_values(&[ctx.source_name(SOURCE).as_str()]).set(0);
            }
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(started + cfg.poll_interval) => {}
        }
    }
    Ok(())
}

/// The outcome of one fetch of a trace, given what the store knew before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Store its events now, finishing it as `Complete` or `Incomplete`.
    Store(TraceState),
    /// Fetch it again on a later poll; the number of re-fetches done so far.
    Wait(u32),
    /// Never returned within the allowed re-fetches: give up on it.
    GiveUp,
}

/// Decides what to do with a trace after a fetch. `returned`: BatchGetTraces returned it;
/// `finished`: no span in progress and not listed as partial. A trace gets one fetch plus
/// `max_refetches` re-fetches on later polls.
fn verdict(previous: Option<&TraceRecord>, returned: bool, finished: bool, max_refetches: u32) -> Verdict {
    let tries = previous.filter(|r| r.state == TraceState::Pending).map_or(0, |r| r.refetches + 1);
    if returned && finished {
        Verdict::Store(TraceState::Complete)
    } else if tries >= max_refetches {
        if returned { Verdict::Store(TraceState::Incomplete) } else { Verdict::GiveUp }
    } else {
        Verdict::Wait(tries)
    }
}

/// `[start, end)` cut into consecutive windows of at most `max_ms`.
fn windows(start_ms: i64, end_ms: i64, max_ms: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut s = start_ms;
    while s < end_ms {
        let e = end_ms.min(s.saturating_add(max_ms.max(1)));
        out.push((s, e));
        s = e;
    }
    out
}

/// One trace's events (env attributed) and, for a complete trace, its critical path.
pub fn trace_output(
    trace: &ParsedTrace,
    complete: bool,
    attributor: &Attributor,
    history: &AliasHistory,
) -> (Vec<TimingEvent>, Option<AttributionRow>) {
    let events: Vec<TimingEvent> = trace_events(trace)
        .into_iter()
        .map(|(mut event, qualifier)| {
            event.env = attributor.env_with(
                history,
                &event.function,
                event.function_version.as_deref(),
                qualifier.as_deref(),
                event.time_ms,
            );
            event
        })
        .collect();
    let attribution = complete
        .then(|| critical_path(trace))
        .flatten()
        .and_then(|a| {
            let start_s = trace.spans.iter().map(|s| s.start_s).fold(f64::INFINITY, f64::min);
            let (shape_json, self_us) = crate::critical_path::encode_path(&a.shares);
            let mut envs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for e in &events {
                *envs.entry((e.function.as_str(), e.env.as_str())).or_default() += 1;
            }
            let envs_json = serde_json::to_string(&envs.iter().map(|((f, env), n)| (f, env, n)).collect::<Vec<_>>()).ok()?;
            Some(AttributionRow {
                trace_id: a.trace_id,
                root_name: a.root_name,
                start_ms: (start_s * 1000.0).floor() as i64,
                total_s: a.total_s,
                shape_json,
                self_us,
                envs_json,
            })
        });
    (events, attribution)
}

/// A trace to fetch: its id, what the store knew, and whether its summary said partial.
struct Wanted {
    id: String,
    previous: Option<TraceRecord>,
    partial: bool,
}

/// What one BatchGetTraces chunk produced, to commit together.
#[derive(Default)]
struct Step {
    batch: Batch,
    attributions: Vec<AttributionRow>,
    updates: Vec<TraceUpdate>,
    fetched: u64,
    finished: BTreeMap<&'static str, u64>,
    rejected: BTreeMap<&'static str, u64>,
    newest_event_ms: Option<i64>,
}

impl Poller {
    async fn check_destination(&self) {
        let ctx = &self.ctx;
        let resp = call("GetTraceSegmentDestination", &ctx.metrics, Some(&self.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
            self.client.get_trace_segment_destination().send()
        })
        .await;
        match resp {
            Ok(r) => {
                let status = r.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                if matches!(r.destination(), Some(TraceSegmentDestination::CloudWatchLogs)) {
                    tracing::warn!(
                        destination = "CloudWatchLogs",
                        %status,
                        "X-RAY SENDS TRACE SEGMENTS TO CLOUDWATCH LOGS (Transaction Search): BatchGetTraces will find almost \
                         no traces, so X-Ray timings will be missing. Polling anyway; read spans from the aws/spans log \
                         group or switch the destination back to X-Ray."
                    );
                    ctx.metrics.xray_destination_cloudwatch_logs.set(1);
                    ctx.health.set_detail(
                        &ctx.source_name(SOURCE),
                        DESTINATION_DETAIL,
                        Some(format!(
                            "trace segments go to CloudWatchLogs (Transaction Search, status {status}): BatchGetTraces \
                             finds almost no traces"
                        )),
                    );
                } else {
                    ctx.metrics.xray_destination_cloudwatch_logs.set(0);
                    ctx.health.set_detail(&ctx.source_name(SOURCE), DESTINATION_DETAIL, None);
                }
            }
            Err(e) if e.code == "cancelled" => {}
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the X-Ray trace segment destination; assuming X-Ray.");
            }
        }
    }

    /// One poll: every window from the checkpoint, then the pending traces no window listed.
    async fn poll_once(&self) -> Result<(), PollError> {
        let ctx = &self.ctx;
        let cfg = &ctx.config.xray;
        let store = &ctx.store;
        let now = now_ms();
        let end = now - cfg.settle_delay.as_millis() as i64;
        // Trace states and the checkpoint are the scope's (unchanged without [[accounts]]).
        let checkpoint_key = ctx.scope.key(CHECKPOINT_KEY);
        let checkpoint = store.checkpoint(SOURCE, &checkpoint_key).await?;
        let start = match &checkpoint {
            Some(c) => c.position_ms - cfg.lookback.as_millis() as i64,
            None => now - cfg.start_lookback.as_millis() as i64,
        };
        let history = self.attributor.history();
        let mut fetched: HashSet<String> = HashSet::new();
        let mut newest: Option<i64> = None;

        for (from, to) in windows(start, end, MAX_WINDOW_MS) {
            let listed = self.summaries(from, to).await?;
            let ids: Vec<String> = listed.iter().map(|(id, _)| ctx.scope.key(id)).collect();
            let known = store.trace_records(&ids).await?;
            let wanted: Vec<Wanted> = listed
                .into_iter()
                .filter(|(id, _)| !fetched.contains(id))
                .filter_map(|(id, partial)| {
                    let previous = known.get(&ctx.scope.key(&id)).copied();
                    match previous {
                        Some(r) if r.state != TraceState::Pending => None,
                        _ => Some(Wanted { id, previous, partial }),
                    }
                })
                .collect();
            let window_checkpoint =
                Checkpoint { source: SOURCE.into(), key: checkpoint_key.clone(), position_ms: to, state: None };
            if wanted.is_empty() {
                let fenced = Batch { fence: self.fence()?, ..Batch::default() };
                store.commit_traces(&fenced, &[], &[], Some(&window_checkpoint)).await?;
            }
            let chunks: Vec<&[Wanted]> = wanted.chunks(IDS_PER_CALL).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let last = i + 1 == chunks.len();
                newest = newest.max(self.fetch_and_commit(chunk, &history, last.then_some(&window_checkpoint)).await?);
                fetched.extend(chunk.iter().map(|w| w.id.clone()));
            }
            // A committed window is progress: a long catch-up poll keeps the source ready.
            ctx.health.success(&ctx.source_name(SOURCE), now_ms());
        }

        // Traces waiting from earlier polls that no window listed this time.
        let prefix = ctx.scope.key("");
        let pending: Vec<Wanted> = store
            .pending_traces_under(&prefix)
            .await?
            .into_iter()
            .map(|(id, r)| (id[prefix.len()..].to_string(), r))
            .filter(|(id, _)| !fetched.contains(id))
            .map(|(id, r)| Wanted { id, partial: r.partial, previous: Some(r) })
            .collect();
        for chunk in pending.chunks(IDS_PER_CALL) {
            newest = newest.max(self.fetch_and_commit(chunk, &history, None).await?);
        }

        ctx.metrics.xray_traces_pending.set(store.count_pending_traces().await?);
        if let Some(n) = newest {
            let [account, region] = ctx.origin_labels();
            ctx.metrics.poll_lag.with_label_values(&[SOURCE, CHECKPOINT_KEY, account, region]).set(((now_ms() - n) as f64 / 1000.0).max(0.0));
        }
        let cutoff = now - ctx.config.storage.retention.as_millis() as i64;
        if let Err(e) = store.purge_traces_before(cutoff).await {
            tracing::warn!(error = %e, "Cannot purge old trace rows; will retry next poll.");
        }
        Ok(())
    }

    /// Ids (with `IsPartial`) of the traces updated in `[from_ms, to_ms)`, every page.
    async fn summaries(&self, from_ms: i64, to_ms: i64) -> Result<Vec<(String, bool)>, AwsError> {
        let ctx = &self.ctx;
        let filter = Some(ctx.config.xray.filter_expression.clone()).filter(|f| !f.trim().is_empty());
        let mut out: Vec<(String, bool)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let resp = call("GetTraceSummaries", &ctx.metrics, Some(&self.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
                self.client
                    .get_trace_summaries()
                    .start_time(DateTime::from_millis(from_ms))
                    .end_time(DateTime::from_millis(to_ms))
                    .time_range_type(TimeRangeType::Event)
                    .set_filter_expression(filter.clone())
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            for s in resp.trace_summaries() {
                let Some(id) = s.id().filter(|id| !id.is_empty()) else { continue };
                let partial = s.is_partial().unwrap_or(false);
                match index.get(id) {
                    Some(&i) => out[i].1 |= partial,
                    None => {
                        index.insert(id.to_string(), out.len());
                        out.push((id.to_string(), partial));
                    }
                }
            }
            match resp.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The documents of each returned trace (segments of one trace may span pages).
    async fn batch_get(&self, ids: &[String]) -> Result<HashMap<String, Vec<(String, String)>>, AwsError> {
        let ctx = &self.ctx;
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let resp = call("BatchGetTraces", &ctx.metrics, Some(&self.limiter), ctx.config.aws.max_attempts, &ctx.shutdown, || {
                self.client.batch_get_traces().set_trace_ids(Some(ids.to_vec())).set_next_token(token.clone()).send()
            })
            .await?;
            for t in resp.traces() {
                // A trace without an id cannot be matched to what we asked for: it counts as
                // not returned (moto answers that way for traces it has not finished).
                let Some(id) = t.id().filter(|id| ids.iter().any(|w| w == id)) else { continue };
                let docs = out.entry(id.to_string()).or_default();
                for s in t.segments() {
                    if let (Some(sid), Some(doc)) = (s.id(), s.document()) {
                        docs.push((sid.to_string(), doc.to_string()));
                    }
                }
            }
            // UnprocessedTraceIds are simply not in `out`: they wait for a later poll.
            match resp.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The lease this scope's X-Ray writes are made under (None: one daemon).
    fn fence(&self) -> Result<Option<crate::model::lease::Fence>, crate::store::StoreError> {
        self.ctx.work.fence(&crate::cluster::work::xray_unit(&self.ctx.scope.label()))
    }

    /// Fetches up to 5 traces and commits what they gave, with `checkpoint` last. Returns
    /// the newest event time stored.
    async fn fetch_and_commit(
        &self,
        chunk: &[Wanted],
        history: &AliasHistory,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Option<i64>, PollError> {
        let ctx = &self.ctx;
        let ids: Vec<String> = chunk.iter().map(|w| w.id.clone()).collect();
        let docs = self.batch_get(&ids).await?;
        let mut step = self.step(chunk, &docs, history, now_ms());
        ctx.scope_batch(&mut step.batch);
        step.batch.fence = self.fence()?;
        let outcome = ctx.store.commit_traces(&step.batch, &step.attributions, &step.updates, checkpoint).await?;

        let m = &ctx.metrics;
        m.xray_traces_fetched.inc_by(step.fetched);
        for (state, n) in &step.finished {
            m.xray_traces_stored.with_label_values(&[state]).inc_by(*n);
        }
        for (source, n) in &outcome.inserted {
            m.events_stored.with_label_values(&[source.as_str()]).inc_by(*n);
        }
        if outcome.duplicates > 0 {
            m.events_duplicate.with_label_values(&[SOURCE]).inc_by(outcome.duplicates);
        }
        for (reason, n) in &step.rejected {
            m.inputs_rejected.with_label_values(&[SOURCE, reason]).inc_by(*n);
        }
        if let Some(n) = step.finished.get(TraceState::Incomplete.as_str()) {
            tracing::info!(
                traces = n,
                max_refetches = ctx.config.xray.max_refetches,
                "Traces still unfinished after every re-fetch; stored as they are."
            );
        }
        if outcome.inserted_total() > 0 {
            tracing::debug!(traces = step.fetched, events = outcome.inserted_total(), "X-Ray traces stored.");
        }
        Ok(step.newest_event_ms)
    }

    /// Turns one chunk's documents into what gets committed (pure apart from the config).
    fn step(&self, chunk: &[Wanted], docs: &HashMap<String, Vec<(String, String)>>, history: &AliasHistory, now_ms: i64) -> Step {
        let max_refetches = self.ctx.config.xray.max_refetches;
        // Segments ended this long ago will not be joined by the subsegments still open in
        // them: the trace is stored then rather than after every re-fetch.
        let settled_ms = now_ms.saturating_sub(self.ctx.config.xray.settle_delay.as_millis() as i64);
        let mut step = Step::default();
        for w in chunk {
            let parsed = docs.get(&w.id).map(|segments| parse_trace(&w.id, segments, &self.allow));
            if parsed.is_some() {
                step.fetched += 1;
            }
            let finished = parsed.as_ref().is_some_and(|p| p.finished_by(settled_ms)) && !w.partial;
            let v = verdict(w.previous.as_ref(), parsed.is_some(), finished, max_refetches);
            let rec = |state, refetches| TraceRecord { state, refetches, partial: w.partial };
            let prior_refetches = w.previous.map_or(0, |r| r.refetches);
            let record = match (v, parsed) {
                (Verdict::Store(state), Some(parsed)) => {
                    let (events, attribution) =
                        trace_output(&parsed, state == TraceState::Complete, &self.attributor, history);
                    step.newest_event_ms = step.newest_event_ms.max(events.iter().map(|e| e.time_ms).max());
                    step.batch.events.extend(events);
                    step.attributions.extend(attribution);
                    add_rejections(&mut step, parsed.rejections);
                    *step.finished.entry(state.as_str()).or_default() += 1;
                    rec(state, prior_refetches)
                }
                (Verdict::Wait(refetches), _) => rec(TraceState::Pending, refetches),
                (Verdict::GiveUp, _) | (Verdict::Store(_), None) => {
                    tracing::info!(trace_id = %w.id, "Trace never returned by BatchGetTraces; giving up on it.");
                    *step.finished.entry(TraceState::Missing.as_str()).or_default() += 1;
                    rec(TraceState::Missing, prior_refetches)
                }
            };
            step.updates.push(TraceUpdate { trace_id: self.ctx.scope.key(&w.id), record });
        }
        step
    }
}

fn add_rejections(step: &mut Step, rejections: Vec<Rejection>) {
    for r in rejections {
        *step.rejected.entry(r.reason).or_default() += 1;
        step.batch.rejections.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AliasSpan;
    use crate::config::EnvironmentsConfig;
    use crate::parse::xray::tests::{fixture, parse_fixture};

    fn pending(refetches: u32) -> TraceRecord {
        TraceRecord { state: TraceState::Pending, refetches, partial: false }
    }

    #[test]
    fn verdicts_bound_the_refetches() {
        use Verdict::*;
        let cases: &[(Option<TraceRecord>, bool, bool, u32, Verdict)] = &[
            (None, true, true, 5, Store(TraceState::Complete)),
            (None, true, false, 5, Wait(0)),
            (None, false, false, 5, Wait(0)),
            (Some(pending(0)), true, false, 5, Wait(1)),
            (Some(pending(3)), true, false, 5, Wait(4)),
            (Some(pending(4)), true, false, 5, Store(TraceState::Incomplete)),
            (Some(pending(4)), true, true, 5, Store(TraceState::Complete)),
            (Some(pending(4)), false, false, 5, GiveUp),
            // max_refetches = 0: stored as it is at the first fetch.
            (None, true, false, 0, Store(TraceState::Incomplete)),
            (None, false, false, 0, GiveUp),
        ];
        for (i, (prev, returned, finished, max, want)) in cases.iter().enumerate() {
            assert_eq!(verdict(prev.as_ref(), *returned, *finished, *max), *want, "case {i}");
        }
    }

    #[test]
    fn windows_are_at_most_six_hours_and_cover_the_range() {
        let h = 3600 * 1000;
        assert_eq!(windows(0, 13 * h, MAX_WINDOW_MS), vec![(0, 6 * h), (6 * h, 12 * h), (12 * h, 13 * h)]);
        assert_eq!(windows(5, 10, MAX_WINDOW_MS), vec![(5, 10)]);
        assert!(windows(10, 10, MAX_WINDOW_MS).is_empty());
        assert!(windows(10, 5, MAX_WINDOW_MS).is_empty(), "a clock stepped back lists nothing");
    }

    #[test]
    fn a_cold_start_trace_gets_its_alias_env_and_its_critical_path() {
        let trace = parse_fixture("sdk_gdsh_cold_standalone.json");
        assert!(!trace.in_progress);
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let (events, attribution) = trace_output(&trace, true, &attributor, &AliasHistory::default());
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e.env == "Dev"), "{events:?}");
        assert!(events.iter().any(|e| e.operation == "Lambda.Function" && e.cold_start));
        let keys: HashSet<&str> = events.iter().map(|e| e.idem_key.as_str()).collect();
        assert_eq!(keys.len(), events.len(), "one key per span");
        let a = attribution.expect("a complete trace has a critical path");
        assert_eq!(a.trace_id, trace.trace_id);
        let shares: serde_json::Value =
            serde_json::to_value(crate::critical_path::decode_path(&a.shape_json, &a.self_us).expect("stored path decodes")).unwrap();
        assert!(shares.as_array().is_some_and(|s| !s.is_empty()));
        let earliest = trace.spans.iter().map(|s| s.start_s).fold(f64::INFINITY, f64::min);
        assert_eq!(a.start_ms, (earliest * 1000.0).floor() as i64);
    }

    #[test]
    fn a_version_qualifier_goes_through_the_alias_history() {
        // LexFulfillmentHandler invoked as version 12; history says Dev pointed at 12.
        let trace = parse_fixture("sdk_lfh_throttle.json");
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let mut h = AliasHistory::default();
        h.by_function.insert(
            "LexFulfillmentHandler".into(),
            vec![AliasSpan { alias: "Dev".into(), version: "12".into(), weight: 1.0, first_seen_ms: 0, last_seen_ms: 0 }],
        );
        let (events, _) = trace_output(&trace, true, &attributor, &h);
        let lfh: Vec<&TimingEvent> = events.iter().filter(|e| e.function == "LexFulfillmentHandler").collect();
        assert!(!lfh.is_empty());
        assert!(lfh.iter().all(|e| e.env == "Dev"), "{lfh:?}");
        let (events, _) = trace_output(&trace, true, &attributor, &AliasHistory::default());
        assert!(events.iter().filter(|e| e.function == "LexFulfillmentHandler").all(|e| e.env == "default"));
    }

    #[test]
    fn an_in_progress_trace_gets_no_critical_path_and_malformed_documents_are_rejected() {
        let trace = parse_fixture("in_progress.json");
        assert!(trace.in_progress);
        let attributor = Attributor::new(&EnvironmentsConfig::default());
        let (_, attribution) = trace_output(&trace, false, &attributor, &AliasHistory::default());
        assert!(attribution.is_none());

        let traces = fixture("malformed.json");
        let parsed = parse_trace(&traces[0].0, &traces[0].1, &AllowList::default());
        assert!(!parsed.rejections.is_empty());
        let mut step = Step::default();
        let n = parsed.rejections.len() as u64;
        add_rejections(&mut step, parsed.rejections);
        assert_eq!(step.rejected.values().sum::<u64>(), n);
        assert_eq!(step.batch.rejections.len() as u64, n);
    }
}
