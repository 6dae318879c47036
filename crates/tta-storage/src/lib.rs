//! Embedded trace and metric store: append-only segments of zstd blocks, retention, crash recovery and queries.
//!
//! Status: scaffolding only; the implementation lands with its issue.
