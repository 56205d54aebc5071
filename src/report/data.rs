//! Where a report's numbers come from. A range is cut at hour boundaries and each piece is
//! read from raw events or from rollups by one rule:
//!
//! 1. A whole hour (or a whole UTC day) inside the range is read from its rollup when it
//!    has one and either the range is longer than [`RAW_SPAN_MS`] (24 h: long ranges are
//!    answered from rollups, so 90 days take milliseconds) or raw events no longer hold all
//!    of it: it ends before the oldest stored event's hour, or it is that hour and holds
//!    fewer raw events than its rollup counted (retention cut into it). A day is used only
//!    when all its 24 hours qualify; with a `step`, only periods that fit in one step.
//! 2. Everything else (partial hours at the edges, the hour in progress, hours not rolled
//!    yet, every hour of a range up to 24 h that raw events still hold) is read from raw
//!    events.
//!
//! A group fed only by raw events has exact nearest-rank percentiles; once a rollup feeds
//! it, its raw values join the rollup's sketch and its percentiles are within 1 %
//! ([`Agg::approximate`]). Counts, sums, minimum and maximum are exact either way.

use crate::model::counts::Counts;
use crate::sketch::Sketch;
use crate::store::events::{EventSelection, ScanColumns};
use crate::store::rollups::{DAY_MS, HOUR_MS, Resolution, RollupFilter, RollupRow, floor_to};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Ranges up to this long are read from raw events wherever raw retention holds them.
pub const RAW_SPAN_MS: i64 = 24 * HOUR_MS;
/// The longest range [`plan`] cuts (forty years of hours); longer ones lose their start.
const MAX_PLAN_SPAN_MS: i64 = 40 * 366 * DAY_MS;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub from_ms: i64,
    pub to_ms: i64,
    pub env: Option<String>,
    pub function: Option<String>,
    /// Only this account (`[[accounts]] name`) and region.
    pub account: Option<String>,
    pub region: Option<String>,
    /// Only these operations (empty: all).
    pub operations: Vec<String>,
    /// Split the range into epoch-aligned buckets of this many ms (None: one bucket).
    pub step_ms: Option<i64>,
    /// Count raw events' cold starts and timeouts (timeouts are read from each event's
    /// attributes: slower). Otherwise they count as 0 for raw events.
    pub invocations: bool,
}

/// A group: one series, in one bucket (`bucket_ms` is 0 without a step).
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
    pub bucket_ms: i64,
}

/// Everything known about one group of events.
#[derive(Debug, Clone, Default)]
pub struct Agg {
    pub counts: Counts,
    /// Raw values not folded into the sketch yet.
    values: Vec<f64>,
    /// Present once a rollup (or a conversion) fed the group.
    sketch: Option<Sketch>,
}

impl Agg {
    /// Counts one raw event.
    pub fn push(&mut self, v: f64, error: bool, cold_start: bool, timeout: bool) {
        self.counts.add(v, error, cold_start, timeout);
        self.values.push(v);
    }

    /// Adds a rollup row (its percentiles become approximate).
    pub fn add_rollup(&mut self, r: &RollupRow) {
        if r.counts.count == 0 {
            return;
        }
        self.counts.merge(&r.counts);
        self.sketch.get_or_insert_with(Sketch::new).merge(&r.sketch);
    }

    /// Adds another group.
    pub fn merge(&mut self, mut o: Agg) {
        self.counts.merge(&o.counts);
        self.values.append(&mut o.values);
        if let Some(s) = o.sketch {
            self.sketch.get_or_insert_with(Sketch::new).merge(&s);
        }
    }

    /// Percentiles come from a sketch (within 1 %), not from every value.
    pub fn approximate(&self) -> bool {
        self.sketch.is_some()
    }

    /// Folds the raw values into a sketch, so both sides of a comparison are alike.
    pub fn make_approximate(&mut self) {
        let sketch = self.sketch.get_or_insert_with(Sketch::new);
        for v in self.values.drain(..) {
            sketch.insert(v);
        }
    }

