//! Span pipeline: non-blocking submit, sampler stage, batcher and export workers with store,
//! OTLP/HTTP and JSON-lines exporters.
//!
//! Status: the config and error types are in place; the pipeline lands with issue 6.

mod config;
mod error;

pub use config::{ExportConfig, MAX_QUEUE_SIZE, MAX_WORKERS, RetryPolicy};
pub use error::ExportError;
