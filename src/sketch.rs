//! A mergeable quantile sketch with a bounded relative error (DDSketch, Masson, Rim & Lee,
//! VLDB 2019), for hourly rollups and long-range reports.
//!
//! A positive value `x` is counted in bucket `i = ⌈log_γ x⌉`, `γ = (1+α)/(1−α)`, so every
//! value in bucket `i` lies in `(γ^(i−1), γ^i]` and the bucket's representative
//! `2γ^i/(γ+1)` is within a relative `α` of each of them. A quantile is the representative
//! of the bucket holding the nearest-rank (⌈q·n⌉-th smallest) value, so it is within `α` of
//! the exact nearest-rank quantile. Merging adds counts bucket by bucket: hours merge into
//! days and days into any range with no further loss.
//!
//! Values at or below [`MIN_VALUE`] are counted as zero (durations are rounded to
//! microseconds long before that matters); values above [`MAX_VALUE`] are clamped.

/// Relative accuracy of every quantile.
pub const ALPHA: f64 = 0.01;
/// Bucket growth factor `(1+α)/(1−α)`.
pub const GAMMA: f64 = (1.0 + ALPHA) / (1.0 - ALPHA);
/// Values at or below this many seconds count as zero.
pub const MIN_VALUE: f64 = 1e-9;
/// Values above this many seconds are clamped to it (no Lambda runs 30 years).
pub const MAX_VALUE: f64 = 1e9;

/// Version byte of [`Sketch::encode`]'s format.
const FORMAT: u8 = 1;

/// A DDSketch over non-negative values: dense bucket counts from `offset`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    zero: u64,
    offset: i32,
    counts: Vec<u64>,
    count: u64,
}

