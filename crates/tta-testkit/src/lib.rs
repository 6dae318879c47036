//! Test and bench support for the tta-observability workspace: a global allocator that
//! counts allocations and live bytes, per thread (so a test can prove its own code path
//! allocates nothing while other tests run on other threads) and for the whole process
//! (for benches). Not published; used only as a dev-dependency.
//!
//! Install it once per test or bench binary:
//!
//! ```
//! #[global_allocator]
//! static ALLOC: tta_testkit::CountingAlloc = tta_testkit::CountingAlloc;
//!
//! let (v, allocations) = tta_testkit::allocations_in(|| vec![1u8; 16]);
//! assert_eq!(v.len(), 16);
//! assert_eq!(allocations, 1);
//! let (_, none) = tta_testkit::allocations_in(|| 2 + 2);
//! assert_eq!(none, 0);
//! ```
//!
//! This crate has no features.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static THREAD_LIVE: Cell<i64> = const { Cell::new(0) };
}

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

fn on_alloc(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    let _ = THREAD_LIVE.try_with(|c| c.set(c.get() + size as i64));
}

fn on_free(size: usize) {
    let _ = THREAD_LIVE.try_with(|c| c.set(c.get() - size as i64));
}

/// The counting allocator; install it with `#[global_allocator]`.
pub struct CountingAlloc;

// SAFETY: every method forwards to the system allocator unchanged; it only counts, in atomics
// and const-initialized thread-locals that never allocate.
#[allow(unsafe_code)] // a counting GlobalAlloc wrapper needs `unsafe impl`
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Bytes this thread allocated and has not freed yet.
pub fn thread_live_bytes() -> i64 {
    THREAD_LIVE.with(Cell::get)
}

/// Runs `f` and returns how many allocations this thread made meanwhile.
pub fn allocations_in<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = thread_allocations();
    let r = f();
    (r, thread_allocations() - before)
}

/// Allocations made by every thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes requested from the allocator by every thread so far (frees not subtracted).
pub fn allocated_bytes() -> u64 {
    ALLOCATED_BYTES.load(Ordering::Relaxed)
}
