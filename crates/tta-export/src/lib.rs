//! Span pipeline: non-blocking submit, sampler stage, batcher and export workers with store,
//! OTLP/HTTP and JSON-lines exporters.
//!
//! Status: being implemented with issue 6.

mod config;
mod error;
mod exporter;
mod histogram;
mod pipeline;
mod stage;
mod stats;
mod worker;

pub use config::{ExportConfig, MAX_QUEUE_SIZE, MAX_WORKERS, RetryPolicy};
pub use error::ExportError;
pub use exporter::{Exporter, InMemoryExporter, JsonLinesExporter};
pub use pipeline::{DROP_SHUTDOWN_DEADLINE, PipelineBuilder, SpanPipeline};
pub use stats::{ExporterStats, PipelineStats, ReconfigureReport, ShutdownReport};
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
pub use otlp::{DEFAULT_OTLP_ENDPOINT, OtlpConfig, OtlpEncoding, OtlpHttpExporter};
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
pub use store::StoreExporter;
