//! The pure part of publishing: which `OperationLatency` and `BudgetBreached` data a set of
//! stored events and budget statuses make, and how they are cut into PutMetricData requests
//! within CloudWatch's limits (see the parent module's list). Data in, data out: SDK-free
//! data ([`Datum`]) so the batching is tested as data.

use crate::evaluate::BudgetStatus;
use crate::store::published::PendingEvent;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The latency metric's name.
pub const LATENCY_METRIC: &str = "OperationLatency";
/// The budget metric's name.
pub const BUDGET_METRIC: &str = "BudgetBreached";
/// Distinct values PutMetricData accepts in one datum's Values/Counts arrays.
pub const MAX_VALUES_PER_DATUM: usize = 150;
/// Data PutMetricData accepts in one request.
pub const MAX_DATA_PER_REQUEST: usize = 1_000;
/// Estimated request size we stay under: AWS's limit is 1 MB; the estimate is an upper
/// bound of the CBOR encoding before compression, and the margin covers the envelope.
pub const MAX_REQUEST_BYTES: usize = 800_000;
/// Significant digits kept of each value.
pub const SIGNIFICANT_DIGITS: i32 = 4;
/// Oldest event time sent: CloudWatch takes two weeks back; an hour of margin covers the
/// minute truncation and a request retried for a while.
pub const MAX_AGE_MS: i64 = 14 * 24 * 3_600_000 - 3_600_000;
/// Newest event time sent: CloudWatch takes two hours ahead; 5 minutes of margin for clock skew.
pub const MAX_AHEAD_MS: i64 = 2 * 3_600_000 - 300_000;
/// Events read from the store at a time.
pub(super) const READ_CHUNK: i64 = 20_000;
/// PutMetricData calls per second at most (the account quota is far higher; this bounds a
/// catch-up after a long outage).
pub(super) const REQUESTS_PER_SECOND: f64 = 20.0;

// Size estimate of one datum in CBOR: map and key overhead, metric name, timestamp, unit;
// each dimension; each value and its count (two 9-byte doubles).
const DATUM_OVERHEAD_BYTES: usize = 160;
const DIMENSION_OVERHEAD_BYTES: usize = 32;
const VALUE_BYTES: usize = 18;

/// One MetricDatum, SDK-free so the batching is testable as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub metric: &'static str,
    pub dimensions: Vec<(&'static str, String)>,
    /// Epoch ms (the minute's start for `OperationLatency`).
    pub timestamp_ms: i64,
    /// Distinct values, ascending.
    pub values: Vec<f64>,
    /// How often each value occurred (whole numbers).
    pub counts: Vec<f64>,
    pub unit: StandardUnit,
}

impl Datum {
    pub(super) fn estimated_bytes(&self) -> usize {
        DATUM_OVERHEAD_BYTES
            + self.dimensions.iter().map(|(n, v)| DIMENSION_OVERHEAD_BYTES + n.len() + v.len()).sum::<usize>()
            + VALUE_BYTES * self.values.len()
    }

    pub(super) fn to_sdk(&self) -> MetricDatum {
        MetricDatum::builder()
            .metric_name(self.metric)
            .set_dimensions(Some(
                self.dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(v).build()).collect(),
            ))
            .timestamp(DateTime::from_millis(self.timestamp_ms))
            .set_values(Some(self.values.clone()))
            .set_counts(Some(self.counts.clone()))
            .unit(self.unit.clone())
            .build()
    }
}

/// One PutMetricData call's worth of events: its data cover exactly the stored events with
/// ids in (previous request's `last_event_id`, `last_event_id`], less the dropped ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Empty when every event it covers was dropped: then only the watermark moves.
    pub data: Vec<Datum>,
    pub last_event_id: i64,
    /// Events in `data`.
    pub events: u64,
    /// Events left out, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// A value ordered by `total_cmp`, so it can key a map.
