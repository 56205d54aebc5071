//! Learned baselines (pure): whether an operation's recent window is a regression against
//! its own past, without a hand-set budget. The recent window's p95 must be at least
//! `min_ratio` times the baseline's, with at least `min_samples` events on both sides, and
//! the recent values must be significantly larger (one-sided Mann–Whitney, p ≤
//! `max_p_value`, like `report compare`'s test). Which past is the baseline: with
//! `hour_of_week` seasonality the same hours of past weeks when that much history exists
//! (a nightly slowdown is then compared with past nights), else the trailing `baseline`
//! before the window.

use crate::model::alert::Target;
use crate::stats::Dist;
use crate::stats::significance::mann_whitney;
use crate::store::{Store, StoreError};
use std::collections::HashMap;

/// Where the evaluator reads baselines from. The evaluator sits below the reports, which
/// know how to read a range from raw events and hourly rollups; the daemon hands it an
/// implementation written there (`report::baselines`), as it hands it the exposition.
pub trait Baselines: Send + Sync {
    /// The values of `ranges` per (account, region, env, function, operation), every source
    /// merged, cold-start operations left out; `only` narrows it to one (function,
    /// operation).
    fn load<'a>(
        &'a self,
        ranges: &'a [(i64, i64)],
        only: Option<(&'a str, &'a str)>,
    ) -> futures::future::BoxFuture<'a, Result<HashMap<Target, Dist>, StoreError>>;
}

/// How the baseline's time ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonality {
    /// The trailing `baseline` before the recent window.
    None,
    /// The same window one, two, … weeks ago (as many as `baseline` covers and history
    /// holds), else the trailing baseline.
    HourOfWeek,
}

/// The judgement's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub window_ms: i64,
    pub baseline_ms: i64,
    pub seasonality: Seasonality,
    pub min_ratio: f64,
    pub min_samples: u64,
    pub max_p_value: f64,
}

impl Rule {
    /// The rule `[anomaly]` sets.
    pub fn from_config(a: &crate::config::AnomalyConfig) -> Rule {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Rule {
            window_ms: ms(a.window),
            baseline_ms: ms(a.baseline),
            seasonality: if a.seasonality == "none" { Seasonality::None } else { Seasonality::HourOfWeek },
            min_ratio: a.min_ratio,
            min_samples: a.min_samples,
            max_p_value: a.max_p_value,
        }
    }
}

pub const WEEK_MS: i64 = 7 * 86_400_000;

/// The baseline's ranges `[from, to)` for a recent window ending at `now`, given the oldest
/// stored event (None: nothing stored). Hour-of-week ranges are the window's own hours `k`
/// weeks back, for every k whose range is covered by history and within `baseline`; if
/// none is, the trailing baseline (clipped to history).
pub fn baseline_ranges(now: i64, rule: &Rule, oldest_ms: Option<i64>) -> Vec<(i64, i64)> {
    let Some(oldest) = oldest_ms else { return Vec::new() };
    let recent_from = now - rule.window_ms;
    if rule.seasonality == Seasonality::HourOfWeek {
        let weeks: Vec<(i64, i64)> = (1..=rule.baseline_ms / WEEK_MS)
            .map(|k| (recent_from - k * WEEK_MS, now - k * WEEK_MS))
            .filter(|(from, _)| *from >= oldest)
            .collect();
        if !weeks.is_empty() {
            return weeks;
        }
    }
    let from = (recent_from - rule.baseline_ms).max(oldest);
    if from < recent_from { vec![(from, recent_from)] } else { Vec::new() }
}

/// What the judgement found.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub recent_p95: f64,
    pub baseline_p95: f64,
    /// recent p95 / baseline p95 (0 when the baseline's is 0).
    pub ratio: f64,
    /// One-sided: the recent values tend to be larger (1 when untested).
    pub p_value: f64,
    pub recent_samples: u64,
    pub baseline_samples: u64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Too few events on a side to say anything (a cold or sparse series never fires).
    Cold,
    Normal,
    Regression,
}

