//! [`WindowCounter`]: "how much did this monotonic counter grow over the last window?"

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Slot marker: never written.
const EMPTY: u64 = u64::MAX;
/// Slot marker: a writer owns the slot right now.
const WRITING: u64 = u64::MAX - 1;
/// Largest bucket index a time can map to (leaves the two markers free).
const MAX_EPOCH: u64 = u64::MAX - 2;
/// Buckets used by [`WindowCounter::new`].
pub const DEFAULT_BUCKETS: usize = 6;

/// Turns a monotonic counter (spans dropped, exports failed, ...) into its increase over the
/// last time window, for rules such as "degraded if spans were dropped in the last minute".
///
/// Each [`observe`](Self::observe) passes the current time and the counter's current total
/// and returns the increase since the latest observation made at least `window - window /
/// buckets` earlier. When observations are sparser than the window, the increase since the
/// previous observation is reported (an increase is never missed, but it may be older than
/// the window); when there is no earlier observation, it is the increase since the
/// counter's value at construction. A counter that goes backwards (a reset) reports 0.
///
/// Time is passed in (a [`Duration`] since any fixed origin, such as an `Instant` taken at
/// start-up), so the counter never reads a clock and tests need not sleep. It is lock-free:
/// any number of threads may observe at once; `observe` does a few atomic loads and at most
/// one compare-and-swap, and never allocates.
///
/// ```
/// use std::time::Duration;
/// use tta_health::WindowCounter;
///
/// let secs = Duration::from_secs;
/// let dropped = WindowCounter::new(secs(60), 0);
/// assert_eq!(dropped.observe(secs(10), 0), 0);
/// assert_eq!(dropped.observe(secs(20), 5), 5); // 5 spans dropped in the last minute
/// assert_eq!(dropped.observe(secs(75), 5), 5); // the drop at 20 s is still within 60 s
/// assert_eq!(dropped.observe(secs(200), 5), 0); // a quiet minute later: nothing new
/// ```
#[derive(Debug)]
pub struct WindowCounter {
    window: Duration,
    bucket_nanos: u64,
    buckets: u64,
    slots: Box<[Slot]>,
    /// The largest total among observations evicted from the ring (all older than the
    /// window), starting with the total given at construction.
    before: AtomicU64,
}

#[derive(Debug)]
struct Slot {
    epoch: AtomicU64,
    value: AtomicU64,
}

impl WindowCounter {
    /// A counter over `window`, using [`DEFAULT_BUCKETS`] buckets; `total` is the counter's
    /// value when counting starts (the baseline until an observation is older than the
    /// window).
    pub fn new(window: Duration, total: u64) -> Self {
        Self::with_buckets(window, DEFAULT_BUCKETS, total)
    }

    /// Like [`new`](Self::new) with a chosen number of buckets (at least 1; more buckets
    /// make the window edge sharper at the cost of a few more atomic loads per observation).
    /// A zero window is treated as one nanosecond.
    pub fn with_buckets(window: Duration, buckets: usize, total: u64) -> Self {
        let buckets = u64::try_from(buckets.clamp(1, 1024)).unwrap_or(1);
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1);
        let bucket_nanos = (window_nanos / buckets).max(1);
        let slots = (0..=buckets)
            .map(|_| Slot {
                epoch: AtomicU64::new(EMPTY),
                value: AtomicU64::new(0),
            })
            .collect();
        Self {
            window,
            bucket_nanos,
            buckets,
            slots,
            before: AtomicU64::new(total),
        }
    }

    /// The window this counter reports over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records `total` as the counter's value at `now` and returns its increase over the
    /// last window (see the type's docs for the exact meaning).
    pub fn observe(&self, now: Duration, total: u64) -> u64 {
        let epoch = self.epoch(now);
        let slot = &self.slots[self.slot_index(epoch)];
        let current = slot.epoch.load(Ordering::Acquire);
        if current == epoch {
            slot.value.fetch_max(total, Ordering::AcqRel);
        } else if current == EMPTY || (current != WRITING && current < epoch) {
            // The slot holds an observation from a bucket that has left the window (same
            // index, one full ring earlier or more): fold it into `before` and take the slot.
            if current != EMPTY
                && let Some(old) = read_consistent(slot, current)
            {
                self.before.fetch_max(old, Ordering::AcqRel);
            }
            if slot
                .epoch
                .compare_exchange(current, WRITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.value.store(total, Ordering::Release);
                slot.epoch.store(epoch, Ordering::Release);
            }
            // Otherwise another observer is writing this bucket now with an equally recent
            // value; ours adds nothing.
        }
        // current > epoch: the caller's clock went backwards; keep the newer data.
        self.increase_at(epoch, total)
    }

    fn increase_at(&self, epoch: u64, total: u64) -> u64 {
        let mut baseline = self.before.load(Ordering::Acquire);
        for slot in self.slots.iter() {
            let e = slot.epoch.load(Ordering::Acquire);
            if e == EMPTY || e == WRITING {
                continue;
            }
            // Only buckets entirely before the window's first bucket serve as a baseline.
            if e.saturating_add(self.buckets) <= epoch
                && let Some(v) = read_consistent(slot, e)
            {
                baseline = baseline.max(v);
            }
        }
        total.saturating_sub(baseline)
    }

    fn epoch(&self, now: Duration) -> u64 {
        let e = now.as_nanos() / u128::from(self.bucket_nanos);
        u64::try_from(e).unwrap_or(MAX_EPOCH).min(MAX_EPOCH)
    }

    fn slot_index(&self, epoch: u64) -> usize {
        // The modulus is the slot count, so the index is in range.
        usize::try_from(epoch % (self.buckets + 1)).unwrap_or(0)
    }
}