/// A blob that is not a sketch in [`Sketch::encode`]'s format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed sketch: {0}")]
pub struct SketchError(&'static str);

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

/// The bucket of a positive value.
fn index_of(x: f64) -> i32 {
    (x.min(MAX_VALUE).ln() / ln_gamma()).ceil() as i32
}

/// The representative value of bucket `i`: within a relative α of everything in it.
pub fn bucket_value(i: i32) -> f64 {
    (i as f64 * ln_gamma()).exp() * 2.0 / (GAMMA + 1.0)
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Number of values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Counts one value (negative and NaN values count as zero).
    pub fn insert(&mut self, x: f64) {
        self.insert_n(x, 1);
    }

    fn insert_n(&mut self, x: f64, n: u64) {
        if n == 0 {
            return;
        }
        self.count += n;
        if x.is_nan() || x <= MIN_VALUE {
            self.zero += n;
            return;
        }
        let i = index_of(x);
        *self.slot(i) += n;
    }

    /// The count cell of bucket `i`, growing the dense range to include it.
    fn slot(&mut self, i: i32) -> &mut u64 {
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(0);
        } else if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        } else if (i - self.offset) as usize >= self.counts.len() {
            self.counts.resize((i - self.offset) as usize + 1, 0);
        }
        &mut self.counts[(i - self.offset) as usize]
    }

    /// Adds every count of `other` (the sketches stay exactly as accurate).
    pub fn merge(&mut self, other: &Sketch) {
        self.zero += other.zero;
        self.count += other.count;
        if other.counts.is_empty() {
            return;
        }
        // Grow once to cover both ranges, then add.
        let lo = other.offset;
        let hi = other.offset + other.counts.len() as i32 - 1;
        self.slot(lo);
        self.slot(hi);
        let start = (lo - self.offset) as usize;
        for (cell, c) in self.counts[start..].iter_mut().zip(&other.counts) {
            *cell += c;
        }
    }

    /// The nearest-rank quantile (the ⌈q·n⌉-th smallest value) within a relative [`ALPHA`];
    /// None if empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = crate::quantile::rank(q, self.count);
        let mut seen = self.zero;
        if seen >= rank {
            return Some(0.0);
        }
        for (k, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(self.offset + k as i32));
            }
        }
        // Unreachable while the counts add up; the largest bucket is the honest answer.
        Some(bucket_value(self.offset + self.counts.len() as i32 - 1))
    }

    /// The distinct values the sketch can answer with and how many values each stands for,
    /// ascending (zero first). Two sketches' atoms of the same bucket are equal values.
    pub fn atoms(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let zero = (self.zero > 0).then_some((0.0, self.zero));
        zero.into_iter()
            .chain(self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(k, c)| (bucket_value(self.offset + k as i32), *c)))
    }

    /// A compact blob: format byte, zero count, bucket count, then per non-empty bucket its
    /// index as a zigzag delta from the previous one and its count, all LEB128 varints.
    pub fn encode(&self) -> Vec<u8> {
        let buckets = self.counts.iter().filter(|c| **c > 0).count();
        let mut out = Vec::with_capacity(4 + buckets * 3);
        out.push(FORMAT);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, buckets as u64);
        let mut prev = 0i64;
        for (k, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                let i = (self.offset + k as i32) as i64;
                put_varint(&mut out, zigzag(i - prev));
                put_varint(&mut out, *c);
                prev = i;
            }
        }
        out
    }

    /// Decodes a blob of [`Sketch::encode`].
    pub fn decode(blob: &[u8]) -> Result<Sketch, SketchError> {
        let mut s = Sketch::new();
        s.merge_encoded(blob)?;
        Ok(s)
    }

    /// Adds an encoded sketch's counts without building it first (the long-range report
    /// path merges thousands of these). On error nothing is added.
    pub fn merge_encoded(&mut self, blob: &[u8]) -> Result<(), SketchError> {
        let (&format, mut rest) = blob.split_first().ok_or(SketchError("empty"))?;
        if format != FORMAT {
            return Err(SketchError("unknown format"));
        }
        let zero = get_varint(&mut rest)?;
        let n = get_varint(&mut rest)?;
        // Validate fully before touching self: range of indexes and the total.
        let (mut lo, mut hi, mut total) = (i64::MAX, i64::MIN, zero);
        {
            let mut r = rest;
            let mut i = 0i64;
            for _ in 0..n {
                i = i.checked_add(unzigzag(get_varint(&mut r)?)).ok_or(SketchError("index overflow"))?;
                let c = get_varint(&mut r)?;
                if c == 0 || !(-4096..=4096).contains(&i) {
                    return Err(SketchError("bad bucket"));
                }
                lo = lo.min(i);
                hi = hi.max(i);
                total = total.checked_add(c).ok_or(SketchError("count overflow"))?;
            }
            if !r.is_empty() {
                return Err(SketchError("trailing bytes"));
            }
        }
        self.zero += zero;
        self.count += total;
        if n == 0 {
            return Ok(());
        }
        self.slot(lo as i32);
        self.slot(hi as i32);
        let mut i = 0i64;
        for _ in 0..n {
            i += unzigzag(get_varint(&mut rest)?);
            let c = get_varint(&mut rest)?;
            self.counts[(i as i32 - self.offset) as usize] += c;
        }
        Ok(())
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, SketchError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(SketchError("truncated"))?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(SketchError("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile::nearest_rank;
    use proptest::prelude::*;

    fn within(est: f64, exact: f64) -> bool {
        if exact <= MIN_VALUE {
            return est == 0.0;
        }
        (est - exact).abs() <= ALPHA * exact * (1.0 + 1e-9)
    }

    #[test]
    fn examples() {
        let mut s = Sketch::new();
        assert_eq!(s.quantile(0.5), None);
        for v in 1..=100 {
            s.insert(v as f64 / 10.0);
        }
        assert_eq!(s.count(), 100);
        assert!(within(s.quantile(0.95).unwrap(), 9.5));
        assert!(within(s.quantile(0.5).unwrap(), 5.0));
        assert!(within(s.quantile(1.0).unwrap(), 10.0));
        assert!(within(s.quantile(0.0).unwrap(), 0.1));
        s.insert(0.0);
        assert_eq!(s.quantile(0.0), Some(0.0));
        assert_eq!(Sketch::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn malformed_blobs_are_refused_and_add_nothing() {
        let mut s = Sketch::new();
        s.insert(1.0);
        let good = s.encode();
        for bad in [&[][..], &[9, 0, 0][..], &good[..good.len() - 1], &[1, 0, 1, 0, 0][..], &[1, 0, 1, 0x80][..]] {
            let mut t = s.clone();
            assert!(t.merge_encoded(bad).is_err(), "{bad:?}");
            assert_eq!(t, s);
        }
        let mut trailing = good.clone();
        trailing.push(1);
        assert!(Sketch::decode(&trailing).is_err());
    }

    fn values() -> impl Strategy<Value = Vec<f64>> {
        // Durations from a microsecond to an hour, log-uniform, with some exact zeros and
        // heavy ties (the same value many times).
        let one = prop_oneof![
            8 => (-6.0f64..3.6).prop_map(|e| 10f64.powf(e)),
            1 => Just(0.0),
            1 => prop::sample::select(vec![0.25, 1.0, 9.0]),
        ];
        prop::collection::vec(one, 1..400)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The bound the rollups promise: every quantile within α of the exact nearest rank.
        #[test]
        fn quantiles_within_alpha_of_exact_nearest_rank(v in values(), q in 0.0f64..=1.0) {
            let mut s = Sketch::new();
            v.iter().for_each(|x| s.insert(*x));
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [q, 0.5, 0.95, 0.99, 1.0] {
                let exact = nearest_rank(&sorted, q).unwrap();
                let est = s.quantile(q).unwrap();
                prop_assert!(within(est, exact), "q={} exact={} est={}", q, exact, est);
            }
        }

        /// Merging the sketches of two halves is the sketch of the whole, and survives encoding.
        #[test]
        fn merge_equals_whole_and_round_trips(v in values(), split in any::<prop::sample::Index>()) {
            let k = split.index(v.len() + 1);
            let (mut a, mut b, mut whole) = (Sketch::new(), Sketch::new(), Sketch::new());
            v[..k].iter().for_each(|x| a.insert(*x));
            v[k..].iter().for_each(|x| b.insert(*x));
            v.iter().for_each(|x| whole.insert(*x));
            let mut merged = Sketch::decode(&a.encode()).unwrap();
            merged.merge_encoded(&b.encode()).unwrap();
            prop_assert_eq!(merged.count(), whole.count());
            for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
                prop_assert_eq!(merged.quantile(q), whole.quantile(q));
            }
            let atoms: Vec<_> = merged.atoms().collect();
            prop_assert_eq!(atoms, whole.atoms().collect::<Vec<_>>());
            a.merge(&b);
            prop_assert_eq!(a.quantile(0.95), whole.quantile(0.95));
        }

        /// Decoding arbitrary bytes never panics.
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sketch::decode(&bytes);
        }
    }
}
