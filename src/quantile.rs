//! Nearest-rank quantiles, the one definition every number the daemon shows uses: the
//! q-quantile of n values is the ⌈q·n⌉-th smallest (1-based, at least the first). Windows,
//! reports, sketches, the bootstrap and the bottleneck's percentile all rank this way.

/// The 1-based nearest rank of quantile `q` among `n` values (`n > 0`): ⌈q·n⌉, within 1..=n.
pub fn rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil().max(1.0) as u64).min(n.max(1))
}

/// The 0-based index of the nearest-rank quantile `q` among `n` sorted values (`n > 0`).
pub fn rank_index(q: f64, n: usize) -> usize {
    rank(q, n as u64) as usize - 1
}

/// The nearest-rank quantile of sorted values; None if empty.
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[rank_index(q, sorted.len())])
}

/// The nearest-rank quantiles `qs` of unsorted `values` (in the order of `qs`) and their
/// maximum, by successive selections in linear time rather than a full sort. `values` is
/// reordered. Empty `values` give zeros.
pub fn select(values: &mut [f64], qs: &[f64]) -> (Vec<f64>, f64) {
    let n = values.len();
    if n == 0 {
        return (vec![0.0; qs.len()], 0.0);
    }
    let mut order: Vec<(usize, usize)> = qs.iter().enumerate().map(|(i, q)| (rank_index(*q, n), i)).collect();
    order.sort_unstable();
    let mut out = vec![0.0; qs.len()];
    let mut lo = 0;
    for (r, i) in order {
        // Everything before `lo` is ≤ values[lo..]; select inside the rest.
        let (_, x, _) = values[lo..].select_nth_unstable_by(r - lo, f64::total_cmp);
        out[i] = *x;
        lo = r;
    }
    // The largest value is at or after the last selected rank.
    let max = values[lo..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (out, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&v, 0.5), Some(10.0));
        assert_eq!(nearest_rank(&v, 1.0), Some(20.0));
        assert_eq!(nearest_rank(&[3.0], 0.99), Some(3.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(rank_index(0.95, 20), 18);
        assert_eq!(rank_index(0.0, 20), 0);
        assert_eq!(rank(0.95, 20), 19);
    }

    proptest! {
        #[test]
        fn selection_matches_a_sort(v in prop::collection::vec(-50.0f64..50.0, 1..300), qs in prop::collection::vec(0.0f64..=1.0, 1..6)) {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let mut work = v.clone();
            let (got, max) = select(&mut work, &qs);
            prop_assert_eq!(max, *sorted.last().unwrap());
            for (q, g) in qs.iter().zip(got) {
                prop_assert_eq!(g, nearest_rank(&sorted, *q).unwrap());
            }
        }
    }
}
