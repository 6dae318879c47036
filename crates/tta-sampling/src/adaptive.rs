//! Adaptive sampling: a head rate that steers measured overhead toward a target.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tta_core::{Clock, SystemClock};

use crate::threshold::{Threshold, bounded_threshold};
use crate::{SamplingError, SamplingKey, SamplingReason, SamplingResult};
use tta_core::StripedCounters as Counters;

/// Settings of an [`AdaptiveSampler`]. `Default` gives the production values
/// (base 0.05 within [0.01, 0.2], 2 % target overhead, adjusting every 60 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// Starting rate (clamped into `[min_rate, max_rate]`).
    pub base_rate: f64,
    /// The rate never goes below this (> 0).
    pub min_rate: f64,
    /// The rate never goes above this (<= 1).
    pub max_rate: f64,
    /// The overhead (fraction of CPU, in (0, 1]) to steer toward.
    pub target_overhead: f64,
    /// At most one automatic adjustment per interval.
    pub adjustment_interval: Duration,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            base_rate: 0.05,
            min_rate: 0.01,
            max_rate: 0.2,
            target_overhead: 0.02,
            adjustment_interval: Duration::from_secs(60),
        }
    }
}

impl AdaptiveConfig {
    /// Proportional gain of the control law, in log space (see [`next_rate`](Self::next_rate)).
    pub const GAIN: f64 = 0.5;
    /// Largest factor one adjustment may change the rate by (up or down).
    pub const MAX_STEP: f64 = 2.0;
    /// Relative dead band around the target overhead: within it the rate does not move.
    pub const DEAD_BAND: f64 = 0.05;

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), SamplingError> {
        let in_unit = |v: f64| v > 0.0 && v <= 1.0;
        if !(0.0..=1.0).contains(&self.base_rate) {
            return Err(SamplingError::config(
                "base_rate",
                format!("must be within [0, 1], got {}", self.base_rate),
            ));
        }
        if !in_unit(self.min_rate) {
            return Err(SamplingError::config(
                "min_rate",
                format!("must be within (0, 1], got {}", self.min_rate),
            ));
        }
        if !in_unit(self.max_rate) || self.max_rate < self.min_rate {
            return Err(SamplingError::config(
                "max_rate",
                format!(
                    "must be within [min_rate, 1] = [{}, 1], got {}",
                    self.min_rate, self.max_rate
                ),
            ));
        }
        if !in_unit(self.target_overhead) {
            return Err(SamplingError::config(
                "target_overhead",
                format!("must be within (0, 1], got {}", self.target_overhead),
            ));
        }
        if self.adjustment_interval.is_zero() {
            return Err(SamplingError::config("adjustment_interval", "must be > 0"));
        }
        Ok(())
    }

    /// A copy with invalid fields replaced by defaults and the bounds put in order.
    pub fn sanitized(&self) -> Self {
        let d = Self::default();
        let in_unit = |v: f64| v > 0.0 && v <= 1.0;
        let mut c = self.clone();
        if !in_unit(c.min_rate) {
            c.min_rate = d.min_rate;
        }
        if !in_unit(c.max_rate) {
            c.max_rate = d.max_rate.max(c.min_rate);
        }
        if c.min_rate > c.max_rate {
            std::mem::swap(&mut c.min_rate, &mut c.max_rate);
        }
        if !(0.0..=1.0).contains(&c.base_rate) {
            c.base_rate = d.base_rate;
        }
        if !in_unit(c.target_overhead) {
            c.target_overhead = d.target_overhead;
        }
        if c.adjustment_interval.is_zero() {
            c.adjustment_interval = d.adjustment_interval;
        }
        c
    }

    /// One step of the control law: the rate after observing `overhead` at `rate`.
    ///
    /// Assuming overhead grows with the rate, the rate that meets the target is
    /// `rate * target / overhead`. The step moves only part of the way, in log space:
    ///
    /// ```text
    /// factor = (target / overhead) ^ GAIN          GAIN = 0.5
    /// factor = 1                                    when target/overhead is within 1 ± 5 % (dead band)
    /// factor = clamp(factor, 1/2, 2)                at most halve or double per step
    /// rate'  = clamp(rate * factor, min_rate, max_rate)
    /// ```
    ///
    /// If overhead is proportional to the rate (`overhead = k * rate`), the log error
    /// `e = ln(overhead / target)` becomes `e * (1 - GAIN)` each step: it shrinks
    /// geometrically and never changes sign, so the rate approaches its target from one side
    /// without overshooting or oscillating, and stops inside the dead band, where measurement
    /// noise cannot make it hunt. Zero overhead doubles the rate (up to `max_rate`). The
    /// result is always within `[min_rate, max_rate]`. `overhead` must be a valid fraction;
    /// samplers reject NaN, negative and > 1 values before they get here.
    ///
    /// ```
    /// use tta_sampling::AdaptiveConfig;
    /// let c = AdaptiveConfig::default(); // target 0.02, bounds [0.01, 0.2]
    /// assert_eq!(c.next_rate(0.1, 0.08), 0.05);  // 4x over target: halve (sqrt(1/4))
    /// assert_eq!(c.next_rate(0.1, 0.0201), 0.1); // inside the dead band
    /// assert_eq!(c.next_rate(0.015, 0.5), 0.01); // never below min_rate
    /// assert_eq!(c.next_rate(0.15, 0.0), 0.2);   // never above max_rate
    /// ```
    pub fn next_rate(&self, rate: f64, overhead: f64) -> f64 {
        let rate = if rate.is_nan() { self.base_rate } else { rate };
        let rate = rate.clamp(self.min_rate, self.max_rate);
        let factor = if overhead > 0.0 {
            let ratio = self.target_overhead / overhead;
            if (1.0 / (1.0 + Self::DEAD_BAND)..=1.0 + Self::DEAD_BAND).contains(&ratio) {
                1.0
            } else {
                ratio
                    .powf(Self::GAIN)
                    .clamp(1.0 / Self::MAX_STEP, Self::MAX_STEP)
            }
        } else {
            Self::MAX_STEP
        };
        (rate * factor).clamp(self.min_rate, self.max_rate)
    }
}

