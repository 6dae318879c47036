//! Measures the share of the process's CPU time that observability itself costs: CPU time of
//! our own threads (named `tta-*`) plus a sampled estimate of the in-line cost on application
//! threads, over the process's CPU time, per interval.
//!
//! On Linux the CPU times come from `/proc/self/stat` and `/proc/self/task/*/stat`; elsewhere
//! only the in-line estimate over wall time is available and [`OverheadMeter::sample`]
//! returns `None` for the process share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: u64 = 100;
/// One in this many instrumented operations is timed for the in-line estimate.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))] // used by the tracing layer only
pub(crate) const INLINE_SAMPLE_EVERY: u64 = 64;

/// Overhead measurement shared by the runtime, the tracing layer and health.
///
/// ```
/// use tta_observability::OverheadMeter;
/// let meter = OverheadMeter::new();
/// meter.add_inline_nanos(1_000);
/// assert_eq!(meter.inline_nanos(), 1_000);
/// assert_eq!(meter.current(), None); // nothing measured yet
/// ```
#[derive(Debug, Default)]
pub struct OverheadMeter {
    inline_nanos: AtomicU64,
    current_bits: AtomicU64,
    has_current: AtomicU64,
    last: Mutex<Option<Sample>>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    process_nanos: u64,
    own_threads_nanos: u64,
    inline_nanos: u64,
}

impl OverheadMeter {
    /// A meter with nothing measured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds estimated in-line nanoseconds (already scaled up for sampling).
    pub fn add_inline_nanos(&self, nanos: u64) {
        self.inline_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Estimated in-line nanoseconds so far.
    pub fn inline_nanos(&self) -> u64 {
        self.inline_nanos.load(Ordering::Relaxed)
    }

    /// The overhead measured over the last interval (fraction of process CPU), if any.
    pub fn current(&self) -> Option<f64> {
        (self.has_current.load(Ordering::Acquire) == 1)
            .then(|| f64::from_bits(self.current_bits.load(Ordering::Acquire)))
    }

    /// Takes a measurement now: the overhead since the previous call. Returns `None` on the
    /// first call, when the process used no CPU, or where `/proc` is unavailable.
    pub fn sample(&self) -> Option<f64> {
        let now = Sample {
            process_nanos: process_cpu_nanos()?,
            own_threads_nanos: own_threads_cpu_nanos().unwrap_or(0),
            inline_nanos: self.inline_nanos(),
        };
        let mut last = self.last.lock().ok()?;
        let prev = last.replace(now)?;
        let process = now.process_nanos.saturating_sub(prev.process_nanos);
        if process == 0 {
            return None;
        }
        let ours = now.own_threads_nanos.saturating_sub(prev.own_threads_nanos)
            + now.inline_nanos.saturating_sub(prev.inline_nanos);
        let overhead = (ours as f64 / process as f64).clamp(0.0, 1.0);
        self.current_bits
            .store(overhead.to_bits(), Ordering::Release);
        self.has_current.store(1, Ordering::Release);
        Some(overhead)
    }
}

/// Parses utime + stime (fields 14 and 15) of a `/proc/.../stat` line into nanoseconds.
fn stat_cpu_nanos(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state); utime is field 14 => index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * (1_000_000_000 / USER_HZ))
}

fn process_cpu_nanos() -> Option<u64> {
    stat_cpu_nanos(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn own_threads_cpu_nanos() -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.starts_with("tta-")
            && let Some(n) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .as_deref()
                .and_then(stat_cpu_nanos)
        {
            total += n;
        }
    }
    Some(total)
}

/// How long the measuring thread waits between samples for a given adjustment interval.
pub(crate) fn sample_period(adjustment_interval_seconds: f64) -> Duration {
    Duration::from_secs_f64(adjustment_interval_seconds.clamp(0.05, 3600.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let line =
            "1234 (tta worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 0 0";
        assert_eq!(stat_cpu_nanos(line), Some(300 * 10_000_000));
        assert_eq!(stat_cpu_nanos("garbage"), None);
    }

    #[test]
    fn measures_this_process() {
        let meter = OverheadMeter::new();
        assert_eq!(meter.sample(), None, "first call only sets the baseline");
        // Burn some CPU on this (non-tta) thread and account a known in-line share.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        meter.add_inline_nanos(1_000_000);
        if cfg!(target_os = "linux") {
            let o = meter.sample().expect("linux has /proc");
            assert!((0.0..=1.0).contains(&o), "{o}");
            assert_eq!(meter.current(), Some(o));
        }
    }
}
