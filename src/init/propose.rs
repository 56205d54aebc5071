//! What `init` proposes from what it saw (pure): a budget per observed operation, and an
//! env attribution rule when function names carry the env.

use crate::quantile::nearest_rank;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A proposed budget is the observed p95 times this, rounded up to a round figure: room
/// for a normal day's variation, tight enough that a doubling fires.
pub const BUDGET_MULTIPLE: f64 = 1.5;

/// Operations seen fewer times than this get no budget (a p95 of a handful is noise).
pub const MIN_SAMPLES: usize = 20;

/// The round figures budgets are rounded up to, per decade of milliseconds.
const ROUND: [f64; 10] = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0];

/// One operation as observed in the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub operation: String,
    pub count: usize,
    pub p95_s: f64,
    /// The proposed p95 budget, when there were enough samples.
    pub budget: Option<Duration>,
}

/// Groups `(operation, duration_s)` samples into operations with their p95 and budget,
/// the most frequent first.
pub fn observe(samples: impl IntoIterator<Item = (String, f64)>) -> Vec<Observed> {
    let mut by_op: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (op, d) in samples {
        if d.is_finite() && d >= 0.0 {
            by_op.entry(op).or_default().push(d);
        }
    }
    let mut out: Vec<Observed> = by_op
        .into_iter()
        .map(|(operation, mut values)| {
            values.sort_by(f64::total_cmp);
            let p95_s = nearest_rank(&values, 0.95).unwrap_or(0.0);
            let budget = (values.len() >= MIN_SAMPLES).then(|| budget_for(p95_s));
            Observed { operation, count: values.len(), p95_s, budget }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.operation.cmp(&b.operation)));
    out
}

/// `p95_s` × [`BUDGET_MULTIPLE`], rounded up to the next of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5
/// times a power of ten milliseconds (at least 1 ms).
pub fn budget_for(p95_s: f64) -> Duration {
    let target_ms = (p95_s * BUDGET_MULTIPLE * 1000.0).clamp(1.0, 86_400_000.0);
    let mut decade = 1.0;
    while decade * 10.0 <= target_ms {
        decade *= 10.0;
    }
    let ms = ROUND.iter().map(|r| r * decade).find(|v| *v >= target_ms - 1e-9).unwrap_or(decade * 10.0);
    Duration::from_millis(ms.round() as u64)
}

/// Words that name an environment when a function name ends with them.
const ENV_WORDS: [&str; 10] = ["dev", "development", "test", "qa", "uat", "stage", "staging", "preprod", "prod", "production"];

/// A `function_name_pattern` for names that carry their env as a suffix (`orders-dev`,
/// `orders_prod`), when at least two names share a stem with different env suffixes.
pub fn env_pattern(functions: &[String]) -> Option<String> {
    let mut stems: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in functions {
        let Some((stem, suffix)) = f.rsplit_once(['-', '_']) else { continue };
        let word = suffix.to_ascii_lowercase();
        if ENV_WORDS.contains(&word.as_str()) {
            stems.entry(stem.to_string()).or_default().insert(word);
        }
    }
    let words: BTreeSet<String> = stems.values().filter(|w| w.len() >= 2).flatten().cloned().collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("(?i)[-_](?P<env>{})$", words.into_iter().collect::<Vec<_>>().join("|")))
}

/// A duration as the config writes it: whole seconds as `"5s"`, else milliseconds.
pub fn config_duration(d: Duration) -> String {
    if d.as_millis() % 1000 == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_a_round_figure_above_one_and_a_half_times_the_p95() {
        let ms = |p95_s: f64| budget_for(p95_s).as_millis();
        assert_eq!(ms(3.2), 5000, "4.8 s → 5 s");
        assert_eq!(ms(2.0), 3000);
        assert_eq!(ms(0.031), 50, "46.5 ms → 50 ms");
        assert_eq!(ms(0.1), 150);
        assert_eq!(ms(6.0), 10_000, "9 s → 10 s");
        assert_eq!(ms(0.0), 1);
        for p in [0.0005, 0.01, 0.27, 1.1, 9.0, 45.0, 900.0] {
            let b = budget_for(p).as_secs_f64();
            assert!(b >= p * BUDGET_MULTIPLE - 1e-6 && b <= p * BUDGET_MULTIPLE * 1.5 + 0.001, "{p} → {b}");
        }
        assert_eq!(config_duration(Duration::from_millis(5000)), "5s");
        assert_eq!(config_duration(Duration::from_millis(150)), "150ms");
    }

    #[test]
    fn operations_need_enough_samples_for_a_budget() {
        let mut samples: Vec<(String, f64)> = (1..=100).map(|i| ("Bedrock.InvokeModel".to_string(), i as f64 / 10.0)).collect();
        samples.extend((0..5).map(|_| ("Rare".to_string(), 1.0)));
        samples.push(("Bad".to_string(), f64::NAN));
        let o = observe(samples);
        assert_eq!(o[0].operation, "Bedrock.InvokeModel");
        assert_eq!((o[0].count, o[0].p95_s), (100, 9.5));
        assert_eq!(o[0].budget, Some(Duration::from_secs(15)));
        assert_eq!(o[1].operation, "Rare");
        assert_eq!(o[1].budget, None);
        assert_eq!(o.len(), 2, "a non-number is not a sample");
    }

    #[test]
    fn an_env_suffix_shared_by_a_stem_becomes_a_pattern() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = env_pattern(&names(&["orders-dev", "orders-prod", "billing"])).unwrap();
        assert_eq!(p, "(?i)[-_](?P<env>dev|prod)$");
        let re = regex::Regex::new(&p).unwrap();
        assert_eq!(&re.captures("orders-prod").unwrap()["env"], "prod");
        assert_eq!(env_pattern(&names(&["orders-dev", "billing-api"])), None, "one env alone says nothing");
        assert_eq!(env_pattern(&names(&["GenerateDynamicScenarioHandler"])), None);
    }
}
