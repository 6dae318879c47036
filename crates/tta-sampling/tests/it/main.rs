//! Integration tests of tta-sampling (one binary; modules per area).

mod adaptive;
mod alloc;
mod buffer;
mod conformance;
mod consistency;
mod statistical;
mod tail;

/// A global allocator that counts, per thread, allocations and live bytes, so tests can
/// prove a code path allocates nothing and measure what a structure holds while other tests
/// run on other threads.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
        static LIVE: Cell<i64> = const { Cell::new(0) };
    }

    fn on_alloc(size: usize) {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        let _ = LIVE.try_with(|c| c.set(c.get() + size as i64));
    }

    fn on_free(size: usize) {
        let _ = LIVE.try_with(|c| c.set(c.get() - size as i64));
    }

    pub(crate) struct Counting;

    // SAFETY: every method forwards to the system allocator unchanged; it only counts, in
    // const-initialized thread-locals that never allocate.
    #[allow(unsafe_code)] // a counting GlobalAlloc wrapper needs `unsafe impl`
    unsafe impl GlobalAlloc for Counting {
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

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Allocations made by this thread so far.
    pub(crate) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    /// Bytes allocated and not yet freed by this thread.
    pub(crate) fn live_bytes() -> i64 {
        LIVE.with(Cell::get)
    }
}
