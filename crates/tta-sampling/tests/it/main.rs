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
    #[global_allocator]
    static GLOBAL: tta_testkit::CountingAlloc = tta_testkit::CountingAlloc;

    pub(crate) use tta_testkit::{
        thread_allocations as allocations, thread_live_bytes as live_bytes,
    };
}
