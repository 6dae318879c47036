use thiserror::Error;

/// What went wrong in this crate: invalid configuration (recording never fails; bad values
/// are counted and dropped instead).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A field of [`MetricsConfig`](crate::MetricsConfig) is out of range.
    #[error("invalid metrics config `metrics.{field}`: {reason}")]
    InvalidConfig {
        /// The field name (`max_label_values`, ...).
        field: &'static str,
        /// Why it is invalid, with the accepted range.
        reason: String,
    },
    /// The cardinality limits derived from the config were rejected.
    #[error("invalid cardinality limits derived from the metrics config")]
    Cardinality(#[from] tta_cardinality::CardinalityError),
}
