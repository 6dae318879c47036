//! The facade's health components: each reads one part's counters and applies the rules of
//! `tta_health::rules` with the thresholds currently configured (so a reload changes them at
//! once).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tta_config::ConfigHandle;
use tta_export::SpanPipeline;
use tta_health::rules::{
    self, ConfigObservation, ExportObservation, MetricsObservation, SamplingObservation,
    StorageObservation,
};
use tta_health::{ComponentHealth, HealthComponent, WindowCounter};
use tta_metrics::MetricsCollector;
use tta_sampling::{CompositeSampler, SamplingReason};
use tta_storage::TraceStore;

use crate::OverheadMeter;

pub(crate) struct SamplingComponent {
    pub(crate) sampler: Arc<CompositeSampler>,
    pub(crate) config: ConfigHandle,
    pub(crate) overhead: Arc<OverheadMeter>,
}

fn reasons(counts: &tta_sampling::ReasonCounts) -> Value {
    let mut map = serde_json::Map::new();
    for r in SamplingReason::ALL {
        map.insert(r.as_str().to_owned(), json!(counts.get(r)));
    }
    Value::Object(map)
}

impl HealthComponent for SamplingComponent {
    fn name(&self) -> &str {
        "sampling"
    }

    fn check(&self) -> ComponentHealth {
        let c = self.config.load_guard();
        let s = &c.tracing.sampling;
        rules::sampling(
            &SamplingObservation {
                enabled: c.tracing.enabled,
                current_rate: self.sampler.current_rate(),
                min_rate: s.adaptive_min_rate,
                adaptive: s.adaptive_enabled,
            },
            &c.health,
        )
    }

    fn status_document(&self) -> Value {
        let c = self.config.load_guard();
        let s = &c.tracing.sampling;
        let stats = self.sampler.stats();
        json!({
            "enabled": c.tracing.enabled,
            "sampling_rate": self.sampler.current_rate(),
            "base_rate": s.default_rate,
            "always_sample_errors": s.always_sample_errors,
            "always_sample_slow": s.always_sample_slow,
            "slow_threshold_ms": s.slow_threshold_ms,
            "adaptive_enabled": s.adaptive_enabled,
            "adaptive_min_rate": s.adaptive_min_rate,
            "adaptive_max_rate": s.adaptive_max_rate,
            "target_overhead": s.adaptive_target_overhead,
            "measured_overhead": self.overhead.current(),
            "adaptive_adjustments": stats.adaptive.adjustments,
            "threshold": self.sampler.current_threshold().map(|t| t.to_string()),
            "head": {
                "decisions": stats.head.decisions,
                "sampled": stats.head.sampled,
                "dropped": stats.head.dropped,
                "sampled_by_reason": reasons(&stats.head.sampled_by_reason),
            },
            "tail": {
                "decisions": stats.tail.decisions,
                "sampled": stats.tail.sampled,
                "dropped": stats.tail.dropped,
                "sampled_by_reason": reasons(&stats.tail.sampled_by_reason),
            },
        })
    }
}

pub(crate) struct MetricsComponent {
    pub(crate) metrics: Arc<MetricsCollector>,
    pub(crate) config: ConfigHandle,
}

impl HealthComponent for MetricsComponent {
    fn name(&self) -> &str {
        "metrics"
    }

    fn check(&self) -> ComponentHealth {
        let c = self.config.load_guard();
        let stats = self.metrics.cardinality_stats();
        rules::metrics(
            &MetricsObservation {
                dropped_labels: &stats.dropped_labels,
                total_labels: stats.total_labels,
                label_budget: Some(self.metrics.limiter().limits().max_total_label_values),
                export_p99_ms: None,
            },
            &c.health,
        )
    }

    fn status_document(&self) -> Value {
        let c = self.config.load_guard();
        let stats = self.metrics.cardinality_stats();
        let totals = self.metrics.totals();
        json!({
            "enabled": c.metrics.enabled,
            "total_executions": totals.total_executions,
            "successes": totals.successes,
            "failures": totals.failures,
            "primitives": self.metrics.names().len(),
            "max_label_values": c.metrics.max_label_values,
            "hash_high_cardinality": c.metrics.hash_high_cardinality,
            "cardinality": serde_json::to_value(&stats).unwrap_or(Value::Null),
        })
    }
}

pub(crate) struct ExportComponent {
    pub(crate) pipeline: Arc<SpanPipeline>,
    pub(crate) config: ConfigHandle,
    pub(crate) dropped: WindowCounter,
    pub(crate) started: Instant,
}

impl HealthComponent for ExportComponent {
    fn name(&self) -> &str {
        "export"
    }

    fn check(&self) -> ComponentHealth {
        let c = self.config.load_guard();
        let stats = self.pipeline.stats();
        let dropped = self
            .dropped
            .observe(self.started.elapsed(), stats.dropped_queue_full);
        rules::export(
            &ExportObservation {
                dropped_spans_in_window: dropped,
                p99_latency_ms: (stats.exported_batches + stats.failed_batches > 0)
                    .then_some(stats.export_latency_p99_ms),
                consecutive_failures: u32::try_from(stats.consecutive_failures).unwrap_or(u32::MAX),
                last_error: stats.last_error.clone(),
            },
            &c.health,
        )
    }

