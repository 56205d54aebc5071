//! Rolling windows by event time: every series keeps its recent events ordered by event
//! time (late events are inserted where they belong, not appended), and answers count,
//! exact nearest-rank quantiles, max and error rate over any window ending at `now`.

use std::collections::{BTreeMap, VecDeque};

/// One series: (account, region, env, function, operation, source).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The account's name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region (empty without `[[accounts]]`).
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub source: String,
}

/// Statistics of a window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowStats {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub error_rate: f64,
}

impl WindowStats {
    /// The quantile a budget names (0.5, 0.9, 0.95, 0.99).
    pub fn quantile(&self, q: f64) -> f64 {
        if q <= 0.5 {
            self.p50
        } else if q <= 0.9 {
            self.p90
        } else if q <= 0.95 {
            self.p95
        } else {
            self.p99
        }
    }
}

/// Computes the stats of `values` (unsorted) with `errors` of them failed. Exact nearest
/// rank, found by successive selections (linear time) rather than a full sort.
pub fn stats(mut values: Vec<f64>, errors: u64) -> WindowStats {
    let n = values.len();
    if n == 0 {
        return WindowStats::default();
    }
    let (out, max) = crate::quantile::select(&mut values, &[0.5, 0.9, 0.95, 0.99]);
    WindowStats {
        count: n as u64,
        p50: out[0],
        p90: out[1],
        p95: out[2],
        p99: out[3],
        max,
        error_rate: errors as f64 / n as f64,
    }
}

/// Events of one series, ordered by time.
#[derive(Debug, Default, Clone)]
pub struct Series {
    events: VecDeque<(i64, f64, bool)>,
}

impl Series {
    pub fn insert(&mut self, time_ms: i64, duration_s: f64, error: bool) {
        // Nearly every event is the newest; late ones go where they belong.
        if self.events.back().is_none_or(|(t, _, _)| *t <= time_ms) {
            self.events.push_back((time_ms, duration_s, error));
        } else {
            let at = self.events.partition_point(|(t, _, _)| *t <= time_ms);
            self.events.insert(at, (time_ms, duration_s, error));
        }
    }

