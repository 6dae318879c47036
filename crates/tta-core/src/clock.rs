use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in nanoseconds since the Unix epoch.
///
/// Components that make time-based decisions take a clock (or an explicit `now`) so tests can
/// drive time by hand instead of sleeping.
pub trait Clock: Send + Sync {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    fn now_unix_nanos(&self) -> u64;
}

/// The operating system's wall clock.
///
/// ```
/// use tta_core::{Clock, SystemClock};
/// assert!(SystemClock.now_unix_nanos() > 1_600_000_000_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; for tests and simulations.
///
/// ```
/// use std::time::Duration;
/// use tta_core::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_micros(2));
/// assert_eq!(clock.now_unix_nanos(), 3_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `start_unix_nanos` until moved.
    pub fn new(start_unix_nanos: u64) -> Self {
        Self {
            now: AtomicU64::new(start_unix_nanos),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to an absolute time.
    pub fn set(&self, unix_nanos: u64) {
        self.now.store(unix_nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_nanos(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_unix_nanos(&self) -> u64 {
        (**self).now_unix_nanos()
    }
}
