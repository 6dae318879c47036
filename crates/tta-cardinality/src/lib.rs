//! Per-label admission with limits, stable hash buckets and overflow, so metric cardinality stays bounded without losing totals.
//!
//! Status: scaffolding only; the implementation lands with its issue.
