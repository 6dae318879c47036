//! Production observability controls for Rust services: sampling, cardinality limits, an embedded trace store, health endpoints and hot-reloaded configuration, wired together.
//!
//! Status: scaffolding only; the implementation lands with its issue.