#[derive(Debug, Clone, Copy)]
struct Value(f64);

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Value {}
impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A datum's dimensions (name, value), in the order sent, and its minute start in epoch ms.
type SeriesMinute = (Vec<(&'static str, String)>, i64);

/// The dimensions an event's datum carries: Environment, FunctionName, Operation, and with
/// `origin` (metrics of several accounts published into one) Account and Region.
fn latency_dimensions(e: &PendingEvent, origin: bool) -> Vec<(&'static str, String)> {
    let mut d = vec![("Environment", e.env.clone()), ("FunctionName", e.function.clone()), ("Operation", e.operation.clone())];
    if origin {
        d.extend([("Account", e.account.clone()), ("Region", e.region.clone())]);
    }
    d
}

#[derive(Default)]
struct RequestBuilder {
    groups: BTreeMap<SeriesMinute, BTreeMap<Value, u64>>,
    data: usize,
    bytes: usize,
    events: u64,
    last_event_id: i64,
    dropped: BTreeMap<&'static str, u64>,
}

impl RequestBuilder {
    /// Data and bytes adding `value` to `key` would add.
    fn cost(&self, key: &SeriesMinute, value: Value) -> (usize, usize) {
        match self.groups.get(key) {
            Some(values) if values.contains_key(&value) => (0, 0),
            Some(values) if values.len() % MAX_VALUES_PER_DATUM != 0 => (0, VALUE_BYTES),
            _ => (1, latency_datum_overhead(key) + VALUE_BYTES),
        }
    }

    fn finish(self) -> Request {
        let mut data = Vec::with_capacity(self.data);
        for ((dimensions, minute_ms), values) in self.groups {
            let values: Vec<(Value, u64)> = values.into_iter().collect();
            for chunk in values.chunks(MAX_VALUES_PER_DATUM) {
                data.push(Datum {
                    metric: LATENCY_METRIC,
                    dimensions: dimensions.clone(),
                    timestamp_ms: minute_ms,
                    values: chunk.iter().map(|(v, _)| v.0).collect(),
                    counts: chunk.iter().map(|(_, n)| *n as f64).collect(),
                    unit: StandardUnit::Seconds,
                });
            }
        }
        debug_assert_eq!(data.len(), self.data);
        Request { data, last_event_id: self.last_event_id, events: self.events, dropped: self.dropped }
    }
}

fn latency_datum_overhead((dimensions, _): &SeriesMinute) -> usize {
    DATUM_OVERHEAD_BYTES + dimensions.iter().map(|(n, v)| DIMENSION_OVERHEAD_BYTES + n.len() + v.len()).sum::<usize>()
}

/// Why an event cannot be sent, if it cannot.
fn check(e: &PendingEvent, now_ms: i64, origin: bool) -> Result<(), &'static str> {
    if !e.duration_s.is_finite() || e.duration_s.abs() >= 2f64.powi(360) {
        return Err("invalid_value");
    }
    if e.time_ms < now_ms - MAX_AGE_MS {
        return Err("too_old");
    }
    if e.time_ms > now_ms + MAX_AHEAD_MS {
        return Err("too_far_future");
    }
    if ![&e.env, &e.function, &e.operation].into_iter().all(|v| valid_dimension_value(v)) {
        return Err("invalid_dimension");
    }
    if origin && ![&e.account, &e.region].into_iter().all(|v| valid_dimension_value(v)) {
        return Err("invalid_dimension");
    }
    Ok(())
}

/// CloudWatch takes dimension values of 1 to 1024 ASCII characters, not all whitespace.
pub fn valid_dimension_value(v: &str) -> bool {
    v.len() <= 1024 && v.is_ascii() && !v.trim().is_empty()
}

/// `v` rounded to `digits` significant digits (the nearest double to the decimal result).
pub fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v + 0.0; // -0.0 becomes 0.0
    }
    let shift = digits - 1 - v.abs().log10().floor() as i32;
    if !(-300..=300).contains(&shift) {
        return v;
    }
    // Both operands of the final division/multiplication are exact, so the result is the
    // correctly rounded decimal.
    if shift >= 0 {
        let s = 10f64.powi(shift);
        (v * s).round() / s
    } else {
        let s = 10f64.powi(-shift);
        (v / s).round() * s
    }
}

/// Turns events (ascending ids, as read after the watermark) into requests, each covering a
/// contiguous id range, in order. Pure: `now_ms` decides what is too old or too far ahead;
/// `origin` adds the Account and Region dimensions.
pub fn plan(events: &[PendingEvent], now_ms: i64, origin: bool) -> Vec<Request> {
    let mut out = Vec::new();
    let mut cur = RequestBuilder::default();
    let mut covers_any = false;
    for e in events {
        covers_any = true;
        if let Err(reason) = check(e, now_ms, origin) {
            *cur.dropped.entry(reason).or_default() += 1;
            cur.last_event_id = e.id;
            continue;
        }
        let key: SeriesMinute = (latency_dimensions(e, origin), e.time_ms.div_euclid(60_000) * 60_000);
        let value = Value(round_significant(e.duration_s, SIGNIFICANT_DIGITS));
        let (mut data, mut bytes) = cur.cost(&key, value);
        if cur.data + data > MAX_DATA_PER_REQUEST || cur.bytes + bytes > MAX_REQUEST_BYTES {
            out.push(std::mem::take(&mut cur).finish());
            (data, bytes) = cur.cost(&key, value);
        }
        cur.data += data;
        cur.bytes += bytes;
        cur.events += 1;
        cur.last_event_id = e.id;
        *cur.groups.entry(key).or_default().entry(value).or_default() += 1;
    }
    if covers_any {
        out.push(cur.finish());
    }
    out
}

