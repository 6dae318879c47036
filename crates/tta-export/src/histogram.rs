//! A small lock-free latency histogram: log-linear buckets of atomic counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this many microseconds get one bucket each.
const LINEAR: u64 = 16;
/// Sub-buckets per power of two above `LINEAR` (relative error below 1/8).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered: up to 2^40 µs (about 12 days).
const MAX_EXP: u32 = 40;
const BUCKETS: usize = LINEAR as usize + ((MAX_EXP - 4 + 1) as usize) * SUB as usize;

/// Records durations in microseconds; quantiles are read without stopping writers.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max_us: AtomicU64,
}

fn index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // >= 4
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    LINEAR as usize + ((exp - 4) as usize) * SUB as usize + sub as usize
}

/// Lower and upper bound (exclusive) of a bucket, in microseconds.
fn bounds(idx: usize) -> (u64, u64) {
    if idx < LINEAR as usize {
        return (idx as u64, idx as u64 + 1);
    }
    let rel = idx - LINEAR as usize;
    let exp = (rel / SUB as usize) as u32 + 4;
    let sub = (rel % SUB as usize) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    let low = (1u64 << exp) + sub * width;
    (low, low + width)
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0..=1) in milliseconds: the midpoint of the bucket that holds it,
    /// never above the largest value seen. `0.0` when empty.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds(i);
                let mid = if hi - lo == 1 {
                    lo as f64
                } else {
                    (lo + hi) as f64 / 2.0
                };
                let max = self.max_us.load(Ordering::Relaxed) as f64;
                return mid.min(max) / 1000.0;
            }
        }
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub(crate) fn max_ms(&self) -> f64 {
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_contain_their_values() {
        let mut prev_hi = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert_eq!(lo, prev_hi, "bucket {i}");
            assert!(hi > lo);
            assert_eq!(index(lo), i);
            assert_eq!(index(hi - 1), i);
            prev_hi = hi;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_an_eighth() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile_ms(0.99), 0.0);
        // 1..=1000 ms, uniform.
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((p50 - 500.0).abs() <= 500.0 / 8.0, "{p50}");
        assert!((p99 - 990.0).abs() <= 990.0 / 8.0, "{p99}");
        assert!(p99 <= h.max_ms());
        assert_eq!(h.max_ms(), 1000.0);
    }

    #[test]
    fn small_values_are_exact() {
        let h = LatencyHistogram::new();
        for _ in 0..10 {
            h.record(Duration::from_micros(7));
        }
        assert_eq!(h.quantile_ms(0.5), 0.007);
    }
}