    /// Drops events older than `cutoff_ms`.
    pub fn prune(&mut self, cutoff_ms: i64) {
        while self.events.front().is_some_and(|(t, _, _)| *t < cutoff_ms) {
            self.events.pop_front();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Values and error count in `(now − window, now]`.
    pub fn window(&self, now_ms: i64, window_ms: i64) -> (Vec<f64>, u64) {
        let from = now_ms - window_ms;
        let start = self.events.partition_point(|(t, _, _)| *t <= from);
        let end = self.events.partition_point(|(t, _, _)| *t <= now_ms);
        let mut values = Vec::with_capacity(end.saturating_sub(start));
        let mut errors = 0;
        for (_, d, e) in self.events.range(start..end.max(start)) {
            values.push(*d);
            errors += u64::from(*e);
        }
        (values, errors)
    }
}

/// Every series' window, bounded by the longest window anyone asks for.
#[derive(Debug, Default)]
pub struct Windows {
    pub series: BTreeMap<SeriesKey, Series>,
}

impl Windows {
    pub fn insert(&mut self, key: SeriesKey, time_ms: i64, duration_s: f64, error: bool) {
        self.series.entry(key).or_default().insert(time_ms, duration_s, error);
    }

    /// Drops events older than `cutoff_ms`, and series left empty.
    pub fn prune(&mut self, cutoff_ms: i64) {
        self.series.retain(|_, s| {
            s.prune(cutoff_ms);
            !s.is_empty()
        });
    }

    /// Events held in memory.
    pub fn len(&self) -> usize {
        self.series.values().map(Series::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The series of one target (its sources): adjacent in the map, whose keys start with
    /// the target's fields, so a range finds them without a pass over every series.
    fn of_target<'a>(&'a self, t: &'a crate::model::alert::Target) -> impl Iterator<Item = &'a Series> + 'a {
        let from = SeriesKey {
            account: t.account.clone(),
            region: t.region.clone(),
            env: t.env.clone(),
            function: t.function.clone(),
            operation: t.operation.clone(),
            source: String::new(),
        };
        self.series
            .range(from..)
            .take_while(move |(k, _)| k.account == t.account && k.region == t.region && k.env == t.env && k.function == t.function && k.operation == t.operation)
            .map(|(_, s)| s)
    }

    /// The values of the (env, function, operation) in the window, across all its sources.
    pub fn merged_values(&self, t: &crate::model::alert::Target, now_ms: i64, window_ms: i64) -> Vec<f64> {
        self.of_target(t).flat_map(|s| s.window(now_ms, window_ms).0).collect()
    }

    /// Stats of the (env, function, operation) across all its sources.
    pub fn merged(&self, t: &crate::model::alert::Target, now_ms: i64, window_ms: i64) -> WindowStats {
        let mut values = Vec::new();
        let mut errors = 0;
        for s in self.of_target(t) {
            let (v, e) = s.window(now_ms, window_ms);
            values.extend(v);
            errors += e;
        }
        stats(values, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile::nearest_rank;
    use proptest::prelude::*;

    fn key() -> SeriesKey {
        SeriesKey { account: "default".into(), region: String::new(), env: "Dev".into(), function: "f".into(), operation: "op".into(), source: "xray".into() }
    }

    #[test]
    fn late_events_land_in_their_window_and_old_ones_leave() {
        let mut w = Windows::default();
        for i in 0..100 {
            w.insert(key(), 10_000 + i * 100, (i + 1) as f64, false);
        }
        // A late event with an old timestamp: inside the window by event time.
        w.insert(key(), 10_050, 500.0, true);
        let s = w.merged(&crate::model::alert::Target::unscoped("Dev", "f", "op"), 20_000, 10_001);
        assert_eq!(s.count, 101);
        assert_eq!(s.max, 500.0);
        assert!((s.error_rate - 1.0 / 101.0).abs() < 1e-12);
        // A 1 s window holds only the last 10 events (times 19_000..=19_900 exclusive of 19_000).
        let s = w.merged(&crate::model::alert::Target::unscoped("Dev", "f", "op"), 19_900, 1_000);
        assert_eq!(s.count, 10);
        assert_eq!(s.p50, 95.0);
        w.prune(15_000);
        assert_eq!(w.len(), 50);
        w.prune(100_000);
        assert!(w.is_empty());
    }

    #[test]
    fn a_target_merges_its_sources_and_only_them() {
        let mut w = Windows::default();
        let k = |env: &str, op: &str, source: &str| SeriesKey { env: env.into(), operation: op.into(), source: source.into(), ..key() };
        w.insert(k("Dev", "op", "xray"), 1, 1.0, false);
        w.insert(k("Dev", "op", "logs"), 2, 2.0, true);
        w.insert(k("Dev", "op2", "xray"), 3, 30.0, false);
        w.insert(k("Dev", "o", "xray"), 3, 40.0, false);
        w.insert(k("PROD", "op", "xray"), 3, 50.0, false);
        let t = crate::model::alert::Target::unscoped("Dev", "f", "op");
        let s = w.merged(&t, 10, 100);
        assert_eq!((s.count, s.max, s.error_rate), (2, 2.0, 0.5));
        let mut v = w.merged_values(&t, 10, 100);
        v.sort_by(f64::total_cmp);
        assert_eq!(v, [1.0, 2.0]);
    }

    proptest! {
        #[test]
        fn p95_never_exceeds_max_and_counts_match(times in proptest::collection::vec((0i64..10_000, 0.0f64..60.0), 1..300), window in 1i64..10_000) {
            let mut s = Series::default();
            for (t, d) in &times {
                s.insert(*t, *d, false);
            }
            let now = 10_000;
            let (values, _) = s.window(now, window);
            let expected = times.iter().filter(|(t, _)| *t > now - window && *t <= now).count();
            prop_assert_eq!(values.len(), expected);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let st = stats(values, 0);
            prop_assert!(st.p95 <= st.max && st.p50 <= st.p95 && st.p95 <= st.p99);
            if !sorted.is_empty() {
                prop_assert_eq!(Some(st.p95), nearest_rank(&sorted, 0.95));
                prop_assert_eq!(Some(st.p50), nearest_rank(&sorted, 0.5));
                prop_assert_eq!(Some(st.p99), nearest_rank(&sorted, 0.99));
                prop_assert_eq!(st.max, *sorted.last().unwrap());
            }
        }
    }
}
