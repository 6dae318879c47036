//! The guide's "Storage Estimates" table, computed from measured bytes per span.

use crate::StoreStats;

/// Inputs of a storage estimate.
///
/// ```
/// use tta_storage::{EstimateParams, estimate};
/// let params = EstimateParams { sampling_rate: 0.05, ..EstimateParams::default() };
/// let row = estimate(1_000_000, &params);
/// assert_eq!(row.kept_traces_per_day, 50_000.0);
/// assert!(row.compressed_bytes_per_day < row.uncompressed_bytes_per_day);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimateParams {
    /// Fraction of traces kept, 0 to 1 (the guide assumes 0.05).
    pub sampling_rate: f64,
    /// Average spans per trace.
    pub spans_per_trace: f64,
    /// Bytes on disk per stored span (compressed, overhead included).
    pub bytes_per_span: f64,
    /// Bytes per span before compression (this crate's compact encoding).
    pub uncompressed_bytes_per_span: f64,
    /// Days data is kept, for the retained total.
    pub ttl_days: u32,
}

impl Default for EstimateParams {
    /// The guide's 5% sampling and 7-day TTL, with reference figures measured on the
    /// synthetic corpus ([`crate::corpus`]) at zstd level 6 with the default 256 KiB blocks:
    /// about 12 spans per trace, 23 bytes on disk and 46 encoded bytes per span (the
    /// `storage` bench reports the current figures). Prefer [`EstimateParams::measured`] on a
    /// real store: real attributes vary more than the corpus does.
    fn default() -> Self {
        Self {
            sampling_rate: 0.05,
            spans_per_trace: 12.0,
            bytes_per_span: 23.0,
            uncompressed_bytes_per_span: 46.0,
            ttl_days: 7,
        }
    }
}

impl EstimateParams {
    /// Parameters measured from a store's [`StoreStats`]; fields the store cannot know
    /// (sampling rate, TTL) are passed in. Falls back to the defaults while the store is
    /// empty.
    pub fn measured(stats: &StoreStats, sampling_rate: f64, ttl_days: u32) -> Self {
        let d = Self::default();
        if stats.spans == 0 {
            return Self {
                sampling_rate,
                ttl_days,
                ..d
            };
        }
        Self {
            sampling_rate,
            spans_per_trace: if stats.traces > 0 {
                stats.spans as f64 / stats.traces as f64
            } else {
                d.spans_per_trace
            },
            bytes_per_span: stats.bytes_per_span,
            uncompressed_bytes_per_span: stats.uncompressed_bytes_per_span,
            ttl_days,
        }
    }
}

/// One row of the estimate table.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateRow {
    /// The guide's volume label (`Low`, `Medium`, ...) or `Custom`.
    pub volume: &'static str,
    /// Requests (traces started) per day, before sampling.
    pub requests_per_day: u64,
    /// Traces kept per day.
    pub kept_traces_per_day: f64,
    /// Spans stored per day.
    pub spans_per_day: f64,
    /// Bytes per day before compression.
    pub uncompressed_bytes_per_day: f64,
    /// Bytes per day on disk.
    pub compressed_bytes_per_day: f64,
    /// Bytes on disk once `ttl_days` of data are retained.
    pub retained_bytes: f64,
}

/// Storage needed for `requests_per_day` traces at the given parameters.
pub fn estimate(requests_per_day: u64, params: &EstimateParams) -> EstimateRow {
    let rate = params.sampling_rate.clamp(0.0, 1.0);
    let kept = requests_per_day as f64 * rate;
    let spans = kept * params.spans_per_trace.max(0.0);
    let compressed = spans * params.bytes_per_span.max(0.0);
    EstimateRow {
        volume: "Custom",
        requests_per_day,
        kept_traces_per_day: kept,
        spans_per_day: spans,
        uncompressed_bytes_per_day: spans * params.uncompressed_bytes_per_span.max(0.0),
        compressed_bytes_per_day: compressed,
        retained_bytes: compressed * f64::from(params.ttl_days),
    }
}

/// The guide's four volumes (10K, 100K, 1M, 10M daily traces) at the given parameters.
///
/// ```
/// use tta_storage::{EstimateParams, estimate_table};
/// let rows = estimate_table(&EstimateParams::default());
/// assert_eq!(rows.iter().map(|r| r.volume).collect::<Vec<_>>(), ["Low", "Medium", "High", "Very High"]);
/// assert!((rows[3].compressed_bytes_per_day / rows[0].compressed_bytes_per_day - 1000.0).abs() < 1e-6);
/// ```
pub fn estimate_table(params: &EstimateParams) -> Vec<EstimateRow> {
    [
        ("Low", 10_000),
        ("Medium", 100_000),
        ("High", 1_000_000),
        ("Very High", 10_000_000),
    ]
    .into_iter()
    .map(|(volume, n)| EstimateRow {
        volume,
        ..estimate(n, params)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_scales_with_inputs() {
        let p = EstimateParams {
            sampling_rate: 0.1,
            spans_per_trace: 10.0,
            bytes_per_span: 40.0,
            uncompressed_bytes_per_span: 200.0,
            ttl_days: 7,
        };
        let r = estimate(1_000, &p);
        assert_eq!(r.kept_traces_per_day, 100.0);
        assert_eq!(r.spans_per_day, 1_000.0);
        assert_eq!(r.compressed_bytes_per_day, 40_000.0);
        assert_eq!(r.uncompressed_bytes_per_day, 200_000.0);
        assert_eq!(r.retained_bytes, 280_000.0);
        let clamped = estimate(
            1_000,
            &EstimateParams {
                sampling_rate: 3.0,
                ..p
            },
        );
        assert_eq!(clamped.kept_traces_per_day, 1_000.0);
    }

    #[test]
    fn measured_uses_store_figures() {
        let stats = StoreStats {
            spans: 1_000,
            traces: 100,
            bytes_per_span: 33.0,
            uncompressed_bytes_per_span: 120.0,
            ..Default::default()
        };
        let p = EstimateParams::measured(&stats, 0.05, 7);
        assert_eq!(p.spans_per_trace, 10.0);
        assert_eq!(p.bytes_per_span, 33.0);
        let empty = EstimateParams::measured(&StoreStats::default(), 0.2, 3);
        assert_eq!(empty.sampling_rate, 0.2);
        assert_eq!(
            empty.bytes_per_span,
            EstimateParams::default().bytes_per_span
        );
    }
}
