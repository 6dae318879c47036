//! Striped counters for statistics that many threads bump on hot paths. While it lives, a thread owns one stripe (a cache line of its own), so
//! an increment is a plain load and store on that line: no locked instruction, no contention.
//! Threads that find every stripe owned share a few stripes with atomic adds. Reading sums
//! the stripes.
//!
//! A stripe is released when its thread exits and may then be owned by a new thread; the
//! release (`Release`) and the claim (`Acquire`) order the old owner's last store before the
//! new owner's first load, so no count is lost.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes a thread can own (one bit each in [`OWNED`]).
const EXCLUSIVE: usize = 62;
/// Stripes shared, with atomic adds, by threads that found none free.
const SHARED: usize = 2;
const STRIPES: usize = EXCLUSIVE + SHARED;

/// Which exclusive stripes a live thread owns.
static OWNED: AtomicU64 = AtomicU64::new(0);
static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);

/// A thread's stripe; an exclusive one goes back to the pool when the thread exits.
struct Slot(usize);

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0 < EXCLUSIVE {
            OWNED.fetch_and(!(1 << self.0), Ordering::Release);
        }
    }
}

fn claim() -> Slot {
    let mut owned = OWNED.load(Ordering::Relaxed);
    loop {
        let free = !owned & ((1u64 << EXCLUSIVE) - 1);
        if free == 0 {
            return Slot(EXCLUSIVE + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % SHARED);
        }
        let bit = free.trailing_zeros() as usize;
        match OWNED.compare_exchange_weak(
            owned,
            owned | 1 << bit,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Slot(bit),
            Err(now) => owned = now,
        }
    }
}

thread_local! {
    static SLOT: Slot = claim();
}

/// This thread's stripe; during thread teardown (its slot gone) a shared one.
#[inline]
fn stripe() -> usize {
    SLOT.try_with(|s| s.0).unwrap_or(EXCLUSIVE)
}

/// A small number identifying the calling thread among the threads alive now (below 64):
/// the index of its [`StripedCounters`] stripe. Threads alive at the same time get different
/// numbers while fewer than 62 are alive; a number is reused after its thread exits. Use it
/// to spread per-thread state over shards.
#[inline]
pub fn thread_stripe() -> usize {
    stripe()
}

#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

/// `N` counters, striped across threads: an increment is a plain load and store on the
/// calling thread's own cache line, a read sums the stripes.
///
/// ```
/// use tta_core::StripedCounters;
///
/// let c = StripedCounters::<2>::new();
/// c.incr(0);
/// c.add(1, 5);
/// assert_eq!((c.get(0), c.get(1)), (1, 5));
/// ```
pub struct StripedCounters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
}

impl<const N: usize> StripedCounters<N> {
    /// `N` counters at zero.
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Adds one to counter `i` (`i < N`; others are ignored).
    #[inline]
    pub fn incr(&self, i: usize) {
        self.add(i, 1);
    }

    /// Adds `n` to counter `i` (`i < N`; others are ignored).
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        let s = stripe();
        if let Some(c) = self.stripes.get(s).and_then(|stripe| stripe.0.get(i)) {
            if s < EXCLUSIVE {
                // This thread is the stripe's only writer.
                c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            } else {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// The current total of counter `i`.
    pub fn get(&self, i: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
            .fold(0u64, u64::wrapping_add)
    }
}

impl<const N: usize> Default for StripedCounters<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for StripedCounters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..N).map(|i| self.get(i))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// More threads alive at once than there are exclusive stripes (some share with atomic
    /// adds), then as many again one after another (reusing released stripes): every
    /// increment is counted.
    #[test]
    fn counts_are_exact_across_owned_shared_and_reused_stripes() {
        let counters = Arc::new(StripedCounters::<3>::new());
        let threads = EXCLUSIVE + 10;
        let barrier = Arc::new(Barrier::new(threads));
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (c, b) = (Arc::clone(&counters), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mine = stripe(); // claimed while every thread is alive
                    b.wait();
                    for _ in 0..1_000 + t {
                        c.incr(1);
                    }
                    mine
                })
            })
            .collect();
        let stripes: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            stripes.iter().any(|&s| s >= EXCLUSIVE),
            "some threads share"
        );
        let expected: u64 = (0..threads as u64).map(|t| 1_000 + t).sum();
        assert_eq!(counters.get(1), expected);
        for _ in 0..threads {
            let c = Arc::clone(&counters);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    c.incr(1);
                }
                c.incr(2);
            })
            .join()
            .unwrap();
        }
        assert_eq!(counters.get(1), expected + 100 * threads as u64);
        assert_eq!(counters.get(2), threads as u64);
        assert_eq!(counters.get(0), 0);
    }
}
