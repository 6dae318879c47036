use serde::{Deserialize, Serialize};

/// A point-in-time copy of every metric series, as plain data: what the metrics collector
/// produces and what the store and exporters persist.
///
/// ```
/// use tta_core::{MetricSeries, MetricValue, MetricsSnapshot};
/// let snap = MetricsSnapshot {
///     timestamp_unix_nanos: 42,
///     series: vec![MetricSeries {
///         name: "requests_total".into(),
///         labels: vec![("route".into(), "/api".into())],
///         value: MetricValue::Counter(3),
///     }],
/// };
/// assert_eq!(snap.series[0].value, MetricValue::Counter(3));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// When the snapshot was taken, nanoseconds since the Unix epoch.
    pub timestamp_unix_nanos: u64,
    /// Every series.
    pub series: Vec<MetricSeries>,
}

/// One labelled series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    /// Metric name.
    pub name: String,
    /// Label pairs, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Current value.
    pub value: MetricValue,
}

/// The value of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricValue {
    /// Monotonic counter.
    Counter(u64),
    /// Last value set.
    Gauge(f64),
    /// Bucketed distribution: `counts[i]` observations `<= bounds[i]`, non-cumulative, with one
    /// extra trailing count for `+Inf`.
    Histogram {
        /// Upper bounds.
        bounds: Vec<f64>,
        /// Per-bucket counts (`bounds.len() + 1` entries).
        counts: Vec<u64>,
        /// Sum of observations.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}
