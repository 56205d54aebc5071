//! Distributions and the statistics judged over them, shared by the reports (`compare`)
//! and the evaluator (learned baselines): [`Dist`] (values as weighted atoms, nearest-rank
//! quantiles) and [`significance`] (Mann–Whitney U, a bootstrap interval of p95s).

pub mod significance;

/// A distribution as weighted atoms, ascending.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dist {
    pub atoms: Vec<(f64, u64)>,
    pub n: u64,
    pub approximate: bool,
}

impl Dist {
    /// The value of 1-based rank `rank` (clamped to 1..=n); 0 when empty.
    pub fn at_rank(&self, rank: u64) -> f64 {
        let rank = rank.clamp(1, self.n.max(1));
        let mut seen = 0;
        for (v, c) in &self.atoms {
            seen += c;
            if seen >= rank {
                return *v;
            }
        }
        self.atoms.last().map_or(0.0, |a| a.0)
    }

    /// Nearest-rank quantile.
    pub fn quantile(&self, q: f64) -> f64 {
        self.at_rank(crate::quantile::rank(q, self.n))
    }
}

impl Dist {
    /// The distribution of raw `values` (NaN dropped).
    pub fn of_values(values: &[f64]) -> Dist {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let mut atoms: Vec<(f64, u64)> = Vec::new();
        for x in v {
            match atoms.last_mut() {
                Some((y, c)) if *y == x => *c += 1,
                _ => atoms.push((x, 1)),
            }
        }
        Dist { n: atoms.iter().map(|a| a.1).sum(), atoms, approximate: false }
    }
}