impl Verdict {
    /// `cold`, `normal` or `regression`: how statuses, reports and the API name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Cold => "cold",
            Verdict::Normal => "normal",
            Verdict::Regression => "regression",
        }
    }
}

/// Where a verdict's name sorts in a listing: regressions first, then normal, then cold.
pub fn verdict_rank(verdict: &str) -> u8 {
    match verdict {
        "regression" => 0,
        "normal" => 1,
        _ => 2,
    }
}

/// Judges the recent window's values against the baseline's.
pub fn judge(recent: &Dist, baseline: &Dist, rule: &Rule) -> Judgement {
    let (recent_p95, baseline_p95) = (recent.quantile(0.95), baseline.quantile(0.95));
    let ratio = if baseline_p95 > 0.0 { recent_p95 / baseline_p95 } else { 0.0 };
    let mut j = Judgement {
        recent_p95,
        baseline_p95,
        ratio,
        p_value: 1.0,
        recent_samples: recent.n,
        baseline_samples: baseline.n,
        verdict: Verdict::Cold,
    };
    if recent.n < rule.min_samples || baseline.n < rule.min_samples {
        return j;
    }
    j.verdict = Verdict::Normal;
    if ratio < rule.min_ratio {
        return j;
    }
    if let Some(mw) = mann_whitney(recent, baseline) {
        // The two-sided p halved, on the side where the recent values are larger.
        j.p_value = if mw.z > 0.0 { mw.p_value / 2.0 } else { 1.0 - mw.p_value / 2.0 };
    }
    if j.p_value <= rule.max_p_value {
        j.verdict = Verdict::Regression;
    }
    j
}

/// The learned baselines in force at `loaded_ms`: per target its values, and the ranges
/// they came from.
#[derive(Debug, Default)]
pub struct BaselineSet {
    pub dists: HashMap<Target, Dist>,
    /// The ranges of every target without a reset.
    ranges: Vec<(i64, i64)>,
    /// (function, operation) → its ranges after a reset.
    reset: HashMap<(String, String), Vec<(i64, i64)>>,
    pub loaded_ms: Option<i64>,
}

impl BaselineSet {
    pub fn ranges_of(&self, function: &str, operation: &str) -> &[(i64, i64)] {
        self.reset.get(&(function.to_string(), operation.to_string())).map_or(&self.ranges, Vec::as_slice)
    }

    pub fn span_of(&self, function: &str, operation: &str) -> Option<(i64, i64)> {
        let r = self.ranges_of(function, operation);
        Some((r.iter().map(|x| x.0).min()?, r.iter().map(|x| x.1).max()?))
    }

    /// Whether the ranges are the same hours of past weeks (the trailing span ends at the
    /// recent window's start, less than a week before).
    pub fn seasonal_of(&self, function: &str, operation: &str) -> bool {
        let r = self.ranges_of(function, operation);
        r.first().zip(self.loaded_ms).is_some_and(|((_, to), now)| now - to >= WEEK_MS)
    }
}

