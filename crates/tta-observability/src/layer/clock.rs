//! The layer's span clock: the CPU's time-stamp counter (through `quanta`), anchored to the
//! wall clock.
//!
//! Two `SystemTime::now()` calls cost about 70 ns per span on a virtual machine, a quarter
//! of the layer's own work; a counter read costs about 10 ns. Durations come from counter
//! deltas (monotonic), and a span's start time is the anchor's wall-clock time plus the
//! counter time since the anchor. The anchor is refreshed from `SystemTime` every
//! [`REANCHOR_EVERY`] span starts, so the start times follow the wall clock (NTP slews and
//! steps included) to within the counter's drift over that interval. Where the counter is
//! not usable (no invariant TSC), `quanta` reads the OS monotonic clock instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many span starts share one wall-clock anchor.
pub(super) const REANCHOR_EVERY: u64 = 256;

fn system_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Counter-based span timestamps anchored to the wall clock.
#[derive(Debug)]
pub(super) struct SpanClock {
    clock: quanta::Clock,
    /// The counter reading of the first anchor: every counter time is taken relative to it.
    base_raw: u64,
    /// Wall-clock nanoseconds at `base_raw`, corrected by each re-anchoring.
    base_unix: AtomicU64,
}

impl SpanClock {
    pub(super) fn new() -> Self {
        let clock = quanta::Clock::new();
        let base_raw = clock.raw();
        Self {
            clock,
            base_raw,
            base_unix: AtomicU64::new(system_unix_nanos()),
        }
    }

    /// A counter reading: cheap; convert with [`unix_nanos`](Self::unix_nanos) or
    /// [`elapsed_nanos`](Self::elapsed_nanos).
    #[inline]
    pub(super) fn raw(&self) -> u64 {
        self.clock.raw()
    }

    /// The wall-clock time of a counter reading, in nanoseconds since the Unix epoch.
    #[inline]
    pub(super) fn unix_nanos(&self, raw: u64) -> u64 {
        self.base_unix
            .load(Ordering::Relaxed)
            .saturating_add(self.clock.delta_as_nanos(self.base_raw, raw))
    }

    /// Nanoseconds between two counter readings (0 if `end` is before `start`).
    #[inline]
    pub(super) fn elapsed_nanos(&self, start: u64, end: u64) -> u64 {
        self.clock.delta_as_nanos(start, end)
    }

    /// Re-reads the wall clock and moves the anchor so that `raw` (read just before) maps
    /// to it.
    #[cold]
    pub(super) fn reanchor(&self, raw: u64) {
        let since_base = self.clock.delta_as_nanos(self.base_raw, raw);
        let now = system_unix_nanos();
        self.base_unix
            .store(now.saturating_sub(since_base), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_times_track_the_wall_clock() {
        let clock = SpanClock::new();
        for _ in 0..5 {
            let before = system_unix_nanos();
            let raw = clock.raw();
            let at = clock.unix_nanos(raw);
            let after = system_unix_nanos();
            // Calibration error and the reads' own cost: well under a millisecond.
            assert!(
                at + 1_000_000 >= before && at <= after + 1_000_000,
                "{before} <= {at} <= {after}"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn durations_come_from_counter_deltas() {
        let clock = SpanClock::new();
        let start = clock.raw();
        let wall = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let end = clock.raw();
        let measured = clock.elapsed_nanos(start, end);
        let reference = u64::try_from(wall.elapsed().as_nanos()).unwrap_or(u64::MAX);
        assert!(measured >= 4_900_000, "{measured}");
        // The counter interval lies inside the reference interval, give or take calibration.
        assert!(
            measured <= reference + 1_000_000,
            "{measured} vs {reference}"
        );
        assert_eq!(clock.elapsed_nanos(end, start), 0);
    }

    #[test]
    fn reanchoring_moves_times_to_the_wall_clock() {
        let clock = SpanClock::new();
        // Simulate drift: the anchor is a second off.
        clock.base_unix.fetch_sub(1_000_000_000, Ordering::Relaxed);
        let raw = clock.raw();
        let stale = clock.unix_nanos(raw);
        clock.reanchor(raw);
        let fixed = clock.unix_nanos(raw);
        let now = system_unix_nanos();
        assert!(fixed >= stale + 990_000_000, "{stale} -> {fixed}");
        assert!(
            fixed <= now && now - fixed < 100_000_000,
            "{fixed} vs {now}"
        );
    }
}
