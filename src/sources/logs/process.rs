//! Turning one page of FilterLogEvents results into a store batch: parse each message,
//! correlate it with its stream's open invocation, attribute the env, and collect
//! rejections and ignore counts. Pure: no I/O, no clock.
//!
//! Seed lines carry no request id, so they belong to the invocation whose START is the
//! latest at or before their timestamp in the same stream. The stream memory keeps recent
//! STARTs by time, so a re-read of an overlap window (or a restart) attributes every line
//! the same way as the first read did.

use crate::attribute::{AliasHistory, Attributor};
use crate::model::{Rejection, Source, TimingEvent};
use crate::parse::stream::{Output, RawLogEvent, StreamState, assemble};
use crate::parse::{Parsed, parse_message};
use crate::store::{Annotation, Batch, StreamStateRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// STARTs remembered per stream; one execution environment runs one invocation at a time,
/// so a handful covers any overlap window.
const STARTS_KEPT: usize = 64;

/// What is persisted per log stream between polls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamMemory {
    pub state: StreamState,
    /// (START time ms, request id, version), oldest first.
    pub starts: Vec<(i64, String, Option<String>)>,
}

impl StreamMemory {
    fn remember_start(&mut self, time_ms: i64, request_id: &str, version: Option<&String>) {
        // The same START read again (an overlap re-read); a repeated request id at another
        // time is another invocation (async retries, or ids that are not unique).
        if self.starts.iter().any(|(t, r, _)| *t == time_ms && r == request_id) {
            return;
        }
        let at = self.starts.partition_point(|(t, _, _)| *t <= time_ms);
        self.starts.insert(at, (time_ms, request_id.to_string(), version.cloned()));
        if self.starts.len() > STARTS_KEPT {
            self.starts.remove(0);
        }
    }

    /// When the invocation `request_id` open at `time_ms` started, if its START is known.
    fn start_of(&self, request_id: &str, time_ms: i64) -> Option<i64> {
        let at = self.starts.partition_point(|(t, _, _)| *t <= time_ms);
        self.starts[..at].iter().rev().find(|(_, r, _)| r == request_id).map(|(t, _, _)| *t)
    }

    /// Points the state at the invocation open at `time_ms`, if we know which it was.
    fn seek(&mut self, time_ms: i64) {
        let at = self.starts.partition_point(|(t, _, _)| *t <= time_ms);
        if at == 0 {
            return;
        }
        let (_, request_id, version) = &self.starts[at - 1];
        if self.state.request_id.as_deref() != Some(request_id.as_str()) {
            self.state.request_id = Some(request_id.clone());
            self.state.trace_id = None;
            self.state.cold_start = false;
            if version.is_some() {
                self.state.version.clone_from(version);
            }
        }
    }
}

/// One event of a FilterLogEvents page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageEvent {
    pub stream: String,
    pub time_ms: i64,
    pub event_id: String,
    pub message: String,
}

/// Counts the caller turns into metrics.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PageStats {
    pub ignored: BTreeMap<&'static str, u64>,
    pub rejected: BTreeMap<&'static str, u64>,
    pub newest_event_ms: Option<i64>,
    /// The streams the page had events of (their memories changed).
    pub touched: Vec<String>,
}

/// The longest a Lambda invocation runs (15 minutes), and a minute for the lines that
/// follow its REPORT: the span an annotation whose START is unknown reaches back over.
pub const MAX_INVOCATION_MS: i64 = 16 * 60 * 1000;

