//! Striped atomic counters: each thread increments its own cache-line-aligned stripe, so
//! decisions on many threads do not contend on one cache line. Reading sums the stripes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 16;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn stripe() -> usize {
    STRIPE
        .try_with(|s| {
            let v = s.get();
            if v != usize::MAX {
                return v;
            }
            let v = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(v);
            v
        })
        // During thread teardown the slot may be gone; any stripe is still correct.
        .unwrap_or(0)
}

#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

/// `N` counters, striped across threads.
pub(crate) struct Counters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
}

impl<const N: usize> Counters<N> {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Adds one to counter `i` (`i < N`).
    #[inline]
    pub(crate) fn incr(&self, i: usize) {
        if let Some(c) = self.stripes[stripe()].0.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current total of counter `i`.
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
            .sum()
    }
}

impl<const N: usize> std::fmt::Debug for Counters<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries((0..N).map(|i| self.get(i))).finish()
    }
}
