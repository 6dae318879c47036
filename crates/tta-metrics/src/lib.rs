//! Metrics collector: executions, labelled counters, gauges and histograms behind cardinality
//! limits, with Prometheus text output.
//!
//! Use this crate directly when you want the collector alone (your own HTTP `/metrics`, your
//! own exporter). Most services depend on the `tta-observability` facade instead, which holds
//! one process-wide [`MetricsCollector`] (`tta_observability::metrics_collector()`), wires
//! hot reload and health, and re-exports this crate as `tta_observability::metrics`.
//!
//! ```
//! use tta_metrics::{MetricsCollector, MetricsConfig};
//!
//! let collector = MetricsCollector::new(MetricsConfig::default())?;
//!
//! // The guide's verification step.
//! collector.record_execution("test_primitive", 100.0, true);
//! let metrics = collector.metrics("test_primitive").expect("recorded");
//! assert_eq!(metrics.total_executions, 1);
//!
//! // Labelled instruments; every label value goes through the cardinality limiter.
//! collector.counter("requests_total", &[("route", "/api")]).increment(1);
//! collector.histogram("response_ms", &[("route", "/api")]).record(12.5);
//! for i in 0..1_000 {
//!     collector.counter("logins_total", &[("user_id", format!("user-{i}"))]).increment(1);
//! }
//! let stats = collector.cardinality_stats();
//! assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
//!
//! let text = collector.render_prometheus();
//! assert!(text.contains("# TYPE requests_total counter"));
//! # Ok::<(), tta_metrics::MetricsError>(())
//! ```
//!
//! # Hot paths
//!
//! By-name calls hash the metric name and every label string on each call. Where a record
//! sits on a hot path, prepare a [`MetricKey`] once: after its first use it costs one probe
//! of the series table with a cached hash, with cardinality limits still applied (its labels
//! were admitted when it was bound). Cheaper still is keeping the handle a call returns.
//!
//! ```
//! use std::sync::LazyLock;
//! use tta_metrics::{MetricKey, MetricsCollector, MetricsConfig};
//!
//! static REQUESTS_API: LazyLock<MetricKey> =
//!     LazyLock::new(|| MetricKey::new("requests_total", &[("route", "/api")]));
//!
//! let collector = MetricsCollector::new(MetricsConfig::default())?;
//! collector.counter_for(&REQUESTS_API).increment(1); // one probe, no hashing
//! let handle = collector.counter_for(&REQUESTS_API); // or keep the handle
//! handle.increment(1); // one atomic add
//! assert_eq!(collector.counter("requests_total", &[("route", "/api")]).value(), 2);
//! # Ok::<(), tta_metrics::MetricsError>(())
//! ```
//!
//! # Guarantees and limits
//!
//! - Recording into a known series (or a known primitive) takes no lock and allocates
//!   nothing; only creating a series takes its metric's insert lock.
//! - A by-name record whose value is past the limit takes no lock and allocates nothing
//!   either, but does more work than a known series: a missed lookup of the raw labels, the
//!   limiter's key lookup and overflow counters, and the lookup of the bucket's series. It
//!   measures about 2-2.7 times the by-name known-series call (`cargo bench -p tta-benches
//!   --bench metrics`); the goal of 1.5 times is not met.
//! - A new one-label counter series costs about 163 heap bytes, the limiter's copy of the
//!   value included (the label is stored inline; the value string is shared with the
//!   limiter). The goal of 100 bytes is not met: the rest is the series' slot (56 bytes at
//!   the arena's fill), the two tables' index words (kept 3/4 full, with earlier index
//!   generations) and the shared value string.
//! - Memory is bounded: label values by the limiter (`max_label_values` per key, a budget of
//!   ten times that over all keys), metric names by [`MAX_METRIC_NAMES`], series by
//!   [`MAX_SERIES`], labels per series by [`MAX_LABELS`]. Past a bound, records go to an
//!   overflow series or metric, so totals are kept.
//! - Percentiles come from a fixed log-linear histogram (8 buckets per power of two,
//!   about 2 KiB each) within [`QUANTILE_RELATIVE_ERROR`] (6.25%) for values between about
//!   0.001 and 4.2 million; min, max, sum and count are exact.
//! - Invalid metric and label names are sanitized predictably ([`sanitize_metric_name`],
//!   [`sanitize_label_name`]); NaN, infinite or negative durations are rejected and counted.
//!
//! # What it does not do
//!
//! - No I/O, no threads, no push: exporters read [`MetricsCollector::snapshot`] or
//!   [`MetricsCollector::render_prometheus`] every `export_interval_seconds`.
//! - Series are never deleted; a collector lives as long as the process.
//! - Histograms use fixed bounds (exposed at every other power of two), not user buckets.
//!
//! # Features
//!
//! This crate has no optional features.

mod collector;
mod config;
mod error;
mod histogram;
mod names;
mod prometheus;

pub use collector::{
    Counter, EXECUTION_DURATION_METRIC, EXECUTIONS_METRIC, ExecutionHint, ExecutionMetrics,
    ExecutionTotals, Gauge, Histogram, MAX_LABELS, MAX_METRIC_NAMES, MAX_SERIES, MetricKey,
    MetricKind, MetricsCollector, OVERFLOW_LABEL, PRIMITIVE_LABEL,
};
pub use config::{MAX_EXPORT_INTERVAL_SECONDS, MetricsConfig};
pub use error::MetricsError;
pub use histogram::{QUANTILE_RELATIVE_ERROR, exposed_bounds};
pub use names::{sanitize_label_name, sanitize_metric_name};
pub use prometheus::{PROMETHEUS_CONTENT_TYPE, render_snapshot};
pub use tta_cardinality::{CardinalityLimits, CardinalityStats};