    fn status_document(&self) -> Value {
        let s = self.pipeline.stats();
        json!({
            "submitted": s.submitted,
            "dropped_queue_full": s.dropped_queue_full,
            "waited_queue_full": s.waited_queue_full,
            "sampled_out": s.sampled_out,
            "kept_spans": s.kept_spans,
            "buffered_spans": s.buffered_spans,
            "exported_spans": s.exported_spans,
            "failed_spans": s.failed_spans,
            "retries": s.retries,
            "queue_depth": s.queue_depth,
            "batching_spans": s.batching_spans,
            "queue_capacity": s.queue_capacity,
            "export_latency_p50_ms": s.export_latency_p50_ms,
            "export_latency_p99_ms": s.export_latency_p99_ms,
            "consecutive_failures": s.consecutive_failures,
            "last_error": s.last_error,
            "last_success_unix_nanos": s.last_success_unix_nanos,
            "exporters": s.exporters.iter().map(|e| json!({
                "name": e.name,
                "exported_spans": e.exported_spans,
                "failed_spans": e.failed_spans,
                "consecutive_failures": e.consecutive_failures,
                "last_error": e.last_error,
            })).collect::<Vec<_>>(),
            "trace_buffer": {
                "buffered_traces": s.trace_buffer.buffered_traces,
                "buffered_bytes": s.trace_buffer.buffered_bytes,
                "budget_bytes": s.trace_buffer.budget_bytes,
                "traces_kept": s.trace_buffer.traces_kept,
                "traces_dropped": s.trace_buffer.traces_dropped,
                "decided_early": s.trace_buffer.decided_early,
            },
        })
    }
}

pub(crate) struct StorageComponent {
    pub(crate) store: Arc<TraceStore>,
    pub(crate) pipeline: Arc<SpanPipeline>,
    pub(crate) config: ConfigHandle,
}

impl StorageComponent {
    /// The store exporter's own failures: persistent failures mean the store is not writable.
    fn store_exporter(&self) -> Option<tta_export::ExporterStats> {
        self.pipeline
            .stats()
            .exporters
            .into_iter()
            .find(|e| e.name == "store")
    }
}

impl HealthComponent for StorageComponent {
    fn name(&self) -> &str {
        "storage"
    }

    fn check(&self) -> ComponentHealth {
        let c = self.config.load_guard();
        let stats = self.store.stats();
        let exporter = self.store_exporter();
        let failing = exporter
            .as_ref()
            .map(|e| e.consecutive_failures)
            .unwrap_or(0);
        let mut health = rules::storage(
            &StorageObservation {
                writable: failing < u64::from(c.health.export_failures_unhealthy),
                last_error: exporter.and_then(|e| e.last_error),
                bytes_used: stats.bytes_on_disk,
                byte_cap: c.storage.max_disk_bytes,
            },
            &c.health,
        );
        if !stats.corrupt_blocks.is_empty() {
            health.degrade(format!(
                "{} corrupt block(s) skipped on open",
                stats.corrupt_blocks.len()
            ));
        }
        health
    }

    fn status_document(&self) -> Value {
        let s = self.store.stats();
        json!({
            "dir": self.store.dir().display().to_string(),
            "segments": s.segments,
            "spans": s.spans,
            "traces": s.traces,
            "bytes_on_disk": s.bytes_on_disk,
            "uncompressed_bytes": s.uncompressed_bytes,
            "compression_ratio": s.compression_ratio,
            "bytes_per_span": s.bytes_per_span,
            "oldest_unix_nanos": s.oldest_unix_nanos,
            "newest_unix_nanos": s.newest_unix_nanos,
            "corrupt_blocks": s.corrupt_blocks.len(),
        })
    }
}

pub(crate) struct ConfigComponent {
    pub(crate) config: ConfigHandle,
}

impl HealthComponent for ConfigComponent {
    fn name(&self) -> &str {
        "config"
    }

    fn check(&self) -> ComponentHealth {
        let c = self.config.load_guard();
        let stats = self.config.stats();
        rules::config(
            &ConfigObservation {
                last_reload_rejected: stats.last_rejected,
                last_error: stats.last_error,
                reloads_applied: stats.applied,
                reloads_rejected: stats.rejected,
            },
            &c.health,
        )
    }

    fn status_document(&self) -> Value {
        let c = self.config.load_guard();
        let stats = self.config.stats();
        json!({
            "environment": c.environment.as_str(),
            "service_name": c.service_name,
            "service_version": c.service_version,
            "version": stats.version,
            "reloads_applied": stats.applied,
            "reloads_rejected": stats.rejected,
            "last_error": stats.last_error,
            "last_applied_unix_nanos": stats.last_applied_unix_nanos,
            "restart_required": stats.restart_required,
        })
    }
}
