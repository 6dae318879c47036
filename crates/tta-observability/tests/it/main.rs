//! Integration tests of the facade: the guide's snippets, end to end through the tracing
//! layer into the store, hot reload, the OpenTelemetry adapter and HTTP.

// Counts allocations per thread, so tests can prove the layer's hot path allocates nothing.
#[global_allocator]
static GLOBAL: tta_testkit::CountingAlloc = tta_testkit::CountingAlloc;

mod common;
mod e2e;
mod guide;
mod hot_reload;
mod http;
mod layer;
mod otel;
mod wiring;