/// One `BudgetBreached` datum per status; returns the data and how many statuses had
/// dimension values CloudWatch would refuse. `origin` adds the Account and Region dimensions.
pub fn budget_data(statuses: &[BudgetStatus], now_ms: i64, origin: bool) -> (Vec<Datum>, u64) {
    let mut invalid = 0;
    let mut data = Vec::new();
    for s in statuses {
        let mut dimensions = vec![
            ("Environment", s.env.clone()),
            ("FunctionName", s.function.clone()),
            ("Operation", s.operation.clone()),
            ("Budget", s.budget.clone()),
        ];
        if origin {
            dimensions.extend([("Account", s.account.clone()), ("Region", s.region.clone())]);
        }
        if !dimensions.iter().all(|(_, v)| valid_dimension_value(v)) {
            invalid += 1;
            continue;
        }
        data.push(Datum {
            metric: BUDGET_METRIC,
            dimensions,
            timestamp_ms: now_ms,
            values: vec![if s.breached { 1.0 } else { 0.0 }],
            counts: vec![1.0],
            unit: StandardUnit::None,
        });
    }
    (data, invalid)
}

/// Splits data into requests within the count and size limits, keeping their order.
pub fn split_requests(data: Vec<Datum>) -> Vec<Vec<Datum>> {
    let mut out: Vec<Vec<Datum>> = Vec::new();
    let mut bytes = 0;
    for d in data {
        let b = d.estimated_bytes();
        match out.last_mut() {
            Some(last) if last.len() < MAX_DATA_PER_REQUEST && bytes + b <= MAX_REQUEST_BYTES => {
                bytes += b;
                last.push(d);
            }
            _ => {
                bytes = b;
                out.push(vec![d]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::published::PendingEvent;
    use aws_sdk_cloudwatch::types::StandardUnit;

    const NOW: i64 = 1_795_000_000_000;

    fn ev(id: i64, time_ms: i64, op: &str, v: f64) -> PendingEvent {
        PendingEvent {
            id,
            time_ms,
            env: "PROD".into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: op.into(),
            duration_s: v,
            account: "default".into(),
            region: String::new(),
        }
    }

    fn total_counts(reqs: &[Request]) -> f64 {
        reqs.iter().flat_map(|r| &r.data).flat_map(|d| &d.counts).sum()
    }

    #[test]
    fn rounds_to_four_significant_digits() {
        assert_eq!(round_significant(1.23396, 4), 1.234);
        assert_eq!(round_significant(0.031, 4), 0.031);
        assert_eq!(round_significant(0.4125, 4), 0.4125);
        assert_eq!(round_significant(2.8474999, 4), 2.847);
        assert_eq!(round_significant(12345.6, 4), 12350.0);
        assert_eq!(round_significant(0.000123456, 4), 0.0001235);
        assert_eq!(round_significant(999.96, 4), 1000.0);
        assert_eq!(round_significant(0.0, 4), 0.0);
        assert!(round_significant(-0.0, 4).is_sign_positive());
        assert_eq!(round_significant(5e-324, 4), 5e-324);
        for v in [0.001234, 0.5, 1.0, 9.999, 37.5, 12.75, 1e-9, 3e7] {
            let r = round_significant(v, 4);
            assert!(((r - v) / v).abs() <= 5e-4, "{v} -> {r}");
        }
    }

    #[test]
    fn groups_by_series_and_minute_with_counts() {
        let minute = NOW - NOW % 60_000 - 120_000;
        let events = vec![
            ev(1, minute + 1_000, "Bedrock", 2.5),
            ev(2, minute + 59_999, "Bedrock", 2.5),
            ev(3, minute + 60_000, "Bedrock", 2.5),
            ev(4, minute + 2_000, "Bedrock", 1.23396),
            ev(5, minute + 3_000, "Bedrock", 1.23404),
            ev(6, minute + 4_000, "DynamoDB", 0.042),
        ];
        let reqs = plan(&events, NOW, false);
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!((r.last_event_id, r.events), (6, 6));
        assert!(r.dropped.is_empty());
        let summary: Vec<(String, i64, Vec<f64>, Vec<f64>)> =
            r.data.iter().map(|d| (d.dimensions[2].1.clone(), d.timestamp_ms, d.values.clone(), d.counts.clone())).collect();
        assert_eq!(
            summary,
            vec![
                ("Bedrock".into(), minute, vec![1.234, 2.5], vec![2.0, 2.0]),
                ("Bedrock".into(), minute + 60_000, vec![2.5], vec![1.0]),
                ("DynamoDB".into(), minute, vec![0.042], vec![1.0]),
            ]
        );
        let d = &r.data[0];
        assert_eq!((d.metric, d.unit.clone()), (LATENCY_METRIC, StandardUnit::Seconds));
        assert_eq!(
            d.dimensions,
            vec![
                ("Environment", "PROD".to_string()),
                ("FunctionName", "GenerateDynamicScenarioHandler".to_string()),
                ("Operation", "Bedrock".to_string())
            ]
        );
    }

    #[test]
    fn a_series_minute_with_more_than_150_values_becomes_several_data() {
        let minute = NOW - NOW % 60_000 - 60_000;
        let events: Vec<PendingEvent> = (0..400).map(|i| ev(i + 1, minute + i, "Op", 1.0 + i as f64 / 1000.0)).collect();
        let reqs = plan(&events, NOW, false);
        assert_eq!(reqs.len(), 1);
        let lens: Vec<usize> = reqs[0].data.iter().map(|d| d.values.len()).collect();
        assert_eq!(lens, vec![150, 150, 100]);
        assert!(reqs[0].data.iter().all(|d| d.timestamp_ms == minute && d.values.len() == d.counts.len()));
        assert_eq!(total_counts(&reqs), 400.0);
        // Values ascend within and across the data of one series-minute.
        let all: Vec<f64> = reqs[0].data.iter().flat_map(|d| d.values.clone()).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn more_than_1000_data_split_into_requests_on_id_boundaries() {
        let base = NOW - NOW % 60_000 - 48 * 3_600_000;
        // 2,500 events, one per minute: 2,500 data.
        let events: Vec<PendingEvent> = (0..2_500).map(|i| ev(i + 1, base + i * 60_000, "Op", 0.25)).collect();
        let reqs = plan(&events, NOW, false);
        assert_eq!(reqs.iter().map(|r| r.data.len()).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        assert_eq!(reqs.iter().map(|r| r.last_event_id).collect::<Vec<_>>(), vec![1000, 2000, 2500]);
        assert_eq!(reqs.iter().map(|r| r.events).sum::<u64>(), 2_500);
        assert_eq!(total_counts(&reqs), 2_500.0);
    }

    #[test]
    fn repeated_values_do_not_start_a_new_request() {
        let minute = NOW - NOW % 60_000 - 60_000;
        // 1,000 series fill a request; more events of the same values still fit in it.
        let mut events: Vec<PendingEvent> = (0..1_000).map(|i| ev(i + 1, minute, &format!("Op{i}"), 0.5)).collect();
        events.push(ev(1_001, minute + 5, "Op7", 0.5));
        events.push(ev(1_002, minute + 5, "Op7", 0.75));
        // A new series needs a new datum: the next request.
        events.push(ev(1_003, minute + 5, "OpNew", 0.5));
        let reqs = plan(&events, NOW, false);
        assert_eq!(
            reqs.iter().map(|r| (r.data.len(), r.last_event_id, r.events)).collect::<Vec<_>>(),
            vec![(1000, 1002, 1002), (1, 1003, 1)]
        );
    }

    #[test]
    fn large_dimension_values_split_by_size() {
        let minute = NOW - NOW % 60_000 - 60_000;
        let long = "x".repeat(1_000);
        let events: Vec<PendingEvent> = (0..600)
            .map(|i| PendingEvent { env: long.clone(), function: long.clone(), ..ev(i + 1, minute, &format!("{long}{i}"), 0.5) })
            .collect();
        let reqs = plan(&events, NOW, false);
        assert!(reqs.len() >= 2, "{}", reqs.len());
        for r in &reqs {
            let bytes: usize = r.data.iter().map(Datum::estimated_bytes).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
        }
        assert_eq!(reqs.iter().map(|r| r.events).sum::<u64>(), 600);
    }

    #[test]
    fn drops_invalid_old_and_future_events_and_counts_them() {
        let events = vec![
            ev(1, NOW - 60_000, "Op", f64::NAN),
            ev(2, NOW - 60_000, "Op", f64::INFINITY),
            ev(3, NOW - 14 * 24 * 3_600_000, "Op", 1.0),
            ev(4, NOW - MAX_AGE_MS + 60_000, "Op", 1.0),
            ev(5, NOW + 3 * 3_600_000, "Op", 1.0),
            ev(6, NOW + 3_600_000, "Op", 1.0),
            PendingEvent { env: "   ".into(), ..ev(7, NOW, "Op", 1.0) },
            ev(8, NOW, "Opé", 1.0),
            ev(9, NOW, "Op", f64::NEG_INFINITY),
        ];
        let reqs = plan(&events, NOW, false);
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        // The last event is dropped, yet the watermark covers it.
        assert_eq!((r.last_event_id, r.events), (9, 2));
        assert_eq!(
            r.dropped,
            BTreeMap::from([("invalid_dimension", 2), ("invalid_value", 3), ("too_far_future", 1), ("too_old", 1)])
        );
        assert_eq!(total_counts(&reqs), 2.0);
        assert!(r.data.iter().flat_map(|d| &d.values).all(|v| v.is_finite()));
    }

    #[test]
    fn only_dropped_events_give_a_request_without_data() {
        let reqs = plan(&[ev(41, NOW, "Op", f64::NAN)], NOW, false);
        assert_eq!(reqs, vec![Request { data: vec![], last_event_id: 41, events: 0, dropped: BTreeMap::from([("invalid_value", 1)]) }]);
        assert!(plan(&[], NOW, false).is_empty());
    }

    #[test]
    fn budget_statuses_become_0_or_1_and_split_by_1000() {
        let status = |i: usize, breached: bool| BudgetStatus {
            budget: format!("bedrock-p95-{i}"),
            account: "default".into(),
            region: String::new(),
            env: "PROD".into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: "BedrockCallDuration".into(),
            quantile: 0.95,
            budget_s: 5.0,
            observed_s: Some(6.0),
            samples: 30,
            breached,
            state: crate::model::alert::AlertState::Firing,
            severity: "warning".into(),
        };
        let mut statuses: Vec<BudgetStatus> = (0..1_200).map(|i| status(i, i % 2 == 0)).collect();
        statuses.push(BudgetStatus { budget: String::new(), ..status(0, true) });
        let (data, invalid) = budget_data(&statuses, NOW, false);
        assert_eq!((data.len(), invalid), (1_200, 1));
        assert_eq!((data[0].values.clone(), data[1].values.clone()), (vec![1.0], vec![0.0]));
        assert_eq!(data[0].unit, StandardUnit::None);
        assert_eq!(data[0].dimensions.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["Environment", "FunctionName", "Operation", "Budget"]);
        let reqs = split_requests(data);
        assert_eq!(reqs.iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 200]);
    }

    #[test]
    fn published_into_one_account_several_accounts_stay_apart_by_dimension() {
        let mut prod = ev(1, NOW, "Op", 0.5);
        (prod.account, prod.region) = ("prod".into(), "eu-west-1".into());
        let mut dev = ev(2, NOW, "Op", 0.5);
        (dev.account, dev.region) = ("dev".into(), "eu-west-1".into());
        let own = plan(&[prod.clone(), dev.clone()], NOW, false);
        assert_eq!(own[0].data.len(), 1, "into each account's own CloudWatch: no origin dimensions");
        let central = plan(&[prod, dev], NOW, true);
        assert_eq!(central[0].data.len(), 2);
        let accounts: Vec<&str> = central[0].data.iter().map(|d| d.dimensions.iter().find(|(n, _)| *n == "Account").unwrap().1.as_str()).collect();
        assert_eq!(accounts, ["dev", "prod"]);
        assert_eq!(central[0].data[0].dimensions.len(), 5);
        let mut blank = ev(3, NOW, "Op", 0.5);
        blank.region = String::new();
        assert_eq!(plan(&[blank], NOW, true)[0].dropped.get("invalid_dimension"), Some(&1), "CloudWatch refuses an empty dimension value");
    }

    #[test]
    fn sdk_datum_carries_values_counts_unit_and_minute() {
        let d = Datum {
            metric: LATENCY_METRIC,
            dimensions: vec![("Environment", "Dev".into())],
            timestamp_ms: 1_795_000_020_000,
            values: vec![0.5, 1.25],
            counts: vec![3.0, 1.0],
            unit: StandardUnit::Seconds,
        };
        let s = d.to_sdk();
        assert_eq!(s.metric_name(), Some(LATENCY_METRIC));
        assert_eq!((s.values(), s.counts()), (&[0.5, 1.25][..], &[3.0, 1.0][..]));
        assert_eq!(s.unit(), Some(&StandardUnit::Seconds));
        assert_eq!(s.timestamp().unwrap().to_millis().unwrap(), 1_795_000_020_000);
        assert_eq!(s.dimensions()[0].value(), Some("Dev"));
    }
}
