//! `tta estimate`: the guide's storage table from measured bytes per span.

use std::io::Write;
use std::path::PathBuf;

use tta_observability::storage::corpus::Corpus;
use tta_observability::storage::{
    EstimateParams, StorageConfig, StoreStats, TraceStore, estimate, estimate_table,
};

use crate::{CliError, Outcome, fmt_bytes, fmt_count};

const COMMAND: &str = "estimate";

/// Spans of the synthetic sample compressed to measure bytes per span.
pub const SAMPLE_SPANS: usize = 50_000;

/// Options of `tta estimate`.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateOptions {
    /// Requests (traces started) per day, for the `Custom` row.
    pub requests_per_day: u64,
    /// Fraction of traces kept (default 0.05, the guide's).
    pub rate: f64,
    /// zstd level of the measurement (default 6); ignored with `data`.
    pub level: i32,
    /// Measure on this store instead of a synthetic sample.
    pub data: Option<PathBuf>,
    /// Days retained, for the retained total (default 7).
    pub ttl_days: u32,
}

impl Default for EstimateOptions {
    fn default() -> Self {
        Self {
            requests_per_day: 1_000_000,
            rate: 0.05,
            level: 6,
            data: None,
            ttl_days: 7,
        }
    }
}

/// Measures store figures: on the store in `data`, or by writing [`SAMPLE_SPANS`] spans of
/// the synthetic corpus at zstd `level` into a temporary store.
pub fn measure(options: &EstimateOptions) -> Result<StoreStats, CliError> {
    if let Some(dir) = &options.data {
        if !dir.is_dir() {
            return Err(CliError::Io {
                command: COMMAND,
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no store directory here",
                ),
            });
        }
        let store = TraceStore::open_read_only(dir).map_err(|source| CliError::Store {
            command: COMMAND,
            dir: dir.clone(),
            source,
        })?;
        return Ok(store.stats());
    }
    let config = StorageConfig {
        compression_enabled: true,
        compression_level: options.level,
        ..StorageConfig::default()
    };
    config.validate().map_err(|e| CliError::InvalidArgument {
        command: COMMAND,
        argument: "--level",
        message: e.to_string(),
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("tta-estimate-")
        .tempdir()
        .map_err(|source| CliError::Io {
            command: COMMAND,
            path: std::env::temp_dir(),
            source,
        })?;
    let dir = tmp.path().to_owned();
    let store_error = |source| CliError::Store {
        command: COMMAND,
        dir: dir.clone(),
        source,
    };
    let store = TraceStore::open(&dir, config).map_err(store_error)?;
    let spans = Corpus::new(1).spans(SAMPLE_SPANS);
    for chunk in spans.chunks(512) {
        store.append(chunk).map_err(store_error)?;
    }
    store.flush().map_err(store_error)?;
    let stats = store.stats();
    store.close().map_err(store_error)?;
    Ok(stats)
}

/// Prints the measurement and the table (the guide's four volumes plus the requested one).
pub fn run(options: &EstimateOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    if !(0.0..=1.0).contains(&options.rate) {
        return Err(CliError::InvalidArgument {
            command: COMMAND,
            argument: "--rate",
            message: format!("must be within [0, 1], got {}", options.rate),
        });
    }
    if options.ttl_days == 0 {
        return Err(CliError::InvalidArgument {
            command: COMMAND,
            argument: "--ttl-days",
            message: "must be at least 1".into(),
        });
    }
    let stats = measure(options)?;
    let params = EstimateParams::measured(&stats, options.rate, options.ttl_days);
    let o = CliError::output(COMMAND);
    match &options.data {
        Some(dir) => writeln!(
            out,
            "Measured on the store at {}: {} spans in {} traces",
            dir.display(),
            stats.spans,
            stats.traces
        ),
        None => writeln!(
            out,
            "Measured on {} synthetic spans ({} traces) at zstd level {}",
            stats.spans, stats.traces, options.level
        ),
    }
    .map_err(o)?;
    if stats.spans == 0 {
        writeln!(out, "(the store is empty: reference figures are used)").map_err(o)?;
    }
    writeln!(
        out,
        "{:.1} spans/trace, {:.1} B/span on disk, {:.1} B/span encoded ({:.2}x)",
        params.spans_per_trace,
        params.bytes_per_span,
        params.uncompressed_bytes_per_span,
        if params.bytes_per_span > 0.0 {
            params.uncompressed_bytes_per_span / params.bytes_per_span
        } else {
            0.0
        }
    )
    .map_err(o)?;
    writeln!(
        out,
        "Sampling rate {}%, retention {} days",
        options.rate * 100.0,
        options.ttl_days
    )
    .map_err(o)?;
    writeln!(out).map_err(o)?;
    writeln!(
        out,
        "| Volume | Daily Traces | Kept Traces/Day | Spans/Day | Storage/Day (uncompressed) | Storage/Day (compressed) | Retained ({} d) |",
        options.ttl_days
    )
    .map_err(o)?;
    writeln!(
        out,
        "|--------|--------------|-----------------|-----------|----------------------------|--------------------------|--------------|"
    )
    .map_err(o)?;
    let mut rows = estimate_table(&params);
    rows.push(estimate(options.requests_per_day, &params));
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.volume,
            fmt_count(r.requests_per_day as f64),
            fmt_count(r.kept_traces_per_day),
            fmt_count(r.spans_per_day),
            fmt_bytes(r.uncompressed_bytes_per_day),
            fmt_bytes(r.compressed_bytes_per_day),
            fmt_bytes(r.retained_bytes)
        )
        .map_err(o)?;
    }
    Ok(Outcome::Ok)
}
