//! Reports read the store and answer in tables, JSON or CSV. Percentiles are exact over raw
//! events: nearest rank, the ⌈q·n⌉-th smallest value.

pub mod top;

/// The nearest-rank quantile of sorted values: the ⌈q·n⌉-th smallest (1-based); None if empty.
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nearest_rank_examples() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&v, 0.5), Some(10.0));
        assert_eq!(nearest_rank(&v, 1.0), Some(20.0));
        assert_eq!(nearest_rank(&[3.0], 0.99), Some(3.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    proptest! {
        #[test]
        fn quantiles_are_ordered_and_within_range(mut v in proptest::collection::vec(0.0f64..100.0, 1..200)) {
            v.sort_by(f64::total_cmp);
            let p50 = nearest_rank(&v, 0.5).unwrap();
            let p95 = nearest_rank(&v, 0.95).unwrap();
            let p99 = nearest_rank(&v, 0.99).unwrap();
            prop_assert!(v[0] <= p50 && p50 <= p95 && p95 <= p99 && p99 <= *v.last().unwrap());
        }
    }
}
