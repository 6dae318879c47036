//! `tta demo`: the synthetic workload through the whole stack, then a summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tta_observability::config::EnvSource;
use tta_observability::sampling::SamplingReason;
use tta_observability::{HealthStatus, Observability, ObservabilityConfig};

use crate::workload::{self, WorkloadConfig};
use crate::{CliError, Outcome, fmt_bytes};

const COMMAND: &str = "demo";

/// Options of `tta demo`.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Requests to make.
    pub requests: u64,
    /// Producer threads.
    pub concurrency: usize,
    /// A YAML configuration to use instead of the demo's tuned production preset.
    pub config: Option<PathBuf>,
    /// Directory of the embedded store.
    pub data: PathBuf,
    /// Address to serve the health routes on (`None`: no server).
    pub listen: Option<String>,
    /// Also export kept spans to this OTLP/HTTP endpoint.
    pub otlp_endpoint: Option<String>,
    /// A fixed head sampling rate (turns adaptive sampling off).
    pub rate: Option<f64>,
    /// Keep adaptive sampling on (the demo's tuned preset otherwise samples at a fixed 5%).
    pub adaptive: bool,
    /// Print the summary as one JSON document instead of text.
    pub json: bool,
    /// Show a progress bar on stderr (never drawn when stderr is not a terminal).
    pub progress: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            requests: 100_000,
            concurrency: 2,
            config: None,
            data: PathBuf::from(tta_observability::DEFAULT_DATA_DIR),
            listen: Some("127.0.0.1:0".into()),
            otlp_endpoint: None,
            rate: None,
            adaptive: false,
            json: false,
            progress: true,
        }
    }
}

/// The demo's configuration: the file's when given (with `TTA_*`/`OTEL_*` variables over it),
/// else the production preset tuned so everything acts within a short run: slow means over
/// 50 ms, the adaptive sampler adjusts every 0.25 s, traces are decided 50 ms after their
/// root ends, batches leave at least every second, the span queue holds 8 192 spans, and the
/// one label the demo makes unbounded on purpose (`user_id`) is tolerated by health
/// (`health.max_dropped_labels: 1`; it is still reported). The head rate is the production
/// 5%, fixed unless `adaptive` is set: the synthetic requests do no work of their own, so
/// observability is nearly all of the process's CPU and the adaptive controller (aiming at
/// 2% overhead) would pin itself at its 1% floor, which health rightly reports as degraded.
/// `rate` fixes another head rate (and turns adaptive sampling off).
///
/// ```
/// let c = tta_cli::demo::demo_config(None, Some(0.1), false)?;
/// assert_eq!(c.tracing.sampling.default_rate, 0.1);
/// assert!(!c.tracing.sampling.adaptive_enabled);
/// let c = tta_cli::demo::demo_config(None, None, true)?;
/// assert_eq!(c.tracing.sampling.default_rate, 0.05);
/// assert!(c.tracing.sampling.adaptive_enabled);
/// assert_eq!(c.tracing.batch_size, 512);
/// assert!(c.storage.compression_enabled);
/// # Ok::<(), tta_cli::CliError>(())
/// ```
pub fn demo_config(
    file: Option<&Path>,
    rate: Option<f64>,
    adaptive: bool,
) -> Result<ObservabilityConfig, CliError> {
    let config_error = |source| CliError::Config {
        command: COMMAND,
        source,
    };
    let mut c = match file {
        Some(path) => {
            ObservabilityConfig::load(Some(path), &EnvSource::process()).map_err(config_error)?
        }
        None => {
            let mut c =
                ObservabilityConfig::from_environment("production").map_err(config_error)?;
            c.service_name = "tta-demo".into();
            c.service_version = env!("CARGO_PKG_VERSION").into();
            let s = &mut c.tracing.sampling;
            s.slow_threshold_ms = 50.0;
            s.adaptive_adjustment_interval_seconds = 0.25;
            s.straggler_delay_ms = 50;
            s.decision_wait_ms = 5_000;
            c.tracing.export_interval_seconds = 1.0;
            c.tracing.max_queue_size = 8_192;
            c.metrics.export_interval_seconds = 5.0;
            c.health.max_dropped_labels = 1;
            c.tracing.sampling.adaptive_enabled = adaptive;
            c
        }
    };
    if let Some(rate) = rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err(CliError::InvalidArgument {
                command: COMMAND,
                argument: "--rate",
                message: format!("must be within [0, 1], got {rate}"),
            });
        }
        c.tracing.sampling.default_rate = rate;
        c.tracing.sampling.adaptive_enabled = false;
    }
    c.validate().map_err(config_error)?;
    Ok(c)
}