/// Reads a slot's value if the slot still holds `epoch` before and after the read.
fn read_consistent(slot: &Slot, epoch: u64) -> Option<u64> {
    let value = slot.value.load(Ordering::Acquire);
    (slot.epoch.load(Ordering::Acquire) == epoch).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn first_window_counts_from_the_construction_value() {
        let c = WindowCounter::new(s(60), 100);
        assert_eq!(c.observe(s(1), 100), 0);
        assert_eq!(c.observe(s(30), 107), 7);
        assert_eq!(c.observe(s(59), 110), 10);
    }

    #[test]
    fn increases_leave_the_window() {
        // 6 buckets of 10 s over a 60 s window; observations every 5 s.
        let c = WindowCounter::new(s(60), 0);
        let mut total = 0;
        let mut seen = Vec::new();
        for t in (0..=200).step_by(5) {
            if t == 20 {
                total += 3;
            }
            seen.push((t, c.observe(s(t), total)));
        }
        for (t, inc) in seen {
            // The drop at 20 s counts until the baseline passes it: the baseline is the latest
            // observation at least 50 s old, bucket-aligned.
            let expected = if (20..=79).contains(&t) { 3 } else { 0 };
            assert_eq!(inc, expected, "t = {t}");
        }
    }

    #[test]
    fn sparse_observations_never_miss_an_increase() {
        let c = WindowCounter::new(s(60), 0);
        assert_eq!(c.observe(s(0), 0), 0);
        // Nothing observed for ten minutes; 4 drops happened somewhere in between.
        assert_eq!(c.observe(s(600), 4), 4);
        assert_eq!(c.observe(s(630), 4), 4, "stays visible for the window");
        assert_eq!(c.observe(s(700), 4), 0);
    }

    #[test]
    fn counter_reset_and_clock_going_back_do_not_panic() {
        let c = WindowCounter::new(s(60), 50);
        assert_eq!(c.observe(s(10), 10), 0, "a reset reports 0");
        assert_eq!(c.observe(s(100), 60), 10);
        assert_eq!(c.observe(s(5), 70), 20, "clock went back: still an answer");
        // The observation at 5 s (70) is now the latest one older than the window.
        assert_eq!(c.observe(Duration::MAX, 80), 10);
        let z = WindowCounter::with_buckets(Duration::ZERO, 0, 0);
        assert_eq!(z.observe(s(1), 1), 1);
        assert_eq!(z.observe(s(2), 1), 0);
    }

    #[test]
    fn concurrent_observers_stay_within_bounds() {
        let c = Arc::new(WindowCounter::with_buckets(
            Duration::from_millis(100),
            4,
            0,
        ));
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..20_000_u64 {
                        // Time and total both grow; total grows by one per millisecond.
                        let now = Duration::from_micros(i * 50 + k);
                        let total = (i * 50 + k) / 1000;
                        let inc = c.observe(now, total);
                        assert!(inc <= total, "increase {inc} over total {total}");
                        // Over a 100 ms window the counter grows by at most ~100 plus one
                        // bucket (25 ms) plus rounding, whatever the interleaving.
                        assert!(inc <= 130, "increase {inc} too large at {now:?}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let last = Duration::from_micros(20_000 * 50);
        let inc = c.observe(last, 1000);
        assert!((75..=130).contains(&inc), "final increase {inc}");
    }
}
