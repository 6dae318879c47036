//! A fixed log-linear histogram: bounded memory, lock-free atomics, known error bound.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two (3 mantissa bits).
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Smallest and largest tracked exponents: values in `(2^MIN_EXP, 2^MAX_EXP]` get their own
/// bucket; smaller ones share the first bucket, larger ones the last.
const MIN_EXP: i32 = -10;
const MAX_EXP: i32 = 22;
const OCTAVES: usize = (MAX_EXP - MIN_EXP) as usize;
/// Underflow bucket + log-linear buckets + overflow bucket.
pub(crate) const BUCKETS: usize = 1 + OCTAVES * SUB + 1;

/// The worst relative error of a quantile read from the histogram, for values inside
/// `(2^-10, 2^22]` (about 0.001 to 4.2 million, e.g. milliseconds): half a bucket width
/// relative to the bucket's lower bound, `1 / 2^(3+1)` = 6.25%.
pub const QUANTILE_RELATIVE_ERROR: f64 = 1.0 / (2 * SUB) as f64;

/// The `le` bounds exposed in Prometheus text and snapshots: every other power of two from
/// `2^-10` to `2^22`. They coincide with internal bucket edges, so exposed counts are exact.
pub fn exposed_bounds() -> Vec<f64> {
    (MIN_EXP..=MAX_EXP)
        .step_by(2)
        .map(|e| 2f64.powi(e))
        .collect()
}

/// Internal bucket index of a non-negative finite value; buckets are `(lower, upper]`.
#[inline]
fn index(v: f64) -> usize {
    if v <= 0.0 {
        return 0;
    }
    // The previous double puts exact bucket edges into the bucket they close.
    let bits = v.to_bits() - 1;
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exp < MIN_EXP {
        0
    } else if exp >= MAX_EXP {
        BUCKETS - 1
    } else {
        let sub = ((bits >> (52 - SUB_BITS)) & (SUB as u64 - 1)) as usize;
        1 + (exp - MIN_EXP) as usize * SUB + sub
    }
}

/// Upper edge of internal bucket `i` (`+inf` for the last).
fn upper(i: usize) -> f64 {
    if i == 0 {
        return 2f64.powi(MIN_EXP);
    }
    if i >= BUCKETS - 1 {
        return f64::INFINITY;
    }
    let octave = (i - 1) / SUB;
    let sub = (i - 1) % SUB;
    2f64.powi(MIN_EXP + octave as i32) * (1.0 + (sub + 1) as f64 / SUB as f64)
}

fn lower(i: usize) -> f64 {
    if i == 0 { 0.0 } else { upper(i - 1) }
}

/// Lock-free histogram of non-negative finite values.
pub(crate) struct LogHistogram {
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    max_bits: AtomicU64,
    min_bits: AtomicU64,
}

impl LogHistogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            max_bits: AtomicU64::new(0f64.to_bits()),
            min_bits: AtomicU64::new(f64::INFINITY.to_bits()),
        }
    }

    /// Records `v`, which the caller checked is finite and non-negative.
    #[inline]
    pub(crate) fn record(&self, v: f64) {
        self.counts[index(v)].fetch_add(1, Ordering::Relaxed);
        // Non-negative doubles order like their bit patterns. A new extreme is rare once a
        // few values are in, so a plain load usually saves the read-modify-write.
        let bits = v.to_bits();
        if bits > self.max_bits.load(Ordering::Relaxed) {
            self.max_bits.fetch_max(bits, Ordering::Relaxed);
        }
        if bits < self.min_bits.load(Ordering::Relaxed) {
            self.min_bits.fetch_min(bits, Ordering::Relaxed);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub(crate) fn read(&self) -> HistogramRead {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let count = counts.iter().sum();
        HistogramRead {
            counts,
            count,
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            max: f64::from_bits(self.max_bits.load(Ordering::Relaxed)),
            min: f64::from_bits(self.min_bits.load(Ordering::Relaxed)),
        }
    }
}

/// A copy of a histogram's counters.
pub(crate) struct HistogramRead {
    counts: Vec<u64>,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) max: f64,
    pub(crate) min: f64,
}

impl HistogramRead {
    /// Adds `other`'s values to these.
    pub(crate) fn merge(&mut self, other: &HistogramRead) {
        if other.count == 0 {
            return;
        }
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        self.max = if self.count == 0 {
            other.max
        } else {
            self.max.max(other.max)
        };
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.count += other.count;
        self.sum += other.sum;
    }

    /// The value below which a fraction `q` of observations fall, within
    /// [`QUANTILE_RELATIVE_ERROR`] (clamped to the observed min and max).
    pub(crate) fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = (lower(i), upper(i));
                let mid = if hi.is_finite() {
                    (lo + hi) / 2.0
                } else {
                    self.max
                };
                return mid.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Non-cumulative counts per [`exposed_bounds`] bound, plus one trailing `+Inf` count.
    pub(crate) fn exposed_counts(&self) -> Vec<u64> {
        let bounds = exposed_bounds();
        let mut out = vec![0u64; bounds.len() + 1];
        for (i, &c) in self.counts.iter().enumerate() {
            let up = upper(i);
            let slot = bounds.iter().position(|&b| up <= b).unwrap_or(bounds.len());
            out[slot] += c;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges_are_upper_inclusive() {
        assert_eq!(index(0.0), 0);
        assert_eq!(index(2f64.powi(MIN_EXP)), 0);
        assert_eq!(index(1.0), 1 + 10 * SUB - 1);
        assert_eq!(index(1.0000001), 1 + 10 * SUB);
        assert!(upper(index(1.0)) == 1.0);
        assert_eq!(index(1e12), BUCKETS - 1);
        for i in 1..BUCKETS - 1 {
            assert_eq!(index(upper(i)), i, "bucket {i}");
            assert!(upper(i) > lower(i));
        }
    }

    #[test]
    fn exposed_counts_are_exact_at_bounds() {
        let h = LogHistogram::new();
        for v in [0.0, 1.0, 1.5, 4.0, 4.1, 1e9] {
            h.record(v);
        }
        let r = h.read();
        let counts = r.exposed_counts();
        let bounds = exposed_bounds();
        let at = |b: f64| bounds.iter().position(|&x| x == b).expect("bound");
        assert_eq!(counts[0], 1); // 0.0
        assert_eq!(counts[at(1.0)], 1);
        assert_eq!(counts[at(4.0)], 2); // 1.5 and 4.0
        assert_eq!(counts[at(16.0)], 1); // 4.1
        assert_eq!(counts[bounds.len()], 1); // 1e9
        assert_eq!(counts.iter().sum::<u64>(), 6);
        assert_eq!(r.count, 6);
        assert_eq!(r.max, 1e9);
    }

    proptest! {
        #[test]
        fn quantiles_are_within_the_error_bound(values in proptest::collection::vec(0.002f64..4_000_000.0, 1..400), q in 0.01f64..1.0) {
            let h = LogHistogram::new();
            for &v in &values {
                h.record(v);
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            let exact = sorted[rank - 1];
            let got = h.read().quantile(q);
            let err = (got - exact).abs() / exact;
            prop_assert!(err <= QUANTILE_RELATIVE_ERROR + 1e-9, "q={} exact={} got={} err={}", q, exact, got, err);
        }
    }
}
