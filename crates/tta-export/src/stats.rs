//! Counters and reports: [`PipelineStats`], [`ExporterStats`], [`ShutdownReport`],
//! [`ReconfigureReport`].

use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::histogram::LatencyHistogram;

/// A snapshot of the pipeline's counters, from [`SpanPipeline::stats`](crate::SpanPipeline::stats).
///
/// Counters only grow. While spans are in flight the fields are read one after another, so
/// sums across stages may be off by the spans that moved in between; once the pipeline is
/// quiet (after [`flush`](crate::SpanPipeline::flush)) they add up exactly:
/// `submitted = accepted + dropped_queue_full + dropped_after_shutdown` and
/// `accepted = queue_depth + batching_spans + buffered_spans + sampled_out + kept_spans`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Calls to `submit`.
    pub submitted: u64,
    /// Spans that entered the submit queue.
    pub accepted: u64,
    /// Spans dropped because the submit queue was full.
    pub dropped_queue_full: u64,
    /// Spans submitted after shutdown, dropped.
    pub dropped_after_shutdown: u64,
    /// Spans that found the queue full, waited for room (`queue_full_wait_ms`) and were
    /// accepted: the submits that backpressure slowed down instead of dropping.
    pub waited_queue_full: u64,
    /// Spans of traces the sampler dropped (late spans of dropped traces included).
    pub sampled_out: u64,
    /// Spans of kept traces handed to the batcher.
    pub kept_spans: u64,
    /// Spans held by the trace buffer, waiting for their trace's decision.
    pub buffered_spans: u64,
    /// Spans delivered to every exporter.
    pub exported_spans: u64,
    /// Batches delivered to every exporter.
    pub exported_batches: u64,
    /// Spans of batches that at least one exporter failed (after retries).
    pub failed_spans: u64,
    /// Batches that at least one exporter failed (after retries).
    pub failed_batches: u64,
    /// Export attempts that were retries.
    pub retries: u64,
    /// Export calls abandoned at the deadline.
    pub timeouts: u64,
    /// Export calls that panicked.
    pub panics: u64,
    /// Spans waiting in the submit queue now.
    pub queue_depth: usize,
    /// Spans of certainly-kept traces in batches producers are filling (they skip the
    /// queue and the trace buffer), not yet handed to the export workers.
    pub batching_spans: usize,
    /// Capacity of the submit queue (`max_queue_size`).
    pub queue_capacity: usize,
    /// Batches cut and waiting for an export worker (or for `flush` without `async_export`).
    pub pending_batches: usize,
    /// Median time from a batch handed to an exporter until it returned (retries included),
    /// in milliseconds, since start.
    pub export_latency_p50_ms: f64,
    /// 99th percentile of the same, in milliseconds.
    pub export_latency_p99_ms: f64,
    /// Longest export so far, in milliseconds.
    pub export_latency_max_ms: f64,
    /// The latest export error, if any.
    pub last_error: Option<String>,
    /// When a batch was last exported successfully (nanoseconds since the Unix epoch).
    pub last_success_unix_nanos: Option<u64>,
    /// Failed batches since the last successful one.
    pub consecutive_failures: u64,
    /// The same per exporter, in the order they were given.
    pub exporters: Vec<ExporterStats>,
    /// The sampler stage's trace buffer (refreshed every 20 ms and on flush).
    pub trace_buffer: tta_sampling::TraceBufferStats,
}

/// Per-exporter counters within [`PipelineStats`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExporterStats {
    /// The exporter's [`name`](crate::Exporter::name).
    pub name: String,
    /// Spans it accepted.
    pub exported_spans: u64,
    /// Batches it accepted.
    pub exported_batches: u64,
    /// Spans of batches it failed after retries.
    pub failed_spans: u64,
    /// Batches it failed after retries.
    pub failed_batches: u64,
    /// Retries made for it.
    pub retries: u64,
    /// Its calls abandoned at the deadline.
    pub timeouts: u64,
    /// Its calls that panicked.
    pub panics: u64,
    /// Its abandoned calls that have still not returned.
    pub hung_calls: u64,
    /// Its latest error.
    pub last_error: Option<String>,
    /// Batches it failed since its last success.
    pub consecutive_failures: u64,
}

/// What [`SpanPipeline::shutdown`](crate::SpanPipeline::shutdown) managed before its deadline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Everything accepted was decided and every batch handed to the exporters returned
    /// before the deadline (exported or counted as failed).
    pub completed: bool,
    /// Milliseconds the shutdown took.
    pub elapsed_ms: u64,
    /// Spans still in the submit queue at the deadline.
    pub left_in_queue: u64,
    /// Spans still in the trace buffer at the deadline.
    pub left_in_buffer: u64,
    /// Spans of kept traces in batches that were never handed to an exporter.
    pub left_in_batches: u64,
    /// Spans of batches still being exported at the deadline (their exporters were abandoned).
    pub in_flight: u64,
    /// Exporters whose `shutdown` failed, timed out or panicked, with the error.
    pub exporter_errors: Vec<String>,
    /// The final counters.
    pub stats: PipelineStats,
}