/// A snapshot of an [`AdaptiveSampler`]'s state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveStats {
    /// The rate decisions use now.
    pub current_rate: f64,
    /// The configured starting rate.
    pub base_rate: f64,
    /// Lower bound.
    pub min_rate: f64,
    /// Upper bound.
    pub max_rate: f64,
    /// Overhead steered toward.
    pub target_overhead: f64,
    /// Adjustment steps performed (automatic and explicit), including ones that left the rate
    /// unchanged (dead band or pinned at a bound).
    pub adjustments: u64,
    /// The last valid overhead measurement received.
    pub last_overhead: Option<f64>,
    /// Overhead inputs rejected (NaN, infinite, negative or > 1).
    pub rejected_overhead_inputs: u64,
    /// Decisions made through [`AdaptiveSampler::should_sample`].
    pub decisions: u64,
    /// Of which sampled.
    pub sampled: u64,
    /// Of which dropped.
    pub dropped: u64,
    /// Whether the rate sits at `min_rate` (overhead still above target there).
    pub at_min_rate: bool,
    /// Whether the rate sits at `max_rate`.
    pub at_max_rate: bool,
}

const NO_OVERHEAD: u64 = u64::MAX;

fn valid_overhead(o: f64) -> bool {
    (0.0..=1.0).contains(&o)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A consistent probability sampler whose rate follows measured overhead.
///
/// Each call that brings an overhead measurement may trigger an adjustment, at most once per
/// `adjustment_interval` (measured with the injected [`Clock`]); [`adjust`](Self::adjust)
/// performs one step at once. The control law is documented on
/// [`AdaptiveConfig::next_rate`]: it converges without oscillating and never leaves
/// `[min_rate, max_rate]`. Overhead inputs that are NaN, infinite, negative or above 1 are
/// rejected and counted, never used.
///
/// Decisions are lock-free and allocation-free: the rate's threshold is an atomic, the
/// interval is claimed with a compare-and-swap so only one thread adjusts, and an adjustment
/// that finds another writer busy is skipped rather than waited for.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tta_core::ManualClock;
/// use tta_sampling::{AdaptiveConfig, AdaptiveSampler};
///
/// let clock = Arc::new(ManualClock::new(0));
/// let sampler = AdaptiveSampler::with_clock(
///     AdaptiveConfig {
///         base_rate: 0.1,
///         min_rate: 0.01,
///         max_rate: 0.5,
///         target_overhead: 0.02,
///         adjustment_interval: Duration::from_secs(60),
///     },
///     clock.clone(),
/// );
/// let _ = sampler.should_sample("trace-123", Some(0.035));
/// assert_eq!(sampler.stats().current_rate, 0.1); // the interval has not passed yet
/// clock.advance(Duration::from_secs(60));
/// let _ = sampler.should_sample("trace-124", Some(0.035));
/// let stats = sampler.stats();
/// assert!(stats.current_rate < 0.1 && stats.current_rate >= 0.01);
/// assert_eq!(stats.adjustments, 1);
/// assert_eq!(stats.last_overhead, Some(0.035));
/// ```
pub struct AdaptiveSampler {
    params: ArcSwap<AdaptiveConfig>,
    rate_bits: AtomicU64,
    threshold: AtomicU64,
    interval_nanos: AtomicU64,
    next_adjust: AtomicU64,
    /// Held by whoever changes the rate or the parameters (cold paths only).
    writer: AtomicBool,
    adjustments: AtomicU64,
    last_overhead: AtomicU64,
    rejected: AtomicU64,
    counters: Counters<2>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AdaptiveSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaptiveSampler")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AdaptiveSampler {
    /// A sampler on the system clock. Invalid settings are replaced by defaults (see
    /// [`AdaptiveConfig::sanitized`]); use [`try_new`](Self::try_new) to reject them.
    pub fn new(config: AdaptiveConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A sampler on the system clock, rejecting invalid settings.
    pub fn try_new(config: AdaptiveConfig) -> Result<Self, SamplingError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// A sampler that reads time from `clock` (tests use a [`tta_core::ManualClock`]).
    pub fn with_clock(config: AdaptiveConfig, clock: Arc<dyn Clock>) -> Self {
        let config = config.sanitized();
        let rate = config.base_rate.clamp(config.min_rate, config.max_rate);
        let interval = nanos(config.adjustment_interval);
        let now = clock.now_unix_nanos();
        Self {
            threshold: AtomicU64::new(bounded_threshold(rate, config.min_rate, config.max_rate)),
            rate_bits: AtomicU64::new(rate.to_bits()),
            interval_nanos: AtomicU64::new(interval),
            next_adjust: AtomicU64::new(now.saturating_add(interval)),
            params: ArcSwap::from_pointee(config),
            writer: AtomicBool::new(false),
            adjustments: AtomicU64::new(0),
            last_overhead: AtomicU64::new(NO_OVERHEAD),
            rejected: AtomicU64::new(0),
            counters: Counters::new(),
            clock,
        }
    }

    /// Decides for `key` at the current rate; a valid `current_overhead` is recorded and, once
    /// the adjustment interval has passed, adjusts the rate first.
    ///
    /// The result's reason is [`SamplingReason::Adaptive`].
    pub fn should_sample(
        &self,
        key: impl SamplingKey,
        current_overhead: Option<f64>,
    ) -> SamplingResult {
        self.observe(current_overhead);
        let t = self.threshold.load(Ordering::Relaxed);
        let keep = key.randomness().value() >= t;
        self.counters.incr(usize::from(!keep));
        if keep {
            SamplingResult::sample(SamplingReason::Adaptive, Some(Threshold::from_raw(t)))
        } else {
            SamplingResult::drop(SamplingReason::Adaptive)
        }
    }

    /// Performs one adjustment step now with `current_overhead` and restarts the interval.
    /// Returns the new rate. An invalid overhead (NaN, infinite, negative, > 1) is rejected,
    /// counted, and leaves the rate unchanged.
    pub fn adjust(&self, current_overhead: f64) -> f64 {
        if !valid_overhead(current_overhead) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return self.current_rate();
        }
        self.last_overhead
            .store(current_overhead.to_bits(), Ordering::Relaxed);
        self.with_writer(|| {
            self.step(current_overhead);
            let now = self.clock.now_unix_nanos();
            let interval = self.interval_nanos.load(Ordering::Relaxed);
            self.next_adjust
                .store(now.saturating_add(interval), Ordering::Relaxed);
        });
        self.current_rate()
    }

    /// The rate decisions use now.
    pub fn current_rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }

    /// The threshold decisions use now (`None` only if the rate is below `2^-56`).
    pub fn threshold(&self) -> Option<Threshold> {
        Threshold::try_from_raw(self.threshold.load(Ordering::Relaxed)).ok()
    }

    /// The settings in force.
    pub fn config(&self) -> AdaptiveConfig {
        AdaptiveConfig::clone(&self.params.load())
    }

    /// Replaces the settings. The current rate is kept (clamped into the new bounds) unless
    /// `base_rate` changed, in which case the rate restarts from the new base rate.
    pub fn reconfigure(&self, config: AdaptiveConfig) -> Result<(), SamplingError> {
        config.validate()?;
        self.with_writer(|| {
            let old = self.params.load_full();
            let rate = if config.base_rate == old.base_rate {
                self.current_rate()
            } else {
                config.base_rate
            };
            let interval = nanos(config.adjustment_interval);
            self.interval_nanos.store(interval, Ordering::Relaxed);
            let latest = self.clock.now_unix_nanos().saturating_add(interval);
            self.next_adjust.fetch_min(latest, Ordering::Relaxed);
            self.set_rate(rate, &config);
            self.params.store(Arc::new(config));
        });
        Ok(())
    }

    /// Counters and current state.
    pub fn stats(&self) -> AdaptiveStats {
        let p = self.params.load();
        let current_rate = self.current_rate();
        let sampled = self.counters.get(0);
        let dropped = self.counters.get(1);
        let last = self.last_overhead.load(Ordering::Relaxed);
        AdaptiveStats {
            current_rate,
            base_rate: p.base_rate,
            min_rate: p.min_rate,
            max_rate: p.max_rate,
            target_overhead: p.target_overhead,
            adjustments: self.adjustments.load(Ordering::Relaxed),
            last_overhead: (last != NO_OVERHEAD).then(|| f64::from_bits(last)),
            rejected_overhead_inputs: self.rejected.load(Ordering::Relaxed),
            decisions: sampled + dropped,
            sampled,
            dropped,
            at_min_rate: current_rate <= p.min_rate,
            at_max_rate: current_rate >= p.max_rate,
        }
    }

    /// Records an overhead measurement and adjusts if the interval has passed. Reads the
    /// clock only when a valid measurement arrives.
    #[inline]
    pub(crate) fn observe(&self, current_overhead: Option<f64>) {
        let Some(overhead) = current_overhead else {
            return;
        };
        if !valid_overhead(overhead) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.last_overhead
            .store(overhead.to_bits(), Ordering::Relaxed);
        self.maybe_adjust(overhead, self.clock.now_unix_nanos());
    }

    /// The current threshold (internal form, `NEVER` possible).
    #[inline]
    pub(crate) fn raw_threshold(&self) -> u64 {
        self.threshold.load(Ordering::Relaxed)
    }

    fn maybe_adjust(&self, overhead: f64, now: u64) {
        let next = self.next_adjust.load(Ordering::Relaxed);
        let interval = self.interval_nanos.load(Ordering::Relaxed);
        // Not due yet, unless the clock went back by more than an interval.
        if now < next && next - now <= interval {
            return;
        }
        // Claim this interval: exactly one caller wins the swap.
        if self
            .next_adjust
            .compare_exchange(
                next,
                now.saturating_add(interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        // Never wait on the decision path: if a reconfigure or explicit adjust is running,
        // this interval's automatic step is skipped.
        if self
            .writer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.step(overhead);
            self.writer.store(false, Ordering::Release);
        }
    }

    /// One control-law step; the caller holds the writer flag.
    fn step(&self, overhead: f64) {
        let params = self.params.load();
        let rate = params.next_rate(self.current_rate(), overhead);
        self.set_rate(rate, &params);
        self.adjustments.fetch_add(1, Ordering::Relaxed);
    }

    fn set_rate(&self, rate: f64, params: &AdaptiveConfig) {
        let rate = rate.clamp(params.min_rate, params.max_rate);
        self.threshold.store(
            bounded_threshold(rate, params.min_rate, params.max_rate),
            Ordering::Relaxed,
        );
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Runs `f` holding the writer flag; cold paths only (spins with `yield_now`).
    fn with_writer(&self, f: impl FnOnce()) {
        while self
            .writer
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        f();
        self.writer.store(false, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "adaptive/tests.rs"]
mod tests;
