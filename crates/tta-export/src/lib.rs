//! Span pipeline: non-blocking submit, sampler stage, batcher and export workers with store, OTLP/HTTP and JSON-lines exporters.
//!
//! Status: scaffolding only; the implementation lands with its issue.
