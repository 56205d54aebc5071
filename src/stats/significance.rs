//! Is a difference between two samples real? Two answers, both over weighted atoms
//! ([`Dist`]: every distinct raw value, or a sketch's buckets):
//!
//! - the Mann–Whitney U test, normal approximation with the tie correction (a sketch's
//!   bucket is one tie group, so the test is exact for the bucketed values) and a
//!   continuity correction; two-sided p-value;
//! - a bootstrap percentile interval for the difference of the p95s. A resample's p95 is
//!   the r-th smallest of n values drawn from the sample, which is `F̂⁻¹(U₍ᵣ₎)` with
//!   `U₍ᵣ₎ ~ Beta(r, n−r+1)` (the r-th smallest of n uniforms), so each resample costs one
//!   Beta draw and a lookup instead of n draws, whatever n is. The generator is seeded, so
//!   the same data always gives the same interval.
//!
//! Pure functions; no I/O.

use super::Dist;

/// Resamples of the bootstrap.
pub const RESAMPLES: usize = 2000;
/// Confidence level of the bootstrap interval.
pub const LEVEL: f64 = 0.95;

/// The Mann–Whitney U test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    /// U of `a`: the number of (a, b) pairs with a > b, ties counting one half.
    pub u: f64,
    /// Standardised U; positive when `a` tends to be larger.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Mann–Whitney U; None if either side is empty or every value is tied.
pub fn mann_whitney(a: &Dist, b: &Dist) -> Option<MannWhitney> {
    let (n1, n2) = (a.n as f64, b.n as f64);
    if a.n == 0 || b.n == 0 {
        return None;
    }
    let n = n1 + n2;
    let (mut i, mut j) = (0, 0);
    let (mut below, mut rank_sum_a, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    while i < a.atoms.len() || j < b.atoms.len() {
        let va = a.atoms.get(i).map(|x| x.0);
        let vb = b.atoms.get(j).map(|x| x.0);
        let v = match (va, vb) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) => x,
            (None, Some(y)) => y,
            (None, None) => break,
        };
        let ca = if va == Some(v) {
            i += 1;
            a.atoms[i - 1].1 as f64
        } else {
            0.0
        };
        let cb = if vb == Some(v) {
            j += 1;
            b.atoms[j - 1].1 as f64
        } else {
            0.0
        };
        let t = ca + cb;
        let mid_rank = below + (t + 1.0) / 2.0;
        rank_sum_a += ca * mid_rank;
        ties += t * t * t - t;
        below += t;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 || !var.is_finite() {
        return None;
    }
    let d = u - mean;
    let corrected = if d.abs() <= 0.5 { 0.0 } else { d - 0.5 * d.signum() };
    let z = corrected / var.sqrt();
    Some(MannWhitney { u, z, p_value: erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0) })
}

/// A bootstrap interval for `p95(a) − p95(b)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bootstrap {
    /// The observed difference of the p95s, seconds.
    pub diff_s: f64,
    pub low_s: f64,
    pub high_s: f64,
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Bootstrap percentile interval of the difference of quantile `q` (seeded, deterministic).
pub fn bootstrap_diff(a: &Dist, b: &Dist, q: f64, seed: u64) -> Option<Bootstrap> {
    if a.n == 0 || b.n == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let ra = crate::quantile::rank(q, a.n);
    let rb = crate::quantile::rank(q, b.n);
    let ca = Cumulative::new(a);
    let cb = Cumulative::new(b);
    let mut diffs: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let ua = rng.beta(ra as f64, (a.n - ra + 1) as f64);
            let ub = rng.beta(rb as f64, (b.n - rb + 1) as f64);
            ca.inverse(ua) - cb.inverse(ub)
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    let pick = |p: f64| diffs[((p * RESAMPLES as f64).floor() as usize).min(RESAMPLES - 1)];
    Some(Bootstrap {
        diff_s: a.quantile(q) - b.quantile(q),
        low_s: pick(tail),
        high_s: pick(1.0 - tail),
        level: LEVEL,
        resamples: RESAMPLES,
        seed,
    })
}