/// Traces kept by the tail decision, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeptTraces {
    /// Every kept trace.
    pub total: u64,
    /// Kept by the head decision (fixed or adaptive rate, or the parent).
    pub head: u64,
    /// Kept because they failed.
    pub error: u64,
    /// Kept because they were slow.
    pub slow: u64,
}

/// How many traces of one kind were made and found in the store afterwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stored {
    /// Requests of this kind.
    pub total: u64,
    /// Of which the store holds the trace.
    pub stored: u64,
}

impl Stored {
    /// `stored / total` in percent (100 when there were none).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.stored as f64 * 100.0 / self.total as f64
        }
    }
}

/// Cardinality figures of the metrics collector.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CardinalitySummary {
    /// Label values kept as-is over all keys.
    pub total_labels: usize,
    /// Keys that hit their limit (values hashed or overflowed).
    pub dropped_labels: Vec<String>,
    /// Values kept per key.
    pub label_cardinality: std::collections::BTreeMap<String, usize>,
}

/// Store figures after the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreSummary {
    /// The store directory.
    pub dir: String,
    /// Spans stored (this run and earlier ones).
    pub spans: u64,
    /// Traces stored.
    pub traces: u64,
    /// Bytes of segment files.
    pub bytes_on_disk: u64,
    /// Bytes on disk per span.
    pub bytes_per_span: f64,
    /// Encoded bytes over compressed bytes.
    pub compression_ratio: f64,
}

/// Export figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportSummary {
    /// Spans exported.
    pub exported_spans: u64,
    /// Spans dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Spans that failed to export.
    pub failed_spans: u64,
    /// Export latency p99 in milliseconds.
    pub latency_p99_ms: f64,
}

/// The demo's summary (`tta demo --json` prints it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DemoSummary {
    /// Requests made.
    pub requests: u64,
    /// Spans generated.
    pub spans: u64,
    /// Wall time of the workload in seconds.
    pub seconds: f64,
    /// Requests per second.
    pub requests_per_second: f64,
    /// Head decisions that sampled.
    pub head_sampled: u64,
    /// Traces kept and why.
    pub kept: KeptTraces,
    /// Failed requests whose trace is in the store.
    pub error_traces: Stored,
    /// Slow requests whose trace is in the store.
    pub slow_traces: Stored,
    /// The head sampling rate in force at the end.
    pub sampling_rate: f64,
    /// Whether adaptive sampling was on.
    pub adaptive: bool,
    /// Adaptive adjustments made.
    pub adaptive_adjustments: u64,
    /// Metric label cardinality.
    pub cardinality: CardinalitySummary,
    /// The store.
    pub store: StoreSummary,
    /// The export pipeline.
    pub export: ExportSummary,
    /// Observability CPU time over process CPU time during the run.
    pub overhead_run: Option<f64>,
    /// The overhead meter's last interval (what adaptive sampling steers by).
    pub overhead_last_interval: Option<f64>,
    /// Health at the end of the run: `healthy`, `degraded` or `unhealthy`.
    pub health: String,
    /// The health report's message.
    pub health_message: String,
    /// The health URL served during the run.
    pub health_url: Option<String>,
    /// Every error and slow trace stored (where the tail rules are on) and not unhealthy.
    pub ok: bool,
}

