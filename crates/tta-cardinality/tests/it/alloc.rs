//! Proves the hot paths allocate nothing, with a per-thread counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tta_cardinality::{CardinalityLimiter, CardinalityLimits};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)] // a counting GlobalAlloc wrapper needs `unsafe impl`
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
pub(crate) fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

#[test]
fn known_values_admit_without_allocating() {
    let limiter = CardinalityLimiter::new(CardinalityLimits::default()).expect("valid");
    let values: Vec<String> = (0..100).map(|i| format!("route-{i}")).collect();
    for v in &values {
        assert!(limiter.admit("route", v).is_kept());
    }
    let (kept, allocs) = allocations_in(|| {
        let mut kept = 0;
        for _ in 0..10 {
            for v in &values {
                kept += usize::from(limiter.admit("route", v).is_kept());
            }
        }
        kept
    });
    assert_eq!(kept, 1000);
    assert_eq!(allocs, 0, "known-value admissions allocated");
}

#[test]
fn over_limit_values_admit_without_allocating() {
    let limits = CardinalityLimits {
        max_label_values: 10,
        ..Default::default()
    };
    let limiter = CardinalityLimiter::new(limits).expect("valid");
    let values: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    limiter.admit("user_id", "warm"); // creates the key
    let (hashed, allocs) = allocations_in(|| {
        values
            .iter()
            .filter(|v| limiter.admit("user_id", v).starts_with("hash:"))
            .count()
    });
    // The first 9 new values were kept: admitting them allocated (their strings and a chunk).
    assert_eq!(hashed, 991);
    let (_, allocs_after) = allocations_in(|| {
        for v in &values {
            limiter.admit("user_id", v);
        }
    });
    assert!(allocs > 0, "first admissions must allocate their strings");
    assert_eq!(allocs_after, 0, "known and over-limit admissions allocated");
}