    /// Nearest-rank quantiles (0 when empty), in the order of `qs`. Exact over raw values
    /// (a selection, not a full sort); from the sketch, clamped to [min, max], otherwise.
    pub fn quantiles(&mut self, qs: &[f64]) -> Vec<f64> {
        if self.counts.count == 0 {
            return vec![0.0; qs.len()];
        }
        if self.sketch.is_some() {
            self.make_approximate();
            let s = self.sketch.as_ref().expect("made above");
            let (min, max) = (self.counts.min(), self.counts.max());
            return qs.iter().map(|q| s.quantile(*q).unwrap_or(0.0).clamp(min, max)).collect();
        }
        crate::quantile::select(&mut self.values, qs).0
    }

    /// The distribution as ascending (value, count) atoms: every distinct raw value, or the
    /// sketch's buckets.
    pub fn dist(mut self) -> Dist {
        let approximate = self.sketch.is_some();
        if approximate {
            self.make_approximate();
            let s = self.sketch.expect("made above");
            return Dist { atoms: s.atoms().collect(), n: s.count(), approximate };
        }
        self.values.sort_unstable_by(f64::total_cmp);
        let mut atoms: Vec<(f64, u64)> = Vec::new();
        for v in self.values {
            match atoms.last_mut() {
                Some((x, c)) if *x == v => *c += 1,
                _ => atoms.push((v, 1)),
            }
        }
        Dist { n: atoms.iter().map(|a| a.1).sum(), atoms, approximate }
    }
}

pub use crate::stats::Dist;

/// What a selection read.
#[derive(Debug, Default)]
pub struct Loaded {
    pub groups: BTreeMap<SeriesKey, Agg>,
    /// Raw events read.
    pub raw_events: u64,
    /// Rollup periods (hours or days) read.
    pub rollup_periods: u64,
    /// Rollup rows skipped because their sketch did not decode.
    pub malformed: u64,
}

impl Loaded {
    /// Some group's percentiles come from rollups.
    pub fn approximate(&self) -> bool {
        self.groups.values().any(Agg::approximate)
    }
}

/// One piece of a range and where it is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Raw { from_ms: i64, to_ms: i64 },
    Rollup { res: Resolution, from_ms: i64, to_ms: i64 },
}

/// Cuts a selection's range into raw and rollup pieces (the rule in the module comment).
pub async fn plan(store: &Store, sel: &Selection) -> Result<Vec<Part>, StoreError> {
    // Callers parse ranges into [2000-01-01, now + a day] (`report::parse_range`); bounding
    // the span again keeps the loop below short and its arithmetic far from overflow
    // whatever a caller passes.
    let to = sel.to_ms.min(i64::MAX - 2 * DAY_MS);
    let from = sel.from_ms.max(to.saturating_sub(MAX_PLAN_SPAN_MS));
    if from >= to {
        return Ok(Vec::new());
    }
    let long = to - from > RAW_SPAN_MS;
    let rolled: HashSet<(Resolution, i64)> = store.rollup_periods(floor_to(from, DAY_MS), to).await?.into_iter().collect();
    // Raw events are whole from `raw_whole_from` on; before it only rollups are.
    let raw_whole_from = match store.oldest_event_ms().await? {
        None => i64::MAX,
        Some(oldest) => {
            let hour = floor_to(oldest, HOUR_MS);
            if !long
                && hour >= from
                && hour + HOUR_MS <= to
                && rolled.contains(&(Resolution::Hour, hour))
                && !store.raw_hour_complete(hour).await?
            {
                hour + HOUR_MS
            } else {
                hour
            }
        }
    };
    let usable = |res: Resolution, start: i64| {
        start % res.ms() == 0
            && start >= from
            && start + res.ms() <= to
            && rolled.contains(&(res, start))
            && sel.step_ms.is_none_or(|s| s % res.ms() == 0)
            && (long || start + res.ms() <= raw_whole_from)
    };
    let mut parts: Vec<Part> = Vec::new();
    let mut push = |p: Part| match (parts.last_mut(), p) {
        (Some(Part::Raw { to_ms, .. }), Part::Raw { from_ms, to_ms: end }) if *to_ms == from_ms => *to_ms = end,
        (Some(Part::Rollup { res, to_ms, .. }), Part::Rollup { res: r, from_ms, to_ms: end }) if *res == r && *to_ms == from_ms => {
            *to_ms = end
        }
        _ => parts.push(p),
    };
    let mut t = from;
    while t < to {
        if usable(Resolution::Day, t) {
            push(Part::Rollup { res: Resolution::Day, from_ms: t, to_ms: t + DAY_MS });
            t += DAY_MS;
        } else if usable(Resolution::Hour, t) {
            push(Part::Rollup { res: Resolution::Hour, from_ms: t, to_ms: t + HOUR_MS });
            t += HOUR_MS;
        } else {
            let next = (floor_to(t, HOUR_MS) + HOUR_MS).min(to);
            push(Part::Raw { from_ms: t, to_ms: next });
            t = next;
        }
    }
    Ok(parts)
}

