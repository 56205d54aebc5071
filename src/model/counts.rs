//! The counters every aggregate of timing events keeps (a rollup period, a report group):
//! count, sum, extremes, and how many were errors, cold starts and timeouts. Exact, and
//! mergeable without loss.

use serde::{Deserialize, Serialize};

/// Counters over a set of timing events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub count: u64,
    pub sum: f64,
    /// `+inf` while empty (see [`Counts::min`]).
    pub min: f64,
    /// `-inf` while empty (see [`Counts::max`]).
    pub max: f64,
    pub errors: u64,
    pub cold_starts: u64,
    pub timeouts: u64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, errors: 0, cold_starts: 0, timeouts: 0 }
    }
}

impl Counts {
    /// Counts one event.
    pub fn add(&mut self, duration_s: f64, error: bool, cold_start: bool, timeout: bool) {
        self.count += 1;
        self.sum += duration_s;
        self.min = self.min.min(duration_s);
        self.max = self.max.max(duration_s);
        self.errors += u64::from(error);
        self.cold_starts += u64::from(cold_start);
        self.timeouts += u64::from(timeout);
    }

    /// Adds another set's counters.
    pub fn merge(&mut self, o: &Counts) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.errors += o.errors;
        self.cold_starts += o.cold_starts;
        self.timeouts += o.timeouts;
    }

    /// The smallest value (0 when empty).
    pub fn min(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.min }
    }

    /// The largest value (0 when empty).
    pub fn max(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.max }
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_is_adding_one_by_one() {
        let (mut a, mut b, mut all) = (Counts::default(), Counts::default(), Counts::default());
        for (i, v) in [3.0, 1.0, 4.0, 1.5, 9.0].into_iter().enumerate() {
            let (e, c, t) = (i % 2 == 0, i == 1, i == 4);
            if i < 2 { a.add(v, e, c, t) } else { b.add(v, e, c, t) }
            all.add(v, e, c, t);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!((a.min(), a.max(), a.count, a.errors, a.cold_starts, a.timeouts), (1.0, 9.0, 5, 3, 1, 1));
        assert_eq!((Counts::default().min(), Counts::default().mean()), (0.0, 0.0));
    }
}