/// The earliest event time accepted (2000-01-01T00:00:00Z); later than `now` by at most
/// [`MAX_AHEAD_MS`]. Outside that an event's time is not a time and is rejected.
pub const EARLIEST_EVENT_MS: i64 = 946_684_800_000;
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// Processes a page read at wall time `now_ms`. `streams` holds the memories loaded for this
/// group and is updated; the streams touched are listed in the stats ([`stream_rows`] makes
/// their saved state). An event whose timestamp is outside [2000-01-01, now + 1 day] is
/// rejected (`timestamp_out_of_range`).
pub fn process_page(
    log_group: &str,
    mut events: Vec<PageEvent>,
    streams: &mut HashMap<String, StreamMemory>,
    attributor: &Attributor,
    history: &AliasHistory,
    now_ms: i64,
) -> (Batch, PageStats) {
    // Within a stream, order by time then event id (identical milliseconds are common).
    events.sort_by(|a, b| (&a.stream, a.time_ms, &a.event_id).cmp(&(&b.stream, b.time_ms, &b.event_id)));
    let mut batch = Batch::default();
    let mut stats = PageStats::default();
    let mut touched: Vec<String> = Vec::new();
    let latest = now_ms.saturating_add(MAX_AHEAD_MS);
    let mut stream_function: Option<(String, String)> = None;
    // Where the current stream's events begin in the batch, and the invocations whose START
    // this page holds (all their events are then in the batch).
    let mut stream_begin = 0usize;
    let mut started_here: Vec<(String, i64)> = Vec::new();
    for ev in &events {
        if !(EARLIEST_EVENT_MS..=latest).contains(&ev.time_ms) {
            *stats.rejected.entry("timestamp_out_of_range").or_default() += 1;
            batch.rejections.push(Rejection {
                time_ms: ev.time_ms.clamp(EARLIEST_EVENT_MS, latest),
                source: Source::Logs.as_str().to_owned(),
                origin: [log_group, ev.stream.as_str(), ev.event_id.as_str()].join("|"),
                reason: "timestamp_out_of_range",
                detail: format!("event time {} ms is not between 2000-01-01 and a day from now", ev.time_ms),
                raw: ev.message.clone(),
            });
            continue;
        }
        stats.newest_event_ms = stats.newest_event_ms.max(Some(ev.time_ms));
        // Annotations name the function the stream names (shared custom log groups), like
        // the events they annotate; computed once per stream.
        if stream_function.as_ref().is_none_or(|(s, _)| *s != ev.stream) {
            stream_function = Some((ev.stream.clone(), crate::lambda::function_of(log_group, &ev.stream)));
            stream_begin = batch.events.len();
            started_here.clear();
        }
        let function = stream_function.as_ref().map(|(_, f)| f.as_str()).unwrap_or_default();
        // Events come grouped by stream (sorted above): the lookups and the clone happen
        // once per stream, not once per event.
        if touched.last() != Some(&ev.stream) && !touched.contains(&ev.stream) {
            touched.push(ev.stream.clone());
        }
        if !streams.contains_key(&ev.stream) {
            streams.insert(ev.stream.clone(), StreamMemory::default());
        }
        let Some(memory) = streams.get_mut(&ev.stream) else { continue };
        let parsed = parse_message(&ev.message);
        match &parsed {
            Parsed::Start { request_id, version } => {
                memory.remember_start(ev.time_ms, request_id, version.as_ref());
                started_here.push((request_id.clone(), ev.time_ms));
            }
            _ => memory.seek(ev.time_ms),
        }
        let raw = RawLogEvent {
            log_group,
            stream: &ev.stream,
            event_id: &ev.event_id,
            time_ms: ev.time_ms,
            message: &ev.message,
        };
        for out in assemble(&mut memory.state, &raw, parsed) {
            match out {
                Output::Event { event, alias_hint } => batch.events.push(with_env(event, alias_hint, attributor, history)),
                Output::Annotate { request_id, trace_id, error, timeout, cold_start } => {
                    let here = started_here.iter().rev().find(|(r, _)| *r == request_id).map(|(_, t)| *t);
                    let annotation = Annotation {
                        function: function.to_owned(),
                        from_ms: here
                            .or_else(|| memory.start_of(&request_id, ev.time_ms))
                            .unwrap_or_else(|| ev.time_ms.saturating_sub(MAX_INVOCATION_MS)),
                        to_ms: ev.time_ms,
                        in_batch: here.is_some(),
                        request_id,
                        trace_id,
                        error,
                        timeout,
                        cold_start: cold_start.unwrap_or(false),
                    };
                    annotation.apply(&mut batch.events[stream_begin..]);
                    batch.annotations.push(annotation);
                }
                Output::Rejected(r) => {
                    *stats.rejected.entry(r.reason).or_default() += 1;
                    batch.rejections.push(r);
                }
                Output::Ignored(reason) => *stats.ignored.entry(reason).or_default() += 1,
            }
        }
    }
    stats.touched = touched;
    (batch, stats)
}

