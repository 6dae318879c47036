//! Integration tests for tta-cardinality.

mod alloc;
mod concurrency;
mod flood;
#[cfg(feature = "metrics")]
mod recorder;