/// Groups rows by series and bucket without allocating or building a key per row: a fast
/// hash of the four names picks the group, whose names are then compared (rows that collide
/// with another group's hash go through a map of full keys).
struct Grouper {
    by_hash: HashMap<u64, usize, BuildHasherDefault<IdentityHasher>>,
    overflow: HashMap<(Vec<u8>, i64), usize>,
    groups: Vec<(SeriesKey, Agg)>,
}

/// The hasher for keys that are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// FxHash-style: eight bytes at a time, each part's length mixed in.
fn fast_hash(parts: [&[u8]; 6], bucket_ms: i64) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = mix(0, bucket_ms as u64);
    for p in parts {
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            h = mix(h, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        h = mix(mix(h, u64::from_le_bytes(tail)), p.len() as u64);
    }
    h
}

impl Grouper {
    fn new() -> Grouper {
        Grouper { by_hash: HashMap::default(), overflow: HashMap::new(), groups: Vec::new() }
    }

    /// The group of `names` (account, region, env, function, operation, source) in a bucket.
    fn get(&mut self, names: [&[u8]; 6], bucket_ms: i64) -> &mut Agg {
        let [account, region, env, function, operation, source] = names;
        let h = fast_hash(names, bucket_ms);
        let same = |k: &SeriesKey| {
            k.bucket_ms == bucket_ms
                && k.env.as_bytes() == env
                && k.function.as_bytes() == function
                && k.operation.as_bytes() == operation
                && k.source.as_bytes() == source
                && k.account.as_bytes() == account
                && k.region.as_bytes() == region
        };
        let k = match self.by_hash.get(&h) {
            Some(&k) if same(&self.groups[k].0) => k,
            hit => {
                let full = (names.join(&0u8), bucket_ms);
                match self.overflow.get(&full) {
                    Some(&k) => k,
                    None => {
                        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                        let key = SeriesKey {
                            account: text(account),
                            region: text(region),
                            env: text(env),
                            function: text(function),
                            operation: text(operation),
                            source: text(source),
                            bucket_ms,
                        };
                        self.groups.push((key, Agg::default()));
                        let k = self.groups.len() - 1;
                        if hit.is_none() {
                            self.by_hash.insert(h, k);
                        } else {
                            self.overflow.insert(full, k);
                        }
                        k
                    }
                }
            }
        };
        &mut self.groups[k].1
    }
}