/// The saved state of the `touched` streams, for the batch that also moves the checkpoint:
/// a poll saves it once, with its last page, so states and position stay together (and a
/// page does not rewrite every stream's state).
pub fn stream_rows<'a>(log_group: &str, streams: &HashMap<String, StreamMemory>, touched: impl IntoIterator<Item = &'a String>) -> Vec<StreamStateRow> {
    touched
        .into_iter()
        .filter_map(|stream| {
            let state = serde_json::to_string(streams.get(stream)?).ok()?;
            Some(StreamStateRow { log_group: log_group.to_string(), stream: stream.clone(), state })
        })
        .collect()
}

fn with_env(mut event: TimingEvent, alias_hint: Option<String>, attributor: &Attributor, history: &AliasHistory) -> TimingEvent {
    event.env = attributor.env_with(
        history,
        &event.function,
        event.function_version.as_deref(),
        alias_hint.as_deref(),
        event.time_ms,
    );
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AliasSpan;
    use crate::config::EnvironmentsConfig;

    fn ev(stream: &str, t: i64, id: u32, msg: &str) -> PageEvent {
        PageEvent { stream: stream.into(), time_ms: t, event_id: format!("{id:056}"), message: msg.into() }
    }

    const G: &str = "/aws/lambda/GenerateDynamicScenarioHandler";
    /// Wall time of the tests' pages (their events are at 2026-11-22 and just after).
    const NOW: i64 = 1_795_341_600_000;
    const T: i64 = 1_795_300_000_000;
    const S12: &str = "2026/11/22/[12]0123456789abcdef0123456789abcdef";

    fn invocation(stream: &str, t: i64, id0: u32, req: &str, bedrock: f64) -> Vec<PageEvent> {
        vec![
            ev(stream, t, id0, &format!("START RequestId: {req} Version: 12\n")),
            ev(stream, t + 1, id0 + 1, r#"{"level": "INFO", "event_type": "START", "function_name": "GDSH", "message": "Function started"}"#),
            ev(stream, t + 2, id0 + 2, &format!(r#"{{"level": "INFO", "event_type": "TIMING", "function_name": "GDSH", "metric": "BedrockCallDuration", "value_sec": {bedrock}}}"#)),
            ev(stream, t + 3, id0 + 3, r#"{"level": "INFO", "event_type": "END", "function_name": "GDSH", "message": "Function completed", "total_function_duration": 3.125}"#),
            ev(stream, t + 3, id0 + 4, &format!("END RequestId: {req}\n")),
            ev(stream, t + 3, id0 + 5, &format!("REPORT RequestId: {req}\tDuration: 3125.00 ms\tBilled Duration: 3126 ms\tMemory Size: 1024 MB\tMax Memory Used: 102 MB\t\nXRAY TraceId: 1-5d83c0ad-b8eb33a0b1de97d804fac890\tSegmentId: 31255c3b19bd3637\tSampled: true\n")),
        ]
    }

    fn attributor() -> (Attributor, AliasHistory) {
        let a = Attributor::new(&EnvironmentsConfig::default());
        let mut h = AliasHistory::default();
        h.by_function.insert(
            "GenerateDynamicScenarioHandler".into(),
            vec![AliasSpan { alias: "Dev".into(), version: "12".into(), weight: 1.0, first_seen_ms: 0, last_seen_ms: 0 }],
        );
        (a, h)
    }

    #[test]
    fn seed_lines_get_the_request_and_env_of_their_invocation() {
        let (a, h) = attributor();
        let mut streams = HashMap::new();
        let mut page = invocation(S12, T + 1_000, 0, "req-a", 2.847);
        page.extend(invocation(S12, T + 5_000, 10, "req-b", 9.1));
        page.push(ev(S12, T + 5_500, 99, "just an application log line"));
        let (batch, stats) = process_page(G, page, &mut streams, &a, &h, NOW);
        let bedrock: Vec<&TimingEvent> = batch.events.iter().filter(|e| e.operation == "BedrockCallDuration").collect();
        assert_eq!(bedrock.len(), 2);
        assert_eq!(bedrock[0].request_id.as_deref(), Some("req-a"));
        assert_eq!(bedrock[1].request_id.as_deref(), Some("req-b"));
        assert!(batch.events.iter().all(|e| e.env == "Dev" && e.function == "GenerateDynamicScenarioHandler"), "{:?}", batch.events);
        assert_eq!(batch.events.iter().filter(|e| e.operation == "Lambda.Duration").count(), 2);
        assert_eq!(stats.ignored.values().sum::<u64>() >= 1, true);
        assert_eq!(stats.touched, [S12]);
        assert_eq!(stats.newest_event_ms, Some(T + 5_500));
    }

    #[test]
    fn rereading_an_overlap_after_a_restart_attributes_lines_the_same_way() {
        let (a, h) = attributor();
        let mut page = invocation(S12, T + 1_000, 0, "req-a", 1.0);
        page.extend(invocation(S12, T + 5_000, 10, "req-b", 2.0));
        let mut first = HashMap::new();
        let (all, stats) = process_page(G, page.clone(), &mut first, &a, &h, NOW);
        // Restart: memory comes back from its JSON; the overlap re-read starts mid-invocation b.
        let rows = stream_rows(G, &first, &stats.touched);
        let saved: StreamMemory = serde_json::from_str(&rows[0].state).unwrap();
        let mut second = HashMap::from([(S12.to_string(), saved)]);
        let overlap: Vec<PageEvent> = page.into_iter().filter(|e| e.time_ms >= T + 5_002).collect();
        let (again, _) = process_page(G, overlap, &mut second, &a, &h, NOW);
        for e in &again.events {
            let original = all.events.iter().find(|o| o.idem_key == e.idem_key).expect("same keys");
            // The re-read may already know the REPORT's trace id (the store adds it to the
            // first read's rows through an annotation); everything else must agree.
            let mut e = e.clone();
            e.trace_id.clone_from(&original.trace_id);
            assert_eq!(original, &e);
        }
        assert!(!again.events.is_empty());
    }

    #[test]
    fn timestamps_that_are_not_times_are_rejected_not_stored() {
        let (a, h) = attributor();
        let mut streams = HashMap::new();
        let mut page = invocation(S12, T + 1_000, 0, "req-a", 2.0);
        page.push(ev(S12, i64::MAX, 50, r#"{"event_type": "TIMING", "metric": "X", "value_sec": 1.0}"#));
        page.push(ev(S12, -5, 51, r#"{"event_type": "TIMING", "metric": "X", "value_sec": 1.0}"#));
        page.push(ev(S12, NOW + 2 * 86_400_000, 52, r#"{"event_type": "TIMING", "metric": "X", "value_sec": 1.0}"#));
        let (batch, stats) = process_page(G, page, &mut streams, &a, &h, NOW);
        assert_eq!(stats.rejected.get("timestamp_out_of_range"), Some(&3));
        assert_eq!(batch.rejections.len(), 3);
        assert!(batch.events.iter().all(|e| e.operation != "X"));
        assert_eq!(stats.newest_event_ms, Some(T + 1_003), "out-of-range times never reach the checkpoint");
    }

    /// In a custom log group shared by several functions the stream names the function; a
    /// REPORT's facts (trace id, timeout) must reach that function's events.
    #[test]
    fn annotations_name_the_function_of_the_stream_in_shared_groups() {
        let (a, h) = attributor();
        let mut streams = HashMap::new();
        let shared = "/app/atlas-engine";
        let stream = "2026/11/22/GenerateDynamicScenarioHandler[12]0123456789abcdef0123456789abcdef";
        let page = invocation(stream, T + 1_000, 0, "req-a", 2.0);
        let (batch, _) = process_page(shared, page, &mut streams, &a, &h, NOW);
        assert!(batch.events.iter().all(|e| e.function == "GenerateDynamicScenarioHandler"), "{:?}", batch.events);
        assert!(!batch.annotations.is_empty());
        assert!(batch.annotations.iter().all(|x| x.function == "GenerateDynamicScenarioHandler"), "{:?}", batch.annotations);
    }


    /// A REPORT in the page of its START gives its facts in memory; one in a later page
    /// reaches back, through the store, to the START's time and no further.
    #[tokio::test]
    async fn report_facts_in_memory_within_a_page_and_through_the_store_across_pages() {
        const TRACE: &str = "1-5d83c0ad-b8eb33a0b1de97d804fac890";
        let (a, h) = attributor();
        let page = invocation(S12, T + 1_000, 0, "req-a", 2.0);
        let (batch, _) = process_page(G, page.clone(), &mut HashMap::new(), &a, &h, NOW);
        assert!(batch.events.iter().all(|e| e.trace_id.as_deref() == Some(TRACE)), "{:?}", batch.events);
        assert!(!batch.annotations.is_empty());
        assert!(batch.annotations.iter().all(|x| x.in_batch && x.from_ms == T + 1_000), "{:?}", batch.annotations);

        let store = crate::store::Store::open_memory().await.unwrap();
        let mut streams = HashMap::new();
        let (first, second) = page.split_at(3);
        let (b1, _) = process_page(G, first.to_vec(), &mut streams, &a, &h, NOW);
        assert!(b1.events.iter().all(|e| e.trace_id.is_none()));
        let (b2, _) = process_page(G, second.to_vec(), &mut streams, &a, &h, NOW);
        let report = b2.annotations.iter().find(|x| x.trace_id.is_some()).expect("the REPORT's trace id");
        assert!(!report.in_batch);
        assert_eq!((report.from_ms, report.to_ms), (T + 1_000, T + 1_003));
        store.commit(&b1).await.unwrap();
        store.commit(&b2).await.unwrap();
        let all = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, account: None, region: None, operations: &[] };
        let stored = store.slowest_events(all, 100).await.unwrap();
        assert_eq!(stored.len(), batch.events.len());
        assert!(stored.iter().all(|e| e.trace_id.as_deref() == Some(TRACE)), "{stored:?}");
    }

    #[tokio::test]
    async fn a_report_trace_id_reaches_the_seed_lines_of_a_shared_group() {
        let (a, h) = attributor();
        let store = crate::store::Store::open_memory().await.unwrap();
        let stream = "2026/11/22/GenerateDynamicScenarioHandler[12]0123456789abcdef0123456789abcdef";
        let (batch, _) = process_page("/app/atlas-engine", invocation(stream, T + 1_000, 0, "req-a", 2.0), &mut HashMap::new(), &a, &h, NOW);
        store.commit(&batch).await.unwrap();
        let all = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, account: None, region: None, operations: &[] };
        let traces: Vec<(String, Option<String>)> =
            store.slowest_events(all, 100).await.unwrap().into_iter().map(|e| (e.operation, e.trace_id)).collect();
        assert!(traces.iter().any(|t| t.0 == "BedrockCallDuration"), "{traces:?}");
        assert!(traces.iter().all(|t| t.1.as_deref() == Some("1-5d83c0ad-b8eb33a0b1de97d804fac890")), "{traces:?}");
    }

}