/// Runs the demo and writes the summary to `out`; progress and the health URL go to stderr.
pub fn run(options: &DemoOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let config = demo_config(options.config.as_deref(), options.rate, options.adaptive)?;
    let summary = run_summary(options, config)?;
    let o = CliError::output(COMMAND);
    if options.json {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| CliError::Output {
            command: COMMAND,
            source: e.into(),
        })?;
        writeln!(out, "{text}").map_err(o)?;
    } else {
        write_summary(&summary, out).map_err(o)?;
    }
    Ok(if summary.ok {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

fn runtime(source: tta_observability::ObservabilityError) -> CliError {
    CliError::Runtime {
        command: COMMAND,
        source,
    }
}

/// Runs the demo with an explicit configuration and returns the summary.
pub fn run_summary(
    options: &DemoOptions,
    config: ObservabilityConfig,
) -> Result<DemoSummary, CliError> {
    let sampling = config.tracing.sampling.clone();
    let mut builder = Observability::builder()
        .config(config)
        .store_dir(&options.data);
    if let Some(addr) = &options.listen {
        builder = builder.listen(addr.clone());
    }
    if let Some(url) = &options.otlp_endpoint {
        builder = builder.otlp_endpoint(url.clone());
    }
    let obs = builder.build().map_err(runtime)?;
    let health_url = obs.http_addr().map(|a| format!("http://{a}/health"));
    if let Some(url) = &health_url {
        eprintln!(
            "tta demo: serving health at {url} (also /health/full, /livez, /readyz, /metrics)"
        );
    }

    let workload_config = WorkloadConfig {
        requests: options.requests,
        concurrency: options.concurrency.max(1),
        slow_threshold_ms: sampling.slow_threshold_ms,
        ..WorkloadConfig::default()
    };
    let bar = if options.progress {
        ProgressBar::with_draw_target(Some(options.requests), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }

    let cpu0 = workload::process_cpu_time();
    let ours0 = workload::threads_cpu_time("tta-");
    let inline0 = obs.overhead().inline_nanos();
    let result = workload::run(&workload_config, Some(&obs), &|n| bar.inc(n));
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            obs.shutdown(Duration::from_secs(5));
            return Err(e);
        }
    };
    if let Err(e) = obs.flush(Duration::from_secs(60)) {
        obs.shutdown(Duration::from_secs(5));
        return Err(runtime(e));
    }
    let overhead_run = match (
        cpu0,
        workload::process_cpu_time(),
        ours0,
        workload::threads_cpu_time("tta-"),
    ) {
        (Some(c0), Some(c1), Some(o0), Some(o1)) if c1 > c0 => {
            let inline = Duration::from_nanos(obs.overhead().inline_nanos() - inline0);
            Some(
                ((o1.saturating_sub(o0) + inline).as_secs_f64() / (c1 - c0).as_secs_f64()).min(1.0),
            )
        }
        _ => None,
    };

    let health = obs.health().check_health();
    let stats = obs.sampler().stats();
    let by = &stats.tail.sampled_by_reason;
    let kept = KeptTraces {
        total: stats.tail.sampled,
        head: by.get(SamplingReason::HeadRate)
            + by.get(SamplingReason::Adaptive)
            + by.get(SamplingReason::ParentSampled)
            + by.get(SamplingReason::Policy),
        error: by.get(SamplingReason::Error),
        slow: by.get(SamplingReason::Slow),
    };
    let card = obs.metrics().cardinality_stats();
    let pipeline = obs.pipeline().map(|p| p.stats());
    let overhead_last_interval = obs.overhead().current();
    obs.shutdown(Duration::from_secs(30));

    let (mut error_traces, mut slow_traces) = (
        Stored {
            total: report.error_traces.len() as u64,
            stored: 0,
        },
        Stored {
            total: report.slow_traces.len() as u64,
            stored: 0,
        },
    );
    let mut store_summary = StoreSummary {
        dir: options.data.display().to_string(),
        ..StoreSummary::default()
    };
    if let Some(store) = obs.store() {
        let store_error = |source| CliError::Store {
            command: COMMAND,
            dir: options.data.clone(),
            source,
        };
        for (ids, counts) in [
            (&report.error_traces, &mut error_traces),
            (&report.slow_traces, &mut slow_traces),
        ] {
            for id in ids {
                if store.get_trace(id).map_err(store_error)?.is_some() {
                    counts.stored += 1;
                }
            }
        }
        let s = store.stats();
        store_summary.spans = s.spans;
        store_summary.traces = s.traces;
        store_summary.bytes_on_disk = s.bytes_on_disk;
        store_summary.bytes_per_span = s.bytes_per_span;
        store_summary.compression_ratio = s.compression_ratio;
    }

    let seconds = report.elapsed.as_secs_f64();
    let ok = (!sampling.always_sample_errors || error_traces.stored == error_traces.total)
        && (!sampling.always_sample_slow || slow_traces.stored == slow_traces.total)
        && health.status != HealthStatus::Unhealthy;
    Ok(DemoSummary {
        requests: report.requests,
        spans: report.spans,
        seconds,
        requests_per_second: if seconds > 0.0 {
            report.requests as f64 / seconds
        } else {
            0.0
        },
        head_sampled: report.head_sampled,
        kept,
        error_traces,
        slow_traces,
        sampling_rate: stats.current_rate,
        adaptive: stats.adaptive_enabled,
        adaptive_adjustments: stats.adaptive.adjustments,
        cardinality: CardinalitySummary {
            total_labels: card.total_labels,
            dropped_labels: card.dropped_labels,
            label_cardinality: card.label_cardinality,
        },
        store: store_summary,
        export: pipeline
            .map(|p| ExportSummary {
                exported_spans: p.exported_spans,
                dropped_queue_full: p.dropped_queue_full,
                failed_spans: p.failed_spans,
                latency_p99_ms: p.export_latency_p99_ms,
            })
            .unwrap_or_default(),
        overhead_run,
        overhead_last_interval,
        health: health.status.as_str().to_owned(),
        health_message: health.message,
        health_url,
        ok,
    })
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}%", v * 100.0))
        .unwrap_or_else(|| "not measured".into())
}