impl ShutdownReport {
    /// Spans accepted but neither exported nor counted as failed or sampled out.
    pub fn lost(&self) -> u64 {
        self.left_in_queue + self.left_in_buffer + self.left_in_batches + self.in_flight
    }
}

/// What [`SpanPipeline::reconfigure`](crate::SpanPipeline::reconfigure) changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReconfigureReport {
    /// Fields that changed and are in effect now (`batch_size`, `export_interval_seconds`,
    /// `export_timeout_seconds`, `retry`, `sampling`).
    pub applied: Vec<&'static str>,
    /// Fields that changed but only take effect when the pipeline is started again
    /// (`max_queue_size`, `max_export_workers`, `async_export`).
    pub restart_required: Vec<&'static str>,
}

#[derive(Default)]
pub(crate) struct ExporterCounters {
    pub(crate) exported_spans: AtomicU64,
    pub(crate) exported_batches: AtomicU64,
    pub(crate) failed_spans: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) hung: AtomicU64,
    pub(crate) consecutive_failures: AtomicU64,
    pub(crate) last_error: ArcSwapOption<String>,
}

impl ExporterCounters {
    pub(crate) fn snapshot(&self, name: &str) -> ExporterStats {
        ExporterStats {
            name: name.to_owned(),
            exported_spans: get(&self.exported_spans),
            exported_batches: get(&self.exported_batches),
            failed_spans: get(&self.failed_spans),
            failed_batches: get(&self.failed_batches),
            retries: get(&self.retries),
            timeouts: get(&self.timeouts),
            panics: get(&self.panics),
            hung_calls: get(&self.hung),
            last_error: self.last_error.load_full().map(|s| (*s).clone()),
            consecutive_failures: get(&self.consecutive_failures),
        }
    }
}

/// A value on a cache line (pair) of its own, so threads writing neighbouring values do not
/// invalidate each other's caches (128 bytes: adjacent-line prefetching pairs lines).
#[repr(align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Pipeline-wide counters shared by the producers, the stage and the workers.
///
/// The ones written once per span or trace by different threads sit on cache lines of their
/// own: `received` and `kept_spans` (the stage), `dropped_queue_full` (producers while the
/// queue is full); `decided_out` (every trace the tracing layer drops, from every request
/// thread) is striped by thread, so adding to it takes no locked instruction.
pub(crate) struct Counters {
    pub(crate) received: Padded<AtomicU64>,
    pub(crate) dropped_queue_full: Padded<AtomicU64>,
    pub(crate) dropped_after_shutdown: AtomicU64,
    /// Spans that found the queue full, waited (`queue_full_wait_ms`) and got in.
    pub(crate) waited_full: AtomicU64,
    pub(crate) sampled_out: AtomicU64,
    /// Spans of traces the caller decided to drop before submitting (`record_sampled_out`).
    pub(crate) decided_out: tta_core::StripedCounters<1>,
    /// Written by the stage alone (a plain store of its own count).
    pub(crate) kept_spans: Padded<AtomicU64>,
    /// Spans producers handed to the workers in whole batches from their shards (kept,
    /// never seen by the stage).
    pub(crate) passed: AtomicU64,
    pub(crate) buffered_spans: AtomicU64,
    pub(crate) exported_spans: AtomicU64,
    pub(crate) exported_batches: AtomicU64,
    pub(crate) failed_spans: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) consecutive_failures: AtomicU64,
    pub(crate) last_success_unix_nanos: AtomicU64,
    pub(crate) last_error: ArcSwapOption<String>,
    pub(crate) latency: LatencyHistogram,
}

impl Counters {
    pub(crate) fn add_passed(&self, spans: u64) {
        add(&self.passed, spans);
    }

    pub(crate) fn new() -> Self {
        Self {
            received: Padded(AtomicU64::new(0)),
            dropped_queue_full: Padded(AtomicU64::new(0)),
            dropped_after_shutdown: AtomicU64::new(0),
            waited_full: AtomicU64::new(0),
            sampled_out: AtomicU64::new(0),
            decided_out: tta_core::StripedCounters::new(),
            kept_spans: Padded(AtomicU64::new(0)),
            passed: AtomicU64::new(0),
            buffered_spans: AtomicU64::new(0),
            exported_spans: AtomicU64::new(0),
            exported_batches: AtomicU64::new(0),
            failed_spans: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            last_success_unix_nanos: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
            latency: LatencyHistogram::new(),
        }
    }
}

pub(crate) fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}