/// Reads every target's baseline: the ranges `rule` gives from the oldest stored event, and
/// for an operation whose baseline was reset, the ranges from the reset on.
pub async fn load_baselines(store: &Store, source: &dyn Baselines, rule: &Rule, now: i64) -> Result<BaselineSet, StoreError> {
    let oldest = store.oldest_event_ms().await?;
    let ranges = baseline_ranges(now, rule, oldest);
    let mut dists = source.load(&ranges, None).await?;
    let mut reset = HashMap::new();
    for r in store.baseline_resets().await? {
        let from = oldest.map_or(r.reset_ms, |o| o.max(r.reset_ms));
        let own = baseline_ranges(now, rule, Some(from));
        dists.retain(|t, _| !(t.function == r.function && t.operation == r.operation));
        if !own.is_empty() {
            dists.extend(source.load(&own, Some((&r.function, &r.operation))).await?);
        }
        reset.insert((r.function, r.operation), own);
    }
    Ok(BaselineSet { dists, ranges, reset, loaded_ms: Some(now) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::significance::SplitMix64;

    fn rule() -> Rule {
        Rule {
            window_ms: 15 * 60_000,
            baseline_ms: 7 * 86_400_000,
            seasonality: Seasonality::HourOfWeek,
            min_ratio: 1.5,
            min_samples: 30,
            max_p_value: 0.01,
        }
    }

    /// A lognormal value with median `median` and shape `sigma`.
    fn lognormal(rng: &mut SplitMix64, median: f64, sigma: f64) -> f64 {
        median * (sigma * rng.normal()).exp()
    }

    #[test]
    fn the_baseline_is_past_weeks_when_history_has_them_else_the_trailing_span() {
        let now = 100 * WEEK_MS;
        let r = rule();
        let w = r.window_ms;
        assert_eq!(baseline_ranges(now, &r, Some(0)), [(now - w - WEEK_MS, now - WEEK_MS)]);
        let two = Rule { baseline_ms: 14 * 86_400_000, ..r };
        assert_eq!(baseline_ranges(now, &two, Some(0)).len(), 2);
        // Three days of history: no past week yet, so the trailing three days.
        let oldest = now - 3 * 86_400_000;
        assert_eq!(baseline_ranges(now, &r, Some(oldest)), [(oldest, now - w)]);
        assert!(baseline_ranges(now, &r, None).is_empty());
        let plain = Rule { seasonality: Seasonality::None, ..r };
        assert_eq!(baseline_ranges(now, &plain, Some(0)), [(now - w - 7 * 86_400_000, now - w)]);
    }

    #[test]
    fn twice_as_slow_fires_steady_does_not_and_cold_never_does() {
        let mut rng = SplitMix64(7);
        let base: Vec<f64> = (0..2000).map(|_| lognormal(&mut rng, 1.0, 0.3)).collect();
        let slow: Vec<f64> = (0..60).map(|_| lognormal(&mut rng, 2.0, 0.3)).collect();
        let same: Vec<f64> = (0..60).map(|_| lognormal(&mut rng, 1.0, 0.3)).collect();
        let (b, r) = (Dist::of_values(&base), rule());
        let j = judge(&Dist::of_values(&slow), &b, &r);
        assert_eq!(j.verdict, Verdict::Regression, "{j:?}");
        assert!((j.ratio - 2.0).abs() < 0.5 && j.p_value < 1e-6, "{j:?}");
        assert_eq!(judge(&Dist::of_values(&same), &b, &r).verdict, Verdict::Normal);
        assert_eq!(judge(&Dist::of_values(&slow[..10]), &b, &r).verdict, Verdict::Cold, "too few recent events");
        assert_eq!(judge(&Dist::of_values(&slow), &Dist::of_values(&base[..20]), &r).verdict, Verdict::Cold, "too little history");
        // Faster is never a regression.
        let fast: Vec<f64> = slow.iter().map(|v| v / 4.0).collect();
        assert_eq!(judge(&Dist::of_values(&fast), &b, &r).verdict, Verdict::Normal);
    }

    /// The false-positive rate on noise: 10,000 recent windows of 60 events drawn from the
    /// same lognormal (σ 0.3) as a baseline of 2,000 events. The ratio rule alone needs the
    /// window's p95 1.5× the baseline's, which noise of σ 0.3 reaches rarely, and the test
    /// must agree: none fired (rate < 1 in 10,000).
    #[test]
    fn noise_does_not_fire() {
        let mut rng = SplitMix64(42);
        let r = rule();
        let mut fired = 0;
        let mut over_ratio = 0;
        for _ in 0..10_000 {
            let base: Vec<f64> = (0..2000).map(|_| lognormal(&mut rng, 1.0, 0.3)).collect();
            let recent: Vec<f64> = (0..60).map(|_| lognormal(&mut rng, 1.0, 0.3)).collect();
            let j = judge(&Dist::of_values(&recent), &Dist::of_values(&base), &r);
            over_ratio += usize::from(j.ratio >= r.min_ratio);
            fired += usize::from(j.verdict == Verdict::Regression);
        }
        eprintln!("noise: {fired} of 10000 windows fired; {over_ratio} over the ratio alone");
        assert_eq!(fired, 0, "{fired} false positives in 10,000 windows");
    }
}
