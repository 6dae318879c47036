//! Production observability controls for Rust services, wired together: consistent head,
//! tail and adaptive trace sampling, metric cardinality limits, an embedded compressed trace
//! store with retention, health endpoints, and configuration with presets and lock-free hot
//! reload.
//!
//! Depend on this facade for everything; depend on a single member crate (for example
//! `tta-sampling`) when you need only that part. Every member is re-exported as a module
//! (`tta_observability::sampling`, `::config`, ...) and the key types are at the root.
//!
//! ```no_run
//! use tta_observability::{HealthStatus, Observability, ObservabilityConfig};
//!
//! let obs = Observability::builder()
//!     .config(ObservabilityConfig::from_environment("production")?)
//!     .store_dir("./tta-data")
//!     .build()?;
//! obs.metrics().record_execution("checkout", 12.5, true);
//! assert_eq!(obs.health().check_health().status, HealthStatus::Healthy);
//! obs.shutdown(std::time::Duration::from_secs(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The guide's global calls work as written (see `docs/api-mapping.md`):
//!
//! ```
//! let collector = tta_observability::metrics_collector();
//! collector.record_execution("test_primitive", 100.0, true);
//! assert_eq!(collector.metrics("test_primitive").unwrap().total_executions, 1);
//! let status = tta_observability::sampling_status();
//! assert_eq!(status["enabled"], true);
//! assert_eq!(status["always_sample_errors"], true);
//! ```
//!
//! # Features
//!
//! - `store` (default): the embedded trace store as the default exporter.
//! - `tracing`: [`TtaLayer`], a `tracing_subscriber::Layer` that samples, times and exports
//!   spans and records executions.
//! - `opentelemetry`: [`otel::TtaSampler`], an `opentelemetry_sdk` sampler making our
//!   consistent decision and writing `ot=th` into the trace state.
//! - `http`: health routes and `/metrics` served by [`ObservabilityBuilder::listen`].
//! - `otlp`: OTLP/HTTP export ([`ObservabilityBuilder::otlp_endpoint`]).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod components;
mod error;
mod global;
mod overhead;
mod runtime;

#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
mod layer;
#[cfg(feature = "opentelemetry")]
#[cfg_attr(docsrs, doc(cfg(feature = "opentelemetry")))]
pub mod otel;

pub use tta_cardinality as cardinality;
pub use tta_config as config;
pub use tta_core as core;
pub use tta_export as export;
pub use tta_health as health;
pub use tta_metrics as metrics;
pub use tta_sampling as sampling;
pub use tta_storage as storage;

#[doc(inline)]
pub use error::ObservabilityError;
#[doc(inline)]
pub use global::{
    full_status, global_observability, health_checker, init, init_from_env, metrics_collector,
    metrics_status, observability_config, sampler, sampling_status, set_observability_config,
    update_observability_config,
};
#[cfg(feature = "tracing")]
#[doc(inline)]
pub use layer::TtaLayer;
#[doc(inline)]
pub use overhead::OverheadMeter;
#[doc(inline)]
pub use runtime::{DEFAULT_DATA_DIR, Observability, ObservabilityBuilder};
#[doc(inline)]
pub use tta_config::{Environment, ObservabilityConfig};
#[doc(inline)]
pub use tta_core::{Span, SpanId, TraceId};
#[doc(inline)]
pub use tta_health::{HealthChecker, HealthReport, HealthStatus};
#[doc(inline)]
pub use tta_metrics::MetricsCollector;
#[doc(inline)]
pub use tta_sampling::{CompositeSampler, SamplingDecision, SamplingResult};