/// Reads a selection: raw events and rollups per [`plan`], grouped by series (and bucket).
pub async fn load(store: &Store, sel: &Selection) -> Result<Loaded, StoreError> {
    let parts = plan(store, sel).await?;
    // Copied out of `sel`: the per-row closures then read it from a register, not through
    // a chain of references each row.
    let step = sel.step_ms;
    let bucket = move |t: i64| step.map_or(0, |s| floor_to(t, s));
    let columns = ScanColumns { time: sel.step_ms.is_some(), invocations: sel.invocations };
    let rollup_filter = RollupFilter {
        env: sel.env.as_deref(),
        function: sel.function.as_deref(),
        account: sel.account.as_deref(),
        region: sel.region.as_deref(),
        operations: &sel.operations,
    };
    let mut grouper = Grouper::new();
    let mut loaded = Loaded::default();
    for part in parts {
        match part {
            Part::Raw { from_ms, to_ms } => {
                let events = EventSelection {
                    from_ms,
                    to_ms,
                    env: sel.env.as_deref(),
                    function: sel.function.as_deref(),
                    account: sel.account.as_deref(),
                    region: sel.region.as_deref(),
                    operations: &sel.operations,
                };
                let slices = store
                    .scan_events(&events, columns, Grouper::new, |part, e| {
                        part.get([e.account, e.region, e.env, e.function, e.operation, e.source], bucket(e.time_ms))
                            .push(e.duration_s, e.error, e.cold_start, e.timeout);
                    })
                    .await?;
                for (part, rows) in slices {
                    loaded.raw_events += rows;
                    for (key, agg) in part.groups {
                        let names = [&key.account, &key.region, &key.env, &key.function, &key.operation, &key.source].map(|n| n.as_bytes());
                        grouper.get(names, key.bucket_ms).merge(agg);
                    }
                }
            }
            Part::Rollup { res, from_ms, to_ms } => {
                loaded.rollup_periods += ((to_ms - from_ms) / res.ms()) as u64;
                let mut rows: Vec<(i64, RollupRow)> = Vec::new();
                let malformed = store.scan_rollups(res, from_ms, to_ms, &rollup_filter, |start, row| rows.push((start, row))).await?;
                for (start, row) in rows {
                    let names = [&row.account, &row.region, &row.env, &row.function, &row.operation, &row.source].map(|n| n.as_bytes());
                    grouper.get(names, bucket(start)).add_rollup(&row);
                }
                loaded.malformed += malformed;
            }
        }
    }
    if loaded.malformed > 0 {
        tracing::warn!(malformed = loaded.malformed, "Skipped rollup rows whose sketch does not decode.");
    }
    loaded.groups = grouper.groups.into_iter().collect();
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;
    use proptest::prelude::*;

    const T0: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

    fn ev(i: i64, t: i64, env: &str, v: f64) -> TimingEvent {
        TimingEvent {
            time_ms: t,
            env: env.into(),
            function: "GenerateDynamicScenarioHandler".into(),
            operation: "Bedrock.InvokeModel".into(),
            source: Source::Xray,
            duration_s: v,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: i % 10 == 0,
            idem_key: format!("k{i}"),
            attributes: vec![],
        }
    }

    #[tokio::test]
    async fn short_ranges_are_exact_long_ones_use_rollups() {
        let store = Store::open_memory().await.unwrap();
        // 48 hours, one event every 6 minutes.
        let events: Vec<_> = (0..480).map(|i| ev(i, T0 + i * 360_000, "PROD", 1.0 + (i % 97) as f64 / 10.0)).collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        for h in 0..48 {
            store.roll_hour(T0 + h * HOUR_MS).await.unwrap();
        }
        assert!(store.roll_day(T0).await.unwrap());

        // 2 h: raw, exact.
        let sel = Selection { from_ms: T0, to_ms: T0 + 2 * HOUR_MS, ..Selection::default() };
        assert_eq!(plan(&store, &sel).await.unwrap(), [Part::Raw { from_ms: T0, to_ms: T0 + 2 * HOUR_MS }]);
        let l = load(&store, &sel).await.unwrap();
        assert!(!l.approximate());
        assert_eq!(l.raw_events, 20);

        // 47.5 h: a day and 23 hours of rollups, the last half hour raw.
        let sel = Selection { from_ms: T0, to_ms: T0 + 47 * HOUR_MS + 1_800_000, ..Selection::default() };
        let parts = plan(&store, &sel).await.unwrap();
        assert_eq!(
            parts,
            [
                Part::Rollup { res: Resolution::Day, from_ms: T0, to_ms: T0 + DAY_MS },
                Part::Rollup { res: Resolution::Hour, from_ms: T0 + DAY_MS, to_ms: T0 + 47 * HOUR_MS },
                Part::Raw { from_ms: T0 + 47 * HOUR_MS, to_ms: T0 + 47 * HOUR_MS + 1_800_000 },
            ]
        );
        let mut l = load(&store, &sel).await.unwrap();
        assert!(l.approximate());
        assert_eq!((l.rollup_periods, l.raw_events), (24, 5));
        let agg = l.groups.values_mut().next().unwrap();
        assert_eq!(agg.counts.count, 475);
        assert_eq!(agg.counts.errors, 48);
        let mut exact: Vec<f64> = (0..475).map(|i| 1.0 + (i % 97) as f64 / 10.0).collect();
        exact.sort_by(f64::total_cmp);
        let p95 = agg.quantiles(&[0.95])[0];
        let e = crate::quantile::nearest_rank(&exact, 0.95).unwrap();
        assert!((p95 - e).abs() <= 0.01 * e, "{p95} vs {e}");

        // Hourly steps: days are not used for 1 h buckets; every bucket is one hour.
        let sel = Selection { from_ms: T0, to_ms: T0 + 30 * HOUR_MS, step_ms: Some(HOUR_MS), ..Selection::default() };
        let l = load(&store, &sel).await.unwrap();
        assert_eq!(l.groups.len(), 30);
        assert!(l.groups.iter().all(|(k, a)| k.bucket_ms % HOUR_MS == 0 && a.counts.count == 10));

        // An hour raw retention no longer holds is read from its rollup even in a short range.
        store.purge_before(T0 + 3 * HOUR_MS + 1).await.unwrap();
        let sel = Selection { from_ms: T0 + 2 * HOUR_MS, to_ms: T0 + 5 * HOUR_MS, ..Selection::default() };
        assert_eq!(
            plan(&store, &sel).await.unwrap(),
            [
                Part::Rollup { res: Resolution::Hour, from_ms: T0 + 2 * HOUR_MS, to_ms: T0 + 4 * HOUR_MS },
                Part::Raw { from_ms: T0 + 4 * HOUR_MS, to_ms: T0 + 5 * HOUR_MS },
            ]
        );
        assert_eq!(load(&store, &sel).await.unwrap().groups.values().next().unwrap().counts.count, 30);

        // Filters reach both raw and rollup reads.
        let sel = Selection { from_ms: T0, to_ms: T0 + 48 * HOUR_MS, env: Some("Dev".into()), ..Selection::default() };
        assert!(load(&store, &sel).await.unwrap().groups.is_empty());
    }

    #[test]
    fn colliding_hashes_keep_groups_apart() {
        let names = |op: &'static [u8]| -> [&'static [u8]; 6] { [b"default", b"", b"PROD", b"f", op, b"xray"] };
        let mut g = Grouper::new();
        g.get(names(b"a"), 0).push(1.0, false, false, false);
        // Pretend "b" hashes like "a": it must still get a group of its own, every time.
        g.by_hash.insert(fast_hash(names(b"b"), 0), 0);
        g.get(names(b"b"), 0).push(2.0, false, false, false);
        g.get(names(b"b"), 0).push(3.0, false, false, false);
        g.get(names(b"a"), 0).push(4.0, false, false, false);
        let counts: Vec<(String, u64)> = g.groups.iter().map(|(k, a)| (k.operation.clone(), a.counts.count)).collect();
        assert_eq!(counts, [("a".to_string(), 2), ("b".to_string(), 2)]);
        assert_ne!(fast_hash([b"ab", b"c", b"", b"", b"", b""], 0), fast_hash([b"a", b"bc", b"", b"", b"", b""], 0));
        // The same names in another account are another group.
        g.get([b"prod", b"eu-west-1", b"PROD", b"f", b"a", b"xray"], 0).push(5.0, false, false, false);
        assert_eq!(g.groups.len(), 3);
    }

    proptest! {
        #[test]
        fn exact_quantiles_match_nearest_rank(v in prop::collection::vec(0.0f64..50.0, 1..300), qs in prop::collection::vec(0.0f64..=1.0, 1..6)) {
            let mut agg = Agg::default();
            v.iter().for_each(|x| agg.push(*x, false, false, false));
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let got = agg.quantiles(&qs);
            for (q, g) in qs.iter().zip(got) {
                prop_assert_eq!(g, crate::quantile::nearest_rank(&sorted, *q).unwrap());
            }
            let d = agg.dist();
            prop_assert_eq!(d.n as usize, v.len());
            for q in qs {
                prop_assert_eq!(d.quantile(q), crate::quantile::nearest_rank(&sorted, q).unwrap());
            }
        }
    }
}
