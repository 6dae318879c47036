//! Proves the hot paths allocate nothing, with a per-thread counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

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

use tta_metrics::{MetricsCollector, MetricsConfig};

#[test]
fn known_series_record_without_allocating() {
    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid");
    let labels = [("route", "/api"), ("method", "GET")];
    // First use creates the series (allocates).
    collector.counter("requests_total", &labels).increment(1);
    collector.gauge("queue_depth", &labels).set(1.0);
    collector.histogram("latency_ms", &labels).record(1.0);
    collector.record_execution("primitive_a", 1.0, true);
    let ((), allocs) = allocations_in(|| {
        for i in 0..1_000 {
            collector.counter("requests_total", &labels).increment(1);
            collector
                .counter("requests_total", &[("method", "GET"), ("route", "/api")])
                .increment(1);
            collector.gauge("queue_depth", &labels).set(f64::from(i));
            collector
                .histogram("latency_ms", &labels)
                .record(f64::from(i));
            collector.record_execution("primitive_a", f64::from(i), i % 2 == 0);
        }
    });
    assert_eq!(allocs, 0, "known-series records allocated");
    assert_eq!(collector.counter("requests_total", &labels).value(), 2_001);
    assert_eq!(
        collector
            .metrics("primitive_a")
            .expect("recorded")
            .total_executions,
        1_001
    );
}