/// The human-readable summary.
pub fn write_summary(s: &DemoSummary, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "requests:        {} ({} spans) in {:.2} s, {:.0} requests/s",
        s.requests, s.spans, s.seconds, s.requests_per_second
    )?;
    writeln!(
        out,
        "traces kept:     {} (head {}, error {}, slow {})",
        s.kept.total, s.kept.head, s.kept.error, s.kept.slow
    )?;
    for (what, st) in [
        ("error traces:", &s.error_traces),
        ("slow traces:", &s.slow_traces),
    ] {
        writeln!(
            out,
            "{what:<16} {}/{} stored ({:.1}%)",
            st.stored,
            st.total,
            st.percent()
        )?;
    }
    writeln!(
        out,
        "sampling rate:   {:.2}% now ({}, {} adjustments)",
        s.sampling_rate * 100.0,
        if s.adaptive { "adaptive" } else { "fixed" },
        s.adaptive_adjustments
    )?;
    let per_key = s
        .cardinality
        .label_cardinality
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let dropped = if s.cardinality.dropped_labels.is_empty() {
        "none".to_owned()
    } else {
        s.cardinality.dropped_labels.join(", ")
    };
    writeln!(
        out,
        "cardinality:     {} label values kept ({per_key}); limit reached for: {dropped}",
        s.cardinality.total_labels
    )?;
    writeln!(
        out,
        "store:           {} spans in {} traces, {} on disk, {:.1} B/span, compression {:.1}x ({})",
        s.store.spans,
        s.store.traces,
        fmt_bytes(s.store.bytes_on_disk as f64),
        s.store.bytes_per_span,
        s.store.compression_ratio,
        s.store.dir
    )?;
    writeln!(
        out,
        "export:          {} spans exported, {} dropped (queue full), {} failed, p99 {:.2} ms",
        s.export.exported_spans,
        s.export.dropped_queue_full,
        s.export.failed_spans,
        s.export.latency_p99_ms
    )?;
    writeln!(
        out,
        "overhead:        {} of process CPU over the run (last interval {})",
        percent(s.overhead_run),
        percent(s.overhead_last_interval)
    )?;
    writeln!(out, "health:          {} ({})", s.health, s.health_message)?;
    writeln!(
        out,
        "result:          {}",
        if s.ok {
            "ok: every error and slow trace is stored"
        } else {
            "FAILED: error or slow traces missing, or unhealthy"
        }
    )
}