/// Cumulative counts for `F̂⁻¹(u) = x₍⌈u·n⌉₎`.
struct Cumulative<'a> {
    atoms: &'a [(f64, u64)],
    cum: Vec<u64>,
    n: u64,
}

impl<'a> Cumulative<'a> {
    fn new(d: &'a Dist) -> Cumulative<'a> {
        let mut total = 0;
        let cum = d
            .atoms
            .iter()
            .map(|a| {
                total += a.1;
                total
            })
            .collect();
        Cumulative { atoms: &d.atoms, cum, n: d.n }
    }

    fn inverse(&self, u: f64) -> f64 {
        let rank = crate::quantile::rank(u, self.n);
        let k = self.cum.partition_point(|c| *c < rank);
        self.atoms[k.min(self.atoms.len() - 1)].0
    }
}

/// A small, stable, seeded generator (SplitMix64): the bootstrap must not change with a
/// dependency's version.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Gamma(shape, 1) for shape ≥ 1 (Marsaglia & Tsang).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, b) for a, b ≥ 1.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(v: &[f64]) -> Dist {
        Dist::of_values(v)
    }

    #[test]
    fn erfc_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn mann_whitney_matches_a_worked_example() {
        // By hand: ranks of a are 1, 2, 3.5, 5.5, 7.5 (ties 3, 4, 5 of two each), so
        // U = 19.5 − 15 = 4.5; σ² = 30/12 · (12 − 18/110); z = (4.5 − 15 + 0.5)/σ = −1.8383;
        // p = erfc(1.8383/√2) = 0.066015 (scipy's mannwhitneyu, asymptotic with continuity).
        let m = mann_whitney(&dist(&[1.0, 2.0, 3.0, 4.0, 5.0]), &dist(&[3.0, 4.0, 5.0, 6.0, 7.0, 8.0])).unwrap();
        assert_eq!(m.u, 4.5);
        assert!((m.z + 1.838_318_87).abs() < 1e-6, "{m:?}");
        assert!((m.p_value - 0.066_015_43).abs() < 1e-6, "{m:?}");
        // All tied: no test.
        assert!(mann_whitney(&dist(&[1.0; 5]), &dist(&[1.0; 7])).is_none());
    }

    #[test]
    fn a_shift_is_found_and_none_is_not() {
        let mut rng = SplitMix64(7);
        let base: Vec<f64> = (0..300).map(|_| (rng.normal() * 0.3).exp()).collect();
        let same: Vec<f64> = (0..300).map(|_| (rng.normal() * 0.3).exp()).collect();
        let slow: Vec<f64> = (0..300).map(|_| 1.5 * (rng.normal() * 0.3).exp()).collect();
        let (b, s, x) = (dist(&base), dist(&same), dist(&slow));
        let m = mann_whitney(&x, &b).unwrap();
        assert!(m.p_value < 1e-10 && m.z > 0.0, "{m:?}");
        let ci = bootstrap_diff(&x, &b, 0.95, 1).unwrap();
        assert!(ci.low_s > 0.0 && ci.low_s <= ci.diff_s && ci.diff_s <= ci.high_s, "{ci:?}");
        assert!(mann_whitney(&s, &b).unwrap().p_value > 0.01);
        let ci = bootstrap_diff(&s, &b, 0.95, 1).unwrap();
        assert!(ci.low_s < 0.0 && ci.high_s > 0.0, "{ci:?}");
        // Deterministic.
        assert_eq!(bootstrap_diff(&x, &b, 0.95, 1), bootstrap_diff(&x, &b, 0.95, 1));
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = SplitMix64(3);
        let (a, b) = (95.0, 6.0);
        let mean: f64 = (0..20_000).map(|_| rng.beta(a, b)).sum::<f64>() / 20_000.0;
        assert!((mean - a / (a + b)).abs() < 0.002, "{mean}");
        let big: f64 = (0..2_000).map(|_| rng.beta(950_000.0, 50_001.0)).sum::<f64>() / 2_000.0;
        assert!((big - 0.95).abs() < 1e-3, "{big}");
    }
}
