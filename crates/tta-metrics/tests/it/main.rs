//! Integration tests for tta-metrics.

mod alloc;
mod concurrency;
mod exposition;
mod flood;
mod guide;
mod keys;
