//! Span pipeline: non-blocking submit, sampler stage, batcher and export workers with store,
//! OTLP/HTTP and JSON-lines exporters.
//!
//! Use this crate directly when you wire your own runtime; most services use the
//! `tta-observability` facade, which starts a [`SpanPipeline`] from `ObservabilityConfig` and
//! re-exports this crate as `tta_observability::export`.
//!
//! ```text
//! app threads ── submit(span) ──► bounded queue (max_queue_size; full => drop + count)
//!   ──► sampler stage thread: TraceBuffer assembles traces, CompositeSampler decides (tail rules)
//!   ──► batcher: batch_size spans or export_interval_seconds, whichever first
//!   ──► max_export_workers threads: every exporter, retries with backoff within
//!       export_timeout_seconds, panics caught, hung calls abandoned at the deadline
//! ```
//!
//! [`SpanPipeline::submit`] never blocks and takes no lock: it is one attempt on a bounded
//! lock-free queue. [`SpanPipeline::flush`] decides everything buffered and waits for the
//! export; [`SpanPipeline::shutdown`] drains within a deadline and reports what was left;
//! [`SpanPipeline::stats`] returns counters and export latency percentiles.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tta_core::{Span, SpanId, SpanStatus, TraceId};
//! use tta_export::{ExportConfig, InMemoryExporter, SpanPipeline};
//! use tta_sampling::{CompositeSampler, SamplingConfig};
//!
//! let sampling = SamplingConfig { default_rate: 0.05, adaptive_enabled: false, ..Default::default() };
//! let sampler = Arc::new(CompositeSampler::new(sampling.clone()));
//! let exporter = InMemoryExporter::new();
//! let pipeline = SpanPipeline::start(
//!     ExportConfig::default(),
//!     Arc::clone(&sampler),
//!     &sampling,
//!     vec![Box::new(exporter.clone())],
//! )?;
//!
//! // A failed request: the tail rule keeps it whatever the head rate says.
//! let trace_id = TraceId::random();
//! pipeline.submit(Span {
//!     trace_id,
//!     span_id: SpanId::random(),
//!     name: "GET /checkout".into(),
//!     status: SpanStatus::Error("timeout".into()),
//!     ..Default::default()
//! });
//! pipeline.flush(Duration::from_secs(10))?;
//! assert_eq!(exporter.spans()[0].trace_id, trace_id);
//!
//! let report = pipeline.shutdown(Duration::from_secs(5));
//! assert!(report.completed);
//! assert_eq!(report.stats.exported_spans, 1);
//! # Ok::<(), tta_export::ExportError>(())
//! ```
//!
//! # Feature flags
//!
//! - `store` (default): [`StoreExporter`], export into the embedded `tta-storage` trace store.
//! - `otlp`: [`OtlpHttpExporter`], OTLP/HTTP with protobuf or JSON bodies and gzip
//!   (`opentelemetry-proto`, `prost`, `ureq`, `flate2`). Plain `http://` only: this build
//!   carries no TLS stack.
//!
//! [`InMemoryExporter`] and [`JsonLinesExporter`] are always available.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod exporter;
mod histogram;
mod pipeline;
mod shard;
mod stage;
mod stats;
mod worker;

pub use config::{ExportConfig, MAX_QUEUE_FULL_WAIT_MS, MAX_QUEUE_SIZE, MAX_WORKERS, RetryPolicy};
pub use error::ExportError;
pub use exporter::{Exporter, InMemoryExporter, JsonLinesExporter};
pub use pipeline::{DROP_SHUTDOWN_DEADLINE, PipelineBuilder, SpanPipeline};
pub use stats::{ExporterStats, PipelineStats, ReconfigureReport, ShutdownReport};
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub use otlp::{DEFAULT_OTLP_ENDPOINT, OtlpConfig, OtlpEncoding, OtlpHttpExporter};
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub use store::StoreExporter;
